// Package tap is rr's stand-in for github.com/mndrix/tap-go, which Debian
// does not package: the runtime-tools suite imports it to print TAP 13.
// Written for rr's conformance harness from the TAP 13 format; it provides
// the calls the suite makes and prints the same lines.
package tap

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// T prints TAP lines. Copies made by Todo share the test counter.
type T struct {
	counter *int
	// TODO marks every result printed through this value as a TODO.
	TODO bool
	// Writer receives the output; nil means standard output.
	Writer io.Writer
}

// New starts a stream whose first test is number 1.
func New() *T {
	first := 1
	return &T{counter: &first}
}

func (t *T) out(format string, args ...interface{}) {
	w := t.Writer
	if w == nil {
		w = os.Stdout
	}
	fmt.Fprintf(w, format, args...)
}

// Header prints the version line and, for a known count, the plan.
func (t *T) Header(count int) {
	t.out("TAP version 13\n")
	if count > 0 {
		t.out("1..%d\n", count)
	}
}

// Ok prints one numbered result.
func (t *T) Ok(passed bool, description string) {
	word := "not ok"
	if passed {
		word = "ok"
	}
	sep := "-"
	if t.TODO {
		sep = "# TODO"
	}
	t.out("%s %d %s %s\n", word, *t.counter, sep, description)
	*t.counter++
}

// Pass prints a passing result.
func (t *T) Pass(description string) { t.Ok(true, description) }

// Fail prints a failing result.
func (t *T) Fail(description string) { t.Ok(false, description) }

// Skip prints count skipped results.
func (t *T) Skip(count int, description string) {
	for ; count > 0; count-- {
		t.out("ok %d # SKIP %s\n", *t.counter, description)
		*t.counter++
	}
}

// Todo returns a value that prints TODO results on the same counter.
func (t *T) Todo() *T {
	c := *t
	c.TODO = true
	return &c
}

// Count is the number of results printed so far.
func (t *T) Count() int { return *t.counter - 1 }

// AutoPlan prints the plan for the results printed so far.
func (t *T) AutoPlan() { t.out("1..%d\n", t.Count()) }

func commentLines(s string) string {
	return strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n# ")
}

// Diagnostic prints a comment, one "# " per line.
func (t *T) Diagnostic(message string) { t.out("# %s\n", commentLines(message)) }

// Diagnosticf formats a comment, one "# " per line.
func (t *T) Diagnosticf(format string, args ...interface{}) {
	t.out("# "+commentLines(format)+"\n", args...)
}

// YAML prints a YAML block holding message as indented JSON (a YAML subset).
func (t *T) YAML(message interface{}) error {
	body, err := json.MarshalIndent(message, "  ", "  ")
	if err != nil {
		return err
	}
	t.out("  ---\n  %s\n  ...\n", body)
	return nil
}
