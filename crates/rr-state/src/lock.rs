//! The per-container lock.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};

/// An exclusive `flock` on a container directory, released when this value is dropped.
///
/// The lock belongs to the open file description, which is opened close-on-exec: a process
/// that execs does not keep it, but a forked child shares it until the child exits, execs
/// or closes its copy. A forked child that must not keep the container locked (or that
/// wants to take the lock itself) has to close [`AsRawFd::as_raw_fd`] first; otherwise
/// its own `lock` waits for a lock it holds and never returns.
#[derive(Debug)]
pub struct StateLock {
    pub(crate) file: File,
    pub(crate) path: PathBuf,
}

impl StateLock {
    /// The locked container directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The locked descriptor, for callers that must keep it open across a fork.
    pub fn file(&self) -> &File {
        &self.file
    }
}

impl AsFd for StateLock {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl AsRawFd for StateLock {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}
