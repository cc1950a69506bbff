//! `update`: changing a container's resource limits while it runs.

use std::path::Path;

use oci_spec::runtime::LinuxResources;
use rr_intelrdt::{IntelRdtConfig, Resctrl, Schemata};
use rr_state::{IntelRdtRecord, Status};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::rdt::{flag_names, flag_of, group_of, resctrl_of};
use crate::runtime::{wrong_state, Runtime};

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

impl Runtime {
    /// `update --l3-cache-schema/--mem-bw-schema`: writes the given lines
    /// to the container's control group, after checking them against the
    /// host as `create` does. Only the resources and domains given change.
    /// An error when the container was created without `linux.intelRdt`.
    pub fn update_intel_rdt(
        &self,
        id: &str,
        l3_cache_schema: Option<&str>,
        mem_bw_schema: Option<&str>,
    ) -> Result<()> {
        let given = |s: Option<&str>| s.filter(|s| !s.trim().is_empty()).map(str::to_string);
        let cfg = IntelRdtConfig {
            l3_cache_schema: given(l3_cache_schema),
            mem_bw_schema: given(mem_bw_schema),
            ..Default::default()
        };
        if cfg.l3_cache_schema.is_none() && cfg.mem_bw_schema.is_none() {
            return Ok(());
        }
        let dir = self.container(id)?;
        let _lock = dir.lock()?;
        let mut state = dir.load()?;
        let status = self.status_of(&dir, &state);
        if status == Status::Stopped {
            return Err(wrong_state(id, status, "cannot update a stopped container"));
        }
        let record = rdt_record(id, &state, &cfg)?;
        let resctrl = resctrl_of(&record);
        let schemata = checked_schemata(&cfg, &resctrl)?;
        let Some(schemata) = schemata else {
            return Ok(());
        };
        let group = group_of(&resctrl, &record)?.ok_or_else(|| {
            Error::IntelRdt(rr_intelrdt::Error::Io {
                path: Path::new(&record.root).join(&record.group),
                source: std::io::Error::from_raw_os_error(libc::ENOENT),
            })
        })?;
        group.set_schemata(&schemata)?;
        // Keep the stored config in step, as runc does, so that later
        // commands see what the group now holds.
        record_schemata(&mut state.config.spec, &cfg);
        dir.save(&state)?;
        Ok(())
    }
}

/// The container's resctrl group as `create` recorded it; the root group
/// and no group at all are refused, naming the flags given.
fn rdt_record(id: &str, state: &rr_state::State, cfg: &IntelRdtConfig) -> Result<IntelRdtRecord> {
    match &state.rr_intel_rdt {
        Some(r) if !r.group.is_empty() => Ok(r.clone()),
        Some(_) => Err(Error::InvalidFlag {
            flag: flag_names(cfg),
            message: format!(
                "container {id} is in the root resctrl group (this host has no allocation), whose schemata rr does not change"
            ),
        }),
        None => Err(Error::InvalidFlag {
            flag: flag_names(cfg),
            message: format!(
                "container {id} has no Intel RDT group: its config had no linux.intelRdt at create"
            ),
        }),
    }
}

/// Checks the given lines against the host as `create` does; an error
/// names the flag whose line is wrong when it is known.
fn checked_schemata(cfg: &IntelRdtConfig, resctrl: &Resctrl) -> Result<Option<Schemata>> {
    cfg.validate(&resctrl.capabilities()?, &resctrl.root_schemata()?)
        .map_err(|e| match e {
            rr_intelrdt::Error::OciField { field, reason } => Error::InvalidFlag {
                flag: flag_of(field).to_string(),
                message: reason,
            },
            other => Error::InvalidFlag {
                flag: flag_names(cfg),
                message: other.to_string(),
            },
        })
}

/// Writes the new lines into the stored config's `linux.intelRdt`.
fn record_schemata(spec: &mut Value, cfg: &IntelRdtConfig) {
    if let Some(rdt) = spec
        .pointer_mut("/linux/intelRdt")
        .and_then(Value::as_object_mut)
    {
        if let Some(l3) = &cfg.l3_cache_schema {
            rdt.insert("l3CacheSchema".into(), Value::String(l3.clone()));
        }
        if let Some(mb) = &cfg.mem_bw_schema {
            rdt.insert("memBwSchema".into(), Value::String(mb.clone()));
        }
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
