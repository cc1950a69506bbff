//! Building the container's root filesystem inside its mount namespace:
//! the spec's mounts, devices, /dev links, pivot_root, and the read-only and
//! masked paths.

mod cgroupfs;
mod context;
mod devices;

use std::path::{Path, PathBuf};

use oci_spec::runtime::{Mount, Spec};

use crate::error::{Error, Result};
use crate::init::mount_opts::{self, is_bind, locked_flags};
use crate::init::pivot::{chroot_into, move_root, pivot_root};
use crate::init::secure_path::resolve_in_root;
use crate::sys;
pub(crate) use cgroupfs::host_cgroup_hierarchies;
use cgroupfs::mount_cgroups;
pub use context::RootfsContext;
pub(crate) use devices::DEFAULT_DEVICES;
use devices::{create_devices, dev_links};

/// Sets up the mounts under the rootfs and switches into it. On return the
/// process's root and cwd are the container's `/`.
pub fn setup(ctx: &RootfsContext) -> Result<()> {
    let spec = ctx.spec;
    let linux = spec.linux().as_ref();
    bind_rootfs_onto_itself(ctx)?;
    let dev_is_bind = mount_spec_mounts(ctx)?;
    if !dev_is_bind {
        create_devices(ctx, linux.and_then(|l| l.devices().as_ref()))?;
        dev_links(ctx.rootfs)?;
    }
    if let Some(f) = ctx.before_pivot {
        f()?;
    }
    switch_root(ctx)?;
    crate::init::devnull::reopen_stdio()?;
    if dev_read_only(spec) {
        remount_readonly(Path::new("/dev"))?;
    }
    restrict_paths(spec)
}

/// Keeps what is mounted below out of the host's peer groups and makes the
/// rootfs a mount point, which pivot_root needs.
fn bind_rootfs_onto_itself(ctx: &RootfsContext) -> Result<()> {
    if !ctx.inherited_mount_ns {
        // By default nothing done below may propagate back to the host. A
        // shared rootfsPropagation keeps the copies of the host's mounts in
        // the host's peer groups, so that a shared volume bound from them
        // is a peer of the host's (runc's order); the rootfs itself is kept
        // out of them below.
        let (flag, what) = match root_propagation(ctx.spec)? {
            Some(f) => (f, "/ propagation (rootfsPropagation)"),
            None => (libc::MS_SLAVE | libc::MS_REC, "/ as rslave"),
        };
        sys::mount(None, Path::new("/"), None, flag, None, what)?;
        make_parent_mount_private(ctx.rootfs)?;
    }
    // pivot_root needs the new root to be a mount point.
    sys::mount(
        Some(ctx.rootfs),
        ctx.rootfs,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
        &format!("rootfs {} onto itself", ctx.rootfs.display()),
    )?;
    if ctx.inherited_mount_ns {
        // In the runtime's namespace only the rootfs is ours to change:
        // what is mounted under it stays out of the host's peer groups.
        sys::mount(
            None,
            ctx.rootfs,
            None,
            libc::MS_PRIVATE | libc::MS_REC,
            None,
            "rootfs as rprivate",
        )?;
    }
    Ok(())
}

/// Mounts the spec's mounts in order; returns whether /dev is a bind (then
/// its devices come from the host and none are created).
fn mount_spec_mounts(ctx: &RootfsContext) -> Result<bool> {
    let mut dev_is_bind = false;
    for (i, m) in ctx.spec.mounts().iter().flatten().enumerate() {
        if m.destination() == Path::new("/dev") && is_bind(m) {
            dev_is_bind = true;
        }
        mount_one(ctx, i, m)?;
    }
    Ok(dev_is_bind)
}

/// chroot when sharing the runtime's mount namespace (there is no host root
/// of our own to detach), MS_MOVE when asked not to pivot, else pivot_root.
fn switch_root(ctx: &RootfsContext) -> Result<()> {
    if ctx.inherited_mount_ns {
        chroot_into(ctx.rootfs)
    } else if ctx.no_pivot {
        move_root(ctx.rootfs)
    } else {
        pivot_root(ctx.rootfs)
    }
}

/// Inside the new root: read-only and masked paths, a read-only root, and
/// the root's final propagation, last so nothing above is undone by them.
fn restrict_paths(spec: &Spec) -> Result<()> {
    if let Some(linux) = spec.linux().as_ref() {
        for p in linux.readonly_paths().iter().flatten() {
            readonly_path(Path::new(p))?;
        }
        for p in linux.masked_paths().iter().flatten() {
            mask_path(Path::new(p))?;
        }
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        remount_readonly(Path::new("/"))?;
    }
    if let Some(flag) = root_propagation(spec)? {
        sys::mount(None, Path::new("/"), None, flag, None, "/ propagation")?;
    }
    Ok(())
}

/// `linux.rootfsPropagation` as mount flags.
fn root_propagation(spec: &Spec) -> Result<Option<libc::c_ulong>> {
    let linux = spec.linux().as_ref();
    let Some(prop) = linux.and_then(|l| l.rootfs_propagation().as_deref()) else {
        return Ok(None);
    };
    mount_opts::propagation(prop)
        .map(Some)
        .ok_or_else(|| Error::ConfigInvalid {
            path: "config.json".into(),
            field: "linux.rootfsPropagation".into(),
            message: format!("unknown propagation {prop:?}"),
        })
}

/// Makes the mount holding `rootfs` private in this namespace, so that the
/// rootfs bound onto itself (and all mounted under it) stays out of the
/// host's peer groups, and pivot_root accepts it.
fn make_parent_mount_private(rootfs: &Path) -> Result<()> {
    let rootfs = std::fs::canonicalize(rootfs).map_err(|e| Error::io(rootfs, e))?;
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("/proc/self/mountinfo", e))?;
    let parent = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(crate::sys::unescape(m)))
        .filter(|m| rootfs.starts_with(m))
        .max_by_key(|m| m.components().count())
        .unwrap_or_else(|| PathBuf::from("/"));
    sys::mount(
        None,
        &parent,
        None,
        libc::MS_PRIVATE,
        None,
        &format!(
            "{} (the mount holding the rootfs) as private",
            parent.display()
        ),
    )
}

/// Whether the spec mounts /dev read-only (done last, after what goes in it).
fn dev_read_only(spec: &Spec) -> bool {
    spec.mounts()
        .iter()
        .flatten()
        .rfind(|m| is_dev(m.destination()))
        .and_then(|m| parse_options(0, m).ok())
        .is_some_and(|o| o.flags & libc::MS_RDONLY != 0)
}

fn mount_one(ctx: &RootfsContext, index: usize, m: &Mount) -> Result<()> {
    let typ = m.typ().as_deref().unwrap_or("");
    refuse_symlinked_proc_sysfs(ctx, index, m, typ)?;
    let dest = resolve_in_root(ctx.rootfs, m.destination())?;
    let mut opts = parse_options(index, m)?;
    let what = format!("mounts[{index}] ({})", m.destination().display());
    // /dev gets its submounts and devices first; it is made read-only at
    // the end (see `setup`). A tmpfs to fill is made read-only once filled.
    let ro_later = opts.flags & libc::MS_RDONLY != 0
        && (is_dev(m.destination()) || (opts.tmpcopyup && typ == "tmpfs"));
    if ro_later {
        opts.flags &= !libc::MS_RDONLY;
    }
    if let Some(taken) = ctx.bind_sources.iter().find(|b| b.index == index) {
        mount_taken_source(taken, &dest, &opts, &what)?;
    } else if crate::init::mount_opts::is_idmapped(m) {
        // Made by the runtime only (see idmapped); never bound plainly.
        return Err(Error::Init(format!(
            "{what}: the idmapped mount was not handed to the init"
        )));
    } else if is_bind(m) {
        mount_bind(ctx, index, m, &dest, &opts, &what)?;
    } else {
        prepare_fs_destination(index, typ, &dest)?;
        match typ {
            "cgroup" | "cgroup2" => mount_cgroups(ctx, &dest, &opts, &what)?,
            _ => mount_filesystem(m, typ, &dest, &opts, &what)?,
        }
    }
    apply_late_options(m, ro_later, &dest, &opts, &what)
}

/// proc and sysfs on a symlinked destination could be redirected onto the
/// host; refuse before resolving it.
fn refuse_symlinked_proc_sysfs(
    ctx: &RootfsContext,
    index: usize,
    m: &Mount,
    typ: &str,
) -> Result<()> {
    if matches!(typ, "proc" | "sysfs") {
        if let Some(link) = crate::init::secure_path::first_symlink(ctx.rootfs, m.destination()) {
            return Err(Error::ConfigInvalid {
                path: "config.json".into(),
                field: format!("mounts[{index}].destination"),
                // The first words are runc's, which tools match on.
                message: format!(
                    "filesystem {typ:?} must be mounted on ordinary directory: {} is a symlink",
                    link.display()
                ),
            });
        }
    }
    Ok(())
}

/// A source the runtime opened before the fork (one the container could not
/// reach by path) is attached from its fd.
fn mount_taken_source(
    taken: &crate::init::bind_sources::BindSource,
    dest: &Path,
    opts: &mount_opts::MountOptions,
    what: &str,
) -> Result<()> {
    if taken.is_dir {
        sys::mkdir_all(dest)?;
    } else {
        sys::touch(dest)?;
    }
    crate::init::bind_sources::attach(taken, dest, opts.flags & libc::MS_REC != 0, what)?;
    bind_flags(dest, opts, what)
}

/// A plain bind: the destination is made to match the source's kind (dir or
/// file), since a bind needs one of the same kind to land on.
fn mount_bind(
    ctx: &RootfsContext,
    index: usize,
    m: &Mount,
    dest: &Path,
    opts: &mount_opts::MountOptions,
    what: &str,
) -> Result<()> {
    let src = m.source().as_ref().ok_or_else(|| Error::ConfigInvalid {
        path: "config.json".into(),
        field: format!("mounts[{index}].source"),
        message: "a bind mount needs a source".into(),
    })?;
    let src = if src.is_absolute() {
        src.clone()
    } else {
        ctx.bundle.join(src)
    };
    let meta = std::fs::metadata(&src).map_err(|e| Error::ConfigInvalid {
        path: "config.json".into(),
        field: format!("mounts[{index}].source"),
        message: format!("{}: {e}", src.display()),
    })?;
    if meta.is_dir() {
        sys::mkdir_all(dest)?;
    } else {
        sys::touch(dest)?;
    }
    let base = libc::MS_BIND | (opts.flags & libc::MS_REC);
    sys::mount(Some(&src), dest, None, base, None, what)?;
    bind_flags(dest, opts, what)
}

/// A filesystem mounts only on a directory: create it when missing, refuse
/// anything else that is there.
fn prepare_fs_destination(index: usize, typ: &str, dest: &Path) -> Result<()> {
    match std::fs::symlink_metadata(dest) {
        Ok(meta) if !meta.is_dir() => Err(Error::ConfigInvalid {
            path: "config.json".into(),
            field: format!("mounts[{index}].destination"),
            message: if matches!(typ, "proc" | "sysfs") {
                format!(
                    "filesystem {typ:?} must be mounted on ordinary directory: {} is not a directory",
                    dest.display()
                )
            } else {
                format!("{} exists and is not a directory", dest.display())
            },
        }),
        Ok(_) => Ok(()),
        Err(_) => sys::mkdir_all(dest),
    }
}

/// Mounts a filesystem of type `typ`; a tmpcopyup tmpfs is filled with what
/// the directory held before.
fn mount_filesystem(
    m: &Mount,
    typ: &str,
    dest: &Path,
    opts: &mount_opts::MountOptions,
    what: &str,
) -> Result<()> {
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
    let lower = if opts.tmpcopyup && typ == "tmpfs" {
        crate::init::copyup::Lower::open(dest)?
    } else {
        None
    };
    let r = sys::mount(
        Some(&source),
        dest,
        Some(typ),
        opts.flags & !libc::MS_REMOUNT,
        Some(&opts.data),
        what,
    );
    match r {
        // sysfs cannot be mounted without owning the network
        // namespace; give the host's, read-only, as other
        // runtimes do.
        Err(Error::Sys { ref source, .. })
            if typ == "sysfs" && source.raw_os_error() == Some(libc::EPERM) =>
        {
            bind_host_sysfs(dest, what)?;
        }
        other => other?,
    }
    if let Some(lower) = lower {
        lower.copy_into(dest)?;
    }
    Ok(())
}

/// The fallback for sysfs: the host's /sys, bound and made read-only.
fn bind_host_sysfs(dest: &Path, what: &str) -> Result<()> {
    sys::mount(
        Some(Path::new("/sys")),
        dest,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
        what,
    )?;
    sys::mount(
        None,
        dest,
        None,
        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | locked_flags(dest),
        None,
        what,
    )
}

/// What must wait until the mount is in place: the deferred read-only
/// remount, recursive attributes and propagation.
fn apply_late_options(
    m: &Mount,
    ro_later: bool,
    dest: &Path,
    opts: &mount_opts::MountOptions,
    what: &str,
) -> Result<()> {
    if ro_later && !is_dev(m.destination()) {
        remount_readonly(dest)?;
    }
    if !opts.recursive.is_empty() {
        mount_opts::set_recursive(dest, opts.recursive, what)?;
    }
    for p in &opts.propagation {
        sys::mount(None, dest, None, *p, None, &format!("{what} propagation"))?;
    }
    Ok(())
}

/// A bind takes its flags (ro, nosuid, ...) by a remount of its own.
fn bind_flags(dest: &Path, opts: &mount_opts::MountOptions, what: &str) -> Result<()> {
    let extra = opts.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT);
    if extra == 0 {
        return Ok(());
    }
    let keep = locked_flags(dest);
    sys::mount(
        None,
        dest,
        None,
        libc::MS_BIND | libc::MS_REMOUNT | extra | keep,
        None,
        &format!("{what} with its options"),
    )
}

/// Whether a mount destination is the container's /dev.
fn is_dev(dest: &Path) -> bool {
    // Path equality compares components: "/dev/" and "/dev/." match too.
    dest == Path::new("/dev")
}

/// The options of `mounts[index]`, or an error naming the mount and the
/// option refused.
fn parse_options(index: usize, m: &Mount) -> Result<mount_opts::MountOptions> {
    mount_opts::parse(m.options().as_deref().unwrap_or(&[]), is_bind(m)).map_err(|e| {
        Error::ConfigInvalid {
            path: "config.json".into(),
            field: format!("mounts[{index}].options"),
            message: format!("mount on {}: {e}", m.destination().display()),
        }
    })
}

/// Checks every mount's options in the runtime, before anything is made,
/// so that a refused option fails `create` with nothing to undo. Returns a
/// warning for each option that is ignored.
pub fn check_mount_options(spec: &Spec, config: &Path) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let opts = parse_options(i, m).map_err(|e| match e {
            Error::ConfigInvalid { field, message, .. } => Error::ConfigInvalid {
                path: config.to_path_buf(),
                field,
                message,
            },
            other => other,
        })?;
        for o in opts.ignored {
            warnings.push(format!(
                "mounts[{i}].options: {o:?} on {}: a bind mount cannot change its filesystem's options, ignored",
                m.destination().display()
            ));
        }
    }
    Ok(warnings)
}

fn remount_readonly(p: &Path) -> Result<()> {
    sys::mount(
        None,
        p,
        None,
        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | locked_flags(p),
        None,
        &format!("{} read-only", p.display()),
    )
}

fn readonly_path(p: &Path) -> Result<()> {
    if std::fs::symlink_metadata(p).is_err() {
        return Ok(());
    }
    sys::mount(
        Some(p),
        p,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
        &format!("readonly path {}", p.display()),
    )?;
    remount_readonly(p)
}

fn mask_path(p: &Path) -> Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(p) else {
        return Ok(());
    };
    if meta.is_dir() {
        sys::mount(
            Some(Path::new("tmpfs")),
            p,
            Some("tmpfs"),
            libc::MS_RDONLY,
            None,
            &format!("masked path {}", p.display()),
        )
    } else {
        sys::mount(
            Some(Path::new("/dev/null")),
            p,
            None,
            libc::MS_BIND,
            None,
            &format!("masked path {}", p.display()),
        )
    }
}
