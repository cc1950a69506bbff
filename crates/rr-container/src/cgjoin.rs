//! When the container init enters its cgroups.
//!
//! Everything a process does after joining a cgroup is charged to it. Stage 1
//! of the bootstrap creates the namespaces (a mount namespace copies the
//! host's mount table, a network namespace allocates its whole stack) and
//! forks the init: in the container's cgroup that alone outgrew a 512 KiB
//! memory limit and could not fork under `pids.max = 1`. So only the init
//! joins, after stage 1 has forked it, and a new cgroup namespace is made by
//! the init itself once it is inside, so that the container's cgroup is the
//! namespace's root. The init's joining is a move, which no pids limit
//! refuses, and none of stage 1's charges follow it (cgroup v1 moves no
//! charges unless `memory.move_charge_at_immigrate` is set; v2 never does).

use std::os::fd::RawFd;

use rr_nsenter::bootstrap::{recv_packet, send_packet};

use crate::error::{Error, Result};

/// Runtime -> init: the init is in its cgroups.
const JOINED: u8 = 5;

/// Runtime side: puts the init into the container's cgroups and tells it so.
pub(crate) fn join(cgroup: Option<&rr_cgroups::Manager>, init: i32, sync_fd: RawFd) -> Result<()> {
    if let Some(cg) = cgroup {
        cg.apply(init)?;
    }
    send_packet(sync_fd, &[JOINED]).map_err(|e| Error::Sys {
        call: "telling the init that it is in its cgroups".into(),
        source: e,
    })
}

/// Init side: waits until the runtime has put this process into its
/// cgroups, then makes the new cgroup namespace when the spec asks for one.
pub(crate) fn await_join(sync_fd: RawFd, new_cgroupns: bool) -> Result<()> {
    match recv_packet(sync_fd) {
        Ok(Some(p)) if p.as_slice() == [JOINED] => {}
        Ok(_) => {
            return Err(Error::Init(
                "the runtime did not put the init into its cgroups".into(),
            ))
        }
        Err(e) => {
            return Err(Error::Sys {
                call: "waiting to be put into the container's cgroups".into(),
                source: e,
            })
        }
    }
    // SAFETY: unshare takes flags only.
    if new_cgroupns && unsafe { libc::unshare(libc::CLONE_NEWCGROUP) } != 0 {
        return Err(Error::last_os("unshare(cgroup)"));
    }
    Ok(())
}

/// Adds to a setup failure of the init the container limit it ran into, if
/// any did: under a tight memory or pids limit the failure itself is only a
/// bare ENOMEM, EAGAIN or a killed init.
pub(crate) fn explain(cgroup: Option<&rr_cgroups::Manager>, message: String) -> String {
    let Some(cg) = cgroup else { return message };
    let mut causes = Vec::new();
    if let Ok(stats) = cg.stats() {
        let mem = &stats.memory.usage;
        if mem.failcnt > 0 {
            let mut cause = format!(
                "the container's memory limit ({} bytes, linux.resources.memory.limit) was hit {} times during setup",
                mem.limit, mem.failcnt
            );
            if mem.max > 0 {
                cause.push_str(&format!("; its usage peaked at {} bytes", mem.max));
            }
            causes.push(cause);
        }
    }
    if let Some(n) = pids_limit_hits(cg) {
        causes.push(format!(
            "the container's pids limit (linux.resources.pids.limit) refused {n} forks during setup"
        ));
    }
    if causes.is_empty() {
        message
    } else {
        format!("{message} ({})", causes.join("; "))
    }
}

/// How often `pids.max` refused a fork, from `pids.events` (v1 and v2).
fn pids_limit_hits(cg: &rr_cgroups::Manager) -> Option<u64> {
    let paths = cg.paths();
    let dir = paths.get("pids").or_else(|| paths.get(""))?;
    let text = std::fs::read_to_string(std::path::Path::new(dir).join("pids.events")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("max "))
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
}
