//! `update`: changing a container's resource limits while it runs.

use oci_spec::runtime::LinuxResources;
use rr_state::Status;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::ops::create::{wrong_state, Runtime};

impl Runtime {
    /// Writes the resources given (fields left out keep their values).
    /// When a write fails, the values already written are restored and the
    /// error names the failing file. The new values are also recorded in the
    /// spec kept in state.json.
    pub fn update(&self, id: &str, resources: &LinuxResources) -> Result<()> {
        let dir = self.container(id)?;
        let _lock = dir.lock()?;
        let mut state = dir.load()?;
        let status = self.status_of(&dir, &state);
        if status == Status::Stopped {
            return Err(wrong_state(id, status, "cannot update a stopped container"));
        }
        let cg = crate::cgroups::manager_of(&state)?.ok_or_else(|| Error::Unsupported {
            field: "update".into(),
            message: format!("container {id} has no cgroups recorded in its state"),
        })?;
        for w in cg.update(resources)? {
            self.warn(w.to_string());
        }
        let new = serde_json::to_value(resources)
            .map_err(|e| Error::Init(format!("encoding the resources: {e}")))?;
        merge_resources(&mut state.config.spec, new);
        dir.save(&state)?;
        Ok(())
    }
}

/// Merges `new` into the spec's `linux.resources`: objects key by key,
/// everything else (numbers, strings, lists such as device rules) replaced.
fn merge_resources(spec: &mut Value, new: Value) {
    if !spec.is_object() {
        *spec = Value::Object(Default::default());
    }
    let linux = &mut spec["linux"];
    if !linux.is_object() {
        *linux = Value::Object(Default::default());
    }
    merge(&mut linux["resources"], new);
}

fn merge(dst: &mut Value, src: Value) {
    match (dst, src) {
        (Value::Object(d), Value::Object(s)) => {
            for (k, v) in s {
                merge(d.entry(k).or_insert(Value::Null), v);
            }
        }
        (d, s) => *d = s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_keeps_other_fields() {
        let mut spec =
            json!({"linux": {"resources": {"memory": {"limit": 1, "swap": 2}, "devices": [1]}}});
        merge_resources(
            &mut spec,
            json!({"memory": {"limit": 5}, "pids": {"limit": 9}}),
        );
        assert_eq!(
            spec["linux"]["resources"],
            json!({"memory": {"limit": 5, "swap": 2}, "devices": [1], "pids": {"limit": 9}})
        );
        let mut empty = json!({});
        merge_resources(&mut empty, json!({"cpu": {"shares": 3}}));
        assert_eq!(empty["linux"]["resources"]["cpu"]["shares"], 3);
    }
}
