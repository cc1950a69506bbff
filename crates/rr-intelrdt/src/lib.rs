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
//! use rr_intelrdt::{Capabilities, Schemata};
//! # fn main() -> rr_intelrdt::Result<()> {
//! let root = Schemata::parse("L3:0=fffff;1=fffff\n")?;
//! let caps = Capabilities::default(); // normally Resctrl::capabilities()
//! let asked = Schemata::parse("L3:0=ff0;1=3ff")?;
//! assert!(caps.validate(&asked, &root).is_err()); // no L3 on this empty host
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
