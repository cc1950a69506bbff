//! Descriptors a forked container process must not keep.

use std::os::fd::RawFd;

/// Closes every descriptor of this (freshly forked) process except stdio,
/// the `preserve` fds the caller passes to the container (3, 4, ...), and
/// `keep`. The init can wait a long time for `start`: holding the caller's
/// other descriptors meanwhile (lock files, pipes of a supervisor) would
/// keep them alive, and none of them may reach the container.
pub fn close_inherited(keep: &[RawFd], preserve: u32) {
    let first_free = 3 + preserve as RawFd;
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<RawFd> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<RawFd>().ok())
        .filter(|fd| *fd >= first_free && !keep.contains(fd))
        .collect();
    // The directory's own fd is in the list; closing it after the listing
    // is complete is harmless.
    for fd in fds {
        // SAFETY: closing an fd this process owns and no longer needs.
        unsafe { libc::close(fd) };
    }
}
