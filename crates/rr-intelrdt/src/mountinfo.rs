//! Finding the resctrl mount in `/proc/self/mountinfo` text (pure).

use std::path::PathBuf;

/// A resctrl mount found in mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResctrlMount {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Whether it is mounted with `mba_MBps` (MB values are then MBps).
    pub mba_mbps: bool,
}

/// The first `resctrl` entry of a mountinfo text, if any. Lines that do
/// not have the mountinfo layout are skipped.
pub fn find_resctrl(mountinfo: &str) -> Option<ResctrlMount> {
    mountinfo.lines().find_map(parse_line)
}

/// One mountinfo line: `id parent maj:min root mountpoint options
/// [optional fields...] - fstype source super_options`.
fn parse_line(line: &str) -> Option<ResctrlMount> {
    let fields: Vec<&str> = line.split(' ').collect();
    let sep = fields.iter().position(|f| *f == "-")?;
    let mount_point = fields.get(4)?;
    let mount_options = fields.get(5)?;
    if sep < 6 {
        return None;
    }
    let fstype = fields.get(sep + 1)?;
    if *fstype != "resctrl" {
        return None;
    }
    let super_options = fields.get(sep + 3).copied().unwrap_or("");
    let has_mbps = |opts: &str| opts.split(',').any(|o| o == "mba_MBps");
    Some(ResctrlMount {
        mount_point: PathBuf::from(unescape(mount_point)),
        mba_mbps: has_mbps(super_options) || has_mbps(mount_options),
    })
}

/// The kernel writes space, tab, newline and backslash in paths as `\ooo`.
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' {
            if let Some(oct) = bytes.get(i + 1..i + 4) {
                if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                    let v = oct
                        .iter()
                        .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                    if let Ok(byte) = u8::try_from(v) {
                        out.push(byte);
                        i += 4;
                        continue;
                    }
                }
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
25 22 0:6 / /sys/kernel/security rw,nosuid,nodev,noexec,relatime shared:8 - securityfs securityfs rw
40 22 0:35 / /sys/fs/resctrl rw,relatime shared:20 - resctrl resctrl rw,mba_MBps
41 22 0:36 / /mnt/other\\040rdt rw,relatime - resctrl resctrl rw
";

    #[test]
    fn finds_first_resctrl_and_mbps() {
        let m = find_resctrl(SAMPLE).unwrap();
        assert_eq!(m.mount_point, PathBuf::from("/sys/fs/resctrl"));
        assert!(m.mba_mbps);
    }

    #[test]
    fn unescapes_and_no_mbps() {
        let text = SAMPLE.lines().nth(3).unwrap();
        let m = find_resctrl(text).unwrap();
        assert_eq!(m.mount_point, PathBuf::from("/mnt/other rdt"));
        assert!(!m.mba_mbps);
    }

    #[test]
    fn none_without_resctrl_and_no_panic_on_garbage() {
        assert_eq!(find_resctrl(SAMPLE.lines().next().unwrap()), None);
        for junk in [
            "",
            "-",
            "- resctrl",
            "1 2 3 4 5 - resctrl",
            "a b c d e f - resctrl x y",
            "\\",
            "\\0",
        ] {
            let _ = find_resctrl(junk);
        }
        assert_eq!(unescape("a\\134b\\"), "a\\b\\");
    }
}
