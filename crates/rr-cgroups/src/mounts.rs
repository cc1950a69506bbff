//! The cgroup hierarchies as the mount table lists them.
//!
//! A directory under `/sys/fs/cgroup` is not a hierarchy by being there:
//! admins and tools create plain directories (`hugetlb`, `net_cls`) for
//! controllers that are not mounted, and a private mount namespace may
//! cover a hierarchy with another mount at the same place. Only the entries
//! of `/proc/self/mountinfo` whose mount is the one visible at its mount
//! point count.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{io_err, Result};

/// One `cgroup` or `cgroup2` entry of a mountinfo file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// Where it is mounted.
    pub point: PathBuf,
    /// The directory of the hierarchy shown there (`/` unless a sub-cgroup
    /// was bind-mounted or it was mounted inside a cgroup namespace).
    pub root: String,
    /// `cgroup` (v1) or `cgroup2`.
    pub fstype: String,
    /// The super block options (`rw,cpu,cpuacct`, `rw,xattr,name=systemd`).
    pub super_opts: String,
    /// The device number of the mount (`major:minor` in mountinfo).
    pub dev: (u32, u32),
}

impl CgroupMount {
    /// The v1 controllers (and `name=...` hierarchies) named in the super
    /// block options, given the controllers this kernel knows.
    pub fn subsystems(&self, known: &[String]) -> Vec<String> {
        if self.fstype != "cgroup" {
            return Vec::new();
        }
        // A controller /proc/cgroups lists, or any option that is not a
        // mount flag (that list may be missing or leave some out).
        const FLAGS: &[&str] = &[
            "rw",
            "ro",
            "none",
            "all",
            "noprefix",
            "xattr",
            "clone_children",
            "cpuset_v2_mode",
            "favordynmods",
        ];
        let is_subsystem =
            |o: &str| known.iter().any(|k| k == o) || (!FLAGS.contains(&o) && !o.contains('='));
        self.super_opts
            .split(',')
            .filter(|o| o.starts_with("name=") || is_subsystem(o))
            .map(str::to_string)
            .collect()
    }
}

/// Undo mountinfo's octal escapes (`\040` for a space, and so on).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(d)) => {
                let v = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_line(line: &str) -> Option<CgroupMount> {
    let (left, right) = line.split_once(" - ")?;
    let mut r = right.split(' ');
    let fstype = r.next()?;
    if fstype != "cgroup" && fstype != "cgroup2" {
        return None;
    }
    let _source = r.next();
    let super_opts = r.next().unwrap_or("");
    let f: Vec<&str> = left.split(' ').collect();
    let (dev, root, point) = (f.get(2)?, f.get(3)?, f.get(4)?);
    let (ma, mi) = dev.split_once(':')?;
    Some(CgroupMount {
        point: PathBuf::from(unescape(point)),
        root: unescape(root),
        fstype: fstype.to_string(),
        super_opts: super_opts.to_string(),
        dev: (ma.parse().ok()?, mi.parse().ok()?),
    })
}

/// Every cgroup entry of a mountinfo text, in the table's order.
pub fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    text.lines().filter_map(parse_line).collect()
}

/// The controllers this kernel knows, from the text of `/proc/cgroups`.
pub fn parse_proc_cgroups(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Keeps, for each mount point, the one entry whose mount is visible
/// there: the device of the path must be the entry's. `dev_of` is the
/// device of a path (`None` when it cannot be seen), so that this can be
/// tested without mounts. Of entries with the same mount point and device
/// (the same hierarchy mounted twice in the same place) the last is kept.
pub fn visible(
    mounts: Vec<CgroupMount>,
    dev_of: impl Fn(&Path) -> Option<(u32, u32)>,
) -> Vec<CgroupMount> {
    let mut out: Vec<CgroupMount> = Vec::new();
    for m in mounts {
        if dev_of(&m.point) != Some(m.dev) {
            continue;
        }
        out.retain(|o| o.point != m.point);
        out.push(m);
    }
    out
}

/// The device number of a path, as mountinfo writes it.
pub fn dev_of(p: &Path) -> Option<(u32, u32)> {
    let d = std::fs::metadata(p).ok()?.dev();
    Some((libc::major(d), libc::minor(d)))
}

/// The cgroup mounts visible in this process's mount namespace.
pub fn current() -> Result<Vec<CgroupMount>> {
    let p = "/proc/self/mountinfo";
    let text = std::fs::read_to_string(p).map_err(io_err(p))?;
    Ok(visible(parse_mountinfo(&text), dev_of))
}

/// The controllers this kernel knows (empty when /proc/cgroups is missing).
pub fn known_controllers() -> Vec<String> {
    std::fs::read_to_string("/proc/cgroups")
        .map(|t| parse_proc_cgroups(&t))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct,clone_children
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
50 23 0:60 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw
51 50 0:29 /a\\040b /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
";

    #[test]
    fn parses_entries_and_options() {
        let m = parse_mountinfo(INFO);
        assert_eq!(m.len(), 5);
        assert_eq!(m[0].point, PathBuf::from("/sys/fs/cgroup/cpu"));
        assert_eq!(m[0].dev, (0, 29));
        assert_eq!(m[4].root, "/a b");
        let known: Vec<String> = ["cpu", "cpuacct", "memory"].map(String::from).to_vec();
        assert_eq!(m[1].subsystems(&known), vec!["cpu", "cpuacct"]);
        assert_eq!(m[2].subsystems(&known), vec!["name=systemd"]);
        assert!(m[3].subsystems(&known).is_empty());
        // Without /proc/cgroups the mount flags are still told apart.
        assert_eq!(m[1].subsystems(&[]), vec!["cpu", "cpuacct"]);
        assert_eq!(m[2].subsystems(&[]), vec!["name=systemd"]);
    }

    #[test]
    fn only_the_visible_mount_counts() {
        // The new tmpfs covers the old one: cpu,cpuacct and systemd are
        // hidden, cpu is mounted again at the same place.
        let dev = |p: &Path| match p.to_str()? {
            "/sys/fs/cgroup/cpu" => Some((0, 29)),
            _ => Some((0, 60)),
        };
        let v = visible(parse_mountinfo(INFO), dev);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].root, "/a b");
    }

    #[test]
    fn proc_cgroups() {
        let t = "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t3\t1\t1\ncpu\t1\t1\t1\n";
        assert_eq!(parse_proc_cgroups(t), vec!["cpuset", "cpu"]);
    }
}
