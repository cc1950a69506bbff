//! cgroup v2 on the real cgroup2 mount of a hybrid host
//! (/sys/fs/cgroup/unified): freezing, destroying, the eBPF device program.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use common::*;
use rr_cgroups::bpf;
use rr_cgroups::devices::{access, DeviceKind, DeviceRule};

#[test]
fn device_program_passes_the_verifier() {
    if !is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let rules = [
        DeviceRule {
            allow: false,
            kind: DeviceKind::All,
            major: None,
            minor: None,
            access: access::ALL,
        },
        DeviceRule {
            allow: true,
            kind: DeviceKind::Char,
            major: Some(1),
            minor: Some(5),
            access: access::READ | access::WRITE,
        },
        DeviceRule {
            allow: false,
            kind: DeviceKind::Block,
            major: Some(8),
            minor: None,
            access: access::MKNOD,
        },
        DeviceRule {
            allow: true,
            kind: DeviceKind::All,
            major: None,
            minor: Some(u32::MAX),
            access: access::ALL,
        },
    ];
    match bpf::load(&bpf::device_program(&rules)) {
        Ok(_fd) => {}
        Err(e) => panic!("the kernel rejected the program: {e}"),
    }
}

#[test]
fn denied_device_cannot_be_opened() {
    if !need_v2_mount() {
        return;
    }
    let (m, _g) = v2_manager("bpfdev");
    let script = "(: </dev/null) 2>/dev/null && echo null-ok || echo null-denied; (: </dev/zero) && echo zero-ok || echo zero-denied; read again; (: </dev/null) 2>/dev/null && echo null-ok || echo null-denied; sleep 100";
    let mut w = Waiting::spawn(script);
    m.apply(w.pid()).unwrap();
    m.set(&res(r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":5,"access":"rwm"}]}"#)).unwrap();
    let dir = Path::new(&m.paths()[""]).to_path_buf();
    assert_eq!(bpf::query(&dir).unwrap().len(), 1);
    w.go();
    assert_eq!(w.line(), "null-denied");
    assert_eq!(w.line(), "zero-ok");
    // An update replaces the program rather than stacking a second one.
    m.update(&res(r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rw"}]}"#)).unwrap();
    assert_eq!(bpf::query(&dir).unwrap().len(), 1);
    w.go();
    assert_eq!(w.line(), "null-ok");
}

#[test]
fn freeze_thaw_and_destroy_on_cgroup2() {
    if !need_v2_mount() {
        return;
    }
    let (m, _g) = v2_manager("freeze");
    let f = tempfile::NamedTempFile::new().unwrap();
    let path = f.path().to_path_buf();
    let mut w = Waiting::spawn(&format!("while :; do echo x >> {}; done", path.display()));
    m.apply(w.pid()).unwrap();
    assert_eq!(m.pids().unwrap(), vec![w.pid()]);
    w.go();
    let size = || std::fs::metadata(&path).unwrap().len();
    let moved = |from: u64| {
        (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            size() != from
        })
    };
    assert!(moved(0), "counter never started");
    m.freeze().unwrap();
    assert!(m.is_frozen().unwrap());
    let a = size();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(size(), a, "counter moved while frozen");
    m.thaw().unwrap();
    assert!(!m.is_frozen().unwrap());
    assert!(moved(a), "counter did not resume");
    m.freeze().unwrap();
    let dir = Path::new(&m.paths()[""]).to_path_buf();
    std::fs::create_dir(dir.join("child")).unwrap();
    m.destroy().unwrap();
    assert_eq!(w.child.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert!(!dir.exists());
}

#[test]
fn unavailable_controller_is_named() {
    if !need_v2_mount() {
        return;
    }
    let (m, _g) = v2_manager("nomem");
    let top = top_name("nomem");
    let controllers = read(format!("{UNIFIED}/cgroup.controllers"));
    if controllers.split_whitespace().any(|c| c == "memory") {
        eprintln!("skipping: memory is enabled on this cgroup2 mount");
        return;
    }
    let e = m.set(&res(r#"{"memory":{"limit":1048576}}"#)).unwrap_err();
    match e {
        rr_cgroups::Error::ControllerMissing { controller, file } => {
            assert_eq!(
                (controller.as_str(), file.as_str()),
                ("memory", "memory.max")
            )
        }
        e => panic!("unexpected {e}"),
    }
    assert!(!Path::new(UNIFIED)
        .join(top.trim_start_matches('/'))
        .exists());
}

/// A value the kernel refuses fails with the spec field first, then the
/// file and value: `cgroup.max.depth` exists in every cgroup2 directory
/// and takes only a number or `max`.
#[test]
fn kernel_refusal_names_the_spec_field() {
    if !need_v2_mount() {
        return;
    }
    let (m, _g) = v2_manager("refusal");
    let e = m
        .set(&res(r#"{"unified":{"cgroup.max.depth":"bogus"}}"#))
        .unwrap_err();
    let msg = e.to_string();
    let file = dir(&m, "").join("cgroup.max.depth");
    let want = format!(
        "linux.resources.unified: writing \"bogus\" to {}: ",
        file.display()
    );
    assert!(msg.starts_with(&want), "{msg}");
    assert!(
        matches!(&e, rr_cgroups::Error::Write { source, .. } if source.raw_os_error() == Some(libc::EINVAL)),
        "{msg}"
    );
}
