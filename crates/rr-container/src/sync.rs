//! Messages from the container init to the runtime while it sets up.

use std::os::fd::RawFd;

use rr_nsenter::bootstrap::{recv_packet, send_packet};

const READY: u8 = 1;
const ERROR: u8 = 2;
/// Init -> runtime: the namespaces are ready, run the runtime-namespace
/// hooks (prestart, createRuntime) now, before pivot_root.
const RUN_HOOKS: u8 = 3;
/// Runtime -> init: the hooks ran; carry on.
const HOOKS_DONE: u8 = 4;

/// What the init reports once its setup is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitReport {
    /// Set up and waiting on exec.fifo.
    Ready,
    /// Setup failed; the init exits.
    Failed(String),
    /// The init went away without a word.
    Vanished,
    /// The init waits for the runtime-namespace hooks to run.
    RunHooks,
}

/// Asks the runtime to run its hooks and waits until it has; false when
/// the runtime did not answer as expected.
pub fn run_hooks(fd: RawFd) -> std::io::Result<bool> {
    send_packet(fd, &[RUN_HOOKS])?;
    Ok(matches!(recv_packet(fd)?.as_deref(), Some([HOOKS_DONE])))
}

/// Tells the init that the hooks ran.
pub fn send_hooks_done(fd: RawFd) -> std::io::Result<()> {
    send_packet(fd, &[HOOKS_DONE])
}

/// Sends `Ready`.
pub fn send_ready(fd: RawFd) -> std::io::Result<()> {
    send_packet(fd, &[READY])
}

/// Sends a failure message.
pub fn send_error(fd: RawFd, msg: &str) -> std::io::Result<()> {
    let mut p = vec![ERROR];
    p.extend_from_slice(msg.as_bytes());
    send_packet(fd, &p)
}

/// Waits for the init's report.
pub fn recv_report(fd: RawFd) -> InitReport {
    match recv_packet(fd) {
        Ok(Some(p)) => match p.split_first() {
            Some((&READY, [])) => InitReport::Ready,
            Some((&RUN_HOOKS, [])) => InitReport::RunHooks,
            Some((&ERROR, rest)) => InitReport::Failed(String::from_utf8_lossy(rest).into_owned()),
            _ => InitReport::Failed(format!("unexpected {}-byte report from the init", p.len())),
        },
        Ok(None) | Err(_) => InitReport::Vanished,
    }
}
