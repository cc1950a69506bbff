//! Idmapped bind mounts (runtime-spec 1.2): `mounts[].uidMappings` and
//! `gidMappings`, and the `idmap` / `ridmap` options.
//!
//! Only a process with CAP_SYS_ADMIN over the filesystem's owner (the
//! host's user namespace for a disk filesystem) may idmap a mount, so the
//! runtime does it, not the init: it clones the source's mount tree inside
//! the init's mount namespace (open_tree with OPEN_TREE_CLONE, from a
//! helper that joined that namespace, so that the clone keeps the locks the
//! kernel put on the host's mount flags), idmaps the clone with
//! mount_setattr(MOUNT_ATTR_IDMAP) against a user namespace holding the
//! mapping (the container's own when the mapping is the container's), and
//! hands the detached tree to the init, which moves it into place.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Mount, Spec};

use crate::error::{Error, Result};
use crate::init::bind_sources::BindSource;
use crate::init::mount_opts::is_idmapped;

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// The kernel's `struct mount_attr` (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// The field an error about mount `index` names.
fn field(index: usize, m: &Mount) -> String {
    if m.uid_mappings().as_ref().is_some_and(|v| !v.is_empty()) {
        format!("mounts[{index}].uidMappings")
    } else if m.gid_mappings().as_ref().is_some_and(|v| !v.is_empty()) {
        format!("mounts[{index}].gidMappings")
    } else {
        format!("mounts[{index}].options")
    }
}

/// Checks the idmapped mounts of `spec` before anything is made.
pub fn check(spec: &Spec, config: &Path) -> Result<()> {
    let new_ns = |t: LinuxNamespaceType| {
        spec.linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|v| v.iter().any(|n| n.typ() == t && n.path().is_none()))
    };
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if !is_idmapped(m) {
            continue;
        }
        let refuse = |message: String| Error::ConfigInvalid {
            path: config.to_path_buf(),
            field: field(i, m),
            message,
        };
        let dest = m.destination().display();
        if !crate::init::mount_opts::is_bind(m) {
            return Err(refuse(format!(
                "mount on {dest}: only a bind mount can be idmapped"
            )));
        }
        if !new_ns(LinuxNamespaceType::User) || !new_ns(LinuxNamespaceType::Mount) {
            return Err(refuse(format!(
                "idmapped mount on {dest}: needs new user and mount namespaces (linux.namespaces)"
            )));
        }
        let uid = m.uid_mappings().as_ref().is_some_and(|v| !v.is_empty());
        let gid = m.gid_mappings().as_ref().is_some_and(|v| !v.is_empty());
        if uid != gid {
            return Err(refuse(format!(
                "idmapped mount on {dest}: uidMappings and gidMappings go together"
            )));
        }
        for (name, maps) in [
            ("uidMappings", m.uid_mappings()),
            ("gidMappings", m.gid_mappings()),
        ] {
            if maps.iter().flatten().any(|x| x.size() == 0) {
                return Err(Error::ConfigInvalid {
                    path: config.to_path_buf(),
                    field: format!("mounts[{i}].{name}"),
                    message: "a mapping of size 0".into(),
                });
            }
        }
        if crate::sys::rootless() {
            return Err(Error::Unsupported {
                field: field(i, m),
                message: format!(
                    "idmapped mount on {dest}: only root may idmap a mount (rrc runs rootless)"
                ),
            });
        }
    }
    Ok(())
}

/// Runtime side: makes the idmapped trees of `spec` for the init `init`,
/// which must not have changed its mounts yet.
pub fn make_all(spec: &Spec, bundle: &Path, config: &Path, init: i32) -> Result<Vec<BindSource>> {
    let linux = spec.linux().as_ref();
    let own_uid = linux
        .and_then(|l| l.uid_mappings().clone())
        .unwrap_or_default();
    let own_gid = linux
        .and_then(|l| l.gid_mappings().clone())
        .unwrap_or_default();
    let mut out = Vec::new();
    for (index, m) in spec.mounts().iter().flatten().enumerate() {
        if !is_idmapped(m) {
            continue;
        }
        let refuse = |message: String| Error::ConfigInvalid {
            path: config.to_path_buf(),
            field: field(index, m),
            message: format!("idmapped mount on {}: {message}", m.destination().display()),
        };
        let src = m.source().clone().unwrap_or_default();
        let src = if src.is_absolute() {
            src
        } else {
            bundle.join(src)
        };
        let real = std::fs::canonicalize(&src).map_err(|e| Error::ConfigInvalid {
            path: config.to_path_buf(),
            field: format!("mounts[{index}].source"),
            message: format!("{}: {e}", src.display()),
        })?;
        let opts = crate::init::mount_opts::parse(m.options().as_deref().unwrap_or(&[]), true)
            .map_err(refuse)?;
        let uid = m.uid_mappings().clone().filter(|v| !v.is_empty());
        let gid = m.gid_mappings().clone().filter(|v| !v.is_empty());
        let (uid, gid) = (
            uid.unwrap_or_else(|| own_uid.clone()),
            gid.unwrap_or_else(|| own_gid.clone()),
        );
        let userns = if uid == own_uid && gid == own_gid {
            let p = format!("/proc/{init}/ns/user");
            open(Path::new(&p), libc::O_RDONLY)?
        } else {
            mapping_userns(&uid, &gid)?
        };
        let tree = Tree {
            source: real,
            recursive: opts.flags & libc::MS_REC != 0,
            idmap_all: opts.idmap == Some(true),
        };
        let fd = clone_idmapped(init, &tree, userns.as_raw_fd()).map_err(refuse)?;
        let is_dir = std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .map_err(|e| refuse(e.to_string()))?
            .is_dir();
        out.push(BindSource {
            index,
            fd,
            is_dir,
            detached: true,
        });
    }
    Ok(out)
}

fn open(p: &Path, flags: libc::c_int) -> Result<OwnedFd> {
    let c = crate::sys::cpath(p)?;
    // SAFETY: c is a valid C string.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(Error::io(p, std::io::Error::last_os_error()));
    }
    // SAFETY: open returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A child forked by the runtime, killed and reaped when dropped.
struct Child(libc::pid_t);

impl Drop for Child {
    fn drop(&mut self) {
        // SAFETY: the pid is our own child, not yet reaped.
        unsafe {
            libc::kill(self.0, libc::SIGKILL);
            libc::waitpid(self.0, std::ptr::null_mut(), 0);
        }
    }
}

fn fork() -> Result<libc::pid_t> {
    // SAFETY: the runtime is single threaded; the child only makes system
    // calls and exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::last_os("fork"));
    }
    Ok(pid)
}

fn exit_child(code: i32) -> ! {
    // SAFETY: leaves the forked child without the parent's exit handlers.
    unsafe { libc::_exit(code) }
}

/// A user namespace holding `uid` and `gid` as its maps, for
/// MOUNT_ATTR_IDMAP: a child makes it and waits while the runtime writes
/// the maps and opens it.
fn mapping_userns(uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<OwnedFd> {
    let (parent, child) = crate::sync::seqpacket_pair()?;
    let pid = fork()?;
    if pid == 0 {
        drop(parent);
        // SAFETY: unshare takes flags only.
        let r = unsafe { libc::unshare(libc::CLONE_NEWUSER) };
        let errno = if r == 0 {
            0
        } else {
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
        };
        let _ = rr_nsenter::bootstrap::send_packet(child.as_raw_fd(), &errno.to_le_bytes());
        // Until the runtime closes its end.
        let _ = rr_nsenter::bootstrap::recv_packet(child.as_raw_fd());
        exit_child(0);
    }
    let guard = Child(pid);
    drop(child);
    let answer = rr_nsenter::bootstrap::recv_packet(parent.as_raw_fd())
        .map_err(|e| Error::Sys {
            call: "making the user namespace of an idmapped mount".into(),
            source: e,
        })?
        .unwrap_or_default();
    match <[u8; 4]>::try_from(answer.as_slice()) {
        Ok(b) if i32::from_le_bytes(b) == 0 => {}
        Ok(b) => {
            return Err(Error::Sys {
                call: "unshare(CLONE_NEWUSER) for an idmapped mount".into(),
                source: std::io::Error::from_raw_os_error(i32::from_le_bytes(b)),
            })
        }
        Err(_) => {
            return Err(Error::Init(
                "the helper making an idmapped mount's user namespace died".into(),
            ))
        }
    }
    for (file, maps) in [("uid_map", uid), ("gid_map", gid)] {
        let p = PathBuf::from(format!("/proc/{pid}/{file}"));
        let text: String = maps
            .iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect();
        std::fs::write(&p, text).map_err(|e| Error::io(&p, e))?;
    }
    let ns = open(Path::new(&format!("/proc/{pid}/ns/user")), libc::O_RDONLY)?;
    drop(parent);
    drop(guard);
    Ok(ns)
}

/// What to clone and how far to idmap it.
struct Tree {
    /// The source, a canonical host path (the init's mount table is a copy
    /// of rrc's, so it means the same there).
    source: PathBuf,
    /// `rbind`: the mounts below the source come along.
    recursive: bool,
    /// `ridmap`: every mount of the tree is idmapped, not only its top.
    idmap_all: bool,
}

/// The steps of the helper, for its error report.
const STEPS: &[&str] = &[
    "",
    "setns into the init's mount namespace",
    "open_tree(OPEN_TREE_CLONE)",
    "mount_setattr(MOUNT_ATTR_IDMAP)",
];

/// Clones and idmaps `tree` inside the mount namespace of `init` (in a
/// helper that joins it) and returns the detached tree. The error is the
/// reason, in words.
fn clone_idmapped(init: i32, tree: &Tree, userns: RawFd) -> std::result::Result<OwnedFd, String> {
    let mntns = open(Path::new(&format!("/proc/{init}/ns/mnt")), libc::O_RDONLY)
        .map_err(|e| e.to_string())?;
    let src = crate::sys::cpath(&tree.source).map_err(|e| e.to_string())?;
    let (parent, child) = crate::sync::seqpacket_pair().map_err(|e| e.to_string())?;
    let pid = fork().map_err(|e| e.to_string())?;
    if pid == 0 {
        drop(parent);
        let (step, fd) = match helper(mntns.as_raw_fd(), &src, tree, userns) {
            Ok(fd) => (0u8, Some(fd)),
            Err((step, errno)) => {
                let e = errno.to_le_bytes();
                let _ = rr_nsenter::bootstrap::send_packet(
                    child.as_raw_fd(),
                    &[step, e[0], e[1], e[2], e[3]],
                );
                (step, None)
            }
        };
        if let Some(fd) = fd {
            let fds = [fd.as_raw_fd()];
            let cmsg = [ControlMessage::ScmRights(&fds)];
            let _ = sendmsg::<()>(
                child.as_raw_fd(),
                &[IoSlice::new(&[0])],
                &cmsg,
                MsgFlags::MSG_NOSIGNAL,
                None,
            );
        }
        exit_child(i32::from(step));
    }
    let _guard = Child(pid);
    drop(child);
    let src = tree.source.display();
    let mut buf = [0u8; 8];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        parent.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| format!("receiving the idmapped clone of {src}: {e}"))?;
    let n = msg.bytes;
    let mut fd = None;
    for c in msg.cmsgs().map_err(|e| e.to_string())? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for f in fds {
                // SAFETY: the kernel just gave us this fd.
                let owned = unsafe { OwnedFd::from_raw_fd(f) };
                fd.get_or_insert(owned);
            }
        }
    }
    match (&buf[..n], fd) {
        ([0], Some(fd)) => Ok(fd),
        ([step, a, b, c, d], None) => {
            let errno = i32::from_le_bytes([*a, *b, *c, *d]);
            let call = STEPS.get(usize::from(*step)).copied().unwrap_or("?");
            Err(explain(call, errno, &src.to_string()))
        }
        _ => Err(format!("the helper cloning {src} died")),
    }
}

/// Why an idmapped mount failed, in words a user can act on.
fn explain(call: &str, errno: i32, src: &str) -> String {
    let e = std::io::Error::from_raw_os_error(errno);
    let why = match errno {
        libc::ENOSYS => "the kernel has no idmapped mounts (Linux 5.12 or later)",
        libc::EINVAL if call.starts_with("mount_setattr") => {
            "the filesystem does not support idmapped mounts"
        }
        libc::EINVAL if call.starts_with("open_tree") => {
            "the source has mounts below it that a non-recursive bind cannot leave out"
        }
        _ => "",
    };
    if why.is_empty() {
        format!("{src}: {call}: {e}")
    } else {
        format!("{src}: {why} ({call}: {e})")
    }
}

/// The helper's work, in the forked child: the failing step and errno.
fn helper(
    mntns: RawFd,
    src: &std::ffi::CStr,
    tree: &Tree,
    userns: RawFd,
) -> std::result::Result<OwnedFd, (u8, i32)> {
    let errno = || std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    // SAFETY: mntns is an open namespace fd.
    if unsafe { libc::setns(mntns, libc::CLONE_NEWNS) } != 0 {
        return Err((1, errno()));
    }
    let rec = if tree.recursive {
        libc::AT_RECURSIVE as libc::c_uint
    } else {
        0
    };
    // SAFETY: src is a valid C string; open_tree takes integers otherwise.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            src.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | rec,
        )
    };
    if fd < 0 {
        return Err((2, errno()));
    }
    // SAFETY: open_tree returned a new fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    set_idmap(fd.as_raw_fd(), userns, tree.idmap_all).map_err(|e| (3, e))?;
    Ok(fd)
}

/// mount_setattr(MOUNT_ATTR_IDMAP) on the detached tree `fd`; the errno on
/// failure.
fn set_idmap(fd: RawFd, userns: RawFd, all: bool) -> std::result::Result<(), i32> {
    let ma = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns as u64,
    };
    let flags = libc::AT_EMPTY_PATH as libc::c_uint
        | if all {
            libc::AT_RECURSIVE as libc::c_uint
        } else {
            0
        };
    // SAFETY: "" is a valid C string and ma a valid mount_attr of the size
    // passed; the kernel only reads it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd,
            c"".as_ptr(),
            flags,
            &ma as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    Ok(())
}

/// Whether idmapped mounts work here, for `rrc features`: as root, a
/// clone of / idmapped against a user namespace made for the probe.
pub fn supported() -> bool {
    if crate::sys::rootless() {
        return false;
    }
    let map = |id| {
        serde_json::from_value::<LinuxIdMapping>(
            serde_json::json!({"containerID": 0, "hostID": id, "size": 1}),
        )
    };
    let (Ok(u), Ok(g)) = (map(65534), map(65534)) else {
        return false;
    };
    let Ok(userns) = mapping_userns(&[u], &[g]) else {
        return false;
    };
    // SAFETY: a valid C string; open_tree takes integers otherwise.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c"/".as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if fd < 0 {
        return false;
    }
    // SAFETY: open_tree returned a new fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    set_idmap(fd.as_raw_fd(), userns.as_raw_fd(), false).is_ok()
}
