//! What a create makes outside its state directory before state.json
//! exists, and how `delete` removes it when the create was killed.
//!
//! A create makes the container's cgroups (and its Intel RDT group) before
//! the first save of state.json, which is what `delete` reads to find
//! them. A `rrc create` killed in between would leave them with nothing
//! naming them: so each is recorded in the state directory before it is
//! made, and `delete` of a directory without state.json removes what the
//! record names.
//!
//! A container without a mount namespace mounts in the runtime's: the
//! mounts under its rootfs before it are recorded, and those it added are
//! detached once it is gone.

use std::path::{Path, PathBuf};

use rr_state::{ContainerDir, State};

use crate::error::{Error, Result};
use crate::sys::{self, unescape};

/// The record, next to state.json (which, once written, supersedes it).
const RECORD: &str = "unfinished.json";

/// Records `state` (its cgroup paths and Intel RDT group; the pid is not
/// known yet) before the resources it names are made. Written to a
/// temporary file and renamed, so a kill leaves the old record or the new
/// one, never half of one.
pub(crate) fn record(dir: &ContainerDir, state: &State) -> Result<()> {
    let path = dir.path().join(RECORD);
    let tmp = dir.path().join(format!("{RECORD}.tmp"));
    let text = serde_json::to_vec(state)
        .map_err(|e| Error::Init(format!("internal: encoding {}: {e}", path.display())))?;
    std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
}

/// Removes what the record of a killed create names: its cgroups (with any
/// process still in them) and the Intel RDT groups it made. The caller
/// holds the container's lock, and stage 1 and the init held it too until
/// they exited, so no process of that create is still setting up.
pub(crate) fn undo(dir: &ContainerDir) -> Result<()> {
    let path = dir.path().join(RECORD);
    match std::fs::read(&path) {
        Ok(bytes) => {
            // A record that does not parse was never completed by rename,
            // so the resources it would name were never made.
            if let Ok(state) = serde_json::from_slice::<State>(&bytes) {
                if let Some(cg) = crate::cgroups::manager_of(&state)? {
                    crate::cgroups::teardown(&cg, crate::cgroups::is_shared(&state))?;
                }
                crate::rdt::remove_groups(&state)?;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&path, e)),
    }
    kill_left_criu(dir);
    detach_container_mounts(dir.path());
    detach_mounts_under(dir.path())
}

/// Where checkpoint and restore have rr-criu write the pid of their CRIU.
pub(crate) const CRIU_PID: &str = "criu.pid";

/// Kills the CRIU that a checkpoint killed half-way left behind, with
/// every process it forked: its pid file in `dir` names the process group
/// CRIU made (rr-criu's `pid_file`) and when it started. PR_SET_PDEATHSIG
/// reaches CRIU itself but not its forks; `cargo xtask stress --stage
/// checkpoint` found one of them stopped (state T) and reparented to init,
/// holding the images directory. A process counts as CRIU's when it is in
/// that group and started no earlier than CRIU: a pid reused since cannot
/// be both. Waits for each to be gone.
pub(crate) fn kill_left_criu(dir: &ContainerDir) {
    let path = dir.path().join(CRIU_PID);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    let mut it = text.split_whitespace();
    if let (Some(Ok(group)), Some(Ok(start))) = (
        it.next().map(str::parse::<i32>),
        it.next().map(str::parse::<u64>),
    ) {
        if group > 0 {
            for pid in group_members(group, start) {
                kill_and_wait(pid);
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// Live processes in process group `group` that started at or after `start`.
fn group_members(group: i32, start: u64) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                return false;
            };
            let f: Vec<&str> = rest.split_whitespace().collect();
            // Fields 3 (state), 5 (pgrp) and 22 (start time), counted from
            // the state.
            let pgrp = f.get(2).and_then(|v| v.parse::<i32>().ok());
            let started = f.get(19).and_then(|v| v.parse::<u64>().ok());
            !matches!(f.first(), Some(&"Z") | Some(&"X"))
                && pgrp == Some(group)
                && started.is_some_and(|s| s >= start)
        })
        .collect()
}

/// SIGKILLs `pid` through a pidfd and waits (a few seconds at most) for it
/// to be gone.
fn kill_and_wait(pid: i32) {
    // SAFETY: pidfd_open with plain integers.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    if pidfd < 0 {
        return;
    }
    // SAFETY: pidfd_send_signal on the pidfd just opened.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd,
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    let mut pfd = libc::pollfd {
        fd: pidfd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd; SIGKILL ends the wait quickly.
    unsafe { libc::poll(&mut pfd, 1, 5_000) };
    // SAFETY: pidfd was opened above and is closed once.
    unsafe { libc::close(pidfd) };
}

/// Detaches every mount at or below `dir` (the rootfs that `restore` binds
/// at `<state dir>/criu-root` while CRIU runs, left there when rrc was
/// killed). Must precede removing the directory tree: removing through a
/// bind mount would delete the files of the bundle's rootfs. An error when
/// one stays mounted, so that nothing is removed through it.
pub(crate) fn detach_mounts_under(dir: &Path) -> Result<()> {
    let mut left = mounts_under(dir);
    // The usual case, every delete's: nothing to detach, nothing to check
    // again (one read of a node's mountinfo less).
    if left.is_empty() {
        return Ok(());
    }
    // Deepest first, so a parent's detach does not hide its children from
    // the check below.
    left.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for m in &left {
        let _ = sys::umount2(m, libc::MNT_DETACH);
    }
    match mounts_under(dir).first() {
        None => Ok(()),
        Some(m) => Err(Error::Init(format!(
            "{} is still mounted: not removing {} through it",
            m.display(),
            dir.display()
        ))),
    }
}

/// Mount points at or below `dir` in rrc's mount namespace.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape(m)))
        .filter(|m| m.starts_with(&dir))
        .collect()
}

/// The mounts at or below `rootfs` in this process's mount namespace, as
/// (mount id, mount point).
pub(crate) fn mounts_at_or_under(rootfs: &Path) -> Vec<(u64, PathBuf)> {
    let rootfs = std::fs::canonicalize(rootfs).unwrap_or_else(|_| rootfs.to_path_buf());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let id = f.next()?.parse().ok()?;
            let mp = PathBuf::from(crate::sys::unescape(f.nth(3)?));
            mp.starts_with(&rootfs).then_some((id, mp))
        })
        .collect()
}

/// Name of the state-dir file that names the rootfs of a container without
/// a mount namespace (first line) and the mounts that were under it before
/// the container (second line, mount ids).
pub(crate) const MOUNTS_BEFORE: &str = "rootfs-mounts-before";

/// Records, for a container that shares the runtime's mount namespace,
/// which mounts under its rootfs were there before it.
pub(crate) fn record_mounts_before(state_dir: &Path, rootfs: &Path) -> Result<()> {
    let ids: Vec<String> = mounts_at_or_under(rootfs)
        .iter()
        .map(|(id, _)| id.to_string())
        .collect();
    let p = state_dir.join(MOUNTS_BEFORE);
    let text = format!("{}\n{}\n", rootfs.display(), ids.join(" "));
    std::fs::write(&p, text).map_err(|e| Error::io(p, e))
}

/// Detaches what a container without a mount namespace mounted under its
/// rootfs (left in the runtime's namespace, where runc leaves it), once
/// the container is gone: after delete, a failed create or a killed one.
/// Does nothing for other containers.
pub(crate) fn detach_container_mounts(state_dir: &Path) {
    let Ok(text) = std::fs::read_to_string(state_dir.join(MOUNTS_BEFORE)) else {
        return;
    };
    let mut lines = text.lines();
    let (Some(rootfs), Some(ids)) = (lines.next(), lines.next()) else {
        return;
    };
    let before: Vec<u64> = ids
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    let mut new: Vec<(u64, PathBuf)> = mounts_at_or_under(Path::new(rootfs))
        .into_iter()
        .filter(|(id, _)| !before.contains(id))
        .collect();
    // Deepest and newest first: a stacked mount goes before what it covers.
    new.sort_by_key(|(id, p)| std::cmp::Reverse((p.components().count(), *id)));
    for (_, p) in new {
        let _ = sys::umount2(&p, libc::MNT_DETACH);
    }
}
