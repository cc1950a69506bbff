//! Every validator rule, passing and failing, on each fake host layout it
//! applies to.

mod common;

use common::{FakeHost, HostExt};
use rr_intelrdt::{BandwidthUnit, Error, Resctrl, Resource, Result, Schemata};

fn check_with(r: &Resctrl, text: &str) -> Result<()> {
    r.validate(&Schemata::parse(text)?)
}

fn check(h: &FakeHost, text: &str) -> Result<()> {
    check_with(&h.resctrl(), text)
}

// ---- capability model --------------------------------------------------------

#[test]
fn capabilities_of_each_layout() {
    let caps = FakeHost::intel_cdp().resctrl().capabilities().unwrap();
    assert!(caps.cdp("L3"));
    assert!(caps.resource("L3").is_none());
    match caps.resource("L3DATA") {
        Some(Resource::Cache(c)) => {
            assert_eq!(c.cbm_mask, 0xfffff);
            assert_eq!(c.min_cbm_bits, 1);
            assert!(!c.sparse_masks);
        }
        other => panic!("L3DATA: {other:?}"),
    }
    assert_eq!(caps.num_closids(), Some(("L3CODE", 8)));
    let mon = caps.monitoring.as_ref().unwrap();
    assert_eq!(mon.num_rmids, 176);
    assert_eq!(
        mon.mon_features,
        ["llc_occupancy", "mbm_total_bytes", "mbm_local_bytes"]
    );

    let caps = FakeHost::intel_mba().resctrl().capabilities().unwrap();
    match caps.resource("MB") {
        Some(Resource::Bandwidth(b)) => {
            assert_eq!((b.bandwidth_gran, b.min_bandwidth), (10, 10));
            assert!(b.delay_linear);
            assert_eq!(b.unit, BandwidthUnit::Percent);
            assert_eq!(b.max_bandwidth(), Some(100));
        }
        other => panic!("MB: {other:?}"),
    }
    assert_eq!(caps.num_closids(), Some(("MB", 8)));

    let (_h, r) = common::intel_mbps();
    match r.capabilities().unwrap().resource("MB") {
        Some(Resource::Bandwidth(b)) => assert_eq!(b.unit, BandwidthUnit::Mbps),
        other => panic!("MB: {other:?}"),
    }

    let caps = FakeHost::amd().resctrl().capabilities().unwrap();
    for name in ["MB", "SMBA"] {
        match caps.resource(name) {
            Some(Resource::Bandwidth(b)) => {
                assert_eq!(b.unit, BandwidthUnit::AmdUnits, "{name}");
                assert_eq!(b.max_bandwidth(), Some(2048));
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    match caps.resource("L3") {
        Some(Resource::Cache(c)) => assert!(c.sparse_masks && c.min_cbm_bits == 0),
        other => panic!("L3: {other:?}"),
    }

    let caps = FakeHost::monitoring_only()
        .resctrl()
        .capabilities()
        .unwrap();
    assert!(!caps.has_allocation());
    assert!(caps.monitoring.is_some());
}

#[test]
fn a_garbled_info_file_is_named() {
    let h = FakeHost::intel_mba();
    h.write("info/L3/cbm_mask", "zz\n");
    let e = h.resctrl().capabilities().unwrap_err();
    assert!(matches!(e, Error::BadInfoFile { ref path, .. } if path.ends_with("info/L3/cbm_mask")));
}

// ---- resource present ---------------------------------------------------------------

#[test]
fn resource_must_exist_intel_cdp() {
    let h = FakeHost::intel_cdp();
    check(&h, "L3CODE:0=ff\nL3DATA:0=ff00").unwrap();
    let e = check(&h, "L3:0=ff").unwrap_err();
    assert!(matches!(e, Error::UnknownResource { ref resource, .. } if resource == "L3"));
    assert_eq!(
        e.to_string(),
        "resource L3: this host has no such resource (it has: L3CODE, L3DATA, MB); \
         code/data prioritization is on: use L3CODE and L3DATA lines instead"
    );
}

#[test]
fn resource_must_exist_intel_mba() {
    let h = FakeHost::intel_mba();
    check(&h, "L3:0=7f0").unwrap();
    let e = check(&h, "L3DATA:0=ff").unwrap_err();
    assert!(
        e.to_string().contains("code/data prioritization is off"),
        "{e}"
    );
    let e = check(&h, "L2:0=f").unwrap_err();
    assert!(
        matches!(e, Error::UnknownResource { ref resource, ref hint, .. } if resource == "L2" && hint.is_empty())
    );
    let e = check(&h, "SMBA:0=10").unwrap_err();
    assert!(matches!(e, Error::UnknownResource { .. }));
}

#[test]
fn resource_must_exist_amd() {
    let h = FakeHost::amd();
    check(&h, "SMBA:0=1024").unwrap();
    let e = check(&h, "L3CODE:0=ff").unwrap_err();
    assert!(matches!(e, Error::UnknownResource { .. }));
}

#[test]
fn resource_must_exist_monitoring_only() {
    let h = FakeHost::monitoring_only();
    check(&h, "").unwrap();
    let e = check(&h, "L3:0=1").unwrap_err();
    assert_eq!(
        e.to_string(),
        "resource L3: this host has no such resource (it has: no allocation resource)"
    );
}

// ---- domain ids from the root group -------------------------------------------------

#[test]
fn domain_must_be_in_root_schemata() {
    for (h, ok, bad) in [
        (FakeHost::intel_cdp(), "L3CODE:1=ff", "L3CODE:2=ff"),
        (FakeHost::intel_mba(), "MB:1=50", "MB:0=50;7=50"),
        (FakeHost::amd(), "L3:3=ff", "L3:4=ff"),
    ] {
        check(&h, ok).unwrap();
        let e = check(&h, bad).unwrap_err();
        assert!(matches!(e, Error::UnknownDomain { .. }), "{bad}: {e}");
    }
    let e = check(&FakeHost::amd(), "SMBA:9=1").unwrap_err();
    assert_eq!(
        e.to_string(),
        "SMBA domain 9: no such cache/domain id on this host (the root group's schemata lists 0, 1, 2, 3)"
    );
}

#[test]
fn root_schemata_without_the_line_is_reported() {
    let h = FakeHost::intel_mba();
    h.write("schemata", "L3:0=7ff;1=7ff\n");
    let e = check(&h, "MB:0=50").unwrap_err();
    assert!(matches!(e, Error::RootSchemataMissing { ref resource } if resource == "MB"));
}

// ---- cache bit masks ------------------------------------------------------------------

#[test]
fn cbm_inside_mask() {
    let h = FakeHost::intel_cdp();
    check(&h, "L3DATA:0=fffff").unwrap();
    let e = check(&h, "L3DATA:0=1fffff").unwrap_err();
    assert!(matches!(
        e,
        Error::CbmOutsideMask {
            mask: 0x1fffff,
            cbm_mask: 0xfffff,
            ..
        }
    ));

    let h = FakeHost::intel_mba();
    check(&h, "L3:0=7ff").unwrap();
    let e = check(&h, "L3:1=fff").unwrap_err();
    assert_eq!(
        e.to_string(),
        "L3 domain 1: mask fff sets bits outside the host's cbm_mask 7ff"
    );

    let h = FakeHost::amd();
    check(&h, "L3:0=ffff").unwrap();
    let e = check(&h, "L3:0=10000").unwrap_err();
    assert!(matches!(
        e,
        Error::CbmOutsideMask {
            cbm_mask: 0xffff,
            ..
        }
    ));
}

#[test]
fn cbm_contiguous() {
    let h = FakeHost::intel_cdp();
    check(&h, "L3CODE:0=ff0;1=f").unwrap();
    let e = check(&h, "L3CODE:0=f0f").unwrap_err();
    let msg = e.to_string();
    eprintln!("{msg}");
    assert!(matches!(
        e,
        Error::CbmNotContiguous {
            mask: 0xf0f,
            domain: 0,
            ..
        }
    ));
    assert_eq!(
        msg,
        "L3CODE domain 0: mask f0f is not contiguous (its set bits must form one run, and this host does not support sparse masks)"
    );

    // A kernel without sparse_masks (older Intel) requires contiguity too.
    let h = FakeHost::intel_mba();
    check(&h, "L3:0=3f0").unwrap();
    let e = check(&h, "L3:1=401").unwrap_err();
    assert!(matches!(e, Error::CbmNotContiguous { .. }));

    // AMD reports sparse_masks = 1: the rule does not apply there.
    check(&FakeHost::amd(), "L3:0=f0f;1=8001").unwrap();
}

#[test]
fn cbm_min_bits() {
    for h in [FakeHost::intel_cdp(), FakeHost::intel_mba()] {
        let name = if h.exists("info/L3") { "L3" } else { "L3DATA" };
        check(&h, &format!("{name}:0=1")).unwrap();
        let e = check(&h, &format!("{name}:0=0")).unwrap_err();
        assert!(
            matches!(
                e,
                Error::CbmTooFewBits {
                    bits: 0,
                    min_cbm_bits: 1,
                    ..
                }
            ),
            "{e}"
        );
    }
    // A Haswell-like host needs two bits.
    let h = FakeHost::intel_mba();
    h.write("info/L3/min_cbm_bits", "2\n");
    check(&h, "L3:0=3").unwrap();
    let e = check(&h, "L3:0=4").unwrap_err();
    assert_eq!(
        e.to_string(),
        "L3 domain 0: mask 4 has a run of 1 set bit(s), the host needs at least min_cbm_bits = 2"
    );
    // AMD's min_cbm_bits is 0: an empty mask is accepted.
    check(&FakeHost::amd(), "L3:0=0").unwrap();
}

// ---- memory bandwidth ---------------------------------------------------------------------

#[test]
fn bandwidth_range_intel_percent() {
    for h in [FakeHost::intel_mba(), FakeHost::intel_cdp()] {
        check(&h, "MB:0=10;1=100").unwrap();
        let e = check(&h, "MB:0=0").unwrap_err();
        assert!(matches!(
            e,
            Error::BandwidthOutOfRange {
                value: 0,
                min: 10,
                max: 100,
                ..
            }
        ));
        let e = check(&h, "MB:1=110").unwrap_err();
        assert_eq!(
            e.to_string(),
            "MB domain 1: bandwidth 110 is outside [10, 100] (percent of the maximum bandwidth)"
        );
    }
}

#[test]
fn bandwidth_range_amd_units() {
    let h = FakeHost::amd();
    check(&h, "MB:0=0;1=2048;2=37\nSMBA:3=512").unwrap();
    let e = check(&h, "MB:2=2049").unwrap_err();
    assert!(matches!(
        e,
        Error::BandwidthOutOfRange {
            max: 2048,
            min: 0,
            ..
        }
    ));
    let e = check(&h, "SMBA:0=4096").unwrap_err();
    assert!(e.to_string().contains("AMD bandwidth units"), "{e}");
}

#[test]
fn bandwidth_granularity() {
    let h = FakeHost::intel_mba();
    check(&h, "MB:0=50;1=70").unwrap();
    let e = check(&h, "MB:0=55").unwrap_err();
    assert!(matches!(
        e,
        Error::BandwidthNotMultiple {
            value: 55,
            gran: 10,
            rounded: 60,
            ..
        }
    ));
    assert_eq!(
        e.to_string(),
        "MB domain 0: bandwidth 55 is not a multiple of bandwidth_gran 10 (the kernel would silently round it up to 60)"
    );
    // AMD's granularity is 1.
    check(&FakeHost::amd(), "MB:0=55").unwrap();
}

#[test]
fn bandwidth_mbps_mode_accepts_mbps() {
    let (_h, r) = common::intel_mbps();
    check_with(&r, "MB:0=5000;1=7000").unwrap();
    check_with(&r, "MB:0=5").unwrap();
    // Without the mount option the same value is an out-of-range percentage.
    let e = check(&FakeHost::intel_mba(), "MB:0=5000").unwrap_err();
    assert!(matches!(e, Error::BandwidthOutOfRange { .. }));
    // A value that is not a number is still a syntax error.
    assert!(matches!(
        Schemata::parse("MB:0=5000MBps").unwrap_err(),
        Error::BadBandwidth { .. }
    ));
}

// ---- CLOS count ------------------------------------------------------------------------------

#[test]
fn clos_count_per_layout() {
    for (h, num) in [
        (FakeHost::intel_cdp(), 8usize),
        (FakeHost::intel_mba(), 8),
        (FakeHost::amd(), 16),
    ] {
        let caps = h.resctrl().capabilities().unwrap();
        // The root group holds CLOS 0.
        caps.check_clos_available(num - 1).unwrap();
        let e = caps.check_clos_available(num).unwrap_err();
        assert!(
            matches!(e, Error::ClosIdsExhausted { num_closids, .. } if num_closids as usize == num)
        );
    }
    let caps = FakeHost::monitoring_only()
        .resctrl()
        .capabilities()
        .unwrap();
    assert!(matches!(
        caps.check_clos_available(1),
        Err(Error::AllocationUnsupported)
    ));
}
