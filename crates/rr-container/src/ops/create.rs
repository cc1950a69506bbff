//! `create`: a container's state directory, cgroups, namespaces and init,
//! which is left waiting on exec.fifo for `start`. On failure the
//! [`CreateGuard`] removes all of it.

mod guard;
mod namespaces;

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxNamespaceType;
use rr_state::{ContainerDir, ContainerId, State, StoredConfig};

use crate::cgroups::wants_limits;
use crate::config::{load_bundle, Bundle};
use crate::error::{Error, Result};
use crate::init::confine::Confinement;
use crate::init::{self, InitArgs};
use crate::nsenter::{bootstrap_message, host_root_ids, kind_key, proc_ns_name};
use crate::runtime::{record_creator_exe, Runtime};
use crate::sync::{self, InitReport};
use crate::sys::rootless;
use guard::CreateGuard;
use namespaces::NsPlan;

/// A container that `create` just made, still locked, with its state:
/// `run` starts it without looking it up again.
pub(crate) struct Created {
    /// The init's pid.
    pub(crate) pid: i32,
    /// The terminal's master, for a foreground run with a terminal.
    pub(crate) master: Option<OwnedFd>,
    pub(crate) dir: ContainerDir,
    pub(crate) lock: rr_state::StateLock,
    pub(crate) state: State,
}

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
        self.create_with_console(opts, false).map(|c| c.pid)
    }

    /// `create`; with `foreground` a terminal without a console socket is
    /// allowed, and the master of that terminal is returned. The container
    /// comes back still locked, with its state.
    pub(crate) fn create_with_console(
        &self,
        opts: &CreateOptions,
        foreground: bool,
    ) -> Result<Created> {
        let id = ContainerId::new(&opts.id)?;
        let bundle = load_bundle(&opts.bundle)?;
        for w in crate::init::rootfs::check_mount_options(
            &bundle.spec,
            &bundle.path.join("config.json"),
        )? {
            self.warn(w);
        }
        crate::init::idmapped::check(&bundle.spec, &bundle.path.join("config.json"))?;
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
        let console = crate::init::tty::plan(terminal, opts.console_socket.as_deref(), foreground)?;
        crate::init::process::make_undumpable()?;
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
        let (pid, state) = self.create_in(
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
        let dir = guard
            .dir
            .clone()
            .ok_or_else(|| Error::Init("internal: no state dir".into()))?;
        guard.disarm();
        Ok(Created {
            pid,
            master,
            dir,
            lock,
            state,
        })
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
        let (manager, busy) =
            crate::cgroups::manager_for_create(self.systemd_cgroup, &bundle.spec, &opts.id)?;
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
    ) -> Result<(i32, State)> {
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
        let ns = NsPlan::new(bundle, dir)?;
        // The init makes it once inside its cgroups (see cgjoin).
        msg.clone_flags &= !(libc::CLONE_NEWCGROUP as u32);

        // The fifo comes back to live (in rrc) until the create returns.
        let (_fifo, stage1, boot_parent, sync_parent) =
            fork_stage1(bundle, opts, &ns, confine, (fifo, lock_fd, console))?;
        // Stage 1 makes the namespaces and forks the init (outside the
        // container's cgroups, see cgjoin) while the cgroups are made and
        // written: neither needs the other until the init joins.
        let sent = rr_nsenter::bootstrap::send(&boot_parent, &msg);
        let cgroup_paths = match sent {
            Ok(()) => self.create_cgroup_or_none(
                bundle,
                opts,
                dir,
                &mut guard.cgroup,
                &mut guard.cgroup_shared,
            ),
            Err(_) => Ok(Default::default()),
        };
        let pids = rr_nsenter::bootstrap::finish(&boot_parent, &msg, stage1, sent);
        // Recorded before a cgroup error returns (it comes first, as when
        // the cgroups were made before stage 1), so that the guard kills
        // the init the bootstrap made meanwhile.
        if let Ok(p) = &pids {
            guard.pid = Some(p.init);
        }
        let cgroup_paths = cgroup_paths?;
        let pids = pids?;
        if let Some(p) = bundle.spec.process() {
            crate::init::sched::apply_initial_affinity(p, pids.init)?;
        }
        let plan = std::mem::take(&mut guard.netdev_plan);
        move_netdevs(plan, &mut guard.netns, &mut guard.netdevs, pids.init)?;
        let sync_fd = sync_parent.as_raw_fd();
        join_init(bundle, &ns, guard.cgroup.as_ref(), pids.init, sync_fd)?;
        // Everything state.json holds is known once the init is in its
        // cgroups (but a resctrl group, joined after the init's report):
        // it is written and flushed while the init sets up its root
        // filesystem, and only renamed into place after the report, as
        // before, so no state.json names an init whose setup failed.
        let early = match guard.rdt.plan {
            None => {
                let rdt = (String::new(), None);
                let state = self.state_of(bundle, opts, guard, &ns, pids.init, &cgroup_paths, rdt);
                stage(dir, state)?
            }
            Some(_) => None,
        };
        await_ready(confine, sync_fd, pids.init, guard.cgroup.as_ref())?;
        hand_listener(bundle, confine, sync_fd, pids.init)?;
        let (staged, state) = match early {
            Some(s) => s,
            None => {
                let rdt = apply_rdt(&mut guard.rdt, dir, &opts.id, pids.init, &cgroup_paths)?;
                let state = self.state_of(bundle, opts, guard, &ns, pids.init, &cgroup_paths, rdt);
                stage(dir, state)?
                    .ok_or_else(|| Error::Init("the container init died after setup".into()))?
            }
        };
        // An init that died after its report makes send_saved below fail,
        // and the guard then removes the state directory, state.json too.
        staged.commit()?;
        if let Some(pf) = &opts.pid_file {
            write_pid_file(pf, pids.init)?;
        }
        // Until this ack the init exits if we die, so a create killed
        // before this point leaves no process that nothing records.
        sync::send_saved(sync_fd)
            .map_err(|_| Error::Init("the container init died after setup".into()))?;
        Ok((pids.init, state))
    }

    /// The state of a container whose init is `init`; None when the init
    /// is gone (its start time cannot be read).
    #[allow(clippy::too_many_arguments)]
    fn state_of(
        &self,
        bundle: &Bundle,
        opts: &CreateOptions,
        guard: &CreateGuard,
        ns: &NsPlan,
        init: i32,
        cgroup_paths: &std::collections::BTreeMap<String, String>,
        (intel_rdt_path, rr_intel_rdt): (String, Option<rr_state::IntelRdtRecord>),
    ) -> Option<State> {
        let start = rr_state::read_proc_stat(&self.proc_root, init)?.start_time;
        Some(State {
            id: opts.id.clone(),
            init_process_pid: init,
            init_process_start: start,
            created: rr_state::now_rfc3339(),
            config: crate::cgroups::mark(
                stored_config(bundle),
                guard.cgroup_shared,
                guard.cgroup.as_ref(),
            ),
            rootless: false,
            cgroup_paths: cgroup_paths.clone(),
            namespace_paths: namespace_paths(&ns.namespaces, init),
            external_descriptors: external_descriptors(),
            intel_rdt_path,
            rr_intel_rdt,
        })
    }

    /// [`Runtime::create_cgroup`]; rootless without delegated cgroups,
    /// when nothing was asked of them, none: the container runs in the
    /// caller's cgroup, as with runc.
    fn create_cgroup_or_none(
        &self,
        bundle: &Bundle,
        opts: &CreateOptions,
        dir: &ContainerDir,
        slot: &mut Option<rr_cgroups::Manager>,
        shared: &mut bool,
    ) -> Result<std::collections::BTreeMap<String, String>> {
        match self.create_cgroup(bundle, opts, dir, slot, shared) {
            Ok(p) => Ok(p),
            Err(e) if rootless() && crate::cgroups::denied(&e) && !wants_limits(&bundle.spec) => {
                if let Some(cg) = slot.take() {
                    let _ = crate::cgroups::teardown(&cg, *shared);
                }
                self.warn(format!(
                    "rootless: the container gets no cgroup of its own and stays in the caller's ({e}); it asks for no resource limits"
                ));
                Ok(Default::default())
            }
            Err(e) if rootless() && crate::cgroups::denied(&e) => Err(Error::Unsupported {
                field: "linux.resources".into(),
                message: format!("{e}: running rootless, and the cgroup is not delegated to this user; delegate it or remove the resource limits"),
            }),
            Err(e) => Err(e),
        }
    }
}

/// Forks stage 1 (see [`stage1_child`]) with the bootstrap and sync
/// sockets; returns the fifo back, its pid and the parent's ends of the
/// two sockets.
fn fork_stage1(
    bundle: &Bundle,
    opts: &CreateOptions,
    ns: &NsPlan,
    confine: &Confinement,
    (fifo, lock_fd, console): (OwnedFd, std::os::fd::RawFd, Option<std::os::fd::RawFd>),
) -> Result<(OwnedFd, i32, OwnedFd, OwnedFd)> {
    let (boot_parent, boot_child) = sync::seqpacket_pair()?;
    let (sync_parent, sync_child) = sync::seqpacket_pair()?;
    // SAFETY: rrc is single threaded up to here, so the child can run
    // arbitrary code.
    let stage1 = unsafe { libc::fork() };
    if stage1 < 0 {
        return Err(Error::last_os("fork"));
    }
    if stage1 == 0 {
        let fds = Stage1Fds {
            parents: [boot_parent, sync_parent],
            boot: boot_child,
            sync: sync_child,
            fifo,
            lock_fd,
            console,
        };
        stage1_child(bundle, opts, ns, confine, fds);
    }
    drop(boot_child);
    drop(sync_child);
    Ok((fifo, stage1, boot_parent, sync_parent))
}

/// The descriptors stage 1 gets: the parent's ends, which it closes, and
/// those it keeps.
struct Stage1Fds {
    parents: [OwnedFd; 2],
    boot: OwnedFd,
    sync: OwnedFd,
    fifo: OwnedFd,
    lock_fd: std::os::fd::RawFd,
    console: Option<std::os::fd::RawFd>,
}

/// Stage 1, in the forked child: closes what the container must not
/// inherit, enters the namespaces, waits to be put in its cgroups, takes
/// the bind sources, and becomes the init (it forks it: see rr-nsenter).
fn stage1_child(
    bundle: &Bundle,
    opts: &CreateOptions,
    ns: &NsPlan,
    confine: &Confinement,
    fds: Stage1Fds,
) -> ! {
    crate::forward::reset_for_child();
    // The lock belongs to the open file, which fork shares: stage 1
    // and the init keep it until the state is saved (the init then
    // closes it, or `start` would wait forever), so a `delete`
    // after a killed create waits for them to be gone.
    let Stage1Fds {
        parents,
        boot: boot_child,
        sync: sync_child,
        fifo,
        lock_fd,
        console,
    } = fds;
    drop(parents);
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
        .and_then(|_| crate::cgjoin::await_join(fd, ns.cgroupns))
        .and_then(|_| {
            if ns.take_sources {
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
            in_userns: ns.in_userns,
            cgroupns: ns.cgroupns,
            own_uts: ns.own_uts,
            inherited_mount_ns: ns.inherited_mount_ns,
            bind_sources,
            confine,
            console,
            lock_fd,
        },
        sync_child,
    );
}

/// In the runtime once the init exists: opens its bind sources, moves it
/// into its cgroups, then hands it the sources.
fn join_init(
    bundle: &Bundle,
    ns: &NsPlan,
    cgroup: Option<&rr_cgroups::Manager>,
    init: i32,
    sync_fd: std::os::fd::RawFd,
) -> Result<()> {
    // Opened while the init waits to be joined, so before it has
    // changed a mount (see bind_sources).
    let bind_sources = if ns.take_sources {
        let config = bundle.path.join("config.json");
        let mut b = crate::init::bind_sources::open_all(&bundle.spec, &bundle.path, &config, init)?;
        b.extend(crate::init::idmapped::make_all(
            &bundle.spec,
            &bundle.path,
            &config,
            init,
        )?);
        b
    } else {
        Vec::new()
    };
    crate::cgjoin::join(cgroup, init, sync_fd)?;
    if ns.take_sources {
        crate::init::bind_sources::send(sync_fd, &bind_sources)?;
    }
    drop(bind_sources);
    Ok(())
}

/// Serves the init's requests until it reports ready; a failure is told
/// with what the cgroup shows of it.
fn await_ready(
    confine: &Confinement,
    sync_fd: std::os::fd::RawFd,
    init: i32,
    cgroup: Option<&rr_cgroups::Manager>,
) -> Result<()> {
    match confine.serve_init(sync_fd, init)? {
        InitReport::Ready => Ok(()),
        InitReport::RunHooks => Err(Error::Init("internal: hooks asked twice".into())),
        InitReport::Failed(m) => Err(Error::Init(crate::cgjoin::explain(cgroup, m))),
        InitReport::Vanished => Err(Error::Init(crate::cgjoin::explain(
            cgroup,
            "the container init exited during setup without a report".into(),
        ))),
    }
}

/// With `linux.seccomp.listenerPath`: takes the listener the init sent
/// after its report and gives it to the agent with the state, as runc does
/// (status `creating`).
fn hand_listener(
    bundle: &Bundle,
    confine: &Confinement,
    sync_fd: std::os::fd::RawFd,
    init: i32,
) -> Result<()> {
    let Some(seccomp) = bundle
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
    else {
        return Ok(());
    };
    let Some(path) = seccomp.listener_path() else {
        return Ok(());
    };
    // Only a filter that notifies was installed with a listener.
    if !confine.seccomp.as_ref().is_some_and(|f| f.notifies()) {
        return Ok(());
    }
    let listener = crate::init::notify::recv_listener(sync_fd)?;
    let message = crate::init::notify::agent_message(
        bundle.spec.version(),
        init,
        seccomp.listener_metadata().as_deref().unwrap_or(""),
        &confine.hook_state.json("creating", init),
    );
    crate::init::notify::hand_to_agent(path, &listener, &message)
}

/// Records the creating rrc and writes `state` to a flushed temporary file
/// (see [`ContainerDir::stage`]); None without a state.
fn stage(
    dir: &ContainerDir,
    state: Option<State>,
) -> Result<Option<(rr_state::StagedState, State)>> {
    let Some(state) = state else { return Ok(None) };
    record_creator_exe(dir)?;
    Ok(Some((dir.stage(&state)?, state)))
}

/// Puts the init in its resctrl group, recorded for `delete` should the
/// create be killed before state.json is written.
fn apply_rdt(
    rdt: &mut crate::rdt::RdtGuard,
    dir: &ContainerDir,
    id: &str,
    init: i32,
    cgroup_paths: &std::collections::BTreeMap<String, String>,
) -> Result<(String, Option<rr_state::IntelRdtRecord>)> {
    // The init is blocked on exec.fifo until `start`: it runs no user
    // code before it is in its resctrl group.
    let (intel_rdt_path, rr_intel_rdt) = rdt.apply(id, init)?;
    if rr_intel_rdt.is_some() {
        crate::unfinished::record(
            dir,
            &State {
                id: id.to_string(),
                cgroup_paths: cgroup_paths.clone(),
                intel_rdt_path: intel_rdt_path.clone(),
                rr_intel_rdt: rr_intel_rdt.clone(),
                ..Default::default()
            },
        )?;
    }
    Ok((intel_rdt_path, rr_intel_rdt))
}

/// The namespace paths state.json keeps: the one joined, or the init's.
fn namespace_paths(
    namespaces: &[(LinuxNamespaceType, Option<PathBuf>)],
    init: i32,
) -> std::collections::BTreeMap<String, String> {
    let mut namespace_paths = std::collections::BTreeMap::new();
    for (t, path) in namespaces {
        let kind = rr_nsenter::NsKind::from_oci(*t);
        let p = match path {
            Some(p) => p.display().to_string(),
            None => format!("/proc/{}/ns/{}", init, proc_ns_name(kind)),
        };
        namespace_paths.insert(kind_key(*t).to_string(), p);
    }
    namespace_paths
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

/// Moves the host network devices of `linux.netDevices` into the
/// network namespace of `init`, holding that namespace open in `netns`
/// and the moved devices in `moved` so that a failed create (the guard)
/// can give them back.
fn move_netdevs(
    plan: crate::netdev::Plan,
    netns: &mut Option<std::fs::File>,
    moved: &mut Vec<crate::netdev::NetDevice>,
    init: i32,
) -> Result<()> {
    if !plan.devices.is_empty() {
        let target = crate::netdev::target(&plan, init)?;
        let target = netns.insert(target);
        for d in plan.devices {
            crate::netdev::move_in(&d, target)?;
            moved.push(d);
        }
    }
    Ok(())
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
