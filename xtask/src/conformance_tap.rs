//! Reads the TAP 13 streams that runtime-tools' `validation/*.t` programs print.
//!
//! A program can fail in ways a plain count of `not ok` lines misses: it can
//! exit non-zero after printing nothing but a YAML `error` block and the plan
//! `1..0`, stop before its plan, or print fewer results than it planned. Each of
//! those becomes one failure of the program as a whole, so that it is counted
//! and shown in the table like any failed assertion.

/// What one result line says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
    Skip,
    /// `not ok ... # TODO`: a known failure the producer does not count.
    Todo,
}

/// One numbered result with the YAML block that followed it, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assertion {
    pub number: u32,
    pub status: Status,
    pub description: String,
    pub detail: String,
}

/// Everything one run of a TAP producer said, plus how it ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stream {
    pub assertions: Vec<Assertion>,
    /// One entry per TAP stream printed (a program may print several, each
    /// numbered from 1, as linux_cgroups_cpus does): its plan, if printed,
    /// and how many results it gave. Later streams' results are numbered on
    /// from the earlier ones' so that every result has its own number.
    pub parts: Vec<(Option<u32>, usize)>,
    /// YAML blocks printed before any result (where `1..0` runs put errors).
    pub leading_detail: String,
    /// Why the program as a whole failed, when it did.
    pub program_failure: Option<String>,
    /// Exit status 0 and nothing on stdout: the suite's way of passing a
    /// test that expects the runtime to refuse a config (the `*_fail` tests).
    pub silent_pass: bool,
}

/// How the program ended, as the caller observed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    TimedOut(u64),
    Signal(i32),
}

/// Parses `stdout` and judges the whole run from `exit` and `stderr`.
pub fn parse(stdout: &str, stderr: &str, exit: &Exit) -> Stream {
    let mut s = Stream::default();
    let mut in_yaml = false;
    let mut yaml = String::new();
    let mut pending = String::new();
    for line in stdout.lines() {
        if in_yaml {
            if line.trim() == "..." {
                in_yaml = false;
                attach(&mut s, std::mem::take(&mut yaml), &mut pending);
            } else {
                yaml.push_str(line.trim());
                yaml.push('\n');
            }
            continue;
        }
        if line.trim() == "---" && line.starts_with(" ") {
            in_yaml = true;
            continue;
        }
        if line.starts_with("TAP version") {
            if s.parts.last().is_none_or(|p| p.0.is_some() || p.1 > 0) {
                s.parts.push((None, 0));
            }
        } else if let Some(n) = parse_plan(line) {
            current_part(&mut s).0 = Some(n);
        } else if let Some(mut a) = parse_result(line) {
            a.detail = std::mem::take(&mut pending);
            let offset = s.assertions.len() - current_part(&mut s).1;
            a.number += offset as u32;
            current_part(&mut s).1 += 1;
            s.assertions.push(a);
        }
    }
    if in_yaml {
        attach(&mut s, yaml, &mut pending);
    }
    if !pending.is_empty() {
        s.leading_detail.push_str(&pending);
    }
    s.silent_pass = *exit == Exit::Code(0) && stdout.trim().is_empty();
    if !s.silent_pass {
        s.program_failure = judge(&s, stderr, exit);
    }
    s
}

fn current_part(s: &mut Stream) -> &mut (Option<u32>, usize) {
    if s.parts.is_empty() {
        s.parts.push((None, 0));
    }
    let last = s.parts.len() - 1;
    &mut s.parts[last]
}

fn attach(s: &mut Stream, yaml: String, pending: &mut String) {
    // The suite prints a container's captured stdout *before* the result it
    // belongs to (runtime-tools' RuntimeInsideValidate), unlike TAP's order.
    if yaml.contains("\"stdout\":") {
        pending.push_str(&yaml);
        return;
    }
    match s.assertions.last_mut() {
        Some(a) => a.detail.push_str(&yaml),
        None => s.leading_detail.push_str(&yaml),
    }
}

fn parse_plan(line: &str) -> Option<u32> {
    let rest = line.trim_end().strip_prefix("1..")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn parse_result(line: &str) -> Option<Assertion> {
    let (ok, rest) = if let Some(r) = line.strip_prefix("not ok") {
        (false, r)
    } else {
        (true, line.strip_prefix("ok")?)
    };
    let rest = rest.trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let number = digits.parse().ok()?;
    let rest = rest[digits.len()..].trim_start();
    let (status, description) = match directive(rest) {
        Some(("SKIP", d)) => (Status::Skip, d),
        Some(("TODO", d)) if !ok => (Status::Todo, d),
        Some((_, d)) => (if ok { Status::Pass } else { Status::Fail }, d),
        None => (
            if ok { Status::Pass } else { Status::Fail },
            rest.strip_prefix('-').unwrap_or(rest).trim(),
        ),
    };
    Some(Assertion {
        number,
        status,
        description: description.to_string(),
        detail: String::new(),
    })
}

/// `# SKIP text` / `# TODO text` (any case) right after the number.
fn directive(rest: &str) -> Option<(&'static str, &str)> {
    let body = rest.strip_prefix('#')?.trim_start();
    for word in ["SKIP", "TODO"] {
        if body.len() >= word.len() && body[..word.len()].eq_ignore_ascii_case(word) {
            return Some((word, body[word.len()..].trim()));
        }
    }
    None
}

fn judge(s: &Stream, stderr: &str, exit: &Exit) -> Option<String> {
    let last_words = last_line(stderr);
    match exit {
        Exit::TimedOut(secs) => return Some(format!("timed out after {secs} s")),
        Exit::Signal(sig) => return Some(format!("killed by signal {sig}{last_words}")),
        Exit::Code(0) => {}
        Exit::Code(c) => return Some(format!("exit status {c}{last_words}")),
    }
    if let Some(err) = yaml_error(&s.leading_detail) {
        return Some(format!("error before any result: {err}"));
    }
    if s.parts.is_empty() {
        return Some(format!("no TAP output{last_words}"));
    }
    s.parts.iter().enumerate().find_map(|(i, part)| {
        let which = if s.parts.len() > 1 {
            format!("stream {}: ", i + 1)
        } else {
            String::new()
        };
        match *part {
            (None, _) => Some(format!("{which}no plan line{last_words}")),
            (Some(n), count) if n as usize != count => Some(format!(
                "{which}planned {n} results, printed {count}{last_words}"
            )),
            _ => None,
        }
    })
}

fn last_line(stderr: &str) -> String {
    stderr
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty() && !is_go_exit_line(l))
        .map(|l| format!(": {l}"))
        .unwrap_or_default()
}

/// Go's `exit status N` (a child's error echoed by the program) says less
/// than the line before it.
fn is_go_exit_line(l: &str) -> bool {
    l.strip_prefix("exit status ")
        .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
}

/// The value of an `"error"` (or `error:`) key in a YAML/JSON block.
pub fn yaml_error(yaml: &str) -> Option<String> {
    yaml.lines().find_map(|l| {
        let l = l.trim();
        let v = l
            .strip_prefix("\"error\":")
            .or_else(|| l.strip_prefix("error:"))?;
        Some(v.trim().trim_end_matches(',').trim_matches('"').to_string())
    })
}

/// A one-line summary of a result's YAML block: its error, the failing
/// lines of a nested TAP stream (runtimetest's, from inside the container),
/// or what was expected and seen.
pub fn summarize(yaml: &str) -> String {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str(yaml) else {
        return yaml_error(yaml).unwrap_or_default();
    };
    let text = |k: &str| match map.get(k) {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(v) => Some(v.to_string()),
        None => None,
    };
    if let Some(e) = text("error") {
        let stderr = text("stderr").map(|s| last_line(&s)).unwrap_or_default();
        return format!("{e}{stderr}");
    }
    if let Some(out) = text("stdout") {
        let failed: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("not ok"))
            .take(3)
            .collect();
        if !failed.is_empty() {
            return format!("inside: {}", failed.join("; "));
        }
    }
    match (text("expected"), text("actual")) {
        (Some(e), Some(a)) => format!("expected {e}, got {a}"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_skips_todos_and_yaml() {
        let out = "TAP version 13\nok 1 - a\n  ---\n  {\n    \"x\": 1\n  }\n  ...\n\
                   not ok 2 - b\nok 3 # SKIP no hugetlb\nnot ok 4 # TODO later\n\
                   # diag\n1..4\n";
        let s = parse(out, "", &Exit::Code(0));
        let st: Vec<Status> = s.assertions.iter().map(|a| a.status).collect();
        assert_eq!(st, [Status::Pass, Status::Fail, Status::Skip, Status::Todo]);
        assert_eq!(s.assertions[0].detail, "{\n\"x\": 1\n}\n");
        assert_eq!(s.assertions[2].description, "no hugetlb");
        assert_eq!(s.assertions[1].description, "b");
        assert_eq!(s.parts, [(Some(4), 4)]);
        assert_eq!(s.program_failure, None);
    }

    #[test]
    fn empty_plan_with_error_block_is_a_failure() {
        let out =
            "TAP version 13\n  ---\n  {\n    \"error\": \"create failed\"\n  }\n  ...\n1..0\n";
        let s = parse(out, "", &Exit::Code(0));
        assert!(s.assertions.is_empty());
        assert_eq!(
            s.program_failure.as_deref(),
            Some("error before any result: create failed")
        );
    }

    #[test]
    fn exit_status_missing_plan_and_short_plan() {
        let s = parse(
            "ok 1 - a\n1..1\n",
            "x\nclose_range: EPERM\nexit status 1\n",
            &Exit::Code(1),
        );
        assert_eq!(
            s.program_failure.as_deref(),
            Some("exit status 1: close_range: EPERM")
        );
        let s = parse("ok 1 - a\n", "", &Exit::Code(0));
        assert_eq!(s.program_failure.as_deref(), Some("no plan line"));
        let s = parse("1..3\nok 1 - a\n", "", &Exit::Code(0));
        assert_eq!(
            s.program_failure.as_deref(),
            Some("planned 3 results, printed 1")
        );
        let s = parse("", "", &Exit::Code(0));
        assert!(s.silent_pass);
        assert_eq!(s.program_failure, None);
        let s = parse("", "", &Exit::TimedOut(60));
        assert_eq!(s.program_failure.as_deref(), Some("timed out after 60 s"));
    }

    #[test]
    fn several_streams_number_on() {
        let out = "TAP version 13\nok 1 - a\nok 2 - b\n1..2\nTAP version 13\nok 1 - c\n1..1\n";
        let s = parse(out, "", &Exit::Code(0));
        let n: Vec<u32> = s.assertions.iter().map(|a| a.number).collect();
        assert_eq!(n, [1, 2, 3]);
        assert_eq!(s.program_failure, None);
        let s = parse(
            "TAP version 13\nok 1 - a\n1..1\nTAP version 13\n1..0\n",
            "",
            &Exit::Code(0),
        );
        assert_eq!(s.program_failure, None);
        let s = parse(
            "TAP version 13\n1..2\nok 1 - a\nTAP version 13\n1..0\n",
            "",
            &Exit::Code(0),
        );
        assert_eq!(
            s.program_failure.as_deref(),
            Some("stream 1: planned 2 results, printed 1")
        );
    }

    #[test]
    fn skipped_suite_is_not_a_failure() {
        let s = parse(
            "TAP version 13\n1..1\nok 1 # SKIP no SELinux\n",
            "",
            &Exit::Code(0),
        );
        assert_eq!(s.assertions[0].status, Status::Skip);
        assert_eq!(s.program_failure, None);
    }

    #[test]
    fn summaries() {
        assert_eq!(
            summarize("{\n\"actual\": 3999,\n\"expected\": 3000\n}"),
            "expected 3000, got 3999"
        );
        assert_eq!(
            summarize("{\"error\": \"e\", \"stderr\": \"a\\nlast\\n\"}"),
            "e: last"
        );
        assert_eq!(
            summarize("{\"stdout\": \"ok 1 - a\\nnot ok 2 - b\\n\", \"stderr\": \"\"}"),
            "inside: not ok 2 - b"
        );
        assert_eq!(summarize("{\"reference\": \"r\"}"), "");
    }

    #[test]
    fn yaml_error_reads_json_and_yaml_forms() {
        assert_eq!(
            yaml_error("{\n\"error\": \"boom\",\n}").as_deref(),
            Some("boom")
        );
        assert_eq!(yaml_error("error: bad\n").as_deref(), Some("bad"));
        assert_eq!(yaml_error("{\"stdout\": \"\"}"), None);
    }
}
