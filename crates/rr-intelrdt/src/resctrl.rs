//! The resctrl filesystem: where it is and what its root holds.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::capabilities::Capabilities;
use crate::error::{io_err, Error, Result};
use crate::mountinfo::find_resctrl;
use crate::schemata::Schemata;

/// The environment variable that makes [`Resctrl::discover`] use the given
/// directory as the resctrl root instead of looking for the real mount. It
/// is the only one this crate reads; tests point it at a fake tree.
pub const ROOT_ENV: &str = "RR_RESCTRL_ROOT";

/// Where the kernel documentation mounts resctrl.
pub const DEFAULT_MOUNT_POINT: &str = "/sys/fs/resctrl";

/// `RDTGROUP_SUPER_MAGIC`, resctrl's `statfs` `f_type`.
pub const RDTGROUP_SUPER_MAGIC: u64 = 0x7655821;

/// Names at the resctrl root that are not control groups.
const NOT_GROUPS: &[&str] = &["info", "mon_groups", "mon_data"];

/// A resctrl filesystem, found by [`Resctrl::discover`] or given by
/// [`Resctrl::at`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resctrl {
    root: PathBuf,
    mba_mbps: bool,
}

impl Resctrl {
    /// Finds the resctrl filesystem: the directory named by [`ROOT_ENV`]
    /// when that is set (an error if it is not a directory); else
    /// `/sys/fs/resctrl` when `statfs` says it is resctrl; else the first
    /// `resctrl` entry of `/proc/self/mountinfo`. `Ok(None)` when resctrl
    /// is not mounted.
    pub fn discover() -> Result<Option<Resctrl>> {
        if let Some(dir) = std::env::var_os(ROOT_ENV).filter(|v| !v.is_empty()) {
            let root = PathBuf::from(dir);
            let meta = fs::metadata(&root).map_err(io_err(&root))?;
            if !meta.is_dir() {
                return Err(Error::Io {
                    path: root,
                    source: std::io::Error::from_raw_os_error(libc::ENOTDIR),
                });
            }
            return Ok(Some(Resctrl::at(&root)));
        }
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mounted = find_resctrl(&mountinfo);
        let default = Path::new(DEFAULT_MOUNT_POINT);
        if is_resctrl(default) {
            let mba_mbps = mounted
                .as_ref()
                .is_some_and(|m| m.mount_point == default && m.mba_mbps);
            return Ok(Some(Resctrl::at(default).with_mba_mbps(mba_mbps)));
        }
        Ok(mounted.map(|m| Resctrl::at(&m.mount_point).with_mba_mbps(m.mba_mbps)))
    }

    /// A resctrl filesystem rooted at `root`, assumed mounted without
    /// `mba_MBps` (see [`Resctrl::with_mba_mbps`]).
    pub fn at(root: &Path) -> Resctrl {
        Resctrl {
            root: root.to_path_buf(),
            mba_mbps: false,
        }
    }

    /// Says whether the filesystem is mounted with `mba_MBps`.
    pub fn with_mba_mbps(mut self, on: bool) -> Resctrl {
        self.mba_mbps = on;
        self
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether MB values are MBps (`mba_MBps` mount option).
    pub fn mba_mbps(&self) -> bool {
        self.mba_mbps
    }

    /// Reads the host's capabilities from `info/`.
    pub fn capabilities(&self) -> Result<Capabilities> {
        Capabilities::read(&self.root, self.mba_mbps)
    }

    /// Reads and parses the root group's `schemata`.
    pub fn root_schemata(&self) -> Result<Schemata> {
        read_schemata(&self.root.join("schemata"))
    }

    /// Checks `schemata` against the capabilities and the root group's
    /// schemata (see [`Capabilities::validate`]).
    pub fn validate(&self, schemata: &Schemata) -> Result<()> {
        self.capabilities()?
            .validate(schemata, &self.root_schemata()?)
    }

    /// The text of `info/last_cmd_status`, trimmed, if it can be read.
    pub fn last_cmd_status(&self) -> Option<String> {
        fs::read_to_string(self.root.join("info").join("last_cmd_status"))
            .ok()
            .map(|s| s.trim().to_string())
    }

    /// The names of the control groups under the root (not counting the
    /// root group itself).
    pub fn control_groups(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(io_err(&self.root))? {
            let entry = entry.map_err(io_err(&self.root))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if is_dir && !NOT_GROUPS.contains(&name.as_str()) {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }
}

pub(crate) fn read_schemata(path: &Path) -> Result<Schemata> {
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    Schemata::parse(&text)
}

pub(crate) fn is_resctrl(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated string and `st` a zeroed
    // statfs the kernel fills; both outlive the call.
    let (rc, st) = unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        let rc = libc::statfs(c.as_ptr(), &mut st);
        (rc, st)
    };
    #[allow(clippy::unnecessary_cast)]
    let magic = st.f_type as u64;
    rc == 0 && magic == RDTGROUP_SUPER_MAGIC
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statfs_of_a_non_resctrl_dir_is_false() {
        assert!(!is_resctrl(Path::new("/")));
        assert!(!is_resctrl(Path::new("/nonexistent/path")));
        assert!(!is_resctrl(Path::new("a\0b")));
    }

    #[test]
    fn real_discovery_matches_the_machine() {
        // Only the environment-free path is checked here (tests that set
        // ROOT_ENV live in the integration tests, in their own process).
        if std::env::var_os(ROOT_ENV).is_some() {
            return;
        }
        let found = Resctrl::discover().unwrap();
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        match found {
            Some(r) => assert!(
                is_resctrl(r.root()) || mountinfo.contains(" - resctrl "),
                "discovered {r:?} without a resctrl mount"
            ),
            None => {
                eprintln!("no resctrl on this machine: discovery correctly returned None");
                assert!(!mountinfo.contains(" - resctrl "));
            }
        }
    }
}
