//! The cgroup v2 manager: one directory in the unified hierarchy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::LinuxResources;

use crate::error::{Error, Result, Warning};
use crate::mode::{fs_magic, CGROUP2_SUPER_MAGIC};
use crate::oom::OomWatcher;
use crate::paths::{inner_path, join_inner, v2_relative_base, OwnCgroups};
use crate::plan::plan_v2;
use crate::stats::{self, opt_read, opt_u64, Stats};
use crate::{bpf, fsio, sys};

/// Manages a container's cgroup in a cgroup2 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manager {
    /// The cgroup2 mount.
    root: PathBuf,
    /// The container's directory.
    path: PathBuf,
}

const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

/// Parse a `cgroup.events`-style flat keyed file for one key.
fn keyed(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().to_string())
    })
}

impl Manager {
    /// Resolve the container's directory under the cgroup2 mount `root`.
    pub fn new(
        root: &Path,
        own: &OwnCgroups,
        cgroups_path: Option<&str>,
        container_id: &str,
    ) -> Result<Manager> {
        let base = v2_relative_base(own.v2.as_deref().unwrap_or("/"));
        let inner = inner_path(cgroups_path, container_id, &base)?;
        Ok(Manager {
            root: root.to_path_buf(),
            path: join_inner(root, &inner),
        })
    }

    /// Use `path` directly, with `root` as the hierarchy's mount.
    pub fn at(root: &Path, path: &Path) -> Manager {
        Manager {
            root: root.to_path_buf(),
            path: path.to_path_buf(),
        }
    }

    /// Rebuild from an absolute directory; the mount is its highest
    /// cgroup2 ancestor.
    pub fn from_path(path: &Path) -> Result<Manager> {
        if !path.is_absolute() {
            return Err(Error::Paths(format!("{} is not absolute", path.display())));
        }
        let mut root = path.parent().unwrap_or(path).to_path_buf();
        for a in path.ancestors().skip(1) {
            if fs_magic(a).ok().flatten() == Some(CGROUP2_SUPER_MAGIC) {
                root = a.to_path_buf();
            } else if a.exists() {
                break;
            }
        }
        Ok(Manager::at(&root, path))
    }

    /// `{"": dir}`, as stored in state.json.
    pub fn paths(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(String::new(), self.path.to_string_lossy().into_owned())])
    }

    /// The container's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Enable in `dir`'s children every controller `dir` has; failures are
    /// left to show up as a missing file when a resource needs it.
    fn enable_controllers(dir: &Path) {
        let Ok(avail) = fsio::read(&dir.join("cgroup.controllers")) else {
            return;
        };
        let ctl = dir.join("cgroup.subtree_control");
        let on = fsio::read(&ctl).unwrap_or_default();
        for c in avail.split_whitespace() {
            if !on.split_whitespace().any(|x| x == c) {
                let _ = fsio::write(&ctl, &format!("+{c}"));
            }
        }
    }

    fn create(&self) -> Result<Vec<PathBuf>> {
        let rel = self.path.strip_prefix(&self.root).map_err(|_| {
            Error::Paths(format!(
                "{} is not below {}",
                self.path.display(),
                self.root.display()
            ))
        })?;
        let mut created = Vec::new();
        let mut cur = self.root.clone();
        for comp in rel.components() {
            Self::enable_controllers(&cur);
            cur.push(comp);
            match sys::create_dirs(&cur) {
                Ok(c) => created.extend(c),
                Err(e) => {
                    sys::remove_created(&created);
                    return Err(e);
                }
            }
        }
        Ok(created)
    }

    /// Create the directory (and parents) and move `pid` into it.
    pub fn apply(&self, pid: i32) -> Result<()> {
        let created = self.create()?;
        sys::add_pid(&self.path, pid).inspect_err(|_| sys::remove_created(&created))
    }

    fn missing(&self, controller: &str, file: &str, dir: &Path) -> Error {
        let enabled = fsio::read(&dir.join("cgroup.controllers")).unwrap_or_default();
        if enabled.split_whitespace().any(|c| c == controller) || controller == "cgroup" {
            Error::Unsupported {
                controller: controller.into(),
                file: file.into(),
                path: dir.join(file),
            }
        } else {
            Error::ControllerMissing {
                controller: controller.into(),
                file: file.into(),
            }
        }
    }

    pub(crate) fn write_resources(
        &self,
        res: &LinuxResources,
        rollback: bool,
    ) -> Result<Vec<Warning>> {
        let plan = plan_v2(res)?;
        // Load (and so verify) the device program before touching anything.
        let prog = match &plan.devices {
            Some(rules) => Some(bpf::load(&bpf::device_program(rules))?),
            None => None,
        };
        if let Some(true) = res.memory().as_ref().and_then(|m| m.check_before_update()) {
            let limit = res.memory().as_ref().and_then(|m| m.limit()).unwrap_or(0);
            let usage = opt_u64(&self.path.join("memory.current")).unwrap_or(0);
            if limit > 0 && usage > limit as u64 {
                return Err(crate::error::invalid(
                    "linux.resources.memory.limit",
                    limit,
                    format!("below current usage {usage} (checkBeforeUpdate)"),
                ));
            }
        }
        let created = self.create()?;
        let cleanup = |e: Error| {
            sys::remove_created(&created);
            e
        };
        let resolved = fsio::resolve(
            &plan.writes,
            |_, _| Ok(self.path.clone()),
            |c, f, d| self.missing(c, f, d),
        )
        .map_err(cleanup)?;
        let undo = fsio::apply(&resolved, rollback).map_err(cleanup)?;
        if let Some(fd) = prog {
            if let Err(e) = bpf::replace(&self.path, &fd) {
                let failures = if rollback { undo.run() } else { Vec::new() };
                sys::remove_created(&created);
                return Err(if rollback {
                    Error::UpdateFailed {
                        source: Box::new(e),
                        restore_failures: failures,
                    }
                } else {
                    e
                });
            }
        }
        Ok(plan.warnings)
    }

    fn wait_frozen(&self, want: &'static str) -> Result<()> {
        let ev = self.path.join("cgroup.events");
        let mut last = String::new();
        let ok = sys::wait_until(FREEZE_TIMEOUT, || {
            last = fsio::read(&ev)
                .ok()
                .and_then(|t| keyed(&t, "frozen"))
                .unwrap_or_default();
            last == want
        });
        if ok {
            Ok(())
        } else {
            Err(Error::FreezeTimeout {
                path: ev,
                wanted: if want == "1" { "frozen 1" } else { "frozen 0" },
                last,
            })
        }
    }

    /// Freeze: write 1 to cgroup.freeze and wait for `frozen 1` in cgroup.events.
    pub fn freeze(&self) -> Result<()> {
        fsio::write(&self.path.join("cgroup.freeze"), "1")?;
        self.wait_frozen("1").inspect_err(|_| {
            let _ = fsio::write(&self.path.join("cgroup.freeze"), "0");
        })
    }

    /// Thaw: write 0 and wait for `frozen 0`.
    pub fn thaw(&self) -> Result<()> {
        fsio::write(&self.path.join("cgroup.freeze"), "0")?;
        self.wait_frozen("0")
    }

    /// Whether cgroup.events reports `frozen 1`.
    pub fn is_frozen(&self) -> Result<bool> {
        match std::fs::read_to_string(self.path.join("cgroup.events")) {
            Ok(t) => Ok(keyed(&t, "frozen").as_deref() == Some("1")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(fsio::read(&self.path.join("cgroup.freeze"))
                    .map(|v| v == "1")
                    .unwrap_or(false))
            }
            Err(e) => Err(Error::Io {
                path: self.path.join("cgroup.events"),
                source: e,
            }),
        }
    }

    /// Every pid in the cgroup and its descendants.
    pub fn pids(&self) -> Result<Vec<i32>> {
        sys::procs_recursive(&self.path)
    }

    /// Statistics from the v2 interface files that exist.
    pub fn stats(&self) -> Result<Stats> {
        let d = &self.path;
        let mut s = Stats::default();
        let kv = |f: &str| {
            opt_read(&d.join(f))
                .map(|t| stats::parse_flat_keyed(&t))
                .unwrap_or_default()
        };
        let cpu = kv("cpu.stat");
        let g = |m: &BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
        s.cpu.usage.total = g(&cpu, "usage_usec") * 1000;
        s.cpu.usage.user = g(&cpu, "user_usec") * 1000;
        s.cpu.usage.kernel = g(&cpu, "system_usec") * 1000;
        s.cpu.throttling.periods = g(&cpu, "nr_periods");
        s.cpu.throttling.throttled_periods = g(&cpu, "nr_throttled");
        s.cpu.throttling.throttled_time = g(&cpu, "throttled_usec") * 1000;
        if d.join("memory.current").exists() {
            let events = kv("memory.events");
            let mem = opt_u64(&d.join("memory.current")).unwrap_or(0);
            s.memory.usage = stats::MemoryEntry {
                limit: opt_u64(&d.join("memory.max")).unwrap_or(u64::MAX),
                usage: mem,
                max: opt_u64(&d.join("memory.peak")).unwrap_or(0),
                failcnt: g(&events, "max"),
            };
            // v1 reports memory+swap; keep that meaning for consumers of the JSON.
            if let Some(sw) = opt_u64(&d.join("memory.swap.current")) {
                let swmax = opt_u64(&d.join("memory.swap.max")).unwrap_or(u64::MAX);
                s.memory.swap = stats::MemoryEntry {
                    limit: swmax.saturating_add(s.memory.usage.limit),
                    usage: sw + mem,
                    max: opt_u64(&d.join("memory.swap.peak")).map_or(0, |p| p + s.memory.usage.max),
                    failcnt: g(&kv("memory.swap.events"), "max"),
                };
            }
            s.memory.raw = kv("memory.stat");
            s.memory.cache = g(&s.memory.raw, "file");
        }
        s.pids.current = opt_u64(&d.join("pids.current")).unwrap_or(0);
        s.pids.limit = opt_u64(&d.join("pids.max"))
            .filter(|v| *v != u64::MAX)
            .unwrap_or(0);
        if let Some(t) = opt_read(&d.join("io.stat")) {
            let (bytes, ios) = stats::parse_io_stat(&t);
            s.blkio.io_service_bytes_recursive = bytes;
            s.blkio.io_serviced_recursive = ios;
        }
        for size in stats::hugepage_sizes() {
            let f = |k: &str| d.join(format!("hugetlb.{size}.{k}"));
            if let Some(usage) = opt_u64(&f("current")) {
                let ev = opt_read(&f("events"))
                    .map(|t| stats::parse_flat_keyed(&t))
                    .unwrap_or_default();
                s.hugetlb.insert(
                    size.clone(),
                    stats::Hugetlb {
                        usage,
                        max: 0,
                        failcnt: g(&ev, "max"),
                    },
                );
            }
        }
        Ok(s)
    }

    /// Watch `memory.events` for OOM kills.
    pub fn oom_events(&self) -> Result<OomWatcher> {
        if !self.path.join("memory.events").exists() {
            return Err(self.missing("memory", "memory.events", &self.path));
        }
        OomWatcher::v2(&self.path)
    }

    /// Removes the directories that hold no process, killing nothing;
    /// returns those left.
    pub fn release(&self) -> Result<Vec<PathBuf>> {
        sys::remove_tree_leaving_busy(&self.path)
    }

    /// Kill what is left (cgroup.kill, or freeze+SIGKILL+thaw on kernels
    /// without it) and remove the directory tree, children first.
    pub fn destroy(&self) -> Result<()> {
        if !self.path.exists() {
            return Ok(());
        }
        let kill = self.path.join("cgroup.kill");
        if !(kill.exists() && fsio::write(&kill, "1").is_ok()) {
            let froze = self.freeze().is_ok();
            sys::kill_all(&self.pids().unwrap_or_default());
            if froze || self.is_frozen().unwrap_or(false) {
                let _ = self.thaw();
            }
        }
        sys::wait_until(Duration::from_secs(5), || {
            let left = self.pids().unwrap_or_default();
            sys::kill_all(&left);
            left.is_empty()
        });
        sys::remove_tree(&self.path, Duration::from_secs(10))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_v2() {
        let own = OwnCgroups::parse("0::/user.slice/rr.scope\n").unwrap();
        let root = Path::new("/r");
        let m = Manager::new(root, &own, Some("ctr"), "id").unwrap();
        assert_eq!(m.path(), Path::new("/r/user.slice/ctr"));
        let m = Manager::new(root, &own, None, "id").unwrap();
        assert_eq!(m.path(), Path::new("/r/user.slice/id"));
        let m = Manager::new(root, &own, Some("/a/b"), "id").unwrap();
        assert_eq!(m.path(), Path::new("/r/a/b"));
        assert_eq!(m.paths()[""], "/r/a/b");
        assert_eq!(
            keyed("populated 1\nfrozen 0\n", "frozen").as_deref(),
            Some("0")
        );
    }
}
