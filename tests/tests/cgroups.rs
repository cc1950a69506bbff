//! Containers and their cgroups through the real `rrc` binary, on this
//! machine's cgroup v1 hierarchies: limits read back from the host's cgroup
//! files and from inside the container, enforced where observable, and
//! pause/resume, ps, kill -a, events and update.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use rr_tests::cg::*;
use rr_tests::{require_env, stderr, stdout, unique_id, TestEnv};
use serde_json::{json, Value};

/// The v1 controllers these tests exercise (all mounted on the hybrid
/// development and CI machines).
const CONTROLLERS: &[&str] = &[
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
];

/// Why these v1 tests cannot run here (a pure cgroup v2 host), if they cannot.
fn v1_missing() -> Option<String> {
    let missing: Vec<&str> = CONTROLLERS
        .iter()
        .copied()
        .filter(|c| {
            !Path::new("/sys/fs/cgroup")
                .join(c)
                .join("cgroup.procs")
                .exists()
        })
        .collect();
    (!missing.is_empty())
        .then(|| format!("cgroup v1 controllers not mounted under /sys/fs/cgroup: {missing:?}"))
}

macro_rules! require_v1 {
    () => {
        if let Some(reason) = v1_missing() {
            eprintln!("SKIPPED: {reason}");
            return;
        }
    };
}

fn host(paths: &BTreeMap<String, PathBuf>, controller: &str, file: &str) -> String {
    read(&paths[controller].join(file))
}

/// The files each test reads, relative to /sys/fs/cgroup.
const LIMIT_FILES: &[&str] = &[
    "memory/memory.limit_in_bytes",
    "memory/memory.soft_limit_in_bytes",
    "memory/memory.memsw.limit_in_bytes",
    "memory/memory.swappiness",
    "pids/pids.max",
    "cpu/cpu.shares",
    "cpu/cpu.cfs_quota_us",
    "cpu/cpu.cfs_period_us",
    "cpuset/cpuset.cpus",
    "cpuset/cpuset.mems",
    "blkio/blkio.throttle.read_bps_device",
    "freezer/freezer.state",
    "cpuacct/cpuacct.usage",
];

#[test]
fn every_controller_limit_shows_on_the_host_inside_and_in_stats() {
    require_env!();
    require_v1!();
    let script = format!(
        "cd /sys/fs/cgroup && for f in {}; do echo \"$f=$(cat $f)\"; done > /tmp/limits.tmp; \
         cat devices/devices.list > /tmp/devices; \
         mv /tmp/limits.tmp /tmp/limits; \
         if echo x > /dev/null; then echo devnull=ok; else echo devnull=denied; fi > /tmp/dev.tmp; \
         if head -c 1 /dev/hostdisk > /dev/null 2>/tmp/disk.err; then echo disk=read; else echo disk=denied; fi >> /tmp/dev.tmp; \
         mv /tmp/dev.tmp /tmp/dev; \
         exec sleep 1000",
        LIMIT_FILES.join(" ")
    );
    let env = writable_env(&["sh", "-c", &script]);
    let disk = a_disk();
    let memsw = v1_offers("memory/memory.memsw.limit_in_bytes");
    env.edit_config(|c| {
        let r = &mut c["linux"]["resources"];
        r["memory"] = json!({"limit": 64 << 20, "reservation": 32 << 20, "swappiness": 10});
        if memsw {
            r["memory"]["swap"] = json!(96 << 20);
        }
        r["pids"] = json!({"limit": 42});
        r["cpu"] =
            json!({"shares": 512, "quota": 30000, "period": 100000, "cpus": "0", "mems": "0"});
        if let Some((maj, min)) = disk {
            r["blockIO"] =
                json!({"throttleReadBpsDevice": [{"major": maj, "minor": min, "rate": 1048576}]});
            // The disk itself, to show that the devices controller denies it.
            c["mounts"].as_array_mut().expect("mounts").push(json!({
                "destination": "/dev/hostdisk", "type": "bind",
                "source": dev_node(maj, min), "options": ["bind", "ro"]}));
        }
    });
    let id = unique_id("cglimits");
    let _cleanup = run_detached(&env, &id);
    wait_file(&env, "/tmp/dev");
    let paths = cgroup_paths(&env, &id);
    for c in [
        "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
    ] {
        assert!(paths.contains_key(c), "no {c} cgroup in {paths:?}");
        assert!(
            paths[c].ends_with(&id),
            "{c} cgroup {} is not named after the container",
            paths[c].display()
        );
    }
    // Own cgroup: the pid of the init is in every one of them.
    let init = env.state(&id)["pid"].as_i64().expect("pid");
    for (c, p) in &paths {
        let procs = read(&p.join("cgroup.procs"));
        assert!(
            procs.lines().any(|l| l == init.to_string()),
            "init {init} not in {c} cgroup {}",
            p.display()
        );
    }

    let mut want = BTreeMap::from([
        ("memory/memory.limit_in_bytes", (64u64 << 20).to_string()),
        (
            "memory/memory.soft_limit_in_bytes",
            (32u64 << 20).to_string(),
        ),
        ("memory/memory.swappiness", "10".to_string()),
        ("pids/pids.max", "42".to_string()),
        ("cpu/cpu.shares", "512".to_string()),
        ("cpu/cpu.cfs_quota_us", "30000".to_string()),
        ("cpu/cpu.cfs_period_us", "100000".to_string()),
        ("cpuset/cpuset.cpus", "0".to_string()),
        ("cpuset/cpuset.mems", "0".to_string()),
        ("freezer/freezer.state", "THAWED".to_string()),
    ]);
    if memsw {
        want.insert(
            "memory/memory.memsw.limit_in_bytes",
            (96u64 << 20).to_string(),
        );
    }
    if let Some((maj, min)) = disk {
        want.insert(
            "blkio/blkio.throttle.read_bps_device",
            format!("{maj}:{min} 1048576"),
        );
    }
    let inside: BTreeMap<String, String> = read(&in_rootfs(&env, "/tmp/limits"))
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (file, value) in &want {
        let (controller, name) = file.split_once('/').expect("controller/file");
        assert_eq!(&host(&paths, controller, name), value, "host {file}");
        assert_eq!(inside.get(*file), Some(value), "inside {file}: {inside:?}");
    }
    let usage: u64 = inside["cpuacct/cpuacct.usage"]
        .parse()
        .expect("cpuacct.usage");
    assert!(usage > 0, "cpuacct.usage inside is 0");

    // devices: the spec's deny-all plus the default devices, seen from both sides.
    let devices = host(&paths, "devices", "devices.list");
    assert!(
        !devices.contains("a *:* rwm"),
        "deny-all not applied: {devices}"
    );
    assert!(devices.lines().any(|l| l == "c 1:3 rwm"), "{devices}");
    assert_eq!(read(&in_rootfs(&env, "/tmp/devices")), devices);
    let dev = read(&in_rootfs(&env, "/tmp/dev"));
    assert!(dev.contains("devnull=ok"), "{dev}");
    if disk.is_some() {
        assert!(dev.contains("disk=denied"), "{dev}");
        let err = read(&in_rootfs(&env, "/tmp/disk.err"));
        assert!(err.contains("not permitted"), "{err}");
    }

    // events --stats: runc's shape, with the limits in it.
    let out = env.rrc(&["events", "--stats", &id]);
    assert!(out.status.success(), "events --stats: {}", stderr(&out));
    let ev: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], id.as_str());
    let d = &ev["data"];
    assert_eq!(d["memory"]["usage"]["limit"], json!(64u64 << 20));
    if memsw {
        assert_eq!(d["memory"]["swap"]["limit"], json!(96u64 << 20));
    }
    assert!(
        d["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0,
        "{d}"
    );
    assert!(d["memory"]["raw"].is_object(), "{d}");
    assert_eq!(d["pids"]["limit"], 42);
    assert!(d["pids"]["current"].as_u64().unwrap_or(0) >= 1, "{d}");
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap_or(0) > 0, "{d}");
    assert!(d["cpu"]["usage"]["percpu"].is_array(), "{d}");
    assert!(d["blkio"].is_object() && d["hugetlb"].is_object(), "{d}");

    delete(&env, &id);
    for p in paths.values() {
        assert!(!p.exists(), "{} survived delete", p.display());
    }
}

#[test]
fn pids_limit_stops_a_fork_bomb_at_the_limit() {
    require_env!();
    require_v1!();
    let env = writable_env(&[
        "sh",
        "-c",
        // A failed fork ends a busybox shell, so the bomb runs in a subshell;
        // the init then blocks on a fifo without forking.
        "mkfifo /tmp/f; ( i=0; while [ $i -lt 40 ]; do sleep 1000 & i=$((i+1)); done ); \
         echo done > /tmp/done; read x < /tmp/f",
    ]);
    env.edit_config(|c| c["linux"]["resources"]["pids"] = json!({"limit": 8}));
    let id = unique_id("cgbomb");
    let _cleanup = run_detached(&env, &id);
    wait_file(&env, "/tmp/done");
    let paths = cgroup_paths(&env, &id);
    // At the refused fork: the init, the subshell and 6 sleeps; the
    // subshell has exited since.
    assert_eq!(host(&paths, "pids", "pids.current"), "7");
    let events = host(&paths, "pids", "pids.events");
    let refused: u64 = events
        .strip_prefix("max ")
        .and_then(|n| n.parse().ok())
        .expect("pids.events");
    assert!(refused >= 1, "no fork was refused: {events}");
    assert_eq!(pids_json(&env, &id).len(), 7);
    delete(&env, &id);
}

#[test]
fn memory_limit_oom_kills_a_hog_and_events_reports_it() {
    require_env!();
    require_v1!();
    let env = hog_env();
    let id = unique_id("cgoom");
    let _cleanup = run_detached(&env, &id);
    let events = oom_through_events(&env, &id);
    let paths = cgroup_paths(&env, &id);
    let control = host(&paths, "memory", "memory.oom_control");
    assert!(
        control
            .lines()
            .any(|l| l.starts_with("oom_kill ") && l != "oom_kill 0"),
        "{control}"
    );
    delete_ends_events(&env, &id, events);
}

#[test]
fn pause_stops_a_counter_and_resume_continues_it() {
    require_env!();
    require_v1!();
    let env = counter_env();
    let id = unique_id("cgpause");
    let _cleanup = run_detached(&env, &id);
    let first = counter(&env);
    wait_for("the counter to move", || counter(&env) > first);

    let out = env.rrc(&["resume", &id]);
    assert!(
        !out.status.success(),
        "resume of a running container worked"
    );
    assert!(stderr(&out).contains("not paused"), "{}", stderr(&out));

    let out = env.rrc(&["pause", &id]);
    assert!(out.status.success(), "pause: {}", stderr(&out));
    assert_eq!(env.state(&id)["status"], "paused");
    let paths = cgroup_paths(&env, &id);
    assert_eq!(host(&paths, "freezer", "freezer.state"), "FROZEN");
    let frozen_at = assert_counter_stopped(&env);
    let out = env.rrc(&["pause", &id]);
    assert!(!out.status.success(), "pause of a paused container worked");
    assert!(stderr(&out).contains("not running"), "{}", stderr(&out));

    let out = env.rrc(&["resume", &id]);
    assert!(out.status.success(), "resume: {}", stderr(&out));
    assert_eq!(env.state(&id)["status"], "running");
    wait_for("the counter to move after resume", || {
        counter(&env) > frozen_at
    });

    // A forced delete of a paused container thaws and kills it.
    let out = env.rrc(&["pause", &id]);
    assert!(out.status.success(), "pause: {}", stderr(&out));
    delete(&env, &id);
}

#[test]
fn ps_lists_the_container_processes_and_kill_all_reaches_them() {
    require_env!();
    require_v1!();
    let env = writable_env(&[
        "sh",
        "-c",
        "sleep 1001 & sleep 1002 & echo ok > /tmp/done; wait",
    ]);
    let id = unique_id("cgps");
    let _cleanup = run_detached(&env, &id);
    wait_file(&env, "/tmp/done");
    let init = env.state(&id)["pid"].as_i64().expect("pid");
    let mut pids = Vec::new();
    wait_for("three processes", || {
        pids = pids_json(&env, &id);
        pids.len() == 3
    });
    assert!(pids.contains(&init), "{pids:?} lacks the init {init}");

    let out = env.rrc(&["ps", &id]);
    assert!(out.status.success(), "ps: {}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    // procps says CMD, busybox (the e2e VM's ps) COMMAND.
    assert!(
        lines[0].contains("PID") && (lines[0].contains("CMD") || lines[0].contains("COMMAND")),
        "{text}"
    );
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        text.contains("sleep 1001") && text.contains("sleep 1002"),
        "{text}"
    );

    let out = env.rrc(&["ps", &id, "-o", "pid,args"]);
    assert!(out.status.success(), "ps -o: {}", stderr(&out));
    let text = stdout(&out);
    let listed: Vec<i64> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    let mut sorted = listed.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, pids, "{text}");

    // The init is pid 1 of its namespace and ignores TERM; the sleeps do
    // not: only a signal to every process ends them.
    let out = env.rrc(&["kill", "-a", &id, "TERM"]);
    assert!(out.status.success(), "kill -a: {}", stderr(&out));
    let sleeps: Vec<i64> = pids.iter().copied().filter(|p| *p != init).collect();
    wait_for("the sleeps to die", || {
        sleeps.iter().all(|p| {
            !Path::new(&format!("/proc/{p}/cmdline")).exists() || {
                std::fs::read_to_string(format!("/proc/{p}/stat"))
                    .map(|s| {
                        s.rsplit(')')
                            .next()
                            .is_some_and(|r| r.trim_start().starts_with('Z'))
                    })
                    .unwrap_or(true)
            }
        })
    });
    wait_for("the container to stop", || {
        env.state(&id)["status"] == "stopped"
    });
    let out = env.rrc(&["delete", &id]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    env.assert_no_leftovers(&id);
}

fn update(env: &TestEnv, args: &[&str]) -> std::process::Output {
    let mut a = vec!["update"];
    a.extend_from_slice(args);
    env.rrc(&a)
}

#[test]
fn update_changes_limits_and_a_failed_update_restores_them() {
    require_env!();
    require_v1!();
    let env = writable_env(&["sleep", "1000"]);
    env.edit_config(|c| {
        c["linux"]["resources"]["memory"] = json!({"limit": 64 << 20});
        c["linux"]["resources"]["pids"] = json!({"limit": 20});
    });
    let id = unique_id("cgupd");
    let _cleanup = run_detached(&env, &id);
    let paths = cgroup_paths(&env, &id);

    let memsw = v1_offers("memory/memory.memsw.limit_in_bytes");
    let swap: &[&str] = if memsw {
        &["--memory-swap", "128m"]
    } else {
        &[]
    };
    let out = update(
        &env,
        &[
            &["--memory", "96m"][..],
            swap,
            &[
                "--memory-reservation",
                "16m",
                "--pids-limit",
                "50",
                "--cpu-share",
                "256",
                "--cpu-period",
                "50000",
                "--cpu-quota",
                "20000",
                "--cpuset-cpus",
                "0",
                &id,
            ],
        ]
        .concat(),
    );
    assert!(out.status.success(), "update: {}", stderr(&out));
    assert_eq!(
        host(&paths, "memory", "memory.limit_in_bytes"),
        (96u64 << 20).to_string()
    );
    if memsw {
        assert_eq!(
            host(&paths, "memory", "memory.memsw.limit_in_bytes"),
            (128u64 << 20).to_string()
        );
    }
    assert_eq!(
        host(&paths, "memory", "memory.soft_limit_in_bytes"),
        (16u64 << 20).to_string()
    );
    assert_eq!(host(&paths, "pids", "pids.max"), "50");
    assert_eq!(host(&paths, "cpu", "cpu.shares"), "256");
    assert_eq!(host(&paths, "cpu", "cpu.cfs_period_us"), "50000");
    assert_eq!(host(&paths, "cpu", "cpu.cfs_quota_us"), "20000");
    assert_eq!(host(&paths, "cpuset", "cpuset.cpus"), "0");

    // -r with a file, and -r - from stdin.
    let file = env.dir.path().join("res.json");
    std::fs::write(&file, r#"{"pids": {"limit": 60}, "cpu": {"quota": -1}}"#).expect("write");
    let out = update(&env, &["-r", file.to_str().expect("path"), &id]);
    assert!(out.status.success(), "update -r: {}", stderr(&out));
    assert_eq!(host(&paths, "pids", "pids.max"), "60");
    assert_eq!(host(&paths, "cpu", "cpu.cfs_quota_us"), "-1");
    let mut child = env
        .rrc_cmd(&["update", "-r", "-", &id])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(br#"{"memory": {"limit": 104857600}}"#)
        .expect("write stdin");
    let out = child.wait_with_output().expect("update -r -");
    assert!(out.status.success(), "update -r -: {}", stderr(&out));
    assert_eq!(host(&paths, "memory", "memory.limit_in_bytes"), "104857600");

    // A cpuset outside the host's CPUs: the kernel refuses it, the error
    // names the file, and values written before it are restored.
    let out = update(
        &env,
        &[
            "--pids-limit",
            "77",
            "--cpu-share",
            "900",
            "--cpuset-cpus",
            "99",
            &id,
        ],
    );
    assert!(!out.status.success(), "update to cpuset 99 worked");
    assert!(stderr(&out).contains("cpuset.cpus"), "{}", stderr(&out));
    assert_eq!(host(&paths, "pids", "pids.max"), "60");
    assert_eq!(host(&paths, "cpu", "cpu.shares"), "256");
    assert_eq!(host(&paths, "cpuset", "cpuset.cpus"), "0");

    // A memory limit below what the container uses cannot be reclaimed to.
    let out = update(&env, &["--pids-limit", "78", "--memory", "4k", &id]);
    assert!(!out.status.success(), "update to a 4k memory limit worked");
    assert!(
        stderr(&out).contains("memory.limit_in_bytes"),
        "{}",
        stderr(&out)
    );
    assert_eq!(host(&paths, "pids", "pids.max"), "60");
    assert_eq!(host(&paths, "memory", "memory.limit_in_bytes"), "104857600");

    // Bad flag values and files fail before anything is written.
    for bad in [
        vec!["--memory", "lots"],
        vec!["--cpu-share", "-5"],
        vec!["--pids-limit", "x"],
        vec!["--blkio-weight", "70000"],
        vec!["--cpu-quota", "-7"],
    ] {
        let mut a = bad.clone();
        a.push(&id);
        let out = update(&env, &a);
        assert!(!out.status.success(), "update {bad:?} worked");
        assert!(!stderr(&out).is_empty(), "update {bad:?}: no message");
    }
    std::fs::write(&file, "{\"pids\": {\"limit\": }").expect("write");
    let out = update(&env, &["-r", file.to_str().expect("path"), &id]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("res.json: line 1"),
        "{}",
        stderr(&out)
    );
    assert_eq!(host(&paths, "pids", "pids.max"), "60");

    // The stored spec follows the update (a supervisor reading state sees it).
    let st: Value = serde_json::from_str(
        &std::fs::read_to_string(env.root.join(&id).join("state.json")).expect("state"),
    )
    .expect("json");
    let res = &st["config"]["spec"]["linux"]["resources"];
    assert_eq!(res["pids"]["limit"], 60);
    assert_eq!(res["memory"]["limit"], 104857600);
    assert_eq!(res["cpu"]["shares"], 256);

    let out = env.rrc(&["kill", &id, "KILL"]);
    assert!(out.status.success(), "kill: {}", stderr(&out));
    wait_for("the container to stop", || {
        env.state(&id)["status"] == "stopped"
    });
    let out = update(&env, &["--pids-limit", "5", &id]);
    assert!(
        !out.status.success(),
        "update of a stopped container worked"
    );
    assert!(stderr(&out).contains("stopped"), "{}", stderr(&out));
    delete(&env, &id);
}

#[test]
fn bad_resources_fail_create_and_leave_no_cgroup() {
    require_env!();
    require_v1!();
    let env = writable_env(&["true"]);
    let cases: &[(Value, &str)] = &[
        (json!({"memory": {"limit": -5}}), "memory.limit"),
        (json!({"memory": {"swappiness": 101}}), "swappiness"),
        (json!({"cpu": {"shares": 1}}), "cpu.shares"),
        (json!({"cpu": {"quota": -7}}), "cpu.quota"),
        (json!({"cpu": {"period": 500}}), "cpu.period"),
        (json!({"pids": {"limit": -7}}), "pids.limit"),
        (json!({"blockIO": {"weight": 5}}), "blockIO.weight"),
        (json!({"cpu": {"cpus": "99"}}), "cpuset.cpus"),
        (json!({"cpu": {"cpus": "0-1", "mems": "7"}}), "cpuset.mems"),
        (json!({"cpu": {"cpus": "abc"}}), "cpu.cpus"),
        (
            json!({"devices": [{"allow": true, "type": "x"}]}),
            "unknown variant",
        ),
        (
            json!({"devices": [{"allow": true, "type": "c", "major": -9}]}),
            "major",
        ),
    ];
    for (res, want) in cases {
        env.edit_config(|c| c["linux"]["resources"] = res.clone());
        let id = unique_id("cgbad");
        let out = env.rrc_bundle("create", &[&id]);
        assert!(!out.status.success(), "create with {res} worked");
        assert!(stderr(&out).contains(want), "{res}: {}", stderr(&out));
        env.assert_no_leftovers(&id);
    }
    // A cgroup already in use is warned about and shared, as runc does:
    // compat_cgroups non_empty_cgroup_warns_and_other_processes_survive_delete.
}

#[test]
fn absolute_cgroups_path_is_used_and_removed() {
    require_env!();
    require_v1!();
    let env = writable_env(&["sleep", "1000"]);
    let id = unique_id("cgabs");
    let parent = format!("rr-test-{}", std::process::id());
    env.edit_config(|c| c["linux"]["cgroupsPath"] = json!(format!("/{parent}/{id}")));
    let _cleanup = run_detached(&env, &id);
    let paths = cgroup_paths(&env, &id);
    assert_eq!(
        paths["pids"],
        Path::new("/sys/fs/cgroup/pids").join(&parent).join(&id)
    );
    let init = env.state(&id)["pid"].as_i64().expect("pid").to_string();
    assert!(host(&paths, "memory", "cgroup.procs")
        .lines()
        .any(|l| l == init));
    delete(&env, &id);
    // The parent rr made is left, as runc leaves it; tidy it up here.
    for p in paths.values() {
        if let Some(parent) = p.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// Without a systemd bus (this host boots no systemd) `--systemd-cgroup`
/// fails before anything is made, naming the missing socket; the VM mode
/// `cargo xtask e2e --mode systemd` tests the driver itself (systemd.rs).
#[test]
fn systemd_cgroup_without_a_bus_is_refused_clearly() {
    require_env!();
    if Path::new("/run/dbus/system_bus_socket").exists() {
        println!("SKIPPED: this host has a system bus; tests/tests/systemd.rs covers it");
        return;
    }
    let env = writable_env(&["true"]);
    let id = unique_id("cgsd");
    let b = env.bundle.to_str().expect("bundle").to_string();
    let out = env.rrc(&["--systemd-cgroup", "create", "-b", &b, &id]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("/run/dbus/system_bus_socket does not exist"),
        "{}",
        stderr(&out)
    );
    env.assert_no_leftovers(&id);
}
