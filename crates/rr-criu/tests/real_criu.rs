//! Probes against real CRIU binaries: Debian's 3.17.1 at /usr/sbin/criu and,
//! when `RR_CRIU_BIN` names one, a CRIU 4.2.1 (built by xtask's criu_build).

use std::path::Path;

use rr_criu::{Criu, Error, Version};

const DEBIAN_CRIU: &str = "/usr/sbin/criu";

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn debian_criu_3_17_1_version_and_failing_feature_check() {
    if !Path::new(DEBIAN_CRIU).exists() {
        eprintln!("skipped: {DEBIAN_CRIU} is missing (apt-get install -y criu)");
        return;
    }
    if !is_root() {
        eprintln!("skipped: CRIU's RPC service needs root");
        return;
    }
    let criu = Criu::new(DEBIAN_CRIU);
    let v = criu.version().expect("VERSION probe").clone();
    if v != Version::new(3, 17, 1) {
        eprintln!("skipped: {DEBIAN_CRIU} is {v}, not Debian's 3.17.1");
        return;
    }
    assert_eq!(v.number(), 31701);
    // The `criu -V` fallback agrees with the RPC.
    let out = std::process::Command::new(DEBIAN_CRIU)
        .arg("-V")
        .output()
        .unwrap();
    let dash_v = Version::parse_dash_v(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert_eq!(dash_v.number(), v.number());

    // 3.17.1's vDSO probe fails on this kernel, so FEATURE_CHECK fails; the
    // error must say which CRIU and why.
    match criu.probe() {
        Err(e @ Error::FeatureCheck { .. }) => {
            let msg = e.to_string();
            eprintln!("feature check error: {msg}");
            assert!(msg.contains("CRIU 3.17.1"), "{msg}");
            assert!(msg.contains("feature check failed"), "{msg}");
        }
        Ok(p) => panic!("feature check unexpectedly passed on this kernel: {p:?}"),
        Err(e) => panic!("unexpected error kind: {e}"),
    }
    // Cached: the same answer again, and the version still available.
    assert!(criu.features().is_err());
    assert_eq!(criu.version().unwrap(), &v);
    let err = criu
        .require_version(&Version::new(4, 0, 0), "pidfd_store")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "CRIU 3.17.1 found, 4.0 or newer needed for pidfd_store"
    );
    assert!(criu
        .require_version(&Version::new(3, 15, 0), "checkpoint")
        .is_ok());
}

#[test]
fn criu_4_2_1_probe() {
    let Some(bin) = std::env::var_os("RR_CRIU_BIN") else {
        eprintln!("skipped: RR_CRIU_BIN is unset (point it at a CRIU 4.2.1 binary)");
        return;
    };
    if !is_root() {
        eprintln!("skipped: CRIU's RPC service needs root");
        return;
    }
    let criu = Criu::new(&bin);
    let probe = criu.probe().expect("probe of CRIU 4.2.1");
    eprintln!("probe: {probe:?}");
    assert_eq!(probe.version, Version::new(4, 2, 1));
    assert!(!probe.features.mem_track, "mem_track");
    assert!(probe.features.lazy_pages, "lazy_pages");
    assert!(probe.features.pidfd_store, "pidfd_store");
    criu.check().expect("criu check passes with 4.2.1");
}
