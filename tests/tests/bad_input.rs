//! Bad input to `rrc create`/`run`: each gives a clear error naming what is
//! wrong, and leaves no state dir, mount or process behind.

use rr_tests::{require_env, stderr, unique_id, TestEnv};
use serde_json::json;

/// Runs `rrc create` and checks it fails with every `needles` in stderr and
/// leaves nothing behind.
fn create_fails(env: &TestEnv, id: &str, needles: &[&str]) {
    let out = env.rrc_bundle("create", &[id]);
    assert!(!out.status.success(), "create {id} should fail");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    for n in needles {
        assert!(err.contains(n), "error for {id} lacks {n:?}: {err}");
    }
    let out = env.rrc(&["state", id]);
    assert!(!out.status.success(), "state of failed {id} exists");
    env.assert_no_leftovers(id);
}

#[test]
fn missing_bundle() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    let id = unique_id("nobundle");
    let out = env.rrc(&["create", "-b", "/nonexistent/bundle", &id]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("/nonexistent/bundle"),
        "{}",
        stderr(&out)
    );
    env.assert_no_leftovers(&id);
}

#[test]
fn missing_config() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    std::fs::remove_file(env.config_path()).expect("rm");
    create_fails(
        &env,
        &unique_id("noconfig"),
        &["config.json", "no such file"],
    );
}

#[test]
fn malformed_json_says_where() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    std::fs::write(
        env.config_path(),
        "{\n  \"ociVersion\": \"1.0.2\",\n  \"process\": {,\n}\n",
    )
    .expect("write");
    create_fails(&env, &unique_id("badjson"), &["config.json", "line 3"]);
}

#[test]
fn missing_and_empty_args() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    env.edit_config(|c| {
        c["process"].as_object_mut().map(|p| p.remove("args"));
    });
    create_fails(&env, &unique_id("noargs"), &["process.args", "missing"]);
    env.edit_config(|c| c["process"]["args"] = json!([]));
    create_fails(&env, &unique_id("emptyargs"), &["process.args", "empty"]);
}

#[test]
fn missing_executable_fails_at_create() {
    require_env!();
    let env = TestEnv::new(&["/bin/no-such-program", "x"]);
    create_fails(&env, &unique_id("noexe"), &["/bin/no-such-program"]);
    let env = TestEnv::new(&["no-such-program"]);
    create_fails(
        &env,
        &unique_id("noexe2"),
        &["no-such-program", "not found"],
    );
    // run reports it the same way.
    let id = unique_id("noexe3");
    let out = env.rrc_bundle("run", &[&id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no-such-program"), "{}", stderr(&out));
    env.assert_no_leftovers(&id);
}

#[test]
fn invalid_ids() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    for id in [
        "..",
        ".",
        "a/b",
        "../escape",
        "",
        "sp ace",
        &"x".repeat(2000),
    ] {
        let out = env.rrc_bundle("create", &[id]);
        assert!(!out.status.success(), "id {id:?} accepted");
        assert!(
            stderr(&out).to_lowercase().contains("id"),
            "{id:?}: {}",
            stderr(&out)
        );
    }
    assert!(!env.dir.path().join("escape").exists());
    let entries: Vec<_> = std::fs::read_dir(&env.root)
        .map(|d| d.collect())
        .unwrap_or_default();
    assert!(entries.is_empty(), "state root not empty: {entries:?}");
}

#[test]
fn duplicate_id() {
    require_env!();
    let env = TestEnv::new(&["sleep", "100"]);
    let id = unique_id("dup");
    assert!(env.rrc_bundle("create", &[&id]).status.success());
    let pid = env.state(&id)["pid"].clone();
    let out = env.rrc_bundle("create", &[&id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("exists"), "{}", stderr(&out));
    // The first container is untouched.
    let st = env.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["pid"], pid);
    assert!(env.rrc(&["delete", "-f", &id]).status.success());
    env.assert_no_leftovers(&id);
}

#[test]
fn missing_rootfs() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    env.edit_config(|c| c["root"]["path"] = "no-such-rootfs".into());
    create_fails(
        &env,
        &unique_id("norootfs"),
        &["root.path", "no-such-rootfs"],
    );
}

#[test]
fn unknown_namespace_type() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    env.edit_config(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .expect("ns")
            .push(json!({"type": "bogusns"}));
    });
    create_fails(&env, &unique_id("badns"), &["config.json", "bogusns"]);
}

#[test]
fn bind_mount_source_missing() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    env.edit_config(|c| {
        c["mounts"].as_array_mut().expect("mounts").push(json!({
            "destination": "/data", "type": "bind", "source": "/nonexistent/source/dir", "options": ["rbind"]
        }));
    });
    create_fails(
        &env,
        &unique_id("nosrc"),
        &["mounts[", "/nonexistent/source/dir"],
    );
}

#[test]
fn mount_destination_with_dotdot() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    env.edit_config(|c| {
        c["mounts"].as_array_mut().expect("mounts").push(json!({
            "destination": "/tmp/../../etc", "type": "tmpfs", "source": "tmpfs"
        }));
    });
    create_fails(&env, &unique_id("dotdot"), &["destination", ".."]);
}

#[test]
fn namespace_path_that_does_not_exist() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    env.edit_config(|c| {
        for n in c["linux"]["namespaces"].as_array_mut().expect("ns") {
            if n["type"] == "network" {
                n["path"] = "/proc/999999999/ns/net".into();
            }
        }
    });
    create_fails(&env, &unique_id("nspath"), &["/proc/999999999/ns/net"]);
}

#[test]
fn symlinked_mount_target_stays_in_rootfs() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    let outside = env.dir.path().join("outside");
    std::fs::create_dir(&outside).expect("mkdir");
    std::os::unix::fs::symlink(&outside, env.bundle.join("rootfs/escape")).expect("symlink");
    env.edit_config(|c| {
        c["mounts"].as_array_mut().expect("mounts").push(json!({
            "destination": "/escape", "type": "tmpfs", "source": "tmpfs"
        }));
    });
    let id = unique_id("symlink");
    let out = env.rrc_bundle("run", &[&id]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The tmpfs went to <rootfs>/<outside path>, never onto the host dir.
    let inside = env
        .bundle
        .join("rootfs")
        .join(outside.strip_prefix("/").expect("abs"));
    assert!(inside.is_dir(), "target not created inside the rootfs");
    env.assert_no_leftovers(&id);
}
