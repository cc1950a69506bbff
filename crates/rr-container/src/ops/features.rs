//! `rrc features`: what this build of rr supports, as the runtime-spec's
//! features document (features.md), the JSON that clients such as
//! containerd read instead of guessing from a version number.
//!
//! Each list is derived from the code that acts on the spec rather than
//! written out by hand: the mount options are the parser's tables, the
//! seccomp names are those the seccomp translator accepts, and the LSM and
//! Intel RDT entries say what this host has, so the document cannot claim
//! what `create` would refuse.

use serde_json::{json, Value};

/// The lowest `ociVersion` rr accepts.
pub const OCI_VERSION_MIN: &str = "1.0.0";
/// The highest runtime-spec version whose configs rr parses (any 1.x is
/// accepted; 1.3.0 is the newest one tested).
pub const OCI_VERSION_MAX: &str = "1.3.0";

const HOOKS: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

const NAMESPACES: &[&str] = &[
    "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
];

const SECCOMP_ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];

const SECCOMP_OPERATORS: &[&str] = &[
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];

const SECCOMP_ARCHS: &[&str] = &[
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
];

const SECCOMP_FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

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

/// The features document of this rr on this host.
pub fn features() -> Value {
    let rule = |action: &str, op: &str| {
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{
            "names": ["getpid"], "action": action,
            "args": [{"index": 0, "value": 1, "op": op}]}]})
    };
    let actions = filter(SECCOMP_ACTIONS, |a| {
        let probe = rule(a, "SCMP_CMP_EQ");
        seccomp_accepts(if a == "SCMP_ACT_NOTIFY" {
            with_listener(probe)
        } else {
            probe
        })
    });
    let operators = filter(SECCOMP_OPERATORS, |o| {
        seccomp_accepts(rule("SCMP_ACT_ALLOW", o))
    });
    let archs = filter(SECCOMP_ARCHS, |a| {
        seccomp_accepts(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": [a]}))
    });
    let known_flags = filter(SECCOMP_FLAGS, |f| {
        serde_json::from_value::<oci_spec::runtime::LinuxSeccompFilterFlag>(json!(f)).is_ok()
    });
    let supported_flags = filter(SECCOMP_FLAGS, |f| {
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
        "hooks": HOOKS,
        "mountOptions": crate::init::mount_opts::known_options(),
        "linux": {
            "namespaces": NAMESPACES,
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
                "enabled": rr_intelrdt::Resctrl::discover().is_ok_and(|r| r.is_some()),
            },
            "mountExtensions": {"idmap": {"enabled": crate::init::idmapped::supported()}},
            "netDevices": {"enabled": true},
            "memoryPolicy": {
                "modes": ["MPOL_DEFAULT", "MPOL_PREFERRED", "MPOL_BIND", "MPOL_INTERLEAVE",
                          "MPOL_LOCAL", "MPOL_PREFERRED_MANY", "MPOL_WEIGHTED_INTERLEAVE"],
                "flags": ["MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES"],
            },
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
}
