//! Regression tests for what `cargo xtask stress` found: an rrc killed in
//! the middle of a command leaves state that `state`/`list` read and that
//! `delete -f` removes completely.

use std::process::Stdio;
use std::time::{Duration, Instant};

use rr_tests::{require_env, stderr, unique_id, TestEnv};

/// `state` shows the container or says it does not exist; `delete -f`
/// then leaves nothing.
fn consistent_then_clean(env: &TestEnv, id: &str, what: &str) {
    let s = env.rrc(&["state", id]);
    if s.status.success() {
        let v: serde_json::Value = serde_json::from_slice(&s.stdout)
            .unwrap_or_else(|e| panic!("{what}: state is not JSON: {e}"));
        assert_eq!(v["id"], id, "{what}");
    } else {
        assert!(
            stderr(&s).contains("does not exist"),
            "{what}: {}",
            stderr(&s)
        );
    }
    let l = env.rrc(&["list", "--format", "json"]);
    assert!(l.status.success(), "{what}: list: {}", stderr(&l));
    let d = env.rrc(&["delete", "-f", id]);
    assert!(d.status.success(), "{what}: delete -f: {}", stderr(&d));
    let left = env.leftovers(id);
    assert!(left.is_empty(), "{what}: leftovers {left:?}");
}

/// Found by the stress run: a create killed after the init reported ready
/// but before state.json was written left the init blocked on exec.fifo
/// forever, with nothing recording it. Now the init waits for the runtime's
/// "saved" and exits without it, holding the state lock until then.
#[test]
fn create_killed_at_any_moment_leaves_nothing() {
    require_env!();
    let env = TestEnv::new(&["sleep", "600"]);
    let b = env.bundle.display().to_string();
    let id = unique_id("measure");
    let t = Instant::now();
    let o = env.rrc(&["create", "-b", &b, &id]);
    let took = t.elapsed();
    assert!(o.status.success(), "{}", stderr(&o));
    consistent_then_clean(&env, &id, "unkilled");
    const STEPS: u32 = 40;
    for k in 0..=STEPS {
        let id = unique_id("killcreate");
        let mut child = env
            .rrc_cmd(&["create", "-b", &b, &id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(took * k / STEPS);
        let _ = child.kill();
        let _ = child.wait();
        consistent_then_clean(&env, &id, &format!("killed after {:?}", took * k / STEPS));
    }
}

/// A state dir without state.json (a create killed between mkdir and the
/// first save): invisible to state and list, removed by delete.
#[test]
fn state_dir_without_state_file() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    for force in [true, false] {
        let id = unique_id("nostate");
        std::fs::create_dir_all(env.root.join(&id)).expect("mkdir");
        std::fs::write(env.root.join(&id).join("state-123.tmp"), b"{\"id\":").expect("tmp");
        let s = env.rrc(&["state", &id]);
        assert!(stderr(&s).contains("does not exist"), "{}", stderr(&s));
        let l = env.rrc(&["list", "-q"]);
        assert!(!String::from_utf8_lossy(&l.stdout).contains(&id));
        let args: Vec<&str> = if force {
            vec!["delete", "-f", &id]
        } else {
            vec!["delete", &id]
        };
        let d = env.rrc(&args);
        assert!(d.status.success(), "{args:?}: {}", stderr(&d));
        assert!(env.leftovers(&id).is_empty());
    }
}

/// A start killed after it opened exec.fifo lets the process run: the
/// container must then read as running, not created (the fifo goes as soon
/// as start has opened it).
#[test]
fn start_killed_midway_never_reads_created_while_running() {
    require_env!();
    let env = TestEnv::new(&["sleep", "600"]);
    let b = env.bundle.display().to_string();
    for k in 0..20u64 {
        let id = unique_id("killstart");
        let o = env.rrc(&["create", "-b", &b, &id]);
        assert!(o.status.success(), "{}", stderr(&o));
        let mut child = env
            .rrc_cmd(&["start", &id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_micros(k * 250));
        let _ = child.kill();
        let _ = child.wait();
        // Give an exec'ing init a moment to leave rrc's image behind.
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let st = env.state(&id);
            let pid = st["pid"].as_i64().unwrap_or(0);
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            let execd = exe.file_name().is_some_and(|n| n == "busybox");
            if st["status"] == "created" {
                assert!(!execd, "k={k}: status created while the process runs");
            }
            if st["status"] != "created" || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        consistent_then_clean(&env, &id, &format!("start killed after {} us", k * 250));
    }
}

/// A `restore` killed while CRIU ran leaves the bundle's rootfs bound at
/// `<state dir>/criu-root`. `delete -f` must detach it before removing the
/// state dir, with or without state.json: removing the tree through the
/// bind would delete the rootfs's files.
#[test]
fn delete_never_removes_through_a_mount_in_the_state_dir() {
    require_env!();
    let env = TestEnv::new(&["sleep", "600"]);
    let b = env.bundle.display().to_string();
    let rootfs = env.bundle.join("rootfs");
    for with_state in [true, false] {
        let id = unique_id("bound");
        let dir = env.root.join(&id);
        if with_state {
            let o = env.rrc(&["create", "-b", &b, &id]);
            assert!(o.status.success(), "{}", stderr(&o));
        } else {
            std::fs::create_dir_all(&dir).expect("mkdir");
        }
        let bind = dir.join("criu-root");
        std::fs::create_dir(&bind).expect("mkdir criu-root");
        let st = std::process::Command::new("mount")
            .args(["--bind"])
            .arg(&rootfs)
            .arg(&bind)
            .status()
            .expect("mount");
        assert!(st.success());
        let d = env.rrc(&["delete", "-f", &id]);
        assert!(d.status.success(), "delete -f: {}", stderr(&d));
        assert!(
            rootfs.join("bin").join("busybox").exists(),
            "with_state={with_state}: delete removed the rootfs's files through the bind"
        );
        let left = env.leftovers(&id);
        assert!(left.is_empty(), "with_state={with_state}: {left:?}");
    }
}
