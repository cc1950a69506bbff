//! Monitoring counters from `mon_data/mon_L3_XX/`.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use crate::error::{io_err, Error, Result};

/// The counters of one L3 domain (`mon_data/mon_L3_XX`). A counter is
/// `None` when the host does not have it or the kernel answers
/// `Unavailable` (e.g. right after the RMID was allocated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainStats {
    /// The L3 domain (cache) id, `XX`.
    pub domain: u32,
    /// `llc_occupancy`: bytes of L3 held by the group's tasks.
    pub llc_occupancy: Option<u64>,
    /// `mbm_total_bytes`: total memory bandwidth counter, in bytes.
    pub mbm_total_bytes: Option<u64>,
    /// `mbm_local_bytes`: local (same-socket) memory bandwidth counter.
    pub mbm_local_bytes: Option<u64>,
}

/// The monitoring counters of a group, one entry per L3 domain, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Per-domain counters, sorted by domain id.
    pub domains: Vec<DomainStats>,
}

impl Stats {
    /// The counters of `domain`, if the group has them.
    pub fn domain(&self, domain: u32) -> Option<&DomainStats> {
        self.domains.iter().find(|d| d.domain == domain)
    }
}

/// Reads `<mon_data>/mon_L3_*/`. A group without `mon_data` (no
/// monitoring) has no domains.
pub(crate) fn read_stats(mon_data: &Path) -> Result<Stats> {
    let entries = match fs::read_dir(mon_data) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Stats::default()),
        Err(source) => {
            return Err(Error::Io {
                path: mon_data.to_path_buf(),
                source,
            })
        }
    };
    let mut stats = Stats::default();
    for entry in entries {
        let entry = entry.map_err(io_err(mon_data))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name
            .strip_prefix("mon_L3_")
            .and_then(crate::schemata::parse_decimal_u32)
        else {
            continue;
        };
        let dir = entry.path();
        stats.domains.push(DomainStats {
            domain: id,
            llc_occupancy: read_counter(&dir.join("llc_occupancy"))?,
            mbm_total_bytes: read_counter(&dir.join("mbm_total_bytes"))?,
            mbm_local_bytes: read_counter(&dir.join("mbm_local_bytes"))?,
        });
    }
    stats.domains.sort_by_key(|d| d.domain);
    Ok(stats)
}

fn read_counter(path: &Path) -> Result<Option<u64>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let value = text.trim();
    if value == "Unavailable" {
        return Ok(None);
    }
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::BadCounter {
            path: path.to_path_buf(),
            value: value.to_string(),
        });
    }
    value.parse().map(Some).map_err(|_| Error::BadCounter {
        path: path.to_path_buf(),
        value: value.to_string(),
    })
}
