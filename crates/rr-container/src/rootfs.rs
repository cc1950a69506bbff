//! Building the container's root filesystem inside its mount namespace:
//! the spec's mounts, devices, /dev links, pivot_root, and the read-only and
//! masked paths.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};

use crate::error::{Error, Result};
use crate::mount_opts;
use crate::secure_path::resolve_in_root;
use crate::sys;

/// What the rootfs setup needs to know beyond the spec.
pub struct RootfsContext<'a> {
    /// The spec being run.
    pub spec: &'a Spec,
    /// Absolute rootfs path on the host.
    pub rootfs: &'a Path,
    /// Bundle directory, for relative bind sources.
    pub bundle: &'a Path,
    /// Whether the init runs in a new user namespace (devices are then bind
    /// mounted, as mknod is not allowed there).
    pub in_userns: bool,
    /// Whether a cgroup namespace was created.
    pub cgroupns: bool,
    /// `--no-pivot`: chroot instead of pivot_root.
    pub no_pivot: bool,
    /// The spec lists no mount namespace: the init works in the runtime's
    /// own, which it must leave as it found it but for the mounts under
    /// the rootfs, and enters the rootfs with chroot as pivot_root would
    /// change the root of every process there.
    pub inherited_mount_ns: bool,
    /// Bind sources the runtime opened for an init in a new user
    /// namespace, by mount index.
    pub bind_sources: &'a [crate::bind_sources::BindSource],
    /// Called once the mounts are done, right before pivot_root (the
    /// createRuntime and createContainer hooks).
    pub before_pivot: Option<&'a dyn Fn() -> Result<()>>,
}

/// Devices every container gets (path, major, minor), as the runtime spec lists.
pub(crate) const DEFAULT_DEVICES: &[(&str, i64, i64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// Sets up the mounts under the rootfs and switches into it. On return the
/// process's root and cwd are the container's `/`.
pub fn setup(ctx: &RootfsContext) -> Result<()> {
    let spec = ctx.spec;
    let linux = spec.linux().as_ref();
    if !ctx.inherited_mount_ns {
        // By default nothing done below may propagate back to the host. A
        // shared rootfsPropagation keeps the copies of the host's mounts in
        // the host's peer groups, so that a shared volume bound from them
        // is a peer of the host's (runc's order); the rootfs itself is kept
        // out of them below.
        let (flag, what) = match root_propagation(spec)? {
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

    let mut dev_is_bind = false;
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if m.destination() == Path::new("/dev") && is_bind(m) {
            dev_is_bind = true;
        }
        mount_one(ctx, i, m)?;
    }
    if !dev_is_bind {
        create_devices(ctx, linux.and_then(|l| l.devices().as_ref()))?;
        dev_links(ctx.rootfs)?;
    }

    if let Some(f) = ctx.before_pivot {
        f()?;
    }
    if ctx.inherited_mount_ns {
        chroot_into(ctx.rootfs)?;
    } else if ctx.no_pivot {
        move_root(ctx.rootfs)?;
    } else {
        pivot_root(ctx.rootfs)?;
    }
    crate::devnull::reopen_stdio()?;
    if dev_read_only(spec) {
        remount_readonly(Path::new("/dev"))?;
    }

    if let Some(linux) = linux {
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
        .map(|m| PathBuf::from(crate::unfinished::unescape(m)))
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

pub(crate) fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

fn mount_one(ctx: &RootfsContext, index: usize, m: &Mount) -> Result<()> {
    let typ = m.typ().as_deref().unwrap_or("");
    if matches!(typ, "proc" | "sysfs") {
        if let Some(link) = crate::secure_path::first_symlink(ctx.rootfs, m.destination()) {
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
        if taken.is_dir {
            sys::mkdir_all(&dest)?;
        } else {
            sys::touch(&dest)?;
        }
        crate::bind_sources::attach(taken, &dest, opts.flags & libc::MS_REC != 0, &what)?;
        bind_flags(&dest, &opts, &what)?;
    } else if crate::idmapped::is_idmapped(m) {
        // Made by the runtime only (see idmapped); never bound plainly.
        return Err(Error::Init(format!(
            "{what}: the idmapped mount was not handed to the init"
        )));
    } else if is_bind(m) {
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
            sys::mkdir_all(&dest)?;
        } else {
            sys::touch(&dest)?;
        }
        let base = libc::MS_BIND | (opts.flags & libc::MS_REC);
        sys::mount(Some(&src), &dest, None, base, None, &what)?;
        bind_flags(&dest, &opts, &what)?;
    } else {
        match std::fs::symlink_metadata(&dest) {
            Ok(meta) if !meta.is_dir() => {
                return Err(Error::ConfigInvalid {
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
                })
            }
            Ok(_) => {}
            Err(_) => sys::mkdir_all(&dest)?,
        }
        match typ {
            "cgroup" | "cgroup2" => mount_cgroups(ctx, &dest, &opts, &what)?,
            _ => {
                let source = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
                let lower = if opts.tmpcopyup && typ == "tmpfs" {
                    crate::copyup::Lower::open(&dest)?
                } else {
                    None
                };
                let r = sys::mount(
                    Some(&source),
                    &dest,
                    Some(typ),
                    opts.flags & !libc::MS_REMOUNT,
                    Some(&opts.data),
                    &what,
                );
                match r {
                    // sysfs cannot be mounted without owning the network
                    // namespace; give the host's, read-only, as other
                    // runtimes do.
                    Err(Error::Sys { ref source, .. })
                        if typ == "sysfs" && source.raw_os_error() == Some(libc::EPERM) =>
                    {
                        sys::mount(
                            Some(Path::new("/sys")),
                            &dest,
                            None,
                            libc::MS_BIND | libc::MS_REC,
                            None,
                            &what,
                        )?;
                        sys::mount(
                            None,
                            &dest,
                            None,
                            libc::MS_BIND
                                | libc::MS_REMOUNT
                                | libc::MS_RDONLY
                                | locked_flags(&dest),
                            None,
                            &what,
                        )?;
                    }
                    other => other?,
                }
                if let Some(lower) = lower {
                    lower.copy_into(&dest)?;
                }
            }
        }
    }
    if ro_later && !is_dev(m.destination()) {
        remount_readonly(&dest)?;
    }
    if !opts.recursive.is_empty() {
        mount_opts::set_recursive(&dest, opts.recursive, &what)?;
    }
    for p in &opts.propagation {
        sys::mount(None, &dest, None, *p, None, &format!("{what} propagation"))?;
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

/// Flags of an existing mount that an unprivileged remount may not clear.
fn locked_flags(p: &Path) -> libc::c_ulong {
    let Ok(c) = sys::cpath(p) else { return 0 };
    // SAFETY: an all-zero statvfs is a valid out-parameter.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid path and st a valid out pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return 0;
    }
    let mut out = 0;
    for (st_flag, ms_flag) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_RDONLY, libc::MS_RDONLY),
    ] {
        if st.f_flag & st_flag != 0 {
            out |= ms_flag;
        }
    }
    out
}

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
fn mount_cgroups(
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
        let fresh = sys::mount(
            Some(Path::new("cgroup2")),
            dest,
            Some("cgroup2"),
            flags | (opts.flags & libc::MS_RDONLY),
            None,
            what,
        );
        return match fresh {
            // In a user namespace the kernel can refuse a new cgroup2
            // mount (EPERM, or EBUSY as seen in the e2e VM's rootless
            // run); runc then binds the host's tree, and so does rrc.
            Err(Error::Sys { source, .. })
                if matches!(source.raw_os_error(), Some(libc::EPERM | libc::EBUSY)) =>
            {
                bind_cgroup2_tree(dest, opts, flags, what)
            }
            other => other,
        };
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
            let data: Vec<&str> = h
                .super_opts
                .split(',')
                .filter(|o| *o != "rw" && *o != "ro")
                .collect();
            sys::mount(
                Some(Path::new("cgroup")),
                &target,
                Some(&h.fstype),
                flags | (opts.flags & libc::MS_RDONLY),
                Some(&data.join(",")),
                &name,
            )?;
        } else {
            // Without a cgroup namespace the container's view of each
            // hierarchy is its own cgroup, bound from the host's tree (the
            // init is already in it), so limits read inside are its own.
            let source = own_cgroup(h, &self_cgroups)
                .map(|rel| h.mount_point.join(rel.trim_start_matches('/')))
                .filter(|p| p.is_dir())
                .unwrap_or_else(|| h.mount_point.clone());
            sys::mount(
                Some(&source),
                &target,
                None,
                libc::MS_BIND | libc::MS_REC,
                None,
                &name,
            )?;
            // A bind takes the flags of its source: the spec's (Docker asks
            // ro,nosuid,noexec,nodev) need a remount, as a fresh mount has.
            let bind_flags = libc::MS_NOSUID
                | libc::MS_NODEV
                | libc::MS_NOEXEC
                | (opts.flags & BIND_REMOUNT_FLAGS);
            sys::mount(
                None,
                &target,
                None,
                libc::MS_BIND | libc::MS_REMOUNT | bind_flags | locked_flags(&target),
                None,
                &name,
            )?;
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

fn create_devices(ctx: &RootfsContext, extra: Option<&Vec<LinuxDevice>>) -> Result<()> {
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

fn dev_links(rootfs: &Path) -> Result<()> {
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

fn pivot_root(rootfs: &Path) -> Result<()> {
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

fn move_root(rootfs: &Path) -> Result<()> {
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
            let mp = PathBuf::from(crate::unfinished::unescape(f.next()?));
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

fn chroot_into(rootfs: &Path) -> Result<()> {
    sys::chdir(rootfs)?;
    // SAFETY: a valid C string.
    if unsafe { libc::chroot(c".".as_ptr()) } != 0 {
        return Err(Error::last_os(format!("chroot {}", rootfs.display())));
    }
    sys::chdir(Path::new("/"))
}

/// The mounts at or below `rootfs` in this process's mount namespace, as
/// (mount id, mount point).
pub(crate) fn mounts_at_or_under(rootfs: &Path) -> Vec<(u64, PathBuf)> {
    let rootfs = std::fs::canonicalize(rootfs).unwrap_or_else(|_| rootfs.to_path_buf());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let id = f.next()?.parse().ok()?;
            let mp = PathBuf::from(crate::unfinished::unescape(f.nth(3)?));
            mp.starts_with(&rootfs).then_some((id, mp))
        })
        .collect()
}

/// Name of the state-dir file that names the rootfs of a container without
/// a mount namespace (first line) and the mounts that were under it before
/// the container (second line, mount ids).
pub(crate) const MOUNTS_BEFORE: &str = "rootfs-mounts-before";

/// Records, for a container that shares the runtime's mount namespace,
/// which mounts under its rootfs were there before it.
pub(crate) fn record_mounts_before(state_dir: &Path, rootfs: &Path) -> Result<()> {
    let ids: Vec<String> = mounts_at_or_under(rootfs)
        .iter()
        .map(|(id, _)| id.to_string())
        .collect();
    let p = state_dir.join(MOUNTS_BEFORE);
    let text = format!("{}\n{}\n", rootfs.display(), ids.join(" "));
    std::fs::write(&p, text).map_err(|e| Error::io(p, e))
}

/// Detaches what a container without a mount namespace mounted under its
/// rootfs (left in the runtime's namespace, where runc leaves it), once
/// the container is gone: after delete, a failed create or a killed one.
/// Does nothing for other containers.
pub(crate) fn detach_container_mounts(state_dir: &Path) {
    let Ok(text) = std::fs::read_to_string(state_dir.join(MOUNTS_BEFORE)) else {
        return;
    };
    let mut lines = text.lines();
    let (Some(rootfs), Some(ids)) = (lines.next(), lines.next()) else {
        return;
    };
    let before: Vec<u64> = ids
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    let mut new: Vec<(u64, PathBuf)> = mounts_at_or_under(Path::new(rootfs))
        .into_iter()
        .filter(|(id, _)| !before.contains(id))
        .collect();
    // Deepest and newest first: a stacked mount goes before what it covers.
    new.sort_by_key(|(id, p)| std::cmp::Reverse((p.components().count(), *id)));
    for (_, p) in new {
        let _ = sys::umount2(&p, libc::MNT_DETACH);
    }
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
