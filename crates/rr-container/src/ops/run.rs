//! `run`: create and start in one, then (unless detached) wait for the
//! process while forwarding signals and the terminal, and delete.

use crate::error::{Error, Result};
use crate::ops::create::CreateOptions;
use crate::runtime::Runtime;

/// The outcome of a container process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus(pub i32);

impl Runtime {
    /// `run`: create, start, and unless `detach`, wait for the process,
    /// forwarding signals to it, and delete the container unless `keep`.
    pub fn run(&self, opts: &CreateOptions, detach: bool, keep: bool) -> Result<ExitStatus> {
        if !detach {
            // The init is a grandchild; becoming a subreaper makes it our
            // child once stage 1 exits, so its exit status reaches us.
            // SAFETY: prctl with integer arguments.
            if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
                return Err(Error::last_os("prctl(PR_SET_CHILD_SUBREAPER)"));
            }
        }
        let forwarded = crate::forward::block_signals()?;
        let created = match self.create_with_console(opts, !detach) {
            Ok(c) => c,
            Err(e) => {
                forwarded.restore();
                return Err(e);
            }
        };
        let (pid, master) = (created.pid, created.master);
        // Still locked since the create: no other command can have changed
        // it, so `start`'s lookup, lock, state read and status check are
        // left out.
        let started = self.start_created(&created.dir, &created.state);
        drop(created.lock);
        if let Err(e) = started {
            forwarded.restore();
            let _ = self.delete(&opts.id, true);
            return Err(e);
        }
        if detach {
            forwarded.restore();
            return Ok(ExitStatus(0));
        }
        let code = match master {
            Some(m) => crate::init::tty::proxy_and_wait(&forwarded, pid, m),
            None => forwarded.wait_forwarding(pid),
        };
        if !keep {
            self.delete(&opts.id, true)?;
        }
        Ok(ExitStatus(code))
    }
}
