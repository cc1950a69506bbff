//! Intel RDT (resctrl) for container runtimes.
//!
//! runc validates none of a container's schemata and leaves the kernel to
//! reject it with a bare `EINVAL`; this crate checks the content against
//! what the host reports under `info/` before anything is written, and says
//! which line, resource, domain and rule is wrong.
//!
//! - [`Resctrl`]: find the resctrl mount ([`Resctrl::discover`], or
//!   [`Resctrl::at`] for a given root, [`ROOT_ENV`] to override).
//! - [`Capabilities`]: the host's resources (L3, L3CODE/L3DATA, L2,
//!   L2CODE/L2DATA, MB, SMBA), monitoring and CLOS count.
//! - [`Schemata`]: parse and print schemata text.
//! - [`Capabilities::validate`]: the content rules, one error variant each.
//! - [`validate_clos_id`]: closID names that stay inside the root.
//! - [`Group`], [`MonitoringGroup`], [`Stats`]: create or reuse, assign
//!   tasks, read counters, remove only what was created.
//! - [`IntelRdtConfig`]: the OCI `linux.intelRdt` fields merged into one
//!   schemata and validated.
//!
//! ```
//! use rr_intelrdt::{CacheCaps, Capabilities, Resource, Schemata};
//! # fn main() -> rr_intelrdt::Result<()> {
//! // Normally `Resctrl::discover()?.unwrap().capabilities()?`; here, a
//! // host with code/data prioritization and a 20-bit mask.
//! let l3 = CacheCaps {
//!     cbm_mask: 0xfffff,
//!     min_cbm_bits: 1,
//!     num_closids: 8,
//!     shareable_bits: 0,
//!     sparse_masks: false,
//! };
//! let mut caps = Capabilities::default();
//! caps.resources.insert("L3CODE".into(), Resource::Cache(l3.clone()));
//! caps.resources.insert("L3DATA".into(), Resource::Cache(l3));
//! let root = Schemata::parse("L3DATA:0=fffff;1=fffff\nL3CODE:0=fffff;1=fffff\n")?;
//!
//! caps.validate(&Schemata::parse("L3CODE:0=ff0;1=3ff")?, &root)?;
//! let err = caps
//!     .validate(&Schemata::parse("L3CODE:0=f0f")?, &root)
//!     .unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "L3CODE domain 0: mask f0f is not contiguous (its set bits must form one run, \
//!      and this host does not support sparse masks)"
//! );
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod capabilities;
mod closid;
mod error;
mod group;
mod mountinfo;
mod oci;
mod resctrl;
mod schemata;
mod stats;
mod validate;

pub use capabilities::{
    BandwidthCaps, BandwidthUnit, CacheCaps, Capabilities, MonitoringCaps, Resource,
    AMD_MAX_BANDWIDTH, MAX_PERCENT,
};
pub use closid::{group_path, validate_clos_id};
pub use error::{Error, Result};
pub use group::{Group, GroupName, MonitoringGroup};
pub use mountinfo::{find_resctrl, ResctrlMount};
pub use oci::IntelRdtConfig;
pub use resctrl::{Resctrl, DEFAULT_MOUNT_POINT, RDTGROUP_SUPER_MAGIC, ROOT_ENV};
pub use schemata::{Domain, Line, Schemata, Value, ValueFormat};
pub use stats::{DomainStats, Stats};
