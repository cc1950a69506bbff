//! Rootless: a non-root user runs the busybox bundle from `rrc spec
//! --rootless`, with its state under $XDG_RUNTIME_DIR/rrc, and is root in
//! the container's user namespace.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use rr_tests::{require_env, rrc_bin, stderr, stdout, unique_id, TestEnv};
use serde_json::json;

const USER: &str = "rr-rootless-test";

fn tool(name: &str) -> Option<String> {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| format!("{d}/{name}"))
        .find(|p| Path::new(p).exists())
}

fn uid_of(user: &str) -> Option<u32> {
    id_of("-u", user)
}

fn id_of(flag: &str, user: &str) -> Option<u32> {
    let out = Command::new("id").arg(flag).arg(user).output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// The test user, created on first use.
fn test_user(useradd: &str) -> Option<u32> {
    if let Some(uid) = uid_of(USER) {
        return Some(uid);
    }
    let out = Command::new(useradd)
        .args(["-M", "-s", "/bin/sh", USER])
        .output()
        .ok()?;
    if !out.status.success() && uid_of(USER).is_none() {
        eprintln!("useradd {USER}: {}", stderr(&out));
        return None;
    }
    uid_of(USER)
}

fn chown_r(path: &Path, (uid, gid): (u32, u32)) {
    let out = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{gid}"))
        .arg(path)
        .output()
        .expect("chown");
    assert!(out.status.success(), "chown: {}", stderr(&out));
}

#[test]
fn non_root_user_runs_the_rootless_spec() {
    require_env!();
    // A user made by useradd here; the e2e VM's /etc/passwd has it already.
    let Some(uid) = uid_of(USER).or_else(|| tool("useradd").and_then(|u| test_user(&u))) else {
        panic!("no user {USER}, and useradd could not make one");
    };
    let gid = id_of("-g", USER).unwrap_or(uid);
    let env = TestEnv::new(&["true"]);
    let rrc = env.dir.path().join("rrc");
    std::fs::copy(rrc_bin(), &rrc).expect("copy rrc");
    let xdg = env.dir.path().join("xdg");
    std::fs::create_dir(&xdg).expect("mkdir xdg");
    std::fs::remove_file(env.config_path()).expect("rm config");
    chown_r(env.dir.path(), (uid, gid));
    // Not runuser: the VM has no PAM. std drops the supplementary groups
    // when it changes the uid of a root parent.
    let user_cmd = |args: &[&str]| -> Command {
        let mut c = Command::new(&rrc);
        c.args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("XDG_RUNTIME_DIR", &xdg)
            .uid(uid)
            .gid(gid)
            .current_dir(&env.bundle);
        c
    };
    let as_user = |args: &[&str]| -> Output {
        user_cmd(args)
            .stdin(Stdio::null())
            .output()
            .expect("spawn rrc as the test user")
    };
    let out = as_user(&["spec", "--rootless"]);
    assert!(out.status.success(), "spec: {}", stderr(&out));
    env.edit_config(|c| {
        c["process"]["terminal"] = json!(false);
        c["process"]["args"] = json!(["sh", "-c", "id -u; cat /proc/self/uid_map"]);
    });
    chown_r(&env.config_path(), (uid, gid));

    let id = unique_id("rootless");
    let out = as_user(&["run", &id]);
    assert!(out.status.success(), "run: {}", stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("0"), "{text}");
    let map: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(map, ["0", &uid.to_string(), "1"], "{text}");
    assert!(!xdg.join("rrc").join(&id).exists(), "state left behind");

    // Detached, then exec as the same user.
    env.edit_config(|c| c["process"]["args"] = json!(["sleep", "1000"]));
    let out = rr_tests::detached(user_cmd(&["run", "-d", &id]));
    assert!(out.status.success(), "run -d: {}", stderr(&out));
    assert!(
        xdg.join("rrc").join(&id).join("state.json").exists(),
        "state not under XDG_RUNTIME_DIR/rrc"
    );
    let out = as_user(&["exec", &id, "id", "-u"]);
    assert!(out.status.success(), "exec: {}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "0");
    let out = as_user(&["delete", "-f", &id]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    assert!(!xdg.join("rrc").join(&id).exists(), "state left behind");
    let left = rr_tests::processes_mentioning(&id);
    assert!(left.is_empty(), "processes left: {left:?}");

    // Several ranges: the user's own id plus its /etc/subuid range, which
    // only newuidmap/newgidmap may write for an unprivileged caller.
    let Some(sub) = subid_range("/etc/subuid") else {
        panic!("useradd gave {USER} no /etc/subuid range");
    };
    let Some(subg) = subid_range("/etc/subgid") else {
        panic!("useradd gave {USER} no /etc/subgid range");
    };
    env.edit_config(|c| {
        c["process"]["args"] = json!(["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map"]);
        c["linux"]["uidMappings"] = json!([
            {"containerID": 0, "hostID": uid, "size": 1},
            {"containerID": 1, "hostID": sub.0, "size": sub.1}
        ]);
        c["linux"]["gidMappings"] = json!([
            {"containerID": 0, "hostID": gid, "size": 1},
            {"containerID": 1, "hostID": subg.0, "size": subg.1}
        ]);
    });
    let out = as_user(&["run", &id]);
    assert!(
        out.status.success(),
        "run with subid ranges: {}",
        stderr(&out)
    );
    let text = stdout(&out);
    let rows: Vec<Vec<String>> = text
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    let want = |a: u32, b: u32, c: u32| vec![a.to_string(), b.to_string(), c.to_string()];
    assert_eq!(
        rows,
        [
            want(0, uid, 1),
            want(1, sub.0, sub.1),
            want(0, gid, 1),
            want(1, subg.0, subg.1)
        ],
        "{text}"
    );
    assert!(!xdg.join("rrc").join(&id).exists(), "state left behind");
}

/// The test user's `(start, count)` in a subordinate id file.
fn subid_range(file: &str) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        if f.next()? != USER {
            return None;
        }
        Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
    })
}
