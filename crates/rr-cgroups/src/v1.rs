//! The cgroup v1 manager: one directory per mounted hierarchy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::LinuxResources;

use crate::error::{Error, Result, Warning};
use crate::oom::OomWatcher;
use crate::paths::{inner_path, join_inner, OwnCgroups};
use crate::plan::{plan_v1, Current};
use crate::stats::{self, opt_read, opt_u64, Stats};
use crate::{fsio, sys};

/// Manages a container's cgroups on v1 hierarchies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manager {
    /// Subsystem name (`cpu`, `name=systemd`, ...) -> the container's directory.
    paths: BTreeMap<String, PathBuf>,
}

/// A v1 hierarchy mounted under the cgroup root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Its mount point.
    pub dir: PathBuf,
    /// The cgroup shown at the mount point (`/` but for a bind mount of a
    /// sub-cgroup or a mount made inside a cgroup namespace).
    pub mount_root: String,
}

/// The v1 hierarchies mounted directly under `root`, from the mount table:
/// subsystem (`cpu`, `name=systemd`, ...) -> where it is mounted.
///
/// Plain directories under `root` (a `hugetlb` made by hand when that
/// controller is not mounted) and mounts hidden under another are not
/// hierarchies; `unified`, the cgroup2 of a hybrid host, is not v1.
pub fn hierarchies(root: &Path) -> Result<BTreeMap<String, Hierarchy>> {
    Ok(hierarchies_from(
        root,
        &crate::mounts::current()?,
        &crate::mounts::known_controllers(),
    ))
}

/// As [`hierarchies`] from a given mount table and list of controllers.
pub fn hierarchies_from(
    root: &Path,
    mounts: &[crate::mounts::CgroupMount],
    known: &[String],
) -> BTreeMap<String, Hierarchy> {
    let mut out = BTreeMap::new();
    for m in mounts.iter().filter(|m| m.point.parent() == Some(root)) {
        for sub in m.subsystems(known) {
            // The first mount of a controller is the one used (a second
            // mount of the same hierarchy elsewhere shows the same cgroups).
            out.entry(sub).or_insert_with(|| Hierarchy {
                dir: m.point.clone(),
                mount_root: m.root.clone(),
            });
        }
    }
    out
}

/// The runtime's own cgroup `own` (from /proc/self/cgroup) as a path below
/// a mount that shows `mount_root`: what is above the mount's root is not
/// reachable there.
fn below_mount_root<'a>(own: &'a str, mount_root: &str) -> &'a str {
    if mount_root == "/" {
        return own;
    }
    match own.strip_prefix(mount_root) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            if rest.is_empty() {
                "/"
            } else {
                rest
            }
        }
        _ => own,
    }
}

const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

impl Manager {
    /// Resolve the container's directory in every hierarchy under `root`.
    pub fn new(
        root: &Path,
        own: &OwnCgroups,
        cgroups_path: Option<&str>,
        container_id: &str,
    ) -> Result<Manager> {
        Self::from_hierarchies(hierarchies(root)?, root, own, cgroups_path, container_id)
    }

    /// As [`Manager::new`] with the hierarchies given.
    pub fn from_hierarchies(
        hierarchies: BTreeMap<String, Hierarchy>,
        root: &Path,
        own: &OwnCgroups,
        cgroups_path: Option<&str>,
        container_id: &str,
    ) -> Result<Manager> {
        let mut paths = BTreeMap::new();
        for (sub, h) in hierarchies {
            let base = own.v1.get(&sub).map_or("/", String::as_str);
            let base = below_mount_root(base, &h.mount_root);
            let inner = inner_path(cgroups_path, container_id, base)?;
            paths.insert(sub, join_inner(&h.dir, &inner));
        }
        if paths.is_empty() {
            return Err(Error::Mode {
                path: root.to_path_buf(),
                reason: "no v1 hierarchy is mounted there".into(),
            });
        }
        Ok(Manager { paths })
    }

    /// Adds the container's cgroup in the (controller-less) cgroup2 of a
    /// hybrid host, mounted at `unified`, under key `""` as runc records
    /// it: the container's processes are placed there too, so that what
    /// they see as their v2 cgroup is their own. A relative path goes under
    /// the runtime's own v2 cgroup, as in the v1 hierarchies.
    pub fn with_unified(
        mut self,
        unified: &Path,
        own: &OwnCgroups,
        cgroups_path: Option<&str>,
        container_id: &str,
    ) -> Result<Manager> {
        let base = own.v2.as_deref().unwrap_or("/");
        let inner = inner_path(cgroups_path, container_id, base)?;
        self.paths
            .insert(String::new(), join_inner(unified, &inner));
        Ok(self)
    }

    /// Rebuild from a subsystem -> absolute directory map (`""`: the
    /// cgroup in the unified hierarchy of a hybrid host).
    pub fn from_paths(paths: &BTreeMap<String, String>) -> Result<Manager> {
        let mut out = BTreeMap::new();
        for (k, v) in paths {
            if !v.starts_with('/') {
                return Err(Error::Paths(format!(
                    "{k:?} -> {v:?} is not a v1 subsystem and absolute path"
                )));
            }
            out.insert(k.clone(), PathBuf::from(v));
        }
        if out.keys().all(String::is_empty) {
            return Err(Error::Paths("no v1 subsystem".into()));
        }
        Ok(Manager { paths: out })
    }

    /// Subsystem -> directory, as stored in state.json.
    pub fn paths(&self) -> BTreeMap<String, String> {
        self.paths
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string_lossy().into_owned()))
            .collect()
    }

    /// The directory for one subsystem, if it is mounted.
    pub fn path(&self, subsystem: &str) -> Option<&Path> {
        self.paths.get(subsystem).map(PathBuf::as_path)
    }

    fn unique_dirs(&self) -> Vec<&Path> {
        let mut v: Vec<&Path> = self.paths.values().map(PathBuf::as_path).collect();
        v.sort();
        v.dedup();
        v
    }

    /// Create every directory; returns those created.
    fn create(&self) -> Result<Vec<PathBuf>> {
        let mut created = Vec::new();
        for d in self.unique_dirs() {
            match sys::create_dirs(d) {
                Ok(c) => created.extend(c),
                Err(e) => {
                    sys::remove_created(&created);
                    return Err(e);
                }
            }
        }
        if let Some(cs) = self.paths.get("cpuset") {
            // New cpuset cgroups start with no CPUs and no memory nodes, and
            // no task can join them; each inherits its parent's. Every level
            // of the path is checked, not only those made here: a parent
            // that another create has just made may still be empty.
            let mut levels: Vec<&Path> = cs
                .ancestors()
                .take_while(|d| d.join("cpuset.cpus").exists())
                .collect();
            levels.reverse();
            for d in levels.iter().skip(1) {
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    let (p, parent) = (d.join(f), d.parent().map(|x| x.join(f)));
                    let Some(parent) = parent else { continue };
                    if fsio::read(&p).map(|s| s.is_empty()).unwrap_or(false) {
                        let r = fsio::read(&parent).and_then(|v| fsio::write(&p, &v));
                        if let Err(e) = r {
                            sys::remove_created(&created);
                            return Err(e);
                        }
                    }
                }
            }
        }
        Ok(created)
    }

    /// Create the directories and move `pid` into all of them.
    pub fn apply(&self, pid: i32) -> Result<()> {
        let created = self.create()?;
        for d in self.unique_dirs() {
            if let Err(e) = sys::add_pid(d, pid) {
                sys::remove_created(&created);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Write the resources; `rollback` restores earlier writes on failure.
    pub(crate) fn write_resources(
        &self,
        res: &LinuxResources,
        rollback: bool,
    ) -> Result<Vec<Warning>> {
        let cur = Current {
            memsw_limit: self
                .paths
                .get("memory")
                .and_then(|m| opt_u64(&m.join("memory.memsw.limit_in_bytes"))),
        };
        let plan = plan_v1(res, cur)?;
        if let Some(true) = res.memory().as_ref().and_then(|m| m.check_before_update()) {
            self.check_usage_below(res)?;
        }
        let created = self.create()?;
        let resolved = crate::fsio::resolve(
            &plan.writes,
            |c, f| {
                self.paths
                    .get(c)
                    .cloned()
                    .ok_or_else(|| Error::ControllerMissing {
                        controller: c.to_string(),
                        file: f.to_string(),
                    })
            },
            |c, f, dir| Error::Unsupported {
                controller: c.to_string(),
                file: f.to_string(),
                path: dir.join(f),
            },
        );
        let result = resolved.and_then(|r| fsio::apply(&r, rollback));
        match result {
            Ok(undo) => {
                undo.commit();
                Ok(plan.warnings)
            }
            Err(e) => {
                sys::remove_created(&created);
                Err(e)
            }
        }
    }

    fn check_usage_below(&self, res: &LinuxResources) -> Result<()> {
        let (Some(m), Some(limit)) = (
            self.paths.get("memory"),
            res.memory().as_ref().and_then(|m| m.limit()),
        ) else {
            return Ok(());
        };
        if limit <= 0 {
            return Ok(());
        }
        if let Some(usage) = opt_u64(&m.join("memory.usage_in_bytes")) {
            if usage > limit as u64 {
                return Err(crate::error::invalid(
                    "linux.resources.memory.limit",
                    limit,
                    format!("below current usage {usage} (checkBeforeUpdate)"),
                ));
            }
        }
        Ok(())
    }

    fn freezer_state(&self) -> Result<PathBuf> {
        self.paths
            .get("freezer")
            .map(|p| p.join("freezer.state"))
            .ok_or_else(|| Error::ControllerMissing {
                controller: "freezer".into(),
                file: "freezer.state".into(),
            })
    }

    /// Freeze all processes. A cgroup stuck in FREEZING (a task in an
    /// uninterruptible sleep) is thawed and frozen again until it settles.
    pub fn freeze(&self) -> Result<()> {
        let f = self.freezer_state()?;
        let start = std::time::Instant::now();
        let mut last = String::new();
        let mut attempt = 0u32;
        while start.elapsed() < FREEZE_TIMEOUT {
            fsio::write(&f, "FROZEN")?;
            for _ in 0..20 {
                last = fsio::read(&f)?;
                if last == "FROZEN" {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(u64::from(1 + attempt.min(10))));
            }
            attempt += 1;
            if attempt % 4 == 0 {
                // Let a task blocked in the kernel make progress before retrying.
                fsio::write(&f, "THAWED")?;
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = fsio::write(&f, "THAWED");
        Err(Error::FreezeTimeout {
            path: f,
            wanted: "FROZEN",
            last,
        })
    }

    /// Thaw all processes.
    pub fn thaw(&self) -> Result<()> {
        let f = self.freezer_state()?;
        let mut last = String::new();
        let ok = sys::wait_until(FREEZE_TIMEOUT, || {
            if fsio::write(&f, "THAWED").is_err() {
                return false;
            }
            last = fsio::read(&f).unwrap_or_default();
            last == "THAWED"
        });
        if ok {
            Ok(())
        } else {
            Err(Error::FreezeTimeout {
                path: f,
                wanted: "THAWED",
                last,
            })
        }
    }

    /// Whether the freezer says FROZEN.
    pub fn is_frozen(&self) -> Result<bool> {
        let f = self.freezer_state()?;
        match std::fs::read_to_string(&f) {
            Ok(s) => Ok(s.trim() == "FROZEN"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::Io { path: f, source: e }),
        }
    }

    /// Every pid in the container's cgroups and their descendants.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let mut all = Vec::new();
        for d in self.unique_dirs() {
            all.extend(sys::procs_recursive(d)?);
        }
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }

    /// Collect statistics from whatever controllers are mounted.
    pub fn stats(&self) -> Result<Stats> {
        let mut s = Stats::default();
        if let Some(d) = self.paths.get("cpuacct") {
            let u = &mut s.cpu.usage;
            u.total = opt_u64(&d.join("cpuacct.usage")).unwrap_or(0);
            u.percpu = opt_read(&d.join("cpuacct.usage_percpu"))
                .map(|t| stats::parse_numbers(&t))
                .unwrap_or_default();
            u.percpu_kernel = opt_read(&d.join("cpuacct.usage_percpu_sys"))
                .map(|t| stats::parse_numbers(&t))
                .unwrap_or_default();
            u.percpu_user = opt_read(&d.join("cpuacct.usage_percpu_user"))
                .map(|t| stats::parse_numbers(&t))
                .unwrap_or_default();
            match (
                opt_u64(&d.join("cpuacct.usage_sys")),
                opt_u64(&d.join("cpuacct.usage_user")),
            ) {
                (Some(k), Some(us)) => {
                    u.kernel = k;
                    u.user = us;
                }
                _ => {
                    // cpuacct.stat counts USER_HZ ticks.
                    let st = opt_read(&d.join("cpuacct.stat"))
                        .map(|t| stats::parse_flat_keyed(&t))
                        .unwrap_or_default();
                    // SAFETY: sysconf has no memory effects.
                    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
                    u.kernel = st.get("system").copied().unwrap_or(0) * (1_000_000_000 / hz);
                    u.user = st.get("user").copied().unwrap_or(0) * (1_000_000_000 / hz);
                }
            }
        }
        if let Some(d) = self.paths.get("cpu") {
            let st = opt_read(&d.join("cpu.stat"))
                .map(|t| stats::parse_flat_keyed(&t))
                .unwrap_or_default();
            s.cpu.throttling.periods = st.get("nr_periods").copied().unwrap_or(0);
            s.cpu.throttling.throttled_periods = st.get("nr_throttled").copied().unwrap_or(0);
            s.cpu.throttling.throttled_time = st.get("throttled_time").copied().unwrap_or(0);
        }
        if let Some(d) = self.paths.get("memory") {
            let entry = |prefix: &str| stats::MemoryEntry {
                limit: opt_u64(&d.join(format!("{prefix}limit_in_bytes"))).unwrap_or(0),
                usage: opt_u64(&d.join(format!("{prefix}usage_in_bytes"))).unwrap_or(0),
                max: opt_u64(&d.join(format!("{prefix}max_usage_in_bytes"))).unwrap_or(0),
                failcnt: opt_u64(&d.join(format!("{prefix}failcnt"))).unwrap_or(0),
            };
            s.memory.usage = entry("memory.");
            s.memory.swap = entry("memory.memsw.");
            s.memory.kernel = entry("memory.kmem.");
            s.memory.kernel_tcp = entry("memory.kmem.tcp.");
            s.memory.raw = opt_read(&d.join("memory.stat"))
                .map(|t| stats::parse_flat_keyed(&t))
                .unwrap_or_default();
            s.memory.cache = s.memory.raw.get("cache").copied().unwrap_or(0);
        }
        if let Some(d) = self.paths.get("pids") {
            s.pids.current = opt_u64(&d.join("pids.current")).unwrap_or(0);
            s.pids.limit = opt_u64(&d.join("pids.max"))
                .filter(|v| *v != u64::MAX)
                .unwrap_or(0);
        }
        if let Some(d) = self.paths.get("blkio") {
            let pick = |names: &[&str]| {
                names
                    .iter()
                    .filter_map(|n| opt_read(&d.join(n)))
                    .map(|t| stats::parse_blkio_v1(&t))
                    .find(|v| !v.is_empty())
                    .unwrap_or_default()
            };
            s.blkio.io_service_bytes_recursive = pick(&[
                "blkio.io_service_bytes_recursive",
                "blkio.bfq.io_service_bytes_recursive",
                "blkio.throttle.io_service_bytes_recursive",
            ]);
            s.blkio.io_serviced_recursive = pick(&[
                "blkio.io_serviced_recursive",
                "blkio.bfq.io_serviced_recursive",
                "blkio.throttle.io_serviced_recursive",
            ]);
        }
        if let Some(d) = self.paths.get("hugetlb") {
            for size in stats::hugepage_sizes() {
                let f = |k: &str| opt_u64(&d.join(format!("hugetlb.{size}.{k}")));
                if let Some(usage) = f("usage_in_bytes") {
                    s.hugetlb.insert(
                        size.clone(),
                        stats::Hugetlb {
                            usage,
                            max: f("max_usage_in_bytes").unwrap_or(0),
                            failcnt: f("failcnt").unwrap_or(0),
                        },
                    );
                }
            }
        }
        Ok(s)
    }

    /// Register for OOM notifications of the memory cgroup.
    pub fn oom_events(&self) -> Result<OomWatcher> {
        let d = self
            .paths
            .get("memory")
            .ok_or_else(|| Error::ControllerMissing {
                controller: "memory".into(),
                file: "memory.oom_control".into(),
            })?;
        OomWatcher::v1(d)
    }

    /// Kill whatever is left and remove every directory, children first.
    pub fn destroy(&self) -> Result<()> {
        // The usual case, a stopped container whose cgroups are empty
        // leaves: one rmdir each and done. An rmdir never removes a cgroup
        // that holds a process (EBUSY) or a child (ENOTEMPTY); at the first
        // such refusal the full removal below takes over, which finds the
        // cgroups already removed here gone, as it may anyway.
        if self.unique_dirs().into_iter().all(sys::removed_at_once) {
            return Ok(());
        }
        // Also usual, a stopped container: nothing to kill, so none of
        // the freeze, kill, thaw and second walk of every hierarchy (about
        // 100 system calls). An empty cgroup cannot gain a process but from
        // outside, and then rmdir fails with EBUSY and remove_tree kills it.
        if !matches!(self.pids(), Ok(p) if p.is_empty()) {
            self.kill_everything();
        }
        let mut first_err = None;
        for d in self.unique_dirs() {
            if let Err(e) = sys::remove_tree(d, Duration::from_secs(10)) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Removes the directories that hold no process, killing nothing;
    /// returns those left.
    pub fn release(&self) -> Result<Vec<PathBuf>> {
        let mut left = Vec::new();
        for d in self.unique_dirs() {
            left.extend(sys::remove_tree_leaving_busy(d)?);
        }
        Ok(left)
    }

    fn kill_everything(&self) {
        let freezer = self
            .paths
            .get("freezer")
            .filter(|p| p.join("freezer.state").exists());
        // Frozen, the processes cannot fork while being killed; thawed, they
        // can act on the SIGKILL.
        let froze = freezer.is_some() && self.freeze().is_ok();
        sys::kill_all(&self.pids().unwrap_or_default());
        if freezer.is_some() && (froze || self.is_frozen().unwrap_or(false)) {
            let _ = self.thaw();
        }
        sys::wait_until(Duration::from_secs(5), || {
            let left = self.pids().unwrap_or_default();
            sys::kill_all(&left);
            left.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(point: &Path, opts: &str, root: &str) -> crate::mounts::CgroupMount {
        crate::mounts::CgroupMount {
            point: point.to_path_buf(),
            root: root.into(),
            fstype: if opts.is_empty() { "cgroup2" } else { "cgroup" }.into(),
            super_opts: format!("rw,{opts}"),
            dev: (0, 1),
        }
    }

    #[test]
    fn hierarchies_from_the_mount_table() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        let known: Vec<String> = ["cpu", "cpuacct", "memory", "hugetlb"]
            .map(String::from)
            .to_vec();
        // hugetlb is a plain directory: not in the mount table, not used.
        std::fs::create_dir(p.join("hugetlb")).unwrap();
        let mounts = vec![
            mount(&p.join("cpu,cpuacct"), "cpu,cpuacct", "/"),
            mount(&p.join("memory"), "memory", "/"),
            mount(&p.join("systemd"), "xattr,name=systemd", "/"),
            mount(&p.join("unified"), "", "/"),
            mount(Path::new("/elsewhere/memory"), "memory", "/"),
        ];
        let h = hierarchies_from(p, &mounts, &known);
        assert_eq!(
            h.keys().cloned().collect::<Vec<_>>(),
            vec!["cpu", "cpuacct", "memory", "name=systemd"]
        );
        assert_eq!(h["cpuacct"].dir, p.join("cpu,cpuacct"));
        assert_eq!(h["memory"].dir, p.join("memory"));
        let own = OwnCgroups::parse("4:memory:/m\n2:cpu,cpuacct:/c\n1:name=systemd:/\n").unwrap();
        let m = Manager::from_hierarchies(h.clone(), p, &own, Some("rel/x"), "id").unwrap();
        let paths = m.paths();
        assert_eq!(paths["memory"], p.join("memory/m/rel/x").to_string_lossy());
        assert_eq!(
            paths["cpuacct"],
            p.join("cpu,cpuacct/c/rel/x").to_string_lossy()
        );
        assert!(!paths.contains_key("hugetlb"));
        let m = Manager::from_hierarchies(h.clone(), p, &own, None, "ctr").unwrap();
        assert_eq!(
            m.paths()["name=systemd"],
            p.join("systemd/ctr").to_string_lossy()
        );
        let m = Manager::from_hierarchies(h, p, &own, Some("/abs/y"), "ctr").unwrap();
        assert_eq!(
            m.paths()["memory"],
            p.join("memory/abs/y").to_string_lossy()
        );
        let back = Manager::from_paths(&m.paths()).unwrap();
        assert_eq!(back, m);
        // Nothing mounted: an error naming the root.
        let e = Manager::from_hierarchies(BTreeMap::new(), p, &own, None, "c").unwrap_err();
        assert!(e.to_string().contains(&*p.to_string_lossy()), "{e}");
    }

    /// Hybrid hosts: the unified cgroup is recorded under "" next to the
    /// v1 subsystems (as runc does) and read back as a v1 manager.
    #[test]
    fn unified_path_of_a_hybrid_host() {
        let d = tempfile::tempdir().unwrap();
        let mounts = vec![mount(&d.path().join("memory"), "memory", "/")];
        let known = vec!["memory".to_string()];
        let own = OwnCgroups::parse("4:memory:/m\n0::/u\n").unwrap();
        let uni = d.path().join("unified");
        let m = Manager::from_hierarchies(
            hierarchies_from(d.path(), &mounts, &known),
            d.path(),
            &own,
            None,
            "ctr",
        )
        .unwrap()
        .with_unified(&uni, &own, None, "ctr")
        .unwrap();
        let p = m.paths();
        assert_eq!(p[""], uni.join("u/ctr").to_string_lossy());
        assert_eq!(p["memory"], d.path().join("memory/m/ctr").to_string_lossy());
        let back = crate::Manager::from_paths(&p).unwrap();
        assert_eq!(back, crate::Manager::V1(m));
        let only_unified: BTreeMap<String, String> =
            [(String::new(), "/x".to_string())].into_iter().collect();
        assert!(Manager::from_paths(&only_unified).is_err());
    }

    #[test]
    fn own_cgroup_below_a_mount_root() {
        let d = tempfile::tempdir().unwrap();
        let mounts = vec![mount(&d.path().join("memory"), "memory", "/outer")];
        let known = vec!["memory".to_string()];
        let h = hierarchies_from(d.path(), &mounts, &known);
        let own = OwnCgroups::parse("4:memory:/outer/me\n").unwrap();
        let m = Manager::from_hierarchies(h, d.path(), &own, None, "ctr").unwrap();
        assert_eq!(
            m.paths()["memory"],
            d.path().join("memory/me/ctr").to_string_lossy()
        );
        assert_eq!(below_mount_root("/outer", "/outer"), "/");
        assert_eq!(below_mount_root("/outerx/a", "/outer"), "/outerx/a");
    }
}
