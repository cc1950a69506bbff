//! The container operations behind `rrc`'s commands.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use rr_nsenter::{BootstrapMessage, IdMapping};
use rr_state::{ContainerDir, ContainerId, OciState, State, StateRoot, Status, StoredConfig};

use crate::config::{load_bundle, Bundle};
use crate::confine::Confinement;
use crate::error::{Error, Result};
use crate::init::{self, InitArgs};
use crate::sync::{self, InitReport};

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

/// A handle on the state root, through which every operation goes.
pub struct Runtime {
    pub(crate) root: StateRoot,
    pub(crate) proc_root: PathBuf,
    pub(crate) warnings: std::cell::RefCell<Option<WarningFn>>,
    pub(crate) systemd_cgroup: bool,
}

/// Receives warnings (see [`Runtime::on_warning`]).
pub(crate) type WarningFn = Box<dyn FnMut(&str)>;

/// The outcome of a container process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus(pub i32);

impl Runtime {
    /// Opens (creating if needed) the state root.
    pub fn new(root: &Path) -> Result<Runtime> {
        Ok(Runtime {
            root: StateRoot::open(root)?,
            proc_root: PathBuf::from("/proc"),
            warnings: Default::default(),
            systemd_cgroup: false,
        })
    }

    pub(crate) fn container(&self, id: &str) -> Result<ContainerDir> {
        let id = ContainerId::new(id)?;
        Ok(self.root.open_container(&id)?)
    }

    /// Creates a container: its namespaces, rootfs and init, which then
    /// waits for `start`. Returns the init's pid.
    pub fn create(&self, opts: &CreateOptions) -> Result<i32> {
        self.create_with_console(opts, false).map(|(pid, _)| pid)
    }

    /// `create`; with `foreground` a terminal without a console socket is
    /// allowed, and the master of that terminal is returned.
    fn create_with_console(
        &self,
        opts: &CreateOptions,
        foreground: bool,
    ) -> Result<(i32, Option<OwnedFd>)> {
        let id = ContainerId::new(&opts.id)?;
        let bundle = load_bundle(&opts.bundle)?;
        for w in crate::rootfs::check_mount_options(&bundle.spec, &bundle.path.join("config.json"))?
        {
            self.warn(w);
        }
        crate::idmapped::check(&bundle.spec, &bundle.path.join("config.json"))?;
        let netdevs = crate::netdev::plan(&bundle.spec, &bundle.path.join("config.json"))?;
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
        let console = crate::tty::plan(terminal, opts.console_socket.as_deref(), foreground)?;
        crate::process::make_undumpable()?;
        let (dir, lock) = self.root.create(&id)?;
        let mut guard = CreateGuard {
            dir: Some(dir),
            pid: None,
            cgroup: None,
            cgroup_shared: false,
            rdt: crate::rdt::RdtGuard::default(),
            netdev_plan: netdevs,
            netdevs: Vec::new(),
            netns: None,
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
            Some(r) => Some(crate::tty::recv_master(&r)?),
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
        let (manager, busy) = crate::cgroups::manager_for_create(self, &bundle.spec, &opts.id)?;
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
                config: crate::cgroups::mark(Default::default(), *shared, Some(&manager)),
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
            crate::rootfs::record_mounts_before(dir.path(), &bundle.rootfs)?;
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
            crate::fds::close_inherited(&keep, opts.preserve_fds);
            let fd = sync_child.as_raw_fd();
            let bind_sources = match rr_nsenter::bootstrap::enter(boot_child)
                .map_err(Error::from)
                .and_then(|_| crate::cgjoin::await_join(fd, cgroupns))
                .and_then(|_| {
                    if take_sources {
                        crate::bind_sources::recv(fd)
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
        let plan = std::mem::take(&mut guard.netdev_plan);
        if !plan.devices.is_empty() {
            let target = crate::netdev::target(&plan, pids.init)?;
            let target = guard.netns.insert(target);
            for d in plan.devices {
                crate::netdev::move_in(&d, target)?;
                guard.netdevs.push(d);
            }
        }
        // Opened while the init waits to be joined, so before it has
        // changed a mount (see bind_sources).
        let bind_sources = if take_sources {
            let config = bundle.path.join("config.json");
            let mut b =
                crate::bind_sources::open_all(&bundle.spec, &bundle.path, &config, pids.init)?;
            b.extend(crate::idmapped::make_all(
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
            crate::bind_sources::send(sync_parent.as_raw_fd(), &bind_sources)?;
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
            config: crate::cgroups::mark(
                stored_config(bundle),
                guard.cgroup_shared,
                guard.cgroup.as_ref(),
            ),
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

    /// Starts a created container: lets its init exec the process.
    pub fn start(&self, id: &str) -> Result<()> {
        let dir = self.container(id)?;
        let _lock = dir.lock()?;
        let state = dir.load()?;
        let status = self.status_of(&dir, &state);
        match status {
            Status::Created => {}
            Status::Stopped => {
                return Err(wrong_state(
                    id,
                    status,
                    "cannot start a container that has stopped",
                ))
            }
            _ => {
                return Err(wrong_state(
                    id,
                    status,
                    "cannot start an already running container",
                ))
            }
        }
        let fifo = dir.fifo_path();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags_nonblock()
            .open(&fifo)
            .map_err(|e| Error::io(&fifo, e))?;
        // Opening the read end is what lets the init go on: from here it
        // runs its process even if we die, so the fifo, which marks a
        // container as created, goes now rather than after the byte.
        let _ = std::fs::remove_file(&fifo);
        let outcome = wait_fifo_byte(&f, || {
            rr_state::process_alive(
                &self.proc_root,
                state.init_process_pid,
                state.init_process_start,
            )
        });
        outcome.map_err(|m| Error::Init(format!("container {id}: {m}")))?;
        crate::confine::poststart(&state);
        Ok(())
    }

    /// Sends a signal to the container's init (or, with `all`, to every
    /// process in its pid namespace).
    pub fn kill(&self, id: &str, signal: libc::c_int, all: bool) -> Result<()> {
        let dir = self.container(id)?;
        let state = dir.load()?;
        let status = self.status_of(&dir, &state);
        if all && status == Status::Stopped {
            // What the init left in its cgroups (daemons it forked without
            // a pid namespace) is still the container's: containerd's shim
            // kills it on every task exit, and runc exits 0. Cgroups shared
            // with others are left alone once the init is gone.
            if crate::cgroups::is_shared(&state) || state.cgroup_paths.is_empty() {
                return Ok(());
            }
            return self.kill_all(&state, signal);
        }
        if status == Status::Stopped {
            return Err(wrong_state(id, status, "container not running"));
        }
        if all {
            return self.kill_all(&state, signal);
        }
        for pid in [state.init_process_pid] {
            // SAFETY: kill with plain integers.
            if unsafe { libc::kill(pid, signal) } != 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::ESRCH) {
                    return Err(Error::Sys {
                        call: format!("kill {pid} signal {signal}"),
                        source: e,
                    });
                }
            }
        }
        Ok(())
    }

    /// Deletes a container; with `force` a running one is killed first.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let cid = ContainerId::new(id)?;
        let dir = match self.root.open_container(&cid) {
            Ok(d) => d,
            // runc treats a forced delete of a missing container as done.
            Err(rr_state::Error::NotFound { .. }) if force => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let lock = dir.lock()?;
        let state = match dir.load() {
            Ok(s) => s,
            // A create that died before writing state leaves only the
            // directory: its stage 1 and init held the container lock
            // until they exited, so nothing else of it can exist. A create
            // still running is told apart by the root's lock.
            Err(_) if !dir.state_path().exists() => {
                if self
                    .root
                    .remove_unfinished(dir, lock, crate::unfinished::undo)?
                {
                    return Ok(());
                }
                return self.delete(id, force);
            }
            Err(e) => return Err(e.into()),
        };
        crate::unfinished::kill_left_criu(&dir);
        let status = self.status_of(&dir, &state);
        let cgroup = crate::cgroups::manager_of(&state)?;
        let shared = crate::cgroups::is_shared(&state);
        // Killing through the cgroup reaches every process, also in a
        // frozen cgroup, where a plain SIGKILL waits for a thaw. A shared
        // cgroup is left alone until the init is gone.
        let kill = |state: &State| -> Result<()> {
            if rr_state::process_alive(
                &self.proc_root,
                state.init_process_pid,
                state.init_process_start,
            ) {
                let devs = crate::netdev::of_state(state);
                if !devs.is_empty() {
                    let p = format!("/proc/{}/ns/net", state.init_process_pid);
                    match std::fs::File::open(&p) {
                        Ok(ns) => {
                            for w in crate::netdev::move_out(&devs, &ns) {
                                self.warn(w);
                            }
                        }
                        Err(e) => self.warn(format!("linux.netDevices: {p}: {e}")),
                    }
                }
            }
            if let Some(cg) = cgroup.as_ref().filter(|_| !shared) {
                cg.destroy()?;
            }
            self.kill_and_wait(state)
        };
        match status {
            Status::Stopped => {}
            Status::Created => kill(&state)?,
            _ if force => kill(&state)?,
            _ => {
                return Err(wrong_state(
                    id,
                    status,
                    "cannot delete a container that is not stopped (use --force)",
                ))
            }
        }
        // Kills what the init left behind (daemons it forked) and removes
        // the directories; the state stays on failure so delete can retry.
        if let Some(cg) = &cgroup {
            for w in crate::cgroups::teardown(cg, shared)? {
                self.warn(w);
            }
        }
        crate::rdt::remove_groups(&state)?;
        // A restore killed while CRIU ran leaves the rootfs bound in the
        // state dir: removing the tree through it would empty the rootfs.
        crate::unfinished::detach_mounts_under(dir.path())?;
        crate::rootfs::detach_container_mounts(dir.path());
        dir.destroy()?;
        crate::confine::poststop(&state);
        Ok(())
    }

    pub(crate) fn kill_and_wait(&self, state: &State) -> Result<()> {
        let pid = state.init_process_pid;
        let start = state.init_process_start;
        if !rr_state::process_alive(&self.proc_root, pid, start) {
            return Ok(());
        }
        // A pidfd pins the process: no signal can reach a reused pid once
        // the start time has been checked against it.
        // SAFETY: pidfd_open with plain integers.
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
        if pidfd < 0 {
            return Ok(());
        }
        // SAFETY: pidfd was just opened and is owned here.
        let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
        if !rr_state::process_alive(&self.proc_root, pid, start) {
            return Ok(());
        }
        // SAFETY: pidfd_send_signal on our pidfd.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                pidfd.as_raw_fd(),
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(Error::Sys {
                    call: format!("kill {pid}"),
                    source: e,
                });
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut pfd = libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, 100) };
            if n > 0 || !rr_state::process_alive(&self.proc_root, pid, start) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::Init(format!(
                    "container init {pid} did not die within 10s of SIGKILL"
                )));
            }
        }
    }

    /// The OCI state of one container.
    pub fn state(&self, id: &str) -> Result<OciState> {
        let dir = self.container(id)?;
        let state = dir.load()?;
        Ok(self.oci_state(&dir, &state))
    }

    /// The OCI state of every container, sorted by id.
    pub fn list(&self) -> Result<Vec<OciState>> {
        let mut out = Vec::new();
        for id in self.root.list()? {
            let Ok(dir) = self.root.open_container(&id) else {
                continue;
            };
            let Ok(state) = dir.load() else { continue };
            out.push(self.oci_state(&dir, &state));
        }
        Ok(out)
    }

    pub(crate) fn status_of(&self, dir: &ContainerDir, state: &State) -> Status {
        let frozen = crate::cgroups::manager_of(state)
            .ok()
            .flatten()
            .and_then(|cg| cg.is_frozen().ok())
            .unwrap_or(false);
        let waiting = dir.exec_fifo_exists() && !self.init_has_execd(dir, state);
        rr_state::derive_status(state, &self.proc_root, waiting, frozen)
    }

    /// Whether the init has exec'd the container's process, asked only
    /// while exec.fifo exists: `start` removes the fifo right after opening
    /// it, but a `start` killed between the two leaves the fifo behind a
    /// running process. Until its exec the init is a fork of the rrc that
    /// created it, so its executable is that very file (device and inode,
    /// kept in the state dir by create: an rrc binary replaced since keeps
    /// its inode while a waiting init maps it); after it, it is the
    /// container's. Unlike the process's arguments, nothing the container
    /// does can make its executable that inode. When it cannot be read (a
    /// non-dumpable init seen by a rootless rrc) the fifo decides.
    fn init_has_execd(&self, dir: &ContainerDir, state: &State) -> bool {
        use std::os::unix::fs::MetadataExt;
        let init = self
            .proc_root
            .join(state.init_process_pid.to_string())
            .join("exe");
        let Ok(i) = std::fs::metadata(init) else {
            return false;
        };
        match creator_exe(dir) {
            Some(creator) => (i.dev(), i.ino()) != creator,
            None => false,
        }
    }

    fn oci_state(&self, dir: &ContainerDir, state: &State) -> OciState {
        let mut out = OciState::new(state, self.status_of(dir, state));
        if let Some(v) = state.config.spec.get("ociVersion").and_then(|v| v.as_str()) {
            out.oci_version = v.to_string();
        }
        out.owner = owner_of(dir.path());
        out
    }

    /// `run`: create, start, and unless `detach`, wait for the process,
    /// forwarding signals to it, and delete the container unless `keep`.
    pub fn run(&self, opts: &CreateOptions, detach: bool, keep: bool) -> Result<ExitStatus> {
        if !detach {
            // The init is a grandchild; becoming a subreaper makes it our
            // child once stage 1 exits, so its exit status reaches us.
            // SAFETY: prctl with integer arguments.
            if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
                return Err(Error::last_os("prctl(PR_SET_CHILD_SUBREAPER)"));
            }
        }
        let forwarded = crate::forward::block_signals()?;
        let (pid, master) = match self.create_with_console(opts, !detach) {
            Ok(p) => p,
            Err(e) => {
                forwarded.restore();
                return Err(e);
            }
        };
        if let Err(e) = self.start(&opts.id) {
            forwarded.restore();
            let _ = self.delete(&opts.id, true);
            return Err(e);
        }
        if detach {
            forwarded.restore();
            return Ok(ExitStatus(0));
        }
        let code = match master {
            Some(m) => crate::tty::proxy_and_wait(&forwarded, pid, m),
            None => forwarded.wait_forwarding(pid),
        };
        if !keep {
            self.delete(&opts.id, true)?;
        }
        Ok(ExitStatus(code))
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

/// Whether rrc runs rootless: as a user other than root, or as root of a
/// user namespace (rootless podman runs its runtime so), where host
/// cgroups are not its own to make. runc decides the same way.
pub(crate) fn rootless() -> bool {
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    euid != 0 || rr_state::in_user_namespace()
}

/// Whether the spec sets any resource limit (device rules aside, which a
/// rootless container cannot enforce anyway).
pub(crate) fn wants_limits(spec: &Spec) -> bool {
    let Some(r) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) else {
        return false;
    };
    let mut r = r.clone();
    r.set_devices(None);
    r != Default::default()
}

pub(crate) fn wrong_state(id: &str, status: Status, message: &str) -> Error {
    Error::WrongState {
        id: id.to_string(),
        status: status.to_string(),
        message: message.to_string(),
    }
}

trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}
impl NonBlock for std::fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
    }
}

/// Waits for the init's byte on exec.fifo, giving up when the init dies.
/// Where create keeps the (device, inode) of the rrc that made the init.
const CREATOR_EXE: &str = "creator-exe";

/// Records this rrc's executable for [`creator_exe`].
fn record_creator_exe(dir: &ContainerDir) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let me = std::fs::metadata("/proc/self/exe").map_err(|e| Error::io("/proc/self/exe", e))?;
    let path = dir.path().join(CREATOR_EXE);
    std::fs::write(&path, format!("{} {}\n", me.dev(), me.ino())).map_err(|e| Error::io(&path, e))
}

/// The (device, inode) of the rrc that created the container; this rrc's
/// when it was not recorded (a create killed before, or an older rrc).
fn creator_exe(dir: &ContainerDir) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let recorded = std::fs::read_to_string(dir.path().join(CREATOR_EXE))
        .ok()
        .and_then(|t| {
            let mut it = t.split_whitespace().map(|n| n.parse::<u64>().ok());
            Some((it.next()??, it.next()??))
        });
    recorded.or_else(|| {
        std::fs::metadata("/proc/self/exe")
            .ok()
            .map(|m| (m.dev(), m.ino()))
    })
}

fn wait_fifo_byte(f: &std::fs::File, alive: impl Fn() -> bool) -> std::result::Result<(), String> {
    loop {
        let mut pfd = libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, 100) };
        if n > 0 && pfd.revents & libc::POLLIN != 0 {
            let mut b = [0u8; 1];
            // SAFETY: reads at most one byte into b.
            let r = unsafe { libc::read(f.as_raw_fd(), b.as_mut_ptr().cast(), 1) };
            if r == 1 {
                return Ok(());
            }
        }
        if n > 0 && pfd.revents & libc::POLLHUP != 0 {
            return Err("the init closed exec.fifo without starting".into());
        }
        if !alive() {
            return Err("the init is not running".into());
        }
    }
}

fn namespaces(spec: &Spec) -> Vec<(LinuxNamespaceType, Option<PathBuf>)> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .map(|v| v.iter().map(|n| (n.typ(), n.path().clone())).collect())
        .unwrap_or_default()
}

pub(crate) fn kind_key(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "NEWNS",
        LinuxNamespaceType::Cgroup => "NEWCGROUP",
        LinuxNamespaceType::Uts => "NEWUTS",
        LinuxNamespaceType::Ipc => "NEWIPC",
        LinuxNamespaceType::User => "NEWUSER",
        LinuxNamespaceType::Pid => "NEWPID",
        LinuxNamespaceType::Network => "NEWNET",
        LinuxNamespaceType::Time => "NEWTIME",
    }
}

pub(crate) fn proc_ns_name(kind: rr_nsenter::NsKind) -> &'static str {
    match kind {
        rr_nsenter::NsKind::Time => "time",
        other => other.name(),
    }
}

fn to_maps(v: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>) -> Vec<IdMapping> {
    v.map(|m| {
        m.iter()
            .map(|x| IdMapping {
                container_id: x.container_id(),
                host_id: x.host_id(),
                size: x.size(),
            })
            .collect()
    })
    .unwrap_or_default()
}

/// Builds the bootstrap message for a spec.
pub fn bootstrap_message(spec: &Spec) -> Result<BootstrapMessage> {
    let linux = spec.linux().as_ref();
    let ns = linux
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let uid_map = to_maps(linux.and_then(|l| l.uid_mappings().as_ref()));
    let gid_map = to_maps(linux.and_then(|l| l.gid_mappings().as_ref()));
    // SAFETY: getegid cannot fail.
    let egid = unsafe { libc::getegid() };
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    let clone_flags = rr_nsenter::clone_flags_to_create(&ns)?;
    let set_groups = if clone_flags & libc::CLONE_NEWUSER as u32 != 0 {
        Some(rr_nsenter::setgroups_allowed(&gid_map, egid))
    } else {
        None
    };
    Ok(BootstrapMessage {
        clone_flags,
        ns_paths: rr_nsenter::ns_paths_to_join(&ns)?,
        uid_map,
        gid_map,
        // Unprivileged, the kernel takes only a map of the caller's own id;
        // the setuid helpers write the rest from /etc/subuid and /etc/subgid.
        uid_map_path: (euid != 0).then(|| id_map_helper("newuidmap")).flatten(),
        gid_map_path: (euid != 0).then(|| id_map_helper("newgidmap")).flatten(),
        set_groups,
        oom_score_adj: spec.process().as_ref().and_then(|p| p.oom_score_adj()),
        rootless_euid: euid != 0,
        time_offsets: time_offsets(spec)?,
    })
}

/// `linux.timeOffsets`, for a time namespace the container makes (the
/// offsets of one joined by path are its owner's to set).
fn time_offsets(spec: &Spec) -> Result<Vec<rr_nsenter::TimeOffset>> {
    let linux = spec.linux().as_ref();
    let Some(offsets) = linux.and_then(|l| l.time_offsets().as_ref()) else {
        return Ok(Vec::new());
    };
    let invalid = |field: String, message: &str| Error::ConfigInvalid {
        path: "config.json".into(),
        field,
        message: message.into(),
    };
    if offsets.is_empty() {
        return Ok(Vec::new());
    }
    let time_ns = namespaces(spec)
        .into_iter()
        .find(|(t, _)| *t == LinuxNamespaceType::Time);
    match time_ns {
        None => {
            return Err(invalid(
                "linux.timeOffsets".into(),
                "given without a time namespace (linux.namespaces)",
            ))
        }
        Some((_, Some(_))) => {
            return Err(invalid(
                "linux.timeOffsets".into(),
                "a time namespace joined by path keeps its own offsets",
            ))
        }
        Some((_, None)) => {}
    }
    let mut out = Vec::new();
    for (name, o) in offsets {
        let field = format!("linux.timeOffsets.{name}");
        let clock = rr_nsenter::TimeClock::from_name(name)
            .ok_or_else(|| invalid(field.clone(), "unknown clock (monotonic or boottime)"))?;
        let nanosecs = o.nanosecs().unwrap_or(0);
        if nanosecs >= 1_000_000_000 {
            return Err(invalid(
                format!("{field}.nanosecs"),
                "must be below 1000000000",
            ));
        }
        out.push(rr_nsenter::TimeOffset {
            clock,
            secs: o.secs().unwrap_or(0),
            nanosecs,
        });
    }
    out.sort_by_key(|o| o.clock.name());
    Ok(out)
}

/// Where the shadow-utils id map helper `name` is installed, if it is.
fn id_map_helper(name: &str) -> Option<String> {
    ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        .iter()
        .map(|d| format!("{d}/{name}"))
        .find(|p| Path::new(p).exists())
}

/// The host uid and gid that container root maps to.
fn host_root_ids(msg: &BootstrapMessage) -> (u32, u32) {
    let find = |maps: &[IdMapping], default: u32| {
        maps.iter()
            .find(|m| m.container_id == 0)
            .map_or(default, |m| m.host_id)
    };
    // SAFETY: geteuid/getegid cannot fail.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    (find(&msg.uid_map, euid), find(&msg.gid_map, egid))
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

fn owner_of(p: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(p) else {
        return String::new();
    };
    let uid = meta.uid();
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                let _ = f.next();
                (f.next()?.parse::<u32>().ok()? == uid).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| format!("#{uid}"))
}

/// Removes what a failed create left behind.
struct CreateGuard {
    dir: Option<ContainerDir>,
    pid: Option<i32>,
    cgroup: Option<rr_cgroups::Manager>,
    /// The cgroup held others' processes before the create.
    cgroup_shared: bool,
    rdt: crate::rdt::RdtGuard,
    /// Host network devices to move into the container's namespace.
    netdev_plan: crate::netdev::Plan,
    /// Host network devices moved into the init's namespace, moved back
    /// before it is killed (a virtual one would go with the namespace).
    netdevs: Vec<crate::netdev::NetDevice>,
    /// The container's network namespace, held while devices are in it.
    netns: Option<std::fs::File>,
}

impl CreateGuard {
    fn disarm(&mut self) {
        self.dir = None;
        self.pid = None;
        self.cgroup = None;
        self.rdt.disarm();
        self.netdevs.clear();
        self.netns = None;
    }
}

impl Drop for CreateGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            if let Some(ns) = &self.netns {
                let _ = crate::netdev::move_out(&self.netdevs, ns);
            }
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
            crate::rootfs::detach_container_mounts(dir.path());
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
