//! `rrc features`: what this build of rr supports, as the runtime-spec's
//! features document (features.md), the JSON that clients such as
//! containerd read instead of guessing from a version number.
//!
//! Each list is derived from the code that acts on the spec rather than
//! written out by hand: the mount options are the parser's tables, the
//! seccomp names are those the seccomp translator accepts, the hooks,
//! namespaces, memory policy modes and flags, idmapped mounts and network
//! devices come from the spec catalogue (`spec_catalogue`, whose tables
//! the code uses and whose entries say what is applied), and the LSM and
//! Intel RDT entries say what this host has, so the document cannot claim
//! what `create` would refuse.

use serde_json::{json, Value};

use crate::spec_catalogue::{self as catalogue, How};

/// The lowest `ociVersion` rr accepts.
pub const OCI_VERSION_MIN: &str = "1.0.0";
/// The highest runtime-spec version whose configs rr parses (any 1.x is
/// accepted; 1.3.0 is the newest one tested).
pub const OCI_VERSION_MAX: &str = "1.3.0";

/// Whether the catalogue says rrc acts on `path` (everywhere, or where the
/// host has what it needs): `features` lists nothing else.
fn handled(path: &str) -> bool {
    matches!(
        catalogue::lookup(path).map(|e| e.how),
        Some(How::Applied(_) | How::IfHost { .. })
    )
}

/// The hook lists rrc runs, as the catalogue has them.
fn hooks() -> Vec<&'static str> {
    filter(catalogue::HOOKS, |h| handled(&format!("hooks.{h}")))
}

/// The namespace types rrc creates or joins.
fn namespaces() -> &'static [&'static str] {
    if handled("linux.namespaces[].type") {
        catalogue::values("linux.namespaces[].type")
    } else {
        &[]
    }
}

/// The memory policy modes and flags the catalogue's tables (which
/// `init::mempolicy` sets) have.
fn memory_policy() -> Value {
    let (modes, flags): (Vec<&str>, Vec<&str>) = if handled("linux.memoryPolicy.mode") {
        (
            catalogue::MEMORY_POLICY_MODES.iter().map(|m| m.0).collect(),
            catalogue::MEMORY_POLICY_FLAGS.iter().map(|f| f.0).collect(),
        )
    } else {
        (Vec::new(), Vec::new())
    };
    json!({"modes": modes, "flags": flags})
}

/// Whether the seccomp translator accepts `profile` without a warning,
/// and this kernel has every action of the filter it makes.
fn seccomp_accepts(profile: Value) -> bool {
    let Ok(s) = serde_json::from_value::<oci_spec::runtime::LinuxSeccomp>(profile) else {
        return false;
    };
    rr_seccomp::build(&s).is_ok_and(|(f, warnings)| warnings.is_empty() && f.check_kernel().is_ok())
}

/// A notify rule needs a listener path, which the probes give it (the
/// path is not used: nothing is installed).
fn with_listener(mut profile: Value) -> Value {
    profile["listenerPath"] = json!("/run/rr-features-probe.sock");
    profile
}

fn filter(names: &[&'static str], accepts: impl Fn(&str) -> bool) -> Vec<&'static str> {
    names.iter().copied().filter(|n| accepts(n)).collect()
}

/// The values the spec allows for the enumerated field `path` (in the
/// spec's order) that `accepts` takes.
fn spec_values(path: &str, accepts: impl Fn(&str) -> bool) -> Vec<&'static str> {
    filter(catalogue::spec_enum(path), accepts)
}

/// The features document of this rr on this host.
pub fn features() -> Value {
    let rule = |action: &str, op: &str| {
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{
            "names": ["getpid"], "action": action,
            "args": [{"index": 0, "value": 1, "op": op}]}]})
    };
    let actions = spec_values("linux.seccomp.syscalls[].action", |a| {
        let probe = rule(a, "SCMP_CMP_EQ");
        seccomp_accepts(if a == "SCMP_ACT_NOTIFY" {
            with_listener(probe)
        } else {
            probe
        })
    });
    let operators = spec_values("linux.seccomp.syscalls[].args[].op", |o| {
        seccomp_accepts(rule("SCMP_ACT_ALLOW", o))
    });
    let archs = spec_values("linux.seccomp.architectures", |a| {
        seccomp_accepts(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": [a]}))
    });
    let known_flags = spec_values("linux.seccomp.flags", |f| {
        serde_json::from_value::<oci_spec::runtime::LinuxSeccompFilterFlag>(json!(f)).is_ok()
    });
    let supported_flags = spec_values("linux.seccomp.flags", |f| {
        let probe = json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": [f]});
        seccomp_accepts(if f == "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" {
            let mut p = with_listener(probe);
            p["syscalls"] = json!([{"names": ["getpid"], "action": "SCMP_ACT_NOTIFY"}]);
            p
        } else {
            probe
        })
    });
    let mut capabilities: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    capabilities.sort();
    json!({
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION_MAX,
        "hooks": hooks(),
        "mountOptions": crate::init::mount_opts::known_options(),
        "linux": {
            "namespaces": namespaces(),
            "capabilities": capabilities,
            "cgroup": {
                "v1": true,
                "v2": true,
                "systemd": crate::cgroups::systemd_available(false),
                "systemdUser": crate::cgroups::systemd_available(true),
                "rdma": true,
            },
            "seccomp": {
                "enabled": true,
                "actions": actions,
                "operators": operators,
                "archs": archs,
                "knownFlags": known_flags,
                "supportedFlags": supported_flags,
            },
            "apparmor": {"enabled": crate::init::confine::apparmor_enabled()},
            "selinux": {"enabled": crate::init::confine::selinux_enabled()},
            "intelRdt": {
                "enabled": handled("linux.intelRdt.closID")
                    && rr_intelrdt::Resctrl::discover().is_ok_and(|r| r.is_some()),
            },
            "mountExtensions": {"idmap": {
                "enabled": handled("mounts[].uidMappings") && crate::init::idmapped::supported(),
            }},
            "netDevices": {"enabled": handled("linux.netDevices{}.name")},
            "memoryPolicy": memory_policy(),
        },
        "annotations": {
            "rr.version": env!("CARGO_PKG_VERSION"),
            "rr.checkpoint.enabled": "true",
            "rr.seccomp.compiler": "rr (no libseccomp)",
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_the_spec_features_document() {
        let v = features();
        let f: oci_spec::runtime::Features = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(f.oci_version_min(), OCI_VERSION_MIN);
        assert_eq!(f.hooks().as_ref().unwrap().len(), 6);
        let linux = f.linux().as_ref().unwrap();
        assert_eq!(linux.namespaces().as_ref().unwrap().len(), 8);
        assert!(linux
            .capabilities()
            .as_ref()
            .unwrap()
            .contains(&"CAP_SYS_ADMIN".to_string()));
    }

    #[test]
    fn seccomp_lists_are_what_the_translator_accepts() {
        let v = features();
        let s = &v["linux"]["seccomp"];
        let has = |k: &str, n: &str| s[k].as_array().unwrap().iter().any(|x| x == n);
        assert!(has("actions", "SCMP_ACT_ERRNO"));
        assert!(has("actions", "SCMP_ACT_KILL_PROCESS"));
        // With a listenerPath, on kernels that have it (5.0 on).
        assert!(has("actions", "SCMP_ACT_NOTIFY"));
        assert_eq!(s["operators"].as_array().unwrap().len(), 7);
        assert!(has("archs", "SCMP_ARCH_X86_64"));
        assert!(has("archs", "SCMP_ARCH_AARCH64"));
        assert!(!has("archs", "SCMP_ARCH_PPC64LE"));
        assert!(has("supportedFlags", "SECCOMP_FILTER_FLAG_LOG"));
        assert!(has(
            "supportedFlags",
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
        ));
        assert!(has("knownFlags", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"));
    }

    #[test]
    fn mount_options_include_the_parsers_names() {
        let v = features();
        let m = v["mountOptions"].as_array().unwrap();
        for n in ["ro", "rbind", "rprivate", "nosuid", "tmpcopyup", "defaults"] {
            assert!(m.iter().any(|x| x == n), "{n} missing from {m:?}");
        }
    }

    fn strings(v: &Value) -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect()
    }

    /// Everything listed is applied by the catalogue, and every applied
    /// value of an enumerated field is listed.
    #[test]
    fn lists_only_what_the_catalogue_applies() {
        let v = features();
        let hooks = strings(&v["hooks"]);
        let applied_hooks: Vec<String> = catalogue::fields()
            .filter(|e| e.path.starts_with("hooks.") && !e.path.contains('['))
            .filter(|e| handled(e.path))
            .map(|e| e.path["hooks.".len()..].to_string())
            .collect();
        assert_eq!(hooks.len(), applied_hooks.len(), "{hooks:?}");
        for h in &applied_hooks {
            assert!(hooks.contains(h), "{h} applied but not listed");
        }

        let ns = strings(&v["linux"]["namespaces"]);
        assert!(handled("linux.namespaces[].type"));
        assert_eq!(ns, catalogue::values("linux.namespaces[].type"));
        for n in &ns {
            serde_json::from_value::<oci_spec::runtime::LinuxNamespaceType>(json!(n))
                .unwrap_or_else(|e| panic!("{n}: {e}"));
        }

        // Each mode and flag listed is one create accepts.
        let mp = &v["linux"]["memoryPolicy"];
        let modes = strings(&mp["modes"]);
        assert_eq!(modes.len(), catalogue::MEMORY_POLICY_MODES.len());
        for (name, _, _, takes) in catalogue::MEMORY_POLICY_MODES {
            assert!(modes.iter().any(|m| m == name), "{name} not listed");
            let mut p = json!({"mode": name});
            if *takes {
                p["nodes"] = json!("0");
            }
            let linux = serde_json::from_value(json!({ "memoryPolicy": p })).unwrap();
            crate::init::mempolicy::from_spec(Some(&linux))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let flags = strings(&mp["flags"]);
        assert_eq!(flags.len(), catalogue::MEMORY_POLICY_FLAGS.len());
        for f in &flags {
            let linux = serde_json::from_value(
                json!({"memoryPolicy": {"mode": "MPOL_BIND", "nodes": "0", "flags": [f]}}),
            )
            .unwrap();
            crate::init::mempolicy::from_spec(Some(&linux)).unwrap_or_else(|e| panic!("{f}: {e}"));
        }

        let on = |x: &Value| x.as_bool() == Some(true);
        if on(&v["linux"]["netDevices"]["enabled"]) {
            assert!(handled("linux.netDevices{}.name"));
        }
        if on(&v["linux"]["mountExtensions"]["idmap"]["enabled"]) {
            assert!(handled("mounts[].uidMappings") && handled("mounts[].gidMappings"));
        }
        if on(&v["linux"]["intelRdt"]["enabled"]) {
            assert!(handled("linux.intelRdt.closID"));
        }
        assert!(handled("mounts[].options"));
        assert!(handled("linux.seccomp.syscalls[].action"));
        assert!(handled("process.capabilities.bounding"));
    }
}
