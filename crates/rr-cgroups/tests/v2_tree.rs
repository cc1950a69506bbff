//! The v2 manager against temp trees standing in for a cgroup2 mount.

use std::collections::BTreeMap;
use std::path::Path;

use rr_cgroups::{Error, Manager, Mode, OwnCgroups};

fn res(json: &str) -> oci_spec::runtime::LinuxResources {
    serde_json::from_str(json).unwrap()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap().trim().to_string()
}

const FILES: &[&str] = &[
    "cgroup.procs",
    "cgroup.events",
    "cgroup.freeze",
    "cpu.weight",
    "cpu.max",
    "cpu.max.burst",
    "cpu.idle",
    "cpuset.cpus",
    "cpuset.mems",
    "memory.max",
    "memory.swap.max",
    "memory.low",
    "memory.high",
    "pids.max",
    "io.weight",
    "io.max",
    "hugetlb.2MB.max",
    "rdma.max",
];

/// A fake hierarchy: `root` with `cgroup.controllers`, and the container
/// directory pre-populated with interface files.
fn tree(controllers: &str, inner: &str) -> (tempfile::TempDir, Manager) {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("cgroup.controllers"), controllers).unwrap();
    std::fs::write(d.path().join("cgroup.subtree_control"), "").unwrap();
    let dir = d.path().join(inner.trim_start_matches('/'));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cgroup.controllers"), controllers).unwrap();
    for f in FILES {
        std::fs::write(dir.join(f), "").unwrap();
    }
    std::fs::write(dir.join("io.max"), "").unwrap();
    std::fs::write(dir.join("cpu.weight"), "100\n").unwrap();
    std::fs::write(dir.join("pids.max"), "max\n").unwrap();
    std::fs::write(dir.join("memory.max"), "max\n").unwrap();
    let own = OwnCgroups::parse("0::/\n").unwrap();
    let m = Manager::with_root_and_own(Mode::Unified, d.path(), &own, Some(inner), "id").unwrap();
    (d, m)
}

#[test]
fn writes_converted_values() {
    let (d, m) = tree("cpuset cpu io memory hugetlb pids rdma", "/a/b");
    let w = m
        .set(&res(r#"{"cpu":{"shares":1024,"quota":20000,"cpus":"0"},"memory":{"limit":4096,"swap":8192,"reservation":1,"kernelTCP":5},
            "pids":{"limit":7},"blockIO":{"weight":1000,"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":9}]},
            "hugepageLimits":[{"pageSize":"2MB","limit":-1}],"rdma":{"mlx":{"hcaObjects":4}},"unified":{"memory.high":"100"}}"#))
        .unwrap();
    assert_eq!(w.len(), 1);
    let dir = d.path().join("a/b");
    let want = [
        ("cpu.weight", "100"),
        ("cpu.max", "20000 100000"),
        ("cpuset.cpus", "0"),
        ("memory.max", "4096"),
        ("memory.swap.max", "4096"),
        ("memory.low", "1"),
        ("pids.max", "7"),
        ("io.weight", "default 10000"),
        ("io.max", "8:0 rbps=9"),
        ("hugetlb.2MB.max", "max"),
        ("rdma.max", "mlx hca_object=4"),
        ("memory.high", "100"),
    ];
    for (f, v) in want {
        assert_eq!(read(&dir.join(f)), v, "{f}");
    }
    // Controllers were enabled on the way down (each "+x" write replaces the fake file).
    assert!(read(&d.path().join("cgroup.subtree_control")).starts_with('+'));
    assert_eq!(
        m.paths(),
        BTreeMap::from([(String::new(), dir.to_string_lossy().into_owned())])
    );
}

#[test]
fn missing_files_are_errors_naming_them() {
    let (d, m) = tree("cpu pids", "/c");
    std::fs::remove_file(d.path().join("c/memory.max")).unwrap();
    let e = m.set(&res(r#"{"memory":{"limit":4096}}"#)).unwrap_err();
    assert!(
        matches!(&e, Error::ControllerMissing { controller, file } if controller == "memory" && file == "memory.max"),
        "{e}"
    );
    std::fs::remove_file(d.path().join("c/cpu.idle")).unwrap();
    let e = m.set(&res(r#"{"cpu":{"idle":1}}"#)).unwrap_err();
    assert!(
        matches!(&e, Error::Unsupported { controller, file, .. } if controller == "cpu" && file == "cpu.idle"),
        "{e}"
    );
    let e = m
        .set(&res(r#"{"unified":{"cpu.nonexistent":"1"}}"#))
        .unwrap_err();
    assert!(e.to_string().contains("cpu.nonexistent"), "{e}");
    // Nothing was written before the error.
    assert_eq!(read(&d.path().join("c/pids.max")), "max");
}

#[test]
fn update_restores_every_written_value() {
    let (d, m) = tree("cpu memory pids", "/u");
    let dir = d.path().join("u");
    m.set(&res(r#"{"cpu":{"shares":2048},"pids":{"limit":5}}"#))
        .unwrap();
    let weight = read(&dir.join("cpu.weight"));
    // hugetlb.2MB.max becomes a directory: the write fails after cpu, memory, pids.
    std::fs::remove_file(dir.join("hugetlb.2MB.max")).unwrap();
    std::fs::create_dir(dir.join("hugetlb.2MB.max")).unwrap();
    let e = m
        .update(&res(r#"{"cpu":{"shares":100},"memory":{"limit":1000},"pids":{"limit":9},"hugepageLimits":[{"pageSize":"2MB","limit":1}]}"#))
        .unwrap_err();
    assert!(e.to_string().contains("hugetlb.2MB.max"), "{e}");
    assert!(
        matches!(&e, Error::UpdateFailed { restore_failures, .. } if restore_failures.is_empty()),
        "{e}"
    );
    assert_eq!(read(&dir.join("cpu.weight")), weight);
    assert_eq!(read(&dir.join("memory.max")), "max");
    assert_eq!(read(&dir.join("pids.max")), "5");
}

#[test]
fn freeze_waits_for_events_and_stats_parse() {
    let (d, m) = tree("cpu memory pids io", "/f");
    let dir = d.path().join("f");
    std::fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
    m.freeze().unwrap();
    assert_eq!(read(&dir.join("cgroup.freeze")), "1");
    assert!(m.is_frozen().unwrap());
    std::fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
    m.thaw().unwrap();
    assert!(!m.is_frozen().unwrap());

    std::fs::write(dir.join("cpu.stat"), "usage_usec 10\nuser_usec 6\nsystem_usec 4\nnr_periods 3\nnr_throttled 1\nthrottled_usec 2\n").unwrap();
    std::fs::write(dir.join("memory.current"), "4096\n").unwrap();
    std::fs::write(dir.join("memory.max"), "8192\n").unwrap();
    std::fs::write(
        dir.join("memory.events"),
        "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n",
    )
    .unwrap();
    std::fs::write(dir.join("memory.stat"), "anon 100\nfile 200\n").unwrap();
    std::fs::write(dir.join("pids.current"), "2\n").unwrap();
    std::fs::write(dir.join("pids.max"), "max\n").unwrap();
    std::fs::write(
        dir.join("io.stat"),
        "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n",
    )
    .unwrap();
    std::fs::write(dir.join("cgroup.procs"), "11\n").unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/cgroup.procs"), "12\n13\n").unwrap();
    let s = m.stats().unwrap();
    assert_eq!(
        (s.cpu.usage.total, s.cpu.usage.user, s.cpu.usage.kernel),
        (10_000, 6_000, 4_000)
    );
    assert_eq!(s.cpu.throttling.throttled_time, 2_000);
    assert_eq!(
        (
            s.memory.usage.usage,
            s.memory.usage.limit,
            s.memory.usage.failcnt
        ),
        (4096, 8192, 5)
    );
    assert_eq!(s.memory.cache, 200);
    assert_eq!((s.pids.current, s.pids.limit), (2, 0));
    assert_eq!(s.blkio.io_service_bytes_recursive.len(), 3);
    assert_eq!(m.pids().unwrap(), vec![11, 12, 13]);
    let mut w = m.oom_events().unwrap();
    assert_eq!(w.count().unwrap(), 1);
    assert_eq!(
        w.wait(Some(std::time::Duration::from_millis(20))).unwrap(),
        rr_cgroups::OomWait::Timeout
    );
}

#[test]
fn from_paths_and_destroy() {
    let (d, m) = tree("cpu", "/x/y");
    let back = Manager::from_paths(&m.paths()).unwrap();
    assert_eq!(back.paths(), m.paths());
    assert!(Manager::from_paths(&BTreeMap::new()).is_err());
    let mixed = BTreeMap::from([
        (String::new(), "/a".to_string()),
        ("cpu".to_string(), "/b".to_string()),
    ]);
    // A hybrid host's map: v1 subsystems plus the unified cgroup (runc's
    // layout too) is a v1 manager.
    assert!(matches!(Manager::from_paths(&mixed), Ok(Manager::V1(_))));
    std::fs::write(d.path().join("x/y/cgroup.kill"), "").unwrap();
    std::fs::create_dir(d.path().join("x/y/child")).unwrap();
    m.destroy().unwrap();
    assert!(!d.path().join("x/y").exists());
    assert!(d.path().join("x").exists());
    m.destroy().unwrap();
}

#[test]
fn set_creates_nested_dirs_and_removes_them_on_error() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("cgroup.controllers"), "cpu").unwrap();
    let own = OwnCgroups::parse("0::/runtime.scope\n").unwrap();
    // Relative: placed next to the runtime's own cgroup.
    let m = Manager::with_root_and_own(Mode::Unified, d.path(), &own, Some("p/q/r"), "id").unwrap();
    assert_eq!(m.paths()[""], d.path().join("p/q/r").to_string_lossy());
    // The freshly made directories hold no interface files, so the write fails...
    assert!(m.set(&res(r#"{"pids":{"limit":3}}"#)).is_err());
    // ...and everything it created is gone again.
    assert!(!d.path().join("p").exists());
    // Bad input is refused before anything is created.
    assert!(m.set(&res(r#"{"cpu":{"cpus":"zz"}}"#)).is_err());
    assert!(!d.path().join("p").exists());
    m.set(&res("{}")).unwrap();
    assert!(d.path().join("p/q/r").is_dir());
}
