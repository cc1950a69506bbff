//! Bad input is refused and leaves no cgroup behind.

mod common;

use std::path::Path;

use common::*;
use rr_cgroups::Error;

fn assert_gone(m: &rr_cgroups::Manager, top: &str) {
    for p in m.paths().values() {
        assert!(!Path::new(p).exists(), "{p} left behind");
        let t = Path::new(p)
            .ancestors()
            .find(|a| a.ends_with(top.trim_start_matches('/')))
            .unwrap();
        assert!(!t.exists(), "{} left behind", t.display());
    }
}

#[test]
fn v1_bad_input_leaves_nothing() {
    if !need_v1(&["cpu", "cpuset", "memory", "pids", "devices"]) {
        return;
    }
    let ncpu = std::fs::read_to_string("/sys/fs/cgroup/cpuset/cpuset.effective_cpus").unwrap();
    let last = rr_cgroups::plan::expand_list(ncpu.trim())
        .unwrap()
        .into_iter()
        .max()
        .unwrap();
    let outside = format!(r#"{{"cpu":{{"cpus":"{}"}}}}"#, last + 64);
    let cases: Vec<(&str, String, &str)> = vec![
        ("neg", r#"{"memory":{"limit":-5}}"#.into(), "memory.limit"),
        ("shares", r#"{"cpu":{"shares":1}}"#.into(), "cpu.shares"),
        ("quota", r#"{"cpu":{"quota":-9}}"#.into(), "cpu.quota"),
        ("pids", r#"{"pids":{"limit":-2}}"#.into(), "pids.limit"),
        (
            "swapless",
            r#"{"memory":{"limit":1000000,"swap":10}}"#.into(),
            "memory.swap",
        ),
        ("cpuset", outside, "cpuset.cpus"),
        (
            "devtype",
            r#"{"devices":[{"allow":true,"type":"p","access":"rwm"}]}"#.into(),
            "devices[0].type",
        ),
        ("netcls", r#"{"network":{"classID":5}}"#.into(), "net_cls"),
    ];
    for (name, json, needle) in cases {
        let (m, _g) = v1_manager(&format!("bad-{name}"));
        let e = m.set(&res(&json)).unwrap_err();
        assert!(e.to_string().contains(needle), "{name}: {e}");
        assert_gone(&m, &top_name(&format!("bad-{name}")));
    }
}

#[test]
fn unknown_device_type_is_a_parse_error() {
    let r: Result<oci_spec::runtime::LinuxResources, _> =
        serde_json::from_str(r#"{"devices":[{"allow":true,"type":"x"}]}"#);
    assert!(r.is_err());
}

#[test]
fn v1_missing_controller_names_it() {
    if !need_v1(&["cpu"]) {
        return;
    }
    // A plain directory named net_cls is not a mounted controller.
    if Path::new("/sys/fs/cgroup/net_cls/cgroup.procs").exists() {
        eprintln!("skipping: net_cls is mounted here");
        return;
    }
    let (m, _g) = v1_manager("nonet");
    match m.set(&res(r#"{"network":{"classID":5}}"#)).unwrap_err() {
        Error::ControllerMissing { controller, file } => {
            assert_eq!(
                (controller.as_str(), file.as_str()),
                ("net_cls", "net_cls.classid")
            )
        }
        e => panic!("unexpected {e}"),
    }
}
