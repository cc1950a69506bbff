//! Translation of OCI mount options into mount(2) flags and data.

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
}

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

/// Parses a list of OCI mount options. Unknown options go to the filesystem.
pub fn parse(options: &[String]) -> MountOptions {
    let mut out = MountOptions::default();
    let mut data = Vec::new();
    for opt in options {
        let o = opt.as_str();
        if let Some((_, f)) = SETS.iter().find(|(n, _)| *n == o) {
            out.flags |= f;
        } else if let Some((_, f)) = CLEARS.iter().find(|(n, _)| *n == o) {
            out.flags &= !f;
        } else if let Some((_, f)) = PROPAGATION.iter().find(|(n, _)| *n == o) {
            out.propagation.push(*f);
        } else if o == "defaults" {
        } else if o == "tmpcopyup" {
            out.tmpcopyup = true;
        } else {
            data.push(o);
        }
    }
    out.bind = out.flags & libc::MS_BIND != 0;
    out.data = data.join(",");
    out
}

/// Every option name [`parse`] acts on (others go to the filesystem as
/// data), for `rrc features`.
pub fn known_options() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = SETS
        .iter()
        .chain(CLEARS)
        .chain(PROPAGATION)
        .map(|(n, _)| *n)
        .chain(["defaults", "tmpcopyup"])
        .collect();
    v.sort_unstable();
    v
}

/// Parses `rootfsPropagation` into propagation flags.
pub fn propagation(name: &str) -> Option<libc::c_ulong> {
    PROPAGATION
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> MountOptions {
        parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
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
    fn rootfs_propagation_names() {
        assert_eq!(propagation("rslave"), Some(libc::MS_SLAVE | libc::MS_REC));
        assert_eq!(propagation("bogus"), None);
    }
}
