//! `events`: resource statistics and OOM notifications as runc's JSON
//! event objects (`{"type":"stats"|"oom","id":..,"data":..}`).

use std::time::{Duration, Instant};

use rr_cgroups::{Manager, OomWait, Stats};
use rr_intelrdt::{MonitoringGroup, Resource};
use rr_state::Status;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::rdt::{group_of, is_l3, l3_info, put_lines, resctrl_of};
use crate::runtime::{wrong_state, Runtime};

/// One event as runc prints it: the keys in the order `type`, `id`,
/// `data` (a JSON map would sort them), `data` absent for an OOM.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// `stats` or `oom`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The container id.
    pub id: String,
    /// The statistics of a `stats` event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<StatsData>,
}

/// The `data` of a stats event: the cgroup statistics in runc's field
/// order, then the Intel RDT ones when the container has a resctrl group.
#[derive(Debug, Clone, Serialize)]
pub struct StatsData {
    /// The cgroup statistics.
    #[serde(flatten)]
    pub cgroup: Stats,
    /// Intel RDT statistics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intel_rdt: Option<Value>,
}

impl Runtime {
    fn running_manager(&self, id: &str) -> Result<Manager> {
        let dir = self.container(id)?;
        let state = dir.load()?;
        let status = self.status_of(&dir, &state);
        if status == Status::Stopped {
            return Err(wrong_state(id, status, "container not running"));
        }
        crate::cgroups::manager_of(&state)?.ok_or_else(|| Error::Unsupported {
            field: "events".into(),
            message: format!("container {id} has no cgroups recorded in its state"),
        })
    }

    /// One stats event for the container.
    pub fn stats_event(&self, id: &str) -> Result<Event> {
        let cg = self.running_manager(id)?;
        self.stats_value(id, &cg)
    }

    /// Emits a stats event every `interval` and an OOM event whenever a
    /// process of the container is OOM-killed, until the container stops
    /// or `emit` fails.
    pub fn events(
        &self,
        id: &str,
        interval: Duration,
        mut emit: impl FnMut(&Event) -> Result<()>,
    ) -> Result<()> {
        let cg = self.running_manager(id)?;
        // Without a memory controller there are no OOM events to watch.
        let mut oom = cg.oom_events().ok();
        let interval = interval.max(Duration::from_millis(1));
        loop {
            let tick = Instant::now() + interval;
            loop {
                let left = tick.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match oom.as_mut() {
                    Some(w) => match w.wait(Some(left))? {
                        OomWait::Oom(_) => emit(&Event {
                            kind: "oom",
                            id: id.to_string(),
                            data: None,
                        })?,
                        OomWait::Timeout => {}
                        OomWait::Gone => return Ok(()),
                    },
                    None => std::thread::sleep(left),
                }
            }
            if !self.still_running(id) {
                return Ok(());
            }
            match self.stats_value(id, &cg) {
                Ok(v) => emit(&v)?,
                Err(_) if !self.still_running(id) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// runc's stats event: the cgroup statistics, and under `intel_rdt`
    /// the container's Intel RDT statistics when it has a resctrl group.
    fn stats_value(&self, id: &str, cg: &Manager) -> Result<Event> {
        Ok(Event {
            kind: "stats",
            id: id.to_string(),
            data: Some(StatsData {
                cgroup: cg.stats()?,
                intel_rdt: self.intel_rdt_stats(id)?,
            }),
        })
    }

    fn still_running(&self, id: &str) -> bool {
        let Ok(dir) = self.container(id) else {
            return false;
        };
        let Ok(state) = dir.load() else { return false };
        self.status_of(&dir, &state) != Status::Stopped
    }
}

impl Runtime {
    /// The container's Intel RDT statistics, as runc's `events --stats`
    /// prints them under `intel_rdt`: `l3_cache_info`,
    /// `l3_cache_schema_root`, `l3_cache_schema`, `mem_bw_info`,
    /// `mem_bw_schema_root`, `mem_bw_schema`, and per L3 domain
    /// `mbm_stats` (`mbm_total_bytes`, `mbm_local_bytes`) and `cmt_stats`
    /// (`llc_occupancy`), from the container's monitoring group when it
    /// has one, else from its control group. `None` when the container has
    /// no Intel RDT group.
    ///
    /// Differences from runc, which keeps one line per field: with code/data
    /// prioritization the L3 schema fields hold the `L3CODE` and `L3DATA`
    /// lines joined by a newline; a counter the kernel reports as
    /// `Unavailable` is 0.
    pub fn intel_rdt_stats(&self, id: &str) -> Result<Option<Value>> {
        let dir = self.container(id)?;
        let state = dir.load()?;
        let Some(record) = &state.rr_intel_rdt else {
            return Ok(None);
        };
        let resctrl = resctrl_of(record);
        let caps = resctrl.capabilities()?;
        let Some(group) = group_of(&resctrl, record)? else {
            return Ok(None);
        };
        let root = resctrl.root_schemata()?;
        let own = group.schemata()?;
        let mut out = Map::new();
        if let Some(info) = l3_info(&caps) {
            out.insert("l3_cache_info".into(), info);
            put_lines(&mut out, "l3_cache_schema_root", &root, is_l3);
            put_lines(&mut out, "l3_cache_schema", &own, is_l3);
        }
        if let Some(Resource::Bandwidth(mb)) = caps.resource("MB") {
            out.insert(
                "mem_bw_info".into(),
                json!({
                    "bandwidth_gran": mb.bandwidth_gran,
                    "delay_linear": u32::from(mb.delay_linear),
                    "min_bandwidth": mb.min_bandwidth,
                    "num_closids": mb.num_closids,
                }),
            );
            put_lines(&mut out, "mem_bw_schema_root", &root, |r| r == "MB");
            put_lines(&mut out, "mem_bw_schema", &own, |r| r == "MB");
        }
        if let Some(mon) = &caps.monitoring {
            let stats = if record.mon_group.is_empty() {
                group.stats()?
            } else {
                MonitoringGroup::open(&group, &record.mon_group, record.mon_group_created)?
                    .stats()?
            };
            let has = |f: &str| mon.mon_features.iter().any(|m| m == f);
            if has("mbm_total_bytes") || has("mbm_local_bytes") {
                let v: Vec<Value> = stats
                    .domains
                    .iter()
                    .map(|d| {
                        json!({
                            "mbm_total_bytes": d.mbm_total_bytes.unwrap_or(0),
                            "mbm_local_bytes": d.mbm_local_bytes.unwrap_or(0),
                        })
                    })
                    .collect();
                out.insert("mbm_stats".into(), Value::Array(v));
            }
            if has("llc_occupancy") {
                let v: Vec<Value> = stats
                    .domains
                    .iter()
                    .map(|d| json!({ "llc_occupancy": d.llc_occupancy.unwrap_or(0) }))
                    .collect();
                out.insert("cmt_stats".into(), Value::Array(v));
            }
        }
        Ok(Some(Value::Object(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_in_runc_order() {
        let oom = Event {
            kind: "oom",
            id: "c1".into(),
            data: None,
        };
        assert_eq!(
            serde_json::to_string(&oom).ok().as_deref(),
            Some(r#"{"type":"oom","id":"c1"}"#)
        );
        let stats = Event {
            kind: "stats",
            id: "c1".into(),
            data: Some(StatsData {
                cgroup: Stats::default(),
                intel_rdt: None,
            }),
        };
        let text = serde_json::to_string(&stats).unwrap_or_default();
        assert!(
            text.starts_with(r#"{"type":"stats","id":"c1","data":{"cpu":"#),
            "{text}"
        );
        assert!(!text.contains("intel_rdt"), "{text}");
    }
}
