//! cgroup behaviours where rrc must do what runc does on hosts as they are
//! (issue 14): hierarchies from the mount table, frozen and busy cgroups,
//! device rule order, update and kill on stopped containers, and the
//! unified hierarchy of hybrid hosts.
//!
//! Tests that need a changed /sys/fs/cgroup make it in a private mount
//! namespace (`unshare -m`), never on the host.

use std::path::Path;
use std::process::Command;

use rr_tests::cg::*;
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
fn remount_script() -> Option<String> {
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
    for plain in PLAIN {
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
    let Some(script) = remount_script() else {
        eprintln!("SKIPPED: no cgroup v1 hierarchy under /sys/fs/cgroup");
        return;
    };
    if !has_unshare() {
        eprintln!("SKIPPED: no unshare(1)");
        return;
    }
    for cgroupns in [true, false] {
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
            "cgroupns={cgroupns}: rrc run failed: {e}\n{o}"
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
