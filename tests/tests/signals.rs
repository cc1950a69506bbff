//! Foreground `rrc run` forwards the signals it gets to the container's
//! init and exits with the container's status; a SIGKILLed foreground run
//! leaves a container that `delete -f` removes completely.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};

use rr_tests::{require_env, stderr, unique_id, watchdog, TestEnv};

/// A container that announces itself, then turns each signal into its own
/// line of output and exit code.
const TRAPPER: &str = "trap 'echo got-TERM; exit 10' TERM; \
     trap 'echo got-INT; exit 11' INT; \
     trap 'echo got-USR1; exit 12' USR1; \
     trap 'echo got-HUP; exit 13' HUP; \
     echo ready; while true; do sleep 0.05; done";

fn send(pid: u32, sig: libc::c_int) {
    // SAFETY: kill with plain integers on our own child.
    assert_eq!(
        unsafe { libc::kill(pid as i32, sig) },
        0,
        "kill {pid} {sig}"
    );
}

/// Reads the child's stdout until `line`.
fn wait_line(child: &mut Child, line: &str) -> Vec<String> {
    let out = child.stdout.as_mut().expect("stdout piped");
    let mut seen = Vec::new();
    for l in BufReader::new(out).lines() {
        let l = l.expect("read stdout");
        let done = l == line;
        seen.push(l);
        if done {
            break;
        }
    }
    seen
}

#[test]
fn foreground_run_forwards_signals() {
    require_env!();
    let env = TestEnv::new(&["sh", "-c", TRAPPER]);
    // rrc started with SIGINT ignored (`nohup`, many CI runners) and as
    // usual: the container's shell can trap it in both cases.
    for ignore_int in [true, false] {
        for (sig, name, code) in [
            (libc::SIGTERM, "TERM", 10),
            (libc::SIGINT, "INT", 11),
            (libc::SIGUSR1, "USR1", 12),
            (libc::SIGHUP, "HUP", 13),
        ] {
            forwards_one(&env, ignore_int, (sig, name, code));
        }
    }
}

/// One `rrc run` that gets `sig` and must pass it on to the trapping shell.
fn forwards_one(env: &TestEnv, ignore_int: bool, (sig, name, code): (libc::c_int, &str, i32)) {
    let id = unique_id("sig");
    let b = env.bundle.display().to_string();
    let mut cmd = env.rrc_cmd(&["run", "-b", &b, &id]);
    if ignore_int {
        // SAFETY: signal() is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_IGN);
                Ok(())
            })
        };
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rrc run");
    let done = watchdog(env, &id, child.id(), 60);
    let before = wait_line(&mut child, "ready");
    assert_eq!(
        before.last().map(String::as_str),
        Some("ready"),
        "{before:?}"
    );
    send(child.id(), sig);
    let out = child.wait_with_output().expect("wait rrc run");
    let _ = done.send(());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("got-{name}")),
        "SIG{name} (SIGINT ignored: {ignore_int}): stdout {text:?}, stderr {}",
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(code), "SIG{name}: {}", stderr(&out));
    let left = env.leftovers(&id);
    assert!(left.is_empty(), "SIG{name}: leftovers {left:?}");
}

#[test]
fn sigkilled_foreground_run_is_cleaned_by_delete_force() {
    require_env!();
    let env = TestEnv::new(&["sh", "-c", "echo ready; exec sleep 600"]);
    let id = unique_id("sigkill");
    let b = env.bundle.display().to_string();
    let mut child = env
        .rrc_cmd(&["run", "-b", &b, &id])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rrc run");
    let done = watchdog(&env, &id, child.id(), 60);
    wait_line(&mut child, "ready");
    let _ = done.send(());
    child.kill().expect("SIGKILL rrc run");
    child.wait().expect("reap rrc run");
    // The container outlives its runtime and is still known.
    let state = env.state(&id);
    assert_eq!(state["status"], "running", "{state}");
    let pid = state["pid"].as_i64().unwrap_or(0) as i32;
    let start = rr_tests::leftovers::recorded_init(&env.root, &id).expect("state.json");
    let o = env.rrc(&["delete", "-f", &id]);
    assert!(o.status.success(), "delete -f: {}", stderr(&o));
    assert!(
        !rr_tests::leftovers::alive(pid, start.1),
        "init {pid} survived delete -f"
    );
    let left = env.leftovers(&id);
    assert!(left.is_empty(), "leftovers {left:?}");
}
