//! Known runtime escapes, each attempted from inside a container.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use rr_tests::{require_env, rrc_bin, stderr, stdout, unique_id, TestEnv};
use serde_json::json;

fn wait_for(path: &Path) -> bool {
    // A guard against hanging forever, not a timing assertion.
    for _ in 0..2400 {
        if path.exists() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    false
}

/// CVE-2019-5736 class: a container process holds /proc/<pid>/exe of an rrc
/// process it can see (the init waiting for `start`), waits until no rrc
/// runs, and writes through the held file. The host binary must not change.
#[test]
fn container_cannot_overwrite_the_runtime_binary() {
    require_env!();
    let env = TestEnv::new(&["sleep", "1000"]);
    // The script reports through a file in the rootfs.
    env.edit_config(|c| c["root"]["readonly"] = json!(false));
    // A private copy, so that a failure does not break the other tests.
    let rrc = env.dir.path().join("rrc-copy");
    std::fs::copy(rrc_bin(), &rrc).expect("copy rrc");
    let before = std::fs::read(&rrc).expect("read rrc");
    let run = |args: &[&str]| -> Output {
        let mut c = Command::new(&rrc);
        c.arg("--root").arg(&env.root).args(args);
        rr_tests::detached(c)
    };
    let rootfs = env.bundle.join("rootfs");
    std::fs::write(
        rootfs.join("attack.sh"),
        r#"log=/attack.log
for p in /proc/[0-9]*; do
  pid=${p#/proc/}
  [ "$pid" = "$$" ] && continue
  if (echo x > /proc/$pid/exe) 2>/dev/null; then echo "direct-write-ok $pid" >> $log; fi
done
# A failed redirection on `exec` would end the shell: try it in a subshell.
if (exec 3</proc/1/exe) 2>/dev/null; then exec 3</proc/1/exe; echo open-ok >> $log; else echo open-denied >> $log; fi
while [ ! -e /go ]; do sleep 0.05; done
if (echo pwned >/proc/self/fd/3) 2>/dev/null; then echo held-write-ok >> $log; else echo held-write-denied >> $log; fi
touch /done
"#,
    )
    .expect("write script");
    let id = unique_id("cve-2019-5736");
    let b = env.bundle.to_str().unwrap_or(".").to_string();
    let out = run(&["create", "-b", &b, &id]);
    assert!(out.status.success(), "create: {}", stderr(&out));
    // The init is an rrc process waiting for start: pid 1 in the container.
    let out = run(&["exec", "-d", &id, "sh", "/attack.sh"]);
    assert!(out.status.success(), "exec: {}", stderr(&out));
    // Once the attacker has tried pid 1, start the container: the init
    // becomes `sleep`, and no rrc process runs any more.
    let log = rootfs.join("attack.log");
    assert!(wait_for(&log), "the attack script did not run");
    let out = run(&["start", &id]);
    assert!(out.status.success(), "start: {}", stderr(&out));
    std::fs::write(rootfs.join("go"), "").expect("go");
    assert!(
        wait_for(&rootfs.join("done")),
        "the attack script did not finish"
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let after = std::fs::read(&rrc).expect("read rrc");
    assert!(
        before == after,
        "the host rrc binary was changed; log: {text}"
    );
    assert!(text.contains("open-denied"), "log: {text}");
    assert!(!text.contains("write-ok"), "log: {text}");
    let out = run(&["delete", "-f", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    env.assert_no_leftovers(&id);
}

/// Runs rrc with a host directory open (without close-on-exec) as fd 7, as
/// a careless caller might leak one.
fn rrc_with_leaked_dir(env: &TestEnv, args: &[&str]) -> Output {
    rrc_with_leaked_dir_to(env, args, Stdio::piped())
}

/// As [`rrc_with_leaked_dir`], with the given stdout (a file for `create`,
/// whose init keeps its stdout open).
fn rrc_with_leaked_dir_to(env: &TestEnv, args: &[&str], out: Stdio) -> Output {
    rrc_with_leaked_dir_io(env, args, out, Stdio::piped())
}

fn rrc_with_leaked_dir_io(env: &TestEnv, args: &[&str], out: Stdio, err: Stdio) -> Output {
    let dir = std::fs::File::open(env.dir.path()).expect("open dir");
    let raw = std::os::fd::AsRawFd::as_raw_fd(&dir);
    let mut cmd = env.rrc_cmd(args);
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    // SAFETY: dup2 is async-signal-safe; it runs in the forked child.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().expect("spawn rrc");
    drop(dir);
    out
}

/// No pipeline: while the shell sets one up it holds the pipe's ends
/// itself, and `ls` could list them as the shell's fds.
const FD_SCRIPT: &str = "ls /proc/$$/fd; echo cwd; readlink /proc/$$/cwd";

fn check_fds(out: &Output, what: &str) {
    assert!(out.status.success(), "{what}: {}", stderr(out));
    check_fd_text(&stdout(out), what);
}

/// `FD_SCRIPT`'s output: the fds, one per line, then `cwd` and the cwd.
fn check_fd_text(text: &str, what: &str) {
    let lines: Vec<&str> = text.lines().collect();
    let split = lines.iter().position(|l| *l == "cwd");
    let fds = &lines[..split.unwrap_or(lines.len())];
    assert_eq!(fds, ["0", "1", "2"], "{what}: fds seen: {text}");
    let cwd = split.and_then(|i| lines.get(i + 1)).copied();
    assert_eq!(cwd, Some("/"), "{what}: cwd: {text}");
}

/// CVE-2024-21626 class: no host fd reaches the container process, its cwd
/// is inside the container, and a cwd through a leaked fd is refused.
#[test]
fn no_host_fd_or_cwd_reaches_the_container() {
    require_env!();
    let env = TestEnv::new(&["sh", "-c", FD_SCRIPT]);
    let b = env.bundle.to_str().unwrap_or(".").to_string();
    let id = unique_id("fds");
    check_fds(&rrc_with_leaked_dir(&env, &["run", "-b", &b, &id]), "run");
    env.assert_no_leftovers(&id);

    // The same through create and start, the process's stdout a file.
    let log = env.dir.path().join("out.log");
    let f = std::fs::File::create(&log).expect("log");
    let errf = f.try_clone().expect("dup log");
    let out = rrc_with_leaked_dir_io(&env, &["create", "-b", &b, &id], f.into(), errf.into());
    assert!(out.status.success(), "{}", stderr(&out));
    let out = env.rrc(&["start", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    for _ in 0..2400 {
        if env.state(&id)["status"] == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let _ = env.rrc(&["delete", "-f", &id]);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    check_fd_text(&text, "create/start");
    env.assert_no_leftovers(&id);

    env.edit_config(|c| c["process"]["args"] = json!(["sleep", "1000"]));
    let id = unique_id("fds-exec");
    let out = env.rrc_detached(&["run", "-b", &b, "-d", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = rrc_with_leaked_dir(&env, &["exec", &id, "sh", "-c", FD_SCRIPT]);
    check_fds(&out, "exec");
    let out = rrc_with_leaked_dir(&env, &["exec", "--cwd", "/proc/self/fd/7", &id, "pwd"]);
    assert!(
        !out.status.success(),
        "exec with a cwd through a leaked fd ran: {}",
        stdout(&out)
    );
    let _ = env.rrc(&["delete", "-f", &id]);
    env.assert_no_leftovers(&id);

    env.edit_config(|c| {
        c["process"]["args"] = json!(["pwd"]);
        c["process"]["cwd"] = json!("/proc/self/fd/7");
    });
    let id = unique_id("fds-cwd");
    let out = rrc_with_leaked_dir(&env, &["run", "-b", &b, &id]);
    assert!(
        !out.status.success(),
        "a cwd through a leaked fd ran: {}",
        stdout(&out)
    );
    env.assert_no_leftovers(&id);
}

/// CVE-2021-30465 class: a mount destination reached through a chain of
/// symlinks (a parent directory that links to a link to a host path) lands
/// inside the rootfs.
#[test]
fn mount_through_symlinked_parents_stays_in_rootfs() {
    require_env!();
    let env = TestEnv::new(&["sh", "-c", "grep -c ' /p/x ' /proc/self/mountinfo; true"]);
    let outside: PathBuf = env.dir.path().join("host-path");
    std::fs::create_dir(&outside).expect("mkdir");
    let rootfs = env.bundle.join("rootfs");
    std::os::unix::fs::symlink("q", rootfs.join("p")).expect("symlink p");
    std::os::unix::fs::symlink(&outside, rootfs.join("q")).expect("symlink q");
    env.edit_config(|c| {
        c["mounts"].as_array_mut().expect("mounts").push(json!({
            "destination": "/p/x", "type": "tmpfs", "source": "tmpfs"
        }));
    });
    let id = unique_id("symlink-chain");
    let out = env.rrc_bundle("run", &[&id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!outside.join("x").exists(), "mount target made on the host");
    let inside = rootfs
        .join(outside.strip_prefix("/").expect("abs"))
        .join("x");
    assert!(inside.is_dir(), "target not made inside the rootfs");
    env.assert_no_leftovers(&id);
}

/// procfs and sysfs are never mounted over a symlink.
#[test]
fn proc_and_sys_never_mounted_on_a_symlink() {
    require_env!();
    for (dir, typ) in [("proc", "proc"), ("sys", "sysfs")] {
        let env = TestEnv::new(&["true"]);
        let rootfs = env.bundle.join("rootfs");
        std::fs::remove_dir(rootfs.join(dir)).expect("rmdir");
        std::os::unix::fs::symlink("/tmp", rootfs.join(dir)).expect("symlink");
        let id = unique_id("proc-link");
        let out = env.rrc_bundle("create", &[&id]);
        assert!(!out.status.success(), "{typ} mounted over a symlink");
        let err = stderr(&out);
        assert!(err.contains(typ) && err.contains("symlink"), "{err}");
        env.assert_no_leftovers(&id);
    }
}

/// A container id never names a path outside the state root, whatever the
/// command.
#[test]
fn ids_cannot_leave_the_state_root() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    let victim = env.dir.path().join("victim");
    std::fs::create_dir(&victim).expect("mkdir");
    std::fs::write(victim.join("state.json"), "{}").expect("write");
    for args in [
        vec!["state", "../victim"],
        vec!["delete", "-f", "../victim"],
        vec!["kill", "../victim", "KILL"],
        vec!["exec", "../victim", "true"],
        vec!["start", "../victim"],
    ] {
        let out = env.rrc(&args);
        assert!(!out.status.success(), "{args:?} accepted");
        let err = stderr(&out).to_lowercase();
        assert!(err.contains("id"), "{args:?}: {err}");
    }
    assert!(
        victim.join("state.json").exists(),
        "a file outside the root was removed"
    );
}
