//! Turning `linux.resources` into an ordered list of cgroup file writes.
//!
//! Pure: validation happens here, before anything on the host is touched,
//! so bad input never leaves a half-configured cgroup behind.

use std::collections::BTreeMap;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources, LinuxThrottleDevice};

use crate::convert;
use crate::devices::DeviceRule;
use crate::error::{invalid, Error, Result, Warning};

/// One write into a cgroup file. `choices` holds `(file, value)` pairs; the
/// first file that exists is written (e.g. `blkio.weight` vs `blkio.bfq.weight`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileWrite {
    /// The spec field the write comes from, e.g.
    /// `linux.resources.blockIO.weightDevice`; a failed write names it, as
    /// the file and converted value alone may not lead back to the spec.
    pub field: String,
    /// The controller (v1 hierarchy) the file belongs to.
    pub controller: String,
    /// Candidate files with the value to write into each.
    pub choices: Vec<(String, String)>,
}

impl FileWrite {
    fn one(
        field: impl Into<String>,
        controller: &str,
        file: impl Into<String>,
        value: impl Into<String>,
    ) -> FileWrite {
        FileWrite {
            field: field.into(),
            controller: controller.to_string(),
            choices: vec![(file.into(), value.into())],
        }
    }

    /// The first candidate file name (for messages).
    pub fn first_file(&self) -> &str {
        self.choices.first().map_or("", |(f, _)| f.as_str())
    }
}

/// The writes for one `set`/`update`, plus what v2 needs besides files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// File writes, in the order they must happen.
    pub writes: Vec<FileWrite>,
    /// v2 only: the device rules for the eBPF program (`None`: leave alone).
    pub devices: Option<Vec<DeviceRule>>,
    /// Ignored fields.
    pub warnings: Vec<Warning>,
}

/// Facts about the current cgroup state that decide write order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Current {
    /// v1 `memory.memsw.limit_in_bytes` now (the memory limit may never exceed it).
    pub memsw_limit: Option<u64>,
}

const CPU: &str = "linux.resources.cpu";
const MEM: &str = "linux.resources.memory";
const BLK: &str = "linux.resources.blockIO";

/// Validate a cpu/memory-node list such as `0-3,7`.
pub fn validate_list(field: &str, s: &str) -> Result<()> {
    for item in s.trim().split(',') {
        let item = item.trim();
        let parse = |x: &str| {
            x.parse::<u32>()
                .map_err(|_| invalid(field, s, format!("{x:?} is not a number")))
        };
        match item.split_once('-') {
            Some((a, b)) => {
                if parse(a)? > parse(b)? {
                    return Err(invalid(field, s, format!("range {item} is reversed")));
                }
            }
            None => {
                parse(item)?;
            }
        }
    }
    Ok(())
}

/// Expand a list such as `0-2,5` into its members.
pub fn expand_list(s: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    if s.trim().is_empty() {
        return Some(out);
    }
    for item in s.trim().split(',') {
        match item.trim().split_once('-') {
            Some((a, b)) => {
                let (a, b) = (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?);
                if a > b || b - a > 1 << 16 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(item.trim().parse().ok()?),
        }
    }
    Some(out)
}

fn check_shares(v: u64) -> Result<()> {
    if !(convert::SHARES_MIN..=convert::SHARES_MAX).contains(&v) {
        return Err(invalid(
            &format!("{CPU}.shares"),
            v,
            format!(
                "must be between {} and {}",
                convert::SHARES_MIN,
                convert::SHARES_MAX
            ),
        ));
    }
    Ok(())
}

fn check_period(field: &str, v: u64) -> Result<()> {
    if !(1000..=1_000_000).contains(&v) {
        return Err(invalid(
            field,
            v,
            "must be between 1000 and 1000000 microseconds",
        ));
    }
    Ok(())
}

fn check_quota(v: i64) -> Result<()> {
    if v < -1 || (0..1000).contains(&v) && v != 0 {
        return Err(invalid(
            &format!("{CPU}.quota"),
            v,
            "must be -1 (unlimited) or at least 1000 microseconds",
        ));
    }
    Ok(())
}

/// -1 or a positive count; 0 means unset (`None`).
fn limit_or_unlimited(field: &str, v: i64) -> Result<Option<i64>> {
    match v {
        0 => Ok(None),
        v if v < -1 => Err(invalid(field, v, "must be -1 (unlimited) or positive")),
        v => Ok(Some(v)),
    }
}

fn check_weight(field: &str, w: u16) -> Result<Option<u16>> {
    match w {
        0 => Ok(None),
        10..=1000 => Ok(Some(w)),
        _ => Err(invalid(field, w, "must be between 10 and 1000")),
    }
}

fn dev_key(field: &str, major: i64, minor: i64) -> Result<String> {
    if major < 0 || minor < 0 || major > u32::MAX.into() || minor > u32::MAX.into() {
        return Err(invalid(
            field,
            format!("{major}:{minor}"),
            "device numbers must be >= 0",
        ));
    }
    Ok(format!("{major}:{minor}"))
}

fn check_swappiness(v: u64) -> Result<()> {
    if v > 100 {
        return Err(invalid(
            &format!("{MEM}.swappiness"),
            v,
            "must be between 0 and 100",
        ));
    }
    Ok(())
}

/// Validate a hugepage size such as `2MB` and return it unchanged.
pub fn check_page_size(s: &str) -> Result<&str> {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    if digits.is_empty()
        || !digits.chars().all(|c| c.is_ascii_digit())
        || !["KB", "MB", "GB"].contains(&unit)
    {
        return Err(invalid(
            "linux.resources.hugepageLimits.pageSize",
            s,
            "expected a size such as 2MB or 1GB",
        ));
    }
    Ok(s)
}

fn kernel_memory_warnings(m: &LinuxMemory, out: &mut Vec<Warning>) {
    #[allow(deprecated)]
    let kernel = m.kernel();
    if kernel.is_some() {
        out.push(Warning {
            field: format!("{MEM}.kernel"),
            message: "kernel memory limits were removed from Linux; ignored".into(),
        });
    }
    if m.kernel_tcp().is_some() {
        out.push(Warning {
            field: format!("{MEM}.kernelTCP"),
            message: "kernel TCP memory limits are not supported; ignored".into(),
        });
    }
}

fn rdma_writes(res: &LinuxResources, out: &mut Vec<FileWrite>) {
    let Some(rdma) = res.rdma() else { return };
    let sorted: BTreeMap<_, _> = rdma.iter().collect();
    for (dev, lim) in sorted {
        let mut parts = vec![dev.clone()];
        if let Some(h) = lim.hca_handles() {
            parts.push(format!("hca_handle={h}"));
        }
        if let Some(o) = lim.hca_objects() {
            parts.push(format!("hca_object={o}"));
        }
        if parts.len() > 1 {
            out.push(FileWrite::one(
                "linux.resources.rdma",
                "rdma",
                "rdma.max",
                parts.join(" "),
            ));
        }
    }
}

fn cpuset_writes(cpu: &LinuxCpu, out: &mut Vec<FileWrite>) -> Result<()> {
    if let Some(c) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
        validate_list(&format!("{CPU}.cpus"), c)?;
        out.push(FileWrite::one(
            format!("{CPU}.cpus"),
            "cpuset",
            "cpuset.cpus",
            c,
        ));
    }
    if let Some(m) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
        validate_list(&format!("{CPU}.mems"), m)?;
        out.push(FileWrite::one(
            format!("{CPU}.mems"),
            "cpuset",
            "cpuset.mems",
            m,
        ));
    }
    Ok(())
}

fn idle_value(cpu: &LinuxCpu) -> Result<Option<String>> {
    match cpu.idle() {
        None => Ok(None),
        Some(v @ (0 | 1)) => Ok(Some(v.to_string())),
        Some(v) => Err(invalid(&format!("{CPU}.idle"), v, "must be 0 or 1")),
    }
}

/// The writes for a v1 host.
pub fn plan_v1(res: &LinuxResources, cur: Current) -> Result<Plan> {
    let mut p = Plan::default();
    let w = &mut p.writes;
    if let Some(cpu) = res.cpu() {
        cpuset_writes(cpu, w)?;
        if let Some(s) = cpu.shares().filter(|s| *s != 0) {
            check_shares(s)?;
            w.push(FileWrite::one(
                format!("{CPU}.shares"),
                "cpu",
                "cpu.shares",
                s.to_string(),
            ));
        }
        if let Some(per) = cpu.period().filter(|v| *v != 0) {
            check_period(&format!("{CPU}.period"), per)?;
            w.push(FileWrite::one(
                format!("{CPU}.period"),
                "cpu",
                "cpu.cfs_period_us",
                per.to_string(),
            ));
        }
        if let Some(q) = cpu.quota().filter(|v| *v != 0) {
            check_quota(q)?;
            w.push(FileWrite::one(
                format!("{CPU}.quota"),
                "cpu",
                "cpu.cfs_quota_us",
                q.to_string(),
            ));
        }
        if let Some(b) = cpu.burst() {
            w.push(FileWrite::one(
                format!("{CPU}.burst"),
                "cpu",
                "cpu.cfs_burst_us",
                b.to_string(),
            ));
        }
        if let Some(rp) = cpu.realtime_period().filter(|v| *v != 0) {
            check_period(&format!("{CPU}.realtimePeriod"), rp)?;
            w.push(FileWrite::one(
                format!("{CPU}.realtimePeriod"),
                "cpu",
                "cpu.rt_period_us",
                rp.to_string(),
            ));
        }
        if let Some(rt) = cpu.realtime_runtime() {
            if rt < -1 {
                return Err(invalid(
                    &format!("{CPU}.realtimeRuntime"),
                    rt,
                    "must be -1 or >= 0",
                ));
            }
            w.push(FileWrite::one(
                format!("{CPU}.realtimeRuntime"),
                "cpu",
                "cpu.rt_runtime_us",
                rt.to_string(),
            ));
        }
        if let Some(v) = idle_value(cpu)? {
            w.push(FileWrite::one(format!("{CPU}.idle"), "cpu", "cpu.idle", v));
        }
    }
    if let Some(m) = res.memory() {
        kernel_memory_warnings(m, &mut p.warnings);
        let limit = match m.limit() {
            Some(l) => limit_or_unlimited(&format!("{MEM}.limit"), l)?,
            None => None,
        };
        let swap = match m.swap() {
            Some(s) => limit_or_unlimited(&format!("{MEM}.swap"), s)?,
            None => None,
        };
        // Lifting the memory limit lifts a memory+swap limit left below
        // it too, where the kernel has one (runc does the same): the kernel
        // refuses a memory limit above memsw.
        let (swap, swap_field) = match (limit, swap, cur.memsw_limit) {
            (Some(-1), None, Some(_)) => (Some(-1), format!("{MEM}.limit")),
            _ => (swap, format!("{MEM}.swap")),
        };
        if let (Some(l), Some(s)) = (limit, swap) {
            if l > 0 && s > 0 && s < l {
                return Err(invalid(
                    &format!("{MEM}.swap"),
                    s,
                    format!("memory+swap must be >= the memory limit {l}"),
                ));
            }
        }
        let lim_w = limit.map(|l| {
            FileWrite::one(
                format!("{MEM}.limit"),
                "memory",
                "memory.limit_in_bytes",
                l.to_string(),
            )
        });
        let swap_w = swap.map(|s| {
            FileWrite::one(
                swap_field,
                "memory",
                "memory.memsw.limit_in_bytes",
                s.to_string(),
            )
        });
        // The kernel keeps limit <= memsw at every moment, so raising the
        // limit above the current memsw needs memsw raised first.
        let as_u64 = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
        let swap_first = match (limit, cur.memsw_limit) {
            (Some(l), Some(cur_sw)) => as_u64(l) > cur_sw,
            _ => false,
        };
        if swap_first {
            w.extend(swap_w.clone());
            w.extend(lim_w);
        } else {
            w.extend(lim_w);
            w.extend(swap_w);
        }
        if let Some(r) = m.reservation() {
            if let Some(r) = limit_or_unlimited(&format!("{MEM}.reservation"), r)? {
                w.push(FileWrite::one(
                    format!("{MEM}.reservation"),
                    "memory",
                    "memory.soft_limit_in_bytes",
                    r.to_string(),
                ));
            }
        }
        if let Some(s) = m.swappiness() {
            check_swappiness(s)?;
            w.push(FileWrite::one(
                format!("{MEM}.swappiness"),
                "memory",
                "memory.swappiness",
                s.to_string(),
            ));
        }
        if let Some(d) = m.disable_oom_killer() {
            w.push(FileWrite::one(
                format!("{MEM}.disableOOMKiller"),
                "memory",
                "memory.oom_control",
                if d { "1" } else { "0" },
            ));
        }
        if let Some(h) = m.use_hierarchy() {
            w.push(FileWrite::one(
                format!("{MEM}.useHierarchy"),
                "memory",
                "memory.use_hierarchy",
                if h { "1" } else { "0" },
            ));
        }
    }
    pids_writes(res, w)?;
    if let Some(b) = res.block_io() {
        blkio_v1(b, w)?;
    }
    hugetlb_writes(res, w, "limit_in_bytes", "-1")?;
    if let Some(n) = res.network() {
        if let Some(c) = n.class_id() {
            w.push(FileWrite::one(
                "linux.resources.network.classID",
                "net_cls",
                "net_cls.classid",
                c.to_string(),
            ));
        }
        for pr in n.priorities().iter().flatten() {
            let name = pr.name();
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(invalid(
                    "linux.resources.network.priorities.name",
                    name,
                    "not an interface name",
                ));
            }
            w.push(FileWrite::one(
                "linux.resources.network.priorities",
                "net_prio",
                "net_prio.ifpriomap",
                format!("{name} {}", pr.priority()),
            ));
        }
    }
    rdma_writes(res, w);
    if let Some(devs) = res.devices() {
        p.warnings
            .extend(crate::devices::unknown_access_warnings(devs));
        for r in DeviceRule::from_oci_list(devs)? {
            w.push(FileWrite::one(
                "linux.resources.devices",
                "devices",
                r.v1_file(),
                r.v1_line(),
            ));
        }
    }
    if res.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(Error::NotOnThisVersion {
            field: "linux.resources.unified".into(),
            version: "v1",
        });
    }
    Ok(p)
}

fn pids_writes(res: &LinuxResources, w: &mut Vec<FileWrite>) -> Result<()> {
    if let Some(pids) = res.pids() {
        let field = "linux.resources.pids.limit";
        if let Some(l) = limit_or_unlimited(field, pids.limit())? {
            let v = if l < 0 {
                "max".to_string()
            } else {
                l.to_string()
            };
            w.push(FileWrite::one(field, "pids", "pids.max", v));
        }
    }
    Ok(())
}

fn hugetlb_writes(
    res: &LinuxResources,
    w: &mut Vec<FileWrite>,
    suffix: &str,
    unlimited: &str,
) -> Result<()> {
    for h in res.hugepage_limits().iter().flatten() {
        let size = check_page_size(h.page_size())?;
        let v = match h.limit() {
            -1 => unlimited.to_string(),
            l if l < 0 => {
                return Err(invalid(
                    "linux.resources.hugepageLimits.limit",
                    l,
                    "must be -1 or >= 0",
                ))
            }
            l => l.to_string(),
        };
        w.push(FileWrite::one(
            "linux.resources.hugepageLimits",
            "hugetlb",
            format!("hugetlb.{size}.{suffix}"),
            v,
        ));
    }
    Ok(())
}

/// The throttle lists as (spec field name, v1 file, v2 `io.max` key).
fn throttles(
    b: &LinuxBlockIo,
) -> [(
    &'static str,
    &'static str,
    &'static str,
    &Option<Vec<LinuxThrottleDevice>>,
); 4] {
    [
        (
            "throttleReadBpsDevice",
            "blkio.throttle.read_bps_device",
            "rbps",
            b.throttle_read_bps_device(),
        ),
        (
            "throttleWriteBpsDevice",
            "blkio.throttle.write_bps_device",
            "wbps",
            b.throttle_write_bps_device(),
        ),
        (
            "throttleReadIOPSDevice",
            "blkio.throttle.read_iops_device",
            "riops",
            b.throttle_read_iops_device(),
        ),
        (
            "throttleWriteIOPSDevice",
            "blkio.throttle.write_iops_device",
            "wiops",
            b.throttle_write_iops_device(),
        ),
    ]
}

fn blkio_v1(b: &LinuxBlockIo, w: &mut Vec<FileWrite>) -> Result<()> {
    let weight_field = format!("{BLK}.weight");
    if let Some(wt) = check_weight(&weight_field, b.weight().unwrap_or(0))? {
        w.push(FileWrite {
            field: weight_field,
            controller: "blkio".into(),
            choices: vec![
                ("blkio.weight".into(), wt.to_string()),
                ("blkio.bfq.weight".into(), wt.to_string()),
            ],
        });
    }
    let leaf_field = format!("{BLK}.leafWeight");
    if let Some(lw) = check_weight(&leaf_field, b.leaf_weight().unwrap_or(0))? {
        w.push(FileWrite::one(
            leaf_field,
            "blkio",
            "blkio.leaf_weight",
            lw.to_string(),
        ));
    }
    let dev_field = format!("{BLK}.weightDevice");
    for d in b.weight_device().iter().flatten() {
        let key = dev_key(&dev_field, d.major(), d.minor())?;
        if let Some(wt) = check_weight(
            &format!("{BLK}.weightDevice.weight"),
            d.weight().unwrap_or(0),
        )? {
            w.push(FileWrite {
                field: dev_field.clone(),
                controller: "blkio".into(),
                choices: vec![
                    ("blkio.weight_device".into(), format!("{key} {wt}")),
                    ("blkio.bfq.weight_device".into(), format!("{key} {wt}")),
                ],
            });
        }
        let leaf_field = format!("{BLK}.weightDevice.leafWeight");
        if let Some(lw) = check_weight(&leaf_field, d.leaf_weight().unwrap_or(0))? {
            w.push(FileWrite::one(
                leaf_field,
                "blkio",
                "blkio.leaf_weight_device",
                format!("{key} {lw}"),
            ));
        }
    }
    for (name, file, _, list) in throttles(b) {
        let field = format!("{BLK}.{name}");
        for d in list.iter().flatten() {
            let key = dev_key(&field, d.major(), d.minor())?;
            w.push(FileWrite::one(
                field.clone(),
                "blkio",
                file,
                format!("{key} {}", d.rate()),
            ));
        }
    }
    Ok(())
}

fn blkio_v2(b: &LinuxBlockIo, w: &mut Vec<FileWrite>) -> Result<()> {
    let weight_write = |field: String, prefix: &str, wt: u16| FileWrite {
        field,
        controller: "io".into(),
        choices: vec![
            ("io.bfq.weight".into(), format!("{prefix}{wt}")),
            (
                "io.weight".into(),
                format!("{prefix}{}", convert::blkio_weight_to_io_weight(wt)),
            ),
        ],
    };
    let weight_field = format!("{BLK}.weight");
    if let Some(wt) = check_weight(&weight_field, b.weight().unwrap_or(0))? {
        w.push(weight_write(weight_field, "default ", wt));
    }
    if b.leaf_weight().is_some_and(|v| v != 0) {
        return Err(Error::NotOnThisVersion {
            field: format!("{BLK}.leafWeight"),
            version: "v2",
        });
    }
    let dev_field = format!("{BLK}.weightDevice");
    for d in b.weight_device().iter().flatten() {
        let key = dev_key(&dev_field, d.major(), d.minor())?;
        if let Some(wt) = check_weight(
            &format!("{BLK}.weightDevice.weight"),
            d.weight().unwrap_or(0),
        )? {
            w.push(weight_write(dev_field.clone(), &format!("{key} "), wt));
        }
        if d.leaf_weight().is_some_and(|v| v != 0) {
            return Err(Error::NotOnThisVersion {
                field: format!("{BLK}.weightDevice.leafWeight"),
                version: "v2",
            });
        }
    }
    for (name, _, knob, list) in throttles(b) {
        let field = format!("{BLK}.{name}");
        for d in list.iter().flatten() {
            let key = dev_key(&field, d.major(), d.minor())?;
            let rate = if d.rate() == 0 {
                "max".to_string()
            } else {
                d.rate().to_string()
            };
            w.push(FileWrite::one(
                field.clone(),
                "io",
                "io.max",
                format!("{key} {knob}={rate}"),
            ));
        }
    }
    Ok(())
}

/// Validate a `unified` key: a plain interface file name, not a core file
/// that would move processes or change the hierarchy.
pub fn check_unified_key(key: &str) -> Result<&str> {
    let field = "linux.resources.unified";
    let Some((controller, _)) = key.split_once('.') else {
        return Err(invalid(field, key, "not a cgroup interface file name"));
    };
    if key.contains('/') || key.starts_with('.') || controller.is_empty() {
        return Err(invalid(field, key, "must be a file name inside the cgroup"));
    }
    if matches!(
        key,
        "cgroup.procs"
            | "cgroup.threads"
            | "cgroup.subtree_control"
            | "cgroup.kill"
            | "cgroup.freeze"
    ) {
        return Err(invalid(field, key, "is managed by the runtime itself"));
    }
    Ok(controller)
}

/// The writes for a v2 host.
pub fn plan_v2(res: &LinuxResources) -> Result<Plan> {
    let mut p = Plan::default();
    let w = &mut p.writes;
    if let Some(cpu) = res.cpu() {
        cpuset_writes(cpu, w)?;
        if let Some(s) = cpu.shares().filter(|s| *s != 0) {
            check_shares(s)?;
            w.push(FileWrite::one(
                format!("{CPU}.shares"),
                "cpu",
                "cpu.weight",
                convert::cpu_shares_to_weight(s).to_string(),
            ));
        }
        let period = cpu.period().filter(|v| *v != 0);
        let quota = cpu.quota().filter(|v| *v != 0);
        if let Some(per) = period {
            check_period(&format!("{CPU}.period"), per)?;
        }
        if let Some(q) = quota {
            check_quota(q)?;
        }
        let max_field = match (quota, period) {
            (Some(_), Some(_)) => Some(format!("{CPU}.quota/period")),
            (Some(_), None) => Some(format!("{CPU}.quota")),
            (None, Some(_)) => Some(format!("{CPU}.period")),
            (None, None) => None,
        };
        if let Some(field) = max_field {
            w.push(FileWrite::one(
                field,
                "cpu",
                "cpu.max",
                convert::cpu_max(quota, period),
            ));
        }
        if let Some(b) = cpu.burst() {
            w.push(FileWrite::one(
                format!("{CPU}.burst"),
                "cpu",
                "cpu.max.burst",
                b.to_string(),
            ));
        }
        if cpu.realtime_period().is_some_and(|v| v != 0)
            || cpu.realtime_runtime().is_some_and(|v| v != 0)
        {
            return Err(Error::NotOnThisVersion {
                field: format!("{CPU}.realtimeRuntime/realtimePeriod"),
                version: "v2",
            });
        }
        if let Some(v) = idle_value(cpu)? {
            w.push(FileWrite::one(format!("{CPU}.idle"), "cpu", "cpu.idle", v));
        }
    }
    if let Some(m) = res.memory() {
        kernel_memory_warnings(m, &mut p.warnings);
        let limit = match m.limit() {
            Some(l) => limit_or_unlimited(&format!("{MEM}.limit"), l)?,
            None => None,
        };
        if let Some(l) = limit {
            let v = if l < 0 {
                "max".to_string()
            } else {
                l.to_string()
            };
            w.push(FileWrite::one(
                format!("{MEM}.limit"),
                "memory",
                "memory.max",
                v,
            ));
        }
        let swap = m.swap().unwrap_or(0);
        if swap != 0 || limit == Some(-1) {
            if let Some(v) = convert::swap_v1_to_v2(swap, limit.unwrap_or(0))? {
                // An unset swap is lifted along with an unlimited memory limit.
                let field = if swap != 0 { "swap" } else { "limit" };
                w.push(FileWrite::one(
                    format!("{MEM}.{field}"),
                    "memory",
                    "memory.swap.max",
                    v,
                ));
            }
        }
        if let Some(r) = m.reservation() {
            if let Some(r) = limit_or_unlimited(&format!("{MEM}.reservation"), r)? {
                let v = if r < 0 {
                    "max".to_string()
                } else {
                    r.to_string()
                };
                w.push(FileWrite::one(
                    format!("{MEM}.reservation"),
                    "memory",
                    "memory.low",
                    v,
                ));
            }
        }
        if let Some(s) = m.swappiness() {
            check_swappiness(s)?;
            return Err(Error::NotOnThisVersion {
                field: format!("{MEM}.swappiness"),
                version: "v2",
            });
        }
        if m.disable_oom_killer() == Some(true) {
            return Err(Error::NotOnThisVersion {
                field: format!("{MEM}.disableOOMKiller"),
                version: "v2",
            });
        }
        if m.use_hierarchy() == Some(false) {
            p.warnings.push(Warning {
                field: format!("{MEM}.useHierarchy"),
                message: "cgroup v2 is always hierarchical; ignored".into(),
            });
        }
    }
    pids_writes(res, w)?;
    if let Some(b) = res.block_io() {
        blkio_v2(b, w)?;
    }
    hugetlb_writes(res, w, "max", "max")?;
    if let Some(n) = res.network() {
        if n.class_id().is_some() || n.priorities().as_ref().is_some_and(|v| !v.is_empty()) {
            return Err(Error::NotOnThisVersion {
                field: "linux.resources.network".into(),
                version: "v2",
            });
        }
    }
    rdma_writes(res, w);
    if let Some(u) = res.unified() {
        let sorted: BTreeMap<_, _> = u.iter().collect();
        for (k, v) in sorted {
            let controller = check_unified_key(k)?;
            w.push(FileWrite::one(
                "linux.resources.unified",
                controller,
                k.as_str(),
                v.as_str(),
            ));
        }
    }
    if let Some(devs) = res.devices() {
        p.warnings
            .extend(crate::devices::unknown_access_warnings(devs));
        p.devices = Some(DeviceRule::from_oci_list(devs)?);
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    fn flat(p: &Plan) -> Vec<(String, String)> {
        p.writes.iter().map(|w| w.choices[0].clone()).collect()
    }

    #[test]
    fn v1_full() {
        let r = res(
            r#"{"cpu":{"shares":512,"quota":50000,"period":100000,"burst":1000,"idle":1,
            "realtimeRuntime":1000,"realtimePeriod":10000,"cpus":"0","mems":"0"},
            "memory":{"limit":67108864,"swap":134217728,"reservation":1048576,"swappiness":10,
            "disableOOMKiller":false,"kernel":1,"kernelTCP":1},
            "pids":{"limit":10},
            "blockIO":{"weight":200,"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1000}]},
            "hugepageLimits":[{"pageSize":"2MB","limit":-1}],
            "network":{"classID":16,"priorities":[{"name":"lo","priority":3}]},
            "devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rw"}]}"#,
        );
        let p = plan_v1(&r, Current::default()).unwrap();
        let f = flat(&p);
        let want: Vec<(&str, &str)> = vec![
            ("cpuset.cpus", "0"),
            ("cpuset.mems", "0"),
            ("cpu.shares", "512"),
            ("cpu.cfs_period_us", "100000"),
            ("cpu.cfs_quota_us", "50000"),
            ("cpu.cfs_burst_us", "1000"),
            ("cpu.rt_period_us", "10000"),
            ("cpu.rt_runtime_us", "1000"),
            ("cpu.idle", "1"),
            ("memory.limit_in_bytes", "67108864"),
            ("memory.memsw.limit_in_bytes", "134217728"),
            ("memory.soft_limit_in_bytes", "1048576"),
            ("memory.swappiness", "10"),
            ("memory.oom_control", "0"),
            ("pids.max", "10"),
            ("blkio.weight", "200"),
            ("blkio.throttle.read_bps_device", "8:0 1000"),
            ("hugetlb.2MB.limit_in_bytes", "-1"),
            ("net_cls.classid", "16"),
            ("net_prio.ifpriomap", "lo 3"),
            ("devices.deny", "a *:* rwm"),
            ("devices.allow", "c 1:3 rw"),
        ];
        let want: Vec<(String, String)> = want
            .into_iter()
            .map(|(a, b)| (a.into(), b.into()))
            .collect();
        assert_eq!(f, want);
        assert_eq!(p.warnings.len(), 2);
        assert!(p.warnings[0].field.ends_with("memory.kernel"));
    }

    #[test]
    fn v1_memsw_order() {
        let r = res(r#"{"memory":{"limit":200000000,"swap":400000000}}"#);
        let lower = plan_v1(
            &r,
            Current {
                memsw_limit: Some(100_000_000),
            },
        )
        .unwrap();
        assert_eq!(lower.writes[0].first_file(), "memory.memsw.limit_in_bytes");
        let higher = plan_v1(
            &r,
            Current {
                memsw_limit: Some(u64::MAX / 2),
            },
        )
        .unwrap();
        assert_eq!(higher.writes[0].first_file(), "memory.limit_in_bytes");
        let unl = res(r#"{"memory":{"limit":-1,"swap":-1}}"#);
        let p = plan_v1(
            &unl,
            Current {
                memsw_limit: Some(1 << 30),
            },
        )
        .unwrap();
        assert_eq!(p.writes[0].first_file(), "memory.memsw.limit_in_bytes");
    }

    /// `update --memory -1` after a swap limit: memsw is lifted first, then
    /// the memory limit (runc); without memsw in the kernel only the limit.
    #[test]
    fn v1_unlimited_memory_lifts_swap() {
        let r = res(r#"{"memory":{"limit":-1}}"#);
        let with = plan_v1(
            &r,
            Current {
                memsw_limit: Some(128 << 20),
            },
        )
        .unwrap();
        let files: Vec<(&str, &str)> = with
            .writes
            .iter()
            .map(|w| (w.first_file(), w.choices[0].1.as_str()))
            .collect();
        assert_eq!(
            files,
            vec![
                ("memory.memsw.limit_in_bytes", "-1"),
                ("memory.limit_in_bytes", "-1")
            ]
        );
        let without = plan_v1(&r, Current { memsw_limit: None }).unwrap();
        assert_eq!(without.writes.len(), 1);
        assert_eq!(without.writes[0].first_file(), "memory.limit_in_bytes");
        // A limit that is not -1 leaves swap alone.
        let some = plan_v1(
            &res(r#"{"memory":{"limit":1000000}}"#),
            Current {
                memsw_limit: Some(128 << 20),
            },
        )
        .unwrap();
        assert_eq!(some.writes.len(), 1);
    }

    #[test]
    fn v2_full() {
        let r = res(
            r#"{"cpu":{"shares":1024,"quota":50000,"period":200000,"idle":0,"cpus":"0-1"},
            "memory":{"limit":1000,"swap":3000,"reservation":10},
            "pids":{"limit":-1},
            "blockIO":{"weight":10,"weightDevice":[{"major":8,"minor":0,"weight":1000}],
               "throttleWriteIOPSDevice":[{"major":8,"minor":0,"rate":0}]},
            "hugepageLimits":[{"pageSize":"1GB","limit":0}],
            "rdma":{"mlx5_1":{"hcaHandles":3}},
            "unified":{"memory.high":"5000","cpu.uclamp.min":"10"},
            "devices":[{"allow":true,"access":"rwm"}]}"#,
        );
        let p = plan_v2(&r).unwrap();
        let f = flat(&p);
        let want: Vec<(&str, &str)> = vec![
            ("cpuset.cpus", "0-1"),
            ("cpu.weight", "100"),
            ("cpu.max", "50000 200000"),
            ("cpu.idle", "0"),
            ("memory.max", "1000"),
            ("memory.swap.max", "2000"),
            ("memory.low", "10"),
            ("pids.max", "max"),
            ("io.bfq.weight", "default 10"),
            ("io.bfq.weight", "8:0 1000"),
            ("io.max", "8:0 wiops=max"),
            ("hugetlb.1GB.max", "0"),
            ("rdma.max", "mlx5_1 hca_handle=3"),
            ("cpu.uclamp.min", "10"),
            ("memory.high", "5000"),
        ];
        let want: Vec<(String, String)> = want
            .into_iter()
            .map(|(a, b)| (a.into(), b.into()))
            .collect();
        assert_eq!(f, want);
        assert_eq!(
            p.writes[8].choices[1],
            ("io.weight".to_string(), "default 1".to_string())
        );
        assert_eq!(
            p.writes[9].choices[1],
            ("io.weight".to_string(), "8:0 10000".to_string())
        );
        assert_eq!(p.devices.as_ref().map(Vec::len), Some(1));
    }

    #[test]
    fn bad_values() {
        let bad = [
            r#"{"cpu":{"shares":1}}"#,
            r#"{"cpu":{"shares":300000}}"#,
            r#"{"cpu":{"quota":-5}}"#,
            r#"{"cpu":{"quota":10}}"#,
            r#"{"cpu":{"period":10}}"#,
            r#"{"cpu":{"idle":2}}"#,
            r#"{"cpu":{"cpus":"1-0"}}"#,
            r#"{"cpu":{"cpus":"a"}}"#,
            r#"{"memory":{"limit":-2}}"#,
            r#"{"memory":{"limit":2000,"swap":1000}}"#,
            r#"{"memory":{"swappiness":101}}"#,
            r#"{"pids":{"limit":-7}}"#,
            r#"{"blockIO":{"weight":5}}"#,
            r#"{"blockIO":{"weightDevice":[{"major":-1,"minor":0,"weight":100}]}}"#,
            r#"{"hugepageLimits":[{"pageSize":"2XB","limit":1}]}"#,
            r#"{"hugepageLimits":[{"pageSize":"2MB","limit":-3}]}"#,
            r#"{"devices":[{"allow":true,"type":"p"}]}"#,
            r#"{"devices":[{"allow":true,"major":-9}]}"#,
        ];
        for b in bad {
            let r = res(b);
            assert!(plan_v1(&r, Current::default()).is_err(), "v1 accepted {b}");
            assert!(plan_v2(&r).is_err(), "v2 accepted {b}");
        }
        assert!(plan_v1(
            &res(r#"{"unified":{"memory.high":"1"}}"#),
            Current::default()
        )
        .is_err());
        for b in [
            r#"{"unified":{"../x":"1"}}"#,
            r#"{"unified":{"cgroup.procs":"1"}}"#,
            r#"{"network":{"classID":1}}"#,
            r#"{"cpu":{"realtimeRuntime":5}}"#,
            r#"{"memory":{"swappiness":5}}"#,
            r#"{"memory":{"swap":5}}"#,
        ] {
            let e = plan_v2(&res(b)).unwrap_err();
            assert!(!e.to_string().is_empty(), "{b}");
        }
    }

    fn fields(p: &Plan) -> Vec<(&str, &str)> {
        p.writes
            .iter()
            .map(|w| (w.first_file(), w.field.as_str()))
            .collect()
    }

    /// Every write names the spec field it comes from, so a kernel that
    /// refuses the converted value still points the user at the spec.
    #[test]
    fn writes_carry_their_field() {
        let common = r#""memory":{"limit":1000000,"swap":3000000},"pids":{"limit":10},
            "cpu":{"quota":50000},
            "blockIO":{"weight":100,"weightDevice":[{"major":254,"minor":0,"weight":300}],
               "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1000}]}"#;
        let r = res(&format!(
            r#"{{{common},"unified":{{"memory.high":"5000"}}}}"#
        ));
        let p = plan_v2(&r).unwrap();
        assert_eq!(
            fields(&p),
            vec![
                ("cpu.max", "linux.resources.cpu.quota"),
                ("memory.max", "linux.resources.memory.limit"),
                ("memory.swap.max", "linux.resources.memory.swap"),
                ("pids.max", "linux.resources.pids.limit"),
                ("io.bfq.weight", "linux.resources.blockIO.weight"),
                ("io.bfq.weight", "linux.resources.blockIO.weightDevice"),
                ("io.max", "linux.resources.blockIO.throttleReadBpsDevice"),
                ("memory.high", "linux.resources.unified"),
            ]
        );
        let p = plan_v1(&res(&format!("{{{common}}}")), Current::default()).unwrap();
        assert_eq!(
            fields(&p),
            vec![
                ("cpu.cfs_quota_us", "linux.resources.cpu.quota"),
                ("memory.limit_in_bytes", "linux.resources.memory.limit"),
                ("memory.memsw.limit_in_bytes", "linux.resources.memory.swap"),
                ("pids.max", "linux.resources.pids.limit"),
                ("blkio.weight", "linux.resources.blockIO.weight"),
                (
                    "blkio.weight_device",
                    "linux.resources.blockIO.weightDevice"
                ),
                (
                    "blkio.throttle.read_bps_device",
                    "linux.resources.blockIO.throttleReadBpsDevice"
                ),
            ]
        );
        // An unlimited memory limit lifts swap too: that write comes from the limit.
        let p = plan_v2(&res(r#"{"memory":{"limit":-1}}"#)).unwrap();
        assert_eq!(
            fields(&p),
            vec![
                ("memory.max", "linux.resources.memory.limit"),
                ("memory.swap.max", "linux.resources.memory.limit"),
            ]
        );
    }

    /// A refused write's message starts with the field its plan write
    /// carries, then the file and the converted value.
    #[test]
    fn refused_write_names_field() {
        let r = res(r#"{"blockIO":{"weightDevice":[{"major":254,"minor":0,"weight":300}]}}"#);
        let p = plan_v2(&r).unwrap();
        let d = tempfile::tempdir().unwrap();
        // Only io.weight exists, and as a directory, so the write fails.
        std::fs::create_dir(d.path().join("io.weight")).unwrap();
        let resolved = crate::fsio::resolve(
            &p.writes,
            |_, _| Ok(d.path().to_path_buf()),
            |c, f, _| Error::ControllerMissing {
                controller: c.into(),
                file: f.into(),
            },
        )
        .unwrap();
        let e = crate::fsio::apply(&resolved, false).unwrap_err();
        assert!(
            matches!(e, Error::Write { field: Some(ref f), .. } if f == "linux.resources.blockIO.weightDevice")
        );
        let msg = e.to_string();
        let want = format!(
            "linux.resources.blockIO.weightDevice: writing \"254:0 2930\" to {}: ",
            d.path().join("io.weight").display()
        );
        assert!(msg.starts_with(&want), "{msg}");
    }

    #[test]
    fn lists() {
        assert_eq!(expand_list("0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert_eq!(expand_list("").unwrap(), Vec::<u32>::new());
        assert!(expand_list("x").is_none());
        assert!(validate_list("f", "0-3,7").is_ok());
        assert!(check_page_size("64KB").is_ok());
        assert!(check_page_size("MB").is_err());
    }
}
