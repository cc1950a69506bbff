//! `cargo xtask conformance [runtime-tools|cri]`: public conformance suites
//! run against rrc and, side by side on the same machine, against Debian's
//! runc, so that every difference shows.
//!
//! Each suite gives, per runtime, a status for every test it ran. This module
//! turns those into one table (the tests either runtime fails, with why),
//! JSON with every test, a closing count line, and the verdict: the command
//! fails when rrc fails a test that runc passes, or a test that is not in the
//! checked-in list of failures runc shares here (`SHARED_FAILURES`, with the
//! reason for each).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub use crate::conformance_tap::Status;
use crate::Result;

/// The checked-in list of failures that runc shares on this machine.
const SHARED_FAILURES: &str = "xtask/conformance-shared-failures.txt";

/// The runtime under test and the reference, in table order.
pub const RRC: &str = "rrc";
pub const RUNC: &str = "runc";

/// Options every suite takes from the command line.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// Only these test programs / focus (for a quick look; empty = all).
    pub only: Vec<String>,
    /// Build the report from the last run's saved logs; run nothing.
    pub reparse: bool,
}

pub fn main(args: &[String]) -> ExitCode {
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("xtask conformance: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<bool> {
    let (suites, opts) = parse_args(args)?;
    let shared = load_shared()?;
    let out = out_dir();
    std::fs::create_dir_all(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    let mut reports = Vec::new();
    for suite in suites {
        let report = match suite {
            "runtime-tools" => crate::conformance_rt::run(&opts)?,
            "cri" => match crate::conformance_cri::run(&opts)? {
                Some(r) => r,
                None => continue,
            },
            other => return Err(format!("unknown suite {other}")),
        };
        reports.push(report);
    }
    let mut good = true;
    for r in &reports {
        good &= finish_suite(r, &shared, &out)?;
    }
    let (rrc, runc) = reports.iter().fold(((0, 0), (0, 0)), |acc, r| {
        let a = r.counts(RRC);
        let b = r.counts(RUNC);
        (
            (acc.0 .0 + a.0, acc.0 .1 + a.1),
            (acc.1 .0 + b.0, acc.1 .1 + b.1),
        )
    });
    println!(
        "conformance: rrc {} passed, {} failed; runc {} passed, {} failed",
        rrc.0, rrc.1, runc.0, runc.1
    );
    Ok(good)
}

fn parse_args(args: &[String]) -> Result<(Vec<&'static str>, Options)> {
    let mut suites = Vec::new();
    let mut opts = Options::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "runtime-tools" => suites.push("runtime-tools"),
            "cri" => suites.push("cri"),
            "--reparse" => opts.reparse = true,
            "--only" => {
                let v = it.next().ok_or("--only needs a comma-separated list")?;
                opts.only
                    .extend(v.split(',').filter(|s| !s.is_empty()).map(String::from));
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: cargo xtask conformance \
                     [runtime-tools|cri] [--only NAME,...] [--reparse]"
                ))
            }
        }
    }
    if suites.is_empty() {
        suites = vec!["runtime-tools", "cri"];
    }
    Ok((suites, opts))
}

/// Where reports and work files go.
pub fn out_dir() -> PathBuf {
    crate::target_dir().join("conformance")
}

/// One runtime's result for one test.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub status: Status,
    /// What went wrong (or the suite's diagnostic), one line.
    pub detail: String,
}

/// Identifies a test: a group (a program, a spec) and an item within it,
/// empty for the group as a whole. Items are named by what they check, not
/// by their number, because one runtime can print an extra result that
/// shifts the numbers of every later one.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub group: String,
    pub item: String,
}

impl Key {
    pub fn whole(group: &str) -> Self {
        Key {
            group: group.into(),
            item: String::new(),
        }
    }

    /// `group` or `group: item`, as the shared-failures list names tests.
    pub fn name(&self) -> String {
        if self.item.is_empty() {
            self.group.clone()
        } else {
            format!("{}: {}", self.group, self.item)
        }
    }
}

/// One test's row: its description and each runtime's outcome.
#[derive(Clone, Debug, Default)]
pub struct Row {
    /// Position in the suite's output (the TAP number), for ordering.
    pub order: u32,
    pub by_runtime: BTreeMap<String, Outcome>,
}

/// Everything one suite found, for both runtimes.
#[derive(Debug, Default)]
pub struct Report {
    pub suite: String,
    /// What was run, pinned (shown in the table's heading).
    pub source: String,
    pub rows: BTreeMap<Key, Row>,
    /// Groups each runtime ran to the end (a group-level key absent for a
    /// runtime that ran the group means that runtime passed it as a whole).
    pub groups_run: BTreeMap<String, Vec<String>>,
    /// Seconds each phase took (build, each runtime's run).
    pub seconds: Vec<(String, f64)>,
}

impl Report {
    pub fn new(suite: &str, source: &str) -> Self {
        Report {
            suite: suite.into(),
            source: source.into(),
            ..Default::default()
        }
    }

    pub fn record(&mut self, runtime: &str, key: Key, order: u32, outcome: Outcome) {
        let row = self.rows.entry(key).or_default();
        if row.order == 0 || order < row.order {
            row.order = order;
        }
        row.by_runtime.insert(runtime.to_string(), outcome);
    }

    /// Rows in the order the suite printed them.
    fn ordered(&self) -> Vec<(&Key, &Row)> {
        let mut v: Vec<(&Key, &Row)> = self.rows.iter().collect();
        v.sort_by(|a, b| {
            (&a.0.group, a.1.order, &a.0.item).cmp(&(&b.0.group, b.1.order, &b.0.item))
        });
        v
    }

    pub fn group_ran(&mut self, runtime: &str, group: &str) {
        self.groups_run
            .entry(runtime.to_string())
            .or_default()
            .push(group.to_string());
    }

    /// (passed, failed) of one runtime; skips and TODOs count as neither.
    pub fn counts(&self, runtime: &str) -> (usize, usize) {
        let mut c = (0, 0);
        for row in self.rows.values() {
            match row.by_runtime.get(runtime).map(|o| o.status) {
                Some(Status::Pass) => c.0 += 1,
                Some(Status::Fail) => c.1 += 1,
                _ => {}
            }
        }
        c
    }

    /// The status a runtime had, counting a group it ran without a
    /// group-level failure as passed at group level.
    fn status(&self, runtime: &str, key: &Key) -> Option<Status> {
        let row = self.rows.get(key)?;
        if let Some(o) = row.by_runtime.get(runtime) {
            return Some(o.status);
        }
        let ran = self
            .groups_run
            .get(runtime)
            .is_some_and(|g| g.contains(&key.group));
        (key.item.is_empty() && ran).then_some(Status::Pass)
    }
}

/// A line of the shared-failures list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shared {
    pub suite: String,
    /// A test name, or a prefix ending in `*`.
    pub pattern: String,
    pub reason: String,
}

impl Shared {
    /// A line that explains a failure of runc's alone (rrc is right there)
    /// starts its reason with `runc wrong:` and never excuses rrc.
    fn excuses_rrc(&self) -> bool {
        !self.reason.starts_with("runc wrong:")
    }

    /// A line whose reason starts with `racy:` names a test whose outcome
    /// depends on timing for either runtime: rrc failing it is excused even
    /// in a run where runc happened to pass it.
    fn racy(&self) -> bool {
        self.reason.starts_with("racy:")
    }

    fn matches(&self, suite: &str, name: &str) -> bool {
        self.suite == suite
            && match self.pattern.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => name == self.pattern,
            }
    }
}

/// Parses `suite | test | reason` lines; `#` starts a comment line.
pub fn parse_shared(text: &str) -> Result<Vec<Shared>> {
    let mut list = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.splitn(3, " | ").map(str::trim).collect();
        match parts[..] {
            [suite, pattern, reason] if !reason.is_empty() && !pattern.is_empty() => {
                list.push(Shared {
                    suite: suite.into(),
                    pattern: pattern.into(),
                    reason: reason.into(),
                })
            }
            _ => {
                return Err(format!(
                    "{SHARED_FAILURES} line {}: want `suite | test | reason`, got {line:?}",
                    i + 1
                ))
            }
        }
    }
    Ok(list)
}

fn load_shared() -> Result<Vec<Shared>> {
    let path = crate::project_root().join(SHARED_FAILURES);
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    parse_shared(&text)
}

/// Why a row is in the table, and whether it breaks the verdict.
fn judge_row(report: &Report, key: &Key, shared: &[Shared]) -> Option<(String, bool)> {
    let rrc = report.status(RRC, key);
    let runc = report.status(RUNC, key);
    if rrc != Some(Status::Fail) && runc != Some(Status::Fail) {
        return None;
    }
    let name = key.name();
    let listed = shared.iter().find(|s| s.matches(&report.suite, &name));
    let row = &report.rows[key];
    let detail = |rt: &str| {
        row.by_runtime
            .get(rt)
            .map(|o| o.detail.clone())
            .unwrap_or_default()
    };
    Some(match (rrc, runc, listed) {
        (Some(Status::Fail), Some(Status::Pass), Some(s)) if s.racy() => {
            (format!("{} (runc passed it this run)", s.reason), false)
        }
        (Some(Status::Fail), Some(Status::Pass), _) => (
            format!("REGRESSION: runc passes; rrc: {}", detail(RRC)),
            true,
        ),
        (Some(Status::Fail), _, Some(s)) if s.excuses_rrc() => (s.reason.clone(), false),
        (Some(Status::Fail), _, Some(s)) => (
            format!(
                "rrc fails where runc is known wrong ({}); rrc: {}",
                s.reason,
                detail(RRC)
            ),
            true,
        ),
        (Some(Status::Fail), _, None) => {
            (format!("NOT LISTED as shared: rrc: {}", detail(RRC)), true)
        }
        (_, _, Some(s)) => (s.reason.clone(), false),
        _ => (format!("runc only: {}", detail(RUNC)), false),
    })
}

fn cell(status: Option<Status>) -> &'static str {
    match status {
        Some(Status::Pass) => "pass",
        Some(Status::Fail) => "FAIL",
        Some(Status::Skip) => "skip",
        Some(Status::Todo) => "todo",
        None => "-",
    }
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|");
    if flat.chars().count() > max {
        let cut: String = flat.chars().take(max).collect();
        format!("{cut}…")
    } else {
        flat
    }
}

/// Writes the table and JSON of one suite, prints the table and its count
/// line, and returns whether the suite's verdict is good.
fn finish_suite(r: &Report, shared: &[Shared], out: &Path) -> Result<bool> {
    let mut md = String::new();
    let mut bad = Vec::new();
    let (a, b) = (r.counts(RRC), r.counts(RUNC));
    let _ = writeln!(md, "### {} ({})\n", r.suite, r.source);
    let _ = writeln!(md, "| test | rrc | runc | why |\n| --- | --- | --- | --- |");
    let mut tests = Vec::new();
    for (key, row) in r.ordered() {
        let (rrc, runc) = (r.status(RRC, key), r.status(RUNC, key));
        let judged = judge_row(r, key, shared);
        if let Some((why, breaks)) = &judged {
            let name = one_line(&key.name(), 110);
            let _ = writeln!(
                md,
                "| {name} | {} | {} | {} |",
                cell(rrc),
                cell(runc),
                one_line(why, 160)
            );
            if *breaks {
                bad.push(key.name());
            }
        }
        tests.push(serde_json::json!({
            "test": key.name(),
            "order": row.order,
            "rrc": cell(rrc),
            "runc": cell(runc),
            "why": judged.as_ref().map(|j| j.0.clone()),
            "breaks_verdict": judged.as_ref().is_some_and(|j| j.1),
        }));
    }
    let count = format!(
        "conformance {}: rrc {} passed, {} failed; runc {} passed, {} failed",
        r.suite, a.0, a.1, b.0, b.1
    );
    let times: Vec<String> = r
        .seconds
        .iter()
        .map(|(what, s)| format!("{what} {s:.0} s"))
        .collect();
    let _ = writeln!(md, "\n{count} (times: {})", times.join(", "));
    let json = serde_json::json!({
        "suite": r.suite,
        "source": r.source,
        "rrc": {"passed": a.0, "failed": a.1},
        "runc": {"passed": b.0, "failed": b.1},
        "seconds": r.seconds.iter().map(|(k, v)| (k.clone(), *v)).collect::<BTreeMap<_, _>>(),
        "verdict_breakers": bad,
        "tests": tests,
    });
    let md_path = out.join(format!("{}.md", r.suite));
    let json_path = out.join(format!("{}.json", r.suite));
    std::fs::write(&md_path, &md).map_err(|e| format!("writing {}: {e}", md_path.display()))?;
    let pretty = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
    std::fs::write(&json_path, pretty)
        .map_err(|e| format!("writing {}: {e}", json_path.display()))?;
    print!("{md}");
    println!(
        "(table: {}, JSON: {})",
        md_path.display(),
        json_path.display()
    );
    if !bad.is_empty() {
        eprintln!(
            "conformance {}: {} test(s) break the verdict (rrc fails where runc passes, \
             or outside {SHARED_FAILURES}): {}",
            r.suite,
            bad.len(),
            bad.join(", ")
        );
    }
    Ok(bad.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(status: Status) -> Outcome {
        Outcome {
            status,
            detail: "d".into(),
        }
    }

    fn key(g: &str, n: u32) -> Key {
        Key {
            group: g.into(),
            item: if n == 0 {
                String::new()
            } else {
                format!("check {n}")
            },
        }
    }

    #[test]
    fn shared_list_parses_and_matches_prefixes() {
        let list = parse_shared(
            "# comment\n\nruntime-tools | linux_cgroups_memory#* | no kmem limits\n\
             cri | a test | with | pipes\n",
        )
        .unwrap();
        assert_eq!(list.len(), 2);
        assert!(list[0].matches("runtime-tools", "linux_cgroups_memory#3"));
        assert!(!list[0].matches("cri", "linux_cgroups_memory#3"));
        assert_eq!(list[1].reason, "with | pipes");
        assert!(parse_shared("runtime-tools | x\n").is_err());
    }

    #[test]
    fn verdict_rules() {
        let shared = parse_shared(
            "s | listed | reason L\ns | runcwrong* | runc wrong: it is\ns | both* | runc wrong: x\n\
             s | flaky* | racy: timing\n",
        )
        .unwrap();
        let mut r = Report::new("s", "src");
        r.record(RRC, key("listed", 0), 0, out(Status::Fail));
        r.record(RUNC, key("listed", 0), 0, out(Status::Fail));
        r.record(RRC, key("regress", 1), 1, out(Status::Fail));
        r.record(RUNC, key("regress", 1), 1, out(Status::Pass));
        r.record(RRC, key("unlisted", 1), 1, out(Status::Fail));
        r.record(RRC, key("runcwrong", 1), 1, out(Status::Pass));
        r.record(RUNC, key("runcwrong", 1), 1, out(Status::Fail));
        r.record(RRC, key("both", 1), 1, out(Status::Fail));
        r.record(RUNC, key("both", 1), 1, out(Status::Fail));
        // rrc failed a whole program that runc ran cleanly.
        r.record(RRC, key("whole", 0), 0, out(Status::Fail));
        r.group_ran(RUNC, "whole");
        // A racy test runc happened to pass this run.
        r.record(RRC, key("flaky", 1), 1, out(Status::Fail));
        r.record(RUNC, key("flaky", 1), 1, out(Status::Pass));
        let j = |g: &str, n: u32| judge_row(&r, &key(g, n), &shared);
        assert_eq!(j("listed", 0), Some(("reason L".into(), false)));
        assert!(j("regress", 1).unwrap().1);
        assert!(j("unlisted", 1).unwrap().1);
        assert_eq!(j("runcwrong", 1), Some(("runc wrong: it is".into(), false)));
        // A runc-wrong line does not excuse rrc failing the same test.
        assert!(j("both", 1).unwrap().1);
        assert!(j("whole", 0).unwrap().0.starts_with("REGRESSION"));
        assert!(!j("flaky", 1).unwrap().1);
        assert_eq!(r.counts(RRC), (1, 6));
        assert_eq!(r.counts(RUNC), (2, 3));
    }
}
