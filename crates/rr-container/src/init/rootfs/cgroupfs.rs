//! The spec's `cgroup` mounts: the container's own part of each host
//! hierarchy bound read-only (or a cgroup namespace's view), with the
//! host's links for co-mounted controllers; on pure v2 a fresh cgroup2
//! mount, or the host's tree bound where a user namespace refuses one.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use super::context::RootfsContext;
use crate::error::{Error, Result};
use crate::init::mount_opts::{self, locked_flags};
use crate::sys;

/// One cgroup hierarchy mounted on the host.
pub(crate) struct Hierarchy {
    pub(crate) mount_point: PathBuf,
    fstype: String,
    super_opts: String,
}

/// The cgroup hierarchies mounted on the host, as the mount table has
/// them: each mount point once, and only the mount visible there (a
/// private mount namespace may have covered the host's with its own).
pub(crate) fn host_cgroup_hierarchies() -> Vec<Hierarchy> {
    rr_cgroups::mounts::current()
        .unwrap_or_default()
        .into_iter()
        .map(|m| Hierarchy {
            mount_point: m.point,
            fstype: m.fstype,
            super_opts: m.super_opts,
        })
        .collect()
}

/// The path of this process's cgroup in hierarchy `h`, from the text of
/// /proc/self/cgroup (`id:controllers:path` lines; cgroup2 has no controllers).
fn own_cgroup<'a>(h: &Hierarchy, self_cgroups: &'a str) -> Option<&'a str> {
    let opts: Vec<&str> = h.super_opts.split(',').collect();
    self_cgroups.lines().find_map(|line| {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        let matches = if h.fstype == "cgroup2" {
            ctrls.is_empty()
        } else {
            !ctrls.is_empty() && ctrls.split(',').all(|c| opts.contains(&c))
        };
        matches.then_some(path)
    })
}

/// Gives the container a /sys/fs/cgroup shaped like the host's. Each
/// hierarchy is mounted fresh, so inside a cgroup namespace the container
/// sees its own cgroup as the root.
pub(super) fn mount_cgroups(
    ctx: &RootfsContext,
    dest: &Path,
    opts: &mount_opts::MountOptions,
    what: &str,
) -> Result<()> {
    let hierarchies = host_cgroup_hierarchies();
    let self_cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let flags = (opts.flags & !(libc::MS_RDONLY | libc::MS_REMOUNT))
        | libc::MS_NOSUID
        | libc::MS_NODEV
        | libc::MS_NOEXEC;
    let unified_root = hierarchies
        .iter()
        .any(|h| h.fstype == "cgroup2" && h.mount_point == Path::new("/sys/fs/cgroup"));
    if unified_root {
        return mount_unified(dest, opts, flags, what);
    }
    sys::mount(
        Some(Path::new("tmpfs")),
        dest,
        Some("tmpfs"),
        flags,
        Some("mode=755"),
        what,
    )?;
    for h in &hierarchies {
        let Ok(rel) = h.mount_point.strip_prefix("/sys/fs/cgroup") else {
            continue;
        };
        if rel.as_os_str().is_empty() {
            continue;
        }
        let target = dest.join(rel);
        sys::mkdir_all(&target)?;
        let name = format!("{what}: {}", rel.display());
        if ctx.cgroupns {
            mount_fresh_hierarchy(h, &target, opts, flags, &name)?;
        } else {
            bind_own_cgroup(h, &self_cgroups, &target, opts, &name)?;
        }
    }
    link_comounted(dest)?;
    if opts.flags & libc::MS_RDONLY != 0 {
        sys::mount(
            None,
            dest,
            None,
            libc::MS_REMOUNT | libc::MS_RDONLY | flags,
            Some("mode=755"),
            what,
        )?;
    }
    Ok(())
}

/// The host has only cgroup2 at /sys/fs/cgroup: one fresh mount, or the
/// host's tree where a new one is refused.
fn mount_unified(
    dest: &Path,
    opts: &mount_opts::MountOptions,
    flags: libc::c_ulong,
    what: &str,
) -> Result<()> {
    let fresh = sys::mount(
        Some(Path::new("cgroup2")),
        dest,
        Some("cgroup2"),
        flags | (opts.flags & libc::MS_RDONLY),
        None,
        what,
    );
    match fresh {
        // In a user namespace the kernel can refuse a new cgroup2
        // mount (EPERM, or EBUSY as seen in the e2e VM's rootless
        // run); runc then binds the host's tree, and so does rrc.
        Err(Error::Sys { source, .. })
            if matches!(source.raw_os_error(), Some(libc::EPERM | libc::EBUSY)) =>
        {
            bind_cgroup2_tree(dest, opts, flags, what)
        }
        other => other,
    }
}

/// In a cgroup namespace a fresh mount of the hierarchy shows the
/// container's own cgroup as its root.
fn mount_fresh_hierarchy(
    h: &Hierarchy,
    target: &Path,
    opts: &mount_opts::MountOptions,
    flags: libc::c_ulong,
    name: &str,
) -> Result<()> {
    let data: Vec<&str> = h
        .super_opts
        .split(',')
        .filter(|o| *o != "rw" && *o != "ro")
        .collect();
    sys::mount(
        Some(Path::new("cgroup")),
        target,
        Some(&h.fstype),
        flags | (opts.flags & libc::MS_RDONLY),
        Some(&data.join(",")),
        name,
    )
}

/// Without a cgroup namespace the container's view of each
/// hierarchy is its own cgroup, bound from the host's tree (the
/// init is already in it), so limits read inside are its own.
fn bind_own_cgroup(
    h: &Hierarchy,
    self_cgroups: &str,
    target: &Path,
    opts: &mount_opts::MountOptions,
    name: &str,
) -> Result<()> {
    let source = own_cgroup(h, self_cgroups)
        .map(|rel| h.mount_point.join(rel.trim_start_matches('/')))
        .filter(|p| p.is_dir())
        .unwrap_or_else(|| h.mount_point.clone());
    sys::mount(
        Some(&source),
        target,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
        name,
    )?;
    // A bind takes the flags of its source: the spec's (Docker asks
    // ro,nosuid,noexec,nodev) need a remount, as a fresh mount has.
    let bind_flags =
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | (opts.flags & BIND_REMOUNT_FLAGS);
    sys::mount(
        None,
        target,
        None,
        libc::MS_BIND | libc::MS_REMOUNT | bind_flags | locked_flags(target),
        None,
        name,
    )
}

/// Binds the host's cgroup2 tree at `dest`, with the flags a fresh mount
/// would have had.
fn bind_cgroup2_tree(
    dest: &Path,
    opts: &mount_opts::MountOptions,
    flags: libc::c_ulong,
    what: &str,
) -> Result<()> {
    let host = Path::new("/sys/fs/cgroup");
    sys::mount(
        Some(host),
        dest,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
        what,
    )?;
    let bind_flags = (flags | opts.flags) & BIND_REMOUNT_FLAGS;
    sys::mount(
        None,
        dest,
        None,
        libc::MS_BIND | libc::MS_REMOUNT | bind_flags | locked_flags(dest),
        None,
        what,
    )
}

/// The per-mount flags a bind remount can set.
const BIND_REMOUNT_FLAGS: libc::c_ulong = libc::MS_RDONLY
    | libc::MS_NOSUID
    | libc::MS_NODEV
    | libc::MS_NOEXEC
    | libc::MS_NOATIME
    | libc::MS_NODIRATIME
    | libc::MS_RELATIME
    | libc::MS_STRICTATIME;

/// Repeats the host's symlinks for co-mounted controllers (`cpu ->
/// cpu,cpuacct` where systemd mounts them together), so that paths such as
/// /sys/fs/cgroup/cpu/cpu.shares work inside as they do on the host.
fn link_comounted(dest: &Path) -> Result<()> {
    let host = Path::new("/sys/fs/cgroup");
    let Ok(entries) = std::fs::read_dir(host) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let Ok(target) = std::fs::read_link(e.path()) else {
            continue;
        };
        // Only a sibling hierarchy, never a path out of /sys/fs/cgroup.
        if target.components().count() != 1 || !dest.join(&target).is_dir() {
            continue;
        }
        let link = dest.join(e.file_name());
        match symlink(&target, &link) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(Error::io(link, err)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(fstype: &str, opts: &str) -> Hierarchy {
        Hierarchy {
            mount_point: PathBuf::from("/sys/fs/cgroup/x"),
            fstype: fstype.into(),
            super_opts: opts.into(),
        }
    }

    #[test]
    fn own_cgroup_per_hierarchy() {
        let text = "9:name=systemd:/a\n4:memory:/libpod_parent/c1\n1:cpu,cpuacct:/c2\n0::/u\n";
        assert_eq!(
            own_cgroup(&h("cgroup", "rw,memory"), text),
            Some("/libpod_parent/c1")
        );
        assert_eq!(
            own_cgroup(&h("cgroup", "rw,cpu,cpuacct"), text),
            Some("/c2")
        );
        assert_eq!(
            own_cgroup(&h("cgroup", "rw,xattr,name=systemd"), text),
            Some("/a")
        );
        assert_eq!(own_cgroup(&h("cgroup2", "rw,nsdelegate"), text), Some("/u"));
        assert_eq!(own_cgroup(&h("cgroup", "rw,pids"), text), None);
    }
}
