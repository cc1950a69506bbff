//! The catalogue of malformed bundles: each gives its expected error (or,
//! where runc accepts the bundle, works safely) and leaves nothing behind.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use rr_tests::{require_env, stderr, stdout, unique_id, TestEnv};
use serde_json::{json, Value};

/// `rrc create` fails, its error has every needle, and nothing is left.
fn create_fails(env: &TestEnv, prefix: &str, needles: &[&str]) {
    let id = unique_id(prefix);
    let out = env.rrc_bundle("create", &[&id]);
    let err = stderr(&out);
    assert!(!out.status.success(), "create {id} should fail");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "error for {prefix} lacks {n:?}: {err}");
    }
    let left = env.leftovers(&id);
    assert!(left.is_empty(), "{prefix}: leftovers {left:?}");
}

fn push_mount(c: &mut Value, m: Value) {
    c["mounts"].as_array_mut().expect("mounts").push(m);
}

/// Runs `rrc run` to its end, killing it after `limit` so that a hang is a
/// failure rather than a stuck suite. The limit only catches hangs.
fn run_bounded(env: &TestEnv, id: &str, limit: Duration) -> Output {
    let b = env.bundle.display().to_string();
    let dir = env.dir.path();
    let (o, e) = (dir.join(format!("{id}.out")), dir.join(format!("{id}.err")));
    let mut child = env
        .rrc_cmd(&["run", "-b", &b, id])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).expect("out file"))
        .stderr(std::fs::File::create(&e).expect("err file"))
        .spawn()
        .expect("spawn rrc run");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let _ = env.rrc(&["delete", "-f", id]);
            panic!("rrc run {id} still running after {limit:?}: hang");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: std::fs::read(&o).unwrap_or_default(),
        stderr: std::fs::read(&e).unwrap_or_default(),
    }
}

#[test]
fn rootfs_symlink_to_host_root() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    std::fs::rename(env.bundle.join("rootfs"), env.bundle.join("real")).expect("rename");
    std::os::unix::fs::symlink("/", env.bundle.join("rootfs")).expect("symlink");
    create_fails(&env, "rootsym", &["root.path", "symlink"]);
}

#[test]
fn rootfs_missing() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    std::fs::remove_dir_all(env.bundle.join("rootfs")).expect("rm rootfs");
    create_fails(&env, "norootfs", &["root.path", "rootfs"]);
}

#[test]
fn dotdot_in_mount_destination() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    env.edit_config(|c| {
        push_mount(
            c,
            json!({"destination": "/mnt/../../../etc", "type": "tmpfs", "source": "tmpfs"}),
        )
    });
    create_fails(&env, "dotdot", &["mounts[", "destination", ".."]);
}

/// runc resolves a mount destination inside the rootfs even through an
/// absolute symlink (securejoin): the mount lands inside, and the host path
/// the link names is never touched.
#[test]
fn mount_destination_symlink_escaping_rootfs_lands_inside() {
    require_env!();
    let env = TestEnv::new(&["sh", "-c", "echo inside > /escape/written && ls /escape"]);
    let host = env.dir.path().join("host-target");
    std::fs::create_dir(&host).expect("mkdir");
    std::fs::write(host.join("marker"), "host").expect("marker");
    std::os::unix::fs::symlink(&host, env.bundle.join("rootfs/escape")).expect("symlink");
    env.edit_config(|c| {
        c["root"]["readonly"] = false.into();
        push_mount(
            c,
            json!({"destination": "/escape", "type": "tmpfs", "source": "tmpfs"}),
        )
    });
    let id = unique_id("escape");
    let out = env.rrc_bundle("run", &[&id]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The container saw its own empty tmpfs, not the host's directory.
    assert!(!stdout(&out).contains("marker"), "{}", stdout(&out));
    let names: Vec<_> = std::fs::read_dir(&host)
        .expect("host dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("marker")],
        "host dir changed"
    );
    assert_eq!(
        std::fs::read_to_string(host.join("marker")).expect("marker"),
        "host"
    );
    let left = env.leftovers(&id);
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn ten_thousand_mounts() {
    require_env!();
    let env = TestEnv::new(&["sh", "-c", "grep -c ' /m/' /proc/self/mountinfo"]);
    env.edit_config(|c| {
        for i in 0..10_000 {
            push_mount(c, json!({"destination": format!("/m/{i}"), "type": "tmpfs", "source": "tmpfs", "options": ["size=4k"]}));
        }
    });
    let id = unique_id("manymounts");
    let started = Instant::now();
    let out = run_bounded(&env, &id, Duration::from_secs(600));
    let err = stderr(&out);
    eprintln!(
        "10,000 mounts: {:?}, exit {:?}",
        started.elapsed(),
        out.status.code()
    );
    if out.status.success() {
        assert_eq!(stdout(&out).trim(), "10000", "{err}");
    } else {
        // A clear refusal: it names the mount (or the limit) that failed.
        assert!(
            err.contains("mounts[") || err.contains("mount"),
            "unclear: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    let left = env.leftovers(&id);
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn one_megabyte_environment() {
    require_env!();
    // 16 variables of 64 KiB: within the kernel's 128 KiB per string.
    let env = TestEnv::new(&["sh", "-c", "echo ${#V0} ${#V15}"]);
    let big = "x".repeat(64 * 1024);
    env.edit_config(|c| {
        let e = c["process"]["env"].as_array_mut().expect("env");
        for i in 0..16 {
            e.push(Value::from(format!("V{i}={big}")));
        }
    });
    let id = unique_id("bigenv");
    let out = env.rrc_bundle("run", &[&id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "65536 65536");
    assert!(env.leftovers(&id).is_empty());

    // One 1 MiB string is more than execve takes: refused at create, by name.
    let env = TestEnv::new(&["true"]);
    env.edit_config(|c| {
        c["process"]["env"]
            .as_array_mut()
            .expect("env")
            .push(Value::from(format!("HUGE={}", "y".repeat(1 << 20))))
    });
    create_fails(&env, "hugeenv", &["process.env[", "131071"]);
}

#[test]
fn uid_map_overlapping_itself() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    env.edit_config(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .expect("ns")
            .push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([
            {"containerID": 0, "hostID": 100000, "size": 1000},
            {"containerID": 500, "hostID": 300000, "size": 10}
        ]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 1000}]);
    });
    create_fails(&env, "overlap", &["linux.uidMappings", "overlap"]);
}

#[test]
fn unknown_oci_version_major() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    env.edit_config(|c| c["ociVersion"] = "2.0.0".into());
    create_fails(&env, "ociver", &["ociVersion", "2.0.0"]);
}

#[test]
fn device_paths_outside_dev() {
    require_env!();
    for path in ["/etc/evil", "/dev/../etc/evil", "/tmp/null"] {
        let env = TestEnv::new(&["true"]);
        env.edit_config(|c| {
            c["linux"]["devices"] = json!([{"path": path, "type": "c", "major": 1, "minor": 3}]);
        });
        create_fails(&env, "devpath", &["linux.devices[0].path", path]);
        assert!(!Path::new("/etc/evil").exists());
    }
}

/// Whether this rrc runs hooks: a createRuntime hook that touches a file.
fn hooks_run(env: &TestEnv) -> bool {
    let flag = env.dir.path().join("hook-ran");
    env.edit_config(|c| {
        c["hooks"] = json!({"createRuntime": [
            {"path": "/bin/sh", "args": ["sh", "-c", format!("touch {}", flag.display())]}
        ]});
    });
    let id = unique_id("hookprobe");
    let _ = env.rrc_bundle("run", &[&id]);
    let _ = env.rrc(&["delete", "-f", &id]);
    flag.exists()
}

#[test]
fn hanging_hooks_time_out() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    if !hooks_run(&env) {
        eprintln!("SKIPPED: this rrc ignores hooks (a createRuntime hook did not run)");
        return;
    }
    for kind in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
    ] {
        env.edit_config(|c| {
            c["hooks"] =
                json!({kind: [{"path": "/bin/sleep", "args": ["sleep", "3600"], "timeout": 1}]});
        });
        let id = unique_id("hookhang");
        let out = run_bounded(&env, &id, Duration::from_secs(120));
        let err = stderr(&out);
        assert!(
            !out.status.success(),
            "{kind}: a hanging hook must fail the run"
        );
        assert!(
            err.contains("timed out") || err.contains("timeout"),
            "{kind}: {err}"
        );
        let _ = env.rrc(&["delete", "-f", &id]);
        let left = env.leftovers(&id);
        assert!(left.is_empty(), "{kind}: {left:?}");
    }
}
