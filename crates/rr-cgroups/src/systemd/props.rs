//! The spec's resources as systemd unit properties, as runc sets them on
//! the units it creates, and the base properties of a container's unit.

use oci_spec::runtime::LinuxResources;

use crate::convert;
use crate::devices::{access, DeviceKind, DeviceRule};
use crate::error::{invalid, Result};

/// A D-Bus value of the few types unit properties need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `b`
    Bool(bool),
    /// `t`
    U64(u64),
    /// `s`
    Str(String),
    /// `au`
    U32s(Vec<u32>),
    /// `ay`
    Bytes(Vec<u8>),
    /// `a(ss)`
    Pairs(Vec<(String, String)>),
}

impl Value {
    /// The D-Bus signature of the value.
    pub fn signature(&self) -> &'static str {
        match self {
            Value::Bool(_) => "b",
            Value::U64(_) => "t",
            Value::Str(_) => "s",
            Value::U32s(_) => "au",
            Value::Bytes(_) => "ay",
            Value::Pairs(_) => "a(ss)",
        }
    }
}

/// One unit property: name and value.
pub type Property = (String, Value);

fn prop(name: &str, v: Value) -> Property {
    (name.to_string(), v)
}

/// systemd's "infinity" for byte and task counts and for time spans.
pub const INFINITY: u64 = u64::MAX;

/// The properties of a new unit for a container, before its resources:
/// a scope goes into `slice` with delegation; a slice only wants its
/// parent. Accounting is on so that the cgroup files runc relies on exist.
pub fn base(slice: &str, is_slice: bool, description: &str, pid: Option<u32>) -> Vec<Property> {
    let mut p = vec![prop("Description", Value::Str(description.into()))];
    if is_slice {
        p.push(prop("Wants", Value::Str(slice.into())));
    } else {
        p.push(prop("Slice", Value::Str(slice.into())));
        p.push(prop("Delegate", Value::Bool(true)));
    }
    if let Some(pid) = pid {
        p.push(prop("PIDs", Value::U32s(vec![pid])));
    }
    for a in [
        "MemoryAccounting",
        "CPUAccounting",
        "IOAccounting",
        "TasksAccounting",
    ] {
        p.push(prop(a, Value::Bool(true)));
    }
    p.push(prop("DefaultDependencies", Value::Bool(false)));
    p
}

/// `CPUQuotaPerSecUSec` for a CFS quota and period: microseconds of CPU
/// per second, rounded up to whole 10 ms, as systemd keeps it as a
/// percentage; a quota of 0 or less is infinity.
pub fn cpu_quota_per_sec(quota: i64, period: u64) -> u64 {
    if quota <= 0 {
        return INFINITY;
    }
    let period = if period == 0 {
        convert::DEFAULT_PERIOD
    } else {
        period
    };
    let per_sec = (quota as u64).saturating_mul(1_000_000) / period;
    per_sec.div_ceil(10_000).saturating_mul(10_000)
}

/// A cpuset list (`0-3,7`) as the little-endian bit mask systemd takes
/// for `AllowedCPUs`/`AllowedMemoryNodes` (byte 0 holds bits 0-7).
pub fn cpuset_bits(field: &str, list: &str) -> Result<Vec<u8>> {
    let mut bytes: Vec<u8> = Vec::new();
    let num = |s: &str| -> Result<usize> {
        let n: u32 = s
            .trim()
            .parse()
            .map_err(|_| invalid(field, list, format!("{s:?} is not a number")))?;
        // Kernels cap CPUs and nodes far below this; it bounds the mask.
        if n >= 1 << 16 {
            return Err(invalid(field, list, format!("{n} is too large")));
        }
        Ok(n as usize)
    };
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(part)?, num(part)?),
        };
        if lo > hi {
            return Err(invalid(field, list, format!("range {part} is reversed")));
        }
        for bit in lo..=hi {
            if bytes.len() <= bit / 8 {
                bytes.resize(bit / 8 + 1, 0);
            }
            bytes[bit / 8] |= 1 << (bit % 8);
        }
    }
    if bytes.is_empty() {
        return Err(invalid(field, list, "names no CPU or node"));
    }
    Ok(bytes)
}

/// The name `/proc/devices` gives a major number of a kind (`pts` for
/// char 136), used by systemd for rules on every minor of a major.
pub fn device_group(proc_devices: &str, kind: DeviceKind, major: u32) -> Option<String> {
    let header = match kind {
        DeviceKind::Char => "Character devices:",
        DeviceKind::Block => "Block devices:",
        DeviceKind::All => return None,
    };
    let mut in_section = false;
    for line in proc_devices.lines() {
        let line = line.trim();
        if line.ends_with(':') {
            in_section = line == header;
            continue;
        }
        if !in_section {
            continue;
        }
        let mut it = line.split_whitespace();
        if it.next().and_then(|m| m.parse::<u32>().ok()) == Some(major) {
            return it.next().map(str::to_string);
        }
    }
    None
}

fn access_text(bits: u32) -> String {
    [
        (access::READ, 'r'),
        (access::WRITE, 'w'),
        (access::MKNOD, 'm'),
    ]
    .iter()
    .filter(|(b, _)| bits & b != 0)
    .map(|(_, c)| *c)
    .collect()
}

/// The allow list the rules end in, when they end in one: runs them over
/// an allow list that a deny of everything empties. `None` when access is
/// allowed by default at the end (systemd has no deny lists).
fn final_allow_list(rules: &[DeviceRule]) -> Option<Vec<DeviceRule>> {
    let mut default_allow = true;
    let mut list: Vec<DeviceRule> = Vec::new();
    for r in rules {
        let everything = r.kind == DeviceKind::All && r.major.is_none() && r.minor.is_none();
        if everything && r.access == access::ALL {
            default_allow = r.allow;
            list.clear();
            continue;
        }
        if default_allow {
            // A deny list is kept by the cgroup's own program only.
            continue;
        }
        if r.allow {
            list.push(*r);
        } else {
            list.retain_mut(|e| {
                if e.kind == r.kind && e.major == r.major && e.minor == r.minor {
                    e.access &= !r.access;
                }
                e.access != 0
            });
        }
    }
    (!default_allow).then_some(list)
}

fn device_paths(r: &DeviceRule, proc_devices: &str) -> Vec<String> {
    let kinds: &[(DeviceKind, &str, &str)] = match r.kind {
        DeviceKind::Char => &[(DeviceKind::Char, "char", "/dev/char")],
        DeviceKind::Block => &[(DeviceKind::Block, "block", "/dev/block")],
        DeviceKind::All => &[
            (DeviceKind::Char, "char", "/dev/char"),
            (DeviceKind::Block, "block", "/dev/block"),
        ],
    };
    kinds
        .iter()
        .filter_map(|(kind, glob, dir)| match (r.major, r.minor) {
            (None, _) => Some(format!("{glob}-*")),
            (Some(maj), None) => {
                device_group(proc_devices, *kind, maj).map(|g| format!("{glob}-{g}"))
            }
            (Some(maj), Some(min)) => Some(format!("{dir}/{maj}:{min}")),
        })
        .collect()
}

/// `DevicePolicy=strict` and the `DeviceAllow` list for the spec's device
/// rules, or nothing when the rules end in a deny list or there are none
/// (then the cgroup's own device program enforces them alone). A rule on
/// every minor of a major that `/proc/devices` does not name is left to
/// that program too.
pub fn device_properties(rules: &[DeviceRule], proc_devices: &str) -> Vec<Property> {
    let Some(list) = final_allow_list(rules) else {
        return Vec::new();
    };
    let mut allow = Vec::new();
    for r in &list {
        let perms = access_text(r.access);
        for path in device_paths(r, proc_devices) {
            allow.push((path, perms.clone()));
        }
    }
    vec![
        prop("DevicePolicy", Value::Str("strict".into())),
        prop("DeviceAllow", Value::Pairs(allow)),
    ]
}

/// Which cgroup version's property names to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// cgroup v2 names (MemoryMax, CPUWeight, IOWeight...).
    V2,
    /// cgroup v1 names (MemoryLimit, CPUShares, BlockIOWeight...).
    V1,
}

fn memory_props(r: &LinuxResources, flavor: Flavor, out: &mut Vec<Property>) -> Result<()> {
    let Some(m) = r.memory() else { return Ok(()) };
    let bytes = |v: i64| if v < 0 { INFINITY } else { v as u64 };
    let limit = m.limit().unwrap_or(0);
    if limit != 0 {
        let name = if flavor == Flavor::V2 {
            "MemoryMax"
        } else {
            "MemoryLimit"
        };
        out.push(prop(name, Value::U64(bytes(limit))));
    }
    if flavor == Flavor::V1 {
        return Ok(());
    }
    if let Some(low) = m.reservation().filter(|v| *v != 0) {
        out.push(prop("MemoryLow", Value::U64(bytes(low))));
    }
    if let Some(swap) = m.swap() {
        if let Some(v) = convert::swap_v1_to_v2(swap, limit)? {
            let v = if v == "max" {
                INFINITY
            } else {
                v.parse().unwrap_or(INFINITY)
            };
            out.push(prop("MemorySwapMax", Value::U64(v)));
        }
    }
    Ok(())
}

fn cpu_props(r: &LinuxResources, flavor: Flavor, out: &mut Vec<Property>) -> Result<()> {
    let Some(c) = r.cpu() else { return Ok(()) };
    if let Some(shares) = c.shares().filter(|s| *s != 0) {
        match flavor {
            Flavor::V2 => out.push(prop(
                "CPUWeight",
                Value::U64(convert::cpu_shares_to_weight(shares)),
            )),
            Flavor::V1 => out.push(prop("CPUShares", Value::U64(shares))),
        }
    }
    let quota = c.quota().unwrap_or(0);
    let period = c.period().unwrap_or(0);
    if period != 0 {
        out.push(prop("CPUQuotaPeriodUSec", Value::U64(period)));
    }
    if quota != 0 || period != 0 {
        out.push(prop(
            "CPUQuotaPerSecUSec",
            Value::U64(cpu_quota_per_sec(quota, period)),
        ));
    }
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.trim().is_empty()) {
        let bits = cpuset_bits("linux.resources.cpu.cpus", cpus)?;
        out.push(prop("AllowedCPUs", Value::Bytes(bits)));
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.trim().is_empty()) {
        let bits = cpuset_bits("linux.resources.cpu.mems", mems)?;
        out.push(prop("AllowedMemoryNodes", Value::Bytes(bits)));
    }
    Ok(())
}

/// The unit properties for `r`. `proc_devices` is the text of
/// `/proc/devices`. Everything else in `r` has no property and is written
/// to the cgroup files only (see [`file_only_fields`]).
pub fn resources(r: &LinuxResources, flavor: Flavor, proc_devices: &str) -> Result<Vec<Property>> {
    let mut out = Vec::new();
    if let Some(d) = r.devices() {
        if !d.is_empty() {
            let rules = DeviceRule::from_oci_list(d)?;
            out.extend(device_properties(&rules, proc_devices));
        }
    }
    memory_props(r, flavor, &mut out)?;
    cpu_props(r, flavor, &mut out)?;
    if let Some(limit) = r.pids().as_ref().map(|p| p.limit()) {
        if limit > 0 || limit == -1 {
            let v = if limit < 0 { INFINITY } else { limit as u64 };
            out.push(prop("TasksMax", Value::U64(v)));
        }
    }
    if let Some(w) = r
        .block_io()
        .as_ref()
        .and_then(|b| b.weight())
        .filter(|w| *w != 0)
    {
        match flavor {
            Flavor::V2 => out.push(prop(
                "IOWeight",
                Value::U64(convert::blkio_weight_to_io_weight(w)),
            )),
            Flavor::V1 => out.push(prop("BlockIOWeight", Value::U64(u64::from(w)))),
        }
    }
    Ok(out)
}

/// The spec fields set in `r` that no unit property carries: only the
/// cgroup files hold them (written after the unit exists).
pub fn file_only_fields(r: &LinuxResources) -> Vec<&'static str> {
    let mut f = Vec::new();
    if let Some(m) = r.memory() {
        if m.kernel().is_some() || m.kernel_tcp().is_some() {
            f.push("linux.resources.memory.kernel");
        }
        if m.swappiness().is_some() {
            f.push("linux.resources.memory.swappiness");
        }
        if m.disable_oom_killer().is_some() {
            f.push("linux.resources.memory.disableOOMKiller");
        }
    }
    if let Some(c) = r.cpu() {
        if c.realtime_runtime().is_some() || c.realtime_period().is_some() {
            f.push("linux.resources.cpu.realtime");
        }
        if c.idle().is_some() {
            f.push("linux.resources.cpu.idle");
        }
    }
    if let Some(b) = r.block_io() {
        if b.leaf_weight().is_some() || b.weight_device().is_some() {
            f.push("linux.resources.blockIO.weightDevice");
        }
        if b.throttle_read_bps_device().is_some()
            || b.throttle_write_bps_device().is_some()
            || b.throttle_read_iops_device().is_some()
            || b.throttle_write_iops_device().is_some()
        {
            f.push("linux.resources.blockIO.throttle*");
        }
    }
    if r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()) {
        f.push("linux.resources.hugepageLimits");
    }
    if r.network().is_some() {
        f.push("linux.resources.network");
    }
    if r.rdma().is_some() {
        f.push("linux.resources.rdma");
    }
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        f.push("linux.resources.unified");
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    fn get<'a>(p: &'a [Property], name: &str) -> Option<&'a Value> {
        p.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    const PROC_DEVICES: &str = "Character devices:\n  1 mem\n  5 /dev/tty\n136 pts\n\nBlock devices:\n  8 sd\n259 blkext\n";

    #[test]
    fn quota_rounds_up_to_10ms() {
        assert_eq!(cpu_quota_per_sec(50_000, 100_000), 500_000);
        assert_eq!(cpu_quota_per_sec(12_345, 100_000), 130_000);
        assert_eq!(cpu_quota_per_sec(1, 100_000), 10_000);
        assert_eq!(cpu_quota_per_sec(20_000, 0), 200_000);
        assert_eq!(cpu_quota_per_sec(-1, 100_000), INFINITY);
        assert_eq!(cpu_quota_per_sec(0, 50_000), INFINITY);
        assert_eq!(cpu_quota_per_sec(150_000, 100_000), 1_500_000);
    }

    #[test]
    fn cpuset_masks() {
        let f = "linux.resources.cpu.cpus";
        assert_eq!(cpuset_bits(f, "0").unwrap(), vec![0x01]);
        assert_eq!(cpuset_bits(f, "0-1").unwrap(), vec![0x03]);
        assert_eq!(cpuset_bits(f, "9").unwrap(), vec![0x00, 0x02]);
        assert_eq!(cpuset_bits(f, "0-3, 8,,15").unwrap(), vec![0x0f, 0x81]);
        assert!(cpuset_bits(f, "3-1").is_err());
        assert!(cpuset_bits(f, "").is_err());
        assert!(cpuset_bits(f, "x").is_err());
        assert!(cpuset_bits(f, "70000").is_err());
    }

    #[test]
    fn v2_resources() {
        let r = res(
            r#"{"memory":{"limit":104857600,"reservation":52428800,"swap":209715200},
            "cpu":{"shares":1024,"quota":50000,"period":100000,"cpus":"0-1","mems":"0"},
            "pids":{"limit":64},"blockIO":{"weight":500}}"#,
        );
        let p = resources(&r, Flavor::V2, PROC_DEVICES).unwrap();
        assert_eq!(get(&p, "MemoryMax"), Some(&Value::U64(104_857_600)));
        assert_eq!(get(&p, "MemoryLow"), Some(&Value::U64(52_428_800)));
        assert_eq!(get(&p, "MemorySwapMax"), Some(&Value::U64(104_857_600)));
        assert_eq!(get(&p, "CPUWeight"), Some(&Value::U64(100)));
        assert_eq!(get(&p, "CPUQuotaPeriodUSec"), Some(&Value::U64(100_000)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(500_000)));
        assert_eq!(get(&p, "AllowedCPUs"), Some(&Value::Bytes(vec![3])));
        assert_eq!(get(&p, "AllowedMemoryNodes"), Some(&Value::Bytes(vec![1])));
        assert_eq!(get(&p, "TasksMax"), Some(&Value::U64(64)));
        assert_eq!(
            get(&p, "IOWeight"),
            Some(&Value::U64(convert::blkio_weight_to_io_weight(500)))
        );
        assert!(get(&p, "CPUShares").is_none() && get(&p, "DevicePolicy").is_none());
    }

    #[test]
    fn v1_names_and_unlimited() {
        let r = res(
            r#"{"memory":{"limit":-1},"cpu":{"shares":512},"pids":{"limit":-1},
            "blockIO":{"weight":300}}"#,
        );
        let p = resources(&r, Flavor::V1, "").unwrap();
        assert_eq!(get(&p, "MemoryLimit"), Some(&Value::U64(INFINITY)));
        assert_eq!(get(&p, "CPUShares"), Some(&Value::U64(512)));
        assert_eq!(get(&p, "TasksMax"), Some(&Value::U64(INFINITY)));
        assert_eq!(get(&p, "BlockIOWeight"), Some(&Value::U64(300)));
        assert!(get(&p, "MemoryMax").is_none() && get(&p, "CPUWeight").is_none());
        let none = resources(&res(r#"{"pids":{"limit":0}}"#), Flavor::V2, "").unwrap();
        assert!(none.is_empty(), "{none:?}");
    }

    #[test]
    fn bad_swap_is_refused() {
        let r = res(r#"{"memory":{"limit":1000,"swap":500}}"#);
        assert!(resources(&r, Flavor::V2, "").is_err());
    }

    #[test]
    fn device_allow_list() {
        let r = res(r#"{"devices":[{"allow":false,"access":"rwm"},
            {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},
            {"allow":true,"type":"c","major":136,"access":"rw"},
            {"allow":true,"type":"b","access":"m"},
            {"allow":true,"type":"c","major":99,"access":"r"},
            {"allow":true,"type":"c","major":1,"minor":5,"access":"rwm"},
            {"allow":false,"type":"c","major":1,"minor":5,"access":"w"}]}"#);
        let p = resources(&r, Flavor::V2, PROC_DEVICES).unwrap();
        assert_eq!(get(&p, "DevicePolicy"), Some(&Value::Str("strict".into())));
        let want: Vec<(String, String)> = [
            ("/dev/char/1:3", "rwm"),
            ("char-pts", "rw"),
            ("block-*", "m"),
            ("/dev/char/1:5", "rm"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(get(&p, "DeviceAllow"), Some(&Value::Pairs(want)));
    }

    #[test]
    fn deny_lists_have_no_device_properties() {
        let r =
            res(r#"{"devices":[{"allow":false,"type":"c","major":1,"minor":3,"access":"rwm"}]}"#);
        assert!(resources(&r, Flavor::V2, "").unwrap().is_empty());
        let r =
            res(r#"{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"access":"rwm"}]}"#);
        assert!(resources(&r, Flavor::V2, "").unwrap().is_empty());
    }

    #[test]
    fn base_properties() {
        let p = base("system.slice", false, "libcontainer container x", Some(42));
        assert_eq!(get(&p, "Slice"), Some(&Value::Str("system.slice".into())));
        assert_eq!(get(&p, "Delegate"), Some(&Value::Bool(true)));
        assert_eq!(get(&p, "PIDs"), Some(&Value::U32s(vec![42])));
        assert_eq!(get(&p, "DefaultDependencies"), Some(&Value::Bool(false)));
        let s = base("system.slice", true, "d", None);
        assert_eq!(get(&s, "Wants"), Some(&Value::Str("system.slice".into())));
        assert!(get(&s, "Delegate").is_none() && get(&s, "PIDs").is_none());
    }

    #[test]
    fn file_only() {
        let r = res(
            r#"{"memory":{"limit":1000,"swappiness":10},"cpu":{"shares":2},
            "hugepageLimits":[{"pageSize":"2MB","limit":0}],"unified":{"memory.high":"1"}}"#,
        );
        assert_eq!(
            file_only_fields(&r),
            vec![
                "linux.resources.memory.swappiness",
                "linux.resources.hugepageLimits",
                "linux.resources.unified"
            ]
        );
    }
}
