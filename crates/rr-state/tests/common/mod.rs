//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use rr_state::{State, StoredConfig};

/// A state whose config carries `pad` bytes of filler, tagged with `tag`.
pub fn sample_state(id: &str, tag: &str, pad: usize) -> State {
    let mut cgroups = BTreeMap::new();
    cgroups.insert(String::new(), format!("/sys/fs/cgroup/{id}"));
    let mut ns = BTreeMap::new();
    ns.insert("NEWNET".to_string(), "/proc/42/ns/net".to_string());
    let mut extra = serde_json::Map::new();
    extra.insert("hostname".into(), serde_json::json!(tag));
    extra.insert(
        "padding".into(),
        serde_json::json!(tag.repeat(pad / tag.len().max(1))),
    );
    State {
        id: id.to_string(),
        init_process_pid: 42,
        init_process_start: 12345,
        created: "2026-11-29T01:53:20.123456789Z".to_string(),
        config: StoredConfig {
            rootfs: format!("/bundles/{id}/rootfs"),
            labels: vec![format!("bundle=/bundles/{id}"), format!("tag={tag}")],
            spec: serde_json::json!({
                "ociVersion": "1.0.2",
                "annotations": {"org.example.tag": tag}
            }),
            extra,
        },
        rootless: false,
        cgroup_paths: cgroups,
        namespace_paths: ns,
        external_descriptors: vec!["/dev/null".into(), "pipe:[1]".into(), "pipe:[2]".into()],
        intel_rdt_path: String::new(),
        rr_intel_rdt: None,
    }
}

/// Permission bits of a path (not following symlinks).
pub fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}
