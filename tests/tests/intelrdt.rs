//! Intel RDT through `rrc`: `linux.intelRdt` against fake resctrl trees
//! (this machine has none) that reproduce real hosts' layouts. `rrc` is
//! pointed at a tree with `RR_RESCTRL_ROOT`. On a fake tree a write just
//! writes the file, so the tests check what rrc wrote (group directories,
//! schemata, tasks) and play the kernel's part where it matters.

use std::fs;
use std::path::Path;
use std::process::Output;

use rr_test_support::fake_resctrl::FakeHost;
use rr_tests::{require_env, run_to_exit, stderr, stdout, unique_id, TestEnv};
use serde_json::{json, Value};

const ROOT_ENV: &str = "RR_RESCTRL_ROOT";

fn rrc(env: &TestEnv, host: &FakeHost, args: &[&str]) -> Output {
    let mut cmd = env.rrc_cmd(args);
    cmd.env(ROOT_ENV, &host.root);
    run_to_exit(cmd)
}

fn set_rdt(env: &TestEnv, rdt: Value) {
    env.edit_config(|c| c["linux"]["intelRdt"] = rdt);
}

fn create(env: &TestEnv, host: &FakeHost, id: &str) -> Output {
    let b = env.bundle.to_str().expect("utf-8 bundle").to_string();
    rrc(env, host, &["create", "-b", &b, id])
}

fn create_ok(env: &TestEnv, host: &FakeHost, id: &str) -> i64 {
    let out = create(env, host, id);
    assert!(out.status.success(), "create {id}: {}", stderr(&out));
    env.state(id)["pid"].as_i64().expect("pid")
}

/// Creates, expects failure with `message` in stderr, and checks that
/// nothing is left: no state, process or mount, and no new directory in the
/// resctrl tree.
fn create_fails(env: &TestEnv, host: &FakeHost, id: &str, message: &str) {
    let before = host.dirs();
    let out = create(env, host, id);
    assert!(!out.status.success(), "create {id} should fail");
    // The message unquoted from rrc's log line: it holds quotes.
    let err = rr_tests::messages(&out);
    assert!(
        err.contains(message),
        "error for {id} lacks {message:?}: {err}"
    );
    assert_eq!(
        host.dirs(),
        before,
        "resctrl groups changed by a failed create"
    );
    assert!(!host.exists(&format!("mon_groups/{id}")));
    env.assert_no_leftovers(id);
}

fn state_json(env: &TestEnv, id: &str) -> Value {
    let text = fs::read_to_string(env.root.join(id).join("state.json")).expect("state.json");
    serde_json::from_str(&text).expect("state.json is JSON")
}

fn delete(env: &TestEnv, host: &FakeHost, id: &str) {
    let out = rrc(env, host, &["delete", "-f", id]);
    assert!(out.status.success(), "delete {id}: {}", stderr(&out));
    env.assert_no_leftovers(id);
}

fn tasks(host: &FakeHost, rel: &str) -> Vec<i64> {
    host.read(&format!("{rel}/tasks"))
        .split_whitespace()
        .map(|t| t.parse().expect("task id"))
        .collect()
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn cdp_host_group_gets_merged_schemata_and_the_init() {
    require_env!();
    let host = FakeHost::intel_cdp();
    let env = TestEnv::new(&["sleep", "30"]);
    set_rdt(
        &env,
        json!({
            "l3CacheSchema": "L3CODE:0=0ff0;1=3ff",
            "memBwSchema": "MB:0=20;1=70",
            "schemata": ["L3DATA:0=f00"]
        }),
    );
    let id = unique_id("rdt-cdp");
    let pid = create_ok(&env, &host, &id);
    assert_eq!(
        host.read(&format!("{id}/schemata")),
        "L3CODE:0=ff0;1=3ff\nMB:0=20;1=70\nL3DATA:0=f00\n"
    );
    assert_eq!(tasks(&host, &id), vec![pid]);
    let st = state_json(&env, &id);
    assert_eq!(st["intel_rdt_path"], path_str(&host.root.join(&id)));
    assert_eq!(st["rr_intel_rdt"]["group_created"], true);
    assert_eq!(st["rr_intel_rdt"]["root"], path_str(&host.root));
    // The root group is never touched.
    assert_eq!(host.read("tasks"), "1\n2\n");
    delete(&env, &host, &id);
    assert!(!host.exists(&id), "delete left the group rr created");
    assert!(host.exists("info/L3CODE/cbm_mask") && host.exists("schemata"));
}

#[test]
fn non_contiguous_cbm_is_refused_before_anything_exists() {
    require_env!();
    let host = FakeHost::intel_cdp();
    let env = TestEnv::new(&["true"]);
    set_rdt(&env, json!({"l3CacheSchema": "L3CODE:0=f0f"}));
    create_fails(
        &env,
        &host,
        &unique_id("rdt-sparse"),
        "linux.intelRdt: L3CODE domain 0: mask f0f is not contiguous (its set bits must form one run, and this host does not support sparse masks)",
    );
    // Without CDP the plain L3 resource does not exist here.
    set_rdt(&env, json!({"l3CacheSchema": "L3:0=ff"}));
    create_fails(
        &env,
        &host,
        &unique_id("rdt-nol3"),
        "resource L3: this host has no such resource",
    );
    // A syntax error names the field.
    set_rdt(&env, json!({"schemata": ["L3DATA:0=fffg"]}));
    create_fails(
        &env,
        &host,
        &unique_id("rdt-syntax"),
        "linux.intelRdt.schemata: schemata line 1: L3DATA domain 0 value \"fffg\" is not a hexadecimal cache bit mask",
    );
}

#[test]
fn mba_host_bandwidth_rules() {
    require_env!();
    let host = FakeHost::intel_mba();
    let env = TestEnv::new(&["sleep", "30"]);
    set_rdt(&env, json!({"memBwSchema": "MB:0=25;1=70"}));
    create_fails(
        &env,
        &host,
        &unique_id("rdt-gran"),
        "MB domain 0: bandwidth 25 is not a multiple of bandwidth_gran 10 (the kernel would silently round it up to 30)",
    );
    set_rdt(&env, json!({"memBwSchema": "MB:1=5"}));
    create_fails(
        &env,
        &host,
        &unique_id("rdt-min"),
        "MB domain 1: bandwidth 5 is outside [10, 100]",
    );
    set_rdt(&env, json!({"l3CacheSchema": "L3:0=7f0;2=1f"}));
    create_fails(
        &env,
        &host,
        &unique_id("rdt-dom"),
        "L3 domain 2: no such cache/domain id on this host (the root group's schemata lists 0, 1)",
    );
    set_rdt(
        &env,
        json!({"l3CacheSchema": "L3:0=7f0;1=1f", "memBwSchema": "MB:0=20;1=70"}),
    );
    let id = unique_id("rdt-mba");
    let pid = create_ok(&env, &host, &id);
    assert_eq!(
        host.read(&format!("{id}/schemata")),
        "L3:0=7f0;1=1f\nMB:0=20;1=70\n"
    );
    assert_eq!(tasks(&host, &id), vec![pid]);
    delete(&env, &host, &id);
    assert!(!host.exists(&id));
}

#[test]
fn amd_host_sparse_masks_and_smba() {
    require_env!();
    let host = FakeHost::amd();
    let env = TestEnv::new(&["sleep", "30"]);
    set_rdt(&env, json!({"l3CacheSchema": "L3:0=1ffff"}));
    create_fails(
        &env,
        &host,
        &unique_id("rdt-amdmask"),
        "L3 domain 0: mask 1ffff sets bits outside the host's cbm_mask ffff",
    );
    // AMD accepts sparse masks, and bandwidth in 1/8 GB/s units up to 2048.
    set_rdt(
        &env,
        json!({"l3CacheSchema": "L3:0=f0f;3=ff00", "memBwSchema": "MB:0=1024", "schemata": ["SMBA:2=512"]}),
    );
    let id = unique_id("rdt-amd");
    let pid = create_ok(&env, &host, &id);
    assert_eq!(
        host.read(&format!("{id}/schemata")),
        "L3:0=f0f;3=ff00\nMB:0=1024\nSMBA:2=512\n"
    );
    assert_eq!(tasks(&host, &id), vec![pid]);
    delete(&env, &host, &id);
    assert!(!host.exists(&id));
}

#[test]
fn monitoring_only_host_uses_a_monitoring_group_under_the_root() {
    require_env!();
    let host = FakeHost::monitoring_only();
    let env = TestEnv::new(&["sleep", "30"]);
    set_rdt(&env, json!({"l3CacheSchema": "L3:0=ff"}));
    create_fails(
        &env,
        &host,
        &unique_id("rdt-monl3"),
        "resource L3: this host has no such resource",
    );
    set_rdt(&env, json!({"closID": "clos1"}));
    create_fails(
        &env,
        &host,
        &unique_id("rdt-monclos"),
        "this host's resctrl has no allocation resource",
    );
    set_rdt(&env, json!({"enableMonitoring": true}));
    let id = unique_id("rdt-mon");
    let pid = create_ok(&env, &host, &id);
    assert_eq!(tasks(&host, &format!("mon_groups/{id}")), vec![pid]);
    let st = state_json(&env, &id);
    assert_eq!(st["intel_rdt_path"], path_str(&host.root));
    assert_eq!(st["rr_intel_rdt"]["mon_group_created"], true);
    delete(&env, &host, &id);
    assert!(!host.exists(&format!("mon_groups/{id}")));
    assert!(host.exists("mon_groups") && host.exists("tasks"));
}

#[test]
fn monitoring_needs_l3_mon() {
    require_env!();
    let host = FakeHost::intel_mba();
    fs::remove_dir_all(host.root.join("info/L3_MON")).expect("rm L3_MON");
    let env = TestEnv::new(&["true"]);
    set_rdt(&env, json!({"enableMonitoring": true}));
    create_fails(
        &env,
        &host,
        &unique_id("rdt-nomon"),
        "monitoring was requested but this host has no RDT monitoring (no info/L3_MON)",
    );
}

#[test]
fn failure_after_the_group_was_made_removes_it() {
    require_env!();
    // A new group on a fake tree has no mon_groups/ (the kernel would
    // make it), so the monitoring group cannot be made: the create fails
    // after rr made the control group, which must then go again.
    let host = FakeHost::intel_mba();
    let env = TestEnv::new(&["true"]);
    set_rdt(
        &env,
        json!({"l3CacheSchema": "L3:0=3f", "enableMonitoring": true}),
    );
    let id = unique_id("rdt-undo");
    create_fails(&env, &host, &id, "mkdir");
    assert!(!host.exists(&id));
}

#[test]
fn closid_group_set_up_beforehand_is_joined_and_kept() {
    require_env!();
    let host = FakeHost::intel_mba();
    host.admin_group("shared", "L3:0=7f0;1=7ff\nMB:0=50;1=100\n");
    let env = TestEnv::new(&["sleep", "30"]);
    // The values asked for are compared as numbers: 07f0 is 7f0.
    set_rdt(
        &env,
        json!({"closID": "shared", "l3CacheSchema": "L3:0=07f0", "enableMonitoring": true}),
    );
    let id = unique_id("rdt-share");
    let pid = create_ok(&env, &host, &id);
    assert_eq!(tasks(&host, "shared"), vec![pid]);
    assert_eq!(tasks(&host, &format!("shared/mon_groups/{id}")), vec![pid]);
    assert_eq!(
        host.read("shared/schemata"),
        "L3:0=7f0;1=7ff\nMB:0=50;1=100\n"
    );
    let st = state_json(&env, &id);
    assert_eq!(st["intel_rdt_path"], path_str(&host.root.join("shared")));
    assert_eq!(st["rr_intel_rdt"]["group_created"], false);
    delete(&env, &host, &id);
    assert!(
        host.exists("shared/schemata"),
        "delete removed a group rr did not create"
    );
    assert!(!host.exists(&format!("shared/mon_groups/{id}")));

    // Asking the existing group for something else is refused, and the
    // group is left as it was.
    set_rdt(
        &env,
        json!({"closID": "shared", "l3CacheSchema": "L3:0=7f"}),
    );
    let id = unique_id("rdt-mismatch");
    let out = create(&env, &host, &id);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "group shared: its schemata has L3 domain 0 = 7f0, the configuration asks for 7f"
        ),
        "{}",
        stderr(&out)
    );
    env.assert_no_leftovers(&id);
    assert_eq!(
        host.read("shared/schemata"),
        "L3:0=7f0;1=7ff\nMB:0=50;1=100\n"
    );

    // A closID without schemata must exist already.
    set_rdt(&env, json!({"closID": "absent"}));
    create_fails(&env, &host, &unique_id("rdt-absent"), "closID \"absent\": ");
    set_rdt(&env, json!({"closID": "../escape"}));
    create_fails(
        &env,
        &host,
        &unique_id("rdt-escape"),
        "invalid closID \"../escape\": it contains '/'",
    );
}

#[test]
fn closid_group_rr_made_goes_with_its_last_container() {
    require_env!();
    let host = FakeHost::intel_mba();
    let env = TestEnv::new(&["sleep", "30"]);
    set_rdt(
        &env,
        json!({"closID": "batch", "l3CacheSchema": "L3:0=f;1=f"}),
    );
    let id = unique_id("rdt-batch");
    let pid = create_ok(&env, &host, &id);
    assert_eq!(host.read("batch/schemata"), "L3:0=f;1=f\n");
    assert_eq!(tasks(&host, "batch"), vec![pid]);
    // Another task joins the group (as another container would): the
    // group stays while it is used.
    host.write("batch/tasks", &format!("{pid}\n1\n"));
    delete(&env, &host, &id);
    assert!(host.exists("batch"), "a group still in use was removed");
    fs::remove_dir_all(host.root.join("batch")).expect("rm batch");

    let id = unique_id("rdt-batch");
    create_ok(&env, &host, &id);
    // Its own (killed) init does not keep it.
    delete(&env, &host, &id);
    assert!(
        !host.exists("batch"),
        "delete left the closID group rr made"
    );
}

#[test]
fn update_schemata() {
    require_env!();
    let host = FakeHost::intel_mba();
    let env = TestEnv::new(&["sleep", "30"]);
    set_rdt(&env, json!({"l3CacheSchema": "L3:0=7f0;1=7f0"}));
    let id = unique_id("rdt-upd");
    create_ok(&env, &host, &id);
    let group = format!("{id}/schemata");

    let out = rrc(
        &env,
        &host,
        &["update", "--l3-cache-schema", "L3:0=1f;1=3e0", &id],
    );
    assert!(out.status.success(), "update: {}", stderr(&out));
    assert_eq!(host.read(&group), "L3:0=1f;1=3e0\n");
    let out = rrc(&env, &host, &["update", "--mem-bw-schema", "MB:1=40", &id]);
    assert!(out.status.success(), "update: {}", stderr(&out));
    assert_eq!(host.read(&group), "MB:1=40\n");
    let spec = &state_json(&env, &id)["config"]["spec"]["linux"]["intelRdt"];
    assert_eq!(spec["l3CacheSchema"], "L3:0=1f;1=3e0");
    assert_eq!(spec["memBwSchema"], "MB:1=40");

    let bad = |args: &[&str], message: &str| {
        let mut a = vec!["update"];
        a.extend_from_slice(args);
        a.push(&id);
        let out = rrc(&env, &host, &a);
        assert!(!out.status.success(), "update {args:?} should fail");
        let err = rr_tests::messages(&out);
        assert!(err.contains(message), "{args:?}: {err}");
        assert_eq!(host.read(&group), "MB:1=40\n", "a refused update wrote");
    };
    bad(
        &["--l3-cache-schema", "L3:0=70f"],
        "--l3-cache-schema: L3 domain 0: mask 70f is not contiguous",
    );
    bad(
        &["--mem-bw-schema", "MB:0=15"],
        "--mem-bw-schema: MB domain 0: bandwidth 15 is not a multiple of bandwidth_gran 10",
    );
    bad(
        &["--mem-bw-schema", "L3:0=f"],
        "--mem-bw-schema: must be one line starting with \"MB:\"",
    );
    delete(&env, &host, &id);

    // A container created without linux.intelRdt has nothing to update.
    env.edit_config(|c| {
        c["linux"].as_object_mut().map(|l| l.remove("intelRdt"));
    });
    let id = unique_id("rdt-none");
    create_ok(&env, &host, &id);
    let out = rrc(&env, &host, &["update", "--l3-cache-schema", "L3:0=f", &id]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!(
            "--l3-cache-schema: container {id} has no Intel RDT group: its config had no linux.intelRdt at create"
        )),
        "{}",
        stderr(&out)
    );
    assert!(!host.exists(&id));
    delete(&env, &host, &id);
}

/// Whether this machine has a real resctrl mount (then the no-resctrl
/// behaviour cannot be seen here).
fn host_has_resctrl() -> bool {
    fs::read_to_string("/proc/self/mountinfo")
        .map(|m| m.contains(" - resctrl "))
        .unwrap_or(false)
}

#[test]
fn no_resctrl_on_the_host() {
    require_env!();
    if host_has_resctrl() {
        eprintln!("SKIPPED: this machine has resctrl mounted");
        return;
    }
    let env = TestEnv::new(&["true"]);
    set_rdt(&env, json!({"l3CacheSchema": "L3:0=ff", "closID": "c"}));
    let id = unique_id("rdt-nofs");
    let mut cmd = env.rrc_cmd(&["create", "-b", env.bundle.to_str().expect("utf-8"), &id]);
    cmd.env_remove(ROOT_ENV);
    let out = run_to_exit(cmd);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "linux.intelRdt: closID, l3CacheSchema given, but this host has no resctrl filesystem"
        ),
        "{}",
        stderr(&out)
    );
    env.assert_no_leftovers(&id);
    // An empty intelRdt asks for nothing and is ignored, as runc does.
    set_rdt(&env, json!({}));
    let id = unique_id("rdt-empty");
    let mut cmd = env.rrc_cmd(&["create", "-b", env.bundle.to_str().expect("utf-8"), &id]);
    cmd.env_remove(ROOT_ENV);
    let out = run_to_exit(cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(state_json(&env, &id)["intel_rdt_path"], "");
    let out = env.rrc(&["delete", "-f", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// `events --stats` carries the group's Intel RDT statistics under
/// `intel_rdt`, in runc's shape, read from the files the kernel keeps:
/// here the test plays the kernel and writes the group's `mon_data`.
#[test]
fn events_stats_include_intel_rdt() {
    require_env!();
    let host = FakeHost::intel_mba();
    let env = TestEnv::new(&["sleep", "30"]);
    set_rdt(
        &env,
        json!({"l3CacheSchema": "L3:0=7f0;1=7ff", "memBwSchema": "MB:0=50;1=100"}),
    );
    let id = unique_id("rdt-events");
    create_ok(&env, &host, &id);
    for (domain, occupancy, total, local) in [(0, 4096, 111, 222), (1, 8192, 333, 444)] {
        let m = format!("{id}/mon_data/mon_L3_{domain:02}");
        host.write(&format!("{m}/llc_occupancy"), &format!("{occupancy}\n"));
        host.write(&format!("{m}/mbm_total_bytes"), &format!("{total}\n"));
        host.write(&format!("{m}/mbm_local_bytes"), &format!("{local}\n"));
    }
    let out = rrc(&env, &host, &["events", "--stats", &id]);
    assert!(out.status.success(), "events --stats: {}", stderr(&out));
    let ev: Value = serde_json::from_str(&stdout(&out)).expect("events --stats prints JSON");
    assert_eq!(ev["type"], "stats");
    assert!(
        ev["data"]["pids"].is_object(),
        "cgroup stats still there: {ev}"
    );
    let rdt = &ev["data"]["intel_rdt"];
    assert_eq!(
        rdt["cmt_stats"],
        json!([{"llc_occupancy": 4096}, {"llc_occupancy": 8192}]),
        "{ev}"
    );
    assert_eq!(
        rdt["mbm_stats"],
        json!([
            {"mbm_total_bytes": 111, "mbm_local_bytes": 222},
            {"mbm_total_bytes": 333, "mbm_local_bytes": 444}
        ]),
        "{ev}"
    );
    assert_eq!(
        rdt["l3_cache_info"],
        json!({"cbm_mask": "7ff", "min_cbm_bits": 1, "num_closids": 16})
    );
    assert_eq!(rdt["l3_cache_schema"], "L3:0=7f0;1=7ff");
    assert_eq!(rdt["l3_cache_schema_root"], "L3:0=7ff;1=7ff");
    assert_eq!(rdt["mem_bw_schema"], "MB:0=50;1=100");
    assert_eq!(
        rdt["mem_bw_info"],
        json!({"bandwidth_gran": 10, "delay_linear": 1, "min_bandwidth": 10, "num_closids": 8})
    );
    delete(&env, &host, &id);

    // A container without intelRdt has no such key.
    env.edit_config(|c| {
        if let Some(l) = c["linux"].as_object_mut() {
            l.remove("intelRdt");
        }
    });
    let plain = unique_id("rdt-events-none");
    create_ok(&env, &host, &plain);
    let out = rrc(&env, &host, &["events", "--stats", &plain]);
    assert!(out.status.success(), "events --stats: {}", stderr(&out));
    let ev: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert!(ev["data"].get("intel_rdt").is_none(), "{ev}");
    delete(&env, &host, &plain);
}
