//! The systemd driver: the container's cgroup is a transient unit that
//! systemd creates (with the init's pid) and stops; resources go to the
//! unit's properties and, through the v1/v2 manager of the unit's cgroup,
//! to the cgroup files, which also carry what no property does. Freezing,
//! stats and events use the cgroup files, as runc does.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::bus::{self, Bus};
use super::naming::Placement;
use super::props::{self, Flavor, Property};
use crate::error::{Error, Result, Warning};
use crate::{detect_mode, OwnCgroups, DEFAULT_ROOT};

/// A container's cgroup as a systemd unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manager {
    placement: Placement,
    user: bool,
    description: String,
    inner: Box<crate::Manager>,
    /// Whether the unit exists (made by `apply`, or recorded in state).
    started: Cell<bool>,
    /// Resources given before the unit exists: they become properties of
    /// the new unit and are written to its files once it does.
    pending: RefCell<Option<LinuxResources>>,
}

impl Manager {
    /// The unit for a container: `cgroups_path` in `slice:prefix:name` form
    /// (or none: `runc-<id>.scope`); `user` picks the user's manager.
    pub fn new(cgroups_path: Option<&str>, container_id: &str, user: bool) -> Result<Manager> {
        let placement = Placement::parse(cgroups_path, container_id, user)?;
        let mut cgroup = placement.cgroup()?;
        if !user {
            // Fail before anything is made rather than when the init waits.
            let socket = bus::system_socket();
            if !socket.exists() {
                return Err(Error::Systemd(format!(
                    "systemd cgroups need the system D-Bus, and {} does not exist (is systemd running?)",
                    socket.display()
                )));
            }
        }
        if user {
            // The user manager's units live below its own cgroup, e.g.
            // /user.slice/user-1000.slice/user@1000.service.
            let top = Bus::connect(&bus::user_socket()?)?.manager_property("ControlGroup")?;
            cgroup = format!("{}{}", top.trim_end_matches('/'), cgroup);
        }
        let mode = detect_mode()?;
        let inner = crate::Manager::with_root_and_own(
            mode,
            Path::new(DEFAULT_ROOT),
            &OwnCgroups::default(),
            Some(&cgroup),
            container_id,
        )?;
        Ok(Manager {
            placement,
            user,
            description: format!("rr container {container_id}"),
            inner: Box::new(inner),
            started: Cell::new(false),
            pending: RefCell::new(None),
        })
    }

    /// The manager of an existing unit, from what state.json recorded.
    pub fn existing(unit: &str, user: bool, paths: &BTreeMap<String, String>) -> Result<Manager> {
        Ok(Manager {
            placement: Placement {
                slice: String::new(),
                unit: unit.to_string(),
            },
            user,
            description: String::new(),
            inner: Box::new(crate::Manager::from_paths(paths)?),
            started: Cell::new(true),
            pending: RefCell::new(None),
        })
    }

    /// The unit's name.
    pub fn unit(&self) -> &str {
        &self.placement.unit
    }

    /// Whether the unit is the user manager's.
    pub fn is_user(&self) -> bool {
        self.user
    }

    fn bus(&self) -> Result<Bus> {
        let socket = if self.user {
            bus::user_socket()?
        } else {
            bus::system_socket()
        };
        Bus::connect(&socket)
    }

    fn flavor(&self) -> Flavor {
        match *self.inner {
            crate::Manager::V2(_) => Flavor::V2,
            _ => Flavor::V1,
        }
    }

    fn properties_of(&self, r: &LinuxResources) -> Result<Vec<Property>> {
        let devices = std::fs::read_to_string("/proc/devices").unwrap_or_default();
        props::resources(r, self.flavor(), &devices)
    }

    /// The cgroup map to store in state.json.
    pub fn paths(&self) -> BTreeMap<String, String> {
        self.inner.paths()
    }

    /// Starts the unit with `pid` in it and the resources given so far,
    /// waiting for systemd to finish the job; then writes the cgroup files.
    pub fn apply(&self, pid: i32) -> Result<()> {
        let pid = u32::try_from(pid)
            .map_err(|_| Error::Systemd(format!("invalid pid {pid} for unit {}", self.unit())))?;
        let pending = self.pending.borrow_mut().take();
        let scope_pid = (!self.placement.is_slice()).then_some(pid);
        let mut p = props::base(
            &self.placement.slice,
            self.placement.is_slice(),
            &self.description,
            scope_pid,
        );
        if let Some(r) = &pending {
            p.extend(self.properties_of(r)?);
        }
        let mut bus = self.bus()?;
        bus.subscribe_jobs()?;
        // A failed unit of the same name from an earlier container would
        // make the start fail; a running one must.
        let _ = bus.reset_failed_unit(self.unit());
        bus.start_transient_unit(self.unit(), &p)?;
        self.started.set(true);
        // Controllers systemd does not manage (v1) still need the pid.
        self.inner.apply(pid as i32)?;
        if let Some(r) = pending {
            self.inner.set(&r)?;
        }
        Ok(())
    }

    /// Sets the unit's properties and writes the cgroup files; before the
    /// unit exists, keeps the resources for [`Manager::apply`].
    pub(crate) fn write_resources(
        &self,
        r: &LinuxResources,
        restore: bool,
    ) -> Result<Vec<Warning>> {
        let p = self.properties_of(r)?;
        if !self.started.get() {
            *self.pending.borrow_mut() = Some(r.clone());
            return Ok(Vec::new());
        }
        if !p.is_empty() {
            self.bus()?.set_unit_properties(self.unit(), &p)?;
        }
        if restore {
            self.inner.update(r)
        } else {
            self.inner.set(r)
        }
    }

    /// Freezes through the cgroup files.
    pub fn freeze(&self) -> Result<()> {
        self.inner.freeze()
    }

    /// Thaws through the cgroup files.
    pub fn thaw(&self) -> Result<()> {
        self.inner.thaw()
    }

    /// Whether the cgroup is frozen.
    pub fn is_frozen(&self) -> Result<bool> {
        self.inner.is_frozen()
    }

    /// All pids in the unit's cgroup.
    pub fn pids(&self) -> Result<Vec<i32>> {
        self.inner.pids()
    }

    /// Statistics of the unit's cgroup.
    pub fn stats(&self) -> Result<crate::Stats> {
        self.inner.stats()
    }

    /// OOM kills in the unit's cgroup.
    pub fn oom_events(&self) -> Result<crate::OomWatcher> {
        self.inner.oom_events()
    }

    /// Removes the empty cgroups, killing nothing; the unit stays while
    /// processes that are not the container's are in it.
    pub fn release(&self) -> Result<Vec<std::path::PathBuf>> {
        self.inner.release()
    }

    /// Kills what is left, then stops the unit and forgets a failed one.
    /// The kill comes first so that the stop never waits out systemd's
    /// stop timeout; a unit that is gone already is fine.
    pub fn destroy(&self) -> Result<()> {
        self.inner.destroy()?;
        if !self.started.get() {
            return Ok(());
        }
        let mut bus = self.bus()?;
        bus.subscribe_jobs()?;
        match bus.stop_unit(self.unit()) {
            Ok(()) => {}
            Err(Error::SystemdCall { name, .. }) if name.ends_with(".NoSuchUnit") => {}
            Err(e) => return Err(e),
        }
        let _ = bus.reset_failed_unit(self.unit());
        Ok(())
    }
}
