//! Where a container's systemd unit lives: the `slice:prefix:name` form of
//! `linux.cgroupsPath`, unit names and slice expansion, with the words runc
//! uses for malformed paths (tools match on them).

use crate::error::{Error, Result};

/// The slice a unit goes into when the path names none (system manager).
pub const SYSTEM_SLICE: &str = "system.slice";
/// The default slice of a user manager (rootless).
pub const USER_SLICE: &str = "user.slice";
/// The unit prefix used when the spec has no cgroupsPath.
pub const DEFAULT_PREFIX: &str = "runc";
const SLICE_SUFFIX: &str = ".slice";

/// A container's unit as `linux.cgroupsPath` places it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The parent slice unit (`system.slice`, `-.slice`, `a-b.slice`...).
    pub slice: String,
    /// The unit to create: `<prefix>-<name>.scope`, or `<name>` for a slice.
    pub unit: String,
}

fn malformed(path: &str) -> Error {
    Error::Systemd(format!(
        "expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got {} instead",
        go_quote(path)
    ))
}

/// A string quoted as Go's `%q` does for the printable ASCII that paths
/// hold (escapes for quotes, backslashes and control bytes).
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn invalid_slice(slice: &str) -> Error {
    Error::Systemd(format!("invalid slice name: {slice}"))
}

impl Placement {
    /// Parse `cgroups_path` (`None` or empty: unit `runc-<id>.scope`).
    /// `rootless` picks the default slice of a user manager.
    pub fn parse(cgroups_path: Option<&str>, container_id: &str, rootless: bool) -> Result<Self> {
        let default_slice = if rootless { USER_SLICE } else { SYSTEM_SLICE };
        let (slice, prefix, name) = match cgroups_path {
            None | Some("") => ("", DEFAULT_PREFIX, container_id),
            Some(p) => {
                let parts: Vec<&str> = p.split(':').collect();
                let [slice, prefix, name] = parts[..] else {
                    return Err(malformed(p));
                };
                (slice, prefix, name)
            }
        };
        let slice = if slice.is_empty() {
            default_slice
        } else {
            slice
        };
        // Checked here so that a bad slice fails before any D-Bus call.
        expand_slice(slice)?;
        if name.is_empty() || name.contains('/') {
            return Err(Error::Systemd(format!("invalid unit name: {name:?}")));
        }
        Ok(Placement {
            slice: slice.to_string(),
            unit: unit_name(prefix, name),
        })
    }

    /// Whether the unit is a slice rather than a scope.
    pub fn is_slice(&self) -> bool {
        self.unit.ends_with(SLICE_SUFFIX)
    }

    /// The unit's cgroup below the manager's root cgroup (starting `/`).
    /// A scope sits in its slice; a slice's place follows from its own name.
    pub fn cgroup(&self) -> Result<String> {
        if self.is_slice() {
            return expand_slice(&self.unit);
        }
        let parent = expand_slice(&self.slice)?;
        Ok(format!("{}/{}", parent.trim_end_matches('/'), self.unit))
    }
}

/// `<prefix>-<name>.scope`, or `name` itself when it names a slice.
pub fn unit_name(prefix: &str, name: &str) -> String {
    if name.ends_with(SLICE_SUFFIX) {
        return name.to_string();
    }
    format!("{prefix}-{name}.scope")
}

/// The cgroup of a slice: each `-` opens a nested slice, so
/// `a-b-c.slice` is `/a.slice/a-b.slice/a-b-c.slice`; `-.slice` is `/`.
pub fn expand_slice(slice: &str) -> Result<String> {
    let Some(stem) = slice.strip_suffix(SLICE_SUFFIX) else {
        return Err(invalid_slice(slice));
    };
    if slice.contains('/') {
        return Err(invalid_slice(slice));
    }
    if stem == "-" {
        return Ok("/".into());
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if part.is_empty() {
            return Err(invalid_slice(slice));
        }
        path.push('/');
        path.push_str(&prefix);
        path.push_str(part);
        path.push_str(SLICE_SUFFIX);
        prefix.push_str(part);
        prefix.push('-');
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(path: &str) -> Result<Placement> {
        Placement::parse(Some(path), "id", false)
    }

    #[test]
    fn parses_slice_prefix_name() {
        let pl = p("system.slice:rr:abc").unwrap();
        assert_eq!(pl.slice, "system.slice");
        assert_eq!(pl.unit, "rr-abc.scope");
        assert!(!pl.is_slice());
        assert_eq!(pl.cgroup().unwrap(), "/system.slice/rr-abc.scope");
    }

    #[test]
    fn default_slices() {
        assert_eq!(p(":rr:x").unwrap().slice, "system.slice");
        let user = Placement::parse(Some(":rr:x"), "id", true).unwrap();
        assert_eq!(user.slice, "user.slice");
        assert_eq!(user.cgroup().unwrap(), "/user.slice/rr-x.scope");
        let none = Placement::parse(None, "ctr", false).unwrap();
        assert_eq!(none.unit, "runc-ctr.scope");
        assert_eq!(none.cgroup().unwrap(), "/system.slice/runc-ctr.scope");
        assert_eq!(Placement::parse(Some(""), "ctr", false).unwrap(), none);
    }

    #[test]
    fn root_and_nested_slices() {
        assert_eq!(p("-.slice:rr:x").unwrap().cgroup().unwrap(), "/rr-x.scope");
        assert_eq!(
            p("a-b-c.slice:p:n").unwrap().cgroup().unwrap(),
            "/a.slice/a-b.slice/a-b-c.slice/p-n.scope"
        );
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
        assert_eq!(
            expand_slice("test-a-b.slice").unwrap(),
            "/test.slice/test-a.slice/test-a-b.slice"
        );
    }

    #[test]
    fn name_ending_in_slice_makes_a_slice() {
        let pl = p("system.slice:rr:my-sub.slice").unwrap();
        assert_eq!(pl.unit, "my-sub.slice");
        assert!(pl.is_slice());
        assert_eq!(pl.cgroup().unwrap(), "/my.slice/my-sub.slice");
    }

    #[test]
    fn runc_messages() {
        for bad in ["a:b", "a:b:c:d", "/sys", "x"] {
            assert_eq!(
                p(bad).unwrap_err().to_string(),
                format!("expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got \"{bad}\" instead")
            );
        }
        for bad in [
            "foo",
            "a--b.slice",
            "-a.slice",
            "a-.slice",
            ".slice",
            "a/b.slice",
        ] {
            assert_eq!(
                p(&format!("{bad}:rr:x")).unwrap_err().to_string(),
                format!("invalid slice name: {bad}")
            );
        }
        assert!(p("system.slice:rr:").is_err());
        assert!(p("system.slice:rr:a/b").is_err());
        assert_eq!(go_quote("a\"b\\\n"), "\"a\\\"b\\\\\\n\"");
    }
}
