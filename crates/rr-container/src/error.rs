//! The error type of container operations.

use std::path::PathBuf;

/// Everything that can go wrong in a container operation. Each message names
/// the file, field, id or value at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bundle directory does not exist or is not a directory.
    #[error("bundle {0}: no such directory")]
    BundleMissing(PathBuf),
    /// The bundle has no config.json.
    #[error("{0}: no such file (is this an OCI bundle? `rrc spec` writes a default one)")]
    ConfigMissing(PathBuf),
    /// config.json is not valid JSON or does not fit the OCI schema.
    #[error("{path}: line {line}, column {column}: {message}")]
    ConfigParse {
        /// The config file.
        path: PathBuf,
        /// 1-based line of the fault.
        line: usize,
        /// 1-based column of the fault.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// config.json parsed but a field is not acceptable.
    #[error("{path}: {field}: {message}")]
    ConfigInvalid {
        /// The config file.
        path: PathBuf,
        /// The JSON path of the field, e.g. `process.args`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The spec asks for something this runtime does not implement yet.
    #[error("{field}: {message}")]
    Unsupported {
        /// The field or flag.
        field: String,
        /// Why it cannot be honoured.
        message: String,
    },
    /// The container is in a state that does not allow the operation.
    #[error("container {id} is {status}: {message}")]
    WrongState {
        /// The container id.
        id: String,
        /// Its current status.
        status: String,
        /// What could not be done.
        message: String,
    },
    /// A signal name or number is not known.
    #[error("invalid signal {0:?}")]
    InvalidSignal(String),
    /// Setting up the container failed inside the container's init.
    #[error("{0}")]
    Init(String),
    /// A system call failed.
    #[error("{call}: {source}")]
    Sys {
        /// What was being done.
        call: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A state operation failed.
    #[error(transparent)]
    State(#[from] rr_state::Error),
    /// The namespace bootstrap failed.
    #[error(transparent)]
    Bootstrap(#[from] rr_nsenter::bootstrap::BootstrapError),
    /// CRIU failed, or cannot do what a checkpoint or restore needs.
    #[error("{context}: {source}")]
    Criu {
        /// What was being done, naming the CRIU binary and its version.
        context: String,
        /// CRIU's error (boxed: it is large and rare).
        #[source]
        source: Box<rr_criu::Error>,
    },
    /// A cgroup operation failed.
    #[error(transparent)]
    Cgroup(#[from] rr_cgroups::Error),
    /// Intel RDT (resctrl) failed: a group could not be made, joined,
    /// written or read.
    #[error(transparent)]
    IntelRdt(#[from] rr_intelrdt::Error),
    /// A command-line value is not acceptable.
    #[error("{flag}: {message}")]
    InvalidFlag {
        /// The flag, e.g. `--l3-cache-schema`.
        flag: String,
        /// What is wrong with its value.
        message: String,
    },
    /// A request refused with a message in runc's words, which callers
    /// match (the message names the flag and value).
    #[error("{0}")]
    Refused(String),
    /// The bootstrap message could not be built.
    #[error(transparent)]
    Message(#[from] rr_nsenter::Error),
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A seccomp profile fault names config.json, as every other spec fault.
impl From<rr_seccomp::Error> for Error {
    fn from(e: rr_seccomp::Error) -> Error {
        match e {
            rr_seccomp::Error::Invalid { field, message } => Error::ConfigInvalid {
                path: "config.json".into(),
                field,
                message,
            },
            rr_seccomp::Error::Sys { call, source } => Error::Sys { call, source },
            other => Error::Init(other.to_string()),
        }
    }
}

impl Error {
    /// An error for a failed system call, taking errno now.
    pub fn last_os(call: impl Into<String>) -> Error {
        Error::Sys {
            call: call.into(),
            source: std::io::Error::last_os_error(),
        }
    }

    /// An error for a failed operation on a path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
