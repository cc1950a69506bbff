//! The crate's error type.

use std::path::PathBuf;

/// Errors returned by this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation on a named path failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory the operation was about.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Writing a value into a cgroup file failed. When the value comes from
    /// the spec, the message starts with the field (`field: writing ...`).
    #[error("{}writing {value:?} to {path}: {source}", field.as_deref().map(|f| format!("{f}: ")).unwrap_or_default())]
    Write {
        /// The spec field the value comes from, e.g.
        /// `linux.resources.memory.limit`; `None` for the runtime's own
        /// writes (moving processes, freezing).
        field: Option<String>,
        /// The cgroup file.
        path: PathBuf,
        /// The value that was being written.
        value: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A resource value from the spec is invalid.
    #[error("invalid {field} {value:?}: {reason}")]
    Invalid {
        /// The spec field, e.g. `linux.resources.cpu.shares`.
        field: String,
        /// The offending value.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// A resource needs a controller that is not mounted or not enabled.
    #[error("cgroup controller {controller} is not available (needed to write {file})")]
    ControllerMissing {
        /// The controller, e.g. `net_cls`.
        controller: String,
        /// The file that would have been written.
        file: String,
    },
    /// The controller exists but this kernel lacks the file for a resource.
    #[error("{file} of cgroup controller {controller} is not supported by this kernel ({path})")]
    Unsupported {
        /// The controller.
        controller: String,
        /// The missing file name.
        file: String,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A resource cannot be expressed in this cgroup version at all.
    #[error("{field} is not supported on cgroup {version}")]
    NotOnThisVersion {
        /// The spec field.
        field: String,
        /// `v1` or `v2`.
        version: &'static str,
    },
    /// The cgroup mode of the host could not be determined.
    #[error("cannot determine the cgroup mode of {path}: {reason}")]
    Mode {
        /// The cgroup root that was examined.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// A stored path map (state.json `cgroup_paths`) is unusable.
    #[error("invalid cgroup path map: {0}")]
    Paths(String),
    /// A cgroup file had content that could not be parsed.
    #[error("cannot parse {path}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// Freezing or thawing did not reach the wanted state in time.
    #[error("{path} did not become {wanted} (last state {last:?})")]
    FreezeTimeout {
        /// The state file.
        path: PathBuf,
        /// The wanted state.
        wanted: &'static str,
        /// The last state read.
        last: String,
    },
    /// A cgroup directory could not be removed in time.
    #[error("cannot remove {path}: still busy after retries")]
    Busy {
        /// The directory.
        path: PathBuf,
    },
    /// A bpf(2) operation failed.
    #[error("bpf {op} failed: {source}{}", if log.is_empty() { String::new() } else { format!("; verifier log: {log}") })]
    Bpf {
        /// The bpf command, e.g. `BPF_PROG_LOAD`.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
        /// The verifier log, if any.
        log: String,
    },
    /// The systemd driver: a malformed unit placement, or a bus failure.
    #[error("{0}")]
    Systemd(String),
    /// systemd refused a call.
    #[error("systemd {method}: {message} ({name})")]
    SystemdCall {
        /// The manager method called.
        method: String,
        /// The D-Bus error name, e.g. `org.freedesktop.systemd1.NoSuchUnit`.
        name: String,
        /// systemd's message.
        message: String,
    },
    /// An update failed; the error names the failing write. Values already
    /// written were restored, except those listed in `restore_failures`.
    #[error("{source}{}", if restore_failures.is_empty() { String::from(" (previous values restored)") } else { format!(" (restoring previous values failed: {})", restore_failures.join("; ")) })]
    UpdateFailed {
        /// The failure that stopped the update.
        #[source]
        source: Box<Error>,
        /// Descriptions of restores that failed in turn.
        restore_failures: Vec<String>,
    },
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A non-fatal problem the caller may want to log (library code never prints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The spec field the warning is about.
    pub field: String,
    /// What happened.
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}

pub(crate) fn invalid(field: &str, value: impl ToString, reason: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}
