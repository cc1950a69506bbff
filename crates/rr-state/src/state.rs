//! The `state.json` document, runc-compatible, and its pure encoding and decoding.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, Result};

/// The persisted state of one container. Field names are runc's, so runc's files load and
/// tools that read runc's state directory can read rr's.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct State {
    /// The container id.
    pub id: String,
    /// Host pid of the container's init process (0 before it exists).
    #[serde(default)]
    pub init_process_pid: i32,
    /// Start time of the init process (field 22 of `/proc/<pid>/stat`, clock ticks since
    /// boot); with the pid it identifies the process across pid reuse.
    #[serde(default)]
    pub init_process_start: u64,
    /// Creation time, RFC 3339 in UTC.
    #[serde(default, deserialize_with = "null_as_default")]
    pub created: String,
    /// The stored configuration.
    #[serde(default, deserialize_with = "null_as_default")]
    pub config: StoredConfig,
    /// Whether the container was created by an unprivileged user.
    #[serde(default, deserialize_with = "null_as_default")]
    pub rootless: bool,
    /// Cgroup paths by controller; on cgroup v2 (and for the unified part of a hybrid
    /// setup) the key is `""`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub cgroup_paths: BTreeMap<String, String>,
    /// Namespace paths by runc's kind name (`NEWNET`, `NEWPID`, ...).
    #[serde(default, deserialize_with = "null_as_default")]
    pub namespace_paths: BTreeMap<String, String>,
    /// What the init process's stdio descriptors pointed at.
    #[serde(default, deserialize_with = "null_as_default")]
    pub external_descriptors: Vec<String>,
    /// The resctrl group of the container, empty when none.
    #[serde(default, deserialize_with = "null_as_default")]
    pub intel_rdt_path: String,
    /// rr-specific (runc has no such key): the resctrl groups of the container
    /// and which of them rr made, so that `delete` removes those and nothing
    /// else. Absent when the container has no `linux.intelRdt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rr_intel_rdt: Option<IntelRdtRecord>,
}

/// What `create` did in resctrl for one container (see [`State::rr_intel_rdt`]).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct IntelRdtRecord {
    /// The resctrl mount the groups live in.
    pub root: String,
    /// Whether that mount uses `mba_MBps` (MB values in MBps).
    #[serde(default)]
    pub mba_mbps: bool,
    /// The control group's name: the closID or the container id; empty for
    /// the root group (a host with monitoring but no allocation).
    #[serde(default)]
    pub group: String,
    /// True when the group was named by an explicit closID (others may share it).
    #[serde(default)]
    pub clos_id: bool,
    /// True when rr created the control group (so `delete` may remove it).
    #[serde(default)]
    pub group_created: bool,
    /// The monitoring group's name under `<group>/mon_groups`, empty when none.
    #[serde(default)]
    pub mon_group: String,
    /// True when rr created the monitoring group.
    #[serde(default)]
    pub mon_group_created: bool,
}

/// The `config` part of the state. runc stores its whole internal configuration here; rr
/// keeps the keys it needs as fields and carries every other key through unchanged.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct StoredConfig {
    /// Absolute path of the root filesystem.
    #[serde(default, deserialize_with = "null_as_default")]
    pub rootfs: String,
    /// `key=value` labels; includes `bundle=<path>` and, as runc writes them, the
    /// annotations.
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: Vec<String>,
    /// The container's OCI runtime config as loaded (rr-specific; `null` in runc's files).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub spec: serde_json::Value,
    /// Every other key, kept so that runc's files round-trip.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Go writes a nil slice or map as `null`; treat it as empty.
fn null_as_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

const BUNDLE_LABEL: &str = "bundle=";

impl State {
    /// The bundle directory, from the `bundle=<path>` label.
    pub fn bundle(&self) -> Option<&str> {
        self.config
            .labels
            .iter()
            .find_map(|l| l.strip_prefix(BUNDLE_LABEL))
    }

    /// The container's annotations: from the stored OCI spec when rr wrote the file, or
    /// else from the `key=value` labels other than `bundle`, which is where runc keeps them.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        if let Some(obj) = self
            .config
            .spec
            .get("annotations")
            .and_then(|a| a.as_object())
        {
            return obj
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect();
        }
        if !self.config.spec.is_null() {
            // An rr-written spec without annotations has none; its labels are not annotations.
            return BTreeMap::new();
        }
        self.config
            .labels
            .iter()
            .filter_map(|l| l.split_once('='))
            .filter(|(k, _)| *k != "bundle")
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Decodes a state document; `path` is only used to name the file in errors.
    pub fn from_json_slice(bytes: &[u8], path: &Path) -> Result<State> {
        serde_json::from_slice(bytes).map_err(|e| corrupt(path, &e))
    }

    /// Encodes the state as compact JSON, as runc writes it.
    pub fn to_json_vec(&self, path: &Path) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|source| Error::Encode {
            path: path.to_path_buf(),
            source,
        })
    }
}

fn corrupt(path: &Path, e: &serde_json::Error) -> Error {
    let full = e.to_string();
    // serde_json appends the position to its message; it is reported in separate fields.
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
    Error::Corrupt {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_collections_load_as_empty() {
        let text = br#"{"id":"x","init_process_pid":1,"init_process_start":2,"created":"c",
            "config":{"rootfs":"/r","labels":null,"mounts":null},"rootless":false,
            "cgroup_paths":null,"namespace_paths":null,"external_descriptors":null,
            "intel_rdt_path":""}"#;
        let s = State::from_json_slice(text, Path::new("/s.json")).unwrap();
        assert!(s.config.labels.is_empty());
        assert!(s.external_descriptors.is_empty());
        assert_eq!(s.config.extra.get("mounts"), Some(&serde_json::Value::Null));
    }

    #[test]
    fn corrupt_names_file_and_position() {
        let err =
            State::from_json_slice(b"{\n  \"id\": 5\n}", Path::new("/x/state.json")).unwrap_err();
        match &err {
            Error::Corrupt {
                line,
                column,
                message,
                ..
            } => {
                assert_eq!(*line, 2);
                assert!(*column > 0);
                assert!(!message.contains("at line"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
        let text = err.to_string();
        assert!(
            text.starts_with("/x/state.json: invalid state at line 2 column"),
            "{text}"
        );
    }

    #[test]
    fn bundle_and_annotations() {
        let mut s = State::default();
        assert_eq!(s.bundle(), None);
        s.config.labels = vec!["a=1".into(), "bundle=/b".into(), "c=x=y".into()];
        assert_eq!(s.bundle(), Some("/b"));
        let ann = s.annotations();
        assert_eq!(ann.len(), 2);
        assert_eq!(ann["a"], "1");
        assert_eq!(ann["c"], "x=y");
        s.config.spec = serde_json::json!({"annotations": {"k": "v", "n": 3}});
        let ann = s.annotations();
        assert_eq!(ann.len(), 1);
        assert_eq!(ann["k"], "v");
        s.config.spec = serde_json::json!({"ociVersion": "1.0.2"});
        assert!(s.annotations().is_empty());
    }
}
