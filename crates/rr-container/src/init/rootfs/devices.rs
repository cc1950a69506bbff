//! Device nodes in the container's /dev: the default ones and the spec's
//! `linux.devices`, made with mknod or, in a user namespace, bound from the
//! host; then the /dev links (fd, stdin, ptmx, ...).

use std::os::unix::fs::symlink;
use std::path::Path;

use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::context::RootfsContext;
use crate::error::{Error, Result};
use crate::init::secure_path::resolve_in_root;
use crate::sys;

/// Devices every container gets (path, major, minor), as the runtime spec lists.
pub(crate) const DEFAULT_DEVICES: &[(&str, i64, i64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

pub(super) fn create_devices(ctx: &RootfsContext, extra: Option<&Vec<LinuxDevice>>) -> Result<()> {
    // The spec's modes must be exact.
    // SAFETY: umask only changes this process's file creation mask.
    let old = unsafe { libc::umask(0) };
    let r = (|| {
        for (path, major, minor) in DEFAULT_DEVICES {
            if extra.is_some_and(|e| e.iter().any(|d| d.path() == Path::new(path))) {
                continue;
            }
            make_device(ctx, Path::new(path), 'c', *major, *minor, 0o666, 0, 0)?;
        }
        for d in extra.into_iter().flatten() {
            let kind = match d.typ() {
                LinuxDeviceType::C | LinuxDeviceType::U => 'c',
                LinuxDeviceType::B => 'b',
                LinuxDeviceType::P => 'p',
                LinuxDeviceType::A => {
                    return Err(Error::ConfigInvalid {
                        path: "config.json".into(),
                        field: "linux.devices".into(),
                        message: format!("{}: type \"a\" is not a device", d.path().display()),
                    })
                }
            };
            make_device(
                ctx,
                d.path(),
                kind,
                d.major(),
                d.minor(),
                d.file_mode().unwrap_or(0o666),
                d.uid().unwrap_or(0),
                d.gid().unwrap_or(0),
            )?;
        }
        Ok(())
    })();
    // SAFETY: restores the previous mask.
    unsafe { libc::umask(old) };
    r
}

#[allow(clippy::too_many_arguments)]
fn make_device(
    ctx: &RootfsContext,
    path: &Path,
    kind: char,
    major: i64,
    minor: i64,
    mode: u32,
    uid: u32,
    gid: u32,
) -> Result<()> {
    let dest = resolve_in_root(ctx.rootfs, path)?;
    if let Some(parent) = dest.parent() {
        sys::mkdir_all(parent)?;
    }
    if ctx.in_userns {
        sys::touch(&dest)?;
        return sys::mount(
            Some(path),
            &dest,
            None,
            libc::MS_BIND,
            None,
            &format!("device {}", path.display()),
        );
    }
    let _ = std::fs::remove_file(&dest);
    let type_bits = match kind {
        'b' => libc::S_IFBLK,
        'p' => libc::S_IFIFO,
        _ => libc::S_IFCHR,
    };
    let (Ok(maj), Ok(min)) = (u32::try_from(major), u32::try_from(minor)) else {
        return Err(Error::ConfigInvalid {
            path: "config.json".into(),
            field: "linux.devices".into(),
            message: format!("{}: bad major/minor {major}:{minor}", path.display()),
        });
    };
    let c = sys::cpath(&dest)?;
    // SAFETY: c is a valid path; mknod takes plain integers otherwise.
    if unsafe {
        libc::mknod(
            c.as_ptr(),
            type_bits | (mode & 0o7777),
            libc::makedev(maj, min),
        )
    } != 0
    {
        return Err(Error::last_os(format!("mknod {}", path.display())));
    }
    // SAFETY: c is a valid path.
    if unsafe { libc::lchown(c.as_ptr(), uid, gid) } != 0 {
        return Err(Error::last_os(format!("chown {}", path.display())));
    }
    Ok(())
}

pub(super) fn dev_links(rootfs: &Path) -> Result<()> {
    let dev = resolve_in_root(rootfs, Path::new("/dev"))?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    if dev.join("pts").is_dir() {
        links.push(("pts/ptmx", "ptmx"));
    }
    for (target, name) in links {
        let p = dev.join(name);
        if name == "ptmx" {
            let _ = std::fs::remove_file(&p);
        }
        match symlink(target, &p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(p, e)),
        }
    }
    Ok(())
}
