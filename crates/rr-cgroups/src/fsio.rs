//! Reading and writing cgroup files, and applying a list of writes with
//! rollback.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{io_err, Error, Result};
use crate::plan::FileWrite;

/// Read a cgroup file, trimming the trailing newline.
pub fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end().to_string())
        .map_err(io_err(path))
}

/// Read a file holding one unsigned number (`max` reads as `u64::MAX`).
pub fn read_u64(path: &Path) -> Result<u64> {
    let s = read(path)?;
    parse_u64(&s).ok_or_else(|| Error::Parse {
        path: path.to_path_buf(),
        reason: format!("{s:?} is not a number"),
    })
}

/// Parse a number as cgroup files print it; `max` is `u64::MAX`, a negative
/// value (v1 `-1`) too.
pub fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim();
    if s == "max" || s.starts_with('-') {
        return Some(u64::MAX);
    }
    s.parse().ok()
}

/// Write `value` into a cgroup file in one write(2), as the kernel parses
/// each write as a whole.
pub fn write(path: &Path, value: &str) -> Result<()> {
    let err = |source| Error::Write {
        field: None,
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(err)?;
    f.write_all(value.as_bytes()).map_err(err)
}

/// A [`FileWrite`] bound to a concrete file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The spec field the value comes from ([`FileWrite::field`]).
    pub field: String,
    /// The file.
    pub path: PathBuf,
    /// The file name (for choosing how to restore it).
    pub file: String,
    /// The value to write.
    pub value: String,
}

/// Pick the file for every write before anything is written, so a missing
/// controller or file fails the whole batch up front.
pub fn resolve(
    writes: &[FileWrite],
    dir_for: impl Fn(&str, &str) -> Result<PathBuf>,
    missing: impl Fn(&str, &str, &Path) -> Error,
) -> Result<Vec<Resolved>> {
    let mut out = Vec::with_capacity(writes.len());
    for w in writes {
        let dir = dir_for(&w.controller, w.first_file())?;
        let found = w.choices.iter().find(|(f, _)| dir.join(f).exists());
        match found {
            Some((f, v)) => out.push(Resolved {
                field: w.field.clone(),
                path: dir.join(f),
                file: f.clone(),
                value: v.clone(),
            }),
            None => return Err(missing(&w.controller, w.first_file(), &dir)),
        }
    }
    Ok(out)
}

/// The key (device, interface) a keyed write is about: its first word.
fn key_of(v: &str) -> &str {
    v.split_whitespace().next().unwrap_or("")
}

fn old_line<'a>(old: &'a str, key: &str) -> Option<&'a str> {
    old.lines().map(str::trim).find(|l| key_of(l) == key)
}

/// The values that put `file` back the way it was, given its content
/// before `new` was written into it. Files that hold one line per key
/// (devices, interfaces) restore only the key that was touched.
pub fn restore_values(file: &str, old: &str, new: &str) -> Vec<String> {
    let key = key_of(new);
    let keyed = |reset: String| vec![old_line(old, key).map_or(reset, str::to_string)];
    match file {
        "memory.oom_control" => old
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill_disable "))
            .map(|v| vec![v.trim().to_string()])
            .unwrap_or_default(),
        f if f.starts_with("blkio.throttle.") => keyed(format!("{key} 0")),
        "io.max" => keyed(format!("{key} rbps=max wbps=max riops=max wiops=max")),
        "io.weight"
        | "io.bfq.weight"
        | "blkio.weight_device"
        | "blkio.bfq.weight_device"
        | "blkio.leaf_weight_device" => {
            if key == "default" || !key.contains(':') {
                // A plain weight reads back as "default N" on v2.
                let d = old_line(old, "default").map(str::to_string);
                vec![d.unwrap_or_else(|| old.trim().to_string())]
            } else if let Some(l) = old_line(old, key) {
                vec![l.to_string()]
            } else if file.starts_with("io.") {
                vec![format!("{key} default")]
            } else {
                // v1 has no way to drop a per-device weight; fall back to the default.
                let d = old_line(old, "default").and_then(|l| l.split_whitespace().nth(1));
                vec![format!("{key} {}", d.unwrap_or("100"))]
            }
        }
        "net_prio.ifpriomap" => keyed(format!("{key} 0")),
        "rdma.max" => keyed(format!("{key} hca_handle=max hca_object=max")),
        _ => vec![old.trim().to_string()],
    }
}

type Restore = Vec<(PathBuf, String)>;

fn snapshot(r: &Resolved, devices_saved: &mut bool) -> Result<Restore> {
    if r.file == "devices.allow" || r.file == "devices.deny" {
        // The device list is one state spread over two write-only files;
        // save it once, from devices.list, before the first rule changes it.
        if *devices_saved {
            return Ok(Vec::new());
        }
        *devices_saved = true;
        let dir = r.path.parent().unwrap_or(Path::new("/"));
        let list = read(&dir.join("devices.list"))?;
        let mut out = vec![(dir.join("devices.deny"), "a".to_string())];
        out.extend(
            list.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| (dir.join("devices.allow"), l.trim().to_string())),
        );
        return Ok(out);
    }
    let old = read(&r.path)?;
    Ok(restore_values(&r.file, &old, &r.value)
        .into_iter()
        .map(|v| (r.path.clone(), v))
        .collect())
}

/// Saved old values of a batch of writes that can still be put back.
#[derive(Debug, Default)]
#[must_use = "dropping an Undo keeps the new values; call run() to restore"]
pub struct Undo(Vec<Restore>);

impl Undo {
    /// Restore every saved value, last write first; returns the restores
    /// that failed, described.
    pub fn run(self) -> Vec<String> {
        let mut failures = Vec::new();
        for batch in self.0.iter().rev() {
            for (p, v) in batch {
                if let Err(e) = write(p, v) {
                    failures.push(e.to_string());
                }
            }
        }
        failures
    }

    /// Keep the new values.
    pub fn commit(self) {}
}

/// Write one resolved value; a refusal names the spec field it came from.
fn write_resolved(r: &Resolved) -> Result<()> {
    write(&r.path, &r.value).map_err(|e| match e {
        Error::Write {
            field: None,
            path,
            value,
            source,
        } => Error::Write {
            field: Some(r.field.clone()),
            path,
            value,
            source,
        },
        e => e,
    })
}

/// Write everything in order. With `rollback`, each file's old value is
/// saved first and, if a write fails, every earlier write is undone (last
/// first) before the error (naming the failing file) is returned. On
/// success the saved values come back so a later failure can still undo.
pub fn apply(writes: &[Resolved], rollback: bool) -> Result<Undo> {
    let mut undo = Undo::default();
    let mut devices_saved = false;
    for r in writes {
        let step = if rollback {
            // A failed write changed nothing, so its own snapshot is only
            // kept once the write has succeeded.
            snapshot(r, &mut devices_saved).and_then(|u| {
                write_resolved(r)?;
                undo.0.push(u);
                Ok(())
            })
        } else {
            write_resolved(r)
        };
        if let Err(e) = step {
            if !rollback {
                return Err(e);
            }
            return Err(Error::UpdateFailed {
                source: Box::new(e),
                restore_failures: undo.run(),
            });
        }
    }
    Ok(undo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_rules() {
        assert_eq!(restore_values("cpu.shares", "1024\n", "512"), vec!["1024"]);
        assert_eq!(
            restore_values(
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 0",
                "1"
            ),
            vec!["0"]
        );
        assert_eq!(
            restore_values(
                "blkio.throttle.read_bps_device",
                "8:0 100\n253:0 5",
                "253:0 9"
            ),
            vec!["253:0 5"]
        );
        assert_eq!(
            restore_values("blkio.throttle.read_bps_device", "", "253:0 9"),
            vec!["253:0 0"]
        );
        assert_eq!(
            restore_values(
                "io.max",
                "8:0 rbps=1 wbps=max riops=max wiops=max",
                "9:0 rbps=5"
            ),
            vec!["9:0 rbps=max wbps=max riops=max wiops=max"]
        );
        assert_eq!(
            restore_values("io.weight", "default 100\n8:0 50", "default 30"),
            vec!["default 100"]
        );
        assert_eq!(
            restore_values("io.weight", "default 100", "8:0 30"),
            vec!["8:0 default"]
        );
        assert_eq!(
            restore_values("net_prio.ifpriomap", "lo 0\neth0 3", "eth0 7"),
            vec!["eth0 3"]
        );
    }

    #[test]
    fn rollback_restores_and_names_file() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("cpu.shares");
        let b = d.path().join("pids.max");
        std::fs::write(&a, "1024\n").unwrap();
        std::fs::write(&b, "max\n").unwrap();
        let missing_dir = d.path().join("gone").join("memory.max");
        let ws = vec![
            Resolved {
                field: "linux.resources.cpu.shares".into(),
                path: a.clone(),
                file: "cpu.shares".into(),
                value: "2".into(),
            },
            Resolved {
                field: "linux.resources.pids.limit".into(),
                path: b.clone(),
                file: "pids.max".into(),
                value: "5".into(),
            },
            Resolved {
                field: "linux.resources.memory.limit".into(),
                path: missing_dir,
                file: "memory.max".into(),
                value: "1".into(),
            },
        ];
        let e = apply(&ws, true).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("memory.max"), "{msg}");
        assert!(
            matches!(e, Error::UpdateFailed { ref restore_failures, .. } if restore_failures.is_empty())
        );
        assert_eq!(read(&a).unwrap(), "1024");
        assert_eq!(read(&b).unwrap(), "max");
        // Without rollback the earlier writes stay; the failed write names
        // the spec field first.
        let msg = apply(&ws, false).unwrap_err().to_string();
        assert!(
            msg.starts_with("linux.resources.memory.limit: writing \"1\" to "),
            "{msg}"
        );
        assert!(msg.contains("gone/memory.max"), "{msg}");
        assert_eq!(read(&a).unwrap(), "2");
    }

    /// The runtime's own writes come from no spec field and say so by
    /// naming none.
    #[test]
    fn own_writes_name_no_field() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("gone").join("cgroup.procs");
        let msg = write(&p, "1").unwrap_err().to_string();
        assert!(msg.starts_with("writing \"1\" to "), "{msg}");
    }
}
