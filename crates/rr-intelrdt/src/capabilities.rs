//! What the host's resctrl can do, as reported under `info/`.
//!
//! The model is built from the directory contents, not from a fixed list of
//! names: a directory with a `cbm_mask` is a cache resource (L3, L3CODE,
//! L3DATA, L2, L2CODE, L2DATA), one with a `bandwidth_gran` a bandwidth
//! resource (MB, SMBA), and `L3_MON` the monitoring features.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::error::{io_err, Error, Result};

/// Upper bound of AMD's MB/SMBA values (bandwidth in 1/8 GB/s units), the
/// kernel's `MAX_MBA_BW_AMD`.
pub const AMD_MAX_BANDWIDTH: u32 = 2048;

/// Upper bound of an Intel MB percentage.
pub const MAX_PERCENT: u32 = 100;

/// A cache allocation resource (`info/L3`, `info/L3CODE`, `info/L2`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheCaps {
    /// `cbm_mask`: the bits a mask may set.
    pub cbm_mask: u64,
    /// `min_cbm_bits`: the fewest bits a mask must set (0 on AMD, which also
    /// accepts an empty mask).
    pub min_cbm_bits: u32,
    /// `num_closids`: how many control groups, the root included, this
    /// resource can tell apart (halved when CDP is on).
    pub num_closids: u32,
    /// `shareable_bits`: bits other agents (e.g. I/O) may also use.
    pub shareable_bits: u64,
    /// `sparse_masks` (Linux 6.8+): true when masks need not be
    /// contiguous. Absent means false: older kernels required contiguous
    /// masks on Intel.
    pub sparse_masks: bool,
}

/// How the values of a bandwidth resource are understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BandwidthUnit {
    /// Percent of the maximum bandwidth, in `[min_bandwidth, 100]`, in steps
    /// of `bandwidth_gran` (Intel MBA: `delay_linear` = 1).
    Percent,
    /// MBps, when resctrl is mounted with `mba_MBps` (software controller):
    /// any 32-bit value is accepted.
    Mbps,
    /// AMD's bandwidth units of 1/8 GB/s, in `[min_bandwidth, 2048]`
    /// (`delay_linear` = 0; always the case for SMBA).
    AmdUnits,
}

/// A bandwidth allocation resource (`info/MB`, `info/SMBA`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BandwidthCaps {
    /// `min_bandwidth`.
    pub min_bandwidth: u32,
    /// `bandwidth_gran`.
    pub bandwidth_gran: u32,
    /// `delay_linear`.
    pub delay_linear: bool,
    /// `num_closids`.
    pub num_closids: u32,
    /// How values are understood on this host.
    pub unit: BandwidthUnit,
}

impl BandwidthCaps {
    /// The largest accepted value, `None` when unbounded (MBps mode).
    pub fn max_bandwidth(&self) -> Option<u32> {
        match self.unit {
            BandwidthUnit::Percent => Some(MAX_PERCENT),
            BandwidthUnit::AmdUnits => Some(AMD_MAX_BANDWIDTH),
            BandwidthUnit::Mbps => None,
        }
    }
}

/// The monitoring features (`info/L3_MON`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitoringCaps {
    /// `mon_features`, e.g. `llc_occupancy`, `mbm_total_bytes`,
    /// `mbm_local_bytes`.
    pub mon_features: Vec<String>,
    /// `num_rmids`: how many monitoring groups the hardware can count.
    pub num_rmids: u32,
}

/// An allocation resource.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Resource {
    /// A cache (bit mask) resource.
    Cache(CacheCaps),
    /// A bandwidth resource.
    Bandwidth(BandwidthCaps),
}

impl Resource {
    /// The resource's `num_closids`.
    pub fn num_closids(&self) -> u32 {
        match self {
            Resource::Cache(c) => c.num_closids,
            Resource::Bandwidth(b) => b.num_closids,
        }
    }
}

/// Everything the host reports under `info/`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Allocation resources by schemata name (`L3`, `L3CODE`, `MB`, ...).
    pub resources: BTreeMap<String, Resource>,
    /// Monitoring, when the host has it.
    pub monitoring: Option<MonitoringCaps>,
}

impl Capabilities {
    /// Reads `info/` under a resctrl root. `mba_mbps` says whether the
    /// filesystem is mounted with `mba_MBps` (it changes the unit of `MB`).
    pub fn read(root: &Path, mba_mbps: bool) -> Result<Capabilities> {
        let info = root.join("info");
        let mut caps = Capabilities::default();
        let entries = fs::read_dir(&info).map_err(io_err(&info))?;
        for entry in entries {
            let entry = entry.map_err(io_err(&info))?;
            let dir = entry.path();
            if !dir.is_dir() {
                continue;
            }
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if name == "L3_MON" {
                let features = read_string(&dir.join("mon_features"))?;
                caps.monitoring = Some(MonitoringCaps {
                    mon_features: features.split_whitespace().map(str::to_string).collect(),
                    num_rmids: read_u32(&dir.join("num_rmids"))?,
                });
            } else if dir.join("cbm_mask").exists() {
                let sparse = dir.join("sparse_masks");
                caps.resources.insert(
                    name,
                    Resource::Cache(CacheCaps {
                        cbm_mask: read_hex(&dir.join("cbm_mask"))?,
                        min_cbm_bits: read_u32(&dir.join("min_cbm_bits"))?,
                        num_closids: read_u32(&dir.join("num_closids"))?,
                        shareable_bits: read_hex_or(&dir.join("shareable_bits"), 0)?,
                        sparse_masks: sparse.exists() && read_u32(&sparse)? == 1,
                    }),
                );
            } else if dir.join("bandwidth_gran").exists() {
                let delay_linear = read_u32_or(&dir.join("delay_linear"), 0)? == 1;
                let unit = bandwidth_unit(&name, delay_linear, mba_mbps);
                caps.resources.insert(
                    name,
                    Resource::Bandwidth(BandwidthCaps {
                        min_bandwidth: read_u32(&dir.join("min_bandwidth"))?,
                        bandwidth_gran: read_u32(&dir.join("bandwidth_gran"))?,
                        delay_linear,
                        num_closids: read_u32(&dir.join("num_closids"))?,
                        unit,
                    }),
                );
            }
        }
        Ok(caps)
    }

    /// True when code/data prioritization is on for L3 (or L2): the host
    /// then has `L3CODE`/`L3DATA` instead of `L3`.
    pub fn cdp(&self, level: &str) -> bool {
        self.resources.contains_key(&format!("{level}CODE"))
    }

    /// The allocation resource called `name`.
    pub fn resource(&self, name: &str) -> Option<&Resource> {
        self.resources.get(name)
    }

    /// True when the host can allocate anything.
    pub fn has_allocation(&self) -> bool {
        !self.resources.is_empty()
    }

    /// The number of control groups (CLOSes) the host supports, the root
    /// group included: the smallest `num_closids` of its resources, with the
    /// resource that sets it. `None` without allocation.
    pub fn num_closids(&self) -> Option<(&str, u32)> {
        self.resources
            .iter()
            .map(|(n, r)| (n.as_str(), r.num_closids()))
            .min_by_key(|(_, n)| *n)
    }

    /// Checks that one more control group fits when `in_use` exist now (the
    /// root group included).
    pub fn check_clos_available(&self, in_use: usize) -> Result<()> {
        let Some((resource, num)) = self.num_closids() else {
            return Err(Error::AllocationUnsupported);
        };
        if in_use >= num as usize {
            return Err(Error::ClosIdsExhausted {
                resource: resource.to_string(),
                num_closids: num,
                in_use,
            });
        }
        Ok(())
    }
}

/// The unit of a bandwidth resource. Intel MBA is only exposed by the kernel
/// when its delay is linear, and AMD's never is, so `delay_linear` tells the
/// two apart; SMBA exists only on AMD; `mba_MBps` applies to MB only.
fn bandwidth_unit(name: &str, delay_linear: bool, mba_mbps: bool) -> BandwidthUnit {
    if name == "MB" && mba_mbps {
        BandwidthUnit::Mbps
    } else if name == "SMBA" || !delay_linear {
        BandwidthUnit::AmdUnits
    } else {
        BandwidthUnit::Percent
    }
}

fn read_string(path: &Path) -> Result<String> {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(io_err(path))
}

fn bad(path: &Path, value: String, expected: &'static str) -> Error {
    Error::BadInfoFile {
        path: path.to_path_buf(),
        value,
        expected,
    }
}

fn read_u32(path: &Path) -> Result<u32> {
    let s = read_string(path)?;
    crate::schemata::parse_decimal_u32(&s).ok_or_else(|| bad(path, s, "a decimal number"))
}

fn read_u32_or(path: &Path, default: u32) -> Result<u32> {
    if path.exists() {
        read_u32(path)
    } else {
        Ok(default)
    }
}

fn read_hex(path: &Path) -> Result<u64> {
    let s = read_string(path)?;
    crate::schemata::parse_hex_u64(&s).ok_or_else(|| bad(path, s, "a hexadecimal mask"))
}

fn read_hex_or(path: &Path, default: u64) -> Result<u64> {
    if path.exists() {
        read_hex(path)
    } else {
        Ok(default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(bandwidth_unit("MB", true, false), BandwidthUnit::Percent);
        assert_eq!(bandwidth_unit("MB", true, true), BandwidthUnit::Mbps);
        assert_eq!(bandwidth_unit("MB", false, false), BandwidthUnit::AmdUnits);
        assert_eq!(bandwidth_unit("SMBA", false, true), BandwidthUnit::AmdUnits);
    }

    #[test]
    fn clos_count() {
        let mut caps = Capabilities::default();
        assert!(matches!(
            caps.check_clos_available(1),
            Err(Error::AllocationUnsupported)
        ));
        caps.resources.insert(
            "MB".into(),
            Resource::Bandwidth(BandwidthCaps {
                min_bandwidth: 10,
                bandwidth_gran: 10,
                delay_linear: true,
                num_closids: 8,
                unit: BandwidthUnit::Percent,
            }),
        );
        caps.resources.insert(
            "L3".into(),
            Resource::Cache(CacheCaps {
                cbm_mask: 0x7ff,
                min_cbm_bits: 1,
                num_closids: 16,
                shareable_bits: 0,
                sparse_masks: false,
            }),
        );
        assert_eq!(caps.num_closids(), Some(("MB", 8)));
        assert!(caps.check_clos_available(7).is_ok());
        let e = caps.check_clos_available(8).unwrap_err();
        assert!(matches!(
            e,
            Error::ClosIdsExhausted {
                num_closids: 8,
                in_use: 8,
                ..
            }
        ));
    }
}
