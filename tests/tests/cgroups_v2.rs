//! Containers and their cgroups on a pure cgroup v2 host (the v2 VM of
//! `cargo xtask e2e`): the v1-style limits of the spec converted and read
//! back from the host's and the container's cgroup files, enforced where
//! observable (a fork bomb stopped, a hog OOM-killed, a denied device
//! refused by the eBPF device program), and pause/resume, events and update.
//! On a v1 or hybrid host these tests skip: tests/tests/cgroups.rs covers it.

use std::collections::BTreeMap;
use std::path::Path;

use rr_tests::cg::*;
use rr_tests::{require_env, stderr, unique_id, TestEnv};
use serde_json::{json, Value};

/// Why these tests cannot run here (not a pure v2 host), if they cannot.
fn v2_missing() -> Option<String> {
    let unified = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    (!unified).then(|| "/sys/fs/cgroup is not a cgroup2 mount (not a pure v2 host)".to_string())
}

macro_rules! require_v2 {
    () => {
        if let Some(reason) = v2_missing() {
            eprintln!("SKIPPED: {reason}");
            return;
        }
    };
}

/// The container's one v2 cgroup directory.
fn the_cgroup(env: &TestEnv, id: &str) -> std::path::PathBuf {
    let paths = cgroup_paths(env, id);
    assert_eq!(paths.len(), 1, "a v2 container has one cgroup: {paths:?}");
    paths.into_values().next().unwrap_or_default()
}

/// The files the limits test compares, relative to the container's cgroup
/// (on the host) and to /sys/fs/cgroup (inside, its cgroup namespace root).
const LIMIT_FILES: &[&str] = &[
    "memory.max",
    "memory.low",
    "memory.swap.max",
    "memory.oom.group",
    "pids.max",
    "cpu.weight",
    "cpu.max",
    "cpuset.cpus",
    "cpuset.mems",
];

#[test]
fn limits_show_on_the_host_inside_and_in_stats() {
    require_env!();
    require_v2!();
    let script = format!(
        "cd /sys/fs/cgroup && for f in {}; do echo \"$f=$(cat $f)\"; done > /tmp/limits.tmp; \
         mv /tmp/limits.tmp /tmp/limits; \
         if echo x > /dev/null; then echo devnull=ok; else echo devnull=denied; fi > /tmp/dev.tmp; \
         if head -c 1 /dev/hostdisk > /dev/null 2>/tmp/disk.err; then echo disk=read; else echo disk=denied; fi >> /tmp/dev.tmp; \
         mv /tmp/dev.tmp /tmp/dev; \
         exec sleep 1000",
        LIMIT_FILES.join(" ")
    );
    let env = writable_env(&["sh", "-c", &script]);
    let disk = a_disk();
    env.edit_config(|c| {
        let r = &mut c["linux"]["resources"];
        r["memory"] = json!({"limit": 64 << 20, "reservation": 32 << 20, "swap": 96 << 20});
        r["pids"] = json!({"limit": 42});
        r["cpu"] =
            json!({"shares": 512, "quota": 30000, "period": 100000, "cpus": "0", "mems": "0"});
        r["unified"] = json!({"memory.oom.group": "1"});
        if let Some((maj, min)) = disk {
            c["mounts"].as_array_mut().expect("mounts").push(json!({
                "destination": "/dev/hostdisk", "type": "bind",
                "source": dev_node(maj, min), "options": ["bind", "ro"]}));
        }
    });
    let id = unique_id("cg2limits");
    let _cleanup = run_detached(&env, &id);
    wait_file(&env, "/tmp/dev");
    let cg = the_cgroup(&env, &id);
    assert!(
        cg.ends_with(&id),
        "{} is not named after the container",
        cg.display()
    );
    let init = env.state(&id)["pid"].as_i64().expect("pid");
    let procs = read(&cg.join("cgroup.procs"));
    assert!(
        procs.lines().any(|l| l == init.to_string()),
        "init {init} not in {procs}"
    );

    let want = BTreeMap::from([
        ("memory.max", (64u64 << 20).to_string()),
        ("memory.low", (32u64 << 20).to_string()),
        // v1's memory+swap 96 MiB is 32 MiB of swap beside 64 of memory.
        ("memory.swap.max", (32u64 << 20).to_string()),
        ("memory.oom.group", "1".to_string()),
        ("pids.max", "42".to_string()),
        // shares 512 on the curve of ../shared/REFERENCE.md section 3.
        ("cpu.weight", "59".to_string()),
        ("cpu.max", "30000 100000".to_string()),
        ("cpuset.cpus", "0".to_string()),
        ("cpuset.mems", "0".to_string()),
    ]);
    let inside: BTreeMap<String, String> = read(&in_rootfs(&env, "/tmp/limits"))
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (file, value) in &want {
        assert_eq!(&read(&cg.join(file)), value, "host {file}");
        assert_eq!(inside.get(*file), Some(value), "inside {file}: {inside:?}");
    }

    // devices: the eBPF program lets the default devices through and
    // refuses the host's disk, although its node is bound in.
    let dev = read(&in_rootfs(&env, "/tmp/dev"));
    assert!(dev.contains("devnull=ok"), "{dev}");
    if disk.is_some() {
        assert!(dev.contains("disk=denied"), "{dev}");
        let err = read(&in_rootfs(&env, "/tmp/disk.err"));
        assert!(err.contains("not permitted"), "{err}");
    }

    let out = env.rrc(&["events", "--stats", &id]);
    assert!(out.status.success(), "events --stats: {}", stderr(&out));
    let ev: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let d = &ev["data"];
    assert_eq!(d["memory"]["usage"]["limit"], json!(64u64 << 20), "{d}");
    assert!(
        d["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0,
        "{d}"
    );
    assert_eq!(d["pids"]["limit"], 42, "{d}");
    assert!(d["pids"]["current"].as_u64().unwrap_or(0) >= 1, "{d}");
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap_or(0) > 0, "{d}");

    delete(&env, &id);
    assert!(!cg.exists(), "{} survived delete", cg.display());
}

#[test]
fn pids_limit_stops_a_fork_bomb_at_the_limit() {
    require_env!();
    require_v2!();
    let env = writable_env(&[
        "sh",
        "-c",
        "mkfifo /tmp/f; ( i=0; while [ $i -lt 40 ]; do sleep 1000 & i=$((i+1)); done ); \
         echo done > /tmp/done; read x < /tmp/f",
    ]);
    env.edit_config(|c| c["linux"]["resources"]["pids"] = json!({"limit": 8}));
    let id = unique_id("cg2bomb");
    let _cleanup = run_detached(&env, &id);
    wait_file(&env, "/tmp/done");
    let cg = the_cgroup(&env, &id);
    // At the refused fork: the init, the subshell and 6 sleeps; the
    // subshell has exited since.
    assert_eq!(read(&cg.join("pids.current")), "7");
    let events = read(&cg.join("pids.events"));
    let refused: u64 = events
        .lines()
        .find_map(|l| l.strip_prefix("max "))
        .and_then(|n| n.parse().ok())
        .expect("pids.events");
    assert!(refused >= 1, "no fork was refused: {events}");
    assert_eq!(pids_json(&env, &id).len(), 7);
    delete(&env, &id);
}

#[test]
fn memory_limit_oom_kills_a_hog_and_events_reports_it() {
    require_env!();
    require_v2!();
    let env = hog_env();
    let id = unique_id("cg2oom");
    let _cleanup = run_detached(&env, &id);
    let cg = the_cgroup(&env, &id);
    assert_eq!(read(&cg.join("memory.swap.max")), "0");
    let events = oom_through_events(&env, &id);
    let mem_events = read(&cg.join("memory.events"));
    assert!(
        mem_events
            .lines()
            .any(|l| l.starts_with("oom_kill ") && l != "oom_kill 0"),
        "{mem_events}"
    );
    delete_ends_events(&env, &id, events);
}

#[test]
fn pause_freezes_the_cgroup_and_resume_thaws_it() {
    require_env!();
    require_v2!();
    let env = counter_env();
    let id = unique_id("cg2pause");
    let _cleanup = run_detached(&env, &id);
    let first = counter(&env);
    wait_for("the counter to move", || counter(&env) > first);
    let cg = the_cgroup(&env, &id);

    let out = env.rrc(&["pause", &id]);
    assert!(out.status.success(), "pause: {}", stderr(&out));
    assert_eq!(env.state(&id)["status"], "paused");
    assert_eq!(read(&cg.join("cgroup.freeze")), "1");
    let ev = read(&cg.join("cgroup.events"));
    assert!(ev.lines().any(|l| l == "frozen 1"), "{ev}");
    let frozen_at = assert_counter_stopped(&env);

    let out = env.rrc(&["resume", &id]);
    assert!(out.status.success(), "resume: {}", stderr(&out));
    assert_eq!(env.state(&id)["status"], "running");
    assert_eq!(read(&cg.join("cgroup.freeze")), "0");
    wait_for("the counter to move after resume", || {
        counter(&env) > frozen_at
    });
    // A forced delete of a paused container thaws and kills it.
    let out = env.rrc(&["pause", &id]);
    assert!(out.status.success(), "pause: {}", stderr(&out));
    delete(&env, &id);
    assert!(!cg.exists(), "{} survived delete", cg.display());
}

#[test]
fn update_rewrites_the_v2_files() {
    require_env!();
    require_v2!();
    let env = writable_env(&["sleep", "1000"]);
    env.edit_config(|c| {
        c["linux"]["resources"]["memory"] = json!({"limit": 64 << 20});
        c["linux"]["resources"]["pids"] = json!({"limit": 40});
    });
    let id = unique_id("cg2update");
    let _cleanup = run_detached(&env, &id);
    let cg = the_cgroup(&env, &id);
    let out = env.rrc(&[
        "update",
        "--memory",
        "96m",
        "--pids-limit",
        "50",
        "--cpu-share",
        "256",
        "--cpu-period",
        "50000",
        "--cpu-quota",
        "20000",
        &id,
    ]);
    assert!(out.status.success(), "update: {}", stderr(&out));
    assert_eq!(read(&cg.join("memory.max")), (96u64 << 20).to_string());
    assert_eq!(read(&cg.join("pids.max")), "50");
    assert_eq!(read(&cg.join("cpu.weight")), "35");
    assert_eq!(read(&cg.join("cpu.max")), "20000 50000");
    // A value the kernel refuses: the error names the file, and what was
    // written before it is restored.
    let out = env.rrc(&["update", "--pids-limit", "77", "--cpuset-cpus", "99", &id]);
    assert!(!out.status.success(), "update to cpuset 99 worked");
    assert!(stderr(&out).contains("cpuset.cpus"), "{}", stderr(&out));
    assert_eq!(read(&cg.join("pids.max")), "50");
    delete(&env, &id);
}
