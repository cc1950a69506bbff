//! The `criu swrk` connection: a SEQPACKET socket pair and the CRIU child.

use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg};
use nix::sys::socket::{
    recvmsg, send, socketpair, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType,
};
use prost::Message;

use crate::error::{Error, Result};
use crate::rpc;

/// How many descriptors one message may carry (CRIU sends at most one).
const MAX_FDS: usize = 8;

/// How long a CRIU whose socket was closed on an error path gets to exit
/// before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(10);

fn sock_err(op: &'static str) -> impl FnOnce(Errno) -> Error {
    move |e| Error::Socket {
        op,
        source: io::Error::from(e),
    }
}

/// One CRIU process serving requests on one socket.
///
/// Field order matters: the socket closes before the child guard waits, so a
/// CRIU blocked on the socket sees EOF and exits.
pub(crate) struct Session {
    sock: Option<OwnedFd>,
    child: ChildGuard,
    output: Option<OwnedFd>,
}

/// What a CRIU process wrote to its stdout and stderr, held in an
/// anonymous file: never the caller's stderr, where an engine shows it
/// (CRIU 3.17 writes binary bytes there when its vDSO probe fails).
pub(crate) struct Captured(OwnedFd);

impl Captured {
    /// Everything written so far.
    pub(crate) fn bytes(&self) -> Vec<u8> {
        use std::io::{Read, Seek};
        let Ok(fd) = self.0.try_clone() else {
            return Vec::new();
        };
        let mut f = std::fs::File::from(fd);
        let mut v = Vec::new();
        if f.rewind().is_ok() {
            let _ = f.read_to_end(&mut v);
        }
        v
    }

    /// The output as text lines, each stripped of control characters and
    /// NUL bytes; empty lines dropped.
    pub(crate) fn lines(&self) -> Vec<String> {
        clean_lines(&self.bytes())
    }

    /// Appends the output to CRIU's log file, after CRIU is done with it
    /// (CRIU truncates the log when it opens it).
    pub(crate) fn append_to(&self, log: &Path) {
        use std::io::Write;
        let lines = self.lines();
        if lines.is_empty() {
            return;
        }
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = write!(f, "(criu stdout and stderr follow)\n{text}");
        }
    }
}

/// Text lines of `bytes` without control characters (a tab is kept).
pub(crate) fn clean_lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|l| {
            l.chars()
                .filter(|c| *c == '\t' || !c.is_control())
                .filter(|c| *c != char::REPLACEMENT_CHARACTER)
                .collect::<String>()
                .trim()
                .to_string()
        })
        .filter(|l| !l.is_empty())
        .collect()
}

fn memfd(name: &std::ffi::CStr) -> Result<OwnedFd> {
    // SAFETY: name is a valid C string; memfd_create returns a new fd or -1.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(Error::Socket {
            op: "memfd_create for CRIU's output",
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: fd was just created and is owned here.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl Session {
    /// Starts `<path> swrk <fd>` with the peer end of a new socket pair.
    /// `join`: cgroup.procs files the child writes `0` to before the exec;
    /// `own_group`: the child makes a process group of its own.
    pub(crate) fn spawn(
        path: &Path,
        stdio: Option<[BorrowedFd<'_>; 3]>,
        join: &[BorrowedFd<'_>],
        own_group: bool,
    ) -> Result<Self> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(sock_err("socketpair"))?;
        // If this process runs with a closed stdin/stdout/stderr the pair can
        // land on 0..2, where the child's stdio setup would overwrite it.
        let theirs = if theirs.as_raw_fd() < 3 {
            let fd = fcntl(theirs.as_raw_fd(), FcntlArg::F_DUPFD_CLOEXEC(3))
                .map_err(sock_err("fcntl(F_DUPFD_CLOEXEC)"))?;
            // SAFETY: fcntl just returned this new descriptor; nothing else owns it.
            unsafe { OwnedFd::from_raw_fd(fd) }
        } else {
            theirs
        };
        let child_fd: RawFd = theirs.as_raw_fd();

        let mut cmd = Command::new(path);
        cmd.arg("swrk").arg(child_fd.to_string());
        let mut output = None;
        match stdio {
            Some([i, o, e]) => {
                let dup = |fd: BorrowedFd<'_>| {
                    fd.try_clone_to_owned()
                        .map(Stdio::from)
                        .map_err(|source| Error::Socket {
                            op: "dup of a CRIU stdio descriptor",
                            source,
                        })
                };
                cmd.stdin(dup(i)?).stdout(dup(o)?).stderr(dup(e)?);
            }
            None => {
                let out = memfd(c"criu-output")?;
                let dup = |fd: &OwnedFd| {
                    fd.try_clone()
                        .map(Stdio::from)
                        .map_err(|source| Error::Socket {
                            op: "dup of CRIU's output file",
                            source,
                        })
                };
                cmd.stdin(Stdio::null())
                    .stdout(dup(&out)?)
                    .stderr(dup(&out)?);
                output = Some(out);
            }
        }
        // CRIU dies with its client: a client killed during a restore left
        // `criu: restore --rpc` waiting on a futex forever for a restored
        // task that was gone (found by `cargo xtask stress`, restore stage).
        let parent = std::process::id() as libc::pid_t;
        let join: Vec<RawFd> = join.iter().map(AsRawFd::as_raw_fd).collect();
        // SAFETY: the closure only calls prctl, getppid, setpgid, write and fcntl, which are
        // async-signal-safe, and touches no memory shared with the parent.
        // Clearing FD_CLOEXEC in the forked child keeps the parent's copy
        // close-on-exec, so no other child of this process inherits the socket.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                // The client died before the prctl: nobody would ever talk
                // to this CRIU.
                if libc::getppid() != parent {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                if own_group && libc::setpgid(0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                for fd in &join {
                    if libc::write(*fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(io::Error::last_os_error());
                    }
                }
                let flags = libc::fcntl(child_fd, libc::F_GETFD);
                if flags < 0 || libc::fcntl(child_fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0
                {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|source| Error::Spawn {
            path: path.to_path_buf(),
            source,
        })?;
        // Only CRIU may hold the peer end, or EOF would never come.
        drop(theirs);
        Ok(Self {
            sock: Some(ours),
            child: ChildGuard {
                child: Some(child),
                path: path.to_path_buf(),
            },
            output,
        })
    }

    /// CRIU's stdout and stderr, when they were not given at spawn.
    pub(crate) fn captured(&self) -> Option<Captured> {
        self.output
            .as_ref()
            .and_then(|fd| fd.try_clone().ok())
            .map(Captured)
    }

    /// Writes `<pid> <start time>` of the CRIU process to `path`.
    pub(crate) fn write_pid_file(&self, path: &Path) -> Result<()> {
        let Some(pid) = self.child.child.as_ref().map(|c| c.id()) else {
            return Ok(());
        };
        let start = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|st| {
                let rest = &st[st.rfind(')')? + 1..];
                rest.split_whitespace().nth(19).map(str::to_string)
            })
            .unwrap_or_default();
        std::fs::write(path, format!("{pid} {start}\n")).map_err(|source| Error::Socket {
            op: "writing the CRIU pid file",
            source,
        })
    }

    fn fd(&self) -> Result<RawFd> {
        self.sock
            .as_ref()
            .map(AsRawFd::as_raw_fd)
            .ok_or_else(|| Error::Socket {
                op: "use after close",
                source: io::Error::from(io::ErrorKind::NotConnected),
            })
    }

    /// Sends one request as one message.
    pub(crate) fn send(&self, req: &rpc::CriuReq) -> Result<()> {
        let bytes = req.encode_to_vec();
        let fd = self.fd()?;
        loop {
            // MSG_NOSIGNAL: a CRIU that died must give EPIPE, not kill us.
            match send(fd, &bytes, MsgFlags::MSG_NOSIGNAL) {
                Ok(n) if n == bytes.len() => return Ok(()),
                Ok(n) => {
                    return Err(Error::Socket {
                        op: "send",
                        source: io::Error::new(
                            io::ErrorKind::WriteZero,
                            format!("sent {n} of {} bytes", bytes.len()),
                        ),
                    })
                }
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(sock_err("send")(e)),
            }
        }
    }

    /// Receives one message and the descriptors passed with it; `None` when
    /// CRIU closed its end.
    pub(crate) fn recv(&self) -> Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
        let fd = self.fd()?;
        // Learn the message size first, so a reply of any size fits.
        let len = loop {
            let mut empty: [u8; 0] = [];
            let mut iov = [IoSliceMut::new(&mut empty)];
            match recvmsg::<()>(fd, &mut iov, None, MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC) {
                Ok(m) => break m.bytes,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(sock_err("recvmsg(MSG_PEEK|MSG_TRUNC)")(e)),
            }
        };
        if len == 0 {
            // CRIU never sends an empty message (criu_resp has required
            // fields), so this is end of stream.
            return Ok(None);
        }
        let mut buf = vec![0u8; len];
        let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS]);
        let (got, flags, raw_fds) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC) {
                Ok(m) => {
                    let mut fds = Vec::new();
                    for c in m.cmsgs().map_err(sock_err("recvmsg control data"))? {
                        if let ControlMessageOwned::ScmRights(r) = c {
                            fds.extend(r);
                        }
                    }
                    break (m.bytes, m.flags, fds);
                }
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(sock_err("recvmsg")(e)),
            }
        };
        let fds: Vec<OwnedFd> = raw_fds
            .into_iter()
            // SAFETY: SCM_RIGHTS just installed these descriptors in this
            // process; nothing else refers to them.
            .map(|r| unsafe { OwnedFd::from_raw_fd(r) })
            .collect();
        if got != len || flags.contains(MsgFlags::MSG_TRUNC) {
            return Err(Error::Socket {
                op: "recvmsg",
                source: io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("message of {len} bytes read as {got}"),
                ),
            });
        }
        if flags.contains(MsgFlags::MSG_CTRUNC) {
            return Err(Error::Socket {
                op: "recvmsg",
                source: io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("more than {MAX_FDS} descriptors passed with one message"),
                ),
            });
        }
        Ok(Some((buf, fds)))
    }

    /// Closes the socket and waits for CRIU to exit (it exits once it has
    /// sent its last reply).
    pub(crate) fn finish(mut self) -> Result<ExitStatus> {
        self.sock = None;
        self.child.wait()
    }

    /// Closes the socket and collects CRIU's exit status within the grace
    /// period, killing it after that; for error paths.
    pub(crate) fn abandon(mut self) -> Option<ExitStatus> {
        self.sock = None;
        self.child.reap()
    }
}

/// Makes sure the CRIU child is always reaped.
struct ChildGuard {
    child: Option<Child>,
    path: PathBuf,
}

impl ChildGuard {
    fn wait(&mut self) -> Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            return Err(Error::Io {
                path: self.path.clone(),
                source: io::Error::other("CRIU process already reaped"),
            });
        };
        child.wait().map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })
    }

    fn reap(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let deadline = Instant::now() + EXIT_GRACE;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => break,
            }
        }
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.reap();
    }
}

#[cfg(test)]
mod output_tests {
    use super::*;

    #[test]
    fn output_lines_are_clean_text() {
        let raw = b"Error (criu/vdso.c:381): vdso: U\0\0\0\x01\xff\n\n  next\tline \n";
        assert_eq!(
            clean_lines(raw),
            vec![
                "Error (criu/vdso.c:381): vdso: U".to_string(),
                "next\tline".to_string()
            ]
        );
    }

    #[test]
    fn output_is_appended_after_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("dump.log");
        std::fs::write(&log, "(00.1) Error (criu/x.c:1): first\n").unwrap();
        let fd = memfd(c"t").unwrap();
        nix::unistd::write(&fd, b"Error (criu/y.c:2): late\0\n").unwrap();
        Captured(fd).append_to(&log);
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.starts_with("(00.1) Error"), "{text}");
        assert!(text.ends_with("Error (criu/y.c:2): late\n"), "{text}");
    }
}
