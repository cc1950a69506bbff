//! `Runtime::intel_rdt_stats`: runc's `intel_rdt` stats object, read from a
//! fake resctrl tree through what state.json records.

use std::fs;
use std::path::Path;

use rr_container::Runtime;
use rr_state::{ContainerId, IntelRdtRecord, State, StateRoot};
use serde_json::json;

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

/// A two-socket Intel host with CDP, MBA and monitoring, and the group
/// `ctr` with a monitoring group `ctr/mon_groups/ctr`.
fn intel_cdp(root: &Path) {
    for r in ["L3CODE", "L3DATA"] {
        write(root, &format!("info/{r}/cbm_mask"), "fffff\n");
        write(root, &format!("info/{r}/min_cbm_bits"), "1\n");
        write(root, &format!("info/{r}/num_closids"), "8\n");
    }
    write(root, "info/MB/bandwidth_gran", "10\n");
    write(root, "info/MB/min_bandwidth", "10\n");
    write(root, "info/MB/delay_linear", "1\n");
    write(root, "info/MB/num_closids", "8\n");
    write(
        root,
        "info/L3_MON/mon_features",
        "llc_occupancy\nmbm_total_bytes\nmbm_local_bytes\n",
    );
    write(root, "info/L3_MON/num_rmids", "176\n");
    write(
        root,
        "schemata",
        "L3DATA:0=fffff;1=fffff\nL3CODE:0=fffff;1=fffff\n    MB:0=100;1=100\n",
    );
    write(
        root,
        "ctr/schemata",
        "L3DATA:0=ff;1=fffff\nL3CODE:0=ff0;1=fffff\n    MB:0=20;1=100\n",
    );
    write(root, "ctr/tasks", "");
    // The control group counts all of its tasks, the monitoring group
    // only the container's.
    for d in 0..2 {
        let m = format!("ctr/mon_data/mon_L3_{d:02}");
        write(root, &format!("{m}/llc_occupancy"), "999\n");
        write(root, &format!("{m}/mbm_total_bytes"), "999\n");
        write(root, &format!("{m}/mbm_local_bytes"), "999\n");
        let m = format!("ctr/mon_groups/ctr/mon_data/mon_L3_{d:02}");
        write(
            root,
            &format!("{m}/llc_occupancy"),
            &format!("{}\n", 4096 * (d + 1)),
        );
        write(root, &format!("{m}/mbm_total_bytes"), "Unavailable\n");
        write(
            root,
            &format!("{m}/mbm_local_bytes"),
            &format!("{}\n", 1000 + d),
        );
    }
}

fn save(state_root: &Path, id: &str, record: Option<IntelRdtRecord>) -> Runtime {
    let root = StateRoot::open(state_root).unwrap();
    let (dir, _lock) = root.create(&ContainerId::new(id).unwrap()).unwrap();
    dir.save(&State {
        id: id.into(),
        init_process_pid: 1,
        rr_intel_rdt: record,
        ..Default::default()
    })
    .unwrap();
    Runtime::new(state_root).unwrap()
}

#[test]
fn stats_use_runc_names_and_the_monitoring_group() {
    let tmp = tempfile::tempdir().unwrap();
    let resctrl = tmp.path().join("resctrl");
    intel_cdp(&resctrl);
    let record = IntelRdtRecord {
        root: resctrl.display().to_string(),
        group: "ctr".into(),
        mon_group: "ctr".into(),
        ..Default::default()
    };
    let rt = save(&tmp.path().join("state"), "ctr", Some(record.clone()));
    let stats = rt.intel_rdt_stats("ctr").unwrap().unwrap();
    assert_eq!(
        stats,
        json!({
            "l3_cache_info": {"cbm_mask": "fffff", "min_cbm_bits": 1, "num_closids": 8},
            "l3_cache_schema_root": "L3DATA:0=fffff;1=fffff\nL3CODE:0=fffff;1=fffff",
            "l3_cache_schema": "L3DATA:0=ff;1=fffff\nL3CODE:0=ff0;1=fffff",
            "mem_bw_info": {"bandwidth_gran": 10, "delay_linear": 1, "min_bandwidth": 10, "num_closids": 8},
            "mem_bw_schema_root": "MB:0=100;1=100",
            "mem_bw_schema": "MB:0=20;1=100",
            "mbm_stats": [
                {"mbm_total_bytes": 0, "mbm_local_bytes": 1000},
                {"mbm_total_bytes": 0, "mbm_local_bytes": 1001}
            ],
            "cmt_stats": [{"llc_occupancy": 4096}, {"llc_occupancy": 8192}]
        })
    );

    // Without a monitoring group the control group's counters are used.
    let rt = save(
        &tmp.path().join("state"),
        "nomon",
        Some(IntelRdtRecord {
            mon_group: String::new(),
            ..record
        }),
    );
    let stats = rt.intel_rdt_stats("nomon").unwrap().unwrap();
    assert_eq!(
        stats["cmt_stats"],
        json!([{"llc_occupancy": 999}, {"llc_occupancy": 999}])
    );

    // A container without Intel RDT has no such stats.
    let rt = save(&tmp.path().join("state"), "plain", None);
    assert_eq!(rt.intel_rdt_stats("plain").unwrap(), None);
    // A missing container is an error.
    assert!(rt.intel_rdt_stats("absent").is_err());
}
