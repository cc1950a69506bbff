//! The crate's error type.

use std::path::PathBuf;

/// Errors returned by this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A container id is not acceptable as a directory name under the state root.
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId {
        /// The rejected id, as given.
        id: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A container with this id already has a state directory.
    #[error("container {id:?} already exists")]
    AlreadyExists {
        /// The id that is taken.
        id: String,
    },
    /// No container with this id exists (its directory or its state.json is missing).
    #[error("container {id:?} does not exist")]
    NotFound {
        /// The id that was looked up.
        id: String,
    },
    /// Another process holds the container's lock.
    #[error("container {id:?} is locked by another process")]
    Busy {
        /// The id whose lock is held.
        id: String,
    },
    /// An I/O operation on a named path failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory the operation was about.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A state file exists but its content is not a valid state.
    #[error("{path}: invalid state at line {line} column {column}: {message}")]
    Corrupt {
        /// The state file.
        path: PathBuf,
        /// 1-based line of the problem (0 when unknown).
        line: usize,
        /// 1-based column of the problem (0 when unknown).
        column: usize,
        /// What is wrong there.
        message: String,
    },
    /// Rootless mode needs `$XDG_RUNTIME_DIR` to place the state root, and it is unset or empty.
    #[error(
        "rootless mode needs XDG_RUNTIME_DIR to locate the state root, but it is unset or empty"
    )]
    NoRuntimeDir,
    /// A state could not be encoded as JSON (for example a non-string map key in `extra`).
    #[error("{path}: cannot encode state: {source}")]
    Encode {
        /// The state file that was being written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
