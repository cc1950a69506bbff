//! Messages from the container init to the runtime while it sets up.

use std::os::fd::RawFd;

use rr_nsenter::bootstrap::{recv_packet, send_packet};

const READY: u8 = 1;
const ERROR: u8 = 2;

/// What the init reports once its setup is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitReport {
    /// Set up and waiting on exec.fifo.
    Ready,
    /// Setup failed; the init exits.
    Failed(String),
    /// The init went away without a word.
    Vanished,
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
            Some((&ERROR, rest)) => InitReport::Failed(String::from_utf8_lossy(rest).into_owned()),
            _ => InitReport::Failed(format!("unexpected {}-byte report from the init", p.len())),
        },
        Ok(None) | Err(_) => InitReport::Vanished,
    }
}
