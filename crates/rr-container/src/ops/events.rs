//! `events`: resource statistics and OOM notifications as runc's JSON
//! event objects (`{"type":"stats"|"oom","id":..,"data":..}`).

use std::time::{Duration, Instant};

use rr_cgroups::{Manager, OomWait, Stats};
use rr_state::Status;
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::ops::create::{wrong_state, Runtime};

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
