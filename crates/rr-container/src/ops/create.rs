//! `create`: a container's state directory, cgroups, namespaces and init,
//! which is left waiting on exec.fifo for `start`. On failure the
//! [`CreateGuard`] removes all of it.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxNamespaceType;
use rr_state::{ContainerDir, ContainerId, State, StoredConfig};

use crate::cgroups::wants_limits;
use crate::config::{load_bundle, Bundle};
use crate::error::{Error, Result};
use crate::init::confine::Confinement;
use crate::init::{self, InitArgs};
use crate::nsenter::{bootstrap_message, host_root_ids, kind_key, namespaces, proc_ns_name};
use crate::runtime::{record_creator_exe, Runtime};
use crate::sync::{self, InitReport};
use crate::sys::rootless;

/// Options of `create` (and of `run`).
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// The container id.
    pub id: String,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// Where to write the init's pid.
    pub pid_file: Option<PathBuf>,
    /// chroot instead of pivot_root.
    pub no_pivot: bool,
    /// Do not create a new session keyring for the container.
    pub no_new_keyring: bool,
    /// Number of fds after stdio passed to the container.
    pub preserve_fds: u32,
    /// Unix socket to send the terminal's master end to.
    pub console_socket: Option<PathBuf>,
}

impl Runtime {
    /// Creates a container: its namespaces, rootfs and init, which then
    /// waits for `start`. Returns the init's pid.
    pub fn create(&self, opts: &CreateOptions) -> Result<i32> {
        self.create_with_console(opts, false).map(|(pid, _)| pid)
    }

    /// `create`; with `foreground` a terminal without a console socket is
    /// allowed, and the master of that terminal is returned.
    pub(crate) fn create_with_console(
        &self,
        opts: &CreateOptions,
        foreground: bool,
    ) -> Result<(i32, Option<OwnedFd>)> {
        let id = ContainerId::new(&opts.id)?;
        let bundle = load_bundle(&opts.bundle)?;
        for w in crate::init::rootfs::check_mount_options(
            &bundle.spec,
            &bundle.path.join("config.json"),
        )? {
            self.warn(w);
        }
        crate::init::idmapped::check(&bundle.spec, &bundle.path.join("config.json"))?;
        let confine = Confinement::prepare(&opts.id, &bundle.path, &bundle.spec)?;
        for w in &confine.warnings {
            self.warn(w.clone());
        }
        let rdt_plan = crate::rdt::plan(&bundle.spec, &bundle.path.join("config.json"))?;
        let terminal = bundle
            .spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false);
        let console = crate::init::tty::plan(terminal, opts.console_socket.as_deref(), foreground)?;
        crate::init::process::make_undumpable()?;
        let (dir, lock) = self.root.create(&id)?;
        let mut guard = CreateGuard {
            dir: Some(dir),
            pid: None,
            cgroup: None,
            cgroup_shared: false,
            rdt: crate::rdt::RdtGuard::default(),
        };
        guard.rdt.plan = rdt_plan;
        let pid = self.create_in(
            &bundle,
            opts,
            &mut guard,
            lock.as_raw_fd(),
            &confine,
            console.as_ref().map(|c| c.send.as_raw_fd()),
        )?;
        let master = match console.and_then(|c| c.recv) {
            Some(r) => Some(crate::init::tty::recv_master(&r)?),
            None => None,
        };
        guard.disarm();
        Ok((pid, master))
    }

    /// Creates the container's cgroups and writes their resources, before
    /// any process joins, so the init is limited from its first instruction.
    fn create_cgroup(
        &self,
        bundle: &Bundle,
        opts: &CreateOptions,
        dir: &ContainerDir,
        slot: &mut Option<rr_cgroups::Manager>,
        shared: &mut bool,
    ) -> Result<std::collections::BTreeMap<String, String>> {
        let (manager, busy) = crate::cgroups::manager_for_create(&bundle.spec, &opts.id)?;
        if busy > 0 {
            // runc's words. Such cgroups are never killed: see teardown.
            self.warn(format!(
                "container's cgroup is not empty: {busy} process(es) found"
            ));
            *shared = true;
        }
        // Recorded before `set` makes the directories: a create killed from
        // here on leaves them to `delete`, which has no state.json yet.
        crate::unfinished::record(
            dir,
            &State {
                id: opts.id.clone(),
                cgroup_paths: manager.paths(),
                config: shared_mark(Default::default(), *shared),
                ..Default::default()
            },
        )?;
        let cgroup = slot.insert(manager);
        for w in cgroup.set(&crate::cgroups::create_resources(&bundle.spec))? {
            self.warn(w.to_string());
        }
        Ok(cgroup.paths())
    }

    fn create_in(
        &self,
        bundle: &Bundle,
        opts: &CreateOptions,
        guard: &mut CreateGuard,
        lock_fd: std::os::fd::RawFd,
        confine: &Confinement,
        console: Option<std::os::fd::RawFd>,
    ) -> Result<i32> {
        let dir = guard
            .dir
            .as_ref()
            .ok_or_else(|| Error::Init("internal: no state dir".into()))?;
        let mut msg = bootstrap_message(&bundle.spec)?;
        let (fifo_uid, fifo_gid) = host_root_ids(&msg);
        let fifo_path = dir.create_exec_fifo(fifo_uid, fifo_gid)?;
        // Opened here, not in the init: a user-namespaced init cannot
        // traverse the 0700 state root to reach it by path.
        let fifo = open_o_path(&fifo_path)?;
        let namespaces = namespaces(&bundle.spec);
        // A namespace the spec does not list is the runtime's: without a
        // mount namespace the rootfs is built in rrc's own (as runc does).
        let inherited_mount_ns = !namespaces
            .iter()
            .any(|(t, _)| *t == LinuxNamespaceType::Mount);
        if inherited_mount_ns {
            check_without_mount_ns(bundle)?;
            crate::init::rootfs::record_mounts_before(dir.path(), &bundle.rootfs)?;
        }
        // rrc itself in a user namespace (rootless podman) cannot mknod
        // either: devices are bind mounted then too, as runc does.
        let in_userns = rr_state::in_user_namespace()
            || namespaces
                .iter()
                .any(|(t, p)| *t == LinuxNamespaceType::User && p.is_none());
        let cgroupns = namespaces
            .iter()
            .any(|(t, p)| *t == LinuxNamespaceType::Cgroup && p.is_none());
        // The runtime opens the bind sources for a new user namespace (see
        // bind_sources), by host paths: only where the init's mount
        // namespace is a fresh copy of rrc's, in which they mean the same.
        let take_sources = in_userns
            && namespaces
                .iter()
                .any(|(t, p)| *t == LinuxNamespaceType::Mount && p.is_none());

        // The init makes it once inside its cgroups (see cgjoin).
        msg.clone_flags &= !(libc::CLONE_NEWCGROUP as u32);
        // A UTS namespace joined by path is the container's too: the names
        // are set inside it, as runc does.
        let own_uts = namespaces
            .iter()
            .any(|(t, _)| *t == LinuxNamespaceType::Uts);
        if !own_uts {
            check_names_without_uts(bundle)?;
        }

        let cgroup_paths = match self.create_cgroup(
            bundle,
            opts,
            dir,
            &mut guard.cgroup,
            &mut guard.cgroup_shared,
        ) {
            Ok(p) => p,
            // Rootless without delegated cgroups: nothing was asked of
            // them, so the container runs in the caller's cgroup, as with
            // runc.
            Err(e) if rootless() && crate::cgroups::denied(&e) && !wants_limits(&bundle.spec) => {
                if let Some(cg) = guard.cgroup.take() {
                    let _ = crate::cgroups::teardown(&cg, guard.cgroup_shared);
                }
                self.warn(format!(
                    "rootless: the container gets no cgroup of its own and stays in the caller's ({e}); it asks for no resource limits"
                ));
                Default::default()
            }
            Err(e) if rootless() && crate::cgroups::denied(&e) => {
                return Err(Error::Unsupported {
                    field: "linux.resources".into(),
                    message: format!("{e}: running rootless, and the cgroup is not delegated to this user; delegate it or remove the resource limits"),
                })
            }
            Err(e) => return Err(e),
        };

        let (boot_parent, boot_child) = sync::seqpacket_pair()?;
        let (sync_parent, sync_child) = sync::seqpacket_pair()?;
        // SAFETY: rrc is single threaded up to here, so the child can run
        // arbitrary code.
        let stage1 = unsafe { libc::fork() };
        if stage1 < 0 {
            return Err(Error::last_os("fork"));
        }
        if stage1 == 0 {
            crate::forward::reset_for_child();
            // The lock belongs to the open file, which fork shares: stage 1
            // and the init keep it until the state is saved (the init then
            // closes it, or `start` would wait forever), so a `delete`
            // after a killed create waits for them to be gone.
            drop(boot_parent);
            drop(sync_parent);
            let keep = [
                Some(boot_child.as_raw_fd()),
                Some(sync_child.as_raw_fd()),
                Some(fifo.as_raw_fd()),
                Some(lock_fd),
                console,
            ];
            let keep: Vec<_> = keep.into_iter().flatten().collect();
            crate::init::fds::close_inherited(&keep, opts.preserve_fds);
            let fd = sync_child.as_raw_fd();
            let bind_sources = match rr_nsenter::bootstrap::enter(boot_child)
                .map_err(Error::from)
                .and_then(|_| crate::cgjoin::await_join(fd, cgroupns))
                .and_then(|_| {
                    if take_sources {
                        crate::init::bind_sources::recv(fd)
                    } else {
                        Ok(Vec::new())
                    }
                }) {
                Ok(b) => b,
                Err(e) => {
                    let _ = sync::send_error(fd, &e.to_string());
                    // SAFETY: leaves the forked child without running the
                    // parent's exit handlers.
                    unsafe { libc::_exit(1) }
                }
            };
            init::run(
                InitArgs {
                    bundle,
                    fifo,
                    no_pivot: opts.no_pivot,
                    no_new_keyring: opts.no_new_keyring,
                    preserve_fds: opts.preserve_fds,
                    in_userns,
                    cgroupns,
                    own_uts,
                    inherited_mount_ns,
                    bind_sources,
                    confine,
                    console,
                    lock_fd,
                },
                sync_child,
            );
        }
        drop(boot_child);
        drop(sync_child);
        let pids = rr_nsenter::bootstrap::drive(&boot_parent, &msg, stage1)?;
        guard.pid = Some(pids.init);
        // Opened while the init waits to be joined, so before it has
        // changed a mount (see bind_sources).
        let bind_sources = if take_sources {
            let config = bundle.path.join("config.json");
            let mut b = crate::init::bind_sources::open_all(
                &bundle.spec,
                &bundle.path,
                &config,
                pids.init,
            )?;
            b.extend(crate::init::idmapped::make_all(
                &bundle.spec,
                &bundle.path,
                &config,
                pids.init,
            )?);
            b
        } else {
            Vec::new()
        };
        crate::cgjoin::join(guard.cgroup.as_ref(), pids.init, sync_parent.as_raw_fd())?;
        if take_sources {
            crate::init::bind_sources::send(sync_parent.as_raw_fd(), &bind_sources)?;
        }
        drop(bind_sources);
        match confine.serve_init(sync_parent.as_raw_fd(), pids.init)? {
            InitReport::Ready => {}
            InitReport::RunHooks => return Err(Error::Init("internal: hooks asked twice".into())),
            InitReport::Failed(m) => {
                return Err(Error::Init(crate::cgjoin::explain(
                    guard.cgroup.as_ref(),
                    m,
                )))
            }
            InitReport::Vanished => {
                return Err(Error::Init(crate::cgjoin::explain(
                    guard.cgroup.as_ref(),
                    "the container init exited during setup without a report".into(),
                )))
            }
        }
        let start = rr_state::read_proc_stat(&self.proc_root, pids.init)
            .map(|p| p.start_time)
            .ok_or_else(|| Error::Init("the container init died after setup".into()))?;
        // The init is blocked on exec.fifo until `start`: it runs no user
        // code before it is in its resctrl group.
        let (intel_rdt_path, rr_intel_rdt) = guard.rdt.apply(&opts.id, pids.init)?;
        if rr_intel_rdt.is_some() {
            crate::unfinished::record(
                dir,
                &State {
                    id: opts.id.clone(),
                    cgroup_paths: cgroup_paths.clone(),
                    intel_rdt_path: intel_rdt_path.clone(),
                    rr_intel_rdt: rr_intel_rdt.clone(),
                    ..Default::default()
                },
            )?;
        }
        let mut namespace_paths = std::collections::BTreeMap::new();
        for (t, path) in &namespaces {
            let kind = rr_nsenter::NsKind::from_oci(*t);
            let p = match path {
                Some(p) => p.display().to_string(),
                None => format!("/proc/{}/ns/{}", pids.init, proc_ns_name(kind)),
            };
            namespace_paths.insert(kind_key(*t).to_string(), p);
        }
        let state = State {
            id: opts.id.clone(),
            init_process_pid: pids.init,
            init_process_start: start,
            created: rr_state::now_rfc3339(),
            config: shared_mark(stored_config(bundle), guard.cgroup_shared),
            rootless: false,
            cgroup_paths,
            namespace_paths,
            external_descriptors: external_descriptors(),
            intel_rdt_path,
            rr_intel_rdt,
        };
        record_creator_exe(dir)?;
        dir.save(&state)?;
        if let Some(pf) = &opts.pid_file {
            write_pid_file(pf, pids.init)?;
        }
        // Until this ack the init exits if we die, so a create killed
        // before this point leaves no process that nothing records.
        sync::send_saved(sync_parent.as_raw_fd())
            .map_err(|_| Error::Init("the container init died after setup".into()))?;
        Ok(pids.init)
    }
}

/// What state.json keeps of the bundle: the rootfs, the bundle label runc
/// writes, and the spec (hooks and exec read it later). Shared by create
/// and restore, which record a container the same way.
pub(crate) fn stored_config(bundle: &Bundle) -> StoredConfig {
    StoredConfig {
        rootfs: bundle.rootfs.display().to_string(),
        labels: vec![format!("bundle={}", bundle.path.display())],
        spec: serde_json::to_value(&bundle.spec).unwrap_or_default(),
        ..Default::default()
    }
}

/// `config` with the mark of shared cgroups when `shared`.
fn shared_mark(mut config: StoredConfig, shared: bool) -> StoredConfig {
    if shared {
        config.extra.insert(
            crate::cgroups::SHARED_KEY.into(),
            serde_json::Value::Bool(true),
        );
    }
    config
}

fn open_o_path(p: &Path) -> Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(p)
        .map(OwnedFd::from)
        .map_err(|e| Error::io(p, e))
}

fn external_descriptors() -> Vec<String> {
    (0..3)
        .map(|fd| {
            std::fs::read_link(format!("/proc/self/fd/{fd}"))
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "/dev/null".into())
        })
        .collect()
}

pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pid".into());
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    std::fs::write(&tmp, pid.to_string()).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// Removes what a failed create left behind.
struct CreateGuard {
    dir: Option<ContainerDir>,
    pid: Option<i32>,
    cgroup: Option<rr_cgroups::Manager>,
    /// The cgroup held others' processes before the create.
    cgroup_shared: bool,
    rdt: crate::rdt::RdtGuard,
}

impl CreateGuard {
    fn disarm(&mut self) {
        self.dir = None;
        self.pid = None;
        self.cgroup = None;
        self.rdt.disarm();
    }
}

impl Drop for CreateGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
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
            crate::init::rootfs::detach_container_mounts(dir.path());
            let _ = dir.destroy();
        }
    }
}

/// Without a UTS namespace the names would be the host's: refused in
/// runc's words.
fn check_names_without_uts(bundle: &Bundle) -> Result<()> {
    for (field, value) in [
        ("hostname", bundle.spec.hostname()),
        ("domainname", bundle.spec.domainname()),
    ] {
        if value.as_deref().is_some_and(|v| !v.is_empty()) {
            return Err(Error::ConfigInvalid {
                path: bundle.path.join("config.json"),
                field: field.into(),
                message: format!("unable to set {field} without a private UTS namespace"),
            });
        }
    }
    Ok(())
}

/// What a spec without a mount namespace may not ask: masking and
/// read-only paths would change the runtime's own namespace (runc's words).
fn check_without_mount_ns(bundle: &Bundle) -> Result<()> {
    let linux = bundle.spec.linux().as_ref();
    for (field, set) in [
        (
            "linux.maskedPaths",
            linux.and_then(|l| l.masked_paths().as_ref()),
        ),
        (
            "linux.readonlyPaths",
            linux.and_then(|l| l.readonly_paths().as_ref()),
        ),
    ] {
        if set.is_some_and(|v| !v.is_empty()) {
            return Err(Error::ConfigInvalid {
                path: bundle.path.join("config.json"),
                field: field.into(),
                message: "unable to restrict sys entries without a private MNT namespace".into(),
            });
        }
    }
    Ok(())
}
