//! Thin wrappers over the system calls the init uses, turning errno into
//! [`Error`] values that name what was being done.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::{Error, Result};

/// Converts a path to a C string, refusing interior NULs.
pub fn cpath(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Error::Sys {
        call: format!("path {}", p.display()),
        source: std::io::Error::from_raw_os_error(libc::EINVAL),
    })
}

/// Converts a string to a C string, refusing interior NULs.
pub fn cstr(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::Sys {
        call: format!("string {s:?}"),
        source: std::io::Error::from_raw_os_error(libc::EINVAL),
    })
}

/// mount(2). `what` describes the mount for the error message.
pub fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
    what: &str,
) -> Result<()> {
    let src = source.map(cpath).transpose()?;
    let tgt = cpath(target)?;
    let fs = fstype.map(cstr).transpose()?;
    let dat = data.filter(|d| !d.is_empty()).map(cstr).transpose()?;
    // SAFETY: every pointer is a valid C string or NULL, as mount(2) allows.
    let r = unsafe {
        libc::mount(
            src.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            tgt.as_ptr(),
            fs.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            flags,
            dat.as_ref().map_or(std::ptr::null(), |s| s.as_ptr().cast()),
        )
    };
    if r != 0 {
        return Err(Error::last_os(format!("mount {what}")));
    }
    Ok(())
}

/// umount2(2).
pub fn umount2(target: &Path, flags: libc::c_int) -> Result<()> {
    let t = cpath(target)?;
    // SAFETY: t is a valid C string.
    if unsafe { libc::umount2(t.as_ptr(), flags) } != 0 {
        return Err(Error::last_os(format!("umount {}", target.display())));
    }
    Ok(())
}

/// chdir(2).
pub fn chdir(p: &Path) -> Result<()> {
    let c = cpath(p)?;
    // SAFETY: c is a valid C string.
    if unsafe { libc::chdir(c.as_ptr()) } != 0 {
        return Err(Error::last_os(format!("chdir {}", p.display())));
    }
    Ok(())
}

/// Creates a directory and its parents, with mode 0755.
pub fn mkdir_all(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).map_err(|e| Error::io(p, e))
}

/// Creates an empty regular file (and its parent directories) if nothing is there.
pub fn touch(p: &Path) -> Result<()> {
    if let Some(parent) = p.parent() {
        mkdir_all(parent)?;
    }
    match std::fs::symlink_metadata(p) {
        Ok(_) => Ok(()),
        Err(_) => std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(p)
            .map(drop)
            .map_err(|e| Error::io(p, e)),
    }
}

/// Whether rrc runs rootless: as a user other than root, or as root of a
/// user namespace (rootless podman runs its runtime so), where host
/// cgroups are not its own to make. runc decides the same way.
pub(crate) fn rootless() -> bool {
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    euid != 0 || rr_state::in_user_namespace()
}

const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x0000_0004;

/// Init side: moves the detached tree `fd` onto `dest`.
pub fn move_into_place(fd: RawFd, dest: &Path, what: &str) -> Result<()> {
    let c = crate::sys::cpath(dest)?;
    // SAFETY: c is a valid C string and "" a valid empty one; fd is ours.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            fd,
            c"".as_ptr(),
            libc::AT_FDCWD,
            c.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r != 0 {
        return Err(Error::last_os(format!("move_mount {what}")));
    }
    Ok(())
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
pub(crate) fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mountinfo_octal() {
        assert_eq!(unescape("/a\\040b\\134c"), "/a b\\c");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/trailing\\04"), "/trailing\\04");
    }
}
