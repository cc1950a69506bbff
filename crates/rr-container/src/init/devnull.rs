//! Stdio that is the host's /dev/null becomes the container's /dev/null.
//!
//! Supervisors (conmon for a detached podman container, the containerd shim
//! for a task without stdin) hand the runtime the host's /dev/null as stdio.
//! The container would keep a file from a mount that does not exist in its
//! mount namespace, and CRIU refuses to dump such a file ("Can't lookup
//! mount"); the same device node inside the container is equivalent for the
//! process and belongs to a mount CRIU knows.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::{Error, Result};

const NULL_RDEV: u64 = (1 << 8) | 3;

/// Replaces each of fds 0-2 that is a /dev/null node other than the one at
/// `/dev/null` (in the container, after pivot_root) with the latter.
pub(crate) fn reopen_stdio() -> Result<()> {
    let ours = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(Path::new("/dev/null"))
    {
        Ok(f) => f,
        // A container without /dev/null keeps whatever it was given.
        Err(_) => return Ok(()),
    };
    let ours_meta = ours
        .metadata()
        .map_err(|e| Error::io("/dev/null in the container", e))?;
    for fd in 0..3 {
        // SAFETY: fstat writes into a zeroed stat buffer we own.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fd is a plain integer; an unused fd only makes fstat fail.
        if unsafe { libc::fstat(fd, &mut st) } != 0 {
            continue;
        }
        let is_null = st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == NULL_RDEV;
        let same = st.st_dev == ours_meta.dev() && st.st_ino == ours_meta.ino();
        if is_null && !same {
            use std::os::fd::AsRawFd;
            // SAFETY: both fds are open; dup3 replaces fd atomically.
            if unsafe { libc::dup3(ours.as_raw_fd(), fd, 0) } < 0 {
                return Err(Error::last_os(format!("dup3 /dev/null onto fd {fd}")));
            }
        }
    }
    Ok(())
}
