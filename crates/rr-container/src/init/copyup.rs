//! `tmpcopyup`: a tmpfs mounted over a rootfs directory starts with a copy
//! of what that directory held, so `podman run --read-only` keeps the
//! image's /run, /tmp and /var/tmp contents while making them writable.
//!
//! The directory is opened before the tmpfs covers it; its contents stay
//! reachable through `/proc/self/fd/N`, which names the covered directory,
//! not the mount on top of it.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The covered directory, held open across the mount.
pub(crate) struct Lower {
    dir: std::fs::File,
}

impl Lower {
    /// Opens `dest` before something is mounted on it; `None` when it does
    /// not exist (nothing to copy then).
    pub(crate) fn open(dest: &Path) -> Result<Option<Lower>> {
        match std::fs::File::open(dest) {
            Ok(dir) => Ok(Some(Lower { dir })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(dest, e)),
        }
    }

    /// Copies the covered directory's tree into `dest` (the new mount).
    pub(crate) fn copy_into(&self, dest: &Path) -> Result<()> {
        use std::os::fd::AsRawFd;
        let from = PathBuf::from(format!("/proc/self/fd/{}", self.dir.as_raw_fd()));
        let meta = std::fs::metadata(&from).map_err(|e| io(&from, e))?;
        // The tmpfs root takes the covered directory's mode and owner.
        set_owner_mode(dest, &meta, false)?;
        copy_tree(&from, dest)
    }
}

fn io(p: &Path, e: std::io::Error) -> Error {
    Error::io(format!("tmpcopyup: {}", p.display()), e)
}

fn set_owner_mode(p: &Path, meta: &std::fs::Metadata, symlink: bool) -> Result<()> {
    if symlink {
        std::os::unix::fs::lchown(p, Some(meta.uid()), Some(meta.gid())).map_err(|e| io(p, e))
    } else {
        std::os::unix::fs::chown(p, Some(meta.uid()), Some(meta.gid())).map_err(|e| io(p, e))?;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(|e| io(p, e))
    }
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from).map_err(|e| io(from, e))? {
        let entry = entry.map_err(|e| io(from, e))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&src).map_err(|e| io(&src, e))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&dst).map_err(|e| io(&dst, e))?;
            copy_tree(&src, &dst)?;
            set_owner_mode(&dst, &meta, false)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&src).map_err(|e| io(&src, e))?;
            std::os::unix::fs::symlink(&target, &dst).map_err(|e| io(&dst, e))?;
            set_owner_mode(&dst, &meta, true)?;
        } else if ft.is_file() {
            std::fs::copy(&src, &dst).map_err(|e| io(&dst, e))?;
            set_owner_mode(&dst, &meta, false)?;
        } else if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
            let c = crate::sys::cpath(&dst)?;
            // SAFETY: c is a valid path; mode and rdev come from the original node.
            let r = unsafe { libc::mknod(c.as_ptr(), meta.mode(), meta.rdev()) };
            if r != 0 {
                return Err(io(&dst, std::io::Error::last_os_error()));
            }
            set_owner_mode(&dst, &meta, false)?;
        }
        // Sockets are bound to a listener and mean nothing copied: skipped.
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_files_dirs_links_and_modes() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a");
        std::fs::create_dir_all(a.join("sub")).unwrap();
        std::fs::write(a.join("sub/f"), b"data").unwrap();
        std::fs::set_permissions(a.join("sub/f"), std::fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::symlink("sub/f", a.join("l")).unwrap();
        let lower = Lower::open(&a).unwrap().unwrap();
        let b = t.path().join("b");
        std::fs::create_dir(&b).unwrap();
        lower.copy_into(&b).unwrap();
        assert_eq!(std::fs::read(b.join("sub/f")).unwrap(), b"data");
        assert_eq!(
            std::fs::metadata(b.join("sub/f")).unwrap().mode() & 0o777,
            0o640
        );
        assert_eq!(std::fs::read_link(b.join("l")).unwrap(), Path::new("sub/f"));
        assert!(Lower::open(&t.path().join("none")).unwrap().is_none());
    }
}
