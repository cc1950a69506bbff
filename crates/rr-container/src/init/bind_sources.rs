//! Bind sources opened by the runtime for an init in a new user namespace.
//!
//! Inside its user namespace the init is root only over what the mapping
//! gives it: a source under a host directory it cannot search (0700 and
//! owned by the host's root) is out of its reach, while the runtime can
//! reach it. So the runtime opens each source (O_PATH) before the init
//! builds its rootfs, through /proc/<init>/root so that the fd is a mount
//! of the init's own mount namespace (a bind must come from there; the
//! copy keeps the locks the kernel put on the host's flags), and the init
//! binds /proc/self/fd/<n>, as runc opens the sources before the user
//! namespace is joined.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use oci_spec::runtime::Spec;

use crate::error::{Error, Result};

/// Runtime -> init: one source (index u32 LE, is_dir u8, detached u8) and
/// its fd.
const SOURCE: u8 = 0x20;
/// Runtime -> init: no more sources.
const DONE: u8 = 0x21;

/// One bind source, opened O_PATH in the init's mount namespace.
pub struct BindSource {
    /// Index of the mount in `mounts`.
    pub index: usize,
    /// The O_PATH fd (close-on-exec).
    pub fd: OwnedFd,
    /// Whether the source is a directory.
    pub is_dir: bool,
    /// The fd is a detached mount tree (an idmapped clone, see
    /// `idmapped`), attached with move_mount rather than bound.
    pub detached: bool,
}

/// Runtime side: opens every bind source of `spec` as the init `init`
/// sees it. The init must not have changed its mounts yet.
pub fn open_all(spec: &Spec, bundle: &Path, config: &Path, init: i32) -> Result<Vec<BindSource>> {
    let root = std::path::PathBuf::from(format!("/proc/{init}/root"));
    let mut out = Vec::new();
    // Rootless, rrc may not look into the init's root (it has no ptrace
    // rights over it); it then reaches no more than the init itself does,
    // which binds by path.
    if let Err(e) = std::fs::read_dir(&root) {
        if matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM)) {
            return Ok(out);
        }
        return Err(Error::io(root, e));
    }
    for (index, m) in spec.mounts().iter().flatten().enumerate() {
        if !crate::init::mount_opts::is_bind(m) || crate::init::mount_opts::is_idmapped(m) {
            continue;
        }
        let Some(src) = m.source().as_ref() else {
            continue;
        };
        let src = if src.is_absolute() {
            src.clone()
        } else {
            bundle.join(src)
        };
        let refuse = |e: std::io::Error| Error::ConfigInvalid {
            path: config.to_path_buf(),
            field: format!("mounts[{index}].source"),
            message: format!("{}: {e}", src.display()),
        };
        // Resolved here: an absolute symlink met below /proc/<pid>/root
        // would lead back to rrc's own root, out of the init's namespace.
        // The init's mount table is a copy of this one, so the path holds.
        let real = std::fs::canonicalize(&src).map_err(refuse)?;
        let inside = root.join(real.strip_prefix("/").unwrap_or(&real));
        let c = crate::sys::cpath(&inside)?;
        // SAFETY: c is a valid C string.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(refuse(std::io::Error::last_os_error()));
        }
        // SAFETY: open returned a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let is_dir = std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .map_err(refuse)?
            .is_dir();
        out.push(BindSource {
            index,
            fd,
            is_dir,
            detached: false,
        });
    }
    Ok(out)
}

fn io_err(call: &str, e: impl Into<std::io::Error>) -> Error {
    Error::Sys {
        call: call.into(),
        source: e.into(),
    }
}

/// Runtime side: hands the sources to the init.
pub fn send(sock: RawFd, sources: &[BindSource]) -> Result<()> {
    for s in sources {
        let idx = u32::try_from(s.index).unwrap_or(u32::MAX).to_le_bytes();
        let payload = [
            SOURCE,
            idx[0],
            idx[1],
            idx[2],
            idx[3],
            u8::from(s.is_dir),
            u8::from(s.detached),
        ];
        let fds = [s.fd.as_raw_fd()];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        sendmsg::<()>(
            sock,
            &[IoSlice::new(&payload)],
            &cmsg,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(|e| io_err("sending a bind source to the init", e))?;
    }
    rr_nsenter::bootstrap::send_packet(sock, &[DONE])
        .map_err(|e| io_err("sending the bind sources to the init", e))
}

/// Init side: receives what [`send`] sent.
pub fn recv(sock: RawFd) -> Result<Vec<BindSource>> {
    let mut out = Vec::new();
    loop {
        let mut buf = [0u8; 16];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([RawFd; 253]);
        let msg = recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
            .map_err(|e| io_err("receiving the bind sources", e))?;
        let n = msg.bytes;
        let mut fd = None;
        for c in msg
            .cmsgs()
            .map_err(|e| io_err("reading a bind source message", e))?
        {
            if let ControlMessageOwned::ScmRights(fds) = c {
                for f in fds {
                    // SAFETY: the kernel just gave us this fd.
                    let owned = unsafe { OwnedFd::from_raw_fd(f) };
                    fd.get_or_insert(owned);
                }
            }
        }
        match (&buf[..n], fd) {
            ([DONE], None) => return Ok(out),
            ([SOURCE, a, b, c, d, dir, detached], Some(fd)) => out.push(BindSource {
                index: u32::from_le_bytes([*a, *b, *c, *d]) as usize,
                fd,
                is_dir: *dir != 0,
                detached: *detached != 0,
            }),
            _ => {
                return Err(Error::Init(
                    "unexpected message while receiving the bind sources".into(),
                ))
            }
        }
    }
}

/// Init side: binds `src` at `dest` (recursively for `rbind`), or moves
/// it there when it is a detached tree.
pub fn attach(src: &BindSource, dest: &Path, recursive: bool, what: &str) -> Result<()> {
    if src.detached {
        return crate::sys::move_into_place(src.fd.as_raw_fd(), dest, what);
    }
    let path = format!("/proc/self/fd/{}", src.fd.as_raw_fd());
    let rec = if recursive { libc::MS_REC } else { 0 };
    crate::sys::mount(
        Some(Path::new(&path)),
        dest,
        None,
        libc::MS_BIND | rec,
        None,
        what,
    )
}
