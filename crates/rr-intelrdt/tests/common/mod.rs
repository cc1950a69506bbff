//! The fake resctrl trees of rr-test-support (shared with the black-box
//! tests of `rrc`), and rr-intelrdt's handle on them.

#![allow(dead_code)]

use rr_intelrdt::Resctrl;
pub use rr_test_support::fake_resctrl::FakeHost;

/// rr-intelrdt's handle on a fake tree.
pub trait HostExt {
    /// A [`Resctrl`] at the tree's root.
    fn resctrl(&self) -> Resctrl;
}

impl HostExt for FakeHost {
    fn resctrl(&self) -> Resctrl {
        Resctrl::at(&self.root)
    }
}

/// The `intel_mba` host mounted with `-o mba_MBps` (the root shows MBps).
pub fn intel_mbps() -> (FakeHost, Resctrl) {
    let h = FakeHost::intel_mba();
    h.write("schemata", "L3:0=7ff;1=7ff\nMB:0=4294967295;1=4294967295\n");
    let r = h.resctrl().with_mba_mbps(true);
    (h, r)
}
