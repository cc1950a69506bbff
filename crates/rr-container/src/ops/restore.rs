//! `restore`: a new container made from CRIU images and a bundle.

mod guard;
mod notify;

use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use rr_criu::{Criu, CriuOpts};
use rr_state::{ContainerDir, ContainerId, State};

use crate::config::{load_bundle, Bundle};
use crate::criu::{
    cgroup_mode, criu_error, empty_ns_flags, external_mounts, open_dir, probe, stdio_fd,
};
use crate::error::{Error, Result};
use crate::init::secure_path::resolve_in_root;
use crate::ops::checkpoint::DESCRIPTORS_FILE;
use crate::ops::run::ExitStatus;
use crate::runtime::Runtime;
use crate::sys;
use guard::{RestoreGuard, RootBind};
use notify::RestoreNotify;

/// Options of `restore` (runc's flags).
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// The id of the new container (it must not exist).
    pub id: String,
    /// The bundle whose config and rootfs the container gets.
    pub bundle: PathBuf,
    /// The images written by `checkpoint`.
    pub image_path: PathBuf,
    /// Where CRIU's log and work files go (default: the images directory).
    pub work_path: Option<PathBuf>,
    /// Restore established TCP connections.
    pub tcp_established: bool,
    /// Allow unix sockets connected outside the container.
    pub ext_unix_sk: bool,
    /// The container is a shell job.
    pub shell_job: bool,
    /// Restore file locks.
    pub file_locks: bool,
    /// How CRIU handles cgroups.
    pub manage_cgroups_mode: Option<String>,
    /// Namespaces restored empty (only `network`).
    pub empty_ns: Vec<String>,
    /// Deduplicate against the parent images.
    pub auto_dedup: bool,
    /// Fetch memory lazily through a running `criu lazy-pages` daemon.
    pub lazy_pages: bool,
    /// Where to write the restored init's pid.
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the master of a restored terminal.
    pub console_socket: Option<PathBuf>,
    /// Return once restored instead of waiting for the container.
    pub detach: bool,
    /// Accepted for runc compatibility: CRIU restores the mount namespace
    /// (pivot_root or not is what the images say).
    pub no_pivot: bool,
    /// Accepted for runc compatibility: the keyring is not in the images.
    pub no_new_keyring: bool,
}

impl Runtime {
    /// Restores a container from CRIU images into the bundle's rootfs. In
    /// the foreground it waits for the restored init, forwarding signals,
    /// then deletes the container and returns the init's exit code; with
    /// `detach` it returns once the container runs.
    pub fn restore(&self, criu: &Criu, opts: &RestoreOptions) -> Result<ExitStatus> {
        let id = ContainerId::new(&opts.id)?;
        let bundle = load_bundle(&opts.bundle)?;
        let version = probe(criu, &format!("restore of container {}", opts.id))?;
        if opts.lazy_pages {
            let f = criu
                .features()
                .map_err(|e| criu_error(criu, "restore", e))?;
            if !f.lazy_pages {
                return Err(Error::Unsupported {
                    field: "--lazy-pages".into(),
                    message: format!(
                        "CRIU {version} at {} reports no lazy pages (userfaultfd) support on this kernel",
                        criu.path().display()
                    ),
                });
            }
        }
        let descriptors = read_descriptors(&opts.image_path)?;
        let forwarded = if opts.detach {
            None
        } else {
            Some(crate::forward::block_signals()?)
        };
        let restored = self.restore_new(&id, &bundle, criu, opts, &descriptors);
        let pid = match restored {
            Ok(pid) => pid,
            Err(e) => {
                if let Some(f) = &forwarded {
                    f.restore();
                }
                return Err(e);
            }
        };
        let Some(forwarded) = forwarded else {
            return Ok(ExitStatus(0));
        };
        // The restored init is our child (CRIU restores it as its sibling).
        let code = forwarded.wait_forwarding(pid);
        self.delete(&opts.id, true)?;
        Ok(ExitStatus(code))
    }

    fn restore_new(
        &self,
        id: &ContainerId,
        bundle: &Bundle,
        criu: &Criu,
        opts: &RestoreOptions,
        descriptors: &[String],
    ) -> Result<i32> {
        let cg_roots = restore_cgroup_roots(&bundle.spec);
        let cg_mode = restore_cgroup_mode(opts, &cg_roots)?;
        let empty_ns = empty_ns_flags(&opts.empty_ns)?;
        let images = open_dir(&opts.image_path)?;
        let work = open_work_dir(opts)?;
        let ns_files = external_namespace_files(&bundle.spec)?;

        let (dir, lock) = self.root.create(id)?;
        let mut guard = RestoreGuard {
            dir: Some(dir),
            pid: None,
            cgroup: None,
        };
        let dir = guard
            .dir
            .as_ref()
            .ok_or_else(|| Error::Init("internal: no state dir".into()))?;
        // CRIU runs in the container's cgroups, so that all it forks, the
        // restored tree included, is in them from the start: a restore
        // killed half-way leaves CRIU's helpers and half-restored tasks,
        // which only the cgroups (recorded before they exist) find again.
        guard.cgroup = restore_cgroup(&bundle.spec, id, dir)?;
        let (cgroup_procs, cgroup_paths) = cgroup_handles(guard.cgroup.as_ref())?;

        // CRIU wants its root to be a mount point whose parent is not
        // overmounted: a private bind of the rootfs in the state dir.
        let root = RootBind::new(&dir.path().join("criu-root"), &bundle.rootfs)?;
        make_bind_mountpoints(bundle)?;

        let mut c = restore_opts(&images, &root.path, opts, cg_mode, empty_ns);
        if let Some(w) = &work {
            c = c.work_dir(w.as_fd());
        }
        c = c.join_cgroups(cgroup_procs.iter().map(|f| f.as_fd()).collect());
        let c = with_inherited(c, bundle, &ns_files, descriptors, cg_roots)?;

        let notify = RestoreNotify {
            runtime: self,
            dir,
            id,
            bundle,
            cgroup_paths: &cgroup_paths,
            console_socket: opts.console_socket.as_deref(),
            saved: None,
            failure: None,
        };
        let (pid, result) = run_criu_restore(criu, &c, notify);
        // Set before the error returns: the guard kills what was restored.
        if pid.is_some() {
            guard.pid = pid;
        }
        result?;
        drop(root);
        drop(lock);
        let pid = guard.pid.unwrap_or_default();
        if let Some(pf) = &opts.pid_file {
            crate::ops::create::write_pid_file(pf, pid)?;
        }
        guard.disarm();
        Ok(pid)
    }

    fn save_restored(
        &self,
        dir: &ContainerDir,
        id: &ContainerId,
        bundle: &Bundle,
        pid: i32,
        cgroup_paths: &BTreeMap<String, String>,
    ) -> Result<()> {
        let start = rr_state::read_proc_stat(&self.proc_root, pid)
            .map(|p| p.start_time)
            .ok_or_else(|| Error::Init(format!("the restored init {pid} is not running")))?;
        let mut namespace_paths = BTreeMap::new();
        for (t, path) in namespaces(&bundle.spec) {
            let kind = rr_nsenter::NsKind::from_oci(t);
            let p = match path {
                Some(p) => p.display().to_string(),
                None => format!("/proc/{pid}/ns/{}", crate::nsenter::proc_ns_name(kind)),
            };
            namespace_paths.insert(crate::nsenter::kind_key(t).to_string(), p);
        }
        let external_descriptors = (0..3)
            .map(|fd| {
                std::fs::read_link(self.proc_root.join(format!("{pid}/fd/{fd}")))
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| "/dev/null".into())
            })
            .collect();
        let state = State {
            id: id.as_str().to_string(),
            init_process_pid: pid,
            init_process_start: start,
            created: rr_state::now_rfc3339(),
            config: crate::ops::create::stored_config(bundle),
            rootless: false,
            cgroup_paths: cgroup_paths.clone(),
            namespace_paths,
            external_descriptors,
            intel_rdt_path: String::new(),
            rr_intel_rdt: Default::default(),
        };
        dir.save(&state)?;
        let _ = std::fs::remove_file(dir.path().join("checkpoint"));
        Ok(())
    }
}

/// Without cgroups of its own the container stays in the runtime's,
/// as a created one does. CRIU must then leave cgroups alone: with a
/// cgroup namespace it cannot restore a tree that shared its own
/// cgroups at dump ("No set 1 found"; CRIU 4.2.1 here).
fn restore_cgroup_mode(
    opts: &RestoreOptions,
    cg_roots: &[(Option<String>, String)],
) -> Result<rr_criu::CgroupMode> {
    Ok(match opts.manage_cgroups_mode.as_deref() {
        None | Some("") if cg_roots.is_empty() => rr_criu::CgroupMode::Ignore,
        m => cgroup_mode(m)?,
    })
}

/// `--work-path`, made if missing and opened.
fn open_work_dir(opts: &RestoreOptions) -> Result<Option<std::fs::File>> {
    Ok(match &opts.work_path {
        Some(p) => {
            std::fs::create_dir_all(p).map_err(|e| Error::io(p, e))?;
            Some(open_dir(p)?)
        }
        None => None,
    })
}

/// The restore's options that come straight from the flags.
fn restore_opts<'a>(
    images: &'a std::fs::File,
    root: &Path,
    opts: &RestoreOptions,
    cg_mode: rr_criu::CgroupMode,
    empty_ns: u32,
) -> CriuOpts<'a> {
    CriuOpts::new(images.as_fd())
        .log_file("restore.log")
        .log_level(4)
        .root(root.display().to_string())
        .rst_sibling(true)
        .manage_cgroups(true)
        .manage_cgroups_mode(cg_mode)
        .shell_job(opts.shell_job)
        .ext_unix_sk(opts.ext_unix_sk)
        .tcp_established(opts.tcp_established)
        .file_locks(opts.file_locks)
        .empty_ns(empty_ns)
        .orphan_pts_master(true)
        .auto_dedup(opts.auto_dedup)
        .lazy_pages(opts.lazy_pages)
        .criu_stdio(stdio_fd(0), stdio_fd(1), stdio_fd(2))
}

/// What the restored tree finds again outside the images: external mounts
/// by their names, joined namespaces, the stdio pipes, the cgroup roots.
fn with_inherited<'a>(
    mut c: CriuOpts<'a>,
    bundle: &Bundle,
    ns_files: &'a [(String, OwnedFd)],
    descriptors: &[String],
    cg_roots: Vec<(Option<String>, String)>,
) -> Result<CriuOpts<'a>> {
    let mut names = Vec::new();
    for m in external_mounts(&bundle.spec, None, &bundle.path)? {
        // On restore the images' name is the key, so one entry per name.
        if !names.contains(&m.name) {
            c = c.ext_mount(m.name.clone(), m.source);
            names.push(m.name);
        }
    }
    for (key, f) in ns_files {
        c = c.inherit_fd(key.clone(), f.as_fd());
    }
    // The container's stdio were pipes of whoever ran it: they become
    // this rrc's stdio, which CRIU (our child) has as its 0, 1 and 2.
    for (i, d) in descriptors.iter().enumerate().take(3) {
        if d.contains("pipe:") {
            c = c.inherit_fd(d.clone(), stdio_fd(i as i32));
        }
    }
    for (ctrl, path) in cg_roots {
        c = c.cgroup_root(ctrl, path);
    }
    Ok(c)
}

/// The restored container's cgroups, made as `create` makes them (recorded
/// first, for a `delete` after a killed restore); none when rootless
/// without delegation and the spec asks for no limits, as with `create`.
fn restore_cgroup(
    spec: &Spec,
    id: &ContainerId,
    dir: &ContainerDir,
) -> Result<Option<rr_cgroups::Manager>> {
    let cg = crate::cgroups::unused_manager_for_spec(spec, id.as_str())?;
    crate::unfinished::record(
        dir,
        &State {
            id: id.as_str().to_string(),
            cgroup_paths: cg.paths(),
            ..Default::default()
        },
    )?;
    let made = cg
        .set(&crate::cgroups::create_resources(spec))
        .map_err(Error::from)
        .and_then(|_| {
            for d in cg.paths().values() {
                std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
            }
            Ok(())
        });
    match made {
        Ok(()) => Ok(Some(cg)),
        Err(e)
            if crate::sys::rootless()
                && crate::cgroups::denied(&e)
                && !crate::cgroups::wants_limits(spec) =>
        {
            let _ = cg.destroy();
            Ok(None)
        }
        Err(e) => {
            let _ = cg.destroy();
            Err(e)
        }
    }
}

/// Runs CRIU's restore and saves state.json unless the post-restore
/// notification already did. Returns the restored pid when there is one
/// (also on failure, so that the caller's guard can kill it) and the
/// outcome, a failure kept by the notification winning over CRIU's.
fn run_criu_restore(
    criu: &Criu,
    c: &CriuOpts<'_>,
    mut notify: RestoreNotify<'_>,
) -> (Option<i32>, Result<()>) {
    let outcome = criu.restore(c, &mut notify);
    let RestoreNotify {
        runtime,
        dir,
        id,
        bundle,
        cgroup_paths,
        saved,
        failure,
        ..
    } = notify;
    match outcome {
        Ok(o) if saved == Some(o.pid) => (Some(o.pid), Ok(())),
        Ok(o) => (
            Some(o.pid),
            runtime.save_restored(dir, id, bundle, o.pid, cgroup_paths),
        ),
        Err(e) => (
            saved,
            Err(failure.unwrap_or_else(|| {
                criu_error(criu, &format!("restore of container {}", id.as_str()), e)
            })),
        ),
    }
}

/// What CRIU needs of the container's cgroups: each cgroup.procs open (to
/// join before it forks) and the paths recorded in state.json.
fn cgroup_handles(
    cg: Option<&rr_cgroups::Manager>,
) -> Result<(Vec<std::fs::File>, BTreeMap<String, String>)> {
    let procs = match cg {
        Some(cg) => open_cgroup_procs(cg)?,
        None => Vec::new(),
    };
    let paths = cg.map(|cg| cg.paths()).unwrap_or_default();
    Ok((procs, paths))
}

/// Each distinct `cgroup.procs` of `cg`, open for writing.
fn open_cgroup_procs(cg: &rr_cgroups::Manager) -> Result<Vec<std::fs::File>> {
    let mut dirs: Vec<String> = cg.paths().into_values().collect();
    dirs.sort();
    dirs.dedup();
    dirs.iter()
        .map(|d| {
            let p = Path::new(d).join("cgroup.procs");
            std::fs::OpenOptions::new()
                .write(true)
                .open(&p)
                .map_err(|e| Error::io(&p, e))
        })
        .collect()
}

/// Where CRIU puts the restored tree's cgroups (`cg_root` per controller).
/// Empty means "where the images say", which is the checkpointed
/// container's own cgroups; the cgroups work fills this from the manager's
/// paths for the new container.
fn restore_cgroup_roots(spec: &Spec) -> Vec<(Option<String>, String)> {
    let _ = spec;
    Vec::new()
}

fn namespaces(spec: &Spec) -> Vec<(LinuxNamespaceType, Option<PathBuf>)> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .map(|v| v.iter().map(|n| (n.typ(), n.path().clone())).collect())
        .unwrap_or_default()
}

fn read_descriptors(images: &Path) -> Result<Vec<String>> {
    let path = images.join(DESCRIPTORS_FILE);
    let bytes = std::fs::read(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Init(format!(
                "{}: no such file: {} does not hold a checkpoint made by `checkpoint`",
                path.display(),
                images.display()
            ))
        } else {
            Error::io(&path, e)
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::Init(format!(
            "{}: not a JSON list of descriptor names: {e}",
            path.display()
        ))
    })
}

/// Net and pid namespaces joined by path are external to the images: CRIU
/// gets the namespace back as an inherited descriptor under runc's key.
/// Other joined namespaces would need CRIU's join_ns, which rr does not send.
fn external_namespace_files(spec: &Spec) -> Result<Vec<(String, OwnedFd)>> {
    let mut out = Vec::new();
    for (t, path) in namespaces(spec) {
        let Some(path) = path else { continue };
        let key = match t {
            LinuxNamespaceType::Network => "extRootNetNS",
            LinuxNamespaceType::Pid => "extRootPidNS",
            other => {
                return Err(Error::Unsupported {
                    field: "linux.namespaces".into(),
                    message: format!(
                        "restoring into an existing {other:?} namespace ({}) is not supported",
                        path.display()
                    ),
                })
            }
        };
        let c = sys::cpath(&path)?;
        // No O_CLOEXEC: CRIU, our child, must find it at the same number.
        // SAFETY: c is a valid C string.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY) };
        if fd < 0 {
            return Err(Error::last_os(format!("open namespace {}", path.display())));
        }
        // SAFETY: fd was just opened and is owned here.
        out.push((key.to_string(), unsafe {
            <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd)
        }));
    }
    Ok(out)
}

/// Mount targets must exist in the rootfs before CRIU mounts on them (a
/// fresh copy of a bundle, such as the new rootfs `podman container restore
/// --import` makes, lacks those `create` made).
fn make_bind_mountpoints(bundle: &Bundle) -> Result<()> {
    for m in bundle.spec.mounts().iter().flatten() {
        let dest = resolve_in_root(&bundle.rootfs, m.destination())?;
        if std::fs::symlink_metadata(&dest).is_ok() {
            continue;
        }
        if !crate::init::mount_opts::is_bind(m) {
            sys::mkdir_all(&dest)?;
            continue;
        }
        let src = m.source().clone().unwrap_or_default();
        let src = if src.is_absolute() {
            src
        } else {
            bundle.path.join(src)
        };
        if std::fs::metadata(&src).map(|m| m.is_dir()).unwrap_or(true) {
            sys::mkdir_all(&dest)?;
        } else {
            sys::touch(&dest)?;
        }
    }
    Ok(())
}
