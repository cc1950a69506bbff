//! Resolving a path inside a container's rootfs the way the container would
//! see it: symlinks are followed, but `..` and absolute link targets never
//! leave the rootfs (the CVE-2021-30465 class of escapes).

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// Symlinks followed before giving up (the kernel's own limit is 40).
const MAX_LINKS: usize = 40;

/// Resolves `unsafe_path` (taken as relative to `root` even when absolute)
/// to a host path that is guaranteed to be under `root`. Components that do
/// not exist yet are appended as they are.
pub fn resolve_in_root(root: &Path, unsafe_path: &Path) -> Result<PathBuf> {
    let mut pending: Vec<OsString> = components(unsafe_path);
    pending.reverse();
    let mut resolved: Vec<OsString> = Vec::new();
    let mut links = 0usize;
    while let Some(part) = pending.pop() {
        if part.as_bytes() == b".." {
            resolved.pop();
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&resolved);
        candidate.push(&part);
        match std::fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(Error::io(
                        candidate,
                        std::io::Error::from_raw_os_error(libc::ELOOP),
                    ));
                }
                let target =
                    std::fs::read_link(&candidate).map_err(|e| Error::io(&candidate, e))?;
                if target.is_absolute() {
                    resolved.clear();
                }
                let mut more = components(&target);
                more.reverse();
                pending.extend(more);
            }
            _ => resolved.push(part),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&resolved);
    Ok(out)
}

/// The first component of `path` (taken as relative to `root`) that is a
/// symlink, as a host path; `None` when no existing component is one.
/// procfs and sysfs must never land where a link points: the container
/// could aim that link at a place where a writable /proc or /sys lets it
/// reconfigure the host (the CVE-2019-16884 and CVE-2019-19921 class).
pub fn first_symlink(root: &Path, path: &Path) -> Option<PathBuf> {
    let mut cur = root.to_path_buf();
    for part in components(path) {
        if part.as_bytes() == b".." {
            cur.pop();
            continue;
        }
        cur.push(&part);
        match std::fs::symlink_metadata(&cur) {
            Ok(meta) if meta.file_type().is_symlink() => return Some(cur),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

fn components(p: &Path) -> Vec<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_stay_inside_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("real/dir")).expect("mkdir");
        symlink("/etc", root.join("abs")).expect("symlink");
        symlink("../../../../..", root.join("up")).expect("symlink");
        symlink("real/dir", root.join("rel")).expect("symlink");
        symlink("loop", root.join("loop")).expect("symlink");
        assert_eq!(
            resolve_in_root(root, Path::new("/abs/passwd")).expect("ok"),
            root.join("etc/passwd")
        );
        assert_eq!(
            resolve_in_root(root, Path::new("/up/etc")).expect("ok"),
            root.join("etc")
        );
        assert_eq!(
            resolve_in_root(root, Path::new("/rel/x")).expect("ok"),
            root.join("real/dir/x")
        );
        assert_eq!(
            resolve_in_root(root, Path::new("../../proc")).expect("ok"),
            root.join("proc")
        );
        assert!(resolve_in_root(root, Path::new("/loop")).is_err());
    }
}
