//! `kill`: a signal to the container's init, or with `--all` to all its
//! processes (see `ps`).

use rr_state::Status;

use crate::error::{Error, Result};
use crate::runtime::{wrong_state, Runtime};

impl Runtime {
    /// Sends a signal to the container's init (or, with `all`, to every
    /// process in its pid namespace).
    pub fn kill(&self, id: &str, signal: libc::c_int, all: bool) -> Result<()> {
        let dir = self.container(id)?;
        let state = dir.load()?;
        let status = self.status_of(&dir, &state);
        if all && status == Status::Stopped {
            // What the init left in its cgroups (daemons it forked without
            // a pid namespace) is still the container's: containerd's shim
            // kills it on every task exit, and runc exits 0. Cgroups shared
            // with others are left alone once the init is gone.
            if crate::cgroups::is_shared(&state) || state.cgroup_paths.is_empty() {
                return Ok(());
            }
            return self.kill_all(&state, signal);
        }
        if status == Status::Stopped {
            return Err(wrong_state(id, status, "container not running"));
        }
        if all {
            return self.kill_all(&state, signal);
        }
        for pid in [state.init_process_pid] {
            // SAFETY: kill with plain integers.
            if unsafe { libc::kill(pid, signal) } != 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::ESRCH) {
                    return Err(Error::Sys {
                        call: format!("kill {pid} signal {signal}"),
                        source: e,
                    });
                }
            }
        }
        Ok(())
    }
}
