//! Helpers shared by rr's tests (a dev-dependency only, never published):
//! [`fake_resctrl`], fake resctrl trees with the layouts of real hosts,
//! used by rr-intelrdt's tests and by the black-box tests of `rrc`.
//!
//! It depends on no rr crate, so that rr-intelrdt's own tests can use it
//! without linking a second copy of rr-intelrdt.
#![deny(missing_docs)]

pub mod fake_resctrl;
