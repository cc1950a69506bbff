//! `start`: letting a created container's init exec the process, through
//! exec.fifo.

use std::os::fd::AsRawFd;

use rr_state::Status;

use crate::error::{Error, Result};
use crate::runtime::{wrong_state, Runtime};

impl Runtime {
    /// Starts a created container: lets its init exec the process.
    pub fn start(&self, id: &str) -> Result<()> {
        let dir = self.container(id)?;
        let _lock = dir.lock()?;
        let state = dir.load()?;
        let status = self.status_of(&dir, &state);
        match status {
            Status::Created => {}
            Status::Stopped => {
                return Err(wrong_state(
                    id,
                    status,
                    "cannot start a container that has stopped",
                ))
            }
            _ => {
                return Err(wrong_state(
                    id,
                    status,
                    "cannot start an already running container",
                ))
            }
        }
        self.start_created(&dir, &state)
    }

    /// Starts a container known to be created and locked by the caller:
    /// `start` after its checks, and `run` right after its create.
    pub(crate) fn start_created(
        &self,
        dir: &rr_state::ContainerDir,
        state: &rr_state::State,
    ) -> Result<()> {
        let id = dir.id().as_str();
        let fifo = dir.fifo_path();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags_nonblock()
            .open(&fifo)
            .map_err(|e| Error::io(&fifo, e))?;
        // Opening the read end is what lets the init go on: from here it
        // runs its process even if we die, so the fifo, which marks a
        // container as created, goes now rather than after the byte.
        let _ = std::fs::remove_file(&fifo);
        let outcome = wait_fifo_byte(&f, || {
            rr_state::process_alive(
                &self.proc_root,
                state.init_process_pid,
                state.init_process_start,
            )
        });
        outcome.map_err(|m| Error::Init(format!("container {id}: {m}")))?;
        crate::init::confine::poststart(state);
        Ok(())
    }
}

trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlock for std::fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
    }
}

/// Waits for the init's byte on exec.fifo, giving up when the init dies.
fn wait_fifo_byte(f: &std::fs::File, alive: impl Fn() -> bool) -> std::result::Result<(), String> {
    loop {
        let mut pfd = libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, 100) };
        if n > 0 && pfd.revents & libc::POLLIN != 0 {
            let mut b = [0u8; 1];
            // SAFETY: reads at most one byte into b.
            let r = unsafe { libc::read(f.as_raw_fd(), b.as_mut_ptr().cast(), 1) };
            if r == 1 {
                return Ok(());
            }
        }
        if n > 0 && pfd.revents & libc::POLLHUP != 0 {
            return Err("the init closed exec.fifo without starting".into());
        }
        if !alive() {
            return Err("the init is not running".into());
        }
    }
}
