//! The config.json that `rrc spec` writes: ready to run a busybox rootfs,
//! and what `runc spec` writes on the same host but for the hostname and
//! one more masked path (below). The rootless variant is runc's too: its
//! /sys/fs/cgroup mount stays (the host's hierarchies as the user sees
//! them, through the /sys bind).

use serde_json::{json, Value};

const DEFAULT_CAPS: &[&str] = &["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

const MASKED: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
    // Not in runc 1.1.5's list (later runc versions mask it): RAPL energy
    // counters are a side channel (CVE-2020-8694).
    "/sys/devices/virtual/powercap",
];

const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Builds the default spec for this host; `rootless` adapts it for a
/// non-root caller with the given host uid and gid.
pub fn default_spec(rootless: Option<(u32, u32)>) -> Value {
    build(rootless, host_is_unified())
}

/// Whether /sys/fs/cgroup is a cgroup2 file system (no v1 hierarchies).
/// As runc, the default spec has a cgroup namespace only then, so that a
/// tool that adds one on other hosts does not end up with two.
pub fn host_is_unified() -> bool {
    matches!(
        rr_cgroups::mode::fs_magic(std::path::Path::new(rr_cgroups::DEFAULT_ROOT)),
        Ok(Some(rr_cgroups::mode::CGROUP2_SUPER_MAGIC))
    )
}

/// The default spec, with a cgroup namespace when `cgroup_ns`.
pub fn build(rootless: Option<(u32, u32)>, cgroup_ns: bool) -> Value {
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "network"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if cgroup_ns {
        namespaces.push(json!({"type": "cgroup"}));
    }
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
    ];
    let caps = json!(DEFAULT_CAPS);
    let mut linux = json!({
        "resources": {"devices": [{"allow": false, "access": "rwm"}]},
        "namespaces": [],
        "maskedPaths": MASKED,
        "readonlyPaths": READONLY,
    });
    if let Some((uid, gid)) = rootless {
        namespaces.retain(|n| n["type"] != "network");
        namespaces.push(json!({"type": "user"}));
        linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
        linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
        if let Some(obj) = linux.as_object_mut() {
            obj.remove("resources");
        }
        for m in &mut mounts {
            if m["destination"] == "/sys" {
                *m = json!({"destination": "/sys", "type": "none", "source": "/sys",
                            "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            }
            if m["destination"] == "/dev/pts" {
                if let Some(opts) = m["options"].as_array_mut() {
                    opts.retain(|o| o != "gid=5");
                }
            }
        }
    }
    linux["namespaces"] = Value::Array(namespaces);
    json!({
        // The version runc 1.1.5 writes, which tools compare with.
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps,
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true,
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "rrc",
        "mounts": mounts,
        "linux": linux,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_namespace_only_when_asked() {
        for rootless in [None, Some((1000, 1000))] {
            for ns in [false, true] {
                let v = build(rootless, ns);
                let n = v["linux"]["namespaces"]
                    .as_array()
                    .map(|a| a.iter().filter(|n| n["type"] == "cgroup").count());
                assert_eq!(n, Some(usize::from(ns)));
            }
        }
    }

    #[test]
    fn default_spec_parses_and_validates() {
        for rootless in [None, Some((1000, 1000))] {
            let text = serde_json::to_vec(&default_spec(rootless)).expect("serialize");
            let spec = crate::config::parse_spec(std::path::Path::new("c"), &text)
                .expect("oci-spec accepts the default");
            let linux = spec.linux().as_ref().expect("linux");
            let has_user = linux
                .namespaces()
                .iter()
                .flatten()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User);
            assert_eq!(has_user, rootless.is_some());
        }
    }
}
