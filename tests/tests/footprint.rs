//! rrc's own footprint inside the container's cgroup: whatever the init does
//! after joining the cgroup is charged to the container, so rrc must run a
//! container whose memory limit is 512 KiB and whose pids limit is 1 (crun
//! does; runc fails already at 4 MB).
//!
//! DEPENDS ON THE CGROUPS WIRING of `rrc create`: until rrc applies
//! `linux.resources`, these tests detect it (the init's memory cgroup has no
//! such limit) and skip with a printed reason.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use rr_tests::{require_env, stderr, stdout, unique_id, TestEnv};
use serde_json::json;

const MEMORY_LIMIT: u64 = 512 * 1024;

fn limited_env(cgroup: &str) -> TestEnv {
    let env = TestEnv::new(&["true"]);
    env.edit_config(|c| {
        c["linux"]["cgroupsPath"] = json!(cgroup);
        c["linux"]["resources"] = json!({
            "memory": {"limit": MEMORY_LIMIT},
            "pids": {"limit": 1},
        });
    });
    env
}

/// `rrc create` with its stdio away from pipes: the init inherits them and
/// would hold a captured pipe open until it exits. Returns the error text.
fn create(env: &TestEnv, id: &str, pid_file: &Path) -> Result<(), String> {
    let err = env.dir.path().join(format!("{id}.stderr"));
    let file = std::fs::File::create(&err).map_err(|e| e.to_string())?;
    let b = env.bundle.to_string_lossy().to_string();
    let p = pid_file.to_string_lossy().to_string();
    let status = env
        .rrc_cmd(&["create", "-b", &b, "--pid-file", &p, id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .status()
        .map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(std::fs::read_to_string(&err).unwrap_or_default())
    }
}

/// The directory of `pid`'s cgroup for `controller` (v1), or its unified
/// cgroup when there is no v1 hierarchy for it.
fn cgroup_dir(pid: i64, controller: &str) -> Option<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let mut unified = None;
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        let rel = path.trim_start_matches('/');
        if ctrls.split(',').any(|c| c == controller) {
            return Some(Path::new("/sys/fs/cgroup").join(controller).join(rel));
        }
        if ctrls.is_empty() {
            unified = Some(Path::new("/sys/fs/cgroup/unified").join(rel));
        }
    }
    unified.filter(|p| p.join("memory.max").exists())
}

/// The memory limit `pid` runs under, read from its own memory cgroup.
fn memory_limit_of(pid: i64) -> Option<u64> {
    let dir = cgroup_dir(pid, "memory")?;
    ["memory.limit_in_bytes", "memory.max"]
        .iter()
        .find_map(|f| std::fs::read_to_string(dir.join(f)).ok())
        .and_then(|s| s.trim().parse().ok())
}

/// Why the footprint cannot be checked with this rrc: `None` when `rrc
/// create` puts the init into a cgroup limited as the spec says.
fn cgroups_not_applied() -> Option<String> {
    let id = unique_id("footprint-probe");
    let env = limited_env(&format!("/rr-test/{id}"));
    let pid_file = env.dir.path().join("pid");
    if create(&env, &id, &pid_file).is_err() {
        // A create that fails here is the test's business, not a skip:
        // report it through the real run below.
        return None;
    }
    let pid: i64 = std::fs::read_to_string(&pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let limit = memory_limit_of(pid);
    let _ = env.rrc(&["delete", "--force", &id]);
    match limit {
        Some(MEMORY_LIMIT) => None,
        other => Some(format!(
            "rrc does not apply linux.resources yet (the init's memory cgroup limit is {other:?}, \
             not {MEMORY_LIMIT}): this test needs the cgroups wiring of create"
        )),
    }
}

#[test]
fn runs_true_under_512k_memory_and_one_pid() {
    require_env!();
    if let Some(reason) = cgroups_not_applied() {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    let id = unique_id("footprint");
    let env = limited_env(&format!("/rr-test/{id}"));
    let out = env.rrc_bundle("run", &[&id]);
    assert!(
        out.status.success(),
        "rrc run under memory.limit={MEMORY_LIMIT} and pids.limit=1 failed ({}): {}",
        out.status,
        stderr(&out)
    );
    env.assert_no_leftovers(&id);
}

#[test]
fn create_start_under_512k_memory_and_one_pid() {
    require_env!();
    if let Some(reason) = cgroups_not_applied() {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    let id = unique_id("footprint-cs");
    let env = limited_env(&format!("/rr-test/{id}"));
    let pid_file = env.dir.path().join("pid");
    if let Err(e) = create(&env, &id, &pid_file) {
        panic!("create: {e}");
    }
    let pid: i64 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    // The init (a fork of rrc) waits in the limited cgroup: it must still be
    // alive there, not killed by the memory controller.
    assert_eq!(memory_limit_of(pid), Some(MEMORY_LIMIT));
    let memcg = cgroup_dir(pid, "memory").expect("the init's memory cgroup");
    let out = env.rrc(&["start", &id]);
    assert!(out.status.success(), "start: {}", stderr(&out));
    // `true` runs and exits; the state goes to stopped. Poll the state
    // (bounded), not the clock, for the result.
    let mut status = String::new();
    for _ in 0..500 {
        status = env.state(&id)["status"].as_str().unwrap_or("").to_string();
        if status == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(status, "stopped");
    // Stopped by exiting, not by the OOM killer (v1 counts its kills here;
    // the cgroup lives until delete).
    if let Ok(oom) = std::fs::read_to_string(memcg.join("memory.oom_control")) {
        let kills = oom
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .map(str::trim);
        assert!(matches!(kills, None | Some("0")), "OOM kills: {oom}");
    }
    let out = env.rrc(&["delete", &id]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    env.assert_no_leftovers(&id);
}

/// The init joins its cgroups before it makes the cgroup namespace (stage 1
/// stays outside them): the container's cgroups must still be the root of
/// that namespace, in every hierarchy, and its own limit must be what it
/// sees at /sys/fs/cgroup.
#[test]
fn new_cgroup_namespace_is_rooted_at_the_container_cgroup() {
    require_env!();
    let id = unique_id("footprint-cgns");
    let env = TestEnv::new(&[
        "sh",
        "-c",
        "cat /proc/self/cgroup; echo pids.max=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)",
    ]);
    env.edit_config(|c| {
        c["linux"]["cgroupsPath"] = json!(format!("/rr-test/{id}"));
        c["linux"]["resources"] = json!({"pids": {"limit": 7}});
        let ns = c["linux"]["namespaces"].as_array_mut().expect("namespaces");
        if !ns.iter().any(|n| n["type"] == "cgroup") {
            ns.push(json!({"type": "cgroup"}));
        }
        // `rrc spec` has both today; the test must not depend on it.
        let mounts = c["mounts"].as_array_mut().expect("mounts");
        if !mounts.iter().any(|m| m["destination"] == "/sys/fs/cgroup") {
            mounts.push(json!({"destination": "/sys/fs/cgroup", "type": "cgroup",
                "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}));
        }
    });
    let out = env.rrc_bundle("run", &[&id]);
    assert!(out.status.success(), "run: {}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(':')).collect();
    assert!(!lines.is_empty(), "no /proc/self/cgroup output: {text}");
    for l in &lines {
        assert!(
            l.ends_with(":/"),
            "cgroup line {l:?} is not at the namespace root:\n{text}"
        );
    }
    assert!(
        text.contains("pids.max=7"),
        "the container's own pids.max: {text}"
    );
    env.assert_no_leftovers(&id);
}

/// A memory limit the init cannot even set up in fails create with an error
/// that names the limit, and leaves nothing behind.
#[test]
fn too_small_memory_limit_fails_create_naming_the_limit() {
    require_env!();
    let id = unique_id("footprint-small");
    let env = TestEnv::new(&["true"]);
    env.edit_config(|c| {
        c["linux"]["cgroupsPath"] = json!(format!("/rr-test/{id}"));
        c["linux"]["resources"] = json!({"memory": {"limit": 16384}});
    });
    let pid_file = env.dir.path().join("pid");
    let err = create(&env, &id, &pid_file).expect_err("create under a 16 KiB memory limit");
    assert!(
        err.contains("memory limit (16384 bytes, linux.resources.memory.limit)"),
        "error does not name the limit: {err}"
    );
    env.assert_no_leftovers(&id);
}
