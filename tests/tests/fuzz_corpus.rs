//! Stable-Rust side of the cargo-fuzz targets: every file of every checked-in
//! corpus goes through the very function its fuzz target calls (the
//! targets `include!` the same `fuzz/checks/*.rs` files), plus random
//! property cases for config.json parsing. No nightly, no libFuzzer.

use std::path::{Path, PathBuf};

mod nsenter_decode {
    include!("../../crates/rr-nsenter/fuzz/checks/decode.rs");
}
mod intelrdt_schemata {
    include!("../../crates/rr-intelrdt/fuzz/checks/schemata.rs");
}
mod criu_dash_v {
    include!("../../crates/rr-criu/fuzz/checks/dash_v.rs");
}
mod criu_reply {
    include!("../../crates/rr-criu/fuzz/checks/reply.rs");
}
mod state_json {
    include!("../../crates/rr-state/fuzz/checks/state_json.rs");
}
mod container_config {
    include!("../../crates/rr-container/fuzz/checks/config.rs");
}
mod container_console_socket {
    include!("../../crates/rr-container/fuzz/checks/console_socket.rs");
}

/// Every fuzz target: its crate, its name (= its corpus directory) and the
/// function it runs. A new target is one line here.
/// (crate, target, the target's body).
type Target = (&'static str, &'static str, fn(&[u8]));

const TARGETS: &[Target] = &[
    ("rr-nsenter", "decode", nsenter_decode::check),
    ("rr-intelrdt", "schemata", intelrdt_schemata::check),
    ("rr-criu", "dash_v", criu_dash_v::check),
    ("rr-criu", "reply", criu_reply::check),
    ("rr-state", "state_json", state_json::check),
    ("rr-container", "config", container_config::check),
    (
        "rr-container",
        "console_socket",
        container_console_socket::check,
    ),
];

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates")
}

#[test]
fn every_corpus_file_passes_its_target() {
    let mut total = 0;
    for (krate, target, check) in TARGETS {
        let dir = crates_dir().join(krate).join("fuzz/corpus").join(target);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{}: empty corpus", dir.display());
        for f in &files {
            let data = std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            // A panic names the file that caused it.
            let r = std::panic::catch_unwind(|| check(&data));
            assert!(
                r.is_ok(),
                "{krate} fuzz target {target} fails on {}",
                f.display()
            );
        }
        eprintln!("{krate}/{target}: {} corpus files", files.len());
        total += files.len();
    }
    eprintln!("{total} corpus files in {} targets", TARGETS.len());
}

/// Every fuzz target that is checked in has a corpus and a line in TARGETS.
#[test]
fn no_target_is_forgotten() {
    for entry in std::fs::read_dir(crates_dir()).expect("crates dir") {
        let krate = entry.expect("entry").path();
        let targets = krate.join("fuzz/fuzz_targets");
        let Ok(files) = std::fs::read_dir(&targets) else {
            continue;
        };
        for f in files {
            let f = f.expect("entry").path();
            let name = f
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            let kname = krate
                .file_name()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            assert!(
                TARGETS.iter().any(|(k, t, _)| *k == kname && *t == name),
                "{} has no corpus replay in TARGETS",
                f.display()
            );
        }
    }
}

mod config_properties {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| json!(f)),
            ".{0,12}".prop_map(Value::from),
            prop::sample::select(vec![
                "/",
                "..",
                "/dev/../etc",
                "1.0.2",
                "2.0",
                "",
                "user",
                "mount"
            ])
            .prop_map(Value::from),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(".{0,8}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Paths into a valid spec where a random value replaces what is there.
    const PLACES: &[&[&str]] = &[
        &["ociVersion"],
        &["process"],
        &["process", "args"],
        &["process", "cwd"],
        &["process", "user"],
        &["process", "user", "uid"],
        &["process", "env"],
        &["process", "rlimits"],
        &["process", "capabilities"],
        &["root"],
        &["root", "path"],
        &["mounts"],
        &["hostname"],
        &["linux"],
        &["linux", "namespaces"],
        &["linux", "uidMappings"],
        &["linux", "devices"],
        &["linux", "resources"],
        &["linux", "maskedPaths"],
        &["annotations"],
    ];

    fn base() -> Value {
        rr_container::default_spec::default_spec(None)
    }

    fn set(v: &mut Value, path: &[&str], new: Value) {
        let mut cur = v;
        for (i, k) in path.iter().enumerate() {
            if !cur.is_object() {
                return;
            }
            if i + 1 == path.len() {
                cur[*k] = new;
                return;
            }
            cur = &mut cur[*k];
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// A valid spec with random values in random places: parsing and
        /// validation answer, never panic.
        #[test]
        fn mutated_specs_never_panic(
            edits in prop::collection::vec((0..PLACES.len(), value()), 1..4)
        ) {
            let mut spec = base();
            for (place, v) in edits {
                set(&mut spec, PLACES[place], v);
            }
            let bytes = serde_json::to_vec(&spec).expect("json");
            super::container_config::check(&bytes);
        }

        /// Arbitrary bytes, and cut-off valid specs.
        #[test]
        fn arbitrary_bytes_never_panic(
            data in prop::collection::vec(any::<u8>(), 0..256),
            cut in 0usize..4096,
        ) {
            super::container_config::check(&data);
            let full = serde_json::to_vec(&base()).expect("json");
            super::container_config::check(&full[..cut.min(full.len())]);
        }
    }
}
