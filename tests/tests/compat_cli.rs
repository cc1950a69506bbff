//! What engines and test suites see of rrc, compared with runc 1.1.5: the
//! shape of errors on stderr, exit codes, signal 0, `events` key order,
//! `spec` output and checkpoint flag checks.

use rr_tests::{require_env, stderr, unique_id, TestEnv};

/// Whether `line` is a logrus text line at level error whose message
/// contains `needle`.
fn is_text_error(line: &str, needle: &str) -> bool {
    line.starts_with("time=\"") && line.contains(" level=error msg=") && line.contains(needle)
}

#[test]
fn errors_on_stderr_are_log_lines() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    let id = unique_id("noexist");

    // Text (the default): one logrus line, as runc writes it.
    let out = env.rrc(&["state", &id]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(is_text_error(lines[0], "does not exist"), "{err}");
    assert!(!err.contains("rrc: "), "{err}");

    // JSON: one object with level, msg and time.
    let out = env.rrc(&["--log-format", "json", "state", &id]);
    let err = stderr(&out);
    let v: serde_json::Value = serde_json::from_str(err.trim()).expect("one JSON line");
    assert_eq!(v["level"], "error", "{err}");
    assert!(v["msg"].as_str().unwrap_or("").contains("does not exist"));

    // With --log: the line goes to the file and stderr gets the message only.
    let log = env.dir.path().join("rrc.log");
    let logs = log.to_str().expect("utf-8 path");
    let out = env.rrc(&["--log", logs, "state", &id]);
    let err = stderr(&out);
    assert!(err.trim().ends_with("does not exist"), "{err}");
    assert!(!err.contains("level=error"), "{err}");
    let text = std::fs::read_to_string(&log).expect("log file");
    assert!(is_text_error(text.trim(), "does not exist"), "{text}");

    // A usage error is an error line too.
    let out = env.rrc(&["state", &id, "extra"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(is_text_error(err.trim(), "extra"), "{err}");
}

/// Starts `sleep 1000` detached and returns its id.
fn run_sleeper(env: &TestEnv, prefix: &str) -> String {
    let id = unique_id(prefix);
    let b = env.bundle.to_str().unwrap_or(".").to_string();
    let out = env.rrc_detached(&["run", "-b", &b, "-d", &id]);
    assert!(out.status.success(), "run -d: {}", stderr(&out));
    id
}

#[test]
fn kill_signal_zero_checks_liveness() {
    require_env!();
    let env = TestEnv::new(&["sleep", "1000"]);
    let id = run_sleeper(&env, "kill0");
    let out = env.rrc(&["kill", &id, "0"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(env.state(&id)["status"], "running", "signal 0 did harm");
    let out = env.rrc(&["kill", &id, "KILL"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while env.state(&id)["status"] != "stopped" {
        assert!(std::time::Instant::now() < deadline, "init did not stop");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // A stopped container fails the probe, as runc's "container not running".
    let out = env.rrc(&["kill", &id, "0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not running"), "{}", stderr(&out));
    let out = env.rrc(&["delete", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    env.assert_no_leftovers(&id);
}

#[test]
fn exec_own_errors_exit_255() {
    require_env!();
    let env = TestEnv::new(&["sleep", "1000"]);
    let id = run_sleeper(&env, "exec255");
    let out = env.rrc(&["exec", &id, "sh", "-c", "exit 1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let out = env.rrc(&["exec", &id, "no-such-program"]);
    assert_eq!(out.status.code(), Some(255), "{}", stderr(&out));
    let out = env.rrc(&["exec", &unique_id("nothere"), "true"]);
    assert_eq!(out.status.code(), Some(255), "{}", stderr(&out));
    let out = env.rrc(&["exec", "-d", &id, "no-such-program"]);
    assert_eq!(out.status.code(), Some(255), "{}", stderr(&out));
    let out = env.rrc(&["delete", "-f", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    env.assert_no_leftovers(&id);
}

#[test]
fn events_keys_in_runc_order() {
    require_env!();
    let env = TestEnv::new(&["sleep", "1000"]);
    let id = run_sleeper(&env, "evorder");
    let out = env.rrc(&["events", "--stats", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = rr_tests::stdout(&out);
    let head = format!("{{\"type\":\"stats\",\"id\":\"{id}\",\"data\":{{\"cpu\":");
    assert!(text.starts_with(&head), "{text}");
    let out = env.rrc(&["delete", "-f", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    env.assert_no_leftovers(&id);
}

/// `rrc spec` and, when runc is installed, `runc spec` in a fresh directory.
fn spec_of(tool: &std::path::Path, dir: &std::path::Path, rootless: bool) -> serde_json::Value {
    std::fs::create_dir_all(dir).expect("spec dir");
    let mut c = std::process::Command::new(tool);
    c.current_dir(dir).arg("spec");
    if rootless {
        c.arg("--rootless");
    }
    let out = rr_tests::detached(c);
    assert!(
        out.status.success(),
        "{} spec: {}",
        tool.display(),
        stderr(&out)
    );
    let text = std::fs::read_to_string(dir.join("config.json")).expect("config.json");
    serde_json::from_str(&text).expect("config.json is JSON")
}

#[test]
fn spec_has_a_cgroup_namespace_only_on_unified_hosts() {
    require_env!();
    let tmp = tempfile::tempdir().expect("tmp");
    let unified = rr_container::default_spec::host_is_unified();
    for rootless in [false, true] {
        let v = spec_of(
            &rr_tests::rrc_bin(),
            &tmp.path().join(format!("rrc{rootless}")),
            rootless,
        );
        let cgns = v["linux"]["namespaces"]
            .as_array()
            .expect("namespaces")
            .iter()
            .filter(|n| n["type"] == "cgroup")
            .count();
        assert_eq!(cgns, usize::from(unified), "rootless {rootless}: {v}");
    }
    // Side by side with runc where it is installed: the same document but
    // for the hostname and one more masked path.
    let Some(runc) = ["/usr/sbin/runc", "/usr/bin/runc"]
        .iter()
        .map(std::path::Path::new)
        .find(|p| p.exists())
    else {
        eprintln!("SKIPPED (runc comparison): runc is not installed");
        return;
    };
    for rootless in [false, true] {
        let mut ours = spec_of(
            &rr_tests::rrc_bin(),
            &tmp.path().join(format!("a{rootless}")),
            rootless,
        );
        let mut theirs = spec_of(runc, &tmp.path().join(format!("b{rootless}")), rootless);
        theirs["hostname"] = ours["hostname"].clone();
        if let Some(m) = ours["linux"]["maskedPaths"].as_array_mut() {
            m.retain(|p| p != "/sys/devices/virtual/powercap");
        }
        assert_eq!(ours, theirs, "rootless {rootless}");
    }
}

/// A pipe (read end, write end), both close-on-exec.
fn pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: fds is a valid out array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both fds were just created and are owned here.
    unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    }
}

/// `rrc run -d` with pipes as the container's stdio (CRIU dumps pipes; a
/// host file would be outside the container). The returned ends keep them open.
fn run_with_pipes(env: &TestEnv, id: &str) -> [std::os::fd::OwnedFd; 2] {
    let (in_r, in_w) = pipe();
    let (out_r, out_w) = pipe();
    let b = env.bundle.to_str().unwrap_or(".").to_string();
    let err_w = out_w.try_clone().expect("dup");
    let status = env
        .rrc_cmd(&["run", "-d", "-b", &b, id])
        .stdin(std::process::Stdio::from(in_r))
        .stdout(std::process::Stdio::from(out_w))
        .stderr(std::process::Stdio::from(err_w))
        .status()
        .expect("spawn rrc run");
    assert!(status.success(), "rrc run -d {id}");
    [in_w, out_r]
}

#[test]
fn checkpoint_parent_path_is_checked_before_criu() {
    require_env!();
    let env = TestEnv::new(&["sleep", "1000"]);
    let id = run_sleeper(&env, "parent");
    let images = env.dir.path().join("images");
    let img = images.to_str().expect("utf-8 path");
    std::fs::create_dir_all(images.join("../afile-dir")).expect("dir");
    std::fs::write(env.dir.path().join("afile"), "x").expect("file");
    // No CRIU at all: each answer must come before rrc looks for one.
    let no_criu = env.dir.path().join("no-criu");
    let no_criu = no_criu.to_str().expect("utf-8 path");
    let cases = [
        ("/abs/parent", "--parent-path must be relative"),
        ("../missing", "invalid --parent-path: stat "),
        ("../afile", "not a directory"),
    ];
    for (parent, want) in cases {
        let out = env.rrc(&[
            "--criu",
            no_criu,
            "checkpoint",
            "--image-path",
            img,
            "--parent-path",
            parent,
            &id,
        ]);
        assert_eq!(out.status.code(), Some(1), "{parent}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(want), "{parent}: {err}");
        assert!(
            !err.contains("no-criu"),
            "{parent}: CRIU was looked for: {err}"
        );
    }
    // A good parent gets past the check, to the missing CRIU.
    let out = env.rrc(&[
        "--criu",
        no_criu,
        "checkpoint",
        "--image-path",
        img,
        "--parent-path",
        "../afile-dir",
        &id,
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no-criu"), "{}", stderr(&out));
    assert_eq!(env.state(&id)["status"], "running");
    let out = env.rrc(&["delete", "-f", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    env.assert_no_leftovers(&id);
}

/// CRIU dumps a file that is open but whose name was removed while another
/// link to it remains only with link-remap: without the flag the dump
/// fails naming the option (and CRIU's log), with it the dump succeeds.
#[test]
fn checkpoint_link_remap_reaches_criu() {
    require_env!();
    let Some(criu) = std::env::var_os("RR_CRIU_BIN").filter(|p| std::path::Path::new(p).is_file())
    else {
        eprintln!(
            "SKIPPED: RR_CRIU_BIN is not set to a CRIU 4.x binary (cargo xtask test builds one)"
        );
        return;
    };
    let criu = criu.to_string_lossy().into_owned();
    let env = TestEnv::new(&[
        "sh",
        "-c",
        "touch /tmp/a && ln /tmp/a /tmp/b && exec 3</tmp/a && rm /tmp/a && echo ready && exec sleep 1000",
    ]);
    env.edit_config(|c| c["root"]["readonly"] = serde_json::Value::Bool(false));
    let id = unique_id("linkremap");
    let pipes = run_with_pipes(&env, &id);
    let mut ready = [0u8; 6];
    let mut r = std::fs::File::from(pipes[1].try_clone().expect("dup"));
    std::io::Read::read_exact(&mut r, &mut ready).expect("container says ready");
    let img = |n: &str| env.dir.path().join(n).display().to_string();
    let (img1, img2) = (img("img1"), img("img2"));
    let base = ["--criu", &criu, "checkpoint", "--leave-running"];
    let out = env.rrc(&[&base[..], &["--image-path", &img1, &id]].concat());
    assert!(!out.status.success(), "dump without --link-remap succeeded");
    let err = stderr(&out);
    assert!(err.contains("link-remap"), "{err}");
    assert!(err.contains(&format!("{img1}/dump.log")), "{err}");
    let out = env.rrc(&[&base[..], &["--link-remap", "--image-path", &img2, &id]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env.state(&id)["status"], "running");
    let out = env.rrc(&["delete", "-f", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    env.assert_no_leftovers(&id);
}

/// Debian's CRIU 3.17.1 fails its vDSO probe on recent kernels and prints
/// an error followed by NUL bytes: rrc's stderr must stay one clean log
/// line that quotes CRIU's words.
#[test]
fn criu_output_never_reaches_our_stderr_raw() {
    require_env!();
    let debian = std::path::Path::new("/usr/sbin/criu");
    if !debian.is_file() {
        eprintln!(
            "SKIPPED: {} is missing (apt-get install -y criu)",
            debian.display()
        );
        return;
    }
    let env = TestEnv::new(&["sleep", "1000"]);
    let id = unique_id("criuout");
    let _pipes = run_with_pipes(&env, &id);
    let img = env.dir.path().join("img").display().to_string();
    let out = env.rrc(&[
        "--criu",
        "/usr/sbin/criu",
        "checkpoint",
        "--leave-running",
        "--image-path",
        &img,
        &id,
    ]);
    let err = stderr(&out);
    if out.status.success() {
        eprintln!("SKIPPED: this kernel lets Debian's CRIU dump; nothing to show");
    } else {
        assert!(!out.stderr.contains(&0), "NUL bytes on stderr: {err:?}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{err}");
        assert!(is_text_error(lines[0], "CRIU"), "{err}");
        assert!(
            !err.trim_end().chars().any(char::is_control),
            "control characters on stderr: {err:?}"
        );
    }
    assert_eq!(env.state(&id)["status"], "running");
    let out = env.rrc(&["delete", "-f", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    env.assert_no_leftovers(&id);
}

/// The container's cgroup directories from state.json, by controller.
fn cgroup_paths(env: &TestEnv, id: &str) -> Vec<(String, std::path::PathBuf)> {
    let text = std::fs::read_to_string(env.root.join(id).join("state.json")).expect("state.json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("state.json is JSON");
    v["cgroup_paths"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, p)| Some((k.clone(), std::path::PathBuf::from(p.as_str()?))))
                .collect()
        })
        .unwrap_or_default()
}

/// The cgroup path of `key` (`pids`, or `` for v2) in /proc/self/cgroup text.
fn cgroup_line<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let mut it = l.splitn(3, ':');
        let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
        ctrls.split(',').any(|c| c == key).then_some(path)
    })
}

#[test]
fn exec_cgroup_runs_in_a_sub_cgroup() {
    require_env!();
    let env = TestEnv::new(&["sleep", "1000"]);
    let id = unique_id("execcg");
    env.edit_config(|c| {
        c["linux"]["cgroupsPath"] = serde_json::json!(format!("/rr-test/{id}"));
        // Host paths in /proc/self/cgroup: `rrc spec` adds a cgroup
        // namespace on a pure v2 host, which would show them relative.
        if let Some(ns) = c["linux"]["namespaces"].as_array_mut() {
            ns.retain(|n| n["type"] != "cgroup");
        }
    });
    let b = env.bundle.to_str().unwrap_or(".").to_string();
    let out = env.rrc_detached(&["run", "-b", &b, "-d", &id]);
    assert!(out.status.success(), "run -d: {}", stderr(&out));
    let paths = cgroup_paths(&env, &id);
    let Some((pids_key, _)) = paths.iter().find(|(k, _)| k == "pids" || k.is_empty()) else {
        panic!("no pids or unified cgroup in {paths:?}");
    };
    let pids_key = pids_key.clone();
    // Co-mounted controllers (cpu,cpuacct) share one directory: make each
    // sub-cgroup once.
    let mut made: Vec<std::path::PathBuf> = paths
        .iter()
        .map(|(_, p)| {
            std::fs::canonicalize(p)
                .unwrap_or_else(|_| p.clone())
                .join("sub")
        })
        .collect();
    made.sort();
    made.dedup();
    for d in &made {
        std::fs::create_dir(d).expect("sub-cgroup");
        // A v1 cpuset cgroup takes no process before it has cpus and mems.
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if let (Some(parent), true) = (d.parent(), d.join(f).exists()) {
                let v = std::fs::read_to_string(parent.join(f)).expect("parent cpuset");
                std::fs::write(d.join(f), v.trim()).expect("sub-cgroup cpuset");
            }
        }
    }
    let own = |text: &str, key: &str| {
        cgroup_line(text, if key.is_empty() { "" } else { key }).map(str::to_string)
    };

    // One path for every hierarchy (the only form on cgroup v2).
    let out = env.rrc(&["exec", "--cgroup", "sub", &id, "cat", "/proc/self/cgroup"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = rr_tests::stdout(&out);
    let want = format!("/rr-test/{id}/sub");
    assert_eq!(
        own(&text, &pids_key).as_deref(),
        Some(want.as_str()),
        "{text}"
    );

    let v1 = !pids_key.is_empty();
    if v1 {
        // controller:path moves only that controller.
        let out = env.rrc(&[
            "exec",
            "--cgroup",
            "pids:sub",
            &id,
            "cat",
            "/proc/self/cgroup",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = rr_tests::stdout(&out);
        assert_eq!(own(&text, "pids").as_deref(), Some(want.as_str()), "{text}");
        let base = format!("/rr-test/{id}");
        assert_eq!(
            own(&text, "freezer").as_deref(),
            Some(base.as_str()),
            "{text}"
        );
        let out = env.rrc(&["exec", "--cgroup", "nosuchctl:sub", &id, "true"]);
        assert_eq!(out.status.code(), Some(255), "{}", stderr(&out));
        assert!(stderr(&out).contains("nosuchctl"), "{}", stderr(&out));
    }
    // A sub-cgroup that does not exist, or one outside the container's.
    for bad in ["missing", "../escape"] {
        let out = env.rrc(&["exec", "--cgroup", bad, &id, "true"]);
        assert_eq!(out.status.code(), Some(255), "{bad}: {}", stderr(&out));
        let name = bad.trim_start_matches("../");
        assert!(stderr(&out).contains(name), "{bad}: {}", stderr(&out));
    }
    for d in &made {
        let _ = std::fs::remove_dir(d);
    }
    let out = env.rrc(&["delete", "-f", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    env.assert_no_leftovers(&id);
}

const ROOTLESS_USER: &str = "rr-rootless-test";

fn tool(name: &str) -> Option<String> {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| format!("{d}/{name}"))
        .find(|p| std::path::Path::new(p).exists())
}

fn id_of(flag: &str, user: &str) -> Option<u32> {
    let out = std::process::Command::new("id")
        .arg(flag)
        .arg(user)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// The test user of tests/rootless.rs (with a /etc/subuid range), made
/// here when missing.
fn rootless_user() -> Option<(u32, u32)> {
    if id_of("-u", ROOTLESS_USER).is_none() {
        let useradd = tool("useradd")?;
        let _ = std::process::Command::new(useradd)
            .args(["-M", "-s", "/bin/sh", ROOTLESS_USER])
            .output();
    }
    Some((id_of("-u", ROOTLESS_USER)?, id_of("-g", ROOTLESS_USER)?))
}

/// Rootless podman runs the runtime as uid 0 of a user namespace it made
/// for a normal user (ids mapped from /etc/subuid), with XDG_RUNTIME_DIR
/// set. rrc must then keep its state under $XDG_RUNTIME_DIR/rrc and, when
/// it may not make cgroups, run without them (no limits asked) or refuse
/// (limits asked), as runc. `unshare --map-auto --map-root-user` as the
/// test user stands for podman here; every step runs in one namespace, as
/// podman's are.
#[test]
fn root_of_a_user_namespace_runs_rootless() {
    require_env!();
    let (Some(unshare), Some(setpriv)) = (tool("unshare"), tool("setpriv")) else {
        eprintln!("SKIPPED: unshare or setpriv (util-linux) is missing");
        return;
    };
    let help = std::process::Command::new(&unshare)
        .arg("--help")
        .output()
        .expect("unshare --help");
    if !String::from_utf8_lossy(&help.stdout).contains("--map-auto") {
        eprintln!("SKIPPED: this unshare has no --map-auto (util-linux 2.38 or newer)");
        return;
    }
    let Some((uid, gid)) = rootless_user() else {
        panic!("no user {ROOTLESS_USER}, and useradd could not make one");
    };
    let env = TestEnv::new(&["sleep", "1000"]);
    let rrc = env.dir.path().join("rrc");
    std::fs::copy(rr_tests::rrc_bin(), &rrc).expect("copy rrc");
    let xdg = env.dir.path().join("xdg");
    std::fs::create_dir(&xdg).expect("mkdir xdg");
    let limited = env.dir.path().join("limited");
    std::fs::create_dir(&limited).expect("mkdir limited");
    let mut spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.config_path()).expect("config"))
            .expect("json");
    spec["linux"]["resources"]["memory"] = serde_json::json!({"limit": 100_000_000});
    spec["root"]["path"] = serde_json::json!(env.bundle.join("rootfs"));
    std::fs::write(limited.join("config.json"), spec.to_string()).expect("write config");
    let chown = std::process::Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{gid}"))
        .arg(env.dir.path())
        .output()
        .expect("chown");
    assert!(chown.status.success(), "chown: {}", stderr(&chown));

    let id = unique_id("userns");
    let script = format!(
        "R={rrc}; cat /proc/self/uid_map | head -1; \
         $R run -d -b {bundle} {id} </dev/null >/dev/null 2>run.err; echo run=$?; cat run.err; \
         test -f $XDG_RUNTIME_DIR/rrc/{id}/state.json && echo state-under-xdg; \
         $R list -q; \
         $R exec {id} sh -c 'echo exec-uid=$(id -u)'; echo exec=$?; \
         $R kill {id} KILL; echo kill=$?; \
         i=0; while [ $i -lt 100 ] && ! $R state {id} | grep -q '\"stopped\"'; do sleep 0.1; i=$((i+1)); done; \
         $R delete {id}; echo delete=$?; \
         $R run -d -b {limited} {id}-mem </dev/null >/dev/null 2>mem.err; echo mem=$?; cat mem.err; \
         test -e $XDG_RUNTIME_DIR/rrc/{id}-mem || echo mem-clean",
        rrc = rrc.display(),
        bundle = env.bundle.display(),
        limited = limited.display(),
    );
    let mut cmd = std::process::Command::new(&setpriv);
    cmd.args([
        &format!("--reuid={uid}"),
        &format!("--regid={gid}"),
        "--clear-groups",
        &unshare,
        "--user",
        "--map-auto",
        "--map-root-user",
        "sh",
        "-c",
        &script,
    ])
    .env_clear()
    .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    .env("XDG_RUNTIME_DIR", &xdg)
    .env("USER", ROOTLESS_USER)
    .current_dir(env.dir.path());
    let out = rr_tests::detached(cmd);
    let text = format!("{}{}", rr_tests::stdout(&out), stderr(&out));
    let map: Vec<&str> = text
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(map, ["0", &uid.to_string(), "1"], "{text}");
    for want in [
        "run=0",
        "state-under-xdg",
        &id,
        "exec-uid=0",
        "exec=0",
        "kill=0",
        "delete=0",
        "mem-clean",
    ] {
        assert!(
            text.lines().any(|l| l.trim() == want),
            "no line {want:?} in:\n{text}"
        );
    }
    let denied = !text.contains("mem=0");
    if denied {
        // No delegation (cgroup v1 here): limits cannot be had, and the
        // refusal says which field.
        assert!(text.contains("linux.resources"), "{text}");
        assert!(
            text.contains("level=warning") && text.contains("rootless"),
            "{text}"
        );
    }
    assert!(!std::path::Path::new("/run/rrc").join(&id).exists());
    let left = rr_tests::processes_mentioning(&id);
    assert!(left.is_empty(), "processes left: {left:?}");
}

#[test]
fn messages_unquote_log_lines() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    // A value that needs every kind of escape.
    let id = "a\"b";
    let out = env.rrc(&["state", id]);
    assert!(!out.status.success());
    let raw = stderr(&out);
    let plain = rr_tests::messages(&out);
    // rrc's message names the id as `"a\"b"`; the log line escapes that again.
    let named = "invalid container id \"a\\\"b\"";
    assert!(plain.starts_with(named), "{plain}");
    assert!(is_text_error(raw.trim(), "invalid container id"), "{raw}");
    assert!(!raw.contains(named), "{raw}");
}

/// `--criu` is a flag before any command (runc's global) and also after
/// `checkpoint` and `restore`, where the later one wins; after other
/// commands it is refused, as runc does. No CRIU is needed: the path shows
/// in the error of starting it.
#[test]
fn criu_flag_before_and_after_the_command() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    let id = unique_id("criuflag");
    let img = env.dir.path().join("img");
    let img = img.to_str().expect("utf-8 path");
    let bundle = env.bundle.to_str().expect("utf-8 path");
    let restore = |before: Option<&str>, after: Option<&str>| {
        let mut args = Vec::new();
        if let Some(p) = before {
            args.extend(["--criu", p]);
        }
        args.push("restore");
        if let Some(p) = after {
            args.extend(["--criu", p]);
        }
        args.extend(["--image-path", img, "--bundle", bundle, &id]);
        env.rrc(&args)
    };
    for (before, after, want) in [
        (Some("/nonexistent/criu-before"), None, "criu-before"),
        (None, Some("/nonexistent/criu-after"), "criu-after"),
        (
            Some("/nonexistent/criu-before"),
            Some("/nonexistent/criu-after"),
            "criu-after",
        ),
    ] {
        let out = restore(before, after);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(&format!("/nonexistent/{want}")), "{err}");
    }
    let out = env.rrc(&["delete", "--criu", "/nonexistent/criu", &id]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
