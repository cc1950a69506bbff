//! Container status: reading `/proc/<pid>/stat`, deriving the status, and the OCI state
//! document that `state` and `list --format json` print.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::state::State;

/// The lifecycle status of a container, as the OCI runtime spec names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The container is being set up; its init has not reached the exec fifo yet.
    Creating,
    /// The init waits on the exec fifo for `start`.
    Created,
    /// The user process runs.
    Running,
    /// The container's cgroup is frozen.
    Paused,
    /// The init process is gone.
    Stopped,
}

impl Status {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error of [`Status::from_str`]: the text that is not a status name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown container status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for Status {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Status, UnknownStatus> {
        Ok(match s {
            "creating" => Status::Creating,
            "created" => Status::Created,
            "running" => Status::Running,
            "paused" => Status::Paused,
            "stopped" => Status::Stopped,
            _ => return Err(UnknownStatus(s.to_string())),
        })
    }
}

/// The parts of `/proc/<pid>/stat` that identify a process and tell whether it still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcInfo {
    /// Field 22: start time in clock ticks after boot.
    pub start_time: u64,
    /// Field 3: the scheduler state letter (`R`, `S`, `Z`, `X`, ...).
    pub state: char,
}

/// Parses the text of `/proc/<pid>/stat`. The command name (field 2) is in parentheses and
/// may itself contain spaces and `)`, so the fields are counted from the last `)`.
pub fn parse_proc_stat(text: &str) -> Option<ProcInfo> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    if close < open {
        return None;
    }
    let rest = text.get(close + 1..)?;
    let mut fields = rest.split_ascii_whitespace();
    let state_field = fields.next()?;
    let mut chars = state_field.chars();
    let state = chars.next()?;
    if chars.next().is_some() {
        return None;
    }
    // The state is field 3, so field 22 is the 19th after it.
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(ProcInfo { start_time, state })
}

/// Reads and parses `<proc_root>/<pid>/stat`; `None` when the process does not exist or
/// the file cannot be understood.
pub fn read_proc_stat(proc_root: &Path, pid: i32) -> Option<ProcInfo> {
    if pid <= 0 {
        return None;
    }
    let text = std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat")).ok()?;
    parse_proc_stat(&text)
}

/// Whether the process `pid` exists, is the one that started at `start_time` (not a later
/// process that reused the pid), and has not exited (a zombie or dead task counts as gone).
pub fn process_alive(proc_root: &Path, pid: i32, start_time: u64) -> bool {
    match read_proc_stat(proc_root, pid) {
        Some(info) => info.start_time == start_time && !matches!(info.state, 'Z' | 'X' | 'x'),
        None => false,
    }
}

/// The status of a container from its recorded init process, whether its exec fifo still
/// exists, and whether its cgroup is frozen.
pub fn derive_status(state: &State, proc_root: &Path, fifo_exists: bool, frozen: bool) -> Status {
    if !process_alive(proc_root, state.init_process_pid, state.init_process_start) {
        Status::Stopped
    } else if frozen {
        Status::Paused
    } else if fifo_exists {
        Status::Created
    } else {
        Status::Running
    }
}

/// The OCI version that rr reports in [`OciState`].
pub const OCI_VERSION: &str = "1.0.2";

/// The state document of the OCI runtime spec, as `state` and `list --format json` print
/// it. The field order is the one runc prints; containerd and podman parse it.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct OciState {
    /// The OCI runtime spec version.
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    /// The container id.
    pub id: String,
    /// The init pid; 0 when the container is stopped.
    pub pid: i32,
    /// The derived status.
    pub status: Status,
    /// The bundle directory.
    pub bundle: String,
    /// The root filesystem.
    pub rootfs: String,
    /// Creation time, RFC 3339.
    pub created: String,
    /// The annotations; omitted when empty.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The owner's user name; empty for root.
    pub owner: String,
}

impl OciState {
    /// Builds the document for a stored state and its derived status, with an empty owner.
    pub fn new(state: &State, status: Status) -> OciState {
        OciState {
            oci_version: OCI_VERSION.to_string(),
            id: state.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                state.init_process_pid
            },
            status,
            bundle: state.bundle().unwrap_or_default().to_string(),
            rootfs: state.config.rootfs.clone(),
            created: state.created.clone(),
            annotations: state.annotations(),
            owner: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat_line(comm: &str, state: char, start: u64) -> String {
        // Fields 4..21 are filler; field 22 is the start time.
        let filler: Vec<String> = (4..22).map(|n| n.to_string()).collect();
        format!("1234 ({comm}) {state} {} {start} 0 0 0\n", filler.join(" "))
    }

    #[test]
    fn parse_plain_and_tricky_comm() {
        for comm in ["sh", "a b", ") (", "x) R 1 2 (", "))", "", "(("] {
            let got = parse_proc_stat(&stat_line(comm, 'S', 987_654));
            assert_eq!(
                got,
                Some(ProcInfo {
                    start_time: 987_654,
                    state: 'S'
                }),
                "comm {comm:?}"
            );
        }
    }

    #[test]
    fn parse_rejects_garbage() {
        assert_eq!(parse_proc_stat(""), None);
        assert_eq!(parse_proc_stat("1 (sh) S 1 2"), None);
        assert_eq!(parse_proc_stat("1 sh S"), None);
        assert_eq!(parse_proc_stat(") 1 (sh"), None);
        let bad = stat_line("sh", 'S', 5).replace(" 5 0 0 0", " x 0 0 0");
        assert_eq!(parse_proc_stat(&bad), None);
        assert_eq!(
            parse_proc_stat(&stat_line("sh", 'S', 5).replace(" S ", " SS ")),
            None
        );
    }

    #[test]
    fn real_self_stat() {
        let text = std::fs::read_to_string("/proc/self/stat").unwrap();
        let info = parse_proc_stat(&text).unwrap();
        assert!(matches!(info.state, 'R' | 'S'));
        assert!(info.start_time > 0);
    }

    #[test]
    fn status_text() {
        for s in [
            Status::Creating,
            Status::Created,
            Status::Running,
            Status::Paused,
            Status::Stopped,
        ] {
            assert_eq!(s.to_string().parse::<Status>(), Ok(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        assert!("Running".parse::<Status>().is_err());
    }
}
