//! What a failed `create` leaves behind, removed when the guard drops: the
//! host network devices moved into the init's namespace (given back), the
//! init, the cgroups, the resctrl group, the mounts and the state
//! directory.

use rr_state::ContainerDir;

/// Removes what a failed create left behind.
pub(super) struct CreateGuard {
    pub(super) dir: Option<ContainerDir>,
    pub(super) pid: Option<i32>,
    pub(super) cgroup: Option<rr_cgroups::Manager>,
    /// The cgroup held others' processes before the create.
    pub(super) cgroup_shared: bool,
    pub(super) rdt: crate::rdt::RdtGuard,
    /// Host network devices to move into the container's namespace.
    pub(super) netdev_plan: crate::netdev::Plan,
    /// Host network devices moved into the init's namespace, moved back
    /// before it is killed (a virtual one would go with the namespace).
    pub(super) netdevs: Vec<crate::netdev::NetDevice>,
    /// The container's network namespace, held while devices are in it.
    pub(super) netns: Option<std::fs::File>,
}

impl CreateGuard {
    pub(super) fn disarm(&mut self) {
        self.dir = None;
        self.pid = None;
        self.cgroup = None;
        self.rdt.disarm();
        self.netdevs.clear();
        self.netns = None;
    }
}

impl Drop for CreateGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            if let Some(ns) = &self.netns {
                let _ = crate::netdev::move_out(&self.netdevs, ns);
            }
            // The init is not our child (stage 1 forked it), so waitpid
            // cannot wait for it; a pidfd can. Without the wait a failed
            // create could return while its init still runs.
            // SAFETY: pidfd_open with plain integers.
            let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
            // SAFETY: kill with plain integers; the init is ours and cannot
            // have been reaped by anyone else yet.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            if pidfd >= 0 {
                let mut pfd = libc::pollfd {
                    fd: pidfd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd; SIGKILL ends the wait quickly.
                unsafe { libc::poll(&mut pfd, 1, 10_000) };
                // SAFETY: pidfd was opened above and is closed once.
                unsafe { libc::close(pidfd) };
            }
            let mut st = 0;
            // SAFETY: reaps it when it is our child (run); harmless otherwise.
            unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
        }
        if let Some(cg) = self.cgroup.take() {
            // Also kills anything of the container still in its cgroups.
            let _ = crate::cgroups::teardown(&cg, self.cgroup_shared);
        }
        self.rdt.undo();
        if let Some(dir) = self.dir.take() {
            crate::unfinished::detach_container_mounts(dir.path());
            let _ = dir.destroy();
        }
    }
}
