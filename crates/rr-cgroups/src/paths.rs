//! Where a container's cgroup lives: parsing `/proc/self/cgroup` and
//! resolving the spec's `cgroupsPath`.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::error::{invalid, Error, Result};

/// The cgroups of the calling process, as listed in `/proc/self/cgroup`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnCgroups {
    /// v1: each controller name (`cpu`, `name=systemd`, ...) -> path in its hierarchy.
    pub v1: BTreeMap<String, String>,
    /// v2: the path of the `0::` entry, if any.
    pub v2: Option<String>,
}

impl OwnCgroups {
    /// Parse the text of a `/proc/<pid>/cgroup` file.
    pub fn parse(text: &str) -> Result<OwnCgroups> {
        let mut own = OwnCgroups::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(Error::Parse {
                    path: "/proc/self/cgroup".into(),
                    reason: format!("line {line:?} is not id:controllers:path"),
                });
            };
            if id == "0" && ctrls.is_empty() {
                own.v2 = Some(path.to_string());
                continue;
            }
            for c in ctrls.split(',').filter(|c| !c.is_empty()) {
                own.v1.insert(c.to_string(), path.to_string());
            }
        }
        Ok(own)
    }

    /// Read the calling process's cgroups.
    pub fn current() -> Result<OwnCgroups> {
        let p = "/proc/self/cgroup";
        let text = std::fs::read_to_string(p).map_err(crate::error::io_err(p))?;
        Self::parse(&text)
    }
}

/// Reject paths that would escape the hierarchy, and normalise the rest to
/// a list of plain components.
fn clean_components(field: &str, p: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for c in Path::new(p).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n.to_string_lossy().into_owned()),
            Component::ParentDir => {
                return Err(invalid(field, p, "must not contain '..'"));
            }
            Component::Prefix(_) => return Err(invalid(field, p, "unexpected path prefix")),
        }
    }
    Ok(out)
}

/// The path inside a hierarchy (starting with `/`) for a container.
///
/// `cgroups_path` absolute: used as is. Relative (or `None`, meaning the
/// container id): placed under `base`, the runtime's own cgroup in that
/// hierarchy.
pub fn inner_path(cgroups_path: Option<&str>, container_id: &str, base: &str) -> Result<String> {
    let field = "linux.cgroupsPath";
    let (rel, absolute) = match cgroups_path {
        Some(p) if !p.is_empty() => (p, p.starts_with('/')),
        _ => (container_id, false),
    };
    if rel.contains(':') && !absolute {
        return Err(invalid(
            field,
            rel,
            "systemd-style slice:prefix:name paths need the systemd cgroup driver",
        ));
    }
    let mut comps = if absolute {
        Vec::new()
    } else {
        clean_components(field, base)?
    };
    let own = clean_components(field, rel)?;
    if own.is_empty() {
        return Err(invalid(field, rel, "names no cgroup below the root"));
    }
    comps.extend(own);
    Ok(format!("/{}", comps.join("/")))
}

/// The parent of a v2 path (`/a/b` -> `/a`, `/` -> `/`): relative v2 paths go
/// next to the runtime, not inside its (process-holding) leaf.
pub fn v2_relative_base(own: &str) -> String {
    match Path::new(own).parent() {
        Some(p) => p.to_string_lossy().into_owned(),
        None => "/".into(),
    }
}

/// `root` joined with an inner path that starts with `/`.
pub fn join_inner(root: &Path, inner: &str) -> PathBuf {
    root.join(inner.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n2:cpu,cpuacct:/x\n0::/user.slice/s.scope\n";

    #[test]
    fn parse_own() {
        let own = OwnCgroups::parse(SAMPLE).unwrap();
        assert_eq!(own.v1["memory"], "/process_api/abc");
        assert_eq!(own.v1["cpu"], "/x");
        assert_eq!(own.v1["cpuacct"], "/x");
        assert_eq!(own.v1["name=systemd"], "/");
        assert_eq!(own.v2.as_deref(), Some("/user.slice/s.scope"));
        assert!(OwnCgroups::parse("garbage").is_err());
    }

    #[test]
    fn resolve_paths() {
        assert_eq!(inner_path(Some("/a/b"), "id", "/base").unwrap(), "/a/b");
        assert_eq!(inner_path(Some("a/b"), "id", "/base").unwrap(), "/base/a/b");
        assert_eq!(inner_path(None, "ctr1", "/base").unwrap(), "/base/ctr1");
        assert_eq!(inner_path(Some(""), "ctr1", "/").unwrap(), "/ctr1");
        assert_eq!(inner_path(Some("/a//./b/"), "id", "/").unwrap(), "/a/b");
        assert!(inner_path(Some("/a/../b"), "id", "/").is_err());
        assert!(inner_path(Some("/"), "id", "/").is_err());
        assert!(inner_path(Some("system.slice:rr:x"), "id", "/").is_err());
        assert_eq!(v2_relative_base("/user.slice/s.scope"), "/user.slice");
        assert_eq!(v2_relative_base("/"), "/");
        assert_eq!(
            join_inner(Path::new("/sys/fs/cgroup/cpu"), "/a/b"),
            PathBuf::from("/sys/fs/cgroup/cpu/a/b")
        );
    }
}
