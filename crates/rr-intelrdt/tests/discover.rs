//! Discovery through RR_RESCTRL_ROOT. Its own test binary (own process), so
//! setting the variable cannot disturb other tests; one test function, so
//! nothing in this process races with it.

mod common;

use common::FakeHost;
use rr_intelrdt::{Resctrl, ROOT_ENV};

#[test]
fn root_env_points_discovery_at_a_fake_tree() {
    let h = FakeHost::amd();
    std::env::set_var(ROOT_ENV, &h.root);
    let r = Resctrl::discover().unwrap().expect("found");
    assert_eq!(r.root(), h.root.as_path());
    assert!(!r.mba_mbps());
    assert!(r.capabilities().unwrap().resource("SMBA").is_some());

    // A path that is not a directory is an error, not a silent fallback.
    let file = h.path("tasks");
    std::env::set_var(ROOT_ENV, &file);
    assert!(Resctrl::discover().is_err());
    std::env::set_var(ROOT_ENV, h.path("does-not-exist"));
    assert!(Resctrl::discover().is_err());

    // Empty means unset: back to the real search, which on a machine
    // without resctrl finds nothing.
    std::env::set_var(ROOT_ENV, "");
    let real = Resctrl::discover().unwrap();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    if !mountinfo.contains(" - resctrl ") {
        assert_eq!(real, None);
    }
    std::env::remove_var(ROOT_ENV);
}
