//! `pause` and `resume`: freezing and thawing a container's cgroups.

use rr_state::Status;

use crate::error::{Error, Result};
use crate::runtime::{wrong_state, Runtime};

impl Runtime {
    fn frozen_manager(
        &self,
        id: &str,
        want: &[Status],
        message: &str,
    ) -> Result<rr_cgroups::Manager> {
        let dir = self.container(id)?;
        let state = dir.load()?;
        let status = self.status_of(&dir, &state);
        if !want.contains(&status) {
            return Err(wrong_state(id, status, message));
        }
        crate::cgroups::manager_of(&state)?.ok_or_else(|| Error::Unsupported {
            field: "pause".into(),
            message: format!("container {id} has no cgroups recorded in its state"),
        })
    }

    /// Freezes every process of a running (or created) container.
    pub fn pause(&self, id: &str) -> Result<()> {
        let cg = self.frozen_manager(
            id,
            &[Status::Running, Status::Created],
            "container not running",
        )?;
        cg.freeze()?;
        Ok(())
    }

    /// Thaws a paused container.
    pub fn resume(&self, id: &str) -> Result<()> {
        let cg = self.frozen_manager(id, &[Status::Paused], "container not paused")?;
        cg.thaw()?;
        Ok(())
    }
}
