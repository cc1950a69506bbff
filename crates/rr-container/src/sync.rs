//! Messages from the container init to the runtime while it sets up.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use rr_nsenter::bootstrap::{recv_packet, send_packet};

use crate::error::{Error, Result};

const READY: u8 = 1;
const ERROR: u8 = 2;
/// Init -> runtime: the namespaces are ready, run the runtime-namespace
/// hooks (prestart, createRuntime) now, before pivot_root.
const RUN_HOOKS: u8 = 3;
/// Runtime -> init: the hooks ran; carry on.
const HOOKS_DONE: u8 = 4;
/// Runtime -> init, after `Ready`: state.json is saved. (5 is cgjoin's
/// JOINED, on the same socket.)
const SAVED: u8 = 6;

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

/// Tells the init that its state is saved: from now on it is a container
/// that `delete` can find, so it may outlive the runtime.
pub fn send_saved(fd: RawFd) -> std::io::Result<()> {
    send_packet(fd, &[SAVED])
}

/// Waits for [`send_saved`]. False when the runtime went away first (it
/// was killed between the init's report and the state being written): no
/// state.json will ever name the init, so it must not wait for `start`.
pub fn recv_saved(fd: RawFd) -> bool {
    matches!(recv_packet(fd), Ok(Some(p)) if p == [SAVED])
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

/// The two ends of a close-on-exec SEQPACKET socket pair: the bootstrap
/// and sync channels between the runtime and the processes it forks.
pub(crate) fn seqpacket_pair() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid out array of two ints.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(Error::last_os("socketpair"));
    }
    // SAFETY: both fds were just created and are owned here.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsRawFd, OwnedFd};

    fn pair() -> (OwnedFd, OwnedFd) {
        seqpacket_pair().expect("socketpair")
    }

    #[test]
    fn saved_arrives() {
        let (a, b) = pair();
        send_saved(a.as_raw_fd()).expect("send");
        assert!(recv_saved(b.as_raw_fd()));
    }

    /// The runtime died before saving: the init must not go on waiting.
    #[test]
    fn a_vanished_runtime_is_not_saved() {
        let (a, b) = pair();
        drop(a);
        assert!(!recv_saved(b.as_raw_fd()));
    }

    #[test]
    fn another_message_is_not_saved() {
        let (a, b) = pair();
        send_ready(a.as_raw_fd()).expect("send");
        assert!(!recv_saved(b.as_raw_fd()));
    }
}
