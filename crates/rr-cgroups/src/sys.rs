//! Host operations shared by the v1 and v2 managers: creating and removing
//! cgroup directories, listing and killing their processes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{io_err, Error, Result};
use crate::fsio;

/// Create `leaf` and missing parents; returns the directories created,
/// outermost first, so a failure can remove exactly those.
pub fn create_dirs(leaf: &Path) -> Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut cur = Some(leaf);
    while let Some(p) = cur {
        if p.exists() {
            break;
        }
        missing.push(p.to_path_buf());
        cur = p.parent();
    }
    missing.reverse();
    let mut created = Vec::new();
    for d in missing {
        match std::fs::create_dir(&d) {
            Ok(()) => created.push(d),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                remove_created(&created);
                return Err(Error::Io { path: d, source: e });
            }
        }
    }
    Ok(created)
}

/// Best-effort removal of directories this crate just created (innermost
/// first). Files in temp trees are removed too, as there they are plain
/// files rather than kernel interface files.
pub fn remove_created(dirs: &[PathBuf]) {
    for d in dirs.iter().rev() {
        if std::fs::remove_dir(d).is_err() && !is_cgroupfs(d) {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn is_cgroupfs(p: &Path) -> bool {
    matches!(
        crate::mode::fs_magic(p),
        Ok(Some(
            crate::mode::CGROUP2_SUPER_MAGIC | crate::mode::CGROUP_SUPER_MAGIC
        ))
    )
}

/// All cgroup directories at and below `dir`, deepest first.
pub fn subtree_deepest_first(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    walk(&e.path(), out);
                }
            }
        }
        out.push(d.to_path_buf());
    }
    if dir.is_dir() {
        walk(dir, &mut out);
    }
    out
}

/// Pids in `cgroup.procs` of `dir` and every descendant.
pub fn procs_recursive(dir: &Path) -> Result<Vec<i32>> {
    let mut pids = Vec::new();
    for d in subtree_deepest_first(dir) {
        let f = d.join("cgroup.procs");
        match std::fs::read_to_string(&f) {
            Ok(t) => pids.extend(t.lines().filter_map(|l| l.trim().parse::<i32>().ok())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::Io { path: f, source: e }),
        }
    }
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}

/// SIGKILL every pid; ones that are already gone are fine.
pub fn kill_all(pids: &[i32]) {
    for &p in pids {
        if p > 0 {
            // SAFETY: kill(2) with a positive pid and a valid signal has no memory effects.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
    }
}

/// Remove `dir` and its descendants, deepest first. `EBUSY` (processes
/// still exiting) is retried with back-off, killing what is left each time;
/// a directory that is already gone is success.
pub fn remove_tree(dir: &Path, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(5);
    for d in subtree_deepest_first(dir) {
        loop {
            match std::fs::remove_dir(&d) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    if start.elapsed() > timeout {
                        return Err(Error::Busy { path: d });
                    }
                    if let Ok(p) = procs_recursive(&d) {
                        kill_all(&p);
                    }
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_millis(200));
                }
                Err(e) if !is_cgroupfs(&d) && e.raw_os_error() == Some(libc::ENOTEMPTY) => {
                    // A temp tree holding plain files.
                    std::fs::remove_dir_all(&d).map_err(io_err(&d))?;
                    break;
                }
                Err(e) => return Err(Error::Io { path: d, source: e }),
            }
        }
    }
    Ok(())
}

/// Whether one rmdir removed `dir` (or it was gone already); false when
/// the kernel refused (a process or a child cgroup in it, or anything
/// else), which the caller then handles with [`remove_tree`].
pub fn removed_at_once(dir: &Path) -> bool {
    match std::fs::remove_dir(dir) {
        Ok(()) => true,
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// Removes `dir` and its descendants, deepest first, killing nothing:
/// directories that still hold processes (EBUSY), and so their parents,
/// stay and are returned. Already gone is fine.
pub fn remove_tree_leaving_busy(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut left = Vec::new();
    for d in subtree_deepest_first(dir) {
        match std::fs::remove_dir(&d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => left.push(d),
            Err(e) => return Err(Error::Io { path: d, source: e }),
        }
    }
    Ok(left)
}

/// Poll `cond` until true or `timeout`; returns whether it became true.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    let mut delay = Duration::from_millis(1);
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    }
}

/// Write a pid into `cgroup.procs`.
pub fn add_pid(dir: &Path, pid: i32) -> Result<()> {
    fsio::write(&dir.join("cgroup.procs"), &pid.to_string())
}
