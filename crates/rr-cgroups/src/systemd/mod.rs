//! The systemd cgroup driver (`--systemd-cgroup`).
//!
//! [`naming`] and [`props`] are pure: where a unit goes and which
//! properties carry a container's resources. The D-Bus client (`wire`,
//! `bus`) and the `Manager` come with the `systemd` feature (plain names
//! here: links to them would dangle in a build without it).

pub mod naming;
pub mod props;

#[cfg(feature = "systemd")]
pub mod bus;
#[cfg(feature = "systemd")]
mod manager;
#[cfg(feature = "systemd")]
pub mod wire;

#[cfg(feature = "systemd")]
pub use manager::Manager;
pub use naming::Placement;
