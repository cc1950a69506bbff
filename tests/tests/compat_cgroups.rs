//! cgroup behaviours where rrc must do what runc does on hosts as they are
//! (issue 14): hierarchies from the mount table, frozen and busy cgroups,
//! device rule order, update and kill on stopped containers, and the
//! unified hierarchy of hybrid hosts.
//!
//! Tests that need a changed /sys/fs/cgroup make it in a private mount
//! namespace (`unshare -m`), never on the host.

use std::path::Path;
use std::process::Command;

use rr_tests::cg::{read, wait_for, Cleanup};
use rr_tests::TestEnv;
use rr_tests::{cgroup_dirs_named, detached, require_env, rrc_bin, stderr, stdout, unique_id};
use serde_json::json;

/// The v1 hierarchies visible under /sys/fs/cgroup: (directory name, mount
/// options without rw/ro), plus whether a cgroup2 is at `unified`.
fn host_v1_mounts() -> (Vec<(String, String)>, bool) {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v1 = Vec::new();
    let mut unified = false;
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let r: Vec<&str> = right.split(' ').collect();
        let Some(point) = left.split(' ').nth(4) else {
            continue;
        };
        let Some(name) = point.strip_prefix("/sys/fs/cgroup/") else {
            continue;
        };
        match r.first().copied() {
            Some("cgroup") => {
                let opts: Vec<&str> = r
                    .get(2)
                    .unwrap_or(&"")
                    .split(',')
                    .filter(|o| *o != "rw" && *o != "ro")
                    .collect();
                v1.retain(|(n, _): &(String, String)| n != name);
                v1.push((name.to_string(), opts.join(",")));
            }
            Some("cgroup2") if name == "unified" => unified = true,
            _ => {}
        }
    }
    (v1, unified)
}

/// Controllers left as plain directories when not mounted.
const PLAIN: &[&str] = &["hugetlb", "net_cls", "net_prio", "rdma", "misc"];

/// A shell script that covers /sys/fs/cgroup with a new tmpfs holding the
/// host's hierarchies mounted again, plus plain directories named after
/// controllers that are not mounted (as runc's test helpers, containerd
/// and admins leave them). `None` when the host has no v1 hierarchies.
fn remount_script(plain_dirs: bool) -> Option<String> {
    let (v1, unified) = host_v1_mounts();
    if v1.is_empty() {
        return None;
    }
    let mut s = String::from("set -e\nmount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup\n");
    for (name, opts) in &v1 {
        s += &format!(
            "mkdir -p '/sys/fs/cgroup/{name}'\nmount -t cgroup -o '{opts}' cgroup '/sys/fs/cgroup/{name}'\n"
        );
    }
    if unified {
        s += "mkdir /sys/fs/cgroup/unified\nmount -t cgroup2 cgroup2 /sys/fs/cgroup/unified\n";
    }
    for plain in PLAIN.iter().filter(|_| plain_dirs) {
        s += &format!("[ -e /sys/fs/cgroup/{plain} ] || mkdir /sys/fs/cgroup/{plain}\n");
    }
    s += "set +e\n";
    Some(s)
}

/// Runs `rrc run` for `env`'s bundle inside a private mount namespace
/// whose /sys/fs/cgroup was remade by [`remount_script`].
fn run_in_remounted(env: &TestEnv, id: &str, script: &str) -> std::process::Output {
    let full = format!("{script}\n\"$0\" --root \"$1\" run -b \"$2\" \"$3\"\n",);
    let mut cmd = Command::new("timeout");
    cmd.args([
        "60",
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        &full,
    ])
    .arg(rrc_bin())
    .arg(&env.root)
    .arg(&env.bundle)
    .arg(id);
    detached(cmd)
}

fn has_unshare() -> bool {
    Command::new("unshare")
        .arg("--help")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Item 4 and 7: plain directories under /sys/fs/cgroup are no hierarchies,
/// and hierarchies mounted a second time (over the host's) do not make the
/// container's cgroup mount fail, with and without a cgroup namespace.
#[test]
fn plain_directories_and_remounted_hierarchies_are_handled() {
    require_env!();
    if remount_script(true).is_none() {
        eprintln!("SKIPPED: no cgroup v1 hierarchy under /sys/fs/cgroup");
        return;
    }
    if !has_unshare() {
        eprintln!("SKIPPED: no unshare(1)");
        return;
    }
    // Item 4 alone (plain directories, no cgroup namespace), item 7 alone
    // (remounted hierarchies and a cgroup namespace), and both.
    for (plain, cgroupns) in [(true, false), (false, true), (true, true)] {
        let script = remount_script(plain).expect("hierarchies");
        let env = TestEnv::new(&["sh", "-c", "cat /proc/self/cgroup; ls /sys/fs/cgroup"]);
        env.edit_config(|c| {
            let ns = c["linux"]["namespaces"].as_array_mut().expect("namespaces");
            ns.retain(|n| n["type"] != "cgroup");
            if cgroupns {
                ns.push(json!({"type": "cgroup"}));
            }
        });
        let id = unique_id("cgplain");
        let out = run_in_remounted(&env, &id, &script);
        let (o, e) = (stdout(&out), stderr(&out));
        assert!(
            out.status.success(),
            "plain={plain} cgroupns={cgroupns}: rrc run failed: {e}\n{o}"
        );
        assert!(
            o.lines()
                .any(|l| l.contains(":memory:") || l.contains(":cpu")),
            "{o}"
        );
        // The plain directories are not shown as hierarchies inside.
        let (mounted, _) = host_v1_mounts();
        for plain in PLAIN {
            if !mounted.iter().any(|(n, _)| n == plain) {
                assert!(!o.lines().any(|l| l == *plain), "{plain} shown inside: {o}");
            }
        }
        let left = cgroup_dirs_named(Path::new("/sys/fs/cgroup"), &id);
        assert!(left.is_empty(), "cgroups of {id} left behind: {left:?}");
    }
}

/// Whether v1 `controller` is mounted at /sys/fs/cgroup/<controller>.
fn v1_mounted(controller: &str) -> bool {
    Path::new("/sys/fs/cgroup")
        .join(controller)
        .join("cgroup.procs")
        .exists()
}

/// Cgroups this test made by hand (`/sys/fs/cgroup/<c>/<name>`): thawed,
/// emptied of the test's own helper process and removed when dropped.
struct HandMade {
    dirs: Vec<std::path::PathBuf>,
    helper: Option<std::process::Child>,
}

impl HandMade {
    fn new(name: &str, controllers: &[&str]) -> HandMade {
        let dirs = controllers
            .iter()
            .map(|c| Path::new("/sys/fs/cgroup").join(c).join(name))
            .collect::<Vec<_>>();
        for d in &dirs {
            std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        }
        HandMade { dirs, helper: None }
    }

    /// Puts a `sleep` of the test's own into every directory.
    fn add_helper(&mut self) -> i32 {
        let child = Command::new("sleep")
            .arg("1000")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id() as i32;
        for d in &self.dirs {
            std::fs::write(d.join("cgroup.procs"), pid.to_string())
                .unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        }
        self.helper = Some(child);
        pid
    }
}

impl Drop for HandMade {
    fn drop(&mut self) {
        for d in &self.dirs {
            let _ = std::fs::write(d.join("freezer.state"), "THAWED");
        }
        if let Some(mut c) = self.helper.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for d in &self.dirs {
            for _ in 0..50 {
                if std::fs::remove_dir(d).is_ok() || !d.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}

/// Runs rrc with `args`, killing it after `secs`: returns its output and
/// whether it had to be killed.
fn rrc_bounded(env: &TestEnv, args: &[&str], secs: u64) -> (std::process::Output, bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (o, e) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = env
        .rrc_cmd(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&o).expect("out"))
        .stderr(std::fs::File::create(&e).expect("err"))
        .spawn()
        .expect("spawn rrc");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let (status, killed) = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break (st, false);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break (child.wait().expect("wait"), true);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let out = std::process::Output {
        status,
        stdout: std::fs::read(&o).unwrap_or_default(),
        stderr: std::fs::read(&e).unwrap_or_default(),
    };
    (out, killed)
}

/// Item 5: `run -d` and `create` into a frozen cgroup fail at once with
/// runc's words and leave nothing behind (they used to block forever).
#[test]
fn frozen_cgroup_fails_fast_and_leaves_nothing() {
    require_env!();
    if !v1_mounted("freezer") {
        eprintln!("SKIPPED: no v1 freezer hierarchy at /sys/fs/cgroup/freezer");
        return;
    }
    let name = unique_id("rrfrozen");
    let hand = HandMade::new(&name, &["freezer"]);
    std::fs::write(hand.dirs[0].join("freezer.state"), "FROZEN").expect("freeze");
    let env = TestEnv::new(&["sleep", "100"]);
    env.edit_config(|c| c["linux"]["cgroupsPath"] = json!(format!("/{name}")));
    let b = env.bundle.to_str().expect("bundle").to_string();
    for verb in [&["run", "-d"][..], &["create"][..]] {
        let id = unique_id("cgfrozen");
        let args: Vec<&str> = verb.iter().copied().chain(["-b", &b, &id]).collect();
        let (out, killed) = rrc_bounded(&env, &args, 20);
        let _cleanup = Cleanup(&env, id.clone());
        assert!(!killed, "{verb:?} blocked on a frozen cgroup");
        assert!(!out.status.success(), "{verb:?} succeeded");
        let e = stderr(&out);
        assert!(
            e.contains("container's cgroup unexpectedly frozen"),
            "{verb:?}: {e}"
        );
        assert!(e.contains("freezer.state"), "{verb:?}: {e}");
        assert!(!env.root.join(&id).exists(), "state of {id} left behind");
        let left = cgroup_dirs_named(Path::new("/sys/fs/cgroup"), &name);
        assert_eq!(left, hand.dirs, "cgroups made by the failed {verb:?}");
        assert_eq!(read(&hand.dirs[0].join("freezer.state")), "FROZEN");
    }
}

/// Item 6: a cgroup that already holds a process: create warns as runc
/// does and goes on; delete kills only the container and leaves the
/// cgroup that still holds the other process, saying so.
#[test]
fn non_empty_cgroup_warns_and_other_processes_survive_delete() {
    require_env!();
    let controllers: Vec<&str> = ["memory", "pids", "devices"]
        .into_iter()
        .filter(|c| v1_mounted(c))
        .collect();
    if controllers.is_empty() {
        eprintln!("SKIPPED: no v1 memory, pids or devices hierarchy");
        return;
    }
    let name = unique_id("rrbusy");
    let mut hand = HandMade::new(&name, &controllers);
    let other = hand.add_helper();
    let env = TestEnv::new(&["sleep", "100"]);
    env.edit_config(|c| c["linux"]["cgroupsPath"] = json!(format!("/{name}")));
    let id = unique_id("cgbusy");
    let _cleanup = Cleanup(&env, id.clone());
    let out = env.rrc_bundle("run", &["-d", &id]);
    let e = stderr(&out);
    assert!(out.status.success(), "run -d into a busy cgroup: {e}");
    assert!(
        e.contains("container's cgroup is not empty: 1 process(es) found"),
        "{e}"
    );
    assert!(e.contains("warn"), "not a warning: {e}");
    assert_eq!(env.state(&id)["status"], "running");
    let init = env.state(&id)["pid"].as_i64().expect("pid");
    let procs = read(&hand.dirs[0].join("cgroup.procs"));
    assert!(procs.lines().any(|l| l == init.to_string()), "{procs}");

    let out = env.rrc(&["delete", "-f", &id]);
    let e = stderr(&out);
    assert!(out.status.success(), "delete -f: {e}");
    assert!(e.contains("left in place"), "{e}");
    assert!(!env.root.join(&id).exists(), "state left behind");
    // SAFETY: kill with signal 0 only checks that the process exists.
    assert_eq!(
        unsafe { libc::kill(other, 0) },
        0,
        "delete killed pid {other}, not the container's"
    );
    let dead = |pid: i64| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|t| {
                t.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true)
    };
    wait_for("the container's init to die", || dead(init));
    // Hierarchies where the container had a cgroup of its own are clean.
    let mut left = cgroup_dirs_named(Path::new("/sys/fs/cgroup"), &name);
    let mut want = hand.dirs.clone();
    left.sort();
    want.sort();
    assert_eq!(left, want, "cgroups left besides the shared ones");
}

/// A detached container whose spec lists /dev/kmsg (c 1:11) in
/// linux.devices and has `rules` as its device rules; it reports whether
/// it can open /dev/kmsg for writing (which writes nothing) and its
/// devices.list, then sleeps.
fn kmsg_env(rules: serde_json::Value) -> TestEnv {
    let env = rr_tests::cg::writable_env(&[
        "sh",
        "-c",
        "if (true > /dev/kmsg) 2>/tmp/kmsg.err; then echo kmsg=open; else echo kmsg=denied; fi > /tmp/r.tmp; \
         cat /sys/fs/cgroup/devices/devices.list > /tmp/list; mv /tmp/r.tmp /tmp/r; exec sleep 1000",
    ]);
    env.edit_config(|c| {
        c["linux"]["devices"] = json!([
            {"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o666, "uid": 0, "gid": 0}
        ]);
        c["linux"]["resources"]["devices"] = rules;
    });
    env
}

/// Item 8: a device the spec lists in linux.devices but denies in
/// linux.resources.devices stays denied (it used to be allowed again after
/// the spec's rules), in devices.list and when opened inside.
#[test]
fn spec_deny_rule_for_a_listed_device_is_enforced() {
    require_env!();
    // v1: devices.list and the open; pure v2: the open, which the eBPF
    // device program decides.
    let v1 = v1_mounted("devices");
    let v2 = rr_tests::cg::read(Path::new("/proc/self/mountinfo"))
        .lines()
        .any(|l| l.contains(" /sys/fs/cgroup ") && l.contains(" - cgroup2 "));
    if !v1 && !v2 {
        eprintln!("SKIPPED: no v1 devices hierarchy and /sys/fs/cgroup is not cgroup2");
        return;
    }
    let cases = [
        // Denied by the deny-all alone.
        (json!([{"allow": false, "access": "rwm"}]), false),
        // Allowed, then denied again: the last match wins.
        (
            json!([{"allow": false, "access": "rwm"},
                   {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rwm"},
                   {"allow": false, "type": "c", "major": 1, "minor": 11, "access": "rwm"}]),
            false,
        ),
        // An explicit allow still works.
        (
            json!([{"allow": false, "access": "rwm"},
                   {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rw"}]),
            true,
        ),
    ];
    for (rules, open) in cases {
        let env = kmsg_env(rules.clone());
        let id = unique_id("cgkmsg");
        let _cleanup = rr_tests::cg::run_detached(&env, &id);
        let r = rr_tests::cg::wait_file(&env, "/tmp/r");
        let list = read(&rr_tests::cg::in_rootfs(&env, "/tmp/list"));
        if !v1 {
            let want = if open { "kmsg=open" } else { "kmsg=denied" };
            assert_eq!(r, want, "{rules} (cgroup v2)");
            rr_tests::cg::delete(&env, &id);
            continue;
        }
        let paths = rr_tests::cg::cgroup_paths(&env, &id);
        let host = read(&paths["devices"].join("devices.list"));
        assert_eq!(list, host, "devices.list inside and on the host");
        if open {
            assert_eq!(r, "kmsg=open", "{rules}: {list}");
            assert!(host.lines().any(|l| l == "c 1:11 rw"), "{rules}: {host}");
        } else {
            assert_eq!(r, "kmsg=denied", "{rules}: {list}");
            assert!(!host.contains(" 1:11 "), "{rules}: {host}");
            let err = read(&rr_tests::cg::in_rootfs(&env, "/tmp/kmsg.err"));
            assert!(err.contains("not permitted"), "{err}");
        }
        rr_tests::cg::delete(&env, &id);
    }
}

/// Item 30: an access string with a letter other than r, w and m (`rwa`):
/// runc 1.1.5 leaves the letter out and runs the container with `rw`; rrc
/// does the same and says which letter it left out.
#[test]
fn unknown_access_letter_is_left_out_as_runc_does() {
    require_env!();
    if !v1_mounted("devices") {
        eprintln!("SKIPPED: no v1 devices hierarchy");
        return;
    }
    let env = kmsg_env(json!([{"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rwa"}]));
    let id = unique_id("cgrwa");
    let _cleanup = Cleanup(&env, id.clone());
    let out = env.rrc_bundle("run", &["-d", &id]);
    let e = stderr(&out);
    assert!(out.status.success(), "run with access rwa: {e}");
    assert!(
        e.contains("linux.resources.devices[1].access") && e.contains("\\\"a\\\""),
        "no warning naming the rule and the letter: {e}"
    );
    assert_eq!(rr_tests::cg::wait_file(&env, "/tmp/r"), "kmsg=open");
    let host = read(&rr_tests::cg::cgroup_paths(&env, &id)["devices"].join("devices.list"));
    assert!(host.lines().any(|l| l == "c 1:11 rw"), "{host}");
    // With no letter it knows, the rule is refused, naming it.
    let env2 =
        kmsg_env(json!([{"allow": true, "type": "c", "major": 1, "minor": 11, "access": "xa"}]));
    let id2 = unique_id("cgxa");
    let out = env2.rrc_bundle("run", &["-d", &id2]);
    assert!(!out.status.success(), "access xa accepted");
    let e = stderr(&out);
    assert!(e.contains("devices[0].access") && e.contains("xa"), "{e}");
    env2.assert_no_leftovers(&id2);
}

/// Item 27: `update --memory -1` after a swap limit was set lifts the
/// swap limit too (runc), instead of failing with EINVAL on
/// memory.limit_in_bytes.
#[test]
fn update_memory_unlimited_lifts_the_swap_limit() {
    require_env!();
    if !v1_mounted("memory") {
        eprintln!("SKIPPED: no v1 memory hierarchy");
        return;
    }
    if !rr_tests::cg::v1_offers("memory/memory.memsw.limit_in_bytes") {
        eprintln!("SKIPPED: no swap accounting (memory.memsw) in this kernel");
        return;
    }
    let env = TestEnv::new(&["sleep", "1000"]);
    let id = unique_id("cgswap");
    let _cleanup = rr_tests::cg::run_detached(&env, &id);
    let out = env.rrc(&["update", "--memory", "64m", "--memory-swap", "128m", &id]);
    assert!(out.status.success(), "update: {}", stderr(&out));
    let mem = rr_tests::cg::cgroup_paths(&env, &id)["memory"].clone();
    assert_eq!(
        read(&mem.join("memory.memsw.limit_in_bytes")),
        (128u64 << 20).to_string()
    );
    let out = env.rrc(&["update", "--memory", "-1", &id]);
    assert!(out.status.success(), "update --memory -1: {}", stderr(&out));
    let unlimited = read(&Path::new("/sys/fs/cgroup/memory").join("memory.limit_in_bytes"));
    assert_eq!(read(&mem.join("memory.limit_in_bytes")), unlimited);
    assert_eq!(read(&mem.join("memory.memsw.limit_in_bytes")), unlimited);
    rr_tests::cg::delete(&env, &id);
}

/// Item 21: `kill --all` on a stopped container kills what the init left
/// in its cgroups and exits 0 (runc; containerd's shim does it on every
/// task exit); a plain kill of a stopped container still fails.
#[test]
fn kill_all_on_a_stopped_container_kills_what_is_left() {
    require_env!();
    if !v1_mounted("pids") {
        eprintln!("SKIPPED: no v1 pids hierarchy");
        return;
    }
    // Without a pid namespace a daemon outlives the init.
    let env = TestEnv::new(&["sh", "-c", "sleep 1000 </dev/null >/dev/null 2>&1 & exit 0"]);
    env.edit_config(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().expect("namespaces");
        ns.retain(|n| n["type"] != "pid");
    });
    let id = unique_id("cgkillall");
    let _cleanup = rr_tests::cg::run_detached(&env, &id);
    wait_for("the init to exit", || env.state(&id)["status"] == "stopped");
    let pids = rr_tests::cg::cgroup_paths(&env, &id)["pids"].join("cgroup.procs");
    let left = read(&pids);
    assert!(
        !left.is_empty(),
        "the daemon is not in the container's cgroup"
    );
    let out = env.rrc(&["kill", "--all", &id, "KILL"]);
    assert!(
        out.status.success(),
        "kill --all on a stopped container: {}",
        stderr(&out)
    );
    wait_for("the daemon to be killed", || read(&pids).is_empty());
    let out = env.rrc(&["kill", "--all", &id, "KILL"]);
    assert!(out.status.success(), "second kill --all: {}", stderr(&out));
    let out = env.rrc(&["kill", &id, "KILL"]);
    assert!(!out.status.success(), "kill of a stopped container worked");
    assert!(stderr(&out).contains("not running"), "{}", stderr(&out));
    rr_tests::cg::delete(&env, &id);
}

/// Whether this is a hybrid host: v1 hierarchies on a tmpfs and a
/// controller-less cgroup2 at /sys/fs/cgroup/unified.
fn hybrid() -> bool {
    Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists()
        && !Path::new("/sys/fs/cgroup/cgroup.procs").exists()
}

/// Items 19 and 34: on a hybrid host the container is also placed in the
/// unified hierarchy, at the same path as in the v1 ones (runc), removed
/// on delete; inside, /sys/fs/cgroup/unified shows only its own cgroup,
/// never the host's tree, with and without a cgroup namespace.
#[test]
fn hybrid_host_places_the_container_in_the_unified_hierarchy() {
    require_env!();
    if !hybrid() || !v1_mounted("pids") {
        eprintln!("SKIPPED: not a hybrid cgroup host with a v1 pids hierarchy");
        return;
    }
    for cgroupns in [true, false] {
        let env = rr_tests::cg::writable_env(&[
            "sh",
            "-c",
            "grep '^0::' /proc/self/cgroup > /tmp/cg.tmp; \
             ls /sys/fs/cgroup/unified > /tmp/files; \
             for d in /sys/fs/cgroup/unified/*/; do [ -d \"$d\" ] && echo \"$d\"; done > /tmp/subdirs; \
             mv /tmp/cg.tmp /tmp/cg; exec sleep 1000",
        ]);
        env.edit_config(|c| {
            let ns = c["linux"]["namespaces"].as_array_mut().expect("namespaces");
            ns.retain(|n| n["type"] != "cgroup");
            if cgroupns {
                ns.push(json!({"type": "cgroup"}));
            }
        });
        let id = unique_id("cghybrid");
        let _cleanup = rr_tests::cg::run_detached(&env, &id);
        let inside = rr_tests::cg::wait_file(&env, "/tmp/cg");
        let paths = rr_tests::cg::cgroup_paths(&env, &id);
        let unified = paths
            .get("")
            .expect("no unified path in state.json")
            .clone();
        let pids_rel = paths["pids"]
            .strip_prefix("/sys/fs/cgroup/pids")
            .expect("pids path")
            .to_path_buf();
        let own_v2 = read(Path::new("/proc/self/cgroup"))
            .lines()
            .find_map(|l| l.strip_prefix("0::").map(str::to_string))
            .unwrap_or_default();
        if own_v2 == "/" {
            assert_eq!(
                unified,
                Path::new("/sys/fs/cgroup/unified").join(&pids_rel),
                "not the same path as in the v1 hierarchies"
            );
        }
        assert!(unified.ends_with(&id), "{}", unified.display());
        let init = env.state(&id)["pid"].as_i64().expect("pid");
        let host_view = read(Path::new(&format!("/proc/{init}/cgroup")));
        let rel = unified
            .strip_prefix("/sys/fs/cgroup/unified")
            .expect("under unified");
        assert!(
            host_view
                .lines()
                .any(|l| l == format!("0::/{}", rel.display())),
            "host view of the init: {host_view}"
        );
        if cgroupns {
            assert_eq!(inside, "0::/", "cgroupns={cgroupns}");
        } else {
            assert_eq!(inside, format!("0::/{}", rel.display()));
        }
        // The container's own cgroup (a non-root one has cgroup.type), and
        // none of the host's other cgroups below it.
        let files = read(&rr_tests::cg::in_rootfs(&env, "/tmp/files"));
        assert!(
            files.lines().any(|l| l == "cgroup.type"),
            "cgroupns={cgroupns}: {files}"
        );
        let subdirs = read(&rr_tests::cg::in_rootfs(&env, "/tmp/subdirs"));
        assert_eq!(
            subdirs, "",
            "cgroupns={cgroupns}: host cgroups visible inside"
        );
        rr_tests::cg::delete(&env, &id);
        assert!(!unified.exists(), "{} survived delete", unified.display());
    }
}

/// Item 34: the container's /sys/fs/cgroup and every hierarchy under it
/// carry the spec's mount flags (Docker asks ro,nosuid,noexec,nodev; the
/// bind mounts made without a cgroup namespace used to keep only ro).
#[test]
fn cgroup_mount_has_the_spec_flags() {
    require_env!();
    if host_v1_mounts().0.is_empty() {
        eprintln!("SKIPPED: no cgroup v1 hierarchy under /sys/fs/cgroup");
        return;
    }
    for cgroupns in [false, true] {
        for ro in [true, false] {
            let env = TestEnv::new(&["sh", "-c", "grep ' /sys/fs/cgroup' /proc/self/mountinfo"]);
            env.edit_config(|c| {
                let ns = c["linux"]["namespaces"].as_array_mut().expect("namespaces");
                ns.retain(|n| n["type"] != "cgroup");
                if cgroupns {
                    ns.push(json!({"type": "cgroup"}));
                }
                let mut opts = vec!["nosuid", "noexec", "nodev"];
                if ro {
                    opts.push("ro");
                }
                for m in c["mounts"].as_array_mut().expect("mounts") {
                    if m["destination"] == "/sys/fs/cgroup" {
                        m["options"] = json!(opts);
                    }
                }
            });
            let id = unique_id("cgflags");
            let out = env.rrc_bundle("run", &[&id]);
            let text = stdout(&out);
            assert!(out.status.success(), "{}", stderr(&out));
            let lines: Vec<&str> = text.lines().collect();
            assert!(lines.len() > 1, "{text}");
            for l in lines {
                let per_mount: Vec<&str> = l.split(' ').nth(5).unwrap_or("").split(',').collect();
                for want in ["nosuid", "nodev", "noexec", if ro { "ro" } else { "rw" }] {
                    assert!(
                        per_mount.contains(&want),
                        "cgroupns={cgroupns} ro={ro}: no {want} in {l}"
                    );
                }
            }
            env.assert_no_leftovers(&id);
        }
    }
}
