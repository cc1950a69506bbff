//! Resource usage statistics, with the JSON names `runc events --stats` uses.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::fsio;

fn zero(v: &u64) -> bool {
    *v == 0
}

/// CPU time used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CpuUsage {
    /// Total, nanoseconds.
    #[serde(skip_serializing_if = "zero")]
    pub total: u64,
    /// Per CPU, nanoseconds.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    /// Per CPU in kernel mode, nanoseconds.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    /// Per CPU in user mode, nanoseconds.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    /// Kernel mode, nanoseconds.
    pub kernel: u64,
    /// User mode, nanoseconds.
    pub user: u64,
}

/// CFS bandwidth throttling.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    /// Enforcement periods.
    #[serde(skip_serializing_if = "zero")]
    pub periods: u64,
    /// Periods in which the group was throttled.
    #[serde(skip_serializing_if = "zero")]
    pub throttled_periods: u64,
    /// Time throttled, nanoseconds.
    #[serde(skip_serializing_if = "zero")]
    pub throttled_time: u64,
}

/// CPU statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cpu {
    /// Time used.
    pub usage: CpuUsage,
    /// Throttling.
    pub throttling: Throttling,
}

/// One memory counter set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MemoryEntry {
    /// Limit in bytes (`u64::MAX` when unlimited).
    pub limit: u64,
    /// Current usage in bytes.
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    /// Peak usage in bytes.
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    /// Times the limit was hit.
    pub failcnt: u64,
}

/// Memory statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Memory {
    /// Page cache bytes.
    #[serde(skip_serializing_if = "zero")]
    pub cache: u64,
    /// Memory.
    pub usage: MemoryEntry,
    /// Memory plus swap (as v1 memsw counts it).
    pub swap: MemoryEntry,
    /// Kernel memory (v1 only).
    pub kernel: MemoryEntry,
    /// Kernel TCP buffers (v1 only).
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// Every counter of memory.stat.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

/// Process counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Pids {
    /// Processes and threads now.
    #[serde(skip_serializing_if = "zero")]
    pub current: u64,
    /// The limit; 0 when unlimited.
    #[serde(skip_serializing_if = "zero")]
    pub limit: u64,
}

/// One block I/O counter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BlkioEntry {
    /// Device major.
    #[serde(skip_serializing_if = "zero")]
    pub major: u64,
    /// Device minor.
    #[serde(skip_serializing_if = "zero")]
    pub minor: u64,
    /// `Read`, `Write`, `Sync`, `Async`, `Discard` or `Total`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    /// The count.
    #[serde(skip_serializing_if = "zero")]
    pub value: u64,
}

/// Block I/O statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    /// Bytes transferred.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    /// Requests.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

/// Huge page usage of one page size.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Hugetlb {
    /// Bytes in use.
    #[serde(skip_serializing_if = "zero")]
    pub usage: u64,
    /// Peak bytes.
    #[serde(skip_serializing_if = "zero")]
    pub max: u64,
    /// Allocation failures.
    pub failcnt: u64,
}

/// Statistics of a container's cgroup, serialised like runc's `data` object
/// in `runc events --stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// CPU.
    pub cpu: Cpu,
    /// Memory.
    pub memory: Memory,
    /// Processes.
    pub pids: Pids,
    /// Block I/O.
    pub blkio: Blkio,
    /// Huge pages, by page size (`2MB`, ...).
    pub hugetlb: BTreeMap<String, Hugetlb>,
}

/// Parse `key value` lines (memory.stat, cpu.stat, ...).
pub fn parse_flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = fsio::parse_u64(it.next()?)?;
            Some((k.to_string(), v))
        })
        .collect()
}

/// Parse a line of space-separated numbers (cpuacct.usage_percpu).
pub fn parse_numbers(text: &str) -> Vec<u64> {
    text.split_whitespace()
        .filter_map(fsio::parse_u64)
        .collect()
}

fn split_dev(dev: &str) -> Option<(u64, u64)> {
    let (a, b) = dev.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Parse v1 `blkio.*_recursive` lines: `8:0 Read 4096`; the `Total` line
/// without a device is kept with major/minor 0.
pub fn parse_blkio_v1(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            match parts.as_slice() {
                [dev, op, v] => {
                    let (major, minor) = split_dev(dev)?;
                    Some(BlkioEntry {
                        major,
                        minor,
                        op: op.to_string(),
                        value: v.parse().ok()?,
                    })
                }
                _ => None,
            }
        })
        .collect()
}

/// Parse v2 `io.stat` into (bytes, ios) entries with v1 op names.
pub fn parse_io_stat(text: &str) -> (Vec<BlkioEntry>, Vec<BlkioEntry>) {
    let (mut bytes, mut ios) = (Vec::new(), Vec::new());
    for l in text.lines() {
        let mut it = l.split_whitespace();
        let Some((major, minor)) = it.next().and_then(split_dev) else {
            continue;
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse::<u64>() else {
                continue;
            };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "dbytes" => (&mut bytes, "Discard"),
                "rios" => (&mut ios, "Read"),
                "wios" => (&mut ios, "Write"),
                "dios" => (&mut ios, "Discard"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.into(),
                value,
            });
        }
    }
    (bytes, ios)
}

/// Read a file if it exists; statistics are best-effort per file.
pub(crate) fn opt_read(p: &Path) -> Option<String> {
    fsio::read(p).ok()
}

pub(crate) fn opt_u64(p: &Path) -> Option<u64> {
    opt_read(p).and_then(|s| fsio::parse_u64(&s))
}

/// Huge page sizes the kernel offers, as cgroup file names spell them.
pub(crate) fn hugepage_sizes() -> Vec<String> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(kb) = name
            .strip_prefix("hugepages-")
            .and_then(|s| s.strip_suffix("kB"))
        else {
            continue;
        };
        let Ok(kb) = kb.parse::<u64>() else { continue };
        out.push(if kb >= 1 << 20 {
            format!("{}GB", kb >> 20)
        } else if kb >= 1 << 10 {
            format!("{}MB", kb >> 10)
        } else {
            format!("{kb}KB")
        });
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        let m = parse_flat_keyed(
            "cache 10\nrss 20\nbad\nhierarchical_memory_limit 9223372036854771712\n",
        );
        assert_eq!(m["cache"], 10);
        assert_eq!(m.len(), 3);
        assert_eq!(parse_numbers("1 2 3 \n"), vec![1, 2, 3]);
        let b = parse_blkio_v1("8:0 Read 4096\n8:0 Write 0\nTotal 4096\n");
        assert_eq!(b.len(), 2);
        assert_eq!(
            (b[0].major, b[0].minor, b[0].op.as_str(), b[0].value),
            (8, 0, "Read", 4096)
        );
        let (bytes, ios) =
            parse_io_stat("253:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n");
        assert_eq!(bytes.len(), 3);
        assert_eq!(ios[1].op, "Write");
        assert_eq!(ios[1].value, 2);
    }

    #[test]
    fn json_names() {
        let mut s = Stats::default();
        s.cpu.usage.total = 5;
        s.cpu.usage.percpu = vec![2, 3];
        s.cpu.throttling.throttled_periods = 1;
        s.memory.usage.limit = 7;
        s.memory.raw.insert("cache".into(), 1);
        s.pids.current = 2;
        s.hugetlb.insert("2MB".into(), Hugetlb::default());
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["cpu"]["usage"]["total"], 5);
        assert_eq!(v["cpu"]["usage"]["percpu"][1], 3);
        assert_eq!(v["cpu"]["usage"]["kernel"], 0);
        assert_eq!(v["cpu"]["throttling"]["throttledPeriods"], 1);
        assert!(v["cpu"]["throttling"].get("periods").is_none());
        assert_eq!(v["memory"]["usage"]["limit"], 7);
        assert_eq!(v["memory"]["usage"]["failcnt"], 0);
        assert!(v["memory"].get("kernelTCP").is_some());
        assert_eq!(v["memory"]["raw"]["cache"], 1);
        assert_eq!(v["pids"]["current"], 2);
        assert_eq!(v["hugetlb"]["2MB"]["failcnt"], 0);
        assert!(v["blkio"].as_object().unwrap().is_empty());
    }
}
