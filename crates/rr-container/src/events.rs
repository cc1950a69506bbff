//! `events`: resource statistics and OOM notifications as runc's JSON
//! event objects (`{"type":"stats"|"oom","id":..,"data":..}`).

use std::time::{Duration, Instant};

use rr_cgroups::{Manager, OomWait};
use rr_state::Status;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::lifecycle::{wrong_state, Runtime};

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
    pub fn stats_event(&self, id: &str) -> Result<Value> {
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
        mut emit: impl FnMut(&Value) -> Result<()>,
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
                        OomWait::Oom(_) => emit(&json!({"type": "oom", "id": id}))?,
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
    fn stats_value(&self, id: &str, cg: &Manager) -> Result<Value> {
        let stats = cg.stats()?;
        let mut data =
            serde_json::to_value(&stats).map_err(|e| Error::Init(format!("stats: {e}")))?;
        if let (Some(rdt), Some(obj)) = (self.intel_rdt_stats(id)?, data.as_object_mut()) {
            obj.insert("intel_rdt".into(), rdt);
        }
        Ok(json!({"type": "stats", "id": id, "data": data}))
    }

    fn still_running(&self, id: &str) -> bool {
        let Ok(dir) = self.container(id) else {
            return false;
        };
        let Ok(state) = dir.load() else { return false };
        self.status_of(&dir, &state) != Status::Stopped
    }
}
