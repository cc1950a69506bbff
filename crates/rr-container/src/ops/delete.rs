//! `delete`: killing what is left of a container and removing its cgroups,
//! resctrl groups, mounts and state.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use rr_state::{ContainerId, State, Status};

use crate::error::{Error, Result};
use crate::runtime::{wrong_state, Runtime};

impl Runtime {
    /// Deletes a container; with `force` a running one is killed first.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let cid = ContainerId::new(id)?;
        let dir = match self.root.open_container(&cid) {
            Ok(d) => d,
            // runc treats a forced delete of a missing container as done.
            Err(rr_state::Error::NotFound { .. }) if force => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let lock = dir.lock()?;
        let state = match dir.load() {
            Ok(s) => s,
            // A create that died before writing state leaves only the
            // directory: its stage 1 and init held the container lock
            // until they exited, so nothing else of it can exist. A create
            // still running is told apart by the root's lock.
            Err(_) if !dir.state_path().exists() => {
                if self
                    .root
                    .remove_unfinished(dir, lock, crate::unfinished::undo)?
                {
                    return Ok(());
                }
                return self.delete(id, force);
            }
            Err(e) => return Err(e.into()),
        };
        crate::unfinished::kill_left_criu(&dir);
        let status = self.status_of(&dir, &state);
        let cgroup = crate::cgroups::manager_of(&state)?;
        let shared = crate::cgroups::is_shared(&state);
        // Killing through the cgroup reaches every process, also in a
        // frozen cgroup, where a plain SIGKILL waits for a thaw. A shared
        // cgroup is left alone until the init is gone.
        let kill = |state: &State| -> Result<()> {
            self.give_back_netdevs(state);
            if let Some(cg) = cgroup.as_ref().filter(|_| !shared) {
                cg.destroy()?;
            }
            self.kill_and_wait(state)
        };
        match status {
            Status::Stopped => {}
            Status::Created => kill(&state)?,
            _ if force => kill(&state)?,
            _ => {
                return Err(wrong_state(
                    id,
                    status,
                    "cannot delete a container that is not stopped (use --force)",
                ))
            }
        }
        // Kills what the init left behind (daemons it forked) and removes
        // the directories; the state stays on failure so delete can retry.
        if let Some(cg) = &cgroup {
            for w in crate::cgroups::teardown(cg, shared)? {
                self.warn(w);
            }
        }
        crate::rdt::remove_groups(&state)?;
        // A restore killed while CRIU ran leaves the rootfs bound in the
        // state dir: removing the tree through it would empty the rootfs.
        crate::unfinished::detach_mounts_under(dir.path())?;
        crate::unfinished::detach_container_mounts(dir.path());
        dir.destroy()?;
        crate::init::confine::poststop(&state);
        Ok(())
    }

    /// Moves the host network devices of `linux.netDevices` back out of
    /// the container's network namespace while its init still holds it
    /// (a virtual device would go with the namespace).
    fn give_back_netdevs(&self, state: &State) {
        if !rr_state::process_alive(
            &self.proc_root,
            state.init_process_pid,
            state.init_process_start,
        ) {
            return;
        }
        let devs = crate::netdev::of_state(state);
        if devs.is_empty() {
            return;
        }
        let p = format!("/proc/{}/ns/net", state.init_process_pid);
        match std::fs::File::open(&p) {
            Ok(ns) => {
                for w in crate::netdev::move_out(&devs, &ns) {
                    self.warn(w);
                }
            }
            Err(e) => self.warn(format!("linux.netDevices: {p}: {e}")),
        }
    }

    pub(crate) fn kill_and_wait(&self, state: &State) -> Result<()> {
        let pid = state.init_process_pid;
        let start = state.init_process_start;
        if !rr_state::process_alive(&self.proc_root, pid, start) {
            return Ok(());
        }
        // A pidfd pins the process: no signal can reach a reused pid once
        // the start time has been checked against it.
        // SAFETY: pidfd_open with plain integers.
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
        if pidfd < 0 {
            return Ok(());
        }
        // SAFETY: pidfd was just opened and is owned here.
        let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
        if !rr_state::process_alive(&self.proc_root, pid, start) {
            return Ok(());
        }
        // SAFETY: pidfd_send_signal on our pidfd.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                pidfd.as_raw_fd(),
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(Error::Sys {
                    call: format!("kill {pid}"),
                    source: e,
                });
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut pfd = libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, 100) };
            if n > 0 || !rr_state::process_alive(&self.proc_root, pid, start) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::Init(format!(
                    "container init {pid} did not die within 10s of SIGKILL"
                )));
            }
        }
    }
}
