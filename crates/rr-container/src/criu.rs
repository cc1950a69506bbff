//! The link between containers and rr-criu, shared by `checkpoint` and
//! `restore`: the CRIU probe and its errors, the cgroup and empty-namespace
//! flags, and the mounts CRIU must treat as external.

use std::os::fd::{BorrowedFd, RawFd};
use std::path::Path;

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use rr_criu::{CgroupMode, Criu, Version};

use crate::error::{Error, Result};

/// The oldest CRIU with the VERSION request, which everything here relies on.
const MIN_CRIU: Version = Version::new(3, 0, 0);

/// A mount CRIU cannot dump by itself because its source is outside the
/// container: named in the images, found again on the host at restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExternalMount {
    /// The mount point inside the container (the key on dump).
    pub(crate) destination: String,
    /// The name recorded in the images (the value on dump, the key on restore).
    pub(crate) name: String,
    /// The host path mounted there at restore.
    pub(crate) source: String,
}

/// Asks CRIU for its version and features; the error names the binary,
/// its version when known, and what failed.
pub(crate) fn probe(criu: &Criu, what: &str) -> Result<Version> {
    let version = criu
        .require_version(&MIN_CRIU, what)
        .map_err(|e| criu_error(criu, what, e))?
        .clone();
    criu.probe().map_err(|e| criu_error(criu, what, e))?;
    Ok(version)
}

pub(crate) fn criu_error(criu: &Criu, what: &str, source: rr_criu::Error) -> Error {
    let context = match &source {
        // These already name the binary and its version.
        rr_criu::Error::FeatureCheck { .. } | rr_criu::Error::Spawn { .. } => what.to_string(),
        _ => match criu.version() {
            Ok(v) => format!("{what} (CRIU {v} at {})", criu.path().display()),
            Err(_) => format!("{what} (CRIU at {})", criu.path().display()),
        },
    };
    let said = source.to_string();
    let context = match source.log_file().and_then(last_errors) {
        Some(errors) if !said.contains(&errors) => {
            format!("{context}; the CRIU log says: {errors}")
        }
        _ => context,
    };
    Error::Criu {
        context,
        source: Box::new(source),
    }
}

/// The last error lines of a CRIU log (its first error is often a harmless
/// warning that CRIU also puts in `cr_errmsg`).
fn last_errors(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Error (") && !l.contains("RLIMIT_NOFILE"))
        .map(|l| l.split_once(") Error").map_or(l, |(_, r)| r).trim())
        .collect();
    let tail = &lines[lines.len().saturating_sub(3)..];
    (!tail.is_empty()).then(|| tail.join(" | "))
}

pub(crate) fn cgroup_mode(flag: Option<&str>) -> Result<CgroupMode> {
    match flag {
        None | Some("") => Ok(CgroupMode::Default),
        Some(m @ ("soft" | "full" | "strict" | "ignore")) => m
            .parse()
            .map_err(|e: rr_criu::Error| Error::Init(e.to_string())),
        Some(other) => Err(Error::Unsupported {
            field: "--manage-cgroups-mode".into(),
            message: format!("{other:?} is not one of soft, full, strict, ignore"),
        }),
    }
}

/// runc always restores the network namespace empty (it configures no
/// network), and `--empty-ns network` is the only other value it takes.
pub(crate) fn empty_ns_flags(names: &[String]) -> Result<u32> {
    let mut flags = libc::CLONE_NEWNET as u32;
    for n in names {
        match n.as_str() {
            "network" => flags |= libc::CLONE_NEWNET as u32,
            other => {
                return Err(Error::Unsupported {
                    field: "--empty-ns".into(),
                    message: format!("namespace {other:?} is not supported (only network)"),
                })
            }
        }
    }
    Ok(flags)
}

pub(crate) fn open_dir(p: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(p)
        .map_err(|e| Error::io(p, e))
}

/// The mounts of the container whose source lies outside it: bind mounts,
/// cgroup v1 hierarchies bound from the host (without a cgroup namespace),
/// masked files (bound from /dev/null) and device nodes. `pid` (at dump)
/// lets masked paths that do not exist in the container be skipped.
pub(crate) fn external_mounts(
    spec: &Spec,
    pid: Option<i32>,
    bundle: &Path,
) -> Result<Vec<ExternalMount>> {
    let mut out = Vec::new();
    let mut push = |dest: String, name: String, source: String| {
        if !out.iter().any(|m: &ExternalMount| m.destination == dest) {
            out.push(ExternalMount {
                destination: dest,
                name,
                source,
            });
        }
    };
    let cgroupns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|v| {
            v.iter()
                .any(|n| n.typ() == LinuxNamespaceType::Cgroup && n.path().is_none())
        });
    for m in spec.mounts().iter().flatten() {
        let dest = clean(m.destination());
        if crate::init::mount_opts::is_bind(m) {
            let src = m.source().clone().unwrap_or_default();
            let src = if src.is_absolute() {
                src
            } else {
                bundle.join(src)
            };
            push(dest.clone(), dest, src.display().to_string());
        } else if matches!(m.typ().as_deref(), Some("cgroup")) && !cgroupns {
            for h in crate::init::rootfs::host_cgroup_hierarchies() {
                let Ok(rel) = h.mount_point.strip_prefix("/sys/fs/cgroup") else {
                    continue;
                };
                if rel.as_os_str().is_empty() {
                    continue;
                }
                let d = format!("{}/{}", dest.trim_end_matches('/'), rel.display());
                push(d.clone(), d, h.mount_point.display().to_string());
            }
        }
    }
    let linux = spec.linux().as_ref();
    let masked: Vec<&String> = linux
        .and_then(|l| l.masked_paths().as_ref())
        .into_iter()
        .flatten()
        .collect();
    for p in masked {
        let is_file = match pid {
            Some(pid) => std::fs::metadata(format!("/proc/{pid}/root{p}"))
                .map(|m| !m.is_dir())
                .unwrap_or(false),
            None => true,
        };
        if is_file {
            push(p.clone(), "/dev/null".into(), "/dev/null".into());
        }
    }
    let devices = crate::init::rootfs::DEFAULT_DEVICES
        .iter()
        .map(|(p, _, _)| p.to_string())
        .chain(
            linux
                .and_then(|l| l.devices().as_ref())
                .into_iter()
                .flatten()
                .map(|d| d.path().display().to_string()),
        );
    for d in devices {
        push(d.clone(), d.clone(), d);
    }
    Ok(out)
}

/// A container path in the form CRIU compares mount points with: absolute,
/// no trailing slash, no `.` or empty components.
fn clean(p: &Path) -> String {
    let parts: Vec<String> = p
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    format!("/{}", parts.join("/"))
}

/// Keeps a borrowed stdio descriptor usable as CRIU's.
pub(crate) fn stdio_fd(n: RawFd) -> BorrowedFd<'static> {
    // SAFETY: 0, 1 and 2 stay open for the life of rrc (Rust's runtime
    // reopens missing ones as /dev/null at start-up).
    unsafe { BorrowedFd::borrow_raw(n) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_modes_and_empty_ns() {
        assert_eq!(cgroup_mode(None).unwrap(), CgroupMode::Default);
        assert_eq!(cgroup_mode(Some("strict")).unwrap(), CgroupMode::Strict);
        assert!(cgroup_mode(Some("props")).is_err());
        let net = libc::CLONE_NEWNET as u32;
        assert_eq!(empty_ns_flags(&[]).unwrap(), net);
        assert_eq!(empty_ns_flags(&["network".into()]).unwrap(), net);
        assert!(empty_ns_flags(&["pid".into()]).is_err());
    }

    #[test]
    fn external_mounts_of_a_spec() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "mounts": [
                {"destination": "/data/", "type": "bind", "source": "/srv/data", "options": ["rbind"]},
                {"destination": "/rel", "type": "none", "source": "sub", "options": ["bind"]},
                {"destination": "/proc", "type": "proc", "source": "proc"}
            ],
            "linux": {
                "namespaces": [{"type": "mount"}, {"type": "cgroup"}],
                "maskedPaths": ["/proc/kcore"],
                "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]
            }
        }))
        .unwrap();
        let m = external_mounts(&spec, None, Path::new("/b")).unwrap();
        let find = |d: &str| m.iter().find(|x| x.destination == d).cloned();
        let data = find("/data").expect("bind mount");
        assert_eq!(
            (data.name.as_str(), data.source.as_str()),
            ("/data", "/srv/data")
        );
        assert_eq!(find("/rel").unwrap().source, "/b/sub");
        assert_eq!(find("/proc/kcore").unwrap().name, "/dev/null");
        assert_eq!(find("/dev/fuse").unwrap().source, "/dev/fuse");
        assert_eq!(find("/dev/null").unwrap().source, "/dev/null");
        assert!(find("/proc").is_none());
    }
}
