//! The runc-compatible bootstrap message.
//!
//! Encoding and decoding of the netlink-style message a runtime sends to the process that sets up a container's namespaces, and the bootstrap that consumes it.
#![deny(missing_docs)]

/// Errors returned by this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation on a named path failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory the operation was about.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
