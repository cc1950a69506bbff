//! Everything a container can leave on the host, found from the outside:
//! shared by the black-box tests and `cargo xtask stress`. Each check is
//! one function, and [`find`] lists them, so a new kind of resource (a new
//! cgroup controller, a resctrl group, ...) is one line to add.

use std::path::{Path, PathBuf};

/// Where to look for what container `id` may have left.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// The container id.
    pub id: String,
    /// The rrc state root (`--root`).
    pub root: PathBuf,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// Processes the container was known to have, as (pid, start time from
    /// field 22 of /proc/<pid>/stat), e.g. read from state.json before the
    /// delete.
    pub pids: Vec<(i32, u64)>,
    /// An environment entry (`NAME=value`) that the container's process
    /// has and nothing else on the host: finds its processes after their
    /// exec, also those no state.json names (a restore killed while CRIU
    /// ran).
    pub env_marker: Option<String>,
    /// Executables that no process may still run afterwards (the CRIU that
    /// checkpoint and restore drive), compared by device and inode.
    pub executables: Vec<PathBuf>,
}

/// One check: returns a description of each leftover it finds.
type Check = fn(&Scope) -> Vec<String>;

/// The checks [`find`] runs, in order.
const CHECKS: &[(&str, Check)] = &[
    ("state dir", state_dir),
    ("exec fifo", exec_fifo),
    ("mount", mounts),
    ("cgroup", cgroups),
    ("resctrl group", resctrl),
    ("process by id", processes_by_id),
    ("recorded process", recorded_pids),
    ("marked process", marked_processes),
    ("helper process", helper_processes),
];

/// Every leftover of the container, each as "<kind>: <what>".
pub fn find(scope: &Scope) -> Vec<String> {
    CHECKS
        .iter()
        .flat_map(|(kind, check)| {
            check(scope)
                .into_iter()
                .map(move |l| format!("{kind}: {l}"))
        })
        .collect()
}

fn state_dir(s: &Scope) -> Vec<String> {
    let d = s.root.join(&s.id);
    match std::fs::symlink_metadata(&d) {
        Ok(_) => vec![d.display().to_string()],
        Err(_) => Vec::new(),
    }
}

fn exec_fifo(s: &Scope) -> Vec<String> {
    let f = s.root.join(&s.id).join("exec.fifo");
    match std::fs::symlink_metadata(&f) {
        Ok(_) => vec![f.display().to_string()],
        Err(_) => Vec::new(),
    }
}

/// Mounts of the host (this process's mount namespace) under the bundle or
/// the state root.
fn mounts(s: &Scope) -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let under = |p: &Path, m: &str| {
        let p = p.to_string_lossy();
        !p.is_empty() && (m == p || m.starts_with(&format!("{p}/")))
    };
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| under(&s.bundle, m) || under(&s.root, m))
        .map(str::to_string)
        .collect()
}

/// Directories named after the id anywhere in the cgroup hierarchies.
fn cgroups(s: &Scope) -> Vec<String> {
    let mut found = Vec::new();
    walk_named(Path::new("/sys/fs/cgroup"), &s.id, 8, &mut found);
    found
}

/// A resctrl group named after the id, in the real resctrl mount and in the
/// fake tree the tests point `RR_RESCTRL_ROOT` at.
fn resctrl(s: &Scope) -> Vec<String> {
    let mut roots = vec![PathBuf::from("/sys/fs/resctrl")];
    if let Some(r) = std::env::var_os("RR_RESCTRL_ROOT") {
        roots.push(PathBuf::from(r));
    }
    roots
        .into_iter()
        .map(|r| r.join(&s.id))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect()
}

fn walk_named(dir: &Path, name: &str, depth: u32, found: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        // file_type does not follow symlinks: the v1 "cpu" -> "cpu,cpuacct"
        // links would list every group twice.
        if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let p = e.path();
        if e.file_name() == name {
            found.push(p.display().to_string());
        }
        if depth > 0 {
            walk_named(&p, name, depth - 1, found);
        }
    }
}

/// `pid N (its command line)`, for a leftover report.
fn describe(pid: i32) -> String {
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .unwrap_or_default();
    format!("pid {pid} ({})", cmd.trim())
}

/// A container init that has not exec'd yet is a fork of the rrc that made
/// it and carries the id in its command line.
fn processes_by_id(s: &Scope) -> Vec<String> {
    crate::processes_mentioning(&s.id)
        .into_iter()
        .map(describe)
        .collect()
}

fn marked_processes(s: &Scope) -> Vec<String> {
    let Some(marker) = &s.env_marker else {
        return Vec::new();
    };
    crate::all_pids()
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|e| e == marker.as_bytes()))
        })
        // A zombie is gone but for its exit status.
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|st| {
                    st.rfind(')')
                        .map(|i| st[i + 1..].trim_start().starts_with('Z'))
                })
                == Some(false)
        })
        .map(|pid| format!("pid {pid}"))
        .collect()
}

fn helper_processes(s: &Scope) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let ids: Vec<(u64, u64)> = s
        .executables
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| (m.dev(), m.ino()))
        .collect();
    if ids.is_empty() {
        return Vec::new();
    }
    crate::all_pids()
        .into_iter()
        .filter(|pid| {
            std::fs::metadata(format!("/proc/{pid}/exe"))
                .is_ok_and(|m| ids.contains(&(m.dev(), m.ino())))
        })
        .map(describe)
        .collect()
}

fn recorded_pids(s: &Scope) -> Vec<String> {
    s.pids
        .iter()
        .filter(|(pid, start)| *pid > 0 && alive(*pid, *start))
        .map(|(pid, _)| format!("pid {pid}"))
        .collect()
}

/// Whether `pid` is the live (not zombie) process that started at `start`.
pub fn alive(pid: i32, start: u64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // Fields after the command name, which may hold spaces and parentheses.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return false;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let state = f.first().copied().unwrap_or("X");
    let started = f.get(19).and_then(|s| s.parse::<u64>().ok());
    state != "Z" && state != "X" && started == Some(start)
}

/// The (pid, start time) recorded in `<root>/<id>/state.json`, if it parses.
pub fn recorded_init(root: &Path, id: &str) -> Option<(i32, u64)> {
    let text = std::fs::read(root.join(id).join("state.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&text).ok()?;
    Some((
        v.get("init_process_pid")?.as_i64()? as i32,
        v.get("init_process_start")?.as_u64()?,
    ))
}
