//! Many rrc processes at once: on distinct ids nothing interferes or leaks;
//! on one id every operation either works or fails with a clear error, and
//! the state file is never seen half-written.

use std::process::Output;
use std::sync::Arc;
use std::thread;

use rr_tests::{require_env, stderr, unique_id, TestEnv};

/// Runs `f(i)` for `i` in `0..n`, `width` threads at a time, and returns
/// the results in order.
fn parallel<T: Send + 'static>(
    n: usize,
    width: usize,
    f: impl Fn(usize) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let f = Arc::new(f);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let handles: Vec<_> = (0..width)
        .map(|_| {
            let f = Arc::clone(&f);
            let next = Arc::clone(&next);
            thread::spawn(move || {
                let mut out = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= n {
                        break out;
                    }
                    out.push((i, f(i)));
                }
            })
        })
        .collect();
    let mut all: Vec<(usize, T)> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("worker thread"))
        .collect();
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, t)| t).collect()
}

fn no_panic(what: &str, o: &Output) {
    let err = stderr(o);
    assert!(
        !err.contains("panicked") && o.status.code() != Some(101),
        "{what} panicked: {err}"
    );
}

#[test]
fn hundred_containers_in_parallel() {
    require_env!();
    let env = Arc::new(TestEnv::new(&["sleep", "600"]));
    let prefix = unique_id("par");
    let e = Arc::clone(&env);
    let p = prefix.clone();
    let failures: Vec<String> = parallel(100, 16, move |i| {
        let id = format!("{p}-{i}");
        let mut errs = Vec::new();
        for args in [
            vec!["create", "-b", e.bundle.to_str().unwrap_or("."), &id],
            vec!["start", &id],
            vec!["delete", "-f", &id],
        ] {
            let o = e.rrc(&args);
            no_panic(args[0], &o);
            if !o.status.success() {
                errs.push(format!("{id}: rrc {}: {}", args[0], stderr(&o)));
                let _ = e.rrc(&["delete", "-f", &id]);
                break;
            }
        }
        errs
    })
    .into_iter()
    .flatten()
    .collect();
    let left: Vec<String> = (0..100)
        .flat_map(|i| env.leftovers(&format!("{prefix}-{i}")))
        .collect();
    assert!(failures.is_empty(), "failures: {failures:#?}");
    assert!(left.is_empty(), "leftovers: {left:#?}");
}

/// What an operation on a contended id may answer besides success.
const CLEAR_ERRORS: &[&str] = &[
    "does not exist",
    "already exists",
    "not running",
    "cannot start",
    "cannot delete",
    "has stopped",
    "is not running",
    "busy",
    "not stopped",
    "locked by another process",
    " is created: ",
    " is running: ",
    " is stopped: ",
    " is paused: ",
    "the init is not running",
    "the init closed exec.fifo",
];

/// The racing operations; those this rrc does not have yet fail with
/// "not supported" and are accepted as such.
const OPS: &[&[&str]] = &[
    &["create", "-b", "{bundle}", "{id}"],
    &["start", "{id}"],
    &["state", "{id}"],
    &["kill", "{id}", "KILL"],
    &["delete", "{id}"],
    &["delete", "-f", "{id}"],
    &["pause", "{id}"],
];

#[test]
fn twenty_operations_on_one_id() {
    require_env!();
    let env = Arc::new(TestEnv::new(&["sleep", "600"]));
    for round in 0..3 {
        let id = unique_id("one");
        // A fixed permutation per round: every op in every position, no
        // random source needed.
        let plan: Vec<usize> = (0..20).map(|i| (i * 3 + round * 5) % OPS.len()).collect();
        let e = Arc::clone(&env);
        let id2 = id.clone();
        let root = env.root.clone();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // A reader that keeps parsing state.json while the ops run.
        let reader = {
            let stop = Arc::clone(&stop);
            let path = root.join(&id).join("state.json");
            thread::spawn(move || {
                let mut bad = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok(b) = std::fs::read(&path) {
                        if serde_json::from_slice::<serde_json::Value>(&b).is_err() {
                            bad.push(String::from_utf8_lossy(&b).into_owned());
                        }
                    }
                }
                bad
            })
        };
        let results = parallel(20, 20, move |i| {
            let args: Vec<String> = OPS[plan[i]]
                .iter()
                .map(|a| match *a {
                    "{id}" => id2.clone(),
                    "{bundle}" => e.bundle.display().to_string(),
                    other => other.to_string(),
                })
                .collect();
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            (args.join(" "), e.rrc(&refs))
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let torn = reader.join().expect("reader");
        assert!(torn.is_empty(), "state.json seen half-written: {torn:?}");
        for (what, o) in &results {
            no_panic(what, o);
            if o.status.success() {
                continue;
            }
            let err = stderr(o);
            let unsupported = err.contains("not supported by this version of rrc yet")
                || err.contains("unrecognized subcommand");
            assert!(
                unsupported || CLEAR_ERRORS.iter().any(|m| err.contains(m)),
                "rrc {what}: unclear error: {err}"
            );
        }
        let o = env.rrc(&["delete", "-f", &id]);
        assert!(o.status.success(), "final delete -f: {}", stderr(&o));
        let left = env.leftovers(&id);
        assert!(left.is_empty(), "leftovers of {id}: {left:#?}");
    }
}
