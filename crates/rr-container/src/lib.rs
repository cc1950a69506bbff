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

mod bind_sources;
mod cgjoin;
mod cgroups;
mod checkpoint;
pub mod config;
pub mod confine;
mod copyup;
pub mod default_spec;
mod devnull;
mod error;
mod events;
mod exec;
mod fds;
pub mod features;
mod forward;
pub mod hooks;
mod idmapped;
mod init;
mod lifecycle;
mod mempolicy;
pub mod mount_opts;
mod netdev;
mod netlink;
mod pause;
mod personality;
mod process;
pub mod ps;
mod rdt;
mod restore;
mod rootfs;
mod sched;
pub mod seccomp;
pub mod secure_path;
pub mod signals;
mod sync;
mod sys;
mod tty;
mod unfinished;
mod update;

pub use checkpoint::{CheckpointOptions, DESCRIPTORS_FILE};
pub use error::{Error, Result};
pub use events::{Event, StatsData};
pub use exec::ExecOptions;
pub use lifecycle::{bootstrap_message, CreateOptions, ExitStatus, Runtime};
pub use process::find_executable;
pub use restore::RestoreOptions;
pub use rr_criu::Criu;
pub use rr_state::{auto_root, default_root, in_user_namespace, now_rfc3339, OciState, Status};

/// Entry points for the fuzz targets in `fuzz/` and their corpus replay on
/// stable (tests/tests/fuzz_corpus.rs); not an API.
#[doc(hidden)]
pub mod fuzzing {
    use std::os::fd::OwnedFd;

    /// Reads one console-socket message (the terminal master, sent with
    /// SCM_RIGHTS) from `sock`, as `rrc run` and `exec -t` do.
    pub fn recv_console_master(sock: &OwnedFd) -> crate::Result<OwnedFd> {
        crate::tty::recv_master(sock)
    }
}
