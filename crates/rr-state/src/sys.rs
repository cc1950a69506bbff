//! Thin wrappers over the few syscalls that std does not expose.

use std::ffi::CString;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// `mkfifo(path, mode)`; the umask still applies, so callers fix the mode afterwards.
pub(crate) fn mkfifo(path: &Path, mode: u32) -> io::Result<()> {
    let c = c_path(path)?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), mode as libc::mode_t) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// How [`flock`] should wait.
#[derive(Clone, Copy)]
pub(crate) enum Wait {
    Block,
    NoBlock,
}

/// Takes an exclusive `flock` on `fd`. Returns `Ok(false)` when `Wait::NoBlock` was asked
/// and another open file description holds the lock.
pub(crate) fn flock_exclusive(fd: &impl AsRawFd, wait: Wait) -> io::Result<bool> {
    flock(fd, libc::LOCK_EX, wait)
}

/// Takes a shared `flock` on `fd`, waiting while an exclusive one is held.
pub(crate) fn flock_shared(fd: &impl AsRawFd) -> io::Result<()> {
    flock(fd, libc::LOCK_SH, Wait::Block).map(|_| ())
}

fn flock(fd: &impl AsRawFd, mode: libc::c_int, wait: Wait) -> io::Result<bool> {
    let op = match wait {
        Wait::Block => mode,
        Wait::NoBlock => mode | libc::LOCK_NB,
    };
    loop {
        // SAFETY: flock only reads its integer arguments; a bad fd gives EBADF, not UB.
        let rc = unsafe { libc::flock(fd.as_raw_fd(), op) };
        if rc == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => return Ok(false),
            _ => return Err(err),
        }
    }
}
