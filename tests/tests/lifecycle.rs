//! The container lifecycle through the real `rrc` binary, as root, on the
//! real kernel.

use std::os::fd::AsRawFd;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rr_tests::{require_env, stderr, stdout, unique_id, TestEnv};
use serde_json::Value;

fn wait_status(env: &TestEnv, id: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = env.state(id);
        if st["status"] == want || Instant::now() > deadline {
            return st;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pid_gone(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z')),
    }
}

#[test]
fn run_echo_hello_prints_and_cleans_up() {
    require_env!();
    let env = TestEnv::new(&["echo", "hello"]);
    let id = unique_id("hello");
    let out = env.rrc_bundle("run", &[&id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hello\n");
    env.assert_no_leftovers(&id);
}

#[test]
fn run_propagates_exit_code() {
    require_env!();
    let env = TestEnv::new(&["sh", "-c", "exit 3"]);
    let id = unique_id("exit");
    let out = env.rrc_bundle("run", &[&id]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    env.assert_no_leftovers(&id);
}

#[test]
fn run_keep_leaves_a_stopped_container() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    let id = unique_id("keep");
    let out = env.rrc_bundle("run", &["--keep", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let st = env.state(&id);
    assert_eq!(st["status"], "stopped");
    assert_eq!(st["pid"], 0);
    let out = env.rrc(&["delete", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    env.assert_no_leftovers(&id);
}

#[test]
fn container_is_isolated() {
    require_env!();
    let env = TestEnv::new(&[
        "sh",
        "-c",
        "hostname; echo pid=$$; ps -o pid,args; echo --; cat /proc/self/mountinfo; ls -l /dev/null /dev/fd; cat /proc/sys/kernel/domainname",
    ]);
    env.edit_config(|c| {
        c["hostname"] = "rr-box".into();
        c["domainname"] = "rr-domain".into();
    });
    let id = unique_id("iso");
    let out = env.rrc_bundle("run", &[&id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("rr-box"));
    assert_eq!(lines.next(), Some("pid=1"));
    // ps inside sees only the container's processes.
    // ps prints a header and one row per process, before the mounts.
    let ps: Vec<&str> = text.lines().skip(3).take_while(|l| *l != "--").collect();
    assert!(
        ps.iter().any(|l| l.trim_start().starts_with("1 ")),
        "{text}"
    );
    assert!(ps.len() <= 3, "ps sees host processes: {text}");
    // The rootfs is the root mount; proc, sysfs, tmpfs /dev and devpts are there.
    for m in [
        "/rootfs / ",
        " /proc ",
        " /sys ",
        " /dev ",
        " /dev/pts ",
        " /dev/shm ",
        " /dev/mqueue ",
    ] {
        assert!(text.contains(m), "no {m:?} in mountinfo: {text}");
    }
    assert!(
        text.contains("crw-rw-rw-"),
        "/dev/null is not a char device: {text}"
    );
    assert!(text.contains("/dev/fd -> /proc/self/fd"), "{text}");
    assert!(text.trim_end().ends_with("rr-domain"), "{text}");
    env.assert_no_leftovers(&id);
}

#[test]
fn create_start_state_kill_delete() {
    require_env!();
    let env = TestEnv::new(&["sleep", "100"]);
    let id = unique_id("life");
    let pid_file = env.dir.path().join("init.pid");
    let out = env.rrc_bundle(
        "create",
        &["--pid-file", pid_file.to_str().unwrap_or(""), &id],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let raw = env.rrc(&["state", &id]);
    let text = stdout(&raw);
    let keys = [
        "\"ociVersion\":",
        "\"id\":",
        "\"pid\":",
        "\"status\":",
        "\"bundle\":",
        "\"rootfs\":",
        "\"created\":",
        "\"owner\":",
    ];
    let pos: Vec<usize> = keys
        .iter()
        .map(|k| text.find(k).unwrap_or(usize::MAX))
        .collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "key order: {text}");
    let st: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], id.as_str());
    let pid = st["pid"].as_i64().expect("pid");
    assert!(pid > 0);
    assert_eq!(
        std::fs::read_to_string(&pid_file).expect("pid file"),
        pid.to_string()
    );
    assert_eq!(
        st["bundle"],
        env.bundle
            .canonicalize()
            .expect("bundle")
            .to_str()
            .unwrap_or("")
    );
    assert!(env.root.join(&id).join("exec.fifo").exists());
    // The leftover check must be able to see a waiting init.
    assert_eq!(rr_tests::processes_mentioning(&id), vec![pid as i32]);

    let out = env.rrc(&["start", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env.state(&id)["status"], "running");
    assert!(!env.root.join(&id).join("exec.fifo").exists());
    let again = env.rrc(&["start", &id]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("running"), "{}", stderr(&again));

    let out = env.rrc(&["delete", &id]);
    assert!(
        !out.status.success(),
        "delete of a running container must fail"
    );
    assert!(stderr(&out).contains("not stopped"), "{}", stderr(&out));

    let out = env.rrc(&["kill", &id, "KILL"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(wait_status(&env, &id, "stopped")["status"], "stopped");
    let out = env.rrc(&["kill", &id]);
    assert!(
        !out.status.success(),
        "kill of a stopped container must fail"
    );

    let out = env.rrc(&["delete", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(pid_gone(pid));
    env.assert_no_leftovers(&id);
    let out = env.rrc(&["state", &id]);
    assert!(!out.status.success());
}

#[test]
fn delete_of_created_container_kills_its_init() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    let id = unique_id("created");
    let out = env.rrc_bundle("create", &[&id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pid = env.state(&id)["pid"].as_i64().expect("pid");
    let out = env.rrc(&["delete", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(pid_gone(pid));
    env.assert_no_leftovers(&id);
}

#[test]
fn kill_accepts_names_and_numbers() {
    require_env!();
    for sig in ["TERM", "SIGTERM", "15", "sigterm"] {
        let env = TestEnv::new(&[
            "sh",
            "-c",
            "trap 'exit 7' TERM; while true; do sleep 0.05; done",
        ]);
        let id = unique_id("sig");
        let out = env.rrc_bundle("run", &["-d", &id]);
        assert!(out.status.success(), "{}", stderr(&out));
        std::thread::sleep(Duration::from_millis(150));
        let out = env.rrc(&["kill", &id, sig]);
        assert!(out.status.success(), "{sig}: {}", stderr(&out));
        assert_eq!(
            wait_status(&env, &id, "stopped")["status"],
            "stopped",
            "{sig}"
        );
        assert!(env.rrc(&["delete", &id]).status.success());
        env.assert_no_leftovers(&id);
    }
    let env = TestEnv::new(&["sleep", "10"]);
    let id = unique_id("badsig");
    assert!(env.rrc_bundle("run", &["-d", &id]).status.success());
    let out = env.rrc(&["kill", &id, "SIGNOPE"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("SIGNOPE"), "{}", stderr(&out));
    assert!(env.rrc(&["delete", "-f", &id]).status.success());
    env.assert_no_leftovers(&id);
}

#[test]
fn kill_all_reaches_every_process() {
    require_env!();
    let env = TestEnv::new(&["sh", "-c", "sleep 100 & sleep 100 & wait"]);
    let id = unique_id("killall");
    assert!(env.rrc_bundle("run", &["-d", &id]).status.success());
    std::thread::sleep(Duration::from_millis(200));
    let out = env.rrc(&["kill", "-a", &id, "KILL"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(wait_status(&env, &id, "stopped")["status"], "stopped");
    assert!(env.rrc(&["delete", &id]).status.success());
    env.assert_no_leftovers(&id);
}

#[test]
fn delete_force_kills_a_running_container() {
    require_env!();
    let env = TestEnv::new(&["sleep", "100"]);
    let id = unique_id("force");
    let out = env.rrc_bundle("run", &["-d", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pid = env.state(&id)["pid"].as_i64().expect("pid");
    assert_eq!(env.state(&id)["status"], "running");
    let out = env.rrc(&["delete", "-f", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(pid_gone(pid));
    env.assert_no_leftovers(&id);
    // runc compatibility: a forced delete of a missing container succeeds.
    assert!(env.rrc(&["delete", "-f", &id]).status.success());
    assert!(!env.rrc(&["delete", &id]).status.success());
}

#[test]
fn list_formats() {
    require_env!();
    let env = TestEnv::new(&["sleep", "100"]);
    let a = unique_id("la");
    let b = unique_id("lb");
    assert!(env.rrc_bundle("create", &[&a]).status.success());
    assert!(env.rrc_bundle("run", &["-d", &b]).status.success());
    let q = stdout(&env.rrc(&["list", "-q"]));
    let mut ids: Vec<&str> = q.lines().collect();
    ids.sort();
    let mut want = vec![a.as_str(), b.as_str()];
    want.sort();
    assert_eq!(ids, want);
    let table = stdout(&env.rrc(&["list"]));
    let header = table.lines().next().unwrap_or("");
    for col in ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"] {
        assert!(header.contains(col), "{table}");
    }
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&a) && l.contains("created")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&b) && l.contains("running")),
        "{table}"
    );
    let json: Value =
        serde_json::from_slice(&env.rrc(&["list", "-f", "json"]).stdout).expect("json");
    let arr = json.as_array().expect("array");
    assert_eq!(arr.len(), 2);
    assert!(arr.iter().all(|s| s["owner"] == "root"));
    for id in [&a, &b] {
        assert!(env.rrc(&["delete", "-f", id]).status.success());
        env.assert_no_leftovers(id);
    }
    assert_eq!(stdout(&env.rrc(&["list", "-q"])), "");
}

#[test]
fn no_pivot_runs() {
    require_env!();
    let env = TestEnv::new(&["sh", "-c", "echo ok; ls /"]);
    let id = unique_id("nopivot");
    let out = env.rrc_bundle("run", &["--no-pivot", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("ok\n"));
    env.assert_no_leftovers(&id);
}

#[test]
fn preserve_fds_passes_exactly_those() {
    require_env!();
    let env = TestEnv::new(&["sh", "-c", "cat <&3; ls /proc/self/fd"]);
    let id = unique_id("fds");
    let file = env.dir.path().join("passed");
    std::fs::write(&file, "through fd 3\n").expect("write");
    let f = std::fs::File::open(&file).expect("open");
    let fd = f.as_raw_fd();
    let mut cmd = env.rrc_cmd(&[
        "run",
        "-b",
        env.bundle.to_str().unwrap_or("."),
        "--preserve-fds",
        "1",
        &id,
    ]);
    // SAFETY: dup2 in the forked child before exec, onto fd 3.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // dup2 onto itself keeps FD_CLOEXEC when the file already is fd 3.
            if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.stdin(Stdio::null()).output().expect("spawn");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("through fd 3\n"), "{text}");
    let fds: Vec<&str> = text.lines().skip(1).collect();
    // stdio, fd 3, and the one ls opens for /proc/self/fd.
    assert_eq!(fds, vec!["0", "1", "2", "3", "4"], "{text}");
    env.assert_no_leftovers(&id);
}

#[test]
fn no_host_fd_reaches_the_container() {
    require_env!();
    let env = TestEnv::new(&["ls", "/proc/self/fd"]);
    let id = unique_id("nofds");
    let out = env.rrc_bundle("run", &[&id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let fds: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(fds, vec!["0", "1", "2", "3"], "{fds:?}");
}

#[test]
fn user_env_cwd_and_groups() {
    require_env!();
    let env = TestEnv::new(&["sh", "-c", "id; pwd; echo $GREETING"]);
    env.edit_config(|c| {
        c["process"]["user"] =
            serde_json::json!({"uid": 1000, "gid": 1001, "additionalGids": [2000, 2001]});
        c["process"]["cwd"] = "/tmp".into();
        c["process"]["env"] = serde_json::json!(["PATH=/bin", "GREETING=hi there"]);
    });
    let id = unique_id("user");
    let out = env.rrc_bundle("run", &[&id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    let idline = lines.next().unwrap_or("");
    assert!(idline.starts_with("uid=1000 gid=1001"), "{text}");
    assert!(
        idline.contains("groups=2000,2001") || idline.contains("groups=1001,2000,2001"),
        "{text}"
    );
    assert_eq!(lines.next(), Some("/tmp"));
    assert_eq!(lines.next(), Some("hi there"));
}

#[test]
fn capabilities_are_limited_to_the_spec() {
    require_env!();
    let env = TestEnv::new(&[
        "sh",
        "-c",
        "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status",
    ]);
    let id = unique_id("caps");
    let out = env.rrc_bundle("run", &[&id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    // CAP_AUDIT_WRITE (29), CAP_KILL (5), CAP_NET_BIND_SERVICE (10).
    let want = format!("{:016x}", (1u64 << 29) | (1 << 5) | (1 << 10));
    assert!(text.contains(&format!("CapEff:\t{want}")), "{text}");
    assert!(text.contains(&format!("CapBnd:\t{want}")), "{text}");
    assert!(text.contains("NoNewPrivs:\t1"), "{text}");
}

#[test]
fn mounts_from_the_spec() {
    require_env!();
    let env = TestEnv::new(&[
        "sh",
        "-c",
        "cat /data/file; touch /data/new 2>/dev/null && echo writable || echo readonly; touch /scratch/x && echo tmpfs-ok; touch /etc/x 2>/dev/null || echo rootfs-ro",
    ]);
    let data = env.dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::write(data.join("file"), "from host\n").expect("write");
    env.edit_config(|c| {
        let mounts = c["mounts"].as_array_mut().expect("mounts");
        mounts.push(serde_json::json!({"destination": "/data", "type": "bind", "source": data, "options": ["rbind", "ro"]}));
        mounts.push(serde_json::json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    });
    let id = unique_id("mounts");
    let out = env.rrc_bundle("run", &[&id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "from host\nreadonly\ntmpfs-ok\nrootfs-ro\n");
    assert!(!data.join("new").exists());
    env.assert_no_leftovers(&id);
}

#[test]
fn masked_and_readonly_paths() {
    require_env!();
    let env = TestEnv::new(&[
        "sh",
        "-c",
        "wc -c < /proc/timer_list; echo 1 > /proc/sys/kernel/domainname 2>/dev/null || echo ro",
    ]);
    let id = unique_id("masked");
    let out = env.rrc_bundle("run", &[&id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).split_whitespace().collect::<Vec<_>>(),
        vec!["0", "ro"]
    );
}

#[test]
fn joins_namespaces_by_path() {
    require_env!();
    let a = TestEnv::new(&["sleep", "100"]);
    let ida = unique_id("nsa");
    assert!(a.rrc_bundle("run", &["-d", &ida]).status.success());
    let pida = a.state(&ida)["pid"].as_i64().expect("pid");
    let want = std::fs::read_link(format!("/proc/{pida}/ns/net")).expect("ns link");
    let want_uts = std::fs::read_link(format!("/proc/{pida}/ns/uts")).expect("ns link");

    let b = TestEnv::new(&[
        "sh",
        "-c",
        "readlink /proc/self/ns/net; readlink /proc/self/ns/uts; hostname",
    ]);
    b.edit_config(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().expect("namespaces");
        for n in ns.iter_mut() {
            if n["type"] == "network" {
                n["path"] = format!("/proc/{pida}/ns/net").into();
            }
            if n["type"] == "uts" {
                n["path"] = format!("/proc/{pida}/ns/uts").into();
            }
        }
        c.as_object_mut().map(|o| o.remove("hostname"));
    });
    let idb = unique_id("nsb");
    let out = b.rrc_bundle("run", &[&idb]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], want.to_str().unwrap_or(""));
    assert_eq!(lines[1], want_uts.to_str().unwrap_or(""));
    assert_eq!(lines[2], "rrc", "hostname of container a");
    assert!(a.rrc(&["delete", "-f", &ida]).status.success());
    a.assert_no_leftovers(&ida);
}

#[test]
fn spec_writes_a_config_once() {
    require_env!();
    let dir = tempfile::tempdir().expect("tmp");
    let env = TestEnv::new(&["true"]);
    let d = dir.path().to_str().unwrap_or(".");
    let out = env.rrc(&["spec", "-b", d]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).expect("read"))
            .expect("json");
    assert_eq!(v["root"]["path"], "rootfs");
    assert_eq!(v["process"]["args"][0], "sh");
    let out = env.rrc(&["spec", "-b", d]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("exists"), "{}", stderr(&out));
    std::fs::remove_file(dir.path().join("config.json")).expect("rm");
    assert!(env.rrc(&["spec", "--rootless", "-b", d]).status.success());
    let v: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).expect("read"))
            .expect("json");
    let ns = v["linux"]["namespaces"].as_array().expect("ns");
    assert!(ns.iter().any(|n| n["type"] == "user"));
    assert!(v["linux"]["uidMappings"].is_array());
}

#[test]
fn user_namespace_with_mappings() {
    require_env!();
    let env = TestEnv::new(&["sh", "-c", "cat /proc/self/uid_map; id -u"]);
    env.edit_config(|c| {
        c["linux"]["namespaces"].as_array_mut().expect("ns").push(serde_json::json!({"type": "user"}));
        c["linux"]["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 1000}, {"containerID": 1000, "hostID": 200000, "size": 10}]);
        c["linux"]["gidMappings"] = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 1000}]);
        // sysfs needs the network namespace's owner; keep the test about users.
        c["root"]["readonly"] = false.into();
    });
    // The rootfs must be usable by the mapped root.
    let rootfs = env.bundle.join("rootfs");
    let _ = std::process::Command::new("chown")
        .arg("-R")
        .arg("100000:100000")
        .arg(&rootfs)
        .status();
    let id = unique_id("userns");
    let out = env.rrc_bundle("run", &[&id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], vec!["0", "100000", "1000"], "{text}");
    assert_eq!(rows[1], vec!["1000", "200000", "10"], "{text}");
    assert_eq!(rows[2], vec!["0"], "{text}");
    env.assert_no_leftovers(&id);
}

#[test]
fn json_log_gets_the_error() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    let log = env.dir.path().join("log.json");
    let out = env.rrc(&[
        "--log",
        log.to_str().unwrap_or(""),
        "--log-format",
        "json",
        "state",
        "nope",
    ]);
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).expect("log written");
    let last: Value = serde_json::from_str(text.lines().last().unwrap_or("")).expect("json line");
    assert_eq!(last["level"], "error");
    assert!(
        last["msg"].as_str().unwrap_or("").contains("nope"),
        "{text}"
    );
    assert!(last["time"].is_string());
}

#[test]
fn spec_devices_are_created() {
    require_env!();
    let env = TestEnv::new(&[
        "sh",
        "-c",
        "ls -ln /dev/fuse /dev/null | awk '{print $1, $3, $4, $5, $6}'",
    ]);
    env.edit_config(|c| {
        c["linux"]["devices"] = serde_json::json!([
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o640, "uid": 7, "gid": 8}
        ]);
    });
    let id = unique_id("dev");
    let out = env.rrc_bundle("run", &[&id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "crw-r----- 7 8 10, 229\ncrw-rw-rw- 0 0 1, 3\n"
    );
    env.assert_no_leftovers(&id);
}

#[test]
fn waiting_init_holds_none_of_the_callers_fds() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    let id = unique_id("callerfds");
    let marker = env.dir.path().join("caller-lock");
    std::fs::write(&marker, "").expect("write");
    let f = std::fs::File::open(&marker).expect("open");
    let fd = f.as_raw_fd();
    let mut cmd = env.rrc_cmd(&["create", "-b", env.bundle.to_str().unwrap_or("."), &id]);
    // SAFETY: dup2 in the forked child before exec; fd 9 is inherited
    // (no CLOEXEC), as a supervisor's lock file or pipe would be.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            if libc::dup2(fd, 9) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // The container keeps create's stdio, so do not wait for pipes to close.
    let status = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("spawn");
    assert!(status.success());
    let pid = env.state(&id)["pid"].as_i64().expect("pid");
    let held: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fd dir")
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|p| p.display().to_string())
        .collect();
    assert!(!held.iter().any(|p| p.contains("caller-lock")), "{held:?}");
    assert!(env.rrc(&["delete", "-f", &id]).status.success());
    env.assert_no_leftovers(&id);
}
