//! `exec`: running another process in an existing container.
//!
//! The runtime forks stage 1 as for `create`, with a bootstrap message that
//! joins every namespace of the container's init (so stage 1 forks the new
//! process into its pid namespace). The runtime moves that process into the
//! container's cgroups before it goes on; the process then takes the init's
//! root, gets a terminal if asked, applies the process settings with the
//! same code as the init ([`crate::init::process::apply`]) and execs. A failure
//! before exec comes back on a sync socket; its close on exec is success.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Process, Spec};
use rr_nsenter::{BootstrapMessage, NsKind, NsPath};
use rr_state::{State, Status};

use crate::cgroups::{exec_cgroups, is_frozen, join_cgroups};
use crate::error::{Error, Result};
use crate::init::confine::Confinement;
use crate::ops::run::ExitStatus;
use crate::runtime::{wrong_state, Runtime};
use crate::sync::{self, InitReport};

mod process_spec;
use process_spec::exec_process;

/// Options of `exec`, runc's flags.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// The container id.
    pub id: String,
    /// A process.json replacing the spec's process and the flags below.
    pub process: Option<PathBuf>,
    /// The command and its arguments (when no process file is given).
    pub args: Vec<String>,
    /// Give the process a terminal.
    pub tty: bool,
    /// Unix socket to send the terminal's master end to.
    pub console_socket: Option<PathBuf>,
    /// Return once the process runs instead of waiting for it.
    pub detach: bool,
    /// Working directory inside the container.
    pub cwd: Option<PathBuf>,
    /// `KEY=value` entries added to (or replacing in) the environment.
    pub env: Vec<String>,
    /// `uid[:gid]`.
    pub user: Option<String>,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// Capabilities added to the bounding, effective and permitted sets.
    pub caps: Vec<String>,
    /// Set no_new_privs.
    pub no_new_privs: bool,
    /// Number of fds after stdio passed to the process.
    pub preserve_fds: u32,
    /// Where to write the process's pid.
    pub pid_file: Option<PathBuf>,
    /// AppArmor profile of the process.
    pub apparmor: Option<String>,
    /// SELinux label of the process.
    pub process_label: Option<String>,
    /// Allow exec into a paused container.
    pub ignore_paused: bool,
    /// `--cgroup` values: `[controller[,controller]:]path`, sub-cgroups of
    /// the container's own to run the process in.
    pub cgroup: Vec<String>,
}

const GO: u8 = 1;

impl Runtime {
    /// Runs a process in a created or running container. In the foreground
    /// returns its exit code (128 + signal when killed); with `detach`, 0
    /// once it has exec'd.
    pub fn exec(&self, opts: &ExecOptions) -> Result<ExitStatus> {
        crate::init::process::make_undumpable()?;
        let dir = self.container(&opts.id)?;
        let state = dir.load()?;
        let status = self.status_of(&dir, &state);
        if status == Status::Stopped {
            return Err(wrong_state(
                &opts.id,
                status,
                "cannot exec in a stopped container",
            ));
        }
        if (status == Status::Paused || is_frozen(&state)) && !opts.ignore_paused {
            return Err(wrong_state(
                &opts.id,
                Status::Paused,
                "cannot exec in a paused container (use --ignore-paused)",
            ));
        }
        let process = exec_process(&state, opts)?;
        let cgroups = exec_cgroups(&state, &opts.cgroup)?;
        let confine = exec_confinement(&state, &process)?;
        let console = crate::init::tty::plan(
            process.terminal().unwrap_or(false),
            opts.console_socket.as_deref(),
            !opts.detach,
        )?;
        let init = state.init_process_pid;
        let msg = BootstrapMessage {
            ns_paths: ns_paths(&state),
            // SAFETY: geteuid cannot fail.
            rootless_euid: unsafe { libc::geteuid() } != 0,
            ..Default::default()
        };
        let root = open_root(init)?;

        if !opts.detach {
            // The process is a grandchild; as a subreaper we become its
            // parent once stage 1 exits, and can wait for it.
            // SAFETY: prctl with integer arguments.
            if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
                return Err(Error::last_os("prctl(PR_SET_CHILD_SUBREAPER)"));
            }
        }
        let forwarded = crate::forward::block_signals()?;
        let agent = agent_of(&state);
        let result = self.exec_forked(
            opts,
            &cgroups,
            (&process, &confine, agent.as_ref()),
            &msg,
            &root,
            console,
        );
        let (pid, master) = match result {
            Ok(x) => x,
            Err(e) => {
                forwarded.restore();
                return Err(e);
            }
        };
        if opts.detach {
            forwarded.restore();
            return Ok(ExitStatus(0));
        }
        let code = match master {
            Some(m) => crate::init::tty::proxy_and_wait(&forwarded, pid, m),
            None => forwarded.wait_forwarding(pid),
        };
        Ok(ExitStatus(code))
    }

    fn exec_forked(
        &self,
        opts: &ExecOptions,
        cgroups: &[PathBuf],
        (process, confine, agent): (&Process, &Confinement, Option<&Agent>),
        msg: &BootstrapMessage,
        root: &OwnedFd,
        console: Option<crate::init::tty::Console>,
    ) -> Result<(i32, Option<OwnedFd>)> {
        let (boot_parent, boot_child) = sync::seqpacket_pair()?;
        let (sync_parent, sync_child) = sync::seqpacket_pair()?;
        // The listener of a notifying filter comes on its own socket, so
        // that a process failing before it has one is told on `sync`.
        let (notify_parent, notify_child) = sync::seqpacket_pair()?;
        // SAFETY: rrc is single threaded up to here, so the child can run
        // arbitrary code.
        let stage1 = unsafe { libc::fork() };
        if stage1 < 0 {
            return Err(Error::last_os("fork"));
        }
        if stage1 == 0 {
            crate::forward::reset_for_child();
            drop(boot_parent);
            drop(sync_parent);
            drop(notify_parent);
            stage1_child(
                boot_child,
                (sync_child.as_raw_fd(), notify_child.as_raw_fd()),
                root.as_raw_fd(),
                console.as_ref().map(|c| c.send.as_raw_fd()),
                process,
                confine,
                opts.preserve_fds,
            )
        }
        drop(boot_child);
        drop(sync_child);
        drop(notify_child);
        let pids = rr_nsenter::bootstrap::drive(&boot_parent, msg, stage1)?;
        let pid = pids.init;
        let fail = |e: Error| kill_exec(pid, e);
        crate::init::sched::apply_initial_affinity(process, pid).map_err(fail)?;
        join_cgroups(cgroups, pid).map_err(fail)?;
        rr_nsenter::bootstrap::send_packet(sync_parent.as_raw_fd(), &[GO]).map_err(|e| {
            fail(Error::Sys {
                call: "releasing the exec'd process".into(),
                source: e,
            })
        })?;
        if confine.seccomp.as_ref().is_some_and(|f| f.notifies()) {
            // Without a listener (the process failed first) the failure
            // is read from `sync` below.
            if let Ok(l) = crate::init::notify::recv_listener(notify_parent.as_raw_fd()) {
                hand_listener(agent, confine, &l, pid).map_err(fail)?;
            }
        }
        await_exec(sync_parent.as_raw_fd(), pid)?;
        let master = match console.and_then(|c| c.recv) {
            Some(r) => Some(crate::init::tty::recv_master(&r)?),
            None => None,
        };
        if let Some(pf) = &opts.pid_file {
            crate::ops::create::write_pid_file(pf, pid)?;
        }
        Ok((pid, master))
    }
}

/// Stage 1 in the forked child: joins the container's namespaces through
/// the bootstrap, then becomes the process (see [`child`]). A failure goes
/// back on the sync socket before the child exits.
fn stage1_child(
    boot: OwnedFd,
    (sync_fd, notify_fd): (RawFd, RawFd),
    root: RawFd,
    console: Option<RawFd>,
    process: &Process,
    confine: &Confinement,
    preserve_fds: u32,
) -> ! {
    if let Err(e) = rr_nsenter::bootstrap::enter(boot) {
        let _ = sync::send_error(sync_fd, &e.to_string());
        // SAFETY: leaves the forked child without running the
        // parent's exit handlers.
        unsafe { libc::_exit(1) }
    }
    let err = child(
        (sync_fd, notify_fd),
        root,
        console,
        process,
        confine,
        preserve_fds,
    );
    let _ = sync::send_error(sync_fd, &err.to_string());
    // SAFETY: as above.
    unsafe { libc::_exit(1) }
}

/// Kills and reaps the process whose exec failed on our side, and passes
/// the error on.
fn kill_exec(pid: i32, e: Error) -> Error {
    // SAFETY: kill and reap our own child (it is ours: stage 1 has
    // exited and we are a subreaper, or it is about to be reparented).
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG);
    }
    e
}

/// Waits for the process's word on the sync socket, which is close-on-exec:
/// its end without a word is the exec.
fn await_exec(sync_fd: RawFd, pid: i32) -> Result<()> {
    match sync::recv_report(sync_fd) {
        InitReport::Vanished => Ok(()),
        InitReport::Failed(m) => {
            let mut st = 0;
            // SAFETY: reaps the failed process when it is our child.
            unsafe { libc::waitpid(pid, &mut st, 0) };
            Err(Error::Init(m))
        }
        InitReport::Ready | InitReport::RunHooks => Err(kill_exec(
            pid,
            Error::Init("unexpected report from the exec'd process".into()),
        )),
    }
}

/// Gives the listener of the exec'd process `pid` to the agent, with the
/// container's state, as the create does for the init.
fn hand_listener(
    agent: Option<&Agent>,
    confine: &Confinement,
    listener: &OwnedFd,
    pid: i32,
) -> Result<()> {
    let Some(a) = agent else {
        return Err(Error::Init(
            "internal: no listenerPath for a notifying filter".into(),
        ));
    };
    let message = crate::init::notify::agent_message(
        &a.oci_version,
        pid,
        &a.metadata,
        &confine.hook_state.json("running", a.init),
    );
    crate::init::notify::hand_to_agent(&a.path, listener, &message)
}

/// Where the listener of an exec'd process goes, from the stored spec.
struct Agent {
    path: PathBuf,
    metadata: String,
    oci_version: String,
    init: i32,
}

fn agent_of(state: &State) -> Option<Agent> {
    let spec = &state.config.spec;
    let seccomp = &spec["linux"]["seccomp"];
    Some(Agent {
        path: PathBuf::from(seccomp["listenerPath"].as_str()?),
        metadata: seccomp["listenerMetadata"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        oci_version: spec["ociVersion"].as_str().unwrap_or_default().to_string(),
        init: state.init_process_pid,
    })
}

/// The exec'd process between the bootstrap and its exec, in every namespace
/// of the container. Returns only an error.
fn child(
    (sync_fd, notify_fd): (RawFd, RawFd),
    root: RawFd,
    console: Option<RawFd>,
    process: &Process,
    confine: &Confinement,
    preserve_fds: u32,
) -> Error {
    match rr_nsenter::bootstrap::recv_packet(sync_fd) {
        Ok(Some(p)) if p.as_slice() == [GO] => {}
        _ => return Error::Init("exec: the runtime went away before the process ran".into()),
    }
    // Joining the mount namespace leaves us at that namespace's root, which
    // is the host's old root when the init used chroot (--no-pivot); the
    // init's own root is the container's in every case.
    // SAFETY: fchdir and chroot on a directory fd the parent opened.
    unsafe {
        if libc::fchdir(root) != 0 {
            return Error::last_os("exec: fchdir to the container root");
        }
        if libc::chroot(c".".as_ptr()) != 0 {
            return Error::last_os("exec: chroot to the container root");
        }
        libc::close(root);
        if libc::chdir(c"/".as_ptr()) != 0 {
            return Error::last_os("exec: chdir /");
        }
    }
    if let Some(sock) = console {
        if let Err(e) = crate::init::process::console(sock, process) {
            return e;
        }
    }
    if let Err(e) = confine.apply_lsm() {
        return e;
    }
    let mut cmd = match crate::init::process::apply(process, preserve_fds, confine) {
        Ok(cmd) => cmd,
        Err(e) => return e,
    };
    match cmd.install_notify_filter() {
        Ok(Some(l)) => {
            if let Err(e) = crate::init::notify::send_listener(notify_fd, &l) {
                return e;
            }
        }
        Ok(None) => {}
        Err(e) => return e,
    }
    cmd.exec()
}

/// The container's seccomp filter and the LSM labels of `process`, checked
/// as at create: an exec'd process is confined like the init.
fn exec_confinement(state: &State, process: &Process) -> Result<Confinement> {
    let mut spec: Spec =
        serde_json::from_value(state.config.spec.clone()).map_err(|e| Error::ConfigInvalid {
            path: "state.json".into(),
            field: "config".into(),
            message: format!("the stored spec does not parse: {e}"),
        })?;
    spec.set_process(Some(process.clone()));
    // Hooks are the create's business; an exec runs none.
    spec.set_hooks(None);
    let bundle = Path::new(state.bundle().unwrap_or("/"));
    Confinement::prepare(&state.id, bundle, &spec)
}

/// The init's namespaces, by the init's own /proc entries: it is in each
/// namespace the container has, created or joined.
fn ns_paths(state: &State) -> Vec<NsPath> {
    let pid = state.init_process_pid;
    let mut out = Vec::new();
    for key in state.namespace_paths.keys() {
        let (kind, name) = match key.as_str() {
            "NEWUSER" => (NsKind::User, "user"),
            "NEWIPC" => (NsKind::Ipc, "ipc"),
            "NEWUTS" => (NsKind::Uts, "uts"),
            "NEWNET" => (NsKind::Net, "net"),
            "NEWPID" => (NsKind::Pid, "pid"),
            "NEWNS" => (NsKind::Mount, "mnt"),
            "NEWCGROUP" => (NsKind::Cgroup, "cgroup"),
            "NEWTIME" => (NsKind::Time, "time"),
            _ => continue,
        };
        out.push(NsPath {
            kind,
            path: format!("/proc/{pid}/ns/{name}"),
        });
    }
    out
}

fn open_root(pid: i32) -> Result<OwnedFd> {
    let p = format!("/proc/{pid}/root");
    let c = crate::sys::cstr(&p)?;
    // SAFETY: c is a valid C string.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(Error::last_os(format!("open {p}")));
    }
    // SAFETY: fd was just opened and is owned here.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
