//! The container lifecycle of rr: create, start, run, kill, delete, state
//! and list, and the in-container init, composed from the rr subsystem
//! crates.
//!
//! The runtime forks (it never re-executes itself): the parent sends the
//! bootstrap message of [`rr_nsenter`] to the forked child, which sets up
//! the namespaces and forks the container init. The init builds the rootfs,
//! reports to the parent, and waits on `exec.fifo` until `start`.
//!
//! Forking is only sound while the process has one thread: callers must not
//! start threads before [`Runtime::create`] or [`Runtime::run`].
#![deny(missing_docs)]

mod cgjoin;
mod cgroups;
pub mod config;
mod criu;
mod error;
mod forward;
mod init;
mod netdev;
mod netlink;
mod nsenter;
mod ops;
mod rdt;
mod runtime;
pub mod signals;
pub mod spec_catalogue;
mod sync;
mod sys;
mod unfinished;

pub use error::{Error, Result};
pub use init::process::find_executable;
pub use init::{confine, hooks, mount_opts, secure_path};
pub use nsenter::bootstrap_message;
pub use ops::checkpoint::{CheckpointOptions, DESCRIPTORS_FILE};
pub use ops::create::CreateOptions;
pub use ops::events::{Event, StatsData};
pub use ops::exec::ExecOptions;
pub use ops::restore::RestoreOptions;
pub use ops::run::ExitStatus;
pub use ops::{features, ps, spec as default_spec};
pub use rr_criu::Criu;
/// The seccomp compiler, now its own crate; kept here under its old path.
pub use rr_seccomp as seccomp;
pub use rr_state::{auto_root, default_root, in_user_namespace, now_rfc3339, OciState, Status};
pub use runtime::Runtime;

/// Entry points for the fuzz targets in `fuzz/` and their corpus replay on
/// stable (tests/tests/fuzz_corpus.rs); not an API.
#[doc(hidden)]
pub mod fuzzing {
    use std::os::fd::OwnedFd;

    /// Reads one console-socket message (the terminal master, sent with
    /// SCM_RIGHTS) from `sock`, as `rrc run` and `exec -t` do.
    pub fn recv_console_master(sock: &OwnedFd) -> crate::Result<OwnedFd> {
        crate::init::tty::recv_master(sock)
    }
}
