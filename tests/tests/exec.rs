//! `rrc exec`: exit codes, flags, namespaces, detach, refused states; each
//! checked from inside the container.

use rr_tests::{require_env, stderr, stdout, unique_id, TestEnv};
use serde_json::json;

/// A running container whose init sleeps, with a hostname to recognise its
/// uts namespace.
fn running(env: &TestEnv, prefix: &str) -> String {
    env.edit_config(|c| {
        c["hostname"] = json!("exec-test-host");
    });
    let id = unique_id(prefix);
    let b = env.bundle.to_str().unwrap_or(".").to_string();
    let out = env.rrc_detached(&["run", "-b", &b, "-d", &id]);
    assert!(out.status.success(), "run -d: {}", stderr(&out));
    id
}

#[test]
fn exit_codes() {
    require_env!();
    let env = TestEnv::new(&["sleep", "1000"]);
    let id = running(&env, "exec-codes");
    let out = env.rrc(&["exec", &id, "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    let out = env.rrc(&["exec", &id, "true"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = env.rrc(&["exec", &id, "sh", "-c", "kill -9 $$"]);
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    let out = env.rrc(&["exec", &id, "no-such-program"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(stderr(&out).contains("no-such-program"), "{}", stderr(&out));
    let out = env.rrc(&["delete", "-f", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    env.assert_no_leftovers(&id);
}

#[test]
fn joins_the_container_and_applies_flags() {
    require_env!();
    let env = TestEnv::new(&["sleep", "1000"]);
    let id = running(&env, "exec-flags");
    let script = "echo FOO=$FOO; pwd; id -u; id -g; id -G; hostname; \
                  cat /proc/1/cmdline | tr '\\0' ' '; echo; \
                  test -e /bin/busybox && echo has-busybox";
    let out = env.rrc(&[
        "exec",
        "-e",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "-u",
        "1000:1001",
        "-g",
        "5",
        &id,
        "sh",
        "-c",
        script,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "FOO=bar", "{text}");
    assert_eq!(lines[1], "/tmp", "{text}");
    assert_eq!(lines[2], "1000", "{text}");
    assert_eq!(lines[3], "1001", "{text}");
    assert!(lines[4].split(' ').any(|g| g == "5"), "{text}");
    assert_eq!(lines[5], "exec-test-host", "{text}");
    assert_eq!(lines[6].trim(), "sleep 1000", "{text}");
    assert_eq!(lines[7], "has-busybox", "{text}");

    // Every namespace of the init, seen from inside (as root, who may look
    // at pid 1).
    let script = "for n in pid mnt uts ipc net cgroup; do \
                  [ $(readlink /proc/self/ns/$n) = $(readlink /proc/1/ns/$n) ] || echo differs $n; \
                  done; echo checked";
    let out = env.rrc(&["exec", &id, "sh", "-c", script]);
    assert_eq!(stdout(&out).trim(), "checked", "{}", stderr(&out));

    // --cap adds to the effective set; without it CAP_NET_ADMIN (bit 12)
    // is not among the default spec's.
    let capeff = |extra: &[&str]| {
        let mut args = vec!["exec"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[&id, "grep", "CapEff", "/proc/self/status"]);
        let out = env.rrc(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        let t = stdout(&out);
        u64::from_str_radix(t.split_whitespace().nth(1).unwrap_or("0"), 16).unwrap_or(0)
    };
    assert_eq!(capeff(&[]) & (1 << 12), 0);
    assert_ne!(capeff(&["--cap", "CAP_NET_ADMIN"]) & (1 << 12), 0);

    let out = env.rrc(&[
        "exec",
        "--no-new-privs",
        &id,
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    ]);
    assert!(stdout(&out).contains('1'), "{}", stdout(&out));

    // A process file replaces the spec's process.
    let pf = env.dir.path().join("process.json");
    std::fs::write(
        &pf,
        json!({"args": ["sh", "-c", "echo from-file $X; exit 4"], "cwd": "/",
               "env": ["X=y", "PATH=/bin"], "user": {"uid": 0, "gid": 0}})
        .to_string(),
    )
    .expect("write process.json");
    let out = env.rrc(&["exec", "--process", pf.to_str().unwrap_or(""), &id]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "from-file y");

    // The message is a quoted log value: its quotes are escaped.
    let out = env.rrc(&["exec", "-u", "root", &id, "true"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("\\\"root\\\""), "{}", stderr(&out));

    let out = env.rrc(&["delete", "-f", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    env.assert_no_leftovers(&id);
}

#[test]
fn detach_writes_the_pid_file() {
    require_env!();
    let env = TestEnv::new(&["sleep", "1000"]);
    let id = running(&env, "exec-detach");
    let pf = env.dir.path().join("exec.pid");
    let out = env.rrc_detached(&[
        "exec",
        "-d",
        "--pid-file",
        pf.to_str().unwrap_or(""),
        &id,
        "sleep",
        "999",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pid: i32 = std::fs::read_to_string(&pf)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).expect("exec'd process alive");
    assert_eq!(cmd, b"sleep\0999\0");
    let init = env.state(&id)["pid"].as_i64().unwrap_or(0);
    let ns = |p: i64| std::fs::read_link(format!("/proc/{p}/ns/pid")).expect("ns");
    assert_eq!(ns(pid as i64), ns(init));
    let out = env.rrc(&["delete", "-f", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    env.assert_no_leftovers(&id);
}

#[test]
fn exec_into_created_and_stopped() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    let id = unique_id("exec-stopped");
    let b = env.bundle.to_str().unwrap_or(".").to_string();
    let out = env.rrc_detached(&["create", "-b", &b, &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    // A created container takes execs (as runc's do).
    let out = env.rrc(&["exec", &id, "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let out = env.rrc(&["start", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    // `true` exits at once; wait for the state to say so.
    for _ in 0..200 {
        if env.state(&id)["status"] == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let out = env.rrc(&["exec", &id, "true"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("stopped"), "{}", stderr(&out));
    let out = env.rrc(&["exec", "no-such-container-xyz", "true"]);
    assert!(!out.status.success());
    let out = env.rrc(&["delete", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    env.assert_no_leftovers(&id);
}
