//! Making the rootfs the container's root: pivot_root, or with a shared
//! mount namespace a move of the rootfs onto / (hiding the host's /proc
//! and /sys under it first), or with `--no-pivot` a chroot.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::sys;

pub(super) fn pivot_root(rootfs: &Path) -> Result<()> {
    let old = open_dir(Path::new("/"))?;
    let new = open_dir(rootfs)?;
    // SAFETY: new is an open directory.
    if unsafe { libc::fchdir(new.0) } != 0 {
        return Err(Error::last_os(format!("chdir {}", rootfs.display())));
    }
    let dot = sys::cstr(".")?;
    // pivot_root(".", ".") stacks the old root on top of the new one, so no
    // directory for it is needed inside the rootfs.
    // SAFETY: valid C strings.
    if unsafe { libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) } != 0 {
        return Err(Error::last_os(format!("pivot_root {}", rootfs.display())));
    }
    // SAFETY: old is an open directory.
    if unsafe { libc::fchdir(old.0) } != 0 {
        return Err(Error::last_os("chdir to the old root"));
    }
    // Keep the unmount of the old root from reaching the host.
    sys::mount(
        None,
        Path::new("."),
        None,
        libc::MS_SLAVE | libc::MS_REC,
        None,
        "old root as rslave",
    )?;
    sys::umount2(Path::new("."), libc::MNT_DETACH)?;
    // SAFETY: new is an open directory.
    if unsafe { libc::fchdir(new.0) } != 0 {
        return Err(Error::last_os("chdir to the new root"));
    }
    sys::chdir(Path::new("/"))
}

pub(super) fn move_root(rootfs: &Path) -> Result<()> {
    hide_host_proc_and_sys(rootfs)?;
    sys::chdir(rootfs)?;
    sys::mount(
        Some(rootfs),
        Path::new("/"),
        None,
        libc::MS_MOVE,
        None,
        "rootfs onto / (--no-pivot)",
    )?;
    let dot = sys::cstr(".")?;
    // SAFETY: valid C string.
    if unsafe { libc::chroot(dot.as_ptr()) } != 0 {
        return Err(Error::last_os("chroot (--no-pivot)"));
    }
    sys::chdir(Path::new("/"))
}

/// Full procfs and sysfs mounts of the host, outside `rootfs`, in this
/// mount namespace.
fn host_proc_and_sys(rootfs: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let mut f = left.split(' ');
            let root = f.nth(3)?;
            let mp = PathBuf::from(crate::sys::unescape(f.next()?));
            let fstype = right.split(' ').next()?;
            (root == "/" && matches!(fstype, "proc" | "sysfs") && !mp.starts_with(rootfs))
                .then_some(mp)
        })
        .collect()
}

/// With --no-pivot the host's mounts stay in the container's mount
/// namespace, only out of sight of its chroot. The kernel lets a new user
/// namespace mount a fresh procfs or sysfs wherever a full one is already
/// in the namespace, so a container could get an unmasked /proc. Those
/// mounts are detached first (covered with a tmpfs where that is refused),
/// as runc does.
fn hide_host_proc_and_sys(rootfs: &Path) -> Result<()> {
    for p in host_proc_and_sys(rootfs) {
        let what = format!("host {} (--no-pivot)", p.display());
        // The detach must not propagate to the host.
        match sys::mount(None, &p, None, libc::MS_SLAVE | libc::MS_REC, None, &what) {
            Ok(()) => {}
            // Already gone with a parent detached before it.
            Err(Error::Sys { ref source, .. }) if source.raw_os_error() == Some(libc::ENOENT) => {
                continue
            }
            Err(e) => return Err(e),
        }
        match sys::umount2(&p, libc::MNT_DETACH) {
            Ok(()) => {}
            Err(Error::Sys { ref source, .. })
                if matches!(
                    source.raw_os_error(),
                    Some(libc::EINVAL) | Some(libc::EPERM)
                ) =>
            {
                sys::mount(Some(Path::new("tmpfs")), &p, Some("tmpfs"), 0, None, &what)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub(super) fn chroot_into(rootfs: &Path) -> Result<()> {
    sys::chdir(rootfs)?;
    // SAFETY: a valid C string.
    if unsafe { libc::chroot(c".".as_ptr()) } != 0 {
        return Err(Error::last_os(format!("chroot {}", rootfs.display())));
    }
    sys::chdir(Path::new("/"))
}

struct Fd(libc::c_int);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: the fd is owned by this guard.
        unsafe { libc::close(self.0) };
    }
}

fn open_dir(p: &Path) -> Result<Fd> {
    let c = sys::cpath(p)?;
    // SAFETY: c is a valid path.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_DIRECTORY | libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(Error::last_os(format!("open {}", p.display())));
    }
    Ok(Fd(fd))
}
