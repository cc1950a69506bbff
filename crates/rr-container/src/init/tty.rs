//! Terminals: the container side makes a pty pair inside the container's
//! devpts and hands the master over a unix socket (SCM_RIGHTS, the pty's
//! path as the message data, one message), as containerd and podman expect
//! from `--console-socket`. Without a console socket, a foreground
//! `run`/`exec` receives the master itself over a private socket pair and
//! copies between its own stdio and the master.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

use crate::error::{Error, Result};
use crate::forward::Forwarder;

/// Where the master end of a container's terminal goes.
pub(crate) struct Console {
    /// The socket the container side sends the master on.
    pub send: OwnedFd,
    /// Our end of a private pair when rrc proxies the terminal itself.
    pub recv: Option<OwnedFd>,
}

/// Decides where a terminal's master goes. `None` when the process has no
/// terminal (a console socket is then ignored, as runc does).
pub(crate) fn plan(
    terminal: bool,
    console_socket: Option<&Path>,
    foreground: bool,
) -> Result<Option<Console>> {
    if !terminal {
        return Ok(None);
    }
    if let Some(p) = console_socket {
        let s = UnixStream::connect(p).map_err(|e| Error::io(p, e))?;
        return Ok(Some(Console {
            send: s.into(),
            recv: None,
        }));
    }
    if !foreground {
        return Err(Error::Unsupported {
            field: "process.terminal".into(),
            message: "cannot allocate tty if rrc will detach without setting console socket \
                      (pass --console-socket, or set process.terminal to false)"
                .into(),
        });
    }
    let (a, b) = UnixStream::pair().map_err(|e| Error::Sys {
        call: "socketpair for the terminal".into(),
        source: e,
    })?;
    Ok(Some(Console {
        send: b.into(),
        recv: Some(a.into()),
    }))
}

fn ioctl_err(what: &str) -> Error {
    Error::last_os(format!("terminal: {what}"))
}

/// Container side, run as root in the container after its root is set up
/// (so that /dev/ptmx is the container's devpts): makes a pty pair, sends
/// the master on `sock`, and makes the slave the controlling terminal and
/// stdin, stdout and stderr of the calling process (a session leader).
pub(crate) fn setup_console(
    sock: RawFd,
    size: Option<(u32, u32)>,
    owner: Option<u32>,
) -> Result<()> {
    let (master, name) = open_master()?;
    let m = master.as_raw_fd();
    let slave = open_slave(m, &name)?;
    if let Some((rows, cols)) = size {
        set_size(m, rows, cols)?;
    }
    // The slave goes to the process's user; its group stays the one devpts
    // gave it (the tty group with the usual `gid=5` mount option), as runc
    // leaves it.
    if let Some(uid) = owner.filter(|u| *u != 0) {
        // SAFETY: fchown on our own fd; -1 keeps the group.
        if unsafe { libc::fchown(slave.as_raw_fd(), uid, libc::gid_t::MAX) } != 0 {
            return Err(ioctl_err(&format!("chown {name} to uid {uid}")));
        }
    }
    send_master(sock, m, &name)?;
    // The receiver holds its own copy now; ours must not keep the pty open.
    drop(master);
    make_stdio(slave, &name)
}

/// Opens /dev/ptmx, unlocks its slave and returns the master with the
/// slave's path.
fn open_master() -> Result<(OwnedFd, String)> {
    // SAFETY: a constant path; the fd is owned below.
    let m = unsafe {
        libc::open(
            c"/dev/ptmx".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if m < 0 {
        return Err(ioctl_err("open /dev/ptmx"));
    }
    // SAFETY: m was just opened and is owned here.
    let master = unsafe { OwnedFd::from_raw_fd(m) };
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int.
    if unsafe { libc::ioctl(m, libc::TIOCSPTLCK, &unlock) } != 0 {
        return Err(ioctl_err("unlock the pty"));
    }
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int.
    if unsafe { libc::ioctl(m, libc::TIOCGPTN, &mut n) } != 0 {
        return Err(ioctl_err("pty number"));
    }
    Ok((master, format!("/dev/pts/{n}")))
}

/// TIOCGPTPEER opens the slave through the master, so no path lookup can
/// be redirected to another file.
fn open_slave(m: RawFd, name: &str) -> Result<OwnedFd> {
    // SAFETY: TIOCGPTPEER takes open flags and returns a new fd.
    let s = unsafe {
        libc::ioctl(
            m,
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if s < 0 {
        return Err(ioctl_err(&format!("open the slave {name}")));
    }
    // SAFETY: s was just opened and is owned here.
    Ok(unsafe { OwnedFd::from_raw_fd(s) })
}

/// Sets the window size before the process starts, so its first read of
/// it is already right.
fn set_size(m: RawFd, rows: u32, cols: u32) -> Result<()> {
    let ws = libc::winsize {
        ws_row: rows.min(u16::MAX as u32) as u16,
        ws_col: cols.min(u16::MAX as u32) as u16,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize.
    if unsafe { libc::ioctl(m, libc::TIOCSWINSZ, &ws) } != 0 {
        return Err(ioctl_err("set the console size"));
    }
    Ok(())
}

/// One message: the master as SCM_RIGHTS, the slave's path as the data
/// (what containerd and podman read).
fn send_master(sock: RawFd, m: RawFd, name: &str) -> Result<()> {
    let fds = [m];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(name.as_bytes())];
    sendmsg::<()>(sock, &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None).map_err(|e| Error::Sys {
        call: "sending the terminal master on the console socket".into(),
        source: e.into(),
    })?;
    Ok(())
}

/// Makes the slave the controlling terminal and fds 0, 1 and 2.
fn make_stdio(slave: OwnedFd, name: &str) -> Result<()> {
    let s = slave.as_raw_fd();
    // SAFETY: TIOCSCTTY with 0: take the terminal only if it has no session.
    if unsafe { libc::ioctl(s, libc::TIOCSCTTY, 0) } != 0 {
        return Err(ioctl_err(&format!("make {name} the controlling terminal")));
    }
    for fd in 0..3 {
        // SAFETY: dup2 onto the stdio slots.
        if unsafe { libc::dup2(s, fd) } < 0 {
            return Err(ioctl_err(&format!("dup {name} onto fd {fd}")));
        }
    }
    drop(slave);
    Ok(())
}

/// Receives the master of a terminal sent by [`setup_console`].
pub(crate) fn recv_master(sock: &OwnedFd) -> Result<OwnedFd> {
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    // Room for as many descriptors as one message can carry (SCM_MAX_FD):
    // with less the kernel truncates, nix then refuses to list any of them,
    // and those that did arrive would stay open in rrc, unowned. Found by
    // the console_socket fuzz corpus (three-fds).
    let mut space = nix::cmsg_space!([RawFd; 253]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| Error::Sys {
        call: "receiving the terminal master".into(),
        source: e.into(),
    })?;
    let mut got = None;
    for c in msg.cmsgs().map_err(|e| Error::Sys {
        call: "reading the terminal master message".into(),
        source: e.into(),
    })? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for fd in fds {
                // SAFETY: the kernel just gave us this fd.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                got.get_or_insert(owned);
            }
        }
    }
    got.ok_or_else(|| Error::Init("the container sent no terminal master".into()))
}

/// Puts the terminal on fd 0 in raw mode while alive, when it is one.
struct RawMode(Option<libc::termios>);

impl RawMode {
    fn new() -> RawMode {
        // SAFETY: isatty on fd 0.
        if unsafe { libc::isatty(0) } != 1 {
            return RawMode(None);
        }
        // SAFETY: zeroed termios is a valid out-parameter.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointer.
        if unsafe { libc::tcgetattr(0, &mut t) } != 0 {
            return RawMode(None);
        }
        let old = t;
        // SAFETY: valid pointer.
        unsafe { libc::cfmakeraw(&mut t) };
        // SAFETY: valid pointer.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) };
        RawMode(Some(old))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            // SAFETY: valid pointer.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, t) };
        }
    }
}

fn copy_winsize(master: RawFd) {
    // SAFETY: zeroed winsize is a valid out-parameter.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize; TIOCSWINSZ reads it.
    unsafe {
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(master, libc::TIOCSWINSZ, &ws);
        }
    }
}

fn write_all(fd: RawFd, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        // SAFETY: data is valid for its length.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return false;
        }
        data = &data[n as usize..];
    }
    true
}

/// Reads what is there; `None` at end of file or on an error (a pty master
/// reads EIO once every slave is closed).
fn read_some(fd: RawFd, buf: &mut [u8]) -> Option<usize> {
    loop {
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            return Some(n as usize);
        }
        if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return None;
    }
}

/// Foreground side: copies our stdin to the master and the master to our
/// stdout, passes our window size on (now and on SIGWINCH), forwards the
/// other signals to `pid`, and returns its exit code once it exits.
pub(crate) fn proxy_and_wait(fw: &Forwarder, pid: i32, master: OwnedFd) -> i32 {
    let sigfd = match fw.signal_fd() {
        Ok(f) => f,
        // Without a signalfd the terminal is still drained by the child's
        // output reaching nobody; waiting is what matters.
        Err(_) => return fw.wait_forwarding(pid),
    };
    let _raw = RawMode::new();
    let m = master.as_raw_fd();
    copy_winsize(m);
    let mut stdin_open = true;
    let mut master_open = true;
    let mut buf = vec![0u8; 16 * 1024];
    let code = loop {
        if let Some(code) = crate::forward::reap(pid) {
            break code;
        }
        let mut pfds = poll_set(sigfd.as_raw_fd(), m, master_open, stdin_open);
        // SAFETY: pfds is a valid array of its length.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, -1) };
        if n < 0 {
            continue;
        }
        for p in &pfds {
            if p.revents == 0 {
                continue;
            }
            if p.fd == sigfd.as_raw_fd() {
                on_signal(sigfd.as_raw_fd(), m, pid);
            } else if p.fd == m {
                master_open = copy_once(m, 1, &mut buf);
            } else if p.fd == 0 {
                stdin_open = copy_once(0, m, &mut buf);
            }
        }
    };
    // What the process wrote just before exiting is still in the pty.
    if master_open {
        drain_master(m, &mut buf);
    }
    fw.restore();
    code
}

/// The fds to wait on: signals always, the master and our stdin while
/// they have not reached their end.
fn poll_set(sigfd: RawFd, m: RawFd, master_open: bool, stdin_open: bool) -> Vec<libc::pollfd> {
    let mut pfds = vec![libc::pollfd {
        fd: sigfd,
        events: libc::POLLIN,
        revents: 0,
    }];
    if master_open {
        pfds.push(libc::pollfd {
            fd: m,
            events: libc::POLLIN,
            revents: 0,
        });
    }
    if stdin_open {
        pfds.push(libc::pollfd {
            fd: 0,
            events: libc::POLLIN,
            revents: 0,
        });
    }
    pfds
}

/// Reads one signal: SIGWINCH resizes the pty, SIGCHLD only wakes the
/// loop to reap, anything else goes on to the process.
fn on_signal(sigfd: RawFd, m: RawFd, pid: i32) {
    // SAFETY: zeroed signalfd_siginfo is a valid buffer.
    let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: reads at most one siginfo into info.
    let r = unsafe {
        libc::read(
            sigfd,
            (&mut info as *mut libc::signalfd_siginfo).cast(),
            size,
        )
    };
    if r as usize == size {
        let sig = info.ssi_signo as libc::c_int;
        if sig == libc::SIGWINCH {
            copy_winsize(m);
        } else if sig != libc::SIGCHLD {
            // SAFETY: kill with plain integers.
            unsafe { libc::kill(pid, sig) };
        }
    }
}

/// Copies one read from `from` to `to`; false once `from` has ended.
fn copy_once(from: RawFd, to: RawFd, buf: &mut [u8]) -> bool {
    match read_some(from, buf) {
        Some(k) => {
            write_all(to, &buf[..k]);
            true
        }
        None => false,
    }
}

/// Copies to our stdout what is left in the master without blocking.
fn drain_master(m: RawFd, buf: &mut [u8]) {
    // SAFETY: plain fcntl on our fd.
    unsafe { libc::fcntl(m, libc::F_SETFL, libc::O_NONBLOCK) };
    while let Some(k) = read_some(m, buf) {
        write_all(1, &buf[..k]);
    }
}
