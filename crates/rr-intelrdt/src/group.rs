//! Control groups (`<root>/<name>`) and monitoring groups
//! (`<group>/mon_groups/<id>`): create or reuse, assign tasks, remove only
//! what rr created.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::closid::group_path;
use crate::error::{io_err, Error, Result};
use crate::resctrl::{read_schemata, Resctrl};
use crate::schemata::Schemata;
use crate::stats::{read_stats, Stats};

/// How a control group is named, which decides what happens when it is
/// missing or present (OCI runtime spec, `linux.intelRdt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupName<'a> {
    /// An explicit `closID`: a group that may be shared with others. Given
    /// without schemata, it must already exist.
    ClosId(&'a str),
    /// No `closID`: the group is named after the container and is the
    /// container's own.
    ContainerId(&'a str),
}

impl<'a> GroupName<'a> {
    /// The directory name.
    pub fn as_str(&self) -> &'a str {
        match self {
            GroupName::ClosId(s) | GroupName::ContainerId(s) => s,
        }
    }
}

/// A resctrl control group.
#[derive(Debug, Clone)]
pub struct Group {
    resctrl: Resctrl,
    path: PathBuf,
    name: String,
    shared: bool,
    created_by_us: bool,
}

impl Group {
    /// Creates the group `name` under the resctrl root, or reuses it when it
    /// exists.
    ///
    /// - The name must pass [`crate::validate_clos_id`] and resolve inside
    ///   the root.
    /// - `schemata`, when given and not empty, is first checked against the
    ///   host ([`Resctrl::validate`]); nothing is created or written when
    ///   that fails.
    /// - A [`GroupName::ClosId`] without schemata must already exist
    ///   ([`Error::GroupMissing`]).
    /// - An existing group must already hold every value `schemata` asks
    ///   for ([`Error::SchemataMismatch`]); it is then joined as it is.
    /// - A new group needs a free CLOS ([`Error::ClosIdsExhausted`]); it
    ///   is created, `schemata` written to it, and it is marked
    ///   [`Group::created_by_us`]. If the kernel rejects the schemata, the
    ///   new directory is removed again and the error quotes
    ///   `info/last_cmd_status`.
    pub fn create_or_reuse(
        resctrl: &Resctrl,
        name: GroupName<'_>,
        schemata: Option<&Schemata>,
    ) -> Result<Group> {
        let path = group_path(resctrl.root(), name.as_str())?;
        let schemata = schemata.filter(|s| !s.is_empty());
        let caps = resctrl.capabilities()?;
        if let Some(s) = schemata {
            caps.validate(s, &resctrl.root_schemata()?)?;
        }
        let mut group = Group {
            resctrl: resctrl.clone(),
            path,
            name: name.as_str().to_string(),
            shared: matches!(name, GroupName::ClosId(_)),
            created_by_us: false,
        };
        if group.path.is_dir() {
            if let Some(s) = schemata {
                group.check_matches(s)?;
            }
            return Ok(group);
        }
        if let (GroupName::ClosId(id), None) = (name, schemata) {
            return Err(Error::GroupMissing {
                clos_id: id.to_string(),
                path: group.path,
            });
        }
        caps.check_clos_available(resctrl.control_groups()?.len() + 1)?;
        match fs::create_dir(&group.path) {
            Ok(()) => group.created_by_us = true,
            // Someone made it between our look and our mkdir: join theirs.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                if let Some(s) = schemata {
                    group.check_matches(s)?;
                }
                return Ok(group);
            }
            Err(source) => return Err(kernel_error(resctrl, &group.path, "mkdir".into(), source)),
        }
        if let Some(s) = schemata {
            if let Err(e) = group.set_schemata(s) {
                // Best effort: the error that matters is the rejection.
                let _ = remove_group_dir(&group.path);
                return Err(e);
            }
        }
        Ok(group)
    }

    /// A group made earlier (by a `create` whose state was saved), found
    /// again by name so that `update`, stats and `delete` can act on it.
    /// `created_by_us` is what [`Group::created_by_us`] said then. The
    /// name is checked as in [`Group::create_or_reuse`]; the directory must
    /// exist.
    pub fn open(resctrl: &Resctrl, name: GroupName<'_>, created_by_us: bool) -> Result<Group> {
        let path = group_path(resctrl.root(), name.as_str())?;
        if !path.is_dir() {
            return Err(Error::Io {
                path,
                source: std::io::Error::from_raw_os_error(libc::ENOENT),
            });
        }
        Ok(Group {
            resctrl: resctrl.clone(),
            path,
            name: name.as_str().to_string(),
            shared: matches!(name, GroupName::ClosId(_)),
            created_by_us,
        })
    }

    /// The root (default) group: where every task starts. It is never
    /// removed; on a host with monitoring but no allocation it is the only
    /// group under which monitoring groups can be made.
    pub fn root(resctrl: &Resctrl) -> Group {
        Group {
            resctrl: resctrl.clone(),
            path: resctrl.root().to_path_buf(),
            name: String::new(),
            shared: true,
            created_by_us: false,
        }
    }

    /// The group's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The group's name (empty for the root group).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True when this call created the directory (so rr may remove it).
    pub fn created_by_us(&self) -> bool {
        self.created_by_us
    }

    /// Reads the group's schemata.
    pub fn schemata(&self) -> Result<Schemata> {
        read_schemata(&self.path.join("schemata"))
    }

    /// Writes `schemata` (its canonical text, in one write) to the group.
    /// It is not validated here: use [`Resctrl::validate`] first. A kernel
    /// rejection is returned as [`Error::KernelRejected`] with
    /// `info/last_cmd_status`.
    pub fn set_schemata(&self, schemata: &Schemata) -> Result<()> {
        write_kernel_file(
            &self.resctrl,
            &self.path.join("schemata"),
            schemata.to_string(),
        )
    }

    /// Moves task `pid` into the group (writes it to `tasks`).
    pub fn add_task(&self, pid: u32) -> Result<()> {
        write_kernel_file(&self.resctrl, &self.path.join("tasks"), pid.to_string())
    }

    /// The task ids listed in the group's `tasks`.
    pub fn tasks(&self) -> Result<Vec<u32>> {
        read_tasks(&self.path.join("tasks"))
    }

    /// Creates (or reuses) the monitoring group `<group>/mon_groups/<id>`.
    pub fn monitoring_group(&self, id: &str) -> Result<MonitoringGroup> {
        MonitoringGroup::create_or_reuse(self, id)
    }

    /// The group's monitoring counters, per L3 domain.
    pub fn stats(&self) -> Result<Stats> {
        read_stats(&self.path.join("mon_data"))
    }

    /// Removes the group if this `Group` created it, and returns whether it
    /// did. A group named by an explicit closID may have been joined by
    /// other containers since, so it is kept while its `tasks` lists any.
    pub fn remove_if_created(&self) -> Result<bool> {
        self.remove_if_created_ignoring(&[])
    }

    /// [`Group::remove_if_created`], where the tasks in `own` (the
    /// container's own, killed but possibly not yet reaped: a zombie stays
    /// listed in `tasks`) do not count as other users of a shared group.
    pub fn remove_if_created_ignoring(&self, own: &[u32]) -> Result<bool> {
        if !self.created_by_us {
            return Ok(false);
        }
        if self.shared
            && self
                .tasks()
                .unwrap_or_default()
                .iter()
                .any(|t| !own.contains(t))
        {
            return Ok(false);
        }
        remove_group_dir(&self.path)?;
        Ok(true)
    }

    fn check_matches(&self, asked: &Schemata) -> Result<()> {
        let existing = self.schemata()?;
        for line in asked.lines() {
            for d in &line.domains {
                let have = existing.get(&line.resource, d.id);
                if have != Some(&d.value) {
                    return Err(Error::SchemataMismatch {
                        group: self.name.clone(),
                        resource: line.resource.clone(),
                        domain: d.id,
                        existing: have.map_or_else(|| "nothing".to_string(), |v| v.to_string()),
                        asked: d.value.to_string(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// A monitoring group, `<group>/mon_groups/<id>`: its own RMID, so its
/// counters cover only its tasks.
#[derive(Debug, Clone)]
pub struct MonitoringGroup {
    resctrl: Resctrl,
    path: PathBuf,
    created_by_us: bool,
}

impl MonitoringGroup {
    /// Creates `<group>/mon_groups/<id>`, or reuses it. The host must have
    /// monitoring ([`Error::MonitoringUnsupported`]); `id` follows the
    /// closID rules.
    pub fn create_or_reuse(group: &Group, id: &str) -> Result<MonitoringGroup> {
        let resctrl = &group.resctrl;
        if resctrl.capabilities()?.monitoring.is_none() {
            return Err(Error::MonitoringUnsupported);
        }
        let path = group_path(&group.path.join("mon_groups"), id)?;
        let created_by_us = match fs::create_dir(&path) {
            Ok(()) => true,
            Err(e) if e.kind() == ErrorKind::AlreadyExists && path.is_dir() => false,
            Err(source) => return Err(kernel_error(resctrl, &path, "mkdir".into(), source)),
        };
        Ok(MonitoringGroup {
            resctrl: resctrl.clone(),
            path,
            created_by_us,
        })
    }

    /// The monitoring group `<group>/mon_groups/<id>` made earlier, found
    /// again; `created_by_us` is what [`MonitoringGroup::created_by_us`]
    /// said then. The directory must exist.
    pub fn open(group: &Group, id: &str, created_by_us: bool) -> Result<MonitoringGroup> {
        let path = group_path(&group.path.join("mon_groups"), id)?;
        if !path.is_dir() {
            return Err(Error::Io {
                path,
                source: std::io::Error::from_raw_os_error(libc::ENOENT),
            });
        }
        Ok(MonitoringGroup {
            resctrl: group.resctrl.clone(),
            path,
            created_by_us,
        })
    }

    /// The monitoring group's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when this call created the directory.
    pub fn created_by_us(&self) -> bool {
        self.created_by_us
    }

    /// Moves task `pid` into the monitoring group.
    pub fn add_task(&self, pid: u32) -> Result<()> {
        write_kernel_file(&self.resctrl, &self.path.join("tasks"), pid.to_string())
    }

    /// The task ids listed in its `tasks`.
    pub fn tasks(&self) -> Result<Vec<u32>> {
        read_tasks(&self.path.join("tasks"))
    }

    /// Its counters, per L3 domain.
    pub fn stats(&self) -> Result<Stats> {
        read_stats(&self.path.join("mon_data"))
    }

    /// Removes the monitoring group if this value created it; returns
    /// whether it did.
    pub fn remove_if_created(&self) -> Result<bool> {
        if !self.created_by_us {
            return Ok(false);
        }
        remove_group_dir(&self.path)?;
        Ok(true)
    }
}

fn kernel_error(resctrl: &Resctrl, path: &Path, written: String, source: std::io::Error) -> Error {
    Error::KernelRejected {
        path: path.to_path_buf(),
        written,
        source,
        last_cmd_status: resctrl
            .last_cmd_status()
            .filter(|s| !s.is_empty() && s != "ok"),
    }
}

/// One `write(2)` of the whole text: resctrl parses each write on its own.
fn write_kernel_file(resctrl: &Resctrl, path: &Path, text: String) -> Result<()> {
    match fs::write(path, text.as_bytes()) {
        Ok(()) => Ok(()),
        Err(source) => Err(kernel_error(resctrl, path, text, source)),
    }
}

fn read_tasks(path: &Path) -> Result<Vec<u32>> {
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    text.split_whitespace()
        .map(|t| {
            crate::schemata::parse_decimal_u32(t).ok_or_else(|| Error::BadCounter {
                path: path.to_path_buf(),
                value: t.to_string(),
            })
        })
        .collect()
}

/// On resctrl, `rmdir` of a group succeeds although the kernel shows files
/// in it. A directory that is not on resctrl (a fake tree in tests) keeps
/// the files rr wrote, so there the contents are removed too; that only
/// happens to a directory this crate created.
fn remove_group_dir(path: &Path) -> Result<()> {
    match fs::remove_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e)
            if e.raw_os_error() == Some(libc::ENOTEMPTY) && !crate::resctrl::is_resctrl(path) =>
        {
            fs::remove_dir_all(path).map_err(io_err(path))
        }
        Err(source) => Err(Error::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}
