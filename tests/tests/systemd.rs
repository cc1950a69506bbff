//! `--systemd-cgroup`: the container's cgroup as a transient systemd unit.
//!
//! Most tests need a host whose PID 1 is systemd with its system bus (the
//! VM of `cargo xtask e2e --mode systemd`) and skip elsewhere; the refusal
//! of malformed paths needs no systemd and runs everywhere.

use std::path::{Path, PathBuf};
use std::process::Command;

use rr_tests::cg::*;
use rr_tests::{messages, require_env, stderr, unique_id, TestEnv};
use serde_json::json;

/// Why the driver cannot be tested here, if it cannot.
fn no_systemd() -> Option<String> {
    if !Path::new("/run/systemd/system").is_dir() {
        return Some("the host did not boot with systemd (no /run/systemd/system)".into());
    }
    if !Path::new("/run/dbus/system_bus_socket").exists() {
        return Some("no system bus at /run/dbus/system_bus_socket".into());
    }
    if !Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        return Some("this test covers the driver on pure cgroup v2".into());
    }
    None
}

/// Why the driver's v1 layout cannot be tested here, if it cannot.
fn no_systemd_v1() -> Option<String> {
    if !Path::new("/run/systemd/system").is_dir() {
        return Some("the host did not boot with systemd (no /run/systemd/system)".into());
    }
    if !Path::new("/run/dbus/system_bus_socket").exists() {
        return Some("no system bus at /run/dbus/system_bus_socket".into());
    }
    if !Path::new("/sys/fs/cgroup/memory").is_dir() {
        return Some("this test covers systemd's v1 (legacy or hybrid) layout".into());
    }
    None
}

macro_rules! require_systemd {
    () => {
        require_env!();
        if let Some(why) = no_systemd() {
            println!("SKIPPED: {why}");
            return;
        }
    };
}

/// `systemctl show -p <prop> --value <unit>`.
fn show(unit: &str, prop: &str) -> String {
    let out = Command::new("systemctl")
        .args(["show", "-p", prop, "--value", unit])
        .output()
        .expect("systemctl");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn scope_dir(id: &str) -> PathBuf {
    PathBuf::from(format!("/sys/fs/cgroup/system.slice/rr-{id}.scope"))
}

/// A detached container in `system.slice:rr:<id>` with the given resources.
fn systemd_env(args: &[&str], id: &str, resources: serde_json::Value) -> TestEnv {
    let env = writable_env(args);
    env.edit_config(|c| {
        c["linux"]["cgroupsPath"] = json!(format!("system.slice:rr:{id}"));
        c["linux"]["resources"] = resources;
    });
    env
}

fn run_systemd<'a>(env: &'a TestEnv, id: &str) -> Cleanup<'a> {
    let cleanup = Cleanup(env, id.to_string());
    let b = env.bundle.to_str().expect("bundle").to_string();
    let out = env.rrc(&["--systemd-cgroup", "run", "-d", "-b", &b, id]);
    assert!(
        out.status.success(),
        "run --systemd-cgroup: {}",
        stderr(&out)
    );
    cleanup
}

fn assert_unit_gone(unit: &str) {
    wait_for(&format!("{unit} to be unloaded"), || {
        show(unit, "LoadState") == "not-found"
    });
}

#[test]
fn malformed_systemd_paths_are_refused_with_runcs_messages() {
    require_env!();
    for (path, want) in [
        (
            "/not/systemd",
            "expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got \"/not/systemd\" instead",
        ),
        ("a:b", "expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got \"a:b\" instead"),
        ("bad--name.slice:rr:x", "invalid slice name: bad--name.slice"),
        ("noslice:rr:x", "invalid slice name: noslice"),
    ] {
        let env = writable_env(&["true"]);
        let id = unique_id("sdbad");
        env.edit_config(|c| c["linux"]["cgroupsPath"] = json!(path));
        let b = env.bundle.to_str().expect("bundle").to_string();
        let out = env.rrc(&["--systemd-cgroup", "create", "-b", &b, &id]);
        assert!(!out.status.success(), "{path} accepted");
        assert!(messages(&out).contains(want), "{path}: {}", stderr(&out));
        env.assert_no_leftovers(&id);
    }
}

#[test]
fn scope_holds_the_init_with_its_limits() {
    require_systemd!();
    let id = unique_id("sdscope");
    let env = systemd_env(
        &["sleep", "600"],
        &id,
        json!({"memory": {"limit": 67108864}, "pids": {"limit": 32},
               "cpu": {"quota": 50000, "period": 100000, "shares": 1024}}),
    );
    let _c = run_systemd(&env, &id);
    let unit = format!("rr-{id}.scope");
    assert_eq!(show(&unit, "ActiveState"), "active");
    assert_eq!(show(&unit, "ControlGroup"), format!("/system.slice/{unit}"));
    assert_eq!(show(&unit, "MemoryMax"), "67108864");
    assert_eq!(show(&unit, "TasksMax"), "32");
    assert_eq!(show(&unit, "CPUQuotaPerSecUSec"), "500ms");
    assert_eq!(show(&unit, "Delegate"), "yes");
    let dir = scope_dir(&id);
    assert_eq!(cgroup_paths(&env, &id)[""], dir);
    let init = env.state(&id)["pid"].as_i64().expect("pid").to_string();
    assert!(read(&dir.join("cgroup.procs")).lines().any(|l| l == init));
    assert_eq!(read(&dir.join("memory.max")), "67108864");
    assert_eq!(read(&dir.join("pids.max")), "32");
    assert_eq!(read(&dir.join("cpu.max")), "50000 100000");
    delete(&env, &id);
    assert_unit_gone(&unit);
    assert!(!dir.exists());
}

#[test]
fn update_changes_properties_and_files() {
    require_systemd!();
    let id = unique_id("sdupd");
    let env = systemd_env(
        &["sleep", "600"],
        &id,
        json!({"memory": {"limit": 67108864}}),
    );
    let _c = run_systemd(&env, &id);
    let unit = format!("rr-{id}.scope");
    let out = env.rrc(&["update", "--memory", "134217728", "--pids-limit", "50", &id]);
    assert!(out.status.success(), "update: {}", stderr(&out));
    assert_eq!(show(&unit, "MemoryMax"), "134217728");
    assert_eq!(show(&unit, "TasksMax"), "50");
    assert_eq!(read(&scope_dir(&id).join("memory.max")), "134217728");
    assert_eq!(read(&scope_dir(&id).join("pids.max")), "50");
    delete(&env, &id);
    assert_unit_gone(&unit);
}

#[test]
fn pause_and_resume_freeze_the_scope() {
    require_systemd!();
    let id = unique_id("sdpause");
    let env = systemd_env(&["sleep", "600"], &id, json!({}));
    let _c = run_systemd(&env, &id);
    let events = scope_dir(&id).join("cgroup.events");
    let out = env.rrc(&["pause", &id]);
    assert!(out.status.success(), "pause: {}", stderr(&out));
    assert!(read(&events).lines().any(|l| l == "frozen 1"));
    assert_eq!(env.state(&id)["status"], "paused");
    let out = env.rrc(&["resume", &id]);
    assert!(out.status.success(), "resume: {}", stderr(&out));
    assert!(read(&events).lines().any(|l| l == "frozen 0"));
    assert_eq!(env.state(&id)["status"], "running");
    delete(&env, &id);
}

/// A fork loop stops at TasksMax: the pids controller of the scope refuses
/// the forks past it (its `max` event counts them) and never holds more.
#[test]
fn tasks_max_stops_a_fork_loop() {
    require_systemd!();
    let id = unique_id("sdpids");
    let env = systemd_env(
        // The inner shell dies at the first refused fork (ash gives up);
        // the outer one stays, so the scope is still there to look at.
        &[
            "sh",
            "-c",
            "sh -c 'while true; do sleep 600 & done'; exec sleep 600",
        ],
        &id,
        json!({"pids": {"limit": 8}}),
    );
    let _c = run_systemd(&env, &id);
    let unit = format!("rr-{id}.scope");
    let dir = scope_dir(&id);
    let refused = || {
        read(&dir.join("pids.events"))
            .lines()
            .find_map(|l| l.strip_prefix("max "))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    wait_for("a fork refused at TasksMax", || refused() > 0);
    let current: u64 = read(&dir.join("pids.current"))
        .parse()
        .expect("pids.current");
    assert!(current <= 8, "pids.current {current} above TasksMax 8");
    delete(&env, &id);
    assert_unit_gone(&unit);
}

/// rrc killed in the middle of create: `delete -f` still finds the unit
/// (state.json records it before the cgroup is made) and stops it.
#[test]
fn a_killed_create_leaves_no_unit_after_delete() {
    require_systemd!();
    let id = unique_id("sdkillc");
    let env = systemd_env(&["sleep", "600"], &id, json!({}));
    let unit = format!("rr-{id}.scope");
    let b = env.bundle.to_str().expect("bundle").to_string();
    let mut child = env
        .rrc_cmd(&["--systemd-cgroup", "create", "-b", &b, &id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn rrc");
    wait_for(&format!("{unit} to start"), || {
        show(&unit, "ActiveState") == "active"
    });
    let _ = child.kill();
    let _ = child.wait();
    let out = env.rrc(&["delete", "-f", &id]);
    assert!(out.status.success(), "delete -f: {}", stderr(&out));
    assert_unit_gone(&unit);
    env.assert_no_leftovers(&id);
}

#[test]
fn a_killed_init_leaves_no_unit_after_delete() {
    require_systemd!();
    let id = unique_id("sdkill");
    let env = systemd_env(&["sleep", "600"], &id, json!({}));
    let b = env.bundle.to_str().expect("bundle").to_string();
    let out = env.rrc(&["--systemd-cgroup", "create", "-b", &b, &id]);
    assert!(out.status.success(), "create: {}", stderr(&out));
    let unit = format!("rr-{id}.scope");
    assert_eq!(show(&unit, "ActiveState"), "active");
    // An init killed before start: delete -f must still stop its unit.
    let init = env.state(&id)["pid"].as_i64().expect("pid") as i32;
    // SAFETY: kill takes plain integers.
    unsafe { libc::kill(init, libc::SIGKILL) };
    let out = env.rrc(&["delete", "-f", &id]);
    assert!(out.status.success(), "delete -f: {}", stderr(&out));
    assert_unit_gone(&unit);
    env.assert_no_leftovers(&id);
}

const ROOTLESS_USER: &str = "rr-rootless-test";

fn id_of(flag: &str, user: &str) -> Option<u32> {
    let out = Command::new("id").arg(flag).arg(user).output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn chown_r(path: &Path, uid: u32, gid: u32) {
    let out = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{gid}"))
        .arg(path)
        .output()
        .expect("chown");
    assert!(out.status.success(), "chown: {}", stderr(&out));
}

/// Rootless: a user whose systemd manager runs (lingering) creates its
/// container's scope through that manager, on its session bus, in its own
/// user.slice.
#[test]
fn rootless_goes_through_the_user_manager() {
    require_systemd!();
    let (Some(uid), Some(gid)) = (id_of("-u", ROOTLESS_USER), id_of("-g", ROOTLESS_USER)) else {
        println!("SKIPPED: no user {ROOTLESS_USER} (the systemd VM makes it)");
        return;
    };
    let runtime = PathBuf::from(format!("/run/user/{uid}"));
    if !runtime.join("bus").exists() {
        println!("SKIPPED: {ROOTLESS_USER} has no user manager bus (lingering off?)");
        return;
    }
    let env = TestEnv::new(&["true"]);
    let rrc = env.dir.path().join("rrc");
    std::fs::copy(rr_tests::rrc_bin(), &rrc).expect("copy rrc");
    std::fs::remove_file(env.config_path()).expect("rm config");
    chown_r(env.dir.path(), uid, gid);
    let state = env.dir.path().join("user-state");
    // rrc runs in the user's own cgroup tree, as from a login: moving the
    // init into a scope of the user manager needs that (the common
    // ancestor must be the user's). A root shell joins the tree, then
    // drops to the user.
    let session = PathBuf::from(format!(
        "/sys/fs/cgroup/user.slice/user-{uid}.slice/user@{uid}.service/init.scope"
    ));
    let user_cmd = |args: &[&str]| -> Command {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(format!(
                "echo $$ > \"$1/cgroup.procs\" && shift && exec setpriv --reuid={uid} --regid={gid} --clear-groups \"$@\""
            ))
            .arg("sh")
            .arg(&session)
            .arg(&rrc)
            .arg("--root")
            .arg(&state)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("XDG_RUNTIME_DIR", &runtime)
            .current_dir(&env.bundle);
        c
    };
    let out = rr_tests::run_to_exit(user_cmd(&["spec", "--rootless"]));
    assert!(out.status.success(), "spec: {}", stderr(&out));
    let id = unique_id("sduser");
    env.edit_config(|c| {
        c["process"]["terminal"] = json!(false);
        c["process"]["args"] = json!(["sleep", "600"]);
        c["linux"]["cgroupsPath"] = json!(format!(":rr:{id}"));
        c["linux"]["resources"] = json!({"pids": {"limit": 20}});
        // Mounting cgroup2 there fails with EBUSY in this VM (the rootless
        // cgroup mount, not the driver: a separate problem); the driver
        // needs no cgroup mount in the container.
        if let Some(m) = c["mounts"].as_array_mut() {
            m.retain(|m| m["destination"] != "/sys/fs/cgroup");
        }
    });
    chown_r(&env.config_path(), uid, gid);
    let out = rr_tests::detached(user_cmd(&["--systemd-cgroup", "run", "-d", &id]));
    assert!(
        out.status.success(),
        "run -d as {ROOTLESS_USER}: {}",
        stderr(&out)
    );
    let text = std::fs::read_to_string(state.join(&id).join("state.json")).expect("state.json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("state.json is JSON");
    let dir = PathBuf::from(v["cgroup_paths"][""].as_str().expect("a v2 path"));
    let want = format!("/user.slice/user-{uid}.slice/user@{uid}.service/user.slice/rr-{id}.scope");
    assert!(
        dir.ends_with(want.trim_start_matches('/')),
        "{}",
        dir.display()
    );
    let init = v["init_process_pid"].as_i64().expect("pid").to_string();
    assert!(read(&dir.join("cgroup.procs")).lines().any(|l| l == init));
    assert_eq!(read(&dir.join("pids.max")), "20");
    let out = rr_tests::run_to_exit(user_cmd(&["delete", "-f", &id]));
    assert!(out.status.success(), "delete -f: {}", stderr(&out));
    wait_for("the user scope to go", || !dir.exists());
}

/// MemoryMax is enforced in the scope: a hog is OOM-killed, `rrc events`
/// reports it, and the scope's memory.events counts it.
#[test]
fn a_hog_is_oom_killed_in_its_scope() {
    require_systemd!();
    let id = unique_id("sdoom");
    let env = hog_env();
    env.edit_config(|c| c["linux"]["cgroupsPath"] = json!(format!("system.slice:rr:{id}")));
    let _c = run_systemd(&env, &id);
    let unit = format!("rr-{id}.scope");
    assert_eq!(show(&unit, "MemoryMax"), HOG_LIMIT.to_string());
    let events = oom_through_events(&env, &id);
    let kills = read(&scope_dir(&id).join("memory.events"))
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill ").map(str::to_string))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(kills >= 1, "memory.events counts no oom_kill");
    delete_ends_events(&env, &id, events);
    assert_unit_gone(&unit);
}

/// `rrc features` says the driver works where it does.
#[test]
fn features_report_systemd_here() {
    require_systemd!();
    let env = TestEnv::new(&["true"]);
    let out = env.rrc(&["features"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("features is JSON");
    assert_eq!(v["linux"]["cgroup"]["systemd"], true);
}

/// systemd's hybrid or legacy layout: the v1 property names (MemoryLimit,
/// CPUShares) and the scope's directory in each v1 hierarchy.
#[test]
fn v1_scope_uses_v1_properties_and_files() {
    require_env!();
    if let Some(why) = no_systemd_v1() {
        println!("SKIPPED: {why}");
        return;
    }
    let id = unique_id("sdv1");
    let env = systemd_env(
        &["sleep", "600"],
        &id,
        json!({"memory": {"limit": 67108864}, "pids": {"limit": 32},
               "cpu": {"shares": 512, "quota": 50000, "period": 100000}}),
    );
    let _c = run_systemd(&env, &id);
    let unit = format!("rr-{id}.scope");
    assert_eq!(show(&unit, "ActiveState"), "active");
    assert_eq!(show(&unit, "MemoryLimit"), "67108864");
    assert_eq!(show(&unit, "CPUShares"), "512");
    assert_eq!(show(&unit, "TasksMax"), "32");
    let v1 = |ctrl: &str| PathBuf::from(format!("/sys/fs/cgroup/{ctrl}/system.slice/{unit}"));
    let paths = cgroup_paths(&env, &id);
    assert_eq!(paths["memory"], v1("memory"));
    let init = env.state(&id)["pid"].as_i64().expect("pid").to_string();
    assert!(read(&v1("memory").join("cgroup.procs"))
        .lines()
        .any(|l| l == init));
    assert_eq!(
        read(&v1("memory").join("memory.limit_in_bytes")),
        "67108864"
    );
    assert_eq!(read(&v1("pids").join("pids.max")), "32");
    assert_eq!(read(&v1("cpu").join("cpu.shares")), "512");
    assert_eq!(read(&v1("cpu").join("cpu.cfs_quota_us")), "50000");
    delete(&env, &id);
    assert_unit_gone(&unit);
    for dir in paths.values() {
        assert!(!dir.exists(), "{} left", dir.display());
    }
}

/// `rrc <args>` with pipes as its stdio (so as the detached container's):
/// CRIU dumps and restores pipes, not host files outside the container.
/// The returned child keeps them open; whether rrc succeeded comes first.
fn rrc_with_pipes(env: &TestEnv, args: &[&str]) -> (bool, std::process::Child) {
    use std::process::Stdio;
    let mut child = env
        .rrc_cmd(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rrc");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        if let Some(st) = child.try_wait().expect("wait rrc") {
            return (st.success(), child);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("rrc {args:?} hung");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn tail(p: &Path) -> String {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(25)..].join("\n")
}

fn count_in(out: &Path) -> u64 {
    std::fs::read_to_string(out.join("count"))
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn restore_puts_the_container_in_a_new_scope() {
    require_systemd!();
    let Some(criu) = std::env::var_os("RR_CRIU_BIN").filter(|p| Path::new(p).is_file()) else {
        println!("SKIPPED: RR_CRIU_BIN is not set to a CRIU 4.x binary (cargo xtask test builds one; the systemd VM gets it then)");
        return;
    };
    let criu = criu.to_string_lossy().into_owned();
    let id = unique_id("sdckpt");
    let counter = "i=0; while true; do i=$((i+1)); echo $i > /out/count; sleep 0.1; done";
    let env = systemd_env(&["sh", "-c", counter], &id, json!({"pids": {"limit": 64}}));
    let out = env.dir.path().join("out");
    std::fs::create_dir_all(&out).expect("out dir");
    env.edit_config(|c| {
        c["mounts"].as_array_mut().expect("mounts").push(json!({
            "destination": "/out", "type": "bind",
            "source": out.display().to_string(), "options": ["rbind", "rw"]}));
        // CRIU 4.2.1 cannot dump a network namespace on the VM's kernel.
        c["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces")
            .retain(|n| n["type"] != "network");
    });
    let b = env.bundle.display().to_string();
    let log = env.dir.path().join("rrc.log").display().to_string();
    let (ok, _run) = rrc_with_pipes(
        &env,
        &[
            "--log",
            &log,
            "--systemd-cgroup",
            "run",
            "-d",
            "-b",
            &b,
            &id,
        ],
    );
    let _c = Cleanup(&env, id.clone());
    assert!(ok, "run: {}", tail(Path::new(&log)));
    wait_for("the counter", || count_in(&out) >= 3);

    let images = env.dir.path().join("images");
    let img = images.display().to_string();
    let o = env.rrc(&["--criu", &criu, "checkpoint", "--image-path", &img, &id]);
    assert!(
        o.status.success(),
        "checkpoint: {}\n{}",
        stderr(&o),
        tail(&images.join("dump.log"))
    );
    assert_unit_gone(&format!("rr-{id}.scope"));
    let at_dump = count_in(&out);

    let id2 = unique_id("sdrest");
    env.edit_config(|c| c["linux"]["cgroupsPath"] = json!(format!("system.slice:rr:{id2}")));
    let (ok, _restored) = rrc_with_pipes(
        &env,
        &[
            "--log",
            &log,
            "--criu",
            &criu,
            "--systemd-cgroup",
            "restore",
            "-d",
            "--image-path",
            &img,
            "-b",
            &b,
            &id2,
        ],
    );
    let _c2 = Cleanup(&env, id2.clone());
    assert!(
        ok,
        "restore: {}\n{}",
        tail(Path::new(&log)),
        tail(&images.join("restore.log"))
    );
    let unit = format!("rr-{id2}.scope");
    assert_eq!(show(&unit, "ActiveState"), "active");
    assert_eq!(show(&unit, "TasksMax"), "64");
    let dir = scope_dir(&id2);
    assert_eq!(cgroup_paths(&env, &id2)[""], dir);
    let init = env.state(&id2)["pid"].as_i64().expect("pid").to_string();
    let procs = read(&dir.join("cgroup.procs"));
    assert!(procs.lines().any(|l| l == init), "{init} not in {procs}");
    // Only the container is left in the scope: rrc's placeholder and CRIU
    // are gone.
    for p in procs.lines() {
        let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
        assert!(
            matches!(comm.trim(), "sh" | "sleep" | ""),
            "{p} ({comm}) in {unit}"
        );
    }
    wait_for("the restored count to move on", || count_in(&out) > at_dump);
    delete(&env, &id2);
    assert_unit_gone(&unit);
    assert!(!dir.exists());
}

/// A containerd of the test's own (its root, state and socket in `dir`),
/// killed on drop with whatever its namespace still runs.
struct Containerd {
    child: std::process::Child,
    sock: String,
    ns: String,
}

impl Containerd {
    fn start(dir: &Path, ns: &str) -> Containerd {
        let sock = dir.join("containerd.sock").display().to_string();
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{1}\"\n",
                dir.display(),
                sock
            ),
        )
        .expect("config.toml");
        let log = std::fs::File::create(dir.join("containerd.log")).expect("log");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("spawn containerd");
        let c = Containerd {
            child,
            sock,
            ns: ns.to_string(),
        };
        wait_for("containerd's socket", || Path::new(&c.sock).exists());
        c
    }

    fn ctr(&self, args: &[&str]) -> std::process::Output {
        let o = Command::new("ctr")
            .args(["-a", &self.sock, "-n", &self.ns])
            .args(args)
            .output()
            .expect("ctr");
        o
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for c in String::from_utf8_lossy(&self.ctr(&["task", "ls", "-q"]).stdout).lines() {
            let _ = self.ctr(&["task", "kill", "-s", "SIGKILL", c]);
            let _ = self.ctr(&["task", "delete", "-f", c]);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha256_of(p: &Path) -> String {
    let o = Command::new("sha256sum")
        .arg(p)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_string()
}

/// Puts `bytes` into the OCI layout's blobs: (digest, size).
fn blob(layout: &Path, bytes: &[u8]) -> (String, usize) {
    let tmp = layout.join("blob.tmp");
    std::fs::write(&tmp, bytes).expect("blob");
    let hex = sha256_of(&tmp);
    std::fs::rename(&tmp, layout.join("blobs/sha256").join(&hex)).expect("blob");
    (format!("sha256:{hex}"), bytes.len())
}

/// An OCI image archive of a busybox root file system, made offline.
fn busybox_image(dir: &Path, name: &str) -> PathBuf {
    let rootfs = dir.join("rootfs");
    rr_tests::make_busybox_rootfs(&rootfs).expect("busybox rootfs");
    let layout = dir.join("oci");
    std::fs::create_dir_all(layout.join("blobs/sha256")).expect("layout");
    let layer = dir.join("layer.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&layer)
        .arg(".")
        .status()
        .expect("tar");
    assert!(st.success());
    let (layer_digest, layer_size) = blob(&layout, &std::fs::read(&layer).expect("layer"));
    let config = json!({"architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sleep", "600"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]}});
    let (config_digest, config_size) = blob(&layout, config.to_string().as_bytes());
    let manifest = json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": layer_size}]});
    let (m_digest, m_size) = blob(&layout, manifest.to_string().as_bytes());
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": m_digest, "size": m_size,
        "annotations": {"io.containerd.image.name": name,
                        "org.opencontainers.image.ref.name": "latest"}}]});
    std::fs::write(layout.join("index.json"), index.to_string()).expect("index");
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
    let archive = dir.join("image.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&archive)
        .args(["oci-layout", "index.json", "blobs"])
        .status()
        .expect("tar");
    assert!(st.success());
    archive
}

fn on_path(prog: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
}

#[test]
fn containerd_runc_v2_shim_with_systemd_cgroup_drives_rrc() {
    require_systemd!();
    for prog in [
        "containerd",
        "ctr",
        "containerd-shim-runc-v2",
        "tar",
        "sha256sum",
    ] {
        if !on_path(prog) {
            println!("SKIPPED: no {prog} on PATH (the systemd VM has containerd)");
            return;
        }
    }
    let id = unique_id("sdctr");
    let dir = tempfile::Builder::new()
        .prefix("rr-ctr-")
        .tempdir()
        .expect("temp dir");
    let image = "docker.io/library/rr-busybox:latest";
    let archive = busybox_image(dir.path(), image);
    let ctrd = Containerd::start(dir.path(), &id);
    let o = ctrd.ctr(&[
        "images",
        "import",
        "--snapshotter",
        "native",
        &archive.display().to_string(),
    ]);
    assert!(o.status.success(), "ctr images import: {}", stderr(&o));

    let rrc = rr_tests::rrc_bin().display().to_string();
    let runc_root = dir.path().join("runc").display().to_string();
    let cgroup = format!("system.slice:rrctr:{id}");
    let o = ctrd.ctr(&[
        "run",
        "-d",
        "--snapshotter",
        "native",
        "--runc-binary",
        &rrc,
        "--runc-root",
        &runc_root,
        "--runc-systemd-cgroup",
        "--cgroup",
        &cgroup,
        image,
        &id,
        "sleep",
        "600",
    ]);
    let log = || std::fs::read_to_string(dir.path().join("containerd.log")).unwrap_or_default();
    assert!(o.status.success(), "ctr run: {}\n{}", stderr(&o), log());

    let unit = format!("rrctr-{id}.scope");
    let o = ctrd.ctr(&["task", "ls"]);
    let pid = String::from_utf8_lossy(&o.stdout)
        .lines()
        .find(|l| l.starts_with(&id))
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_else(|| panic!("no task {id}: {}", stdout_of(&o)));
    assert_eq!(show(&unit, "ActiveState"), "active");
    assert_eq!(show(&unit, "ControlGroup"), format!("/system.slice/{unit}"));
    let procs = read(
        &Path::new("/sys/fs/cgroup/system.slice")
            .join(&unit)
            .join("cgroup.procs"),
    );
    assert!(
        procs.lines().any(|l| l == pid),
        "{pid} not in {unit}: {procs}"
    );

    let o = ctrd.ctr(&["task", "kill", "-s", "SIGKILL", &id]);
    assert!(o.status.success(), "ctr task kill: {}", stderr(&o));
    wait_for("the task to stop", || {
        String::from_utf8_lossy(&ctrd.ctr(&["task", "ls"]).stdout)
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("STOPPED"))
    });
    let o = ctrd.ctr(&["task", "delete", &id]);
    assert!(
        o.status.success(),
        "ctr task delete: {}\n{}",
        stderr(&o),
        log()
    );
    let o = ctrd.ctr(&["container", "delete", &id]);
    assert!(o.status.success(), "ctr container delete: {}", stderr(&o));
    assert_unit_gone(&unit);
}

fn stdout_of(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// podman as root with its own storage and configuration under `dir`,
/// `cgroup_manager = "systemd"`, rrc as its runtime.
fn podman(dir: &Path, args: &[&str]) -> std::process::Output {
    let d = dir.display();
    Command::new("podman")
        .env("CONTAINERS_CONF", dir.join("containers.conf"))
        .args([
            "--root",
            &format!("{d}/root"),
            "--runroot",
            &format!("{d}/runroot"),
        ])
        .args(["--tmpdir", &format!("{d}/tmp"), "--storage-driver", "vfs"])
        .args(["--cgroup-manager", "systemd", "--events-backend", "file"])
        .arg("--runtime")
        .arg(rr_tests::rrc_bin())
        .args(args)
        .output()
        .expect("podman")
}

#[test]
fn podman_with_the_systemd_cgroup_manager_runs_rrc() {
    require_systemd!();
    if !on_path("podman") || !on_path("conmon") {
        println!("SKIPPED: no podman or conmon on PATH (the systemd VM has them)");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("rr-podman-")
        .tempdir()
        .expect("temp dir");
    let d = dir.path();
    for sub in ["root", "runroot", "tmp", "net"] {
        std::fs::create_dir_all(d.join(sub)).expect("podman dirs");
    }
    std::fs::write(
        d.join("containers.conf"),
        format!(
            "[containers]\nnetns = \"none\"\nlog_driver = \"k8s-file\"\n\
             [network]\nnetwork_config_dir = \"{0}/net\"\n\
             [engine]\ncgroup_manager = \"systemd\"\nevents_logger = \"file\"\n\
             events_logfile_path = \"{0}/events.log\"\n",
            d.display()
        ),
    )
    .expect("containers.conf");
    let rootfs = d.join("rootfs");
    rr_tests::make_busybox_rootfs(&rootfs).expect("busybox rootfs");
    let name = unique_id("sdpod");
    let rootfs_arg = rootfs.display().to_string();
    let o = podman(
        d,
        &[
            "run",
            "-d",
            "--name",
            &name,
            "--rootfs",
            &rootfs_arg,
            "sleep",
            "600",
        ],
    );
    assert!(o.status.success(), "podman run: {}", stderr(&o));
    struct Rm<'a>(&'a Path, String);
    impl Drop for Rm<'_> {
        fn drop(&mut self) {
            let _ = podman(self.0, &["rm", "-f", "-t", "0", &self.1]);
        }
    }
    let _rm = Rm(d, name.clone());
    let o = podman(d, &["inspect", "-f", "{{.Id}} {{.State.Pid}}", &name]);
    assert!(o.status.success(), "podman inspect: {}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let (full, pid) = text.trim().split_once(' ').expect("id and pid");
    let unit = format!("libpod-{full}.scope");
    assert_eq!(show(&unit, "ActiveState"), "active", "{unit}");
    let cg = show(&unit, "ControlGroup");
    let procs = read(
        &Path::new("/sys/fs/cgroup")
            .join(cg.trim_start_matches('/'))
            .join("cgroup.procs"),
    );
    assert!(
        procs.lines().any(|l| l == pid),
        "{pid} not in {unit}: {procs}"
    );

    let o = podman(d, &["exec", &name, "cat", "/proc/self/cgroup"]);
    assert!(o.status.success(), "podman exec: {}", stderr(&o));
    let o = podman(d, &["stop", "-t", "1", &name]);
    assert!(o.status.success(), "podman stop: {}", stderr(&o));
    let o = podman(d, &["rm", &name]);
    assert!(o.status.success(), "podman rm: {}", stderr(&o));
    assert_unit_gone(&unit);
}
