//! The crate's error type.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use crate::{RequestType, Version};

/// The error a [`crate::Notify`] callback returns to make CRIU abort.
pub type NotifyError = Box<dyn std::error::Error + Send + Sync>;

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

    /// The CRIU binary could not be started (missing, not executable, ...).
    #[error("cannot start CRIU at {path}: {source}")]
    Spawn {
        /// The binary that was run.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A socket operation on the swrk connection failed.
    #[error("CRIU swrk socket: {op}: {source}")]
    Socket {
        /// What was being done (`socketpair`, `send`, `recvmsg`, ...).
        op: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// CRIU sent bytes that are not a `criu_resp` message.
    #[error("CRIU sent an undecodable reply ({len} bytes) to a {request} request: {source}")]
    Decode {
        /// The request being served.
        request: RequestType,
        /// The size of the message.
        len: usize,
        /// The protobuf error.
        #[source]
        source: prost::DecodeError,
    },

    /// A reply decoded but lacks a field its type requires, or holds a bad value.
    #[error("CRIU's reply to a {request} request is invalid: {reason}")]
    InvalidReply {
        /// The request being served.
        request: RequestType,
        /// What is wrong, naming the field.
        reason: String,
    },

    /// A reply of another type than the request (and not a notification).
    #[error("CRIU answered a {request} request with a {got} reply")]
    UnexpectedReply {
        /// The request being served.
        request: RequestType,
        /// The type CRIU sent.
        got: RequestType,
    },

    /// CRIU answered `success = false`.
    #[error("CRIU {request} failed{}", failure_detail(*.cr_errno, .cr_errmsg.as_deref(), .log.as_deref()))]
    Request {
        /// The request that failed.
        request: RequestType,
        /// CRIU's `cr_errno`, when it set one.
        cr_errno: Option<i32>,
        /// CRIU's `cr_errmsg`, when it set one.
        cr_errmsg: Option<String>,
        /// The CRIU log file of the request, when one was asked for.
        log: Option<PathBuf>,
    },

    /// CRIU closed the connection (usually by exiting) before its final reply.
    #[error("CRIU closed the connection before answering a {request} request ({}){}",
        status.map_or_else(|| "exit status unknown".to_string(), |s| s.to_string()),
        failure_detail(None, None, .log.as_deref()))]
    ConnectionClosed {
        /// The request being served.
        request: RequestType,
        /// CRIU's exit status, when it could be collected.
        status: Option<ExitStatus>,
        /// The CRIU log file of the request, when one was asked for.
        log: Option<PathBuf>,
    },

    /// CRIU replied success but then exited unsuccessfully.
    #[error("CRIU {request}: criu {status} after its reply{}", failure_detail(None, None, .log.as_deref()))]
    CriuExit {
        /// The request that was served.
        request: RequestType,
        /// CRIU's exit status.
        status: ExitStatus,
        /// The CRIU log file of the request, when one was asked for.
        log: Option<PathBuf>,
    },

    /// The [`crate::Notify`] callback refused a notification, so CRIU aborted.
    #[error("CRIU {request} aborted: the {script} notification handler failed: {source}{}",
        failure_detail(None, None, .log.as_deref()))]
    NotifyRejected {
        /// The request being served.
        request: RequestType,
        /// The notification script name the callback refused.
        script: String,
        /// What the callback returned.
        #[source]
        source: NotifyError,
        /// The CRIU log file of the request, when one was asked for.
        log: Option<PathBuf>,
    },

    /// `criu -V` printed something that is not a version.
    #[error("cannot read a CRIU version from `criu -V` output {output:?}: {reason}")]
    VersionParse {
        /// The output (its first 200 characters).
        output: String,
        /// What was wrong with it.
        reason: &'static str,
    },

    /// The CRIU found is older than a feature needs.
    #[error("CRIU {found} found, {needed} or newer needed for {needed_for}")]
    VersionTooOld {
        /// The version found.
        found: Version,
        /// The minimum version.
        needed: Version,
        /// What needs it.
        needed_for: String,
    },

    /// CRIU answered VERSION but not FEATURE_CHECK.
    #[error("CRIU {version} at {path}: feature check failed: {reason}")]
    FeatureCheck {
        /// The CRIU binary.
        path: PathBuf,
        /// Its version.
        version: Version,
        /// Why the check failed (CRIU's error or exit status).
        reason: String,
    },

    /// An option given to [`crate::CriuOpts`] cannot be sent to CRIU.
    #[error("invalid CRIU option {field} = {value:?}: {reason}")]
    InvalidOption {
        /// The option.
        field: &'static str,
        /// Its value.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn failure_detail(errno: Option<i32>, errmsg: Option<&str>, log: Option<&Path>) -> String {
    let mut s = String::new();
    if let Some(e) = errno.filter(|e| *e != 0) {
        let _ = write!(s, ": {}", std::io::Error::from_raw_os_error(e));
    }
    if let Some(m) = errmsg.map(str::trim).filter(|m| !m.is_empty()) {
        let _ = write!(s, ": {m}");
    }
    if let Some(l) = log {
        let _ = write!(s, " (see {})", l.display());
    }
    s
}

impl Error {
    /// Fills in the log path on the variants that carry one.
    pub(crate) fn with_log(mut self, path: Option<&Path>) -> Self {
        if let Self::Request { log, .. }
        | Self::ConnectionClosed { log, .. }
        | Self::CriuExit { log, .. }
        | Self::NotifyRejected { log, .. } = &mut self
        {
            *log = path.map(Path::to_path_buf);
        }
        self
    }

    /// The CRIU log file named by this error, if any.
    pub fn log_file(&self) -> Option<&Path> {
        match self {
            Self::Request { log, .. }
            | Self::ConnectionClosed { log, .. }
            | Self::CriuExit { log, .. }
            | Self::NotifyRejected { log, .. } => log.as_deref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_error_names_everything() {
        let e = Error::Request {
            request: RequestType::Dump,
            cr_errno: Some(libc::EPERM),
            cr_errmsg: Some("Can't dump task".into()),
            log: None,
        }
        .with_log(Some(Path::new("/w/dump.log")));
        let s = e.to_string();
        assert!(s.starts_with("CRIU dump failed: "), "{s}");
        assert!(s.contains("Operation not permitted"), "{s}");
        assert!(s.contains("Can't dump task"), "{s}");
        assert!(s.ends_with("(see /w/dump.log)"), "{s}");
        assert_eq!(e.log_file(), Some(Path::new("/w/dump.log")));
    }

    #[test]
    fn too_old_message() {
        let e = Error::VersionTooOld {
            found: Version::new(3, 14, 0),
            needed: Version::new(3, 15, 0),
            needed_for: "lazy pages".into(),
        };
        assert_eq!(
            e.to_string(),
            "CRIU 3.14 found, 3.15 or newer needed for lazy pages"
        );
    }
}
