//! What a failed `restore` leaves behind, removed on drop: the restored
//! tree, its cgroups and the state directory; and the private bind of the
//! rootfs that CRIU restores into.

use std::path::{Path, PathBuf};

use rr_state::ContainerDir;

use crate::error::{Error, Result};
use crate::sys;

/// The rootfs bound at `<state dir>/criu-root`, unmounted and removed on drop.
pub(super) struct RootBind {
    pub(super) path: PathBuf,
}

impl RootBind {
    pub(super) fn new(path: &Path, rootfs: &Path) -> Result<RootBind> {
        std::fs::create_dir(path).map_err(|e| Error::io(path, e))?;
        let bind = RootBind {
            path: path.to_path_buf(),
        };
        sys::mount(
            Some(rootfs),
            path,
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
            &format!("rootfs {} for CRIU", rootfs.display()),
        )?;
        // Keep CRIU's mounts below it from spreading to the host's peers.
        sys::mount(
            None,
            path,
            None,
            libc::MS_PRIVATE | libc::MS_REC,
            None,
            "CRIU root as private",
        )?;
        Ok(bind)
    }
}

impl Drop for RootBind {
    fn drop(&mut self) {
        let _ = sys::umount2(&self.path, libc::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// Removes what a failed restore left behind.
pub(super) struct RestoreGuard {
    pub(super) dir: Option<ContainerDir>,
    pub(super) pid: Option<i32>,
    pub(super) cgroup: Option<rr_cgroups::Manager>,
}

impl RestoreGuard {
    pub(super) fn disarm(&mut self) {
        self.dir = None;
        self.pid = None;
        self.cgroup = None;
    }
}

impl Drop for RestoreGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            // SAFETY: kill and waitpid with plain integers; the restored init
            // is our child (CRIU's sibling).
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                let mut st = 0;
                libc::waitpid(pid, &mut st, 0);
            }
        }
        // Kills what CRIU left in them (it ran there) before they go.
        if let Some(cg) = self.cgroup.take() {
            let _ = cg.destroy();
        }
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir(dir.path().join("criu-root"));
            let _ = dir.destroy();
        }
    }
}
