//! Translation of OCI mount options into mount(2) flags and data.

use std::path::Path;

use oci_spec::runtime::{LinuxIdMapping, Mount};

use crate::sys;

/// The flags, propagation changes and filesystem data of one mount.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the mount itself.
    pub flags: libc::c_ulong,
    /// Propagation flags applied after the mount (MS_SHARED etc., possibly with MS_REC).
    pub propagation: Vec<libc::c_ulong>,
    /// Options passed to the filesystem as the data string.
    pub data: String,
    /// Whether this is a bind mount.
    pub bind: bool,
    /// `tmpcopyup` (a runc extension podman uses for `--read-only`): fill a
    /// new tmpfs with what the rootfs had at its mount point.
    pub tmpcopyup: bool,
    /// Attributes for the mount and every mount below it (`rro`, `rnosuid`,
    /// ...), applied with mount_setattr(2) and AT_RECURSIVE.
    pub recursive: RecursiveAttr,
    /// Filesystem data (`key=value`) given to a bind mount, which has no
    /// filesystem to take it: ignored as runc ignores it, and reported.
    pub ignored: Vec<String>,
    /// `idmap` (false) or `ridmap` (true): an idmapped bind, the whole
    /// tree of mounts idmapped with `ridmap`.
    pub idmap: Option<bool>,
}

/// The `attr_set` and `attr_clr` halves of the kernel's `struct mount_attr`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecursiveAttr {
    /// MOUNT_ATTR_* bits to set.
    pub set: u64,
    /// MOUNT_ATTR_* bits to clear.
    pub clr: u64,
}

impl RecursiveAttr {
    /// Whether no recursive option was given.
    pub fn is_empty(&self) -> bool {
        self.set == 0 && self.clr == 0
    }

    fn set_bit(&mut self, bit: u64) {
        self.set |= bit;
        self.clr &= !bit;
    }

    fn clear_bit(&mut self, bit: u64) {
        self.clr |= bit;
        self.set &= !bit;
    }

    /// The atime values are an enum inside MOUNT_ATTR__ATIME: the kernel
    /// takes a new one only with the whole field in `attr_clr`.
    fn atime(&mut self, mode: u64) {
        self.clr |= MOUNT_ATTR_ATIME_MASK;
        self.set = (self.set & !MOUNT_ATTR_ATIME_MASK) | mode;
    }
}

/// MOUNT_ATTR_* values of linux/mount.h (stable kernel ABI).
pub const MOUNT_ATTR_RDONLY: u64 = 0x0000_0001;
/// See [`MOUNT_ATTR_RDONLY`].
pub const MOUNT_ATTR_NOSUID: u64 = 0x0000_0002;
/// See [`MOUNT_ATTR_RDONLY`].
pub const MOUNT_ATTR_NODEV: u64 = 0x0000_0004;
/// See [`MOUNT_ATTR_RDONLY`].
pub const MOUNT_ATTR_NOEXEC: u64 = 0x0000_0008;
/// The atime field (an enum, not bits).
pub const MOUNT_ATTR_ATIME_MASK: u64 = 0x0000_0070;
/// See [`MOUNT_ATTR_RDONLY`].
pub const MOUNT_ATTR_RELATIME: u64 = 0x0000_0000;
/// See [`MOUNT_ATTR_RDONLY`].
pub const MOUNT_ATTR_NOATIME: u64 = 0x0000_0010;
/// See [`MOUNT_ATTR_RDONLY`].
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x0000_0020;
/// See [`MOUNT_ATTR_RDONLY`].
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x0000_0080;
/// See [`MOUNT_ATTR_RDONLY`].
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// MS_NOSYMFOLLOW (Linux 5.10), missing from the libc crate.
pub const MS_NOSYMFOLLOW: libc::c_ulong = 256;

/// What a recursive option does to the attributes.
#[derive(Clone, Copy)]
enum RecOp {
    Set(u64),
    Clear(u64),
    Atime(u64),
}

const RECURSIVE: &[(&str, RecOp)] = &[
    ("rro", RecOp::Set(MOUNT_ATTR_RDONLY)),
    ("rrw", RecOp::Clear(MOUNT_ATTR_RDONLY)),
    ("rnosuid", RecOp::Set(MOUNT_ATTR_NOSUID)),
    ("rsuid", RecOp::Clear(MOUNT_ATTR_NOSUID)),
    ("rnodev", RecOp::Set(MOUNT_ATTR_NODEV)),
    ("rdev", RecOp::Clear(MOUNT_ATTR_NODEV)),
    ("rnoexec", RecOp::Set(MOUNT_ATTR_NOEXEC)),
    ("rexec", RecOp::Clear(MOUNT_ATTR_NOEXEC)),
    ("rnodiratime", RecOp::Set(MOUNT_ATTR_NODIRATIME)),
    ("rdiratime", RecOp::Clear(MOUNT_ATTR_NODIRATIME)),
    ("rnosymfollow", RecOp::Set(MOUNT_ATTR_NOSYMFOLLOW)),
    ("rsymfollow", RecOp::Clear(MOUNT_ATTR_NOSYMFOLLOW)),
    ("rrelatime", RecOp::Atime(MOUNT_ATTR_RELATIME)),
    // Without noatime or strictatime the kernel's default is relatime.
    ("ratime", RecOp::Atime(MOUNT_ATTR_RELATIME)),
    ("rnostrictatime", RecOp::Atime(MOUNT_ATTR_RELATIME)),
    ("rnorelatime", RecOp::Atime(MOUNT_ATTR_STRICTATIME)),
    ("rnoatime", RecOp::Atime(MOUNT_ATTR_NOATIME)),
    ("rstrictatime", RecOp::Atime(MOUNT_ATTR_STRICTATIME)),
];

/// Flags of the filesystem (superblock), not of one mount: a bind cannot
/// apply them.
const SUPERBLOCK_ONLY: libc::c_ulong = libc::MS_SYNCHRONOUS
    | libc::MS_DIRSYNC
    | libc::MS_MANDLOCK
    | libc::MS_LAZYTIME
    | libc::MS_I_VERSION
    | libc::MS_SILENT;

/// Options that clear a flag set earlier in the list.
const CLEARS: &[(&str, libc::c_ulong)] = &[
    ("rw", libc::MS_RDONLY),
    ("suid", libc::MS_NOSUID),
    ("dev", libc::MS_NODEV),
    ("exec", libc::MS_NOEXEC),
    ("async", libc::MS_SYNCHRONOUS),
    ("atime", libc::MS_NOATIME),
    ("diratime", libc::MS_NODIRATIME),
    ("norelatime", libc::MS_RELATIME),
    ("nostrictatime", libc::MS_STRICTATIME),
    ("nomand", libc::MS_MANDLOCK),
    ("loud", libc::MS_SILENT),
    ("symfollow", MS_NOSYMFOLLOW),
    ("nolazytime", libc::MS_LAZYTIME),
    ("noiversion", libc::MS_I_VERSION),
];

const SETS: &[(&str, libc::c_ulong)] = &[
    ("ro", libc::MS_RDONLY),
    ("nosuid", libc::MS_NOSUID),
    ("nodev", libc::MS_NODEV),
    ("noexec", libc::MS_NOEXEC),
    ("sync", libc::MS_SYNCHRONOUS),
    ("dirsync", libc::MS_DIRSYNC),
    ("remount", libc::MS_REMOUNT),
    ("mand", libc::MS_MANDLOCK),
    ("noatime", libc::MS_NOATIME),
    ("nodiratime", libc::MS_NODIRATIME),
    ("relatime", libc::MS_RELATIME),
    ("strictatime", libc::MS_STRICTATIME),
    ("bind", libc::MS_BIND),
    ("rbind", libc::MS_BIND | libc::MS_REC),
    ("silent", libc::MS_SILENT),
    ("nosymfollow", MS_NOSYMFOLLOW),
    ("lazytime", libc::MS_LAZYTIME),
    ("iversion", libc::MS_I_VERSION),
];

const PROPAGATION: &[(&str, libc::c_ulong)] = &[
    ("private", libc::MS_PRIVATE),
    ("rprivate", libc::MS_PRIVATE | libc::MS_REC),
    ("shared", libc::MS_SHARED),
    ("rshared", libc::MS_SHARED | libc::MS_REC),
    ("slave", libc::MS_SLAVE),
    ("rslave", libc::MS_SLAVE | libc::MS_REC),
    ("unbindable", libc::MS_UNBINDABLE),
    ("runbindable", libc::MS_UNBINDABLE | libc::MS_REC),
];

/// Parses a list of OCI mount options. Options unknown to rrc go to the
/// filesystem as data, but a bind mount has no filesystem to give them to:
/// there a `key=value` is set aside in `ignored` (runc ignores it, and the
/// runtime-tools suite gives binds `mode=755,size=1k`) and any other word
/// is an error, as are the options rrc knows and does not implement. The
/// error is the option and why it was refused.
pub fn parse(options: &[String], bind: bool) -> Result<MountOptions, String> {
    let mut out = MountOptions::default();
    let mut data = Vec::new();
    let bind = bind || is_bind_option_list(options);
    for opt in options {
        let o = opt.as_str();
        let flag = SETS.iter().chain(CLEARS).find(|(n, _)| *n == o);
        if bind && flag.is_some_and(|(_, f)| f & SUPERBLOCK_ONLY != 0) {
            // A bind shares the filesystem of its source: these belong to
            // that filesystem and a bind remount leaves them as they are.
            out.ignored.push(o.to_string());
        } else if let Some((_, f)) = SETS.iter().find(|(n, _)| *n == o) {
            out.flags |= f;
        } else if let Some((_, f)) = CLEARS.iter().find(|(n, _)| *n == o) {
            out.flags &= !f;
        } else if let Some((_, f)) = PROPAGATION.iter().find(|(n, _)| *n == o) {
            out.propagation.push(*f);
        } else if let Some((_, op)) = RECURSIVE.iter().find(|(n, _)| *n == o) {
            match *op {
                RecOp::Set(b) => out.recursive.set_bit(b),
                RecOp::Clear(b) => out.recursive.clear_bit(b),
                RecOp::Atime(m) => out.recursive.atime(m),
            }
        } else if o == "defaults" {
        } else if o == "tmpcopyup" {
            out.tmpcopyup = true;
        } else if o == "idmap" || o == "ridmap" {
            // Recursive once any of them asks for it.
            out.idmap = Some(o == "ridmap" || out.idmap == Some(true));
        } else if bind && o.contains('=') {
            out.ignored.push(o.to_string());
        } else if bind {
            return Err(format!(
                "unknown option {o:?} (a bind mount takes no filesystem data)"
            ));
        } else {
            data.push(o);
        }
    }
    out.bind = bind;
    if out.bind && out.tmpcopyup {
        return Err("option \"tmpcopyup\" is for tmpfs, not a bind mount".into());
    }
    if !out.bind && out.idmap.is_some() {
        return Err("options \"idmap\" and \"ridmap\" are for a bind mount".into());
    }
    out.data = data.join(",");
    Ok(out)
}

fn is_bind_option_list(options: &[String]) -> bool {
    options.iter().any(|o| o == "bind" || o == "rbind")
}

/// Every option name [`parse`] acts on (others go to the filesystem as
/// data), for `rrc features`.
pub fn known_options() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = SETS
        .iter()
        .chain(CLEARS)
        .chain(PROPAGATION)
        .map(|(n, _)| *n)
        .chain(RECURSIVE.iter().map(|(n, _)| *n))
        .chain(["defaults", "tmpcopyup", "idmap", "ridmap"])
        .collect();
    v.sort_unstable();
    v
}

/// The kernel's `struct mount_attr` (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Applies `attr` to the mount at `target` and every mount below it with
/// mount_setattr(2) (Linux 5.12). `what` names the mount for the error.
pub fn set_recursive(
    target: &std::path::Path,
    attr: RecursiveAttr,
    what: &str,
) -> crate::error::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(target.as_os_str().as_bytes())
        .map_err(|_| crate::error::Error::Init(format!("{what}: path has a NUL byte")))?;
    let ma = MountAttr {
        attr_set: attr.set,
        attr_clr: attr.clr,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: c is a valid C string and ma a valid mount_attr of the size
    // passed; the kernel only reads it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_RECURSIVE as libc::c_uint,
            &ma as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        let call = if e.raw_os_error() == Some(libc::ENOSYS) {
            format!("mount_setattr {what} (recursive mount options need Linux 5.12 or later)")
        } else {
            format!("mount_setattr {what}")
        };
        return Err(crate::error::Error::Sys { call, source: e });
    }
    Ok(())
}

/// Parses `rootfsPropagation` into propagation flags.
pub fn propagation(name: &str) -> Option<libc::c_ulong> {
    PROPAGATION
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
}

pub(crate) fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

/// Whether `m` asks for an idmapped mount.
pub(crate) fn is_idmapped(m: &Mount) -> bool {
    let given = |v: &Option<Vec<LinuxIdMapping>>| v.as_ref().is_some_and(|v| !v.is_empty());
    given(m.uid_mappings())
        || given(m.gid_mappings())
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "idmap" || o == "ridmap")
}

/// Flags of an existing mount that an unprivileged remount may not clear.
pub(crate) fn locked_flags(p: &Path) -> libc::c_ulong {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(opts: &[&str]) -> Vec<String> {
        opts.iter().map(|s| s.to_string()).collect()
    }

    fn p(opts: &[&str]) -> MountOptions {
        parse(&strings(opts), false).expect("valid options")
    }

    #[test]
    fn flags_data_and_propagation() {
        let o = p(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, libc::MS_NOSUID | libc::MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
        assert!(!o.bind);
        let o = p(&["rbind", "ro", "rprivate"]);
        assert!(o.bind);
        assert_eq!(o.flags, libc::MS_BIND | libc::MS_REC | libc::MS_RDONLY);
        assert_eq!(o.propagation, vec![libc::MS_PRIVATE | libc::MS_REC]);
    }

    #[test]
    fn tmpcopyup_is_ours_not_the_filesystems() {
        let o = p(&["rw", "nosuid", "tmpcopyup"]);
        assert!(o.tmpcopyup);
        assert_eq!(o.data, "");
        assert!(!p(&["mode=755"]).tmpcopyup);
    }

    #[test]
    fn later_option_clears_earlier() {
        assert_eq!(p(&["ro", "rw"]).flags, 0);
        assert_eq!(p(&["noexec", "exec", "nodev"]).flags, libc::MS_NODEV);
    }

    #[test]
    fn recursive_attributes() {
        let o = p(&["rbind", "rro", "rnosuid", "rnodev", "rnoexec"]);
        let all = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
        assert_eq!(o.recursive, RecursiveAttr { set: all, clr: 0 });
        assert_eq!(o.flags, libc::MS_BIND | libc::MS_REC);
        assert_eq!(o.data, "");
        let o = p(&["rbind", "rro", "rrw", "rsuid"]);
        assert_eq!(
            o.recursive,
            RecursiveAttr {
                set: 0,
                clr: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID
            }
        );
        let o = p(&["rbind", "rnosymfollow", "rnodiratime"]);
        assert_eq!(
            o.recursive.set,
            MOUNT_ATTR_NOSYMFOLLOW | MOUNT_ATTR_NODIRATIME
        );
    }

    #[test]
    fn recursive_atime_is_one_value() {
        let o = p(&["rbind", "rnoatime", "rstrictatime"]);
        assert_eq!(o.recursive.set, MOUNT_ATTR_STRICTATIME);
        assert_eq!(o.recursive.clr, MOUNT_ATTR_ATIME_MASK);
        let o = p(&["rbind", "rnoatime", "rnodiratime", "ratime"]);
        assert_eq!(o.recursive.set, MOUNT_ATTR_RELATIME | MOUNT_ATTR_NODIRATIME);
        assert_eq!(
            p(&["rbind", "rnorelatime"]).recursive.set,
            MOUNT_ATTR_STRICTATIME
        );
    }

    #[test]
    fn nosymfollow_is_a_flag() {
        assert_eq!(p(&["nosymfollow"]).flags, MS_NOSYMFOLLOW);
        assert_eq!(p(&["nosymfollow", "symfollow"]).flags, 0);
    }

    #[test]
    fn unknown_bind_option_is_refused_by_name() {
        let e = parse(&strings(&["rbind", "rro", "rfoo"]), false).unwrap_err();
        assert!(e.contains("\"rfoo\""), "{e}");
        let e = parse(&strings(&["noacl"]), true).unwrap_err();
        assert!(e.contains("noacl"), "{e}");
        let o = parse(&strings(&["bind", "nosuid", "mode=755", "size=1k"]), false).expect("ok");
        assert_eq!(o.ignored, vec!["mode=755", "size=1k"]);
        let sb = parse(&strings(&["rbind", "sync", "lazytime", "ro"]), false).expect("ok");
        assert_eq!(sb.ignored, vec!["sync", "lazytime"]);
        assert_eq!(sb.flags, libc::MS_BIND | libc::MS_REC | libc::MS_RDONLY);
        assert_eq!(
            p(&["sync", "lazytime"]).flags,
            libc::MS_SYNCHRONOUS | libc::MS_LAZYTIME
        );
        assert_eq!(o.data, "");
        assert_eq!(o.flags, libc::MS_BIND | libc::MS_NOSUID);
        let e = parse(&strings(&["idmap"]), false).unwrap_err();
        assert!(e.contains("idmap") && e.contains("bind"), "{e}");
        assert_eq!(p(&["bind", "idmap"]).idmap, Some(false));
        assert_eq!(p(&["rbind", "ridmap", "idmap"]).idmap, Some(true));
        // A filesystem still gets what it alone understands.
        assert_eq!(p(&["size=1m", "nr_inodes=9"]).data, "size=1m,nr_inodes=9");
    }

    #[test]
    fn features_list_the_recursive_options() {
        let k = known_options();
        for o in ["rro", "rnosymfollow", "nosymfollow", "rstrictatime"] {
            assert!(k.contains(&o), "{o}");
        }
    }

    #[test]
    fn rootfs_propagation_names() {
        assert_eq!(propagation("rslave"), Some(libc::MS_SLAVE | libc::MS_REC));
        assert_eq!(propagation("bogus"), None);
    }
}
