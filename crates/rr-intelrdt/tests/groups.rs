//! Groups against fake trees: create, reuse, remove, assign, monitor,
//! stats, and kernel rejections quoted from info/last_cmd_status.

mod common;

use std::fs;

use common::{FakeHost, HostExt};
use rr_intelrdt::{Error, Group, GroupName, IntelRdtConfig, Schemata};

fn s(text: &str) -> Schemata {
    Schemata::parse(text).unwrap()
}

#[test]
fn create_writes_canonical_schemata_and_remove_cleans_up() {
    let h = FakeHost::intel_cdp();
    let r = h.resctrl();
    let asked = s("L3CODE:0=0x000ff;1=ff\n  MB:0=50");
    let g = Group::create_or_reuse(&r, GroupName::ContainerId("ctr1"), Some(&asked)).unwrap();
    assert!(g.created_by_us());
    assert_eq!(g.path(), h.path("ctr1"));
    assert_eq!(h.read("ctr1/schemata"), "L3CODE:0=ff;1=ff\nMB:0=50\n");
    h.kernel_populates_group(g.path(), &[0, 1]);

    g.add_task(4242).unwrap();
    assert_eq!(h.read("ctr1/tasks"), "4242");
    assert_eq!(g.tasks().unwrap(), vec![4242]);

    assert!(g.remove_if_created().unwrap());
    assert!(!h.exists("ctr1"));
    // Removing twice is harmless.
    assert!(g.remove_if_created().unwrap());
}

#[test]
fn invalid_schemata_creates_nothing() {
    let h = FakeHost::intel_mba();
    let e = Group::create_or_reuse(
        &h.resctrl(),
        GroupName::ContainerId("c"),
        Some(&s("L3:0=404")),
    )
    .unwrap_err();
    assert!(matches!(e, Error::CbmNotContiguous { .. }));
    assert!(!h.exists("c"));
}

#[test]
fn clos_id_without_schemata_must_exist() {
    let h = FakeHost::intel_mba();
    let r = h.resctrl();
    let e = Group::create_or_reuse(&r, GroupName::ClosId("guaranteed"), None).unwrap_err();
    assert!(matches!(e, Error::GroupMissing { ref clos_id, .. } if clos_id == "guaranteed"));
    assert!(!h.exists("guaranteed"));

    // Pre-configured by an administrator: joined, never removed by rr.
    h.write("guaranteed/schemata", "L3:0=7f0;1=7f0\nMB:0=50;1=50\n");
    let g = Group::create_or_reuse(&r, GroupName::ClosId("guaranteed"), None).unwrap();
    assert!(!g.created_by_us());
    assert!(!g.remove_if_created().unwrap());
    assert!(h.exists("guaranteed"));
}

#[test]
fn container_id_without_schemata_is_created() {
    let h = FakeHost::amd();
    let g = Group::create_or_reuse(&h.resctrl(), GroupName::ContainerId("c2"), None).unwrap();
    assert!(g.created_by_us());
    assert!(h.exists("c2"));
    assert!(!h.exists("c2/schemata"), "nothing to write");
}

#[test]
fn existing_group_must_match() {
    let h = FakeHost::intel_mba();
    let r = h.resctrl();
    // The kernel prints masks without leading zeros, and lists all domains.
    h.write("shared/schemata", "L3:0=7f0;1=7ff\nMB:0=50;1=100\n");
    let g = Group::create_or_reuse(
        &r,
        GroupName::ClosId("shared"),
        Some(&s("L3:0=07f0\nMB:0=50")),
    )
    .unwrap();
    assert!(!g.created_by_us());

    let e =
        Group::create_or_reuse(&r, GroupName::ClosId("shared"), Some(&s("L3:0=3f0"))).unwrap_err();
    assert_eq!(
        e.to_string(),
        "group shared: its schemata has L3 domain 0 = 7f0, the configuration asks for 3f0"
    );
    assert_eq!(
        h.read("shared/schemata"),
        "L3:0=7f0;1=7ff\nMB:0=50;1=100\n",
        "untouched"
    );
}

#[test]
fn shared_group_created_by_us_is_kept_while_used() {
    let h = FakeHost::intel_mba();
    let r = h.resctrl();
    let g = Group::create_or_reuse(&r, GroupName::ClosId("batch"), Some(&s("L3:0=3"))).unwrap();
    assert!(g.created_by_us());
    h.kernel_populates_group(g.path(), &[0]);
    fs::write(g.path().join("tasks"), "777\n").unwrap();
    assert!(
        !g.remove_if_created().unwrap(),
        "another container still uses it"
    );
    fs::write(g.path().join("tasks"), "").unwrap();
    assert!(g.remove_if_created().unwrap());
    assert!(!h.exists("batch"));
}

#[test]
fn clos_ids_run_out() {
    let h = FakeHost::intel_cdp(); // 8 closids: root + 7
    let r = h.resctrl();
    for i in 0..7 {
        Group::create_or_reuse(&r, GroupName::ContainerId(&format!("c{i}")), None).unwrap();
    }
    let e = Group::create_or_reuse(&r, GroupName::ContainerId("c7"), None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "no free CLOS: 8 control group(s), the root group included, already use all 8 closids that L3CODE has (info/L3CODE/num_closids)"
    );
    assert!(!h.exists("c7"));
    // Reusing an existing group needs no new CLOS.
    Group::create_or_reuse(&r, GroupName::ContainerId("c3"), None).unwrap();
}

#[test]
fn monitoring_only_host_has_no_control_groups() {
    let h = FakeHost::monitoring_only();
    let r = h.resctrl();
    let e = Group::create_or_reuse(&r, GroupName::ContainerId("c"), None).unwrap_err();
    assert!(matches!(e, Error::AllocationUnsupported));
    // Monitoring happens under the root group instead.
    let root = Group::root(&r);
    let m = root.monitoring_group("c").unwrap();
    assert!(m.created_by_us());
    assert_eq!(m.path(), h.path("mon_groups/c"));
    m.add_task(99).unwrap();
    assert_eq!(m.tasks().unwrap(), vec![99]);
    assert!(m.remove_if_created().unwrap());
    assert!(!h.exists("mon_groups/c"));
    assert!(
        !root.remove_if_created().unwrap(),
        "the root group is never removed"
    );
    assert!(h.exists("tasks"));
}

#[test]
fn monitoring_group_and_stats() {
    let h = FakeHost::intel_mba();
    let r = h.resctrl();
    let g = Group::create_or_reuse(&r, GroupName::ContainerId("web"), Some(&s("L3:0=f"))).unwrap();
    h.kernel_populates_group(g.path(), &[0, 1]);
    let m = g.monitoring_group("web").unwrap();
    assert_eq!(m.path(), h.path("web/mon_groups/web"));
    h.kernel_populates_group(m.path(), &[0, 1]);
    m.add_task(1234).unwrap();
    assert_eq!(h.read("web/mon_groups/web/tasks"), "1234");

    let st = m.stats().unwrap();
    assert_eq!(st.domains.len(), 2);
    let d1 = st.domain(1).unwrap();
    assert_eq!(d1.llc_occupancy, Some(8192));
    assert_eq!(d1.mbm_total_bytes, None, "Unavailable");
    assert_eq!(d1.mbm_local_bytes, Some(1001));

    // The root group's counters, from the tree's own mon_data.
    let st = Group::root(&r).stats().unwrap();
    assert_eq!(st.domain(0).unwrap().mbm_total_bytes, Some(123456789));

    // A counter the kernel could not read is an error that names the file.
    fs::write(m.path().join("mon_data/mon_L3_00/llc_occupancy"), "Error\n").unwrap();
    let e = m.stats().unwrap_err();
    assert!(matches!(e, Error::BadCounter { ref value, .. } if value == "Error"));

    // Reuse does not claim ownership.
    let again = g.monitoring_group("web").unwrap();
    assert!(!again.created_by_us());
    assert!(!again.remove_if_created().unwrap());
    assert!(m.remove_if_created().unwrap());
    assert!(!h.exists("web/mon_groups/web"));
}

#[test]
fn monitoring_needs_l3_mon() {
    let h = FakeHost::intel_mba();
    fs::remove_dir_all(h.path("info/L3_MON")).unwrap();
    let g = Group::create_or_reuse(&h.resctrl(), GroupName::ContainerId("x"), None).unwrap();
    let e = g.monitoring_group("x").unwrap_err();
    assert!(matches!(e, Error::MonitoringUnsupported));
}

#[test]
fn kernel_rejection_quotes_last_cmd_status() {
    let h = FakeHost::intel_mba();
    let r = h.resctrl();
    let g = Group::create_or_reuse(&r, GroupName::ContainerId("k"), None).unwrap();
    // The fake kernel refuses writes: the file is a directory.
    fs::create_dir(g.path().join("schemata")).unwrap();
    h.write("info/last_cmd_status", "Overlaps with exclusive group\n");
    let e = g.set_schemata(&s("L3:0=3")).unwrap_err();
    match &e {
        Error::KernelRejected {
            written,
            last_cmd_status,
            path,
            ..
        } => {
            assert_eq!(written, "L3:0=3\n");
            assert_eq!(
                last_cmd_status.as_deref(),
                Some("Overlaps with exclusive group")
            );
            assert!(path.ends_with("k/schemata"));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        e.to_string()
            .ends_with("; info/last_cmd_status: Overlaps with exclusive group"),
        "{e}"
    );

    fs::create_dir(g.path().join("tasks")).unwrap();
    h.write("info/last_cmd_status", "No task 4242\n");
    let e = g.add_task(4242).unwrap_err();
    assert!(e.to_string().contains("No task 4242"), "{e}");
}

#[test]
fn rejected_schemata_on_create_removes_the_new_group() {
    // A real refusal of the write that follows a successful mkdir: the
    // fake tree lives on a tmpfs that has exactly one inode left, so the
    // group directory can be made but its schemata file cannot.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    let mnt = tempfile::tempdir().unwrap();
    let mp = mnt.path().to_str().unwrap().to_string();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "rr-intelrdt-test", &mp])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    }
    let result = std::panic::catch_unwind(|| {
        let h = FakeHost::intel_mba_in(mnt.path());
        h.write("info/last_cmd_status", "Out of inodes (fake kernel)\n");
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        let c = std::ffi::CString::new(mp.clone()).unwrap();
        assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0);
        let used = st.f_files - st.f_ffree;
        let remount = std::process::Command::new("mount")
            .args(["-o", &format!("remount,nr_inodes={}", used + 1), &mp])
            .status()
            .unwrap();
        assert!(remount.success());

        let e = Group::create_or_reuse(
            &h.resctrl(),
            GroupName::ContainerId("rb"),
            Some(&s("MB:0=30")),
        )
        .unwrap_err();
        match &e {
            Error::KernelRejected {
                written,
                last_cmd_status,
                ..
            } => {
                assert_eq!(written, "MB:0=30\n");
                assert_eq!(
                    last_cmd_status.as_deref(),
                    Some("Out of inodes (fake kernel)")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(
            !h.exists("rb"),
            "the group made for the rejected schemata is removed"
        );
    });
    let _ = std::process::Command::new("umount").arg(&mp).status();
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

#[test]
fn closid_that_escapes_is_refused() {
    let h = FakeHost::intel_mba();
    let r = h.resctrl();
    for bad in ["/", "..", ".", "../escape", "info", "a/b"] {
        let e = Group::create_or_reuse(&r, GroupName::ClosId(bad), Some(&s("L3:0=3"))).unwrap_err();
        assert!(matches!(e, Error::InvalidClosId { .. }), "{bad}: {e}");
    }
    // A symbolic link in the root would resolve elsewhere.
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), h.path("evil")).unwrap();
    let e = Group::create_or_reuse(&r, GroupName::ClosId("evil"), None).unwrap_err();
    assert!(matches!(e, Error::InvalidClosId { .. }), "{e}");
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
}

#[test]
fn oci_config_end_to_end() {
    let h = FakeHost::intel_cdp();
    let r = h.resctrl();
    let caps = r.capabilities().unwrap();
    let root = r.root_schemata().unwrap();
    let cfg = IntelRdtConfig {
        l3_cache_schema: Some("L3CODE:0=ff;1=ff\nL3DATA:0=ff;1=ff".into()),
        mem_bw_schema: Some("MB:0=40;1=40".into()),
        schemata: vec!["L3DATA:1=f00".into()],
        enable_monitoring: true,
        ..Default::default()
    };
    let schemata = cfg.validate(&caps, &root).unwrap().unwrap();
    let g = Group::create_or_reuse(&r, cfg.group_name("ctr"), Some(&schemata)).unwrap();
    assert_eq!(
        h.read("ctr/schemata"),
        "L3CODE:0=ff;1=ff\nL3DATA:0=ff;1=f00\nMB:0=40;1=40\n"
    );
    h.kernel_populates_group(g.path(), &[0, 1]);
    let m = g.monitoring_group("ctr").unwrap();
    assert!(m.created_by_us());

    // The same config on the non-CDP host fails before anything is made.
    let h2 = FakeHost::intel_mba();
    let r2 = h2.resctrl();
    let e = cfg
        .validate(&r2.capabilities().unwrap(), &r2.root_schemata().unwrap())
        .unwrap_err();
    assert!(matches!(e, Error::UnknownResource { ref resource, .. } if resource == "L3CODE"));

    // Monitoring asked on a host without it.
    fs::remove_dir_all(h.path("info/L3_MON")).unwrap();
    let e = cfg.validate(&r.capabilities().unwrap(), &root).unwrap_err();
    assert!(matches!(e, Error::MonitoringUnsupported));

    // A bad closID is caught by validate too.
    let bad = IntelRdtConfig {
        clos_id: Some("/".into()),
        ..Default::default()
    };
    assert!(matches!(
        bad.validate(&caps, &root),
        Err(Error::InvalidClosId { .. })
    ));
}
