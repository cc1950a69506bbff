//! The namespace bootstrap: the process side that consumes a [`BootstrapMessage`].
//!
//! The runtime forks a child and hands it one end of a `SOCK_SEQPACKET`
//! socket pair. The parent calls [`drive`] with the message; the child calls
//! [`enter`]. In the child (stage 1) `enter` joins the namespaces named by
//! path, creates the user namespace and has the parent write its id maps,
//! creates the remaining namespaces, then forks the container init (stage 2)
//! and reports its pid. A second fork is needed because a new pid or time
//! namespace only applies to children of the process that unshared it.
//! Stage 1 then exits; `enter` returns only in stage 2.
//!
//! Everything stage 1 acts on comes from the message: no other channel
//! repeats it.

use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::Command;

use crate::{encode_id_map, BootstrapMessage, IdMapping, NsKind, TimeClock};

/// Failures of the bootstrap, on either side of the socket.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BootstrapError {
    /// A system call failed.
    #[error("{call}: {source}")]
    Sys {
        /// What was being done, e.g. `setns(net:/proc/1/ns/net)`.
        call: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The other side sent something that does not fit the protocol.
    #[error("bootstrap protocol: {0}")]
    Protocol(String),
    /// Stage 1 reported a failure.
    #[error("namespace setup failed: {0}")]
    Child(String),
    /// Writing an id map for the container failed.
    #[error("writing {file} for pid {pid}: {reason}")]
    IdMap {
        /// `uid_map`, `gid_map` or `setgroups`.
        file: &'static str,
        /// The stage 1 pid whose map was written.
        pid: i32,
        /// Why it failed.
        reason: String,
    },
    /// The message could not be encoded or decoded.
    #[error(transparent)]
    Message(#[from] crate::Error),
}

type Result<T> = std::result::Result<T, BootstrapError>;

fn sys(call: impl Into<String>) -> BootstrapError {
    BootstrapError::Sys {
        call: call.into(),
        source: std::io::Error::last_os_error(),
    }
}

/// Tags of the small sync messages exchanged after the bootstrap message.
mod tag {
    pub const MAP_REQUEST: u8 = 1;
    pub const MAP_ACK: u8 = 2;
    pub const PIDS: u8 = 3;
    pub const ERROR: u8 = 4;
}

/// Pids reported by stage 1, as seen from the parent's pid namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pids {
    /// Stage 1, already reaped by [`drive`].
    pub stage1: i32,
    /// The container init.
    pub init: i32,
}

/// Sends one datagram.
pub fn send_packet(fd: RawFd, data: &[u8]) -> std::io::Result<()> {
    // SAFETY: the buffer is valid for its length; MSG_NOSIGNAL avoids SIGPIPE
    // when the peer is gone (we want EPIPE instead).
    let n = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Receives one datagram of any size; `Ok(None)` when the peer closed.
pub fn recv_packet(fd: RawFd) -> std::io::Result<Option<Vec<u8>>> {
    loop {
        // Learn the size first so that no message is ever cut short.
        // SAFETY: a zero-length peek with MSG_TRUNC writes nothing.
        let size = unsafe {
            libc::recv(
                fd,
                std::ptr::null_mut(),
                0,
                libc::MSG_PEEK | libc::MSG_TRUNC,
            )
        };
        if size < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        let mut buf = vec![0u8; size as usize];
        // SAFETY: buf is valid for buf.len() bytes.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if n == 0 && size == 0 {
            return Ok(None);
        }
        buf.truncate(n as usize);
        return Ok(Some(buf));
    }
}

/// Parent side: sends `msg` to stage 1 (pid `stage1`), writes the id maps it
/// asks for, and returns the pids once it reports them. Stage 1 is reaped.
pub fn drive(sock: &OwnedFd, msg: &BootstrapMessage, stage1: i32) -> Result<Pids> {
    let sent = send(sock, msg);
    finish(sock, msg, stage1, sent)
}

/// Parent side, first half of [`drive`]: sends `msg` to stage 1, which then
/// makes the namespaces while the caller does other work; [`finish`] with
/// this result completes the bootstrap.
pub fn send(sock: &OwnedFd, msg: &BootstrapMessage) -> Result<()> {
    let bytes = msg.encode(1)?;
    send_packet(sock.as_raw_fd(), &bytes).map_err(|e| BootstrapError::Sys {
        call: "sending the bootstrap message".into(),
        source: e,
    })
}

/// Parent side, second half of [`drive`]: given what [`send`] returned,
/// writes the id maps stage 1 asks for and returns the pids once it
/// reports them. Stage 1 is reaped either way.
pub fn finish(
    sock: &OwnedFd,
    msg: &BootstrapMessage,
    stage1: i32,
    sent: Result<()>,
) -> Result<Pids> {
    let result = sent.and_then(|()| drive_inner(sock.as_raw_fd(), msg, stage1));
    reap(stage1);
    result
}

fn drive_inner(fd: RawFd, msg: &BootstrapMessage, stage1: i32) -> Result<Pids> {
    loop {
        let packet = recv_packet(fd).map_err(|e| BootstrapError::Sys {
            call: "reading from stage 1".into(),
            source: e,
        })?;
        let Some(packet) = packet else {
            return Err(BootstrapError::Child(
                "the namespace setup process exited without reporting".into(),
            ));
        };
        match packet.split_first() {
            Some((&tag::MAP_REQUEST, _)) => {
                write_id_maps(stage1, msg)?;
                send_packet(fd, &[tag::MAP_ACK]).map_err(|e| BootstrapError::Sys {
                    call: "acknowledging the id maps".into(),
                    source: e,
                })?;
            }
            Some((&tag::PIDS, rest)) if rest.len() == 4 => {
                let init = i32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]);
                return Ok(Pids { stage1, init });
            }
            Some((&tag::ERROR, rest)) => {
                return Err(BootstrapError::Child(
                    String::from_utf8_lossy(rest).into_owned(),
                ))
            }
            _ => {
                return Err(BootstrapError::Protocol(format!(
                    "unexpected {}-byte packet from stage 1",
                    packet.len()
                )))
            }
        }
    }
}

fn reap(pid: i32) {
    let mut status = 0;
    loop {
        // SAFETY: plain waitpid on our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        if r >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

/// Writes `setgroups`, `uid_map` and `gid_map` of `pid` from the message,
/// falling back to the setuid helpers (newuidmap/newgidmap) when the kernel
/// refuses a direct write and the message names them.
fn write_id_maps(pid: i32, msg: &BootstrapMessage) -> Result<()> {
    if msg.rootless_euid && msg.set_groups == Some(false) {
        write_proc(pid, "setgroups", "deny").map_err(|e| BootstrapError::IdMap {
            file: "setgroups",
            pid,
            reason: e.to_string(),
        })?;
    }
    write_map(pid, "uid_map", &msg.uid_map, msg.uid_map_path.as_deref())?;
    write_map(pid, "gid_map", &msg.gid_map, msg.gid_map_path.as_deref())?;
    Ok(())
}

fn write_proc(pid: i32, file: &str, content: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{pid}/{file}"))?;
    f.write_all(content.as_bytes())
}

fn write_map(pid: i32, file: &'static str, maps: &[IdMapping], helper: Option<&str>) -> Result<()> {
    if maps.is_empty() {
        return Ok(());
    }
    let text = encode_id_map(maps);
    match write_proc(pid, file, &text) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) && helper.is_some() => {
            let helper = helper.unwrap_or_default();
            let mut cmd = Command::new(helper);
            cmd.arg(pid.to_string());
            for m in maps {
                cmd.arg(m.container_id.to_string())
                    .arg(m.host_id.to_string())
                    .arg(m.size.to_string());
            }
            let out = cmd.output().map_err(|e| BootstrapError::IdMap {
                file,
                pid,
                reason: format!("running {helper}: {e}"),
            })?;
            if out.status.success() {
                Ok(())
            } else {
                Err(BootstrapError::IdMap {
                    file,
                    pid,
                    reason: format!(
                        "{helper} failed ({}): {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim()
                    ),
                })
            }
        }
        Err(e) => Err(BootstrapError::IdMap {
            file,
            pid,
            reason: format!("{e} (map: {})", text.trim_end().replace('\n', ", ")),
        }),
    }
}

/// What stage 2 learns from the bootstrap.
#[derive(Debug)]
pub struct Stage2 {
    /// The decoded message stage 1 acted on.
    pub message: BootstrapMessage,
}

/// Child side. Call it in the freshly forked child with its end of the socket.
///
/// Returns only in stage 2 (the container init), after `setsid` and, inside a
/// new user namespace, after becoming root there. Stage 1 reports any failure
/// to the parent and exits; it never returns.
pub fn enter(sock: OwnedFd) -> Result<Stage2> {
    let fd = sock.as_raw_fd();
    match stage1(fd) {
        Ok(Some(stage2)) => {
            drop(sock);
            Ok(stage2)
        }
        Ok(None) => {
            // SAFETY: stage 1 is done; _exit skips atexit handlers and the
            // parent's buffered stdio that this forked copy must not flush.
            unsafe { libc::_exit(0) }
        }
        Err(err) => {
            let mut packet = vec![tag::ERROR];
            packet.extend_from_slice(err.to_string().as_bytes());
            let _ = send_packet(fd, &packet);
            // SAFETY: as above.
            unsafe { libc::_exit(1) }
        }
    }
}

/// Runs stage 1. `Ok(None)` in stage 1 once the init is forked and reported,
/// `Ok(Some)` in stage 2.
fn stage1(fd: RawFd) -> Result<Option<Stage2>> {
    let packet = recv_packet(fd)
        .map_err(|e| BootstrapError::Sys {
            call: "reading the bootstrap message".into(),
            source: e,
        })?
        .ok_or_else(|| BootstrapError::Protocol("the parent closed the socket".into()))?;
    let msg = BootstrapMessage::decode(&packet)?;

    if let Some(score) = msg.oom_score_adj {
        // Written before any user namespace is joined: lowering it needs
        // privileges the process may not have afterwards.
        std::fs::write("/proc/self/oom_score_adj", score.to_string()).map_err(|e| {
            BootstrapError::Sys {
                call: format!("writing oom_score_adj {score}"),
                source: e,
            }
        })?;
    }

    join_namespaces(&msg)?;

    if msg.clone_flags & (libc::CLONE_NEWUSER as u32) != 0 {
        // SAFETY: unshare takes flags only.
        if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
            return Err(sys("unshare(user)"));
        }
        // A runtime may make itself non-dumpable (so that a container cannot
        // open its /proc/<pid>/exe); the /proc files of a non-dumpable
        // process belong to root, and an unprivileged parent could not
        // write our id maps. Dumpable only while it does.
        // SAFETY: prctl with integer arguments.
        let was_dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
        if was_dumpable == 0 {
            // SAFETY: as above.
            unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) };
        }
        let acked = map_handshake(fd);
        if was_dumpable == 0 {
            // SAFETY: as above.
            unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
        }
        acked?;
        become_root()?;
    }

    let rest = msg.clone_flags & !(libc::CLONE_NEWUSER as u32);
    if rest != 0 {
        // SAFETY: unshare takes flags only.
        if unsafe { libc::unshare(rest as libc::c_int) } != 0 {
            return Err(sys(format!("unshare({})", flag_names(rest))));
        }
    }
    if rest & (libc::CLONE_NEWTIME as u32) != 0 && !msg.time_offsets.is_empty() {
        let mut text = String::new();
        for off in &msg.time_offsets {
            let clock = match off.clock {
                TimeClock::Monotonic => "monotonic",
                TimeClock::Boottime => "boottime",
            };
            text.push_str(&format!("{clock} {} {}\n", off.secs, off.nanosecs));
        }
        std::fs::write("/proc/self/timens_offsets", text).map_err(|e| BootstrapError::Sys {
            call: "writing timens_offsets".into(),
            source: e,
        })?;
    }

    // SAFETY: the runtime is single threaded (see the crate docs), so the
    // child may run arbitrary code after fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(sys("fork of the container init"));
    }
    if pid == 0 {
        stage2_setup(&msg)?;
        return Ok(Some(Stage2 { message: msg }));
    }
    let mut packet = vec![tag::PIDS];
    packet.extend_from_slice(&pid.to_ne_bytes());
    send_packet(fd, &packet).map_err(|e| BootstrapError::Sys {
        call: "reporting the init pid".into(),
        source: e,
    })?;
    Ok(None)
}

/// Asks the parent for the id maps and waits until they are written.
fn map_handshake(fd: RawFd) -> Result<()> {
    send_packet(fd, &[tag::MAP_REQUEST]).map_err(|e| BootstrapError::Sys {
        call: "asking for id maps".into(),
        source: e,
    })?;
    match recv_packet(fd) {
        Ok(Some(p)) if p.as_slice() == [tag::MAP_ACK] => {}
        Ok(_) => {
            return Err(BootstrapError::Protocol(
                "no acknowledgement of the id maps".into(),
            ))
        }
        Err(e) => {
            return Err(BootstrapError::Sys {
                call: "waiting for id maps".into(),
                source: e,
            })
        }
    }
    Ok(())
}

fn stage2_setup(msg: &BootstrapMessage) -> Result<()> {
    // SAFETY: setsid takes no arguments.
    if unsafe { libc::setsid() } < 0 {
        return Err(sys("setsid"));
    }
    if msg.clone_flags & (libc::CLONE_NEWUSER as u32) != 0
        || msg.ns_paths.iter().any(|p| p.kind == NsKind::User)
    {
        become_root()?;
    }
    if !msg.rootless_euid {
        // SAFETY: an empty group list is valid.
        if unsafe { libc::setgroups(0, std::ptr::null()) } != 0 {
            return Err(sys("setgroups([])"));
        }
    }
    Ok(())
}

fn become_root() -> Result<()> {
    // SAFETY: plain id changes.
    if unsafe { libc::setresgid(0, 0, 0) } != 0 {
        return Err(sys("setresgid(0) in the user namespace"));
    }
    // SAFETY: plain id changes.
    if unsafe { libc::setresuid(0, 0, 0) } != 0 {
        return Err(sys("setresuid(0) in the user namespace"));
    }
    Ok(())
}

/// Joins every namespace named by path: all files opened first (a path may
/// only be reachable before some namespace is joined), then the non-user
/// ones the current credentials allow, then the user namespace, then those
/// that needed it.
fn join_namespaces(msg: &BootstrapMessage) -> Result<()> {
    let mut opened = Vec::with_capacity(msg.ns_paths.len());
    for ns in &msg.ns_paths {
        let path = CString::new(ns.path.as_str()).map_err(|_| {
            BootstrapError::Protocol(format!("namespace path {:?} contains NUL", ns.path))
        })?;
        // SAFETY: path is a valid C string.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(sys(format!("open {}:{}", ns.kind.name(), ns.path)));
        }
        // SAFETY: fd was just opened and is owned here.
        opened.push((ns, unsafe { File::from_raw_fd(fd) }));
    }
    let mut deferred = Vec::new();
    for (ns, file) in opened.iter().filter(|(ns, _)| ns.kind != NsKind::User) {
        if setns(file, ns.kind).is_err() {
            deferred.push((ns, file));
        }
    }
    for (ns, file) in opened.iter().filter(|(ns, _)| ns.kind == NsKind::User) {
        setns(file, ns.kind)
            .map_err(|e| sys_from(e, format!("setns({}:{})", ns.kind.name(), ns.path)))?;
    }
    for (ns, file) in deferred {
        setns(file, ns.kind)
            .map_err(|e| sys_from(e, format!("setns({}:{})", ns.kind.name(), ns.path)))?;
    }
    Ok(())
}

fn sys_from(source: std::io::Error, call: String) -> BootstrapError {
    BootstrapError::Sys { call, source }
}

fn setns(file: &File, kind: NsKind) -> std::io::Result<()> {
    // SAFETY: file is an open namespace file.
    if unsafe { libc::setns(file.as_raw_fd(), kind.clone_flag() as libc::c_int) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn flag_names(flags: u32) -> String {
    const ALL: [NsKind; 8] = [
        NsKind::User,
        NsKind::Ipc,
        NsKind::Uts,
        NsKind::Net,
        NsKind::Pid,
        NsKind::Mount,
        NsKind::Cgroup,
        NsKind::Time,
    ];
    ALL.iter()
        .filter(|k| flags & k.clone_flag() != 0)
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join("|")
}
