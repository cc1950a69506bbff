//! Foreground `run`: forwarding the signals rrc receives to the container's
//! init and collecting its exit status.

use crate::error::{Error, Result};

/// Signals that are passed on to the container rather than acted on.
const FORWARDED: &[libc::c_int] = &[
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCONT,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGPIPE,
    libc::SIGALRM,
];

/// Signals blocked while the runtime waits, to be taken with sigtimedwait.
pub struct Forwarder {
    set: libc::sigset_t,
    old: libc::sigset_t,
}

/// Blocks the forwarded signals and SIGCHLD. Children forked afterwards
/// restore the old mask before they exec (see [`Forwarder::restore`]).
pub fn block_signals() -> Result<Forwarder> {
    // SAFETY: zeroed sigsets are valid out-parameters for sigemptyset.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is a valid sigset.
    unsafe {
        libc::sigemptyset(&mut set);
        for s in FORWARDED {
            libc::sigaddset(&mut set, *s);
        }
        libc::sigaddset(&mut set, libc::SIGCHLD);
    }
    // SAFETY: valid sigset pointers.
    if unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old) } != 0 {
        return Err(Error::last_os("sigprocmask"));
    }
    Ok(Forwarder { set, old })
}

/// Gives a forked child the signal state a fresh process has: nothing
/// blocked, and SIGPIPE back to its default (the Rust runtime ignores it,
/// and an ignored signal would survive exec into the container).
pub fn reset_for_child() {
    // SAFETY: resetting a disposition to its default is always valid.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    // SAFETY: a zeroed sigset emptied by sigemptyset is valid.
    let mut empty: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid sigset pointers.
    unsafe {
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

impl Forwarder {
    /// A signalfd for the blocked signals, for callers that poll other fds
    /// while waiting.
    pub(crate) fn signal_fd(&self) -> Result<std::os::fd::OwnedFd> {
        // SAFETY: the set is valid; -1 asks for a new fd.
        let fd = unsafe { libc::signalfd(-1, &self.set, libc::SFD_CLOEXEC) };
        if fd < 0 {
            return Err(Error::last_os("signalfd"));
        }
        // SAFETY: fd was just created and is owned here.
        Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
    }

    /// Puts the old signal mask back.
    pub fn restore(&self) {
        // SAFETY: valid sigset pointer.
        unsafe { libc::sigprocmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut()) };
    }

    /// Waits for `pid` to exit, forwarding signals to it meanwhile and
    /// reaping any other orphan that lands on us. Returns a shell-style exit
    /// code (128 + signal for a killed process).
    pub fn wait_forwarding(&self, pid: i32) -> i32 {
        loop {
            if let Some(code) = reap(pid) {
                self.restore();
                return code;
            }
            // SAFETY: a zeroed siginfo is a valid out-parameter.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            let timeout = libc::timespec {
                tv_sec: 1,
                tv_nsec: 0,
            };
            // SAFETY: valid pointers.
            let sig = unsafe { libc::sigtimedwait(&self.set, &mut info, &timeout) };
            if sig > 0 && sig != libc::SIGCHLD {
                // SAFETY: kill with plain integers.
                unsafe { libc::kill(pid, sig) };
            }
        }
    }
}

/// Reaps every exited child; returns the exit code once `pid` is among them.
pub(crate) fn reap(pid: i32) -> Option<i32> {
    let mut result = None;
    loop {
        let mut status = 0;
        // SAFETY: plain waitpid.
        let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if r <= 0 {
            return result;
        }
        if r == pid {
            result = Some(if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else if libc::WIFSIGNALED(status) {
                128 + libc::WTERMSIG(status)
            } else {
                255
            });
        }
    }
}
