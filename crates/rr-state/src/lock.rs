//! The per-container lock.

use std::fs::File;
use std::path::{Path, PathBuf};

/// An exclusive `flock` on a container directory, released when this value is dropped.
///
/// The lock belongs to the open file description, which is opened close-on-exec: a process
/// that execs does not keep it, but a forked child shares it until the child exits or
/// closes its copy.
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
