//! Turning the spec's `process` into the state of the calling process:
//! rlimits, user and groups, capabilities, no_new_privs, the fds it keeps
//! and the executable it runs. Shared by the container init and `exec`.

use std::ffi::CString;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use caps::{CapSet, CapsHashSet};
use oci_spec::runtime::{LinuxCapabilities, Process};

use crate::error::{Error, Result};
use crate::init::confine::Confinement;
use crate::init::hooks::{self, Kind};
use crate::sys;
use rr_seccomp::Filter;

/// A resolved executable with its argument and environment vectors, ready
/// for execve.
pub(crate) struct Command {
    path: CString,
    // The pointer arrays point into these, which keep them alive.
    _argv: Vec<CString>,
    envp: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    envp_ptrs: Vec<*const libc::c_char>,
    /// The seccomp filter, installed right before execve.
    seccomp: Option<Filter>,
}

impl Command {
    /// The filter the process runs under, for what must run under it too
    /// (the startContainer hooks).
    pub(crate) fn seccomp(&self) -> Option<&Filter> {
        self.seccomp.as_ref()
    }

    /// For a filter with SCMP_ACT_NOTIFY rules: installs it now, with a
    /// listener for the agent, which must have it before the process runs
    /// (so before `start`, while rrc create still waits). From here on the
    /// init runs under the filter; `exec` does not install it again.
    pub(crate) fn install_notify_filter(&mut self) -> Result<Option<OwnedFd>> {
        match &self.seccomp {
            Some(f) if f.notifies() => {
                let l = f.install_listener()?;
                self.seccomp = None;
                Ok(Some(l))
            }
            _ => Ok(None),
        }
    }

    /// The environment the process gets.
    pub(crate) fn env(&self) -> Vec<String> {
        self.envp
            .iter()
            .map(|e| e.to_string_lossy().into_owned())
            .collect()
    }

    /// Replaces the calling process; returns only the error when execve fails.
    pub(crate) fn exec(self) -> Error {
        reset_signals();
        // Everything else was done before: from the filter on, the only
        // syscall made is execve, so that a profile need not allow any of
        // the runtime's own calls (close_range, capset, chdir, ...).
        if let Some(f) = &self.seccomp {
            if let Err(e) = f.install() {
                return e.into();
            }
        }
        // SAFETY: argv and envp are NULL-terminated arrays of valid C strings
        // that outlive the call.
        unsafe {
            libc::execve(
                self.path.as_ptr(),
                self.argv_ptrs.as_ptr(),
                self.envp_ptrs.as_ptr(),
            )
        };
        Error::last_os(format!("exec {:?}", self.path))
    }
}

/// Gives every signal its default disposition and unblocks them all, so the
/// process starts the same whatever rrc inherited (an ignored SIGINT from
/// `nohup` or a CI runner would otherwise survive execve).
fn reset_signals() {
    // The raw syscall: the C library refuses the signals it reserves for
    // itself (32 and 33 with glibc), which can be inherited ignored too.
    // A zeroed kernel sigaction is SIG_DFL with no flags and an empty mask
    // on every architecture, whatever the field order.
    let dfl = [0u64; 4];
    for sig in 1..=libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: the kernel reads a sigaction from a buffer at least as
        // large as its struct; the old action is not asked for.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                dfl.as_ptr(),
                std::ptr::null_mut::<u64>(),
                std::mem::size_of::<u64>(),
            )
        };
    }
    // SAFETY: a zeroed sigset emptied by sigemptyset is valid.
    let mut empty: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid sigset pointers.
    unsafe {
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

/// Gives the calling process (root in the container, its root already the
/// container's) the terminal of `process`, sending the master on `sock`.
pub(crate) fn console(sock: RawFd, process: &Process) -> Result<()> {
    let size = process
        .console_size()
        .as_ref()
        .map(|b| (b.height() as u32, b.width() as u32));
    crate::init::tty::setup_console(sock, size, Some(process.user().uid()))
}

/// Makes the calling process (and the processes it forks until they exec)
/// impossible to open through /proc/<pid>/exe, /proc/<pid>/fd, /proc/<pid>/mem
/// and the like for anyone without CAP_SYS_PTRACE over the host's user
/// namespace (the kernel's ptrace access check refuses non-dumpable
/// processes).
///
/// This is how rr closes the CVE-2019-5736 class of escape. rrc forks rather
/// than re-executing itself, so the container's init before `start`, and the
/// process `exec` forks into the container until it execs, are rrc processes
/// whose exe is the host's rrc binary, visible in the container's pid
/// namespace. A container process that could open that exe (even O_PATH or
/// read-only) could wait for every rrc to exit and then reopen it for
/// writing through /proc/self/fd, replacing the host binary. Non-dumpable,
/// they refuse the open itself. The flag lives in the mm, so forks inherit
/// it, and execve of the container's program resets it, so the container's
/// own processes are ordinary. Compared with running from a sealed memfd copy
/// of the binary, this costs nothing per container (no copy of a multi-MB
/// binary on every create and exec); what it does not cover is a container
/// given CAP_SYS_PTRACE without a user namespace, which can ptrace the host
/// anyway.
pub(crate) fn make_undumpable() -> Result<()> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(Error::last_os("prctl(PR_SET_DUMPABLE, 0)"));
    }
    Ok(())
}

/// Applies `process` to the calling process, which is root in the
/// container's namespaces with its root already the container's: rlimits,
/// cwd, user, groups and capabilities, umask, no_new_privs and the fds that
/// survive exec (stdio and `preserve_fds` more) and scheduling attributes
/// (the personality was set before, with the LSM label). Returns the
/// command to exec, which installs the seccomp filter of `confine` right
/// before execve. Used by the init and by `exec`, so both confine the
/// process the same way.
pub(crate) fn apply(
    process: &Process,
    preserve_fds: u32,
    confine: &Confinement,
) -> Result<Command> {
    let seccomp = confine.seccomp.as_ref();
    set_rlimits(process)?;
    crate::init::sched::apply_process(process)?;
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", home_of(process.user().uid())));
    }
    let argv_s = process.args().clone().unwrap_or_default();
    // The cwd may be reachable only with the capabilities root has now
    // (CAP_DAC_OVERRIDE); a permission error is retried as the user, for
    // file systems that check the caller's ids (NFS, CIFS).
    let early_cd = sys::chdir(process.cwd());
    // Installing a filter needs no_new_privs or CAP_SYS_ADMIN. Without
    // no_new_privs, CAP_SYS_ADMIN is kept in the effective set until
    // execve, which drops it (for a non-root user the sets after execve come
    // from the ambient set, for root from the bounding and inheritable sets),
    // so the filter can go in last and the process ends with the spec's
    // capabilities all the same.
    let keep_admin = seccomp.is_some() && process.no_new_privileges() != Some(true);
    set_user(process, keep_admin)?;
    if let Some(umask) = process.user().umask() {
        // SAFETY: sets the mask only.
        unsafe { libc::umask(umask as libc::mode_t) };
    }
    if early_cd.is_err() {
        sys::chdir(process.cwd())
            .map_err(|e| Error::Init(format!("process.cwd {}: {e}", process.cwd().display())))?;
    }
    // A cwd given through an fd the runtime still holds (/proc/self/fd/N)
    // can sit outside the container's root (the CVE-2024-21626 class); the
    // kernel then reports it as unreachable, and the process must not start.
    match std::env::current_dir() {
        Ok(d) if d.is_absolute() => {}
        _ => {
            return Err(Error::Init(format!(
                "process.cwd {}: outside the container's root",
                process.cwd().display()
            )))
        }
    }
    let first = argv_s.first().cloned().unwrap_or_default();
    let path = find_executable(&first, &env)?;
    if process.no_new_privileges() == Some(true) {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(Error::last_os("prctl(PR_SET_NO_NEW_PRIVS)"));
        }
    }
    pass_fds(preserve_fds)?;
    let argv = argv_s
        .iter()
        .map(|a| sys::cstr(a))
        .collect::<Result<Vec<_>>>()?;
    let envp = env
        .iter()
        .map(|a| sys::cstr(a))
        .collect::<Result<Vec<_>>>()?;
    let ptrs = |v: &[CString]| -> Vec<*const libc::c_char> {
        v.iter()
            .map(|a| a.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect()
    };
    Ok(Command {
        path: sys::cpath(&path)?,
        argv_ptrs: ptrs(&argv),
        envp_ptrs: ptrs(&envp),
        _argv: argv,
        envp,
        seccomp: seccomp.cloned(),
    })
}

/// The home directory of `uid` in the container's /etc/passwd, `/` when
/// it has none (what runc puts in HOME when the spec leaves it out).
fn home_of(uid: u32) -> String {
    home_in_passwd(&read_passwd(), uid).unwrap_or_else(|| "/".to_string())
}

/// The container's /etc/passwd, read only when it is a regular file (a
/// FIFO put there by the image must not block the init) and up to a size
/// no real one reaches.
fn read_passwd() -> String {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open("/etc/passwd")
    else {
        return String::new();
    };
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        return String::new();
    }
    let mut text = String::new();
    let _ = f.take(16 << 20).read_to_string(&mut text);
    text
}

fn home_in_passwd(text: &str, uid: u32) -> Option<String> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        match f.as_slice() {
            [_, _, u, _, _, home, ..] if u.parse::<u32>().ok() == Some(uid) && !home.is_empty() => {
                Some(home.to_string())
            }
            _ => None,
        }
    })
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
/// capabilities, plus CAP_SYS_ADMIN in the effective and permitted sets
/// with `keep_admin` (for the seccomp install; execve drops it).
fn set_user(process: &Process, keep_admin: bool) -> Result<()> {
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
    let mut permitted = to_caps(c.permitted())?;
    let mut effective = to_caps(c.effective())?;
    let admin = caps::Capability::CAP_SYS_ADMIN;
    if keep_admin && caps::has_cap(None, CapSet::Permitted, admin).unwrap_or(false) {
        permitted.insert(admin);
        effective.insert(admin);
    }
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
/// The errors are runc's words (`exec: "<name>": ...`, lower case), which
/// engines parse: Docker maps `permission denied` to exit 126 and `no such
/// file or directory` or `executable file not found` to 127.
pub fn find_executable(name: &str, env: &[String]) -> Result<PathBuf> {
    let check = |p: &Path| -> bool {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if name.contains('/') {
        let p = PathBuf::from(name);
        return match std::fs::metadata(&p) {
            Err(e) => Err(Error::Init(format!(
                "exec: {name:?}: stat {name}: {}",
                errno_text(&e)
            ))),
            Ok(_) if !check(&p) => Err(Error::Init(format!("exec: {name:?}: permission denied"))),
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
        "exec: {name:?}: executable file not found in $PATH"
    )))
}

/// The system's text for an error, lower case and without the
/// `(os error N)` that Rust adds, as Go prints errno values.
fn errno_text(e: &std::io::Error) -> String {
    let Some(n) = e.raw_os_error() else {
        return e.to_string();
    };
    // SAFETY: strerror returns a pointer to a NUL-terminated static or
    // thread-local string, copied at once.
    let text = unsafe { std::ffi::CStr::from_ptr(libc::strerror(n)) }
        .to_string_lossy()
        .into_owned();
    let mut c = text.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => text,
    }
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

impl Confinement {
    /// In the init, after `start` released it: the startContainer hooks,
    /// with the process's environment when they have none and under its
    /// seccomp filter, as runc runs them. The init itself stays outside the
    /// filter until its execve.
    pub(crate) fn start_container(&self, host_pid: i32, command: &Command) -> Result<()> {
        let env = command.env();
        hooks::run_all(
            Kind::StartContainer,
            &self.start_container,
            &self.hook_state.json("created", host_pid),
            &hooks::Context {
                cwd: None,
                default_env: Some(&env),
                seccomp: command.seccomp(),
            },
        )
    }
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
        let e = find_executable("/etc/passwd", &env).expect_err("not executable");
        assert_eq!(e.to_string(), r#"exec: "/etc/passwd": permission denied"#);
        let e = find_executable("/", &env).expect_err("a directory");
        assert_eq!(e.to_string(), r#"exec: "/": permission denied"#);
        let e = find_executable("/nope/x", &env).expect_err("missing");
        assert_eq!(
            e.to_string(),
            r#"exec: "/nope/x": stat /nope/x: no such file or directory"#
        );
        let e = find_executable("no-such-binary-rr", &env).expect_err("missing");
        assert_eq!(
            e.to_string(),
            r#"exec: "no-such-binary-rr": executable file not found in $PATH"#
        );
    }

    #[test]
    fn home_comes_from_passwd() {
        let text =
            "root:x:0:0:root:/root:/bin/sh\nu:x:1000:100::/home/u:/bin/sh\nbad line\nv:x:7:7:::\n";
        assert_eq!(home_in_passwd(text, 0).as_deref(), Some("/root"));
        assert_eq!(home_in_passwd(text, 1000).as_deref(), Some("/home/u"));
        assert_eq!(home_in_passwd(text, 7), None);
        assert_eq!(home_in_passwd(text, 5), None);
    }
}
