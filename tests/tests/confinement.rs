//! seccomp, sysctls, AppArmor/SELinux requests and hooks, through the real
//! `rrc` binary, checked from inside the container and from the hooks.

use std::path::{Path, PathBuf};

use rr_tests::{require_env, stderr, stdout, unique_id, TestEnv};
use serde_json::{json, Value};

/// Compiled in: the e2e VM runs this binary without the source tree.
fn fixture() -> Value {
    serde_json::from_str(include_str!("../fixtures/seccomp-default.json")).expect("json")
}

/// The filters the host already put us under, which the container inherits.
fn host_filters() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Seccomp_filters:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn default_like_profile_runs_busybox_and_denies_what_it_leaves_out() {
    require_env!();
    let env = TestEnv::new(&[
        "sh",
        "-c",
        "grep ^Seccomp /proc/self/status; ls /bin >/dev/null && echo ls-ok; \
         unshare -n true; echo unshare=$?; echo $(cat /proc/self/personality 2>/dev/null) done",
    ]);
    env.edit_config(|c| c["linux"]["seccomp"] = fixture());
    let id = unique_id("seccomp");
    let out = env.rrc_bundle("run", &[&id]);
    let o = stdout(&out);
    let e = stderr(&out);
    assert!(out.status.success(), "{e}");
    assert!(o.contains("Seccomp:\t2"), "{o}");
    let want = format!("Seccomp_filters:\t{}", host_filters() + 1);
    assert!(o.contains(&want), "{o}");
    assert!(o.contains("ls-ok"), "{o}");
    // unshare is left out: the default action's EPERM.
    assert!(o.contains("unshare=1"), "{o}");
    assert!(e.contains("Operation not permitted"), "{e}");
    env.assert_no_leftovers(&id);
}

#[test]
fn custom_errno_ret_is_returned() {
    require_env!();
    let env = TestEnv::new(&["sh", "-c", "mkdir /tmp/x; echo mkdir=$?"]);
    env.edit_config(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28},
                {"names": ["no_such_syscall_rr"], "action": "SCMP_ACT_ERRNO"}
            ]
        })
    });
    let id = unique_id("errno");
    let out = env.rrc_bundle("run", &[&id]);
    let e = stderr(&out);
    assert!(out.status.success(), "{e}");
    assert!(stdout(&out).contains("mkdir=1"), "{}", stdout(&out));
    // ENOSPC, the profile's errno.
    assert!(e.contains("No space left on device"), "{e}");
    // An unknown name is skipped with a warning, which goes to stderr
    // only when there is no log file (rrc's stderr is the container's
    // under podman and containerd, which pass --log).
    assert!(
        e.contains("unknown syscall") && e.contains("no_such_syscall_rr"),
        "{e}"
    );
    env.assert_no_leftovers(&id);
    let log = env.dir.path().join("rrc.log");
    let mut cmd = env.rrc_cmd(&[]);
    cmd.args(["--log", log.to_str().unwrap_or("")]);
    let b = env.bundle.to_str().unwrap_or(".").to_string();
    cmd.args(["run", "-b", &b, &id]);
    let out = rr_tests::detached(cmd);
    let e = stderr(&out);
    assert!(out.status.success(), "{e}");
    assert!(!e.contains("no_such_syscall_rr"), "{e}");
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(logged.contains("no_such_syscall_rr"), "{logged}");
    env.assert_no_leftovers(&id);
}

/// An exec'd process is under the container's filter too: the same errno
/// for the denied syscall, one filter more than the host's.
#[test]
fn exec_runs_under_the_containers_filter() {
    require_env!();
    let env = TestEnv::new(&["sleep", "1000"]);
    env.edit_config(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28}
            ]
        })
    });
    let id = unique_id("exec-seccomp");
    let b = env.bundle.to_str().unwrap_or(".").to_string();
    let out = env.rrc_detached(&["run", "-b", &b, "-d", &id]);
    assert!(out.status.success(), "run -d: {}", stderr(&out));
    let out = env.rrc(&[
        "exec",
        &id,
        "sh",
        "-c",
        "grep ^Seccomp /proc/self/status; mkdir /tmp/y; echo mkdir=$?",
    ]);
    let (o, e) = (stdout(&out), stderr(&out));
    let _ = env.rrc(&["delete", "-f", &id]);
    assert!(out.status.success(), "{e}");
    assert!(o.contains("Seccomp:\t2"), "{o}");
    let want = format!("Seccomp_filters:\t{}", host_filters() + 1);
    assert!(o.contains(&want), "{o}");
    assert!(o.contains("mkdir=1"), "{o}");
    assert!(e.contains("No space left on device"), "{e}");
    env.assert_no_leftovers(&id);
}

fn assert_create_fails(env: &TestEnv, id: &str, needle: &str) {
    let out = env.rrc_bundle("create", &[id]);
    assert!(!out.status.success(), "create succeeded");
    let e = stderr(&out);
    assert!(e.contains(needle), "error does not name {needle:?}: {e}");
    env.assert_no_leftovers(id);
}

#[test]
fn bad_seccomp_profiles_fail_create_cleanly() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    env.edit_config(|c| {
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_BOGUS"});
    });
    assert_create_fails(&env, &unique_id("badact"), "SCMP_ACT_BOGUS");
    env.edit_config(|c| {
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_NOPE"]});
    });
    assert_create_fails(&env, &unique_id("badarch"), "SCMP_ARCH_NOPE");
    env.edit_config(|c| {
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 3}]});
    });
    assert_create_fails(&env, &unique_id("badret"), "linux.seccomp.syscalls[0]");
}

#[test]
fn namespaced_sysctls_are_written_others_refused() {
    require_env!();
    let env = TestEnv::new(&[
        "cat",
        "/proc/sys/net/ipv4/ip_forward",
        "/proc/sys/kernel/shmmni",
    ]);
    env.edit_config(|c| {
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"});
    });
    let id = unique_id("sysctl");
    let out = env.rrc_bundle("run", &[&id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "1\n1234\n");
    env.assert_no_leftovers(&id);
    // The host's values are untouched.
    assert_ne!(
        std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap_or_default(),
        "1234\n"
    );

    env.edit_config(|c| c["linux"]["sysctl"] = json!({"kernel.pid_max": "4000"}));
    assert_create_fails(&env, &unique_id("sysctl-host"), "kernel.pid_max");
    env.edit_config(|c| {
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
        let ns = c["linux"]["namespaces"].as_array_mut().expect("namespaces");
        ns.retain(|n| n["type"] != "network");
    });
    assert_create_fails(&env, &unique_id("sysctl-nons"), "net.ipv4.ip_forward");
}

#[test]
fn lsm_requests_fail_clearly_when_the_host_has_none() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    if std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.starts_with('Y'))
        || Path::new("/sys/fs/selinux/enforce").exists()
    {
        eprintln!("SKIPPED: this host has AppArmor or SELinux enabled");
        return;
    }
    env.edit_config(|c| c["process"]["apparmorProfile"] = "rr-test-profile".into());
    assert_create_fails(&env, &unique_id("apparmor"), "AppArmor is not enabled");
    env.edit_config(|c| {
        c["process"]["apparmorProfile"] = Value::Null;
        c["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0".into();
    });
    assert_create_fails(&env, &unique_id("selinux"), "SELinux is not enabled");
}

/// A hook that logs its kind, its mount namespace and its stdin.
fn logging_hook(kind: &str, dir: &str) -> Value {
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!(
            "cat > {dir}/{kind}.json; echo {kind} $(readlink /proc/self/ns/mnt) >> {dir}/order")],
    })
}

fn read(p: PathBuf) -> String {
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn hooks_run_in_order_with_the_state_they_should_see() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    let out_dir = env.bundle.join("rootfs/hooks-out");
    std::fs::create_dir_all(&out_dir).expect("mkdir");
    let host = out_dir.display().to_string();
    env.edit_config(|c| {
        c["root"]["readonly"] = false.into();
        c["hooks"] = json!({
            "prestart": [logging_hook("prestart", &host)],
            "createRuntime": [logging_hook("createRuntime", &host)],
            "createContainer": [logging_hook("createContainer", &host)],
            // Resolved and run inside the container, after pivot_root.
            "startContainer": [logging_hook("startContainer", "/hooks-out")],
            "poststart": [logging_hook("poststart", &host)],
            "poststop": [logging_hook("poststop", &host)],
        });
    });
    let id = unique_id("hooks");
    // The waiting init keeps the stdio it was given: with pipes, reading
    // create's output to the end would wait for the container to exit.
    let err_file = env.dir.path().join("create.err");
    let status = env
        .rrc_cmd(&["create", "-b", &env.bundle.display().to_string(), &id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err_file).expect("create.err"))
        .status()
        .expect("spawn rrc");
    assert!(status.success(), "{}", read(err_file));
    let pid = env.state(&id)["pid"].as_i64().expect("pid");
    let out = env.rrc(&["start", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while env.state(&id)["status"] != "stopped" && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = env.rrc(&["delete", &id]);
    assert!(out.status.success(), "{}", stderr(&out));

    let my_mnt = std::fs::read_link("/proc/self/ns/mnt").expect("ns");
    let my_mnt = my_mnt.display().to_string();
    let order = read(out_dir.join("order"));
    let lines: Vec<(&str, &str)> = order.lines().filter_map(|l| l.split_once(' ')).collect();
    let kinds: Vec<&str> = lines.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        kinds,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ],
        "{order}"
    );
    for (kind, mnt) in &lines {
        let in_runtime = matches!(
            *kind,
            "prestart" | "createRuntime" | "poststart" | "poststop"
        );
        assert_eq!(in_runtime, *mnt == my_mnt, "{kind} ran in mount ns {mnt}");
    }
    for (kind, status) in [
        ("prestart", "creating"),
        ("createRuntime", "creating"),
        ("createContainer", "creating"),
        ("startContainer", "created"),
        ("poststart", "running"),
        ("poststop", "stopped"),
    ] {
        let st: Value = serde_json::from_str(&read(out_dir.join(format!("{kind}.json"))))
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(st["status"], status, "{kind}: {st}");
        assert_eq!(st["id"], id.as_str(), "{kind}: {st}");
        assert_eq!(
            st["bundle"],
            env.bundle.display().to_string(),
            "{kind}: {st}"
        );
        if kind != "poststop" {
            assert_eq!(st["pid"], pid, "{kind}: {st}");
        }
    }
    env.assert_no_leftovers(&id);
}

#[test]
fn hanging_hook_is_killed_at_its_timeout_and_create_fails() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    let marker = env.dir.path().join("hook-pid");
    env.edit_config(|c| {
        c["hooks"] = json!({"createRuntime": [{
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("echo $$ > {}; exec sleep 600", marker.display())],
            "timeout": 1
        }]});
    });
    let id = unique_id("hook-timeout");
    assert_create_fails(&env, &id, "timed out");
    let pid = read(marker);
    assert!(
        !Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "the hook {pid} is still running"
    );
}

#[test]
fn failing_create_hooks_fail_create_and_failing_poststart_only_warns() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    let fail = json!([{"path": "/bin/sh", "args": ["sh", "-c", "echo broken-hook >&2; exit 3"]}]);
    for kind in ["createRuntime", "createContainer", "prestart"] {
        env.edit_config(|c| c["hooks"] = json!({ kind: fail.clone() }));
        assert_create_fails(&env, &unique_id("hook-fail"), "broken-hook");
    }
    env.edit_config(|c| c["hooks"] = json!({"poststart": fail.clone(), "poststop": fail.clone()}));
    let id = unique_id("poststart");
    let out = env.rrc_bundle("run", &[&id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(e.contains("warning: poststart hook"), "{e}");
    assert!(e.contains("warning: poststop hook"), "{e}");
    env.assert_no_leftovers(&id);

    // A failing startContainer hook stops the process from running.
    let env = TestEnv::new(&["sh", "-c", "echo user-process-ran"]);
    env.edit_config(|c| c["hooks"] = json!({"startContainer": fail.clone()}));
    let id = unique_id("startc");
    let out = env.rrc_bundle("run", &[&id]);
    assert!(
        !stdout(&out).contains("user-process-ran"),
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("broken-hook"), "{}", stderr(&out));
    env.assert_no_leftovers(&id);
}

#[test]
fn hook_paths_must_be_absolute() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    env.edit_config(|c| c["hooks"] = json!({"poststop": [{"path": "sh"}]}));
    assert_create_fails(&env, &unique_id("hook-rel"), "hooks.poststop[0].path");
}
