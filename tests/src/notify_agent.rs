//! One seccomp agent for every seccomp-notify test (`SCMP_ACT_NOTIFY`,
//! `linux.seccomp.listenerPath`), whichever runtime (rrc or runc) hands it
//! the listener: it accepts connections at the listener path, takes the
//! state message and the listener fd sent with SCM_RIGHTS, and answers
//! each notification as its [`Policy`] says (go on, fail with an errno,
//! emulate mkdir, or never answer), recording what it saw.
//!
//! Also the kernel probes the tests need: user notification (5.0),
//! `SECCOMP_USER_NOTIF_FLAG_CONTINUE` (5.5), `SECCOMP_IOCTL_NOTIF_ADDFD`
//! (5.9), `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` (5.19).

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long an agent lives at most: a test that forgets to finish it, or a
/// container that never hangs up, cannot keep its threads forever.
const AGENT_LIFETIME: Duration = Duration::from_secs(120);

/// `struct seccomp_notif`.
#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}

/// `struct seccomp_notif_resp`.
#[repr(C)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

/// `_IOWR('!', 0, struct seccomp_notif)`.
const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
/// `_IOWR('!', 1, struct seccomp_notif_resp)`.
const NOTIF_SEND: libc::c_ulong = 0xc018_2101;
/// `_IOR('!', 2, __u64)`: the first kernels' number, which later kernels
/// still take beside the corrected `_IOW` one.
const NOTIF_ID_VALID: libc::c_ulong = 0x8008_2102;
/// `_IOW('!', 3, struct seccomp_notif_addfd)`.
const NOTIF_ADDFD: libc::c_ulong = 0x4018_2103;
/// `SECCOMP_USER_NOTIF_FLAG_CONTINUE`.
const FLAG_CONTINUE: u32 = 1;
/// `SECCOMP_RET_USER_NOTIF`.
const RET_USER_NOTIF: u32 = 0x7fc0_0000;
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`.
const FILTER_NEW_LISTENER: libc::c_ulong = 8;
/// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`.
const FILTER_WAIT_KILLABLE_RECV: libc::c_ulong = 32;

/// What the agent does with one notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Let the syscall go on in the kernel (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`).
    Continue,
    /// Fail it with this errno (positive, e.g. `libc::EPERM`).
    Errno(i32),
    /// Do the mkdir (or mkdirat) in the container's mount namespace, root
    /// and working directory, and answer with its result.
    Mkdir,
    /// As [`Answer::Mkdir`], with `-<listenerMetadata>` appended to the
    /// name, as runc's test agent does: proof that the agent made it.
    MkdirSuffixed,
    /// Receive it and never answer: the syscall stays blocked.
    Never,
    /// For open/openat of this path (as the caller names it): hand the
    /// caller a memfd holding [`INJECTED`] with SECCOMP_IOCTL_NOTIF_ADDFD
    /// (Linux 5.9) and answer with its number; other paths go on.
    OpenInjected(&'static str),
    /// Wait this long after receiving, then answer as [`Answer::Continue`]:
    /// time for a test to signal the caller while the request is pending.
    ContinueAfter(Duration),
}

/// What a file injected by [`Answer::OpenInjected`] holds.
pub const INJECTED: &str = "written by the seccomp agent\n";

/// `struct seccomp_notif_addfd`.
#[repr(C)]
struct NotifAddfd {
    id: u64,
    flags: u32,
    srcfd: u32,
    newfd: u32,
    newfd_flags: u32,
}

/// Picks the answer for a syscall number.
pub type Policy = fn(nr: i64) -> Answer;

/// What became of one notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answered with CONTINUE.
    Continued,
    /// Answered with this errno.
    Failed(i32),
    /// Emulated: the path made (as the container names it), and the errno
    /// answered (0 for success).
    Emulated(String, i32),
    /// An fd was put in the caller's table and its number answered.
    Injected(i64),
    /// Received and left unanswered.
    Unanswered,
    /// Dropped: the request was no longer valid (the caller died or was
    /// interrupted) before or after reading its arguments.
    Invalidated,
    /// The answer could not be sent: the errno of the ioctl.
    SendFailed(i32),
}

/// One notification as the agent saw it.
#[derive(Clone, Debug)]
pub struct Event {
    /// Syscall number.
    pub nr: i64,
    /// Caller's pid (in the agent's pid namespace).
    pub pid: u32,
    /// What the agent did.
    pub outcome: Outcome,
}

/// One connection: what arrived, and the notifications on its listener.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The state message, parsed (Null if it was not JSON).
    pub message: Value,
    /// How many fds came with it.
    pub fds: usize,
    /// The notifications, in order, once answered (or not).
    pub events: Vec<Event>,
    /// (syscall number, pid) of each notification as it was received,
    /// before the answer.
    pub received: Vec<(i64, u32)>,
    /// Whether the listener hung up (every process it filtered is gone).
    pub hung_up: bool,
}

type Shared = Arc<Mutex<Vec<Report>>>;

/// A running agent; [`Agent::finish`] stops it and gives its reports.
pub struct Agent {
    stop: Arc<AtomicBool>,
    reports: Shared,
    thread: Option<JoinHandle<Vec<JoinHandle<()>>>>,
}

impl Agent {
    /// Listens at `path`: a file system path, or `@name` for an abstract
    /// socket (as Go's net.Dial, and so runc, reads a leading `@`).
    pub fn listen(path: &Path, policy: Policy) -> Agent {
        let sock = bind(path).unwrap_or_else(|e| panic!("agent: bind {}: {e}", path.display()));
        sock.set_nonblocking(true).expect("agent: non-blocking");
        let stop = Arc::new(AtomicBool::new(false));
        let reports: Shared = Arc::default();
        let (s, r) = (stop.clone(), reports.clone());
        let thread = std::thread::spawn(move || accept_loop(sock, policy, s, r));
        Agent {
            stop,
            reports,
            thread: Some(thread),
        }
    }

    /// The reports so far.
    pub fn reports(&self) -> Vec<Report> {
        self.reports.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Waits up to `timeout` for `done` to hold on the reports so far.
    pub fn wait_until(&self, timeout: Duration, done: impl Fn(&[Report]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if done(&self.reports()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        done(&self.reports())
    }

    /// Stops accepting and answering (closing every listener still held)
    /// and returns the reports.
    pub fn finish(mut self) -> Vec<Report> {
        self.stop_threads();
        self.reports()
    }

    fn stop_threads(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            for h in t.join().unwrap_or_default() {
                let _ = h.join();
            }
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

fn bind(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    match path.as_os_str().as_bytes().strip_prefix(b"@") {
        Some(name) => {
            UnixListener::bind_addr(&std::os::unix::net::SocketAddr::from_abstract_name(name)?)
        }
        None => UnixListener::bind(path),
    }
}

fn accept_loop(
    sock: UnixListener,
    policy: Policy,
    stop: Arc<AtomicBool>,
    reports: Shared,
) -> Vec<JoinHandle<()>> {
    let deadline = Instant::now() + AGENT_LIFETIME;
    let mut handlers = Vec::new();
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        let Ok((conn, _)) = sock.accept() else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let (stop, reports) = (stop.clone(), reports.clone());
        handlers.push(std::thread::spawn(move || {
            serve(conn, policy, &stop, &reports, deadline)
        }));
    }
    handlers
}

/// Takes the message and listener from `conn` and answers on it.
fn serve(conn: UnixStream, policy: Policy, stop: &AtomicBool, reports: &Shared, until: Instant) {
    if conn.set_nonblocking(false).is_err() {
        return;
    }
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let Some((bytes, mut fds)) = recv_message(&conn) else {
        return;
    };
    let message: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let metadata = message["metadata"].as_str().unwrap_or("").to_string();
    let index = {
        let Ok(mut r) = reports.lock() else { return };
        r.push(Report {
            message,
            fds: fds.len(),
            ..Report::default()
        });
        r.len() - 1
    };
    if fds.is_empty() {
        return;
    }
    let listener = fds.swap_remove(0);
    let record = |f: &mut dyn FnMut(&mut Report)| {
        if let Ok(mut r) = reports.lock() {
            f(&mut r[index]);
        }
    };
    while !stop.load(Ordering::SeqCst) && Instant::now() < until {
        match wait_readable(&listener) {
            Ready::Idle => continue,
            Ready::HungUp => {
                record(&mut |r| r.hung_up = true);
                return;
            }
            Ready::Readable => {}
        }
        let on_receive = |nr: i64, pid: u32| record(&mut |r| r.received.push((nr, pid)));
        if let Some(event) = handle_one(&listener, policy, &metadata, &on_receive) {
            record(&mut |r| r.events.push(event.clone()));
        }
    }
}

enum Ready {
    Idle,
    Readable,
    HungUp,
}

fn wait_readable(fd: &OwnedFd) -> Ready {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    let r = unsafe { libc::poll(&mut p, 1, 50) };
    if r <= 0 {
        Ready::Idle
    } else if p.revents & libc::POLLIN != 0 {
        Ready::Readable
    } else {
        Ready::HungUp
    }
}

/// Receives and answers one notification; None when there was none to
/// receive (its caller was interrupted in the meantime).
fn handle_one(
    listener: &OwnedFd,
    policy: Policy,
    metadata: &str,
    on_receive: &dyn Fn(i64, u32),
) -> Option<Event> {
    let mut n = Notif::default();
    // SAFETY: the kernel fills a zeroed seccomp_notif of the right size.
    if unsafe { libc::ioctl(listener.as_raw_fd(), NOTIF_RECV, &mut n) } != 0 {
        return None;
    }
    let nr = i64::from(n.nr);
    on_receive(nr, n.pid);
    let outcome = match policy(nr) {
        Answer::Continue => send(listener, n.id, 0, FLAG_CONTINUE, Outcome::Continued),
        Answer::Errno(e) => send(listener, n.id, e, 0, Outcome::Failed(e)),
        Answer::Mkdir => emulate_mkdir(listener, &n, None),
        Answer::MkdirSuffixed => emulate_mkdir(listener, &n, Some(metadata)),
        Answer::OpenInjected(path) => inject_open(listener, &n, path),
        Answer::Never => Outcome::Unanswered,
        Answer::ContinueAfter(d) => {
            std::thread::sleep(d);
            send(listener, n.id, 0, FLAG_CONTINUE, Outcome::Continued)
        }
    };
    Some(Event {
        nr,
        pid: n.pid,
        outcome,
    })
}

fn send(listener: &OwnedFd, id: u64, errno: i32, flags: u32, ok: Outcome) -> Outcome {
    let resp = NotifResp {
        id,
        val: if errno == 0 { 0 } else { -1 },
        error: -errno,
        flags,
    };
    // SAFETY: the kernel reads a seccomp_notif_resp from a valid pointer.
    if unsafe { libc::ioctl(listener.as_raw_fd(), NOTIF_SEND, &resp) } != 0 {
        return Outcome::SendFailed(errno_now());
    }
    ok
}

fn errno_now() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Whether request `id` still waits for an answer: its caller is alive and
/// blocked in that very syscall, so what was read from its memory is its.
fn still_valid(listener: &OwnedFd, id: u64) -> bool {
    // SAFETY: the kernel reads one u64 from a valid pointer.
    unsafe { libc::ioctl(listener.as_raw_fd(), NOTIF_ID_VALID, &id) == 0 }
}

/// mkdir(path, mode) or mkdirat(dirfd, path, mode), done for the caller.
fn emulate_mkdir(listener: &OwnedFd, n: &Notif, suffix: Option<&str>) -> Outcome {
    let at = i64::from(n.nr) == libc::SYS_mkdirat;
    let (dirfd, path_at, mode) = if at {
        (n.args[0] as i32, n.args[1], n.args[2] as u32)
    } else {
        (libc::AT_FDCWD, n.args[0], n.args[1] as u32)
    };
    if !still_valid(listener, n.id) {
        return Outcome::Invalidated;
    }
    let Some(mut path) = read_c_string(n.pid, path_at) else {
        return send(
            listener,
            n.id,
            libc::EFAULT,
            0,
            Outcome::Failed(libc::EFAULT),
        );
    };
    // The pid may have died and been reused between the read and here:
    // only a request still pending proves the memory was the caller's.
    if !still_valid(listener, n.id) {
        return Outcome::Invalidated;
    }
    if let Some(s) = suffix {
        // As runc's agent: the suffix must not lead somewhere else.
        if s.contains('/') {
            return send(
                listener,
                n.id,
                libc::EINVAL,
                0,
                Outcome::Failed(libc::EINVAL),
            );
        }
        path = format!("{path}-{s}");
    }
    let errno = mkdir_as(n.pid, dirfd, &path, mode);
    send(
        listener,
        n.id,
        errno,
        0,
        Outcome::Emulated(path.clone(), errno),
    )
}

/// open(path, flags) or openat(dirfd, path, flags): `wanted` gets a
/// memfd put into the caller's fd table; any other path goes on.
fn inject_open(listener: &OwnedFd, n: &Notif, wanted: &str) -> Outcome {
    let (path_at, flags) = if i64::from(n.nr) == libc::SYS_openat {
        (n.args[1], n.args[2] as i32)
    } else {
        (n.args[0], n.args[1] as i32)
    };
    let path = read_c_string(n.pid, path_at);
    if !still_valid(listener, n.id) {
        return Outcome::Invalidated;
    }
    if path.as_deref() != Some(wanted) {
        return send(listener, n.id, 0, FLAG_CONTINUE, Outcome::Continued);
    }
    let Some(file) = memfd_with(INJECTED) else {
        return send(listener, n.id, libc::EIO, 0, Outcome::Failed(libc::EIO));
    };
    let add = NotifAddfd {
        id: n.id,
        flags: 0,
        srcfd: file.as_raw_fd() as u32,
        newfd: 0,
        newfd_flags: (flags & libc::O_CLOEXEC) as u32,
    };
    // SAFETY: the kernel reads a seccomp_notif_addfd from a valid pointer
    // and returns the fd number in the caller's table.
    let fd = unsafe { libc::ioctl(listener.as_raw_fd(), NOTIF_ADDFD, &add) };
    if fd < 0 {
        let e = errno_now();
        return send(listener, n.id, e, 0, Outcome::Failed(e));
    }
    let resp = NotifResp {
        id: n.id,
        val: i64::from(fd),
        error: 0,
        flags: 0,
    };
    // SAFETY: the kernel reads a seccomp_notif_resp from a valid pointer.
    if unsafe { libc::ioctl(listener.as_raw_fd(), NOTIF_SEND, &resp) } != 0 {
        return Outcome::SendFailed(errno_now());
    }
    Outcome::Injected(i64::from(fd))
}

/// A memfd holding `text`, read from its start.
fn memfd_with(text: &str) -> Option<std::fs::File> {
    use std::io::{Seek, Write};
    // SAFETY: a valid C string literal and flags; the fd is owned below.
    let fd = unsafe { libc::memfd_create(c"rr-agent".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    // SAFETY: fd was just made and is owned once.
    let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    f.write_all(text.as_bytes()).ok()?;
    f.rewind().ok()?;
    Some(f)
}

/// Reads a NUL-terminated string (at most PATH_MAX bytes) at `addr` in
/// `pid`'s memory.
fn read_c_string(pid: u32, addr: u64) -> Option<String> {
    use std::os::unix::fs::FileExt;
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).ok()?;
    let mut buf = vec![0u8; 4096];
    let mut got = 0;
    // A string near the end of a mapping: read what is there, page by page.
    while got < buf.len() {
        let end = (got + 4096 - ((addr as usize + got) % 4096)).min(buf.len());
        match mem.read_at(&mut buf[got..end], addr + got as u64) {
            Ok(0) | Err(_) => break,
            Ok(k) => got += k,
        }
        if buf[..got].contains(&0) {
            break;
        }
    }
    let len = buf[..got].iter().position(|b| *b == 0)?;
    String::from_utf8(buf[..len].to_vec()).ok()
}

/// Runs mkdirat in a child that joins `pid`'s mount namespace, root,
/// working directory (or `dirfd`) and umask; returns 0 or the errno.
fn mkdir_as(pid: u32, dirfd: i32, path: &str, mode: u32) -> i32 {
    // setns takes no O_PATH fd; fchdir does.
    let open_with = |p: String, flags: i32| {
        let c = CString::new(p).ok()?;
        // SAFETY: a valid C string; the fd returned is owned below.
        let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
        // SAFETY: fd was just opened and is owned once.
        (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
    };
    let base = if dirfd == libc::AT_FDCWD {
        format!("/proc/{pid}/cwd")
    } else {
        format!("/proc/{pid}/fd/{dirfd}")
    };
    let (Some(mnt), Some(root), Some(base), Ok(cpath)) = (
        open_with(format!("/proc/{pid}/ns/mnt"), libc::O_RDONLY),
        open_with(format!("/proc/{pid}/root"), libc::O_PATH),
        open_with(base, libc::O_PATH),
        CString::new(path),
    ) else {
        return libc::ESRCH;
    };
    let umask = umask_of(pid).unwrap_or(0o022);
    let fds = [mnt.as_raw_fd(), root.as_raw_fd(), base.as_raw_fd()];
    // SAFETY: the child runs only async-signal-safe syscalls on values
    // prepared before the fork, then _exit; no allocation, no lock.
    match unsafe { libc::fork() } {
        -1 => errno_now(),
        0 => unsafe { mkdir_child(fds, &cpath, mode, umask) },
        child => wait_code(child),
    }
}

/// The forked child of [`mkdir_as`].
///
/// # Safety
/// Only between fork and _exit in a child of a threaded process.
unsafe fn mkdir_child([mnt, root, base]: [RawFd; 3], path: &CString, mode: u32, umask: u32) -> ! {
    let fail = || libc::_exit(*libc::__errno_location());
    if libc::setns(mnt, libc::CLONE_NEWNS) != 0
        || libc::fchdir(root) != 0
        || libc::chroot(c".".as_ptr()) != 0
        || libc::fchdir(base) != 0
    {
        fail();
    }
    libc::umask(umask);
    if libc::mkdirat(libc::AT_FDCWD, path.as_ptr(), mode) != 0 {
        fail();
    }
    libc::_exit(0)
}

fn wait_code(child: libc::pid_t) -> i32 {
    let mut status = 0;
    // SAFETY: waiting for our own child into a valid int.
    if unsafe { libc::waitpid(child, &mut status, 0) } != child {
        return libc::ECHILD;
    }
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        libc::EINTR
    }
}

fn umask_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Umask:"))?;
    u32::from_str_radix(line.trim_start_matches("Umask:").trim(), 8).ok()
}

/// Receives one message and the fds sent with it.
fn recv_message(sock: &UnixStream) -> Option<(Vec<u8>, Vec<OwnedFd>)> {
    let mut buf = vec![0u8; 1 << 16];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cbuf = [0u64; 64];
    // SAFETY: msghdr is plain data; zero is its empty value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf);
    // SAFETY: msg points at buffers that live through the call.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n <= 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some((buf, fds_of(&msg)))
}

/// Every fd in the SCM_RIGHTS messages of `msg`, owned.
fn fds_of(msg: &libc::msghdr) -> Vec<OwnedFd> {
    let mut fds = Vec::new();
    // SAFETY: the kernel filled the control buffer msg describes; each
    // header is walked with the CMSG macros inside it.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c) as *const i32;
                let count = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / 4;
                for i in 0..count {
                    let fd = std::ptr::read_unaligned(data.add(i));
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    fds
}

/// Whether the kernel has SECCOMP_RET_USER_NOTIF (Linux 5.0).
pub fn kernel_has_user_notif() -> bool {
    const SECCOMP_GET_ACTION_AVAIL: libc::c_ulong = 2;
    let action: u32 = RET_USER_NOTIF;
    // SAFETY: the kernel reads one u32 from a valid pointer.
    unsafe { libc::syscall(libc::SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0 }
}

/// Why the notify tests cannot run here, if they cannot.
pub fn skip_reason() -> Option<&'static str> {
    (!kernel_has_user_notif()).then_some("the kernel has no SECCOMP_RET_USER_NOTIF (Linux 5.0)")
}

/// Whether the kernel takes SECCOMP_USER_NOTIF_FLAG_CONTINUE (Linux 5.5):
/// a child installs an allow-all filter with a listener and answers a
/// request that does not exist with the flag; a kernel that knows it looks
/// the id up (ENOENT), an older one refuses the flag (EINVAL).
pub fn kernel_has_continue() -> bool {
    in_child(|| {
        let Some(l) = install_listener(0) else {
            return 1;
        };
        let resp = NotifResp {
            id: u64::MAX,
            val: 0,
            error: 0,
            flags: FLAG_CONTINUE,
        };
        // SAFETY: a valid seccomp_notif_resp for the ioctl to read.
        let r = unsafe { libc::ioctl(l, NOTIF_SEND, &resp) };
        i32::from(!(r != 0 && errno_now() == libc::ENOENT))
    })
}

/// Whether the kernel has SECCOMP_IOCTL_NOTIF_ADDFD (Linux 5.9): on a
/// request that does not exist it looks the id up (ENOENT); an older
/// kernel does not know the ioctl (EINVAL).
pub fn kernel_has_addfd() -> bool {
    in_child(|| {
        let Some(l) = install_listener(0) else {
            return 1;
        };
        let add = NotifAddfd {
            id: u64::MAX,
            flags: 0,
            srcfd: l as u32,
            newfd: 0,
            newfd_flags: 0,
        };
        // SAFETY: a valid seccomp_notif_addfd for the ioctl to read.
        let r = unsafe { libc::ioctl(l, NOTIF_ADDFD, &add) };
        i32::from(!(r != 0 && errno_now() == libc::ENOENT))
    })
}

/// Whether the kernel takes SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (5.19).
pub fn kernel_has_wait_killable_recv() -> bool {
    in_child(|| i32::from(install_listener(FILTER_WAIT_KILLABLE_RECV).is_none()))
}

/// Runs `f` in a forked child (a filter installed there stays there) and
/// tells whether it exited 0.
fn in_child(f: fn() -> i32) -> bool {
    // SAFETY: the child makes raw syscalls only and leaves with _exit.
    match unsafe { libc::fork() } {
        -1 => false,
        0 => unsafe { libc::_exit(f()) },
        child => wait_code(child) == 0,
    }
}

/// In a probing child: installs an allow-all filter with a listener (and
/// `extra` filter flags) and returns the listener.
fn install_listener(extra: libc::c_ulong) -> Option<RawFd> {
    const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
    let allow = [libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: libc::SECCOMP_RET_ALLOW,
    }];
    let prog = libc::sock_fprog {
        len: 1,
        filter: allow.as_ptr().cast_mut(),
    };
    // SAFETY: prctl and seccomp read plain integers and a valid program.
    let fd = unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            FILTER_NEW_LISTENER | extra,
            &prog,
        )
    };
    (fd >= 0).then_some(fd as RawFd)
}
