//! `state` and `list`: the OCI state of one container or of all.

use rr_state::OciState;

use crate::error::Result;
use crate::runtime::Runtime;

impl Runtime {
    /// The OCI state of one container.
    pub fn state(&self, id: &str) -> Result<OciState> {
        let dir = self.container(id)?;
        let state = dir.load()?;
        Ok(self.oci_state(&dir, &state))
    }

    /// The OCI state of every container, sorted by id.
    pub fn list(&self) -> Result<Vec<OciState>> {
        let mut out = Vec::new();
        for id in self.root.list()? {
            let Ok(dir) = self.root.open_container(&id) else {
                continue;
            };
            let Ok(state) = dir.load() else { continue };
            out.push(self.oci_state(&dir, &state));
        }
        Ok(out)
    }
}
