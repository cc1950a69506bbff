//! The container init (stage 2 of the bootstrap): everything between the
//! namespaces being ready and the user's process being exec'd.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use caps::{CapSet, CapsHashSet};
use oci_spec::runtime::{LinuxCapabilities, Process};

use crate::config::Bundle;
use crate::error::{Error, Result};
use crate::rootfs::{self, RootfsContext};
use crate::sync;
use crate::sys;

/// What the init needs besides the spec.
pub struct InitArgs<'a> {
    /// The loaded bundle.
    pub bundle: &'a Bundle,
    /// exec.fifo on the host.
    pub fifo: PathBuf,
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
    /// The runtime's lock on the state dir, shared through fork. Held until
    /// the state is saved, so that a `delete` that finds no state.json
    /// knows that no process of an interrupted create is left.
    pub lock_fd: RawFd,
}

/// Runs the init: sets up, reports to the runtime over `sync`, waits for
/// `start` on exec.fifo and execs the process. Never returns.
pub fn run(args: &InitArgs, sync_fd: OwnedFd) -> ! {
    let fd = sync_fd.as_raw_fd();
    match prepare(args) {
        Ok(ready) => {
            if sync::send_ready(fd).is_err() || !sync::recv_saved(fd) {
                exit(1);
            }
            // SAFETY: closes this process's copy of the lock fd only.
            unsafe { libc::close(args.lock_fd) };
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
    fifo: OwnedFd,
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
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
        let mut argv: Vec<*const libc::c_char> = self.argv.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = self.envp.iter().map(|a| a.as_ptr()).collect();
        envp.push(std::ptr::null());
        // SAFETY: argv and envp are NULL-terminated arrays of valid C strings
        // that outlive the call.
        unsafe { libc::execve(self.path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        Error::last_os(format!("exec {:?}", self.path))
    }
}

fn prepare(args: &InitArgs) -> Result<Ready> {
    let spec = &args.bundle.spec;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::Init("config.json has no process".into()))?;

    // Opened before pivot_root: the state dir is not reachable afterwards.
    let fifo = open_path(&args.fifo)?;

    rootfs::setup(&RootfsContext {
        spec,
        rootfs: &args.bundle.rootfs,
        bundle: &args.bundle.path,
        in_userns: args.in_userns,
        cgroupns: args.cgroupns,
        no_pivot: args.no_pivot,
    })?;

    if args.own_uts {
        if let Some(h) = spec.hostname() {
            nix::unistd::sethostname(h).map_err(|e| Error::Sys {
                call: format!("sethostname {h:?}"),
                source: e.into(),
            })?;
        }
        if let Some(d) = spec.domainname() {
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
    set_rlimits(process)?;

    let env: Vec<String> = process.env().clone().unwrap_or_default();
    let argv_s = process.args().clone().unwrap_or_default();
    set_user(process)?;
    if let Some(umask) = process.user().umask() {
        // SAFETY: sets the mask only.
        unsafe { libc::umask(umask as libc::mode_t) };
    }
    sys::chdir(process.cwd())
        .map_err(|e| Error::Init(format!("process.cwd {}: {e}", process.cwd().display())))?;
    let first = argv_s.first().cloned().unwrap_or_default();
    let path = find_executable(&first, &env)?;
    if process.no_new_privileges() == Some(true) {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(Error::last_os("prctl(PR_SET_NO_NEW_PRIVS)"));
        }
    }
    pass_fds(args.preserve_fds)?;

    let argv = argv_s
        .iter()
        .map(|a| sys::cstr(a))
        .collect::<Result<Vec<_>>>()?;
    let envp = env
        .iter()
        .map(|a| sys::cstr(a))
        .collect::<Result<Vec<_>>>()?;
    Ok(Ready {
        fifo,
        path: sys::cpath(&path)?,
        argv,
        envp,
    })
}

fn open_path(p: &Path) -> Result<OwnedFd> {
    let c = sys::cpath(p)?;
    // SAFETY: c is a valid path.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(Error::last_os(format!("open {}", p.display())));
    }
    // SAFETY: fd was just opened and is owned here.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
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

fn rlimit_resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    Some(match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        _ => return None,
    })
}

fn set_rlimits(process: &Process) -> Result<()> {
    for r in process.rlimits().iter().flatten() {
        let name = r.typ().to_string();
        let res = rlimit_resource(&name).ok_or_else(|| Error::ConfigInvalid {
            path: "config.json".into(),
            field: "process.rlimits".into(),
            message: format!("unknown rlimit type {name}"),
        })?;
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: lim is a valid rlimit.
        if unsafe { libc::setrlimit(res, &lim) } != 0 {
            return Err(Error::last_os(format!(
                "setrlimit {name} soft {} hard {}",
                r.soft(),
                r.hard()
            )));
        }
    }
    Ok(())
}

fn to_caps(set: &Option<oci_spec::runtime::Capabilities>) -> Result<CapsHashSet> {
    let mut out = CapsHashSet::new();
    for c in set.iter().flatten() {
        let name = format!("CAP_{c}");
        let cap = caps::Capability::from_str(&name).map_err(|_| Error::ConfigInvalid {
            path: "config.json".into(),
            field: "process.capabilities".into(),
            message: format!("unknown capability {name}"),
        })?;
        out.insert(cap);
    }
    Ok(out)
}

fn caps_err(what: &str, e: caps::errors::CapsError) -> Error {
    Error::Init(format!("capabilities: {what}: {e}"))
}

/// Switches to the process's user and leaves it with exactly the spec's
/// capabilities.
fn set_user(process: &Process) -> Result<()> {
    let user = process.user();
    let wanted: Option<&LinuxCapabilities> = process.capabilities().as_ref();
    if let Some(c) = wanted {
        let bounding = to_caps(c.bounding())?;
        // Dropping from the bounding set needs CAP_SETPCAP, which the
        // process still has as root here.
        for cap in caps::all() {
            if !bounding.contains(&cap)
                && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false)
            {
                caps::drop(None, CapSet::Bounding, cap)
                    .map_err(|e| caps_err(&format!("drop {cap} from bounding set"), e))?;
            }
        }
    }
    // SAFETY: prctl with integer arguments; keeps permitted caps across setuid.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } != 0 {
        return Err(Error::last_os("prctl(PR_SET_KEEPCAPS)"));
    }
    let gids: Vec<libc::gid_t> = user.additional_gids().clone().unwrap_or_default();
    // SAFETY: gids is a valid array of its length.
    if unsafe { libc::setgroups(gids.len(), gids.as_ptr()) } != 0 {
        let e = std::io::Error::last_os_error();
        // In a user namespace with setgroups denied, an empty list is fine.
        if !(gids.is_empty() && e.raw_os_error() == Some(libc::EPERM)) {
            return Err(Error::Sys {
                call: format!("setgroups {gids:?}"),
                source: e,
            });
        }
    }
    // SAFETY: plain id changes.
    if unsafe { libc::setresgid(user.gid(), user.gid(), user.gid()) } != 0 {
        return Err(Error::last_os(format!("setgid {}", user.gid())));
    }
    // SAFETY: plain id changes.
    if unsafe { libc::setresuid(user.uid(), user.uid(), user.uid()) } != 0 {
        return Err(Error::last_os(format!("setuid {}", user.uid())));
    }
    // SAFETY: as above.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    let Some(c) = wanted else {
        return Ok(());
    };
    let permitted = to_caps(c.permitted())?;
    let effective = to_caps(c.effective())?;
    let inheritable = to_caps(c.inheritable())?;
    let ambient = to_caps(c.ambient())?;
    // Effective must stay a subset of permitted at every step.
    caps::set(
        None,
        CapSet::Effective,
        &effective.intersection(&permitted).copied().collect(),
    )
    .or_else(|_| caps::clear(None, CapSet::Effective))
    .map_err(|e| caps_err("effective", e))?;
    caps::set(None, CapSet::Permitted, &permitted).map_err(|e| caps_err("permitted", e))?;
    caps::set(None, CapSet::Effective, &effective).map_err(|e| caps_err("effective", e))?;
    caps::set(None, CapSet::Inheritable, &inheritable).map_err(|e| caps_err("inheritable", e))?;
    caps::clear(None, CapSet::Ambient).map_err(|e| caps_err("ambient", e))?;
    for cap in ambient {
        // The kernel only takes ambient caps that are permitted and
        // inheritable; others are skipped as other runtimes do.
        if permitted.contains(&cap) && inheritable.contains(&cap) {
            caps::raise(None, CapSet::Ambient, cap).map_err(|e| caps_err("ambient", e))?;
        }
    }
    Ok(())
}

/// Finds the executable the way execvp would, using the container's PATH.
/// The error names what was looked for, so that `create` can report it.
pub fn find_executable(name: &str, env: &[String]) -> Result<PathBuf> {
    let check = |p: &Path| -> bool {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if name.contains('/') {
        let p = PathBuf::from(name);
        return match std::fs::metadata(&p) {
            Err(e) => Err(Error::Init(format!("exec {name:?}: {e}"))),
            Ok(_) if !check(&p) => Err(Error::Init(format!(
                "exec {name:?}: not an executable file"
            ))),
            Ok(_) => Ok(p),
        };
    }
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path_var.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let p = Path::new(dir).join(name);
        if check(&p) {
            return Ok(p);
        }
    }
    Err(Error::Init(format!(
        "exec {name:?}: executable file not found in $PATH ({path_var})"
    )))
}

/// Makes fds 3..3+n survive exec and everything above them close on exec,
/// so no descriptor of the runtime reaches the container.
fn pass_fds(n: u32) -> Result<()> {
    for fd in 3..3 + n as RawFd {
        // SAFETY: fcntl on a possibly-closed fd just fails with EBADF.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags >= 0 {
            // SAFETY: as above.
            unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) };
        }
    }
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range with the CLOEXEC flag only marks fds.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 + n,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if r != 0 {
        return Err(Error::last_os("close_range"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_executables_on_path() {
        let env = vec!["PATH=/nonexistent:/bin:/usr/bin".to_string()];
        let sh = find_executable("sh", &env).expect("sh exists on the host");
        assert!(sh.ends_with("sh"));
        let err = find_executable("no-such-binary-rr", &env).expect_err("missing");
        assert!(err.to_string().contains("\"no-such-binary-rr\""), "{err}");
        assert!(find_executable("/etc/passwd", &env).is_err());
        assert!(find_executable("/nope/x", &env).is_err());
    }
}
