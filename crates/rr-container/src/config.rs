//! Loading a bundle's config.json and checking it before anything is created.

use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{Linux, LinuxNamespaceType, Process, Spec};

use crate::error::{Error, Result};

/// A loaded bundle: its absolute path, the parsed spec and the rootfs path.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Absolute bundle directory.
    pub path: PathBuf,
    /// The parsed and validated config.
    pub spec: Spec,
    /// Absolute rootfs directory.
    pub rootfs: PathBuf,
}

/// Reads `<bundle>/config.json` and validates it.
pub fn load_bundle(bundle: &Path) -> Result<Bundle> {
    let path = std::fs::canonicalize(bundle).map_err(|_| Error::BundleMissing(bundle.into()))?;
    if !path.is_dir() {
        return Err(Error::BundleMissing(bundle.into()));
    }
    let config = path.join("config.json");
    let bytes = match std::fs::read(&config) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::ConfigMissing(config))
        }
        Err(e) => return Err(Error::io(config, e)),
    };
    let spec = parse_spec(&config, &bytes)?;
    let rootfs = validate(&config, &path, &spec)?;
    Ok(Bundle { path, spec, rootfs })
}

/// Parses config.json bytes; errors carry the line and column. A spec
/// field the parser would drop without a word is refused by name.
pub fn parse_spec(path: &Path, bytes: &[u8]) -> Result<Spec> {
    let parse_err = |e: serde_json::Error| Error::ConfigParse {
        path: path.into(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    };
    let first = serde_json::from_slice::<Spec>(bytes);
    let Ok(mut raw) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return first.map_err(parse_err);
    };
    // Keys in another case are runc's reading of the field (Go matches
    // keys without case), and spec names oci-spec spells otherwise are
    // rewritten; only then is the value parsed (errors from the bytes keep
    // their line and column).
    let renamed = !crate::spec_catalogue::normalise_keys(&mut raw, "").is_empty();
    check_unmodelled(path, &raw)?;
    let aliased = raw
        .get_mut("process")
        .is_some_and(crate::spec_catalogue::alias_process_values);
    if renamed || (aliased && first.is_err()) {
        serde_json::from_value::<Spec>(raw).map_err(parse_err)
    } else {
        first.map_err(parse_err)
    }
}

/// Refuses the spec fields that oci-spec does not read (see
/// `spec_catalogue::UNMODELLED`); keys that are no spec field are left
/// alone, as runc leaves them.
pub fn check_unmodelled(path: &Path, raw: &serde_json::Value) -> Result<()> {
    match crate::spec_catalogue::unmodelled_fields(raw).first() {
        Some((field, message)) => Err(invalid(path, field, *message)),
        None => Ok(()),
    }
}

fn invalid(path: &Path, field: &str, message: impl Into<String>) -> Error {
    Error::ConfigInvalid {
        path: path.into(),
        field: field.into(),
        message: message.into(),
    }
}

/// Checks everything that can be checked without touching the container,
/// and returns the absolute rootfs path.
pub fn validate(config: &Path, bundle: &Path, spec: &Spec) -> Result<PathBuf> {
    check_version(config, spec)?;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid(config, "process", "missing"))?;
    check_process(config, process)?;
    let rootfs = check_root(config, bundle, spec)?;
    check_mount_destinations(config, spec)?;
    if let Some(linux) = spec.linux() {
        check_linux(config, linux)?;
    }
    Ok(rootfs)
}

/// Only the 1.x spec is understood; a later major version may change the
/// meaning of fields we would otherwise read as if they were 1.x.
fn check_version(config: &Path, spec: &Spec) -> Result<()> {
    let major = spec.version().split('.').next().unwrap_or("");
    if major != "1" {
        return Err(invalid(
            config,
            "ociVersion",
            format!(
                "version {:?} is not supported (rrc supports 1.x)",
                spec.version()
            ),
        ));
    }
    Ok(())
}

/// Catches at create what execve and chdir would only refuse after `start`.
fn check_process(config: &Path, process: &Process) -> Result<()> {
    match process.args() {
        Some(args) if !args.is_empty() && !args[0].is_empty() => {}
        Some(_) => return Err(invalid(config, "process.args", "must not be empty")),
        None => return Err(invalid(config, "process.args", "missing")),
    }
    check_arg_lengths(config, process)?;
    if !process.cwd().is_absolute() {
        return Err(invalid(
            config,
            "process.cwd",
            format!("{} is not an absolute path", process.cwd().display()),
        ));
    }
    Ok(())
}

/// execve refuses any one string longer than MAX_ARG_STRLEN (32 pages,
/// counting the NUL) with a bare E2BIG, and only after `start`: say so
/// at create, naming the entry.
fn check_arg_lengths(config: &Path, process: &Process) -> Result<()> {
    const MAX_ARG_STRLEN: usize = 32 * 4096;
    for (field, list) in [
        ("process.args", process.args()),
        ("process.env", process.env()),
    ] {
        for (i, a) in list.iter().flatten().enumerate() {
            if a.len() >= MAX_ARG_STRLEN {
                return Err(invalid(
                    config,
                    &format!("{field}[{i}]"),
                    format!(
                        "{} bytes; execve takes at most {} bytes per string",
                        a.len(),
                        MAX_ARG_STRLEN - 1
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Resolves root.path against the bundle and refuses what cannot safely be
/// a rootfs: a symlink (it could be swapped later), a non-directory, or /.
fn check_root(config: &Path, bundle: &Path, spec: &Spec) -> Result<PathBuf> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid(config, "root.path", "missing"))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    let meta = std::fs::symlink_metadata(&rootfs)
        .map_err(|e| invalid(config, "root.path", format!("{}: {}", rootfs.display(), e)))?;
    if meta.file_type().is_symlink() {
        return Err(invalid(
            config,
            "root.path",
            format!("{} is a symlink; give the real directory", rootfs.display()),
        ));
    }
    if !meta.is_dir() {
        return Err(invalid(
            config,
            "root.path",
            format!("{} is not a directory", rootfs.display()),
        ));
    }
    if rootfs == Path::new("/") {
        return Err(invalid(
            config,
            "root.path",
            "the host's / cannot be a container rootfs",
        ));
    }
    Ok(rootfs)
}

/// A ".." in a destination could climb out of the rootfs.
fn check_mount_destinations(config: &Path, spec: &Spec) -> Result<()> {
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let dest = m.destination();
        if dest.components().any(|c| c == Component::ParentDir) {
            return Err(invalid(
                config,
                &format!("mounts[{i}].destination"),
                format!("{} contains \"..\"", dest.display()),
            ));
        }
    }
    Ok(())
}

/// The `linux` section: namespaces, device paths and id mappings.
fn check_linux(config: &Path, linux: &Linux) -> Result<()> {
    let seen = check_namespaces(config, linux)?;
    check_device_paths(config, linux)?;
    let has_userns = seen.contains(&LinuxNamespaceType::User);
    if !has_userns
        && (linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
            || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty()))
    {
        return Err(invalid(
            config,
            "linux.uidMappings",
            "id mappings given without a user namespace",
        ));
    }
    for (field, maps) in [
        ("linux.uidMappings", linux.uid_mappings()),
        ("linux.gidMappings", linux.gid_mappings()),
    ] {
        check_id_maps(config, field, maps.as_deref().unwrap_or(&[]))?;
    }
    Ok(())
}

/// Each namespace type once, and a path to join must be absolute (a
/// relative one would resolve against whatever cwd the runtime has).
/// Returns the types listed, for the id-mapping check.
fn check_namespaces(config: &Path, linux: &Linux) -> Result<Vec<LinuxNamespaceType>> {
    let mut seen: Vec<LinuxNamespaceType> = Vec::new();
    for ns in linux.namespaces().iter().flatten() {
        if seen.contains(&ns.typ()) {
            return Err(invalid(
                config,
                "linux.namespaces",
                format!("namespace {:?} is listed twice", ns.typ()),
            ));
        }
        seen.push(ns.typ());
        // The catalogue's list is what `rrc features` says rrc makes.
        let name = serde_json::to_value(ns.typ())
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        if !crate::spec_catalogue::NAMESPACES.contains(&name.as_str()) {
            return Err(invalid(
                config,
                "linux.namespaces",
                format!("namespace type {name:?} is not supported"),
            ));
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return Err(invalid(
                    config,
                    "linux.namespaces",
                    format!(
                        "path {} of {:?} namespace is not absolute",
                        p.display(),
                        ns.typ()
                    ),
                ));
            }
        }
    }
    Ok(seen)
}

/// Device nodes are created only under /dev, never elsewhere in the rootfs.
fn check_device_paths(config: &Path, linux: &Linux) -> Result<()> {
    for (i, d) in linux.devices().iter().flatten().enumerate() {
        let p = d.path();
        if !p.starts_with("/dev/") || p.components().any(|c| c == Component::ParentDir) {
            return Err(invalid(
                config,
                &format!("linux.devices[{i}].path"),
                format!("{} is not under /dev", p.display()),
            ));
        }
    }
    Ok(())
}

fn check_id_maps(
    config: &Path,
    field: &str,
    maps: &[oci_spec::runtime::LinuxIdMapping],
) -> Result<()> {
    for (i, a) in maps.iter().enumerate() {
        if a.size() == 0 {
            return Err(invalid(
                config,
                &format!("{field}[{i}].size"),
                "must not be 0",
            ));
        }
        for b in &maps[..i] {
            let overlap = |x: u32, xs: u32, y: u32, ys: u32| {
                (x as u64) < y as u64 + ys as u64 && (y as u64) < x as u64 + xs as u64
            };
            if overlap(a.container_id(), a.size(), b.container_id(), b.size())
                || overlap(a.host_id(), a.size(), b.host_id(), b.size())
            {
                return Err(invalid(
                    config,
                    &format!("{field}[{i}]"),
                    "overlaps an earlier mapping",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        parse_spec(Path::new("config.json"), json.as_bytes()).expect("valid json")
    }

    #[test]
    fn parse_error_names_line_and_column() {
        let err = parse_spec(Path::new("/b/config.json"), b"{\n  \"ociVersion\": 1,\n}")
            .expect_err("must fail");
        let msg = err.to_string();
        assert!(msg.starts_with("/b/config.json: line 2, column"), "{msg}");
    }

    #[test]
    fn unknown_namespace_is_rejected_by_parser() {
        let err = parse_spec(
            Path::new("c.json"),
            br#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"bogus"}]}}"#,
        )
        .expect_err("must fail");
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    #[test]
    fn validation_rules() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("rootfs")).expect("mkdir");
        let cfg = dir.path().join("config.json");
        let ok = r#"{"ociVersion":"1.0.2","process":{"user":{"uid":0,"gid":0},"args":["sh"],"cwd":"/"},"root":{"path":"rootfs"}}"#;
        assert_eq!(
            validate(&cfg, dir.path(), &spec(ok)).expect("valid"),
            dir.path().join("rootfs")
        );
        let cases = [
            (ok.replace("1.0.2", "2.0.0"), "ociVersion"),
            (ok.replace(r#"["sh"]"#, "[]"), "process.args"),
            (ok.replace(r#","args":["sh"]"#, ""), "process.args"),
            (ok.replace("rootfs", "nope"), "root.path"),
            (ok.replace(r#""cwd":"/""#, r#""cwd":"rel""#), "process.cwd"),
            (
                ok.replace(
                    r#""root""#,
                    r#""mounts":[{"destination":"/a/../../etc","type":"tmpfs"}],"root""#,
                ),
                "mounts[0].destination",
            ),
            (
                ok.replace(
                    r#""root""#,
                    r#""linux":{"namespaces":[{"type":"pid"},{"type":"pid"}]},"root""#,
                ),
                "linux.namespaces",
            ),
            (
                ok.replace(
                    r#""root""#,
                    r#""linux":{"devices":[{"path":"/etc/x","type":"c","major":1,"minor":3}]},"root""#,
                ),
                "linux.devices[0].path",
            ),
            (
                ok.replace(
                    r#""root""#,
                    r#""linux":{"namespaces":[{"type":"user"}],"uidMappings":[{"containerID":0,"hostID":1000,"size":10},{"containerID":5,"hostID":2000,"size":10}]},"root""#,
                ),
                "linux.uidMappings[1]",
            ),
        ];
        for (json, field) in cases {
            let err = validate(&cfg, dir.path(), &spec(&json)).expect_err(field);
            assert!(
                err.to_string().contains(&format!(": {field}: ")),
                "{field}: {err}"
            );
        }
    }
}
