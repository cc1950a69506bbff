//! cgroup v1 and v2 managers.
//!
//! Mode detection, path resolution, resource limits, freezing, statistics
//! and OOM events for the cgroups of a container. [`Manager`] picks the v1
//! or v2 implementation for the host at run time.
//!
//! Library code never prints: `set`/`update` return [`Warning`]s for
//! fields they ignored.
#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::path::Path;

use oci_spec::runtime::LinuxResources;

pub mod bpf;
pub mod convert;
pub mod devices;
mod error;
pub mod fsio;
pub mod mode;
pub mod mounts;
pub mod oom;
pub mod paths;
pub mod plan;
pub mod stats;
mod sys;
pub mod systemd;
pub mod v1;
pub mod v2;

pub use error::{Error, Result, Warning};
pub use mode::{detect_mode, detect_mode_at, Mode, DEFAULT_ROOT};
pub use oom::{OomWait, OomWatcher};
pub use paths::OwnCgroups;
pub use stats::Stats;

/// A container's cgroup(s), managed with the host's cgroup version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manager {
    /// v1 (legacy or hybrid hosts).
    V1(v1::Manager),
    /// v2 (unified hosts).
    V2(v2::Manager),
    /// A systemd unit (the `systemd` feature).
    #[cfg(feature = "systemd")]
    Systemd(Box<systemd::Manager>),
}

macro_rules! each {
    ($self:ident, $m:ident => $e:expr) => {
        match $self {
            Manager::V1($m) => $e,
            Manager::V2($m) => $e,
            #[cfg(feature = "systemd")]
            Manager::Systemd($m) => $e,
        }
    };
}

impl Manager {
    /// Resolve the container's cgroup(s) on this host: `cgroups_path` from
    /// the spec (`None` -> the container id, relative to the runtime's own cgroup).
    pub fn new(cgroups_path: Option<&str>, container_id: &str) -> Result<Manager> {
        let mode = detect_mode()?;
        Self::with_root(mode, Path::new(DEFAULT_ROOT), cgroups_path, container_id)
    }

    /// As [`Manager::new`] for a given mode and cgroup root (v1: the tmpfs
    /// holding the hierarchies; v2: the cgroup2 mount).
    pub fn with_root(
        mode: Mode,
        root: &Path,
        cgroups_path: Option<&str>,
        container_id: &str,
    ) -> Result<Manager> {
        let own = OwnCgroups::current()?;
        Self::with_root_and_own(mode, root, &own, cgroups_path, container_id)
    }

    /// As [`Manager::with_root`] with the runtime's own cgroups given
    /// rather than read from `/proc/self/cgroup`.
    pub fn with_root_and_own(
        mode: Mode,
        root: &Path,
        own: &OwnCgroups,
        cgroups_path: Option<&str>,
        container_id: &str,
    ) -> Result<Manager> {
        if mode.uses_v1() {
            let mut m = v1::Manager::new(root, own, cgroups_path, container_id)?;
            if mode == Mode::Hybrid {
                m = m.with_unified(&root.join("unified"), own, cgroups_path, container_id)?;
            }
            Ok(Manager::V1(m))
        } else {
            Ok(Manager::V2(v2::Manager::new(
                root,
                own,
                cgroups_path,
                container_id,
            )?))
        }
    }

    /// The container's cgroup as a transient systemd unit, placed by a
    /// `slice:prefix:name` cgroupsPath; `user`: the user's manager.
    #[cfg(feature = "systemd")]
    pub fn systemd(cgroups_path: Option<&str>, container_id: &str, user: bool) -> Result<Manager> {
        Ok(Manager::Systemd(Box::new(systemd::Manager::new(
            cgroups_path,
            container_id,
            user,
        )?)))
    }

    /// Rebuild from the map stored in state.json (runc's `cgroup_paths`: v1
    /// subsystem name -> absolute dir; v2: key `""` -> dir; hybrid: both).
    pub fn from_paths(paths: &BTreeMap<String, String>) -> Result<Manager> {
        match paths.get("") {
            Some(p) if paths.len() == 1 => Ok(Manager::V2(v2::Manager::from_path(Path::new(p))?)),
            _ => Ok(Manager::V1(v1::Manager::from_paths(paths)?)),
        }
    }

    /// The map to store in state.json.
    pub fn paths(&self) -> BTreeMap<String, String> {
        each!(self, m => m.paths())
    }

    /// Create the directories as needed and write `pid` to `cgroup.procs`.
    pub fn apply(&self, pid: i32) -> Result<()> {
        each!(self, m => m.apply(pid))
    }

    /// Write every resource in `resources`. Invalid values are rejected
    /// before anything is written; directories this call had to create are
    /// removed again on failure. Returns warnings for ignored fields.
    pub fn set(&self, resources: &LinuxResources) -> Result<Vec<Warning>> {
        each!(self, m => m.write_resources(resources, false))
    }

    /// As [`Manager::set`], but when a write fails every value already
    /// written is restored; the error names the failing file.
    pub fn update(&self, resources: &LinuxResources) -> Result<Vec<Warning>> {
        each!(self, m => m.write_resources(resources, true))
    }

    /// Freeze every process.
    pub fn freeze(&self) -> Result<()> {
        each!(self, m => m.freeze())
    }

    /// Thaw every process.
    pub fn thaw(&self) -> Result<()> {
        each!(self, m => m.thaw())
    }

    /// Whether the cgroup is frozen.
    pub fn is_frozen(&self) -> Result<bool> {
        each!(self, m => m.is_frozen())
    }

    /// All pids, recursively.
    pub fn pids(&self) -> Result<Vec<i32>> {
        each!(self, m => m.pids())
    }

    /// Resource statistics.
    pub fn stats(&self) -> Result<Stats> {
        each!(self, m => m.stats())
    }

    /// A watcher for OOM kills.
    pub fn oom_events(&self) -> Result<OomWatcher> {
        each!(self, m => m.oom_events())
    }

    /// Remove the directories that hold no process, killing nothing (for
    /// cgroups shared with processes that are not the container's).
    /// Returns the directories left because they still hold processes.
    pub fn release(&self) -> Result<Vec<std::path::PathBuf>> {
        each!(self, m => m.release())
    }

    /// Kill what is left (thawing first if frozen), remove the directories
    /// children first, retrying on EBUSY; fine if already gone.
    pub fn destroy(&self) -> Result<()> {
        each!(self, m => m.destroy())
    }
}
