//! Bind sources taken by the runtime for an init in a new user namespace.
//!
//! Inside its user namespace the init is root only over what the mapping
//! gives it: a source under a host directory it cannot search (0700 and
//! owned by the host's root) is out of its reach, while the runtime can
//! reach it. The runtime therefore clones each source's mount tree with
//! open_tree(2) before the init is forked, and the init attaches that tree
//! with move_mount(2), as runc opens the sources before the user namespace
//! is joined.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use oci_spec::runtime::Spec;

use crate::error::{Error, Result};

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// One bind source as a detached mount tree.
pub struct BindSource {
    /// Index of the mount in `mounts`.
    pub index: usize,
    /// The open_tree(2) fd (close-on-exec).
    pub fd: OwnedFd,
    /// Whether the source is a directory.
    pub is_dir: bool,
}

/// Clones the tree of every bind source of `spec` (recursively for
/// `rbind`). Empty when open_tree(2) is missing (before 5.2) or not
/// permitted (rootless): the init then binds by path.
pub fn open_all(spec: &Spec, bundle: &Path, config: &Path) -> Result<Vec<BindSource>> {
    let mut out = Vec::new();
    for (index, m) in spec.mounts().iter().flatten().enumerate() {
        if !crate::rootfs::is_bind(m) {
            continue;
        }
        let Some(src) = m.source().as_ref() else {
            continue;
        };
        let src = if src.is_absolute() {
            src.clone()
        } else {
            bundle.join(src)
        };
        let recursive = m.options().iter().flatten().any(|o| o == "rbind");
        let refuse = |e: std::io::Error| Error::ConfigInvalid {
            path: config.to_path_buf(),
            field: format!("mounts[{index}].source"),
            message: format!("{}: {e}", src.display()),
        };
        let is_dir = std::fs::metadata(&src).map_err(refuse)?.is_dir();
        match open_tree(&src, recursive) {
            Ok(fd) => out.push(BindSource { index, fd, is_dir }),
            // No open_tree (before 5.2), or no CAP_SYS_ADMIN over this
            // mount namespace (rootless: the init reaches no more than rrc).
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM)) => {
                return Ok(Vec::new())
            }
            Err(e) => return Err(refuse(e)),
        }
    }
    Ok(out)
}

fn open_tree(src: &Path, recursive: bool) -> std::io::Result<OwnedFd> {
    let c = crate::sys::cpath(src).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: c is a valid C string; the call takes plain integers otherwise.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: open_tree returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Attaches the detached tree `src` at `dest`.
pub fn attach(src: &BindSource, dest: &Path, what: &str) -> Result<()> {
    let c = crate::sys::cpath(dest)?;
    // SAFETY: src.fd is an open_tree fd, "" with MOVE_MOUNT_F_EMPTY_PATH
    // names it, and c is a valid C string.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            src.fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            c.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r != 0 {
        return Err(Error::last_os(format!("move_mount {what}")));
    }
    Ok(())
}
