//! The catalogue against the schema, the parser and the tests it names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::*;

/// A config that sets every field of the catalogue (runtime-spec 1.3).
const EVERY_FIELD: &str = include_str!("every_field.json");

/// Where Debian's golang-github-opencontainers-specs-dev puts the schema.
const SCHEMA_DIR: &str = "/usr/share/gocode/src/github.com/opencontainers/runtime-spec/schema";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn every_field() -> Value {
    serde_json::from_str(EVERY_FIELD).expect("every_field.json parses")
}

/// The runtime-spec JSON schema files, read on demand, with `$ref`s
/// resolved across them.
struct Schema {
    dir: PathBuf,
    files: BTreeMap<String, Value>,
}

impl Schema {
    fn file(&mut self, name: &str) -> Value {
        if let Some(v) = self.files.get(name) {
            return v.clone();
        }
        let text = std::fs::read_to_string(self.dir.join(name))
            .unwrap_or_else(|e| panic!("{}: {e}", self.dir.join(name).display()));
        let v: Value = serde_json::from_str(&text).expect("schema file parses");
        self.files.insert(name.into(), v.clone());
        v
    }

    /// Follows `$ref` until a node without one, returning it and the file
    /// its own references are relative to.
    fn resolve(&mut self, mut node: Value, mut file: String) -> (Value, String) {
        for _ in 0..32 {
            let Some(r) = node.get("$ref").and_then(Value::as_str).map(str::to_owned) else {
                break;
            };
            let (f, pointer) = r.split_once('#').unwrap_or((r.as_str(), ""));
            if !f.is_empty() {
                file = f.to_owned();
            }
            // runtime-spec 1.3's defs.json has `#definitions/...`, without
            // the pointer's leading slash.
            let pointer = match pointer {
                "" => String::new(),
                p if p.starts_with('/') => p.to_owned(),
                p => format!("/{p}"),
            };
            node = self
                .file(&file)
                .pointer(&pointer)
                .cloned()
                .unwrap_or_else(|| panic!("unresolved $ref {r} in {file}"));
        }
        (node, file)
    }

    fn walk(
        &mut self,
        node: Value,
        file: String,
        path: &str,
        depth: u32,
        out: &mut BTreeSet<String>,
    ) {
        let (node, file) = self.resolve(node, file);
        if depth > 40 {
            return;
        }
        for key in ["oneOf", "anyOf", "allOf"] {
            for s in node
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                self.walk(s.clone(), file.clone(), path, depth + 1, out);
            }
        }
        if let Some(props) = node.get("properties").and_then(Value::as_object) {
            for (k, v) in props {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                out.insert(p.clone());
                self.walk(v.clone(), file.clone(), &p, depth + 1, out);
            }
        }
        if let Some(items) = node.get("items") {
            self.walk(
                items.clone(),
                file.clone(),
                &format!("{path}[]"),
                depth + 1,
                out,
            );
        }
        let mut map_values: Vec<Value> = node
            .get("patternProperties")
            .and_then(Value::as_object)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        if let Some(ap) = node.get("additionalProperties").filter(|v| v.is_object()) {
            map_values.push(ap.clone());
        }
        for v in map_values {
            self.walk(v, file.clone(), &format!("{path}{{}}"), depth + 1, out);
        }
    }
}

/// Every property path of config-schema.json, or why there is none.
fn schema_paths() -> Result<BTreeSet<String>, String> {
    let dir = std::env::var_os("RR_SPEC_SCHEMA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(SCHEMA_DIR));
    if !dir.join("config-schema.json").exists() {
        return Err(format!(
            "no runtime-spec schema at {} (apt-get install golang-github-opencontainers-specs-dev)",
            dir.display()
        ));
    }
    let mut schema = Schema {
        dir,
        files: BTreeMap::new(),
    };
    let root = schema.file("config-schema.json");
    let mut out = BTreeSet::new();
    schema.walk(root, "config-schema.json".into(), "", 0, &mut out);
    Ok(out)
}

#[test]
fn catalogue_covers_every_field_of_the_schema() {
    let paths = match schema_paths() {
        Ok(p) => p,
        Err(reason) => {
            eprintln!("SKIPPED: {reason}");
            return;
        }
    };
    // The walk itself must have found the sections, or the test proves nothing.
    for p in [
        "process.user.uid",
        "linux.resources.memory.swappiness",
        "linux.namespaces[].type",
    ] {
        assert!(paths.contains(p), "schema walk missed {p}");
    }
    let missing: Vec<&String> = paths.iter().filter(|p| entry_for(p).is_none()).collect();
    assert!(
        missing.is_empty(),
        "fields of the schema missing from the catalogue: {missing:?}"
    );
    println!("{} schema paths, all in the catalogue", paths.len());
}

#[test]
fn entries_are_unique_and_their_parents_listed() {
    let mut seen = BTreeSet::new();
    for e in fields() {
        assert!(seen.insert(e.path), "{} listed twice", e.path);
    }
    for e in fields() {
        let cut = e.path.rfind(['.', '[', '{']);
        if let Some(i) = cut {
            let parent = &e.path[..i];
            let parent = parent.trim_end_matches("[]").trim_end_matches("{}");
            assert!(
                lookup(parent).is_some(),
                "{}: parent {parent} not listed",
                e.path
            );
        }
    }
}

/// `file::function`: a black-box test in tests/tests/<file>.rs, or
/// `crates/...rs::function`, a crate-level one.
fn test_exists(name: &str) -> Result<(), String> {
    let (file, func) = name
        .rsplit_once("::")
        .ok_or(format!("{name}: not file::function"))?;
    let path = if file.contains('/') {
        workspace().join(file)
    } else {
        workspace().join("tests/tests").join(format!("{file}.rs"))
    };
    let src =
        std::fs::read_to_string(&path).map_err(|e| format!("{name}: {}: {e}", path.display()))?;
    // The function must be a test: `#[test]` on one of the lines above it.
    let needle = format!("fn {func}()");
    let at = src
        .find(&needle)
        .ok_or(format!("{name}: no fn {func}() in {}", path.display()))?;
    let before: Vec<&str> = src[..at].lines().rev().take(4).collect();
    if !before.iter().any(|l| l.trim_start().starts_with("#[test]")) {
        return Err(format!("{name}: fn {func} is not a #[test]"));
    }
    Ok(())
}

#[test]
fn named_tests_exist() {
    let mut bad = Vec::new();
    for e in fields() {
        let tests = match e.how {
            How::Applied(t) => t,
            How::IfHost { tests, .. } => tests,
            _ => continue,
        };
        assert!(!tests.is_empty(), "{}: applied without a test", e.path);
        for t in tests {
            if let Err(m) = test_exists(t) {
                bad.push(m);
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn every_field_fixture_sets_every_entry() {
    let present = json_paths(&every_field());
    for e in fields() {
        if matches!(e.how, How::Ignored(_)) && !present.contains(e.path) {
            panic!("every_field.json lacks the ignored section {}", e.path);
        }
        assert!(
            present.contains(e.path),
            "every_field.json lacks {}",
            e.path
        );
    }
    for p in &present {
        assert!(
            entry_for(p).is_some(),
            "every_field.json sets {p}, which is not in the catalogue"
        );
    }
}

/// What oci-spec keeps of every field: each catalogued path survives a
/// parse and re-serialisation, except those it does not model, which must
/// be listed in UNMODELLED (refused) or be in an ignored section.
#[test]
fn every_field_survives_the_parser_or_is_accounted_for() {
    let raw = every_field();
    let spec: oci_spec::runtime::Spec =
        serde_json::from_value(raw.clone()).expect("oci-spec parses every_field.json");
    let back = serde_json::to_value(&spec).expect("serialises");
    let kept = json_paths(&back);
    let dropped: Vec<String> = json_paths(&raw)
        .into_iter()
        .filter(|p| !kept.contains(p))
        .collect();
    for p in &dropped {
        let accounted = UNMODELLED.iter().any(|(u, _)| p == u)
            || matches!(entry_for(p).map(|e| e.how), Some(How::Ignored(_)));
        assert!(
            accounted,
            "oci-spec drops {p}: list it in UNMODELLED so that create refuses it"
        );
    }
    for (u, _) in UNMODELLED {
        assert!(
            dropped.iter().any(|p| p == u),
            "{u} is in UNMODELLED but oci-spec keeps it"
        );
        assert!(
            matches!(lookup(u).map(|e| e.how), Some(How::Refused(_))),
            "{u} is in UNMODELLED but its entry does not say it is refused"
        );
    }
    println!("dropped by oci-spec: {dropped:?}");
}

#[test]
fn json_paths_follow_the_catalogue_notation() {
    let v = json!({
        "annotations": {"a.b": "c"},
        "linux": {"netDevices": {"eth0": {"name": "x"}}, "namespaces": [{"type": "pid"}], "seccomp": null}
    });
    let p: Vec<String> = json_paths(&v).into_iter().collect();
    assert_eq!(
        p,
        [
            "annotations",
            "linux",
            "linux.namespaces",
            "linux.namespaces[].type",
            "linux.netDevices",
            "linux.netDevices{}.name"
        ]
    );
    assert_eq!(
        entry_for("windows.layerFolders").map(|e| e.path),
        Some("windows")
    );
    assert_eq!(entry_for("windowsx"), None);
}

/// `config` with only `path` (an object path) kept from its sections.
fn only(config: &Value, path: &str) -> Value {
    assert!(
        !path.contains(['[', '{']),
        "{path}: extend only() to arrays and maps"
    );
    let mut out = json!({});
    let mut src = config;
    let mut dst = &mut out;
    let keys: Vec<&str> = path.split('.').collect();
    for (i, k) in keys.iter().enumerate() {
        src = &src[*k];
        dst[*k] = if i + 1 == keys.len() {
            src.clone()
        } else {
            json!({})
        };
        dst = &mut dst[*k];
    }
    out
}

/// Each refused field, set alone on a valid config, is refused by the
/// config checks with its own name and the catalogue's words.
#[test]
fn refused_fields_are_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("rootfs")).expect("mkdir");
    let cfg = dir.path().join("config.json");
    let every = every_field();
    let mut checked = 0;
    for e in fields() {
        let How::Refused(text) = e.how else { continue };
        let mut config = only(&every, e.path);
        config["ociVersion"] = json!("1.3.0");
        config["process"] = json!({"user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/"});
        config["root"] = json!({"path": "rootfs"});
        let bytes = serde_json::to_vec(&config).expect("json");
        let result = crate::config::parse_spec(&cfg, &bytes).and_then(|spec| {
            crate::config::validate(&cfg, dir.path(), &spec)?;
            crate::init::confine::Confinement::prepare("catalogue", dir.path(), &spec)
        });
        let err = result.expect_err(e.path).to_string();
        let named =
            err.starts_with(&format!("{}: ", e.path)) || err.contains(&format!(": {}: ", e.path));
        assert!(named, "{}: {err}", e.path);
        assert!(
            err.contains(text),
            "{}: {err} does not say {text:?}",
            e.path
        );
        checked += 1;
    }
    assert!(checked >= UNMODELLED.len());
}

/// Keys that are no spec field are ignored, as runc (Go's encoding/json)
/// ignores them.
#[test]
fn unknown_keys_are_left_alone() {
    let raw =
        json!({"ociVersion": "1.3.0", "linux": {"intelRdt": {"enableCmt": true}}, "x-extra": 1});
    assert!(unmodelled_fields(&raw).is_empty());
    assert!(crate::config::check_unmodelled(Path::new("c.json"), &raw).is_ok());
}

/// Sets `path` of `config` to `value`: in the first item of each array on
/// the way, and as the only item of an array of strings at the end.
fn set_path(config: &mut Value, path: &str, value: &str) {
    let mut node = config;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let (key, item) = match part.strip_suffix("[]") {
            Some(k) => (k, true),
            None => (*part, false),
        };
        node = &mut node[key];
        let last = i + 1 == parts.len();
        if last {
            *node = if node.is_array() {
                json!([value])
            } else {
                json!(value)
            };
            return;
        }
        if item {
            node = &mut node[0];
        }
    }
}

/// Each value the runtime-spec 1.3 schema allows for an enumerated field
/// parses (the parser refusing a spec value would refuse a valid config).
#[test]
fn every_enumerated_value_of_the_spec_parses() {
    let mut refused = Vec::new();
    for (path, values) in SPEC_ENUMS {
        assert!(lookup(path).is_some(), "{path} not in the catalogue");
        for v in *values {
            let mut config = every_field();
            // Refused on their own account (see refused_fields_are_refused_by_name).
            if let Some(rdt) = config["linux"]["intelRdt"].as_object_mut() {
                rdt.retain(|k, _| k != "enableCMT" && k != "enableMBM");
            }
            set_path(&mut config, path, v);
            let bytes = serde_json::to_vec(&config).expect("json");
            if let Err(e) = crate::config::parse_spec(Path::new("config.json"), &bytes) {
                refused.push(format!("{path} = {v}: {e}"));
            }
        }
    }
    assert!(refused.is_empty(), "{refused:#?}");
}

/// Keys in another case become the spec's (runc's Go decoder reads them
/// so); map keys, ignored sections, exact names and oci-spec's own
/// spellings stay.
#[test]
fn keys_in_another_case_are_read_as_runc_reads_them() {
    let mut raw = json!({
        "Hostname": "box",
        "hostName2": 1,
        "root": {"path": "rootfs", "readOnly": true},
        "process": {"Args": ["sh"], "user": {"UID": 5, "gid": 0}, "cwd": "/"},
        "linux": {"intelRdt": {"enableCmt": true}, "namespaces": [{"TYPE": "pid"}]},
        "annotations": {"Key": "v"},
        "windows": {"LayerFolders": []},
        "domainname": "a", "DomainName": "b"
    });
    let mut renamed = normalise_keys(&mut raw, "");
    renamed.sort();
    let want: Vec<(String, String)> = [
        ("Hostname", "hostname"),
        ("linux.namespaces[].TYPE", "linux.namespaces[].type"),
        ("process.Args", "process.args"),
        ("process.user.UID", "process.user.uid"),
        ("root.readOnly", "root.readonly"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(renamed, want);
    assert_eq!(raw["linux"]["intelRdt"], json!({"enableCmt": true}));
    assert_eq!(raw["annotations"], json!({"Key": "v"}));
    assert_eq!(raw["DomainName"], json!("b"));

    let spec =
        crate::config::parse_spec(Path::new("c.json"), raw.to_string().as_bytes()).expect("parses");
    assert_eq!(spec.root().as_ref().and_then(|r| r.readonly()), Some(true));
    assert_eq!(spec.hostname().as_deref(), Some("box"));

    let mut p = json!({"Args": ["x"], "Cwd": "/"});
    normalise_keys(&mut p, "process");
    assert_eq!(p, json!({"args": ["x"], "cwd": "/"}));
}
