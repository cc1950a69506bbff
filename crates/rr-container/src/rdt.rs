//! Intel RDT (resctrl) for containers: `linux.intelRdt` checked against the
//! host's capabilities before anything is created, the control and
//! monitoring groups made at `create`, `update --l3-cache-schema
//! --mem-bw-schema`, the `intel_rdt` part of `events --stats`, and removal
//! at `delete` of only what rr made.
//!
//! rrc finds resctrl as [`Resctrl::discover`] does (the environment variable
//! `RR_RESCTRL_ROOT` points it at another directory, which the tests use for
//! fake trees). After `create`, every operation uses the mount recorded in
//! state.json, so it acts on the groups it made even if the environment
//! differs.

use std::path::Path;

use oci_spec::runtime::Spec;
use rr_intelrdt::{
    Capabilities, Group, GroupName, IntelRdtConfig, MonitoringGroup, Resctrl, Resource, Schemata,
    DEFAULT_MOUNT_POINT,
};
use rr_state::{IntelRdtRecord, State};
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

/// The `linux.intelRdt` of a config, checked against the host: what
/// `create` will apply once the init exists.
pub(crate) struct RdtPlan {
    resctrl: Resctrl,
    cfg: IntelRdtConfig,
    schemata: Option<Schemata>,
    /// A host with monitoring but no allocation, and no closID or schemata
    /// asked for: the container stays in the root group (only a monitoring
    /// group can be made for it).
    root_group: bool,
}

/// The groups a create made, held until the state is saved so that a
/// failed create removes them again.
struct Applied {
    group: Group,
    mon: Option<MonitoringGroup>,
    pid: u32,
}

/// The Intel RDT part of the create guard: the plan before the init exists,
/// then what was made from it.
#[derive(Default)]
pub(crate) struct RdtGuard {
    pub(crate) plan: Option<RdtPlan>,
    applied: Option<Applied>,
}

impl RdtGuard {
    /// Makes or joins the groups of the plan and moves `pid` (the init,
    /// still waiting for `start`) into them. Returns the state.json fields.
    pub(crate) fn apply(
        &mut self,
        container_id: &str,
        pid: i32,
    ) -> Result<(String, Option<IntelRdtRecord>)> {
        let Some(plan) = &self.plan else {
            return Ok((String::new(), None));
        };
        let task = u32::try_from(pid)
            .map_err(|_| Error::Init(format!("internal: init pid {pid} is not a task id")))?;
        let group = if plan.root_group {
            Group::root(&plan.resctrl)
        } else {
            Group::create_or_reuse(
                &plan.resctrl,
                plan.cfg.group_name(container_id),
                plan.schemata.as_ref(),
            )?
        };
        let applied = self.applied.insert(Applied {
            group,
            mon: None,
            pid: task,
        });
        if !plan.root_group {
            applied.group.add_task(task)?;
        }
        let mut record = IntelRdtRecord {
            root: plan.resctrl.root().display().to_string(),
            mba_mbps: plan.resctrl.mba_mbps(),
            group: applied.group.name().to_string(),
            clos_id: plan.cfg.clos_id.is_some(),
            group_created: applied.group.created_by_us(),
            ..Default::default()
        };
        if plan.cfg.enable_monitoring {
            let mon = applied
                .mon
                .insert(applied.group.monitoring_group(container_id)?);
            mon.add_task(task)?;
            record.mon_group = container_id.to_string();
            record.mon_group_created = mon.created_by_us();
        }
        Ok((applied.group.path().display().to_string(), Some(record)))
    }

    /// Forgets the groups: the create succeeded and the state now owns them.
    pub(crate) fn disarm(&mut self) {
        self.applied = None;
    }

    /// Removes what this create made (best effort: the error that matters
    /// is the one that failed the create).
    pub(crate) fn undo(&mut self) {
        if let Some(a) = self.applied.take() {
            if let Some(mon) = &a.mon {
                let _ = mon.remove_if_created();
            }
            let _ = a.group.remove_if_created_ignoring(&[a.pid]);
        }
    }
}

fn config_error(config: &Path, e: rr_intelrdt::Error) -> Error {
    match e {
        rr_intelrdt::Error::OciField { field, reason } => Error::ConfigInvalid {
            path: config.to_path_buf(),
            field: format!("linux.intelRdt.{field}"),
            message: reason,
        },
        other => Error::ConfigInvalid {
            path: config.to_path_buf(),
            field: "linux.intelRdt".into(),
            message: other.to_string(),
        },
    }
}

/// The fields of `linux.intelRdt` that ask for something.
fn asked_fields(cfg: &IntelRdtConfig) -> Vec<&'static str> {
    let mut out = Vec::new();
    if cfg.clos_id.is_some() {
        out.push("closID");
    }
    if cfg.l3_cache_schema.is_some() {
        out.push("l3CacheSchema");
    }
    if cfg.mem_bw_schema.is_some() {
        out.push("memBwSchema");
    }
    if !cfg.schemata.is_empty() {
        out.push("schemata");
    }
    if cfg.enable_monitoring {
        out.push("enableMonitoring");
    }
    out
}

/// Reads `linux.intelRdt` and checks it against the host, before anything
/// of the container exists. `config` names config.json in errors.
///
/// Without resctrl on the host, a `linux.intelRdt` that asks for nothing
/// (`{}`) is ignored, as runc does; one that asks for anything is an error
/// (runc refuses `l3CacheSchema` and `memBwSchema` there but silently drops
/// a closID or monitoring; rr says so instead).
pub(crate) fn plan(spec: &Spec, config: &Path) -> Result<Option<RdtPlan>> {
    let Some(rdt) = spec.linux().as_ref().and_then(|l| l.intel_rdt().as_ref()) else {
        return Ok(None);
    };
    let cfg = IntelRdtConfig::from(rdt);
    let Some(resctrl) = Resctrl::discover().map_err(|e| config_error(config, e))? else {
        let asked = asked_fields(&cfg);
        if asked.is_empty() {
            return Ok(None);
        }
        return Err(Error::ConfigInvalid {
            path: config.to_path_buf(),
            field: "linux.intelRdt".into(),
            message: format!(
                "{} given, but this host has no resctrl filesystem (none at {DEFAULT_MOUNT_POINT} \
                 nor in /proc/self/mountinfo): mount it with `mount -t resctrl resctrl {DEFAULT_MOUNT_POINT}` \
                 on a host with Intel RDT or AMD PQoS, or remove linux.intelRdt",
                asked.join(", ")
            ),
        });
    };
    let caps = resctrl
        .capabilities()
        .map_err(|e| config_error(config, e))?;
    let root = resctrl
        .root_schemata()
        .map_err(|e| config_error(config, e))?;
    let schemata = cfg
        .validate(&caps, &root)
        .map_err(|e| config_error(config, e))?;
    let root_group = !caps.has_allocation() && cfg.clos_id.is_none() && schemata.is_none();
    if !root_group && !caps.has_allocation() {
        return Err(config_error(
            config,
            rr_intelrdt::Error::AllocationUnsupported,
        ));
    }
    if let (Some(id), None) = (&cfg.clos_id, &schemata) {
        let path =
            rr_intelrdt::group_path(resctrl.root(), id).map_err(|e| config_error(config, e))?;
        if !path.is_dir() {
            return Err(config_error(
                config,
                rr_intelrdt::Error::GroupMissing {
                    clos_id: id.clone(),
                    path,
                },
            ));
        }
    }
    Ok(Some(RdtPlan {
        resctrl,
        cfg,
        schemata,
        root_group,
    }))
}

pub(crate) fn resctrl_of(record: &IntelRdtRecord) -> Resctrl {
    Resctrl::at(Path::new(&record.root)).with_mba_mbps(record.mba_mbps)
}

/// The control group of a record, `None` when its directory is gone.
pub(crate) fn group_of(resctrl: &Resctrl, record: &IntelRdtRecord) -> Result<Option<Group>> {
    if record.group.is_empty() {
        return Ok(Some(Group::root(resctrl)));
    }
    if !resctrl.root().join(&record.group).is_dir() {
        return Ok(None);
    }
    let name = if record.clos_id {
        GroupName::ClosId(&record.group)
    } else {
        GroupName::ContainerId(&record.group)
    };
    Ok(Some(Group::open(resctrl, name, record.group_created)?))
}

/// Removes the groups rr made for a container whose processes are gone:
/// its monitoring group, then its control group (a closID group only when
/// no other task uses it). Groups rr only joined are left alone.
pub(crate) fn remove_groups(state: &State) -> Result<()> {
    let Some(record) = &state.rr_intel_rdt else {
        return Ok(());
    };
    let resctrl = resctrl_of(record);
    let Some(group) = group_of(&resctrl, record)? else {
        return Ok(());
    };
    if record.mon_group_created
        && group
            .path()
            .join("mon_groups")
            .join(&record.mon_group)
            .is_dir()
    {
        MonitoringGroup::open(&group, &record.mon_group, true)?.remove_if_created()?;
    }
    let own: Vec<u32> = u32::try_from(state.init_process_pid).into_iter().collect();
    group.remove_if_created_ignoring(&own)?;
    Ok(())
}

pub(crate) fn is_l3(resource: &str) -> bool {
    matches!(resource, "L3" | "L3CODE" | "L3DATA")
}

/// runc's `l3_cache_info`, from `L3`, or `L3CODE` with CDP on.
pub(crate) fn l3_info(caps: &Capabilities) -> Option<Value> {
    ["L3", "L3CODE", "L3DATA"]
        .iter()
        .find_map(|name| match caps.resource(name) {
            Some(Resource::Cache(c)) => Some(json!({
                "cbm_mask": format!("{:x}", c.cbm_mask),
                "min_cbm_bits": c.min_cbm_bits,
                "num_closids": c.num_closids,
            })),
            _ => None,
        })
}

/// Puts the lines of `schemata` whose resource passes `pick` under `key`,
/// joined by newlines; nothing when there are none (runc omits empty
/// strings).
pub(crate) fn put_lines(
    out: &mut Map<String, Value>,
    key: &str,
    schemata: &Schemata,
    pick: impl Fn(&str) -> bool,
) {
    let lines: Vec<String> = schemata
        .lines()
        .iter()
        .filter(|l| pick(&l.resource))
        .map(|l| l.to_string())
        .collect();
    if !lines.is_empty() {
        out.insert(key.into(), Value::String(lines.join("\n")));
    }
}

pub(crate) fn flag_of(field: &str) -> &'static str {
    match field {
        "memBwSchema" => "--mem-bw-schema",
        _ => "--l3-cache-schema",
    }
}

pub(crate) fn flag_names(cfg: &IntelRdtConfig) -> String {
    let mut f = Vec::new();
    if cfg.l3_cache_schema.is_some() {
        f.push("--l3-cache-schema");
    }
    if cfg.mem_bw_schema.is_some() {
        f.push("--mem-bw-schema");
    }
    f.join(", ")
}
