//! Checks a schemata against what the host reports, before anything is
//! written, with one error per rule.
//!
//! Pure code: the capabilities and the root group's schemata are inputs.

use crate::capabilities::{BandwidthCaps, BandwidthUnit, CacheCaps, Capabilities, Resource};
use crate::error::{Error, Result};
use crate::schemata::{Schemata, Value};

impl Capabilities {
    /// Checks every line of `schemata` against the host, and returns the
    /// first problem found, in line order:
    ///
    /// - the resource exists on this host ([`Error::UnknownResource`]);
    /// - each domain id is listed in the root group's schemata `root`
    ///   ([`Error::UnknownDomain`], [`Error::RootSchemataMissing`]);
    /// - a cache mask sets no bit outside `cbm_mask`
    ///   ([`Error::CbmOutsideMask`]), is one contiguous run of set bits
    ///   unless the host has `sparse_masks` ([`Error::CbmNotContiguous`]),
    ///   and that run has at least `min_cbm_bits` bits
    ///   ([`Error::CbmTooFewBits`]);
    /// - a bandwidth is within `[min_bandwidth, max]`
    ///   ([`Error::BandwidthOutOfRange`]) and a multiple of
    ///   `bandwidth_gran` ([`Error::BandwidthNotMultiple`]); in `mba_MBps`
    ///   mode any value is accepted.
    ///
    /// Whether one more group fits in `num_closids` depends on the groups
    /// that exist, so it is checked by [`Capabilities::check_clos_available`]
    /// when a group is created.
    pub fn validate(&self, schemata: &Schemata, root: &Schemata) -> Result<()> {
        for line in schemata.lines() {
            let name = line.resource.as_str();
            let Some(resource) = self.resources.get(name) else {
                return Err(self.unknown_resource(name));
            };
            let Some(known) = root.domain_ids(name) else {
                return Err(Error::RootSchemataMissing {
                    resource: name.to_string(),
                });
            };
            for d in &line.domains {
                if !known.contains(&d.id) {
                    return Err(Error::UnknownDomain {
                        resource: name.to_string(),
                        domain: d.id,
                        known: join(known.iter()),
                    });
                }
                match (resource, &d.value) {
                    (Resource::Cache(c), Value::Cbm(mask)) => check_cbm(name, d.id, *mask, c)?,
                    (Resource::Bandwidth(b), Value::Bandwidth(v)) => {
                        check_bandwidth(name, d.id, *v, b)?
                    }
                    // The parser picks the value form from the resource name,
                    // so a mismatch cannot come from parsed text.
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn unknown_resource(&self, name: &str) -> Error {
        let available = if self.resources.is_empty() {
            "no allocation resource".to_string()
        } else {
            join(self.resources.keys())
        };
        let hint = match name {
            "L3" | "L2" if self.cdp(name) => format!(
                "; code/data prioritization is on: use {name}CODE and {name}DATA lines instead"
            ),
            "L3CODE" | "L3DATA" | "L2CODE" | "L2DATA" => {
                let level = name.get(..2).unwrap_or(name);
                if self.resources.contains_key(level) {
                    format!(
                        "; code/data prioritization is off: use an {level} line, or mount resctrl with the cdp option"
                    )
                } else {
                    String::new()
                }
            }
            _ => String::new(),
        };
        Error::UnknownResource {
            resource: name.to_string(),
            available,
            hint,
        }
    }
}

fn join<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items.map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

/// Length of the lowest run of set bits, as the kernel measures it.
fn first_run_len(mask: u64) -> u32 {
    if mask == 0 {
        return 0;
    }
    (mask >> mask.trailing_zeros()).trailing_ones()
}

fn is_contiguous(mask: u64) -> bool {
    if mask == 0 {
        return true;
    }
    let shifted = mask >> mask.trailing_zeros();
    shifted & shifted.wrapping_add(1) == 0
}

fn check_cbm(resource: &str, domain: u32, mask: u64, caps: &CacheCaps) -> Result<()> {
    if mask & !caps.cbm_mask != 0 {
        return Err(Error::CbmOutsideMask {
            resource: resource.to_string(),
            domain,
            mask,
            cbm_mask: caps.cbm_mask,
        });
    }
    if !caps.sparse_masks && !is_contiguous(mask) {
        return Err(Error::CbmNotContiguous {
            resource: resource.to_string(),
            domain,
            mask,
        });
    }
    let bits = first_run_len(mask);
    if bits < caps.min_cbm_bits {
        return Err(Error::CbmTooFewBits {
            resource: resource.to_string(),
            domain,
            mask,
            bits,
            min_cbm_bits: caps.min_cbm_bits,
        });
    }
    Ok(())
}

fn check_bandwidth(resource: &str, domain: u32, value: u32, caps: &BandwidthCaps) -> Result<()> {
    let Some(max) = caps.max_bandwidth() else {
        return Ok(());
    };
    let unit = match caps.unit {
        BandwidthUnit::AmdUnits => "AMD bandwidth units of 1/8 GB/s",
        _ => "percent of the maximum bandwidth",
    };
    if value < caps.min_bandwidth || value > max {
        return Err(Error::BandwidthOutOfRange {
            resource: resource.to_string(),
            domain,
            value,
            min: caps.min_bandwidth,
            max,
            unit,
        });
    }
    let gran = caps.bandwidth_gran;
    if gran > 1 && value % gran != 0 {
        return Err(Error::BandwidthNotMultiple {
            resource: resource.to_string(),
            domain,
            value,
            gran,
            rounded: value.div_ceil(gran).saturating_mul(gran),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguity() {
        for m in [
            0u64,
            1,
            0xf,
            0xf0,
            0x3ff,
            0x1f00,
            0xfffff,
            u64::MAX,
            1 << 63,
        ] {
            assert!(is_contiguous(m), "{m:x}");
        }
        for m in [0x5u64, 0xf0f, 0x80001, u64::MAX - 2] {
            assert!(!is_contiguous(m), "{m:x}");
        }
        assert_eq!(first_run_len(0), 0);
        assert_eq!(first_run_len(0xf0), 4);
        assert_eq!(first_run_len(0xf3), 2);
        assert_eq!(first_run_len(u64::MAX), 64);
    }
}
