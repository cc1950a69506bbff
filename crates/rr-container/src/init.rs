//! The container init (stage 2 of the bootstrap): everything between the
//! namespaces being ready and the user's process being exec'd.
//!
//! Everything under `init/` runs in the forked child, inside the
//! container's namespaces, in the order [`run`] calls it: the root
//! filesystem ([`rootfs`], with [`mount_opts`], [`bind_sources`],
//! [`idmapped`], [`copyup`], [`devnull`], [`secure_path`] and [`pivot`]), then the
//! process ([`process`], [`confine`], [`personality`], [`mempolicy`],
//! [`sched`], [`tty`], [`fds`]) and
//! the hooks run from inside ([`hooks`]). `exec` reuses the process part.

pub(crate) mod bind_sources;
pub mod confine;
pub(crate) mod copyup;
pub(crate) mod devnull;
pub(crate) mod fds;
pub mod hooks;
pub(crate) mod idmapped;
pub(crate) mod mempolicy;
pub mod mount_opts;
pub(crate) mod notify;
pub(crate) mod personality;
pub(crate) mod pivot;
pub(crate) mod process;
pub(crate) mod rootfs;
pub(crate) mod sched;
pub mod secure_path;
pub(crate) mod tty;

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::config::Bundle;
use crate::error::{Error, Result};
use crate::init::confine::Confinement;

use crate::sync;
use crate::sys;
use rootfs::RootfsContext;

/// What the init needs besides the spec.
pub struct InitArgs<'a> {
    /// The loaded bundle.
    pub bundle: &'a Bundle,
    /// exec.fifo, opened `O_PATH` by the runtime: inside a user namespace
    /// the init may not be able to reach the state directory by path.
    pub fifo: OwnedFd,
    /// chroot instead of pivot_root.
    pub no_pivot: bool,
    /// Do not create a new session keyring.
    pub no_new_keyring: bool,
    /// Number of fds after stdio passed to the container.
    pub preserve_fds: u32,
    /// Whether the init is in a new user namespace.
    pub in_userns: bool,
    /// Whether a cgroup namespace was created.
    pub cgroupns: bool,
    /// Whether a UTS namespace is the container's own.
    pub own_uts: bool,
    /// Whether the spec lists no mount namespace (the runtime's is used).
    pub inherited_mount_ns: bool,
    /// Bind sources the runtime opened (in a new user namespace only).
    pub bind_sources: Vec<crate::init::bind_sources::BindSource>,
    /// seccomp, sysctls, LSM labels and hooks, checked by the runtime.
    pub confine: &'a Confinement,
    /// Socket to send the terminal's master on, when the process has one.
    pub console: Option<std::os::fd::RawFd>,
    /// The runtime's lock on the state dir, shared through fork. Held until
    /// the state is saved, so that a `delete` that finds no state.json
    /// knows that no process of an interrupted create is left.
    pub lock_fd: RawFd,
}

/// Runs the init: sets up, reports to the runtime over `sync`, waits for
/// `start` on exec.fifo and execs the process. Never returns.
pub fn run(args: InitArgs, sync_fd: OwnedFd) -> ! {
    let fd = sync_fd.as_raw_fd();
    let lock_fd = args.lock_fd;
    match prepare(args, fd) {
        Ok(mut ready) => {
            let listener = match ready.command.install_notify_filter() {
                Ok(l) => l,
                Err(e) => {
                    let _ = sync::send_error(fd, &e.to_string());
                    exit(1);
                }
            };
            if sync::send_ready(fd).is_err() {
                exit(1);
            }
            // After the report, which rrc reads first; then rrc has it
            // before the init makes a syscall that could be notified.
            if let Some(l) = listener {
                if notify::send_listener(fd, &l).is_err() {
                    exit(1);
                }
            }
            if !sync::recv_saved(fd) {
                exit(1);
            }
            // SAFETY: closes this process's copy of the lock fd only.
            unsafe { libc::close(lock_fd) };
            drop(sync_fd);
            let err = ready.wait_and_exec();
            // The runtime that created us is gone by now; stderr is the only
            // place left to tell.
            eprintln!("rrc init: {err}");
            exit(127);
        }
        Err(e) => {
            let _ = sync::send_error(fd, &e.to_string());
            exit(1);
        }
    }
}

fn exit(code: i32) -> ! {
    // SAFETY: ends this forked process without running the parent's atexit
    // handlers or flushing its copied stdio buffers.
    unsafe { libc::_exit(code) }
}

/// An init that is set up and only has to wait and exec.
struct Ready {
    confine: Confinement,
    host_pid: i32,
    fifo: OwnedFd,
    command: process::Command,
}

impl Ready {
    fn wait_and_exec(self) -> Error {
        let reopen = format!("/proc/self/fd/{}", self.fifo.as_raw_fd());
        let Ok(c) = CString::new(reopen.clone()) else {
            return Error::Init("bad fifo path".into());
        };
        // Blocks until `rrc start` opens the other end.
        // SAFETY: c is a valid C string.
        let w = unsafe { libc::open(c.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
        if w < 0 {
            return Error::last_os("open exec.fifo");
        }
        // `start` is waiting for the byte: the startContainer hooks run
        // first, so that their failure fails `start` and poststart comes
        // after them.
        if let Err(e) = self.confine.start_container(self.host_pid, &self.command) {
            return e;
        }
        // SAFETY: w is open; one byte from a static buffer.
        let n = unsafe { libc::write(w, [0u8].as_ptr().cast(), 1) };
        if n != 1 {
            return Error::last_os("write exec.fifo");
        }
        // SAFETY: both fds are ours.
        unsafe {
            libc::close(w);
        }
        drop(self.fifo);
        self.command.exec()
    }
}

fn prepare(args: InitArgs, sync_fd: RawFd) -> Result<Ready> {
    let spec = &args.bundle.spec;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::Init("config.json has no process".into()))?;

    let fifo = args.fifo;

    args.confine.write_sysctls()?;
    let host_pid = std::cell::Cell::new(0);
    let before_pivot = || -> Result<()> {
        host_pid.set(args.confine.before_pivot(sync_fd, &args.bundle.rootfs)?);
        Ok(())
    };
    rootfs::setup(&RootfsContext {
        spec,
        rootfs: &args.bundle.rootfs,
        bundle: &args.bundle.path,
        in_userns: args.in_userns,
        cgroupns: args.cgroupns,
        no_pivot: args.no_pivot,
        inherited_mount_ns: args.inherited_mount_ns,
        bind_sources: &args.bind_sources,
        before_pivot: Some(&before_pivot),
    })?;

    if args.own_uts {
        // An empty name means none given: a joined namespace keeps its own.
        if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
            nix::unistd::sethostname(h).map_err(|e| Error::Sys {
                call: format!("sethostname {h:?}"),
                source: e.into(),
            })?;
        }
        if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
            let c = sys::cstr(d)?;
            // SAFETY: c is valid for its length.
            if unsafe { libc::setdomainname(c.as_ptr(), d.len()) } != 0 {
                return Err(Error::last_os(format!("setdomainname {d:?}")));
            }
        }
    }
    if !args.no_new_keyring {
        join_session_keyring()?;
    }
    if let Some(sock) = args.console {
        process::console(sock, process)?;
    }
    args.confine.apply_lsm()?;
    // The container's process starts with 0022 when the spec gives no
    // umask, whatever rrc's caller had, as with runc (an exec'd process
    // keeps the caller's, as runc's does).
    // SAFETY: sets the mask only.
    unsafe { libc::umask(0o022) };
    let command = process::apply(process, args.preserve_fds, args.confine)?;
    Ok(Ready {
        confine: args.confine.clone(),
        host_pid: host_pid.get(),
        fifo,
        command,
    })
}

fn join_session_keyring() -> Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: a NULL name asks for an anonymous keyring.
    let r = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        // Kernels without keyrings, or where a seccomp or LSM policy of the
        // host refuses it, still run containers.
        if matches!(
            e.raw_os_error(),
            Some(libc::ENOSYS) | Some(libc::EACCES) | Some(libc::EPERM)
        ) {
            return Ok(());
        }
        return Err(Error::Sys {
            call: "keyctl(JOIN_SESSION_KEYRING)".into(),
            source: e,
        });
    }
    Ok(())
}
