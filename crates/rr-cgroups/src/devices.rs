//! Device access rules: validation of the spec's `linux.resources.devices`
//! and their v1 text form. The v2 form is an eBPF program, see [`crate::bpf`].

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::error::{invalid, Result, Warning};

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

fn access_bit(c: char) -> Option<u32> {
    match c {
        'r' => Some(access::READ),
        'w' => Some(access::WRITE),
        'm' => Some(access::MKNOD),
        _ => None,
    }
}

/// Parse an access string such as `rwm` into bits; empty means all.
/// Letters other than r, w and m are left out, as runc does (see
/// [`unknown_access_warnings`]); a string with none of r, w and m is an
/// error, as runc's create fails on it.
pub fn parse_access(field: &str, s: &str) -> Result<u32> {
    if s.is_empty() {
        return Ok(access::ALL);
    }
    let bits = s.chars().filter_map(access_bit).fold(0, |a, b| a | b);
    if bits == 0 {
        return Err(invalid(field, s, "names none of r, w and m"));
    }
    Ok(bits)
}

/// A warning for each rule whose access string has letters other than r,
/// w and m, which are ignored.
pub fn unknown_access_warnings(rules: &[LinuxDeviceCgroup]) -> Vec<Warning> {
    rules
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let acc = r.access().as_deref().unwrap_or("");
            let unknown: String = acc.chars().filter(|c| access_bit(*c).is_none()).collect();
            (!unknown.is_empty()).then(|| Warning {
                field: format!("linux.resources.devices[{i}].access"),
                message: format!(
                    "{acc:?}: unknown access {unknown:?} ignored (only r, w and m exist)"
                ),
            })
        })
        .collect()
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
            .access("xa")
            .build()
            .unwrap();
        let e = DeviceRule::from_oci(0, &acc).unwrap_err().to_string();
        assert!(e.contains("devices[0].access") && e.contains("xa"), "{e}");
    }

    /// runc 1.1.5 writes `rwa` as `rw` and runs the container.
    #[test]
    fn unknown_access_letters_are_left_out_with_a_warning() {
        let r = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(11)
            .access("rwa")
            .build()
            .unwrap();
        assert_eq!(DeviceRule::from_oci(0, &r).unwrap().v1_line(), "c 1:11 rw");
        let ok = LinuxDeviceCgroupBuilder::default()
            .access("rwm")
            .build()
            .unwrap();
        let w = unknown_access_warnings(&[ok, r]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].field, "linux.resources.devices[1].access");
        assert!(w[0].message.contains("\"a\""), "{}", w[0].message);
    }
}
