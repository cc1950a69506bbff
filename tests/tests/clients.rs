//! What podman and the containerd shim rely on, checked on rrc alone (the
//! clients themselves run in `cargo xtask clients`).

use std::process::Stdio;

use rr_tests::{require_env, stderr, stdout, unique_id, TestEnv};
use serde_json::{json, Value};

/// Each line of a `--log-format json` log, parsed.
fn log_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is not JSON: {e}")))
        .collect()
}

/// The shim shows the log's last error line: every failure must be there,
/// including a command line that does not parse and a failed create.
#[test]
fn every_error_reaches_the_json_log() {
    require_env!();
    let env = TestEnv::new(&["/no/such/binary"]);
    let log = env.dir.path().join("log.json");
    let l = log.to_str().unwrap();
    let id = unique_id("jsonlog");
    let b = env.bundle.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--log", l, "--log-format", "json", "state", "nosuch"],
            "nosuch",
        ),
        (
            vec![
                "--log",
                l,
                "--log-format",
                "json",
                "create",
                "--bogus-flag",
                "x",
            ],
            "--bogus-flag",
        ),
        (
            vec!["--log", l, "--log-format", "json", "create", "-b", b, &id],
            "/no/such/binary",
        ),
    ];
    for (args, needle) in cases {
        let before = log_lines(&log).len();
        let out = env.rrc(&args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let lines = log_lines(&log);
        assert_eq!(lines.len(), before + 1, "{args:?}: {lines:?}");
        let last = &lines[lines.len() - 1];
        assert_eq!(last["level"], "error", "{last}");
        assert!(last["msg"].as_str().unwrap().contains(needle), "{last}");
        assert!(last["time"].as_str().unwrap().contains('T'), "{last}");
    }
    env.assert_no_leftovers(&id);
}

/// containerd's go-runc writes some flags Go-style, with one dash.
#[test]
fn single_dash_long_flags_are_accepted() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    let log = env.dir.path().join("log.json");
    let out = env.rrc(&[
        "-log",
        log.to_str().unwrap(),
        "-log-format=json",
        "state",
        "nosuch",
    ]);
    assert!(!out.status.success());
    assert!(log_lines(&log)[0]["msg"]
        .as_str()
        .unwrap()
        .contains("nosuch"));
}

#[test]
fn features_is_the_spec_document() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    let out = env.rrc(&["features"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("features is JSON");
    assert_eq!(v["ociVersionMin"], "1.0.0");
    let has = |p: &Value, n: &str| p.as_array().unwrap().iter().any(|x| x == n);
    assert!(has(&v["hooks"], "createRuntime"));
    assert!(has(&v["mountOptions"], "tmpcopyup"));
    assert!(has(&v["linux"]["namespaces"], "cgroup"));
    assert!(has(&v["linux"]["seccomp"]["actions"], "SCMP_ACT_ERRNO"));
    // Applied with a listenerPath (seccomp_notify.rs tests it).
    assert!(has(&v["linux"]["seccomp"]["actions"], "SCMP_ACT_NOTIFY"));
    assert_eq!(v["linux"]["cgroup"]["systemd"], false);
}

/// `podman run --read-only` mounts tmpfs with `tmpcopyup` on /tmp, /run
/// and /var/tmp: the tmpfs gets what the rootfs had there.
#[test]
fn tmpcopyup_fills_the_tmpfs_from_the_rootfs() {
    require_env!();
    let env = TestEnv::new(&[
        "sh",
        "-c",
        "cat /seed/f; ls -l /seed/l; stat -c %a /seed/d; grep ' /seed ' /proc/self/mounts; touch /seed/new && echo writable",
    ]);
    let seed = env.bundle.join("rootfs/seed");
    std::fs::create_dir_all(seed.join("d")).unwrap();
    std::fs::write(seed.join("f"), "seeded\n").unwrap();
    std::os::unix::fs::symlink("f", seed.join("l")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(seed.join("d"), std::fs::Permissions::from_mode(0o710)).unwrap();
    env.edit_config(|c| {
        c["root"]["readonly"] = json!(true);
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/seed", "type": "tmpfs", "source": "tmpfs",
            "options": ["rw", "nosuid", "nodev", "tmpcopyup"]}));
    });
    let id = unique_id("copyup");
    let out = env.rrc_bundle("run", &[&id]);
    let o = stdout(&out);
    assert!(out.status.success(), "{}{o}", stderr(&out));
    assert!(o.contains("seeded"), "{o}");
    assert!(o.contains("-> f"), "{o}");
    assert!(o.contains("\n710\n"), "{o}");
    assert!(o.contains("tmpfs /seed tmpfs"), "{o}");
    assert!(o.contains("writable"), "{o}");
    // The rootfs under the tmpfs is untouched.
    assert!(!seed.join("new").exists());
    env.assert_no_leftovers(&id);
}

/// conmon and the shim give the host's /dev/null as stdio; the container
/// gets its own /dev/null instead (CRIU cannot dump a file of a mount the
/// container does not have).
#[test]
fn host_dev_null_stdio_becomes_the_containers() {
    require_env!();
    let env = TestEnv::new(&[
        "sh",
        "-c",
        "stat -L -c '%d:%i' /proc/self/fd/0 /dev/null >&2",
    ]);
    let id = unique_id("devnull");
    let mut cmd = env.rrc_cmd(&["run", "-b", env.bundle.to_str().unwrap(), &id]);
    let errf = env.dir.path().join("err");
    cmd.stdin(Stdio::from(std::fs::File::open("/dev/null").unwrap()))
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&errf).unwrap()));
    let st = cmd.status().unwrap();
    let e = std::fs::read_to_string(&errf).unwrap();
    assert!(st.success(), "{e}");
    let lines: Vec<&str> = e.lines().filter(|l| l.contains(':')).collect();
    assert_eq!(lines.len(), 2, "{e}");
    assert_eq!(
        lines[0], lines[1],
        "stdin is not the container's /dev/null: {e}"
    );
    env.assert_no_leftovers(&id);
}

/// Without a cgroup namespace, /sys/fs/cgroup/<controller> in the
/// container is its own cgroup: the limits read inside are its own.
#[test]
fn cgroup_mount_shows_the_containers_own_cgroup() {
    require_env!();
    if !std::path::Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists() {
        eprintln!("skipped: no cgroup v1 memory hierarchy at /sys/fs/cgroup/memory");
        return;
    }
    let env = TestEnv::new(&["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]);
    env.edit_config(|c| {
        c["linux"]["resources"]["memory"] = json!({"limit": 67108864});
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "cgroup");
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}));
    });
    let id = unique_id("cgview");
    let out = env.rrc_bundle("run", &[&id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "67108864");
    env.assert_no_leftovers(&id);
}
