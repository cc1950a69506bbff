//! The link between a spec and rr-nsenter: the bootstrap message that
//! makes and joins the namespaces (with the time namespace's offsets),
//! and the names namespaces go by in state.json and /proc.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use rr_nsenter::{BootstrapMessage, IdMapping};

use crate::error::{Error, Result};

pub(crate) fn namespaces(spec: &Spec) -> Vec<(LinuxNamespaceType, Option<PathBuf>)> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .map(|v| v.iter().map(|n| (n.typ(), n.path().clone())).collect())
        .unwrap_or_default()
}

pub(crate) fn kind_key(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "NEWNS",
        LinuxNamespaceType::Cgroup => "NEWCGROUP",
        LinuxNamespaceType::Uts => "NEWUTS",
        LinuxNamespaceType::Ipc => "NEWIPC",
        LinuxNamespaceType::User => "NEWUSER",
        LinuxNamespaceType::Pid => "NEWPID",
        LinuxNamespaceType::Network => "NEWNET",
        LinuxNamespaceType::Time => "NEWTIME",
    }
}

pub(crate) fn proc_ns_name(kind: rr_nsenter::NsKind) -> &'static str {
    match kind {
        rr_nsenter::NsKind::Time => "time",
        other => other.name(),
    }
}

fn to_maps(v: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>) -> Vec<IdMapping> {
    v.map(|m| {
        m.iter()
            .map(|x| IdMapping {
                container_id: x.container_id(),
                host_id: x.host_id(),
                size: x.size(),
            })
            .collect()
    })
    .unwrap_or_default()
}

/// Builds the bootstrap message for a spec.
pub fn bootstrap_message(spec: &Spec) -> Result<BootstrapMessage> {
    let linux = spec.linux().as_ref();
    let ns = linux
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let uid_map = to_maps(linux.and_then(|l| l.uid_mappings().as_ref()));
    let gid_map = to_maps(linux.and_then(|l| l.gid_mappings().as_ref()));
    // SAFETY: getegid cannot fail.
    let egid = unsafe { libc::getegid() };
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    let clone_flags = rr_nsenter::clone_flags_to_create(&ns)?;
    let set_groups = if clone_flags & libc::CLONE_NEWUSER as u32 != 0 {
        Some(rr_nsenter::setgroups_allowed(&gid_map, egid))
    } else {
        None
    };
    Ok(BootstrapMessage {
        clone_flags,
        ns_paths: rr_nsenter::ns_paths_to_join(&ns)?,
        uid_map,
        gid_map,
        // Unprivileged, the kernel takes only a map of the caller's own id;
        // the setuid helpers write the rest from /etc/subuid and /etc/subgid.
        uid_map_path: (euid != 0).then(|| id_map_helper("newuidmap")).flatten(),
        gid_map_path: (euid != 0).then(|| id_map_helper("newgidmap")).flatten(),
        set_groups,
        oom_score_adj: spec.process().as_ref().and_then(|p| p.oom_score_adj()),
        rootless_euid: euid != 0,
        time_offsets: time_offsets(spec)?,
    })
}

/// `linux.timeOffsets`, for a time namespace the container makes (the
/// offsets of one joined by path are its owner's to set).
fn time_offsets(spec: &Spec) -> Result<Vec<rr_nsenter::TimeOffset>> {
    let linux = spec.linux().as_ref();
    let Some(offsets) = linux.and_then(|l| l.time_offsets().as_ref()) else {
        return Ok(Vec::new());
    };
    let invalid = |field: String, message: &str| Error::ConfigInvalid {
        path: "config.json".into(),
        field,
        message: message.into(),
    };
    if offsets.is_empty() {
        return Ok(Vec::new());
    }
    let time_ns = namespaces(spec)
        .into_iter()
        .find(|(t, _)| *t == LinuxNamespaceType::Time);
    match time_ns {
        None => {
            return Err(invalid(
                "linux.timeOffsets".into(),
                "given without a time namespace (linux.namespaces)",
            ))
        }
        Some((_, Some(_))) => {
            return Err(invalid(
                "linux.timeOffsets".into(),
                "a time namespace joined by path keeps its own offsets",
            ))
        }
        Some((_, None)) => {}
    }
    let mut out = Vec::new();
    for (name, o) in offsets {
        let field = format!("linux.timeOffsets.{name}");
        let clock = rr_nsenter::TimeClock::from_name(name)
            .ok_or_else(|| invalid(field.clone(), "unknown clock (monotonic or boottime)"))?;
        let nanosecs = o.nanosecs().unwrap_or(0);
        if nanosecs >= 1_000_000_000 {
            return Err(invalid(
                format!("{field}.nanosecs"),
                "must be below 1000000000",
            ));
        }
        out.push(rr_nsenter::TimeOffset {
            clock,
            secs: o.secs().unwrap_or(0),
            nanosecs,
        });
    }
    out.sort_by_key(|o| o.clock.name());
    Ok(out)
}

/// Where the shadow-utils id map helper `name` is installed, if it is.
fn id_map_helper(name: &str) -> Option<String> {
    ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        .iter()
        .map(|d| format!("{d}/{name}"))
        .find(|p| Path::new(p).exists())
}

/// The host uid and gid that container root maps to.
pub(crate) fn host_root_ids(msg: &BootstrapMessage) -> (u32, u32) {
    let find = |maps: &[IdMapping], default: u32| {
        maps.iter()
            .find(|m| m.container_id == 0)
            .map_or(default, |m| m.host_id)
    };
    // SAFETY: geteuid/getegid cannot fail.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    (find(&msg.uid_map, euid), find(&msg.gid_map, egid))
}
