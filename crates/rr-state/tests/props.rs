//! Property tests of the pure parts: ids, `/proc/<pid>/stat` parsing, timestamps and the
//! state document.

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use rr_state::{format_rfc3339, parse_proc_stat, ContainerId, State, StoredConfig, MAX_ID_LEN};

fn reference_id_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+.-".contains(c))
}

proptest! {
    #[test]
    fn id_validation_matches_rule(s in "[A-Za-z0-9_+./ \\-é:]{0,8}|.{0,300}") {
        let got = ContainerId::new(&s);
        prop_assert_eq!(got.is_ok(), reference_id_ok(&s));
        if let Ok(id) = got {
            // An accepted id is exactly one normal path component.
            let mut comps = Path::new(id.as_str()).components();
            prop_assert!(matches!(comps.next(), Some(std::path::Component::Normal(_))));
            prop_assert!(comps.next().is_none());
        }
    }

    #[test]
    fn proc_stat_never_panics(s in ".{0,200}") {
        let _ = parse_proc_stat(&s);
    }

    #[test]
    fn proc_stat_any_comm(comm in "[^\\x00]{0,16}", state in "[RSDZTtXxIPW]", start in any::<u64>()) {
        let filler: Vec<String> = (4..22).map(|n| (n * 7).to_string()).collect();
        let text = format!("99 ({comm}) {state} {} {start} 5 6 7\n", filler.join(" "));
        let info = parse_proc_stat(&text).unwrap();
        prop_assert_eq!(info.start_time, start);
        prop_assert_eq!(info.state.to_string(), state);
    }

    #[test]
    fn rfc3339_order_and_shape(a in 0i64..253_402_300_800, b in 0i64..253_402_300_800, n in 0u32..1_000_000_000) {
        let (fa, fb) = (format_rfc3339(a, n), format_rfc3339(b, n));
        prop_assert_eq!(fa.len(), 30);
        prop_assert_eq!(a.cmp(&b), fa.cmp(&fb));
        // The next second always formats later, also across day, month and year ends.
        let next = format_rfc3339(a + 1, n);
        prop_assert!(next > fa);
    }

    #[test]
    fn state_json_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = State::from_json_slice(&bytes, Path::new("fuzz"));
    }

    #[test]
    fn state_round_trips(
        id in "[a-z0-9]{1,10}",
        pid in any::<i32>(),
        start in any::<u64>(),
        labels in proptest::collection::vec(".{0,12}", 0..4),
        cg in proptest::collection::btree_map(".{0,6}", ".{0,12}", 0..4),
        extra in proptest::collection::btree_map("[a-z_]{1,8}", any::<i64>(), 0..4),
        rootless in any::<bool>(),
    ) {
        let mut config_extra = serde_json::Map::new();
        for (k, v) in extra {
            if k != "rootfs" && k != "labels" && k != "spec" {
                config_extra.insert(k, serde_json::json!(v));
            }
        }
        let state = State {
            id,
            init_process_pid: pid,
            init_process_start: start,
            created: format_rfc3339(start as i64 & 0xffff_ffff, 7),
            config: StoredConfig {
                rootfs: "/r".into(),
                labels,
                spec: serde_json::json!({"annotations": {"a": "b"}}),
                extra: config_extra,
            },
            rootless,
            cgroup_paths: cg,
            namespace_paths: BTreeMap::new(),
            external_descriptors: vec!["/dev/null".into()],
            intel_rdt_path: String::new(),
        rr_intel_rdt: None,
        };
        let bytes = state.to_json_vec(Path::new("s")).unwrap();
        prop_assert_eq!(State::from_json_slice(&bytes, Path::new("s")).unwrap(), state);
    }
}
