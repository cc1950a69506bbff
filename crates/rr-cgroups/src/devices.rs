//! Device access rules: validation of the spec's `linux.resources.devices`
//! and their v1 text form. The v2 form is an eBPF program, see [`crate::bpf`].

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::error::{invalid, Result};

/// Which device nodes a rule covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// Every type.
    All,
    /// Character devices.
    Char,
    /// Block devices.
    Block,
}

/// Access bits with the values the kernel uses for eBPF device programs.
pub mod access {
    /// mknod.
    pub const MKNOD: u32 = 1;
    /// read.
    pub const READ: u32 = 2;
    /// write.
    pub const WRITE: u32 = 4;
    /// all three.
    pub const ALL: u32 = 7;
}

/// One validated device rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRule {
    /// Allow (true) or deny (false).
    pub allow: bool,
    /// The device type.
    pub kind: DeviceKind,
    /// Major number, `None` for any.
    pub major: Option<u32>,
    /// Minor number, `None` for any.
    pub minor: Option<u32>,
    /// [`access`] bits.
    pub access: u32,
}

fn number(field: &str, v: Option<i64>) -> Result<Option<u32>> {
    match v {
        None | Some(-1) => Ok(None),
        Some(n) if n < 0 => Err(invalid(field, n, "must be >= 0 (or -1 for any)")),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| invalid(field, n, "larger than a device number can be")),
    }
}

/// Parse an access string such as `rwm` into bits; empty means all.
pub fn parse_access(field: &str, s: &str) -> Result<u32> {
    if s.is_empty() {
        return Ok(access::ALL);
    }
    let mut bits = 0;
    for c in s.chars() {
        bits |= match c {
            'r' => access::READ,
            'w' => access::WRITE,
            'm' => access::MKNOD,
            _ => {
                return Err(invalid(
                    field,
                    s,
                    format!("unknown access {c:?}, expected r, w or m"),
                ))
            }
        };
    }
    Ok(bits)
}

impl DeviceRule {
    /// Validate one spec rule.
    pub fn from_oci(index: usize, r: &LinuxDeviceCgroup) -> Result<DeviceRule> {
        let field = format!("linux.resources.devices[{index}]");
        let kind = match r.typ() {
            None | Some(LinuxDeviceType::A) => DeviceKind::All,
            Some(LinuxDeviceType::C) => DeviceKind::Char,
            Some(LinuxDeviceType::B) => DeviceKind::Block,
            Some(other) => {
                return Err(invalid(
                    &format!("{field}.type"),
                    other.as_str(),
                    "the device cgroup only knows a, b and c",
                ))
            }
        };
        Ok(DeviceRule {
            allow: r.allow(),
            kind,
            major: number(&format!("{field}.major"), r.major())?,
            minor: number(&format!("{field}.minor"), r.minor())?,
            access: parse_access(
                &format!("{field}.access"),
                r.access().as_deref().unwrap_or(""),
            )?,
        })
    }

    /// Validate a whole list.
    pub fn from_oci_list(rules: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>> {
        rules
            .iter()
            .enumerate()
            .map(|(i, r)| DeviceRule::from_oci(i, r))
            .collect()
    }

    /// The line written to v1 `devices.allow` / `devices.deny`.
    pub fn v1_line(&self) -> String {
        let t = match self.kind {
            DeviceKind::All => 'a',
            DeviceKind::Char => 'c',
            DeviceKind::Block => 'b',
        };
        let n = |v: Option<u32>| v.map_or_else(|| "*".to_string(), |v| v.to_string());
        let mut acc = String::new();
        for (bit, c) in [
            (access::READ, 'r'),
            (access::WRITE, 'w'),
            (access::MKNOD, 'm'),
        ] {
            if self.access & bit != 0 {
                acc.push(c);
            }
        }
        format!("{t} {}:{} {acc}", n(self.major), n(self.minor))
    }

    /// The v1 file the rule goes to.
    pub fn v1_file(&self) -> &'static str {
        if self.allow {
            "devices.allow"
        } else {
            "devices.deny"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    #[test]
    fn lines() {
        let r = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .access("rw")
            .build()
            .unwrap();
        let d = DeviceRule::from_oci(0, &r).unwrap();
        assert_eq!(d.v1_line(), "c 1:3 rw");
        assert_eq!(d.v1_file(), "devices.allow");
        let all = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap();
        let d = DeviceRule::from_oci(0, &all).unwrap();
        assert_eq!(d.v1_line(), "a *:* rwm");
        assert_eq!(d.v1_file(), "devices.deny");
    }

    #[test]
    fn bad_rules() {
        let fifo = LinuxDeviceCgroupBuilder::default()
            .typ(LinuxDeviceType::P)
            .build()
            .unwrap();
        let e = DeviceRule::from_oci(2, &fifo).unwrap_err().to_string();
        assert!(e.contains("devices[2].type"), "{e}");
        let neg = LinuxDeviceCgroupBuilder::default()
            .major(-5)
            .build()
            .unwrap();
        assert!(DeviceRule::from_oci(0, &neg).is_err());
        let acc = LinuxDeviceCgroupBuilder::default()
            .access("rx")
            .build()
            .unwrap();
        assert!(DeviceRule::from_oci(0, &acc).is_err());
    }
}
