//! The scale part of `cargo xtask bench`: N containers started with
//! `run -d` at once, as a node starting many pods does, then N `delete -f`
//! at once, for each runtime in turn. For each burst: the wall time from
//! the first spawn to the last exit, the median and the slowest single
//! command, each command timed from its own spawn to its own exit. Against
//! the single-container medians of the same two commands (run one at a
//! time) this shows commands that wait on each other: a lock convoy on the
//! state root would make the slowest command many times the single one.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Instant;

use serde_json::{json, Value};

use crate::bench::Runtime;
use crate::Result;

/// Bursts of each runtime; each statistic is taken over all of them.
const ROUNDS: usize = 3;
/// One-at-a-time runs of each command for the single-container median.
const SINGLE_RUNS: usize = 10;
/// What the issue asks: no command in a burst slower than this many
/// single-container medians.
const MAX_SLOWDOWN: f64 = 5.0;

/// One burst's commands: their times and the first failure, if any.
#[derive(Default)]
struct Phase {
    /// Wall time of each burst, first spawn to last exit.
    totals: Vec<f64>,
    /// Each command's own time, over all bursts.
    each: Vec<f64>,
    failures: usize,
    first_error: Option<String>,
}

/// One command's burst and its single-container samples, of a runtime.
type PickPhase = fn(&Scale) -> (&Phase, &Vec<f64>);

/// One runtime's results.
struct Scale {
    name: &'static str,
    run: Phase,
    delete: Phase,
    single_run: Vec<f64>,
    single_delete: Vec<f64>,
}

/// What the scale pass measured, for the table and the JSON.
pub(crate) struct ScaleReport {
    n: usize,
    runtimes: Vec<Scale>,
}

/// Runs the scale pass with `n` containers per burst. The bundle's process
/// must keep running (the caller sets `sleep`).
pub(crate) fn measure(rts: &[Runtime], bundle: &str, n: usize, work: &Path) -> Result<ScaleReport> {
    eprintln!("bench: {n} containers at once, {ROUNDS} rounds");
    let mut out: Vec<Scale> = rts
        .iter()
        .map(|rt| Scale {
            name: rt.name,
            run: Phase::default(),
            delete: Phase::default(),
            single_run: Vec::new(),
            single_delete: Vec::new(),
        })
        .collect();
    for (j, rt) in rts.iter().enumerate() {
        single(rt, bundle, &mut out[j])?;
    }
    for round in 0..ROUNDS {
        for k in 0..rts.len() {
            let j = (round + k) % rts.len();
            let rt = &rts[j];
            let ids: Vec<String> = (0..n).map(|i| format!("scale{round}-{i}")).collect();
            let run = |id: &str| {
                ["run", "-d", "--bundle", bundle, id]
                    .map(String::from)
                    .to_vec()
            };
            burst(rt, &ids, &run, work, &mut out[j].run)?;
            let delete = |id: &str| ["delete", "-f", id].map(String::from).to_vec();
            burst(rt, &ids, &delete, work, &mut out[j].delete)?;
            // Whatever a failed command left, so the next burst starts clean.
            for id in &ids {
                let _ = rt.cmd(&["delete", "-f", id]).status();
            }
            crate::bench::reap_orphans();
        }
    }
    Ok(ScaleReport { n, runtimes: out })
}

/// The single-container medians: `run -d` and `delete -f`, one at a time.
fn single(rt: &Runtime, bundle: &str, s: &mut Scale) -> Result<()> {
    for i in 0..SINGLE_RUNS {
        let id = format!("single{i}");
        let t = Instant::now();
        let st = rt
            .cmd(&["run", "-d", "--bundle", bundle, &id])
            .stderr(Stdio::null())
            .status();
        s.single_run.push(ms(t));
        if !st.is_ok_and(|s| s.success()) {
            return Err(format!("{} run -d {id} failed", rt.name));
        }
        let t = Instant::now();
        let st = rt
            .cmd(&["delete", "-f", &id])
            .stderr(Stdio::null())
            .status();
        s.single_delete.push(ms(t));
        if !st.is_ok_and(|s| s.success()) {
            return Err(format!("{} delete -f {id} failed", rt.name));
        }
        crate::bench::reap_orphans();
    }
    Ok(())
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// Spawns one command per id at once and waits for all of them, reaping
/// whatever else exits meanwhile (container inits reparented to us: a
/// zombie init would make `delete -f` wait for it).
fn burst(
    rt: &Runtime,
    ids: &[String],
    args: &dyn Fn(&str) -> Vec<String>,
    work: &Path,
    phase: &mut Phase,
) -> Result<()> {
    let t0 = Instant::now();
    let mut running: HashMap<i32, (Instant, Child, std::path::PathBuf)> = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        let err = work.join(format!("scale-err-{i}"));
        let file = std::fs::File::create(&err).map_err(|e| format!("{}: {e}", err.display()))?;
        let argv = args(id);
        let mut cmd = rt.cmd(&argv.iter().map(String::as_str).collect::<Vec<_>>());
        cmd.stderr(file);
        let t = Instant::now();
        let child = cmd.spawn().map_err(|e| format!("spawning {cmd:?}: {e}"))?;
        running.insert(child.id() as i32, (t, child, err));
    }
    while !running.is_empty() {
        let mut st = 0;
        // SAFETY: waits for any child of ours; st is a valid out pointer.
        let pid = unsafe { libc::waitpid(-1, &mut st, 0) };
        if pid < 0 {
            return Err(format!("waitpid: {}", std::io::Error::last_os_error()));
        }
        let Some((t, _child, err)) = running.remove(&pid) else {
            continue;
        };
        phase.each.push(ms(t));
        if !(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0) {
            phase.failures += 1;
            if phase.first_error.is_none() {
                let text = std::fs::read_to_string(&err).unwrap_or_default();
                phase.first_error = Some(format!("{} {:?}: {}", rt.name, args("ID"), text.trim()));
            }
        }
        let _ = std::fs::remove_file(&err);
    }
    phase.totals.push(ms(t0));
    Ok(())
}

fn median(v: &[f64]) -> Option<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len().checked_sub(1)? / 2).copied()
}

fn max(v: &[f64]) -> Option<f64> {
    v.iter().copied().max_by(f64::total_cmp)
}

impl ScaleReport {
    fn crun(&self) -> Option<&Scale> {
        self.runtimes.iter().find(|s| s.name == "crun")
    }

    /// The scale rows of the bench table.
    pub(crate) fn print(&self) {
        println!(
            "\n{:<10} {:<6} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8}",
            format!("x{}", self.n),
            "rt",
            "total",
            "median",
            "slowest",
            "single",
            "/crun",
            "slow/1"
        );
        for (op, pick) in Self::ops() {
            for s in &self.runtimes {
                let (phase, single) = pick(s);
                let total = median(&phase.totals).unwrap_or(0.0);
                let vs_crun = self
                    .crun()
                    .and_then(|c| median(&pick(c).0.totals))
                    .map_or("-".into(), |c| format!("{:.2}x", total / c));
                let single_med = median(single).unwrap_or(0.0);
                let slowest = max(&phase.each).unwrap_or(0.0);
                let mut line = format!(
                    "{op:<10} {:<6} {:>7.1}ms {:>7.2}ms {:>7.1}ms {:>7.2}ms {:>8} {:>7.1}x",
                    s.name,
                    total,
                    median(&phase.each).unwrap_or(0.0),
                    slowest,
                    single_med,
                    vs_crun,
                    slowest / single_med.max(f64::MIN_POSITIVE),
                );
                if phase.failures > 0 {
                    line.push_str(&format!(" ({} failed)", phase.failures));
                }
                println!("{line}");
            }
        }
        println!(
            "(x{}: {} commands at once, {ROUNDS} rounds; total: median wall of a burst; median/slowest: single commands in the bursts; single: one at a time; slow/1: slowest / single, goal <= {MAX_SLOWDOWN}x)",
            self.n, self.n
        );
        for s in &self.runtimes {
            for p in [&s.run, &s.delete] {
                if let Some(e) = &p.first_error {
                    println!("first failure: {e}");
                }
            }
        }
    }

    fn ops() -> [(&'static str, PickPhase); 2] {
        [
            ("run -d", |s| (&s.run, &s.single_run)),
            ("delete -f", |s| (&s.delete, &s.single_delete)),
        ]
    }

    /// The scale results for latest.json.
    pub(crate) fn json(&self) -> Value {
        let mut rts = serde_json::Map::new();
        for s in &self.runtimes {
            let mut ops = serde_json::Map::new();
            for (op, pick) in Self::ops() {
                let (phase, single) = pick(s);
                let total = median(&phase.totals);
                let crun_total = self.crun().and_then(|c| median(&pick(c).0.totals));
                let single_med = median(single);
                let slowest = max(&phase.each);
                ops.insert(
                    op.split_whitespace().next().unwrap_or(op).into(),
                    json!({
                        "total_ms": phase.totals,
                        "total_median_ms": total,
                        "total_vs_crun": total.zip(crun_total).map(|(a, b)| a / b),
                        "each_median_ms": median(&phase.each),
                        "each_slowest_ms": slowest,
                        "single_median_ms": single_med,
                        "slowest_vs_single": slowest.zip(single_med).map(|(a, b)| a / b),
                        "failures": phase.failures,
                        "first_error": phase.first_error,
                    }),
                );
            }
            rts.insert(s.name.into(), Value::Object(ops));
        }
        json!({"containers": self.n, "rounds": ROUNDS, "max_slowdown_goal": MAX_SLOWDOWN, "runtimes": rts})
    }
}
