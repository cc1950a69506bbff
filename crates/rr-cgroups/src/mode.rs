//! Detecting whether the host runs cgroup v1, hybrid or unified v2.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::{Error, Result};

/// The default mount point of the cgroup hierarchies.
pub const DEFAULT_ROOT: &str = "/sys/fs/cgroup";

/// `f_type` of a cgroup2 file system.
pub const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
/// `f_type` of tmpfs, which holds the v1 mount points.
pub const TMPFS_MAGIC: i64 = 0x0102_1994;
/// `f_type` of a v1 cgroup hierarchy.
pub const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;

/// How cgroups are laid out on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only v1 hierarchies.
    Legacy,
    /// v1 controllers plus a (controller-less) cgroup2 at `<root>/unified`.
    Hybrid,
    /// A single cgroup2 hierarchy at the root.
    Unified,
}

impl Mode {
    /// Whether resources are managed with the v1 manager in this mode.
    pub fn uses_v1(self) -> bool {
        !matches!(self, Mode::Unified)
    }
}

/// The file system type of `path`, or `None` if it does not exist.
pub fn fs_magic(path: &Path) -> Result<Option<i64>> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::Mode {
        path: path.to_path_buf(),
        reason: "path contains a NUL byte".into(),
    })?;
    // SAFETY: an all-zero statfs is a valid value for this plain C struct.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated string, `st` a writable statfs.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENOENT) {
            return Ok(None);
        }
        return Err(Error::Io {
            path: path.to_path_buf(),
            source: e,
        });
    }
    #[allow(clippy::unnecessary_cast)]
    Ok(Some(st.f_type as i64))
}

/// Decide the mode from the file system types of the root and of
/// `<root>/unified` (pure, so it can be tested without mounts).
pub fn classify(root: &Path, root_magic: i64, unified_magic: Option<i64>) -> Result<Mode> {
    match root_magic {
        CGROUP2_SUPER_MAGIC => Ok(Mode::Unified),
        TMPFS_MAGIC if unified_magic == Some(CGROUP2_SUPER_MAGIC) => Ok(Mode::Hybrid),
        TMPFS_MAGIC => Ok(Mode::Legacy),
        other => Err(Error::Mode {
            path: root.to_path_buf(),
            reason: format!("file system type {other:#x} is neither cgroup2 nor tmpfs"),
        }),
    }
}

/// Detect the mode of the hierarchies mounted at `root`.
pub fn detect_mode_at(root: &Path) -> Result<Mode> {
    let root_magic = fs_magic(root)?.ok_or_else(|| Error::Mode {
        path: root.to_path_buf(),
        reason: "does not exist".into(),
    })?;
    let unified = if root_magic == TMPFS_MAGIC {
        fs_magic(&root.join("unified"))?
    } else {
        None
    };
    classify(root, root_magic, unified)
}

/// Detect the mode of the host's `/sys/fs/cgroup`.
pub fn detect_mode() -> Result<Mode> {
    detect_mode_at(Path::new(DEFAULT_ROOT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_all_modes() {
        let p = Path::new("/x");
        assert_eq!(
            classify(p, CGROUP2_SUPER_MAGIC, None).unwrap(),
            Mode::Unified
        );
        assert_eq!(
            classify(p, TMPFS_MAGIC, Some(CGROUP2_SUPER_MAGIC)).unwrap(),
            Mode::Hybrid
        );
        assert_eq!(classify(p, TMPFS_MAGIC, None).unwrap(), Mode::Legacy);
        assert_eq!(
            classify(p, TMPFS_MAGIC, Some(TMPFS_MAGIC)).unwrap(),
            Mode::Legacy
        );
        let e = classify(p, 0xef53, None).unwrap_err().to_string();
        assert!(e.contains("0xef53"), "{e}");
    }

    #[test]
    fn this_host() {
        // The machine's layout is documented as hybrid; whatever it is, the
        // answer must agree with the mounts.
        let Ok(mode) = detect_mode() else {
            eprintln!("skipping: /sys/fs/cgroup is not a cgroup root here");
            return;
        };
        let unified = Path::new("/sys/fs/cgroup/unified/cgroup.controllers").exists();
        let memory = Path::new("/sys/fs/cgroup/memory/memory.stat").exists();
        match mode {
            Mode::Hybrid => assert!(unified && memory),
            Mode::Legacy => assert!(!unified),
            Mode::Unified => assert!(Path::new("/sys/fs/cgroup/cgroup.controllers").exists()),
        }
    }

    #[test]
    fn missing_root_is_an_error() {
        assert!(detect_mode_at(Path::new("/nonexistent-rr-cgroup-root")).is_err());
    }
}
