//! cgroup v1 against the real kernel (needs root and the v1 controllers).

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use common::*;
use rr_cgroups::{Error, OomWait};

fn vda() -> Option<String> {
    std::fs::read_to_string("/sys/block/vda/dev")
        .ok()
        .map(|s| s.trim().to_string())
}

#[test]
fn apply_moves_pid_into_every_hierarchy() {
    if !need_v1(&["cpu", "memory", "pids", "freezer"]) {
        return;
    }
    let (m, _g) = v1_manager("apply");
    let w = Waiting::spawn("sleep 100");
    m.apply(w.pid()).unwrap();
    let cg = read(format!("/proc/{}/cgroup", w.pid()));
    let top = top_name("apply");
    for line in cg.lines().filter(|l| !l.starts_with("0::")) {
        assert!(
            line.ends_with(&format!("{top}/ctr")),
            "{line} not in {top}/ctr"
        );
    }
    assert_eq!(m.pids().unwrap(), vec![w.pid()]);
    // The stored map rebuilds the same manager.
    let again = rr_cgroups::Manager::from_paths(&m.paths()).unwrap();
    assert_eq!(again.pids().unwrap(), vec![w.pid()]);
}

/// The first of `files` that the kernel offers in the root of `controller`'s
/// hierarchy (a new cgroup has the same files), printing what is skipped
/// when none is there.
fn offered(controller: &str, files: &[&str]) -> Option<String> {
    let root = Path::new("/sys/fs/cgroup").join(controller);
    let found = files.iter().find(|f| root.join(f).exists());
    if found.is_none() {
        eprintln!("SKIPPED part: this kernel has none of {files:?} in {controller}");
    }
    found.map(|f| f.to_string())
}

#[test]
fn set_values_read_back() {
    if !need_v1(&["cpu", "cpuset", "memory", "pids", "blkio", "devices"]) {
        return;
    }
    let (m, _g) = v1_manager("readback");
    let dev = vda();
    let throttle = dev.as_deref().map_or(String::new(), |d| {
        let (ma, mi) = d.split_once(':').unwrap();
        format!(r#","throttleReadBpsDevice":[{{"major":{ma},"minor":{mi},"rate":1048576}}],"throttleWriteIOPSDevice":[{{"major":{ma},"minor":{mi},"rate":100}}]"#)
    });
    // Kernels without CFQ/BFQ have no weight file at all (6.18 here).
    let weight_file = offered("blkio", &["blkio.weight", "blkio.bfq.weight"]);
    let weight = if weight_file.is_some() {
        r#""weight":200"#
    } else {
        ""
    };
    let burst = offered("cpu", &["cpu.cfs_burst_us"]).map_or("", |_| r#","burst":1000"#);
    let idle = offered("cpu", &["cpu.idle"]).map_or("", |_| r#","idle":0"#);
    let memsw = offered("memory", &["memory.memsw.limit_in_bytes"]);
    let swap = if memsw.is_some() {
        r#","swap":134217728"#
    } else {
        ""
    };
    let throttle = if weight.is_empty() {
        throttle.trim_start_matches(',').to_string()
    } else {
        throttle
    };
    let r = res(&format!(
        r#"{{"cpu":{{"shares":512,"quota":50000,"period":100000{burst}{idle},"cpus":"0","mems":"0"}},
        "memory":{{"limit":67108864{swap},"reservation":33554432,"swappiness":10,"disableOOMKiller":false,"kernel":1}},
        "pids":{{"limit":20}},
        "blockIO":{{{weight}{throttle}}},
        "devices":[{{"allow":false,"access":"rwm"}},{{"allow":true,"type":"c","major":1,"minor":5,"access":"rwm"}}]}}"#
    ));
    let warnings = m.set(&r).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].field.contains("memory.kernel"));
    let cpu = dir(&m, "cpu");
    assert_eq!(read(cpu.join("cpu.shares")), "512");
    assert_eq!(read(cpu.join("cpu.cfs_quota_us")), "50000");
    assert_eq!(read(cpu.join("cpu.cfs_period_us")), "100000");
    if !burst.is_empty() {
        assert_eq!(read(cpu.join("cpu.cfs_burst_us")), "1000");
    }
    if !idle.is_empty() {
        assert_eq!(read(cpu.join("cpu.idle")), "0");
    }
    let cs = dir(&m, "cpuset");
    assert_eq!(read(cs.join("cpuset.cpus")), "0");
    assert_eq!(read(cs.join("cpuset.mems")), "0");
    let mem = dir(&m, "memory");
    assert_eq!(read(mem.join("memory.limit_in_bytes")), "67108864");
    if memsw.is_some() {
        assert_eq!(read(mem.join("memory.memsw.limit_in_bytes")), "134217728");
    }
    assert_eq!(read(mem.join("memory.soft_limit_in_bytes")), "33554432");
    assert_eq!(read(mem.join("memory.swappiness")), "10");
    assert!(read(mem.join("memory.oom_control")).contains("oom_kill_disable 0"));
    assert_eq!(read(dir(&m, "pids").join("pids.max")), "20");
    let blk = dir(&m, "blkio");
    if let Some(f) = &weight_file {
        let got = read(blk.join(f));
        assert!(got.ends_with("200"), "{f}: {got}");
    }
    if let Some(d) = dev {
        assert_eq!(
            read(blk.join("blkio.throttle.read_bps_device")),
            format!("{d} 1048576")
        );
        assert_eq!(
            read(blk.join("blkio.throttle.write_iops_device")),
            format!("{d} 100")
        );
    }
    assert_eq!(read(dir(&m, "devices").join("devices.list")), "c 1:5 rwm");

    if memsw.is_some() {
        // Raising the limit above the current memsw works because memsw goes first.
        m.update(&res(r#"{"memory":{"limit":268435456,"swap":536870912}}"#))
            .unwrap();
        assert_eq!(read(mem.join("memory.limit_in_bytes")), "268435456");
        assert_eq!(read(mem.join("memory.memsw.limit_in_bytes")), "536870912");
        m.update(&res(
            r#"{"memory":{"limit":-1,"swap":-1},"pids":{"limit":-1}}"#,
        ))
        .unwrap();
    } else {
        m.update(&res(r#"{"memory":{"limit":-1},"pids":{"limit":-1}}"#))
            .unwrap();
    }
    assert_eq!(read(dir(&m, "pids").join("pids.max")), "max");
    if !idle.is_empty() {
        // An idle group is scheduled with the lowest weight.
        m.update(&res(r#"{"cpu":{"idle":1}}"#)).unwrap();
        assert_eq!(read(cpu.join("cpu.idle")), "1");
    }
}

/// Where the kernel has no blkio weight file, asking for a weight is an
/// error naming the file (runc fails the same way), not a silent no-op.
#[test]
fn weight_without_weight_file_names_it() {
    if !need_v1(&["blkio"]) {
        return;
    }
    if offered("blkio", &["blkio.weight", "blkio.bfq.weight"]).is_some() {
        eprintln!("SKIPPED: this kernel has a blkio weight file");
        return;
    }
    let (m, _g) = v1_manager("noweight");
    let e = m.set(&res(r#"{"blockIO":{"weight":200}}"#)).unwrap_err();
    assert!(e.to_string().contains("blkio.weight"), "{e}");
}

#[test]
fn realtime_where_supported() {
    if !need_v1(&["cpu"]) {
        return;
    }
    if !Path::new("/sys/fs/cgroup/cpu/cpu.rt_runtime_us").exists() {
        eprintln!("skipping: kernel without RT group scheduling");
        return;
    }
    // Directly under the root, which holds the RT budget.
    let own = rr_cgroups::OwnCgroups::current().unwrap();
    let p = top_name("rt");
    let m = rr_cgroups::Manager::with_root_and_own(
        rr_cgroups::Mode::Legacy,
        Path::new("/sys/fs/cgroup"),
        &own,
        Some(&p),
        "x",
    )
    .unwrap();
    let _g = Guard(m.clone());
    m.set(&res(
        r#"{"cpu":{"realtimePeriod":1000000,"realtimeRuntime":10000}}"#,
    ))
    .unwrap();
    let cpu = dir(&m, "cpu");
    assert_eq!(read(cpu.join("cpu.rt_period_us")), "1000000");
    assert_eq!(read(cpu.join("cpu.rt_runtime_us")), "10000");
}

#[test]
fn devices_v1_denied_device_cannot_be_opened() {
    if !need_v1(&["devices"]) {
        return;
    }
    let (m, _g) = v1_manager("devices");
    let mut w = Waiting::spawn("(: </dev/null) 2>/dev/null && echo null-ok || echo null-denied; (: </dev/zero) && echo zero-ok || echo zero-denied; sleep 100");
    m.apply(w.pid()).unwrap();
    m.set(&res(r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":5,"access":"rwm"}]}"#)).unwrap();
    w.go();
    assert_eq!(w.line(), "null-denied");
    assert_eq!(w.line(), "zero-ok");
}

#[test]
fn pids_limit_stops_forks() {
    if !need_v1(&["pids"]) {
        return;
    }
    let (m, _g) = v1_manager("pids");
    let mut w = Waiting::spawn("for i in 1 2 3 4 5 6; do sleep 100 >/dev/null 2>&1 & done; wait");
    m.apply(w.pid()).unwrap();
    m.set(&res(r#"{"pids":{"limit":3}}"#)).unwrap();
    w.go();
    let p = dir(&m, "pids");
    let refused = |t: &str| t.lines().any(|l| l.starts_with("max ") && l != "max 0");
    let mut events = String::new();
    for _ in 0..100 {
        events = read(p.join("pids.events"));
        if refused(&events) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(refused(&events), "no fork was refused: {events}");
    assert_eq!(read(p.join("pids.current")), "3");
    let n = m.pids().unwrap().len();
    assert!((1..=3).contains(&n), "{n} processes");
    let st = m.stats().unwrap();
    assert_eq!((st.pids.current, st.pids.limit), (3, 3));
}

#[test]
fn memory_limit_oom_kills_and_notifies() {
    if !need_v1(&["memory"]) {
        return;
    }
    let (m, _g) = v1_manager("oom");
    let mut w = Waiting::spawn("exec dd if=/dev/zero of=/dev/null bs=64M count=4");
    m.apply(w.pid()).unwrap();
    // Without swap accounting the limit alone must stop the hog (no swap
    // to escape to is counted then, so swap may absorb it: only set memsw
    // where the kernel has it).
    let limits = match offered("memory", &["memory.memsw.limit_in_bytes"]) {
        Some(_) => r#"{"memory":{"limit":16777216,"swap":16777216}}"#,
        None => r#"{"memory":{"limit":16777216}}"#,
    };
    m.set(&res(limits)).unwrap();
    let mut watcher = m.oom_events().unwrap();
    let before = watcher.count().unwrap();
    w.go();
    let got = watcher.wait(Some(Duration::from_secs(20))).unwrap();
    let status = w.child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "dd was not OOM-killed: {status:?}"
    );
    match got {
        OomWait::Oom(n) => assert!(n > before, "{n} <= {before}"),
        other => panic!("expected an OOM notification, got {other:?}"),
    }
    let st = m.stats().unwrap();
    assert_eq!(st.memory.usage.limit, 16_777_216);
    assert_eq!(
        st.memory.usage.max, 16_777_216,
        "the hog never reached the limit"
    );
}

#[test]
fn freeze_stops_a_counter() {
    if !need_v1(&["freezer"]) {
        return;
    }
    let (m, _g) = v1_manager("freeze");
    let f = tempfile::NamedTempFile::new().unwrap();
    let path = f.path().to_path_buf();
    // Appending keeps the file's size a monotonic counter.
    let mut w = Waiting::spawn(&format!("while :; do echo x >> {}; done", path.display()));
    m.apply(w.pid()).unwrap();
    w.go();
    let size = || std::fs::metadata(&path).unwrap().len();
    let moved = |from: u64| {
        (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            size() != from
        })
    };
    assert!(moved(0), "counter never started");
    assert!(!m.is_frozen().unwrap());
    m.freeze().unwrap();
    assert!(m.is_frozen().unwrap());
    let a = size();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(size(), a, "counter moved while frozen");
    let state = proc_state(w.pid());
    assert!(state == 'D' || state == 'S', "frozen task in state {state}");
    m.thaw().unwrap();
    assert!(!m.is_frozen().unwrap());
    assert!(
        moved(a),
        "counter did not resume (state {})",
        proc_state(w.pid())
    );
}

#[test]
fn destroy_kills_leftovers_and_removes_children() {
    if !need_v1(&["memory", "freezer", "pids"]) {
        return;
    }
    let (m, _g) = v1_manager("destroy");
    let mut w = Waiting::spawn("sleep 1000");
    m.apply(w.pid()).unwrap();
    let sub = dir(&m, "memory").join("sub");
    std::fs::create_dir(&sub).unwrap();
    // Frozen containers must still be destroyable.
    m.freeze().unwrap();
    m.destroy().unwrap();
    let status = w.child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    for p in m.paths().values() {
        assert!(!Path::new(p).exists(), "{p} still exists");
    }
    m.destroy().unwrap(); // already gone is fine
}

#[test]
fn stats_are_filled() {
    if !need_v1(&["cpu", "cpuacct", "memory", "pids"]) {
        return;
    }
    let (m, _g) = v1_manager("stats");
    let mut w =
        Waiting::spawn("i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo done; sleep 100");
    m.apply(w.pid()).unwrap();
    w.go();
    assert_eq!(w.line(), "done");
    let s = m.stats().unwrap();
    assert!(s.cpu.usage.total > 0);
    assert!(!s.cpu.usage.percpu.is_empty());
    assert!(s.cpu.usage.user + s.cpu.usage.kernel > 0);
    assert!(s.memory.usage.usage > 0);
    assert!(!s.memory.raw.is_empty());
    assert!(s.pids.current >= 1);
    let v = serde_json::to_value(&s).unwrap();
    assert!(v["cpu"]["usage"]["total"].as_u64().unwrap() > 0);
    assert!(v["memory"]["usage"]["usage"].as_u64().unwrap() > 0);
}

#[test]
fn update_rolls_back_on_failure() {
    if !need_v1(&["cpu", "pids", "blkio", "memory"]) {
        return;
    }
    let (m, _g) = v1_manager("rollback");
    m.set(&res(r#"{"cpu":{"shares":512},"pids":{"limit":10}}"#))
        .unwrap();
    let mem = dir(&m, "memory");
    let old_limit = read(mem.join("memory.limit_in_bytes"));
    // The throttle for a device that does not exist fails after the others.
    let e = m
        .update(&res(
            r#"{"cpu":{"shares":256},"memory":{"limit":104857600},"pids":{"limit":20},
            "blockIO":{"throttleReadBpsDevice":[{"major":4000,"minor":77,"rate":5}]}}"#,
        ))
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("blkio.throttle.read_bps_device"), "{msg}");
    assert!(
        matches!(&e, Error::UpdateFailed { restore_failures, .. } if restore_failures.is_empty()),
        "{msg}"
    );
    assert_eq!(read(dir(&m, "cpu").join("cpu.shares")), "512");
    assert_eq!(read(dir(&m, "pids").join("pids.max")), "10");
    assert_eq!(read(mem.join("memory.limit_in_bytes")), old_limit);
}

#[test]
fn update_rolls_back_device_rules() {
    if !need_v1(&["devices", "pids"]) {
        return;
    }
    let (m, _g) = v1_manager("devrollback");
    m.set(&res(r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"}]}"#)).unwrap();
    let dl = dir(&m, "devices").join("devices.list");
    assert_eq!(read(&dl), "c 1:3 rwm");
    let e = m
        .update(&res(r#"{"devices":[{"allow":true,"type":"c","major":1,"minor":5,"access":"rwm"}],"pids":{"limit":5},
            "blockIO":{"throttleReadBpsDevice":[{"major":4000,"minor":77,"rate":5}]}}"#))
        .unwrap_err();
    assert!(e.to_string().contains("blkio.throttle"), "{e}");
    assert_eq!(read(&dl), "c 1:3 rwm");
}

/// A parent cpuset another create has made but not filled yet (its cpus and
/// mems still empty) is filled too, or no task could join the container's
/// cgroup (ENOSPC): two containers under one new parent raced here.
#[test]
fn empty_cpuset_parent_made_by_someone_else_is_filled() {
    if !need_v1(&["cpuset"]) {
        return;
    }
    let (m, _g) = v1_manager("cpuset-parent");
    let parent =
        Path::new("/sys/fs/cgroup/cpuset").join(top_name("cpuset-parent").trim_start_matches('/'));
    std::fs::create_dir_all(&parent).unwrap();
    assert_eq!(
        read(parent.join("cpuset.cpus")),
        "",
        "a new cpuset starts empty"
    );
    let w = Waiting::spawn("sleep 100");
    m.apply(w.pid()).unwrap();
    let root_cpus = read("/sys/fs/cgroup/cpuset/cpuset.cpus");
    assert_eq!(read(parent.join("cpuset.cpus")), root_cpus);
    assert_eq!(read(dir(&m, "cpuset").join("cpuset.cpus")), root_cpus);
    assert_eq!(m.pids().unwrap(), vec![w.pid()]);
}

/// The kernel refusing a value (a throttle for a device that does not
/// exist) names the spec field the value came from, then the file.
#[test]
fn kernel_refusal_names_the_spec_field() {
    if !need_v1(&["blkio"]) {
        return;
    }
    let (m, _g) = v1_manager("refusal");
    let e = m
        .set(&res(
            r#"{"blockIO":{"throttleReadBpsDevice":[{"major":4000,"minor":77,"rate":5}]}}"#,
        ))
        .unwrap_err();
    let msg = e.to_string();
    let file = dir(&m, "blkio").join("blkio.throttle.read_bps_device");
    let want = format!(
        "linux.resources.blockIO.throttleReadBpsDevice: writing \"4000:77 5\" to {}: ",
        file.display()
    );
    assert!(msg.starts_with(&want), "{msg}");
    assert!(matches!(&e, Error::Write { field: Some(_), .. }), "{msg}");
}
