//! Helpers for the black-box cgroup tests (v1 and v2): containers run
//! detached with files in their rootfs to report through, polling with a
//! hang guard, and what state.json and `rrc ps` say about their cgroups.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::{stderr, TestEnv};

/// Polls `cond` until it holds; panics with `what` after a generous bound
/// (a hang guard, not a speed check).
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

/// Whether the kernel offers `file` (e.g. `memory/memory.memsw.limit_in_bytes`,
/// relative to /sys/fs/cgroup) in the root of a mounted v1 hierarchy; a new
/// cgroup has the same files. Says so when it does not, so that the parts a
/// test leaves out show in its output.
pub fn v1_offers(file: &str) -> bool {
    let there = Path::new("/sys/fs/cgroup").join(file).exists();
    if !there {
        eprintln!("SKIPPED part: this kernel has no /sys/fs/cgroup/{file}");
    }
    there
}

/// A test bundle whose rootfs the container can write to (the default
/// spec's root is read-only), so that it can report through files.
pub fn writable_env(args: &[&str]) -> TestEnv {
    let env = TestEnv::new(args);
    env.edit_config(|c| c["root"]["readonly"] = json!(false));
    env
}

/// Force-deletes the container when a test fails half-way, so that no
/// container outlives a failed test.
pub struct Cleanup<'a>(pub &'a TestEnv, pub String);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.0.rrc(&["delete", "-f", &self.1]);
    }
}

/// Starts the container detached, its output going to files in the test
/// dir; it is force-deleted when the returned guard goes.
#[must_use]
pub fn run_detached<'a>(env: &'a TestEnv, id: &str) -> Cleanup<'a> {
    let cleanup = Cleanup(env, id.to_string());
    let log = std::fs::File::create(env.dir.path().join(format!("{id}.out"))).expect("log");
    let b = env.bundle.to_str().expect("bundle path").to_string();
    let st = env
        .rrc_cmd(&["run", "-d", "-b", &b, id])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup"))
        .stderr(log)
        .status()
        .expect("spawn rrc");
    let out = std::fs::read_to_string(env.dir.path().join(format!("{id}.out"))).unwrap_or_default();
    assert!(st.success(), "rrc run -d {id}: {out}");
    cleanup
}

/// A file in the container's rootfs (its /tmp is the rootfs's).
pub fn in_rootfs(env: &TestEnv, p: &str) -> PathBuf {
    env.bundle.join("rootfs").join(p.trim_start_matches('/'))
}

pub fn wait_file(env: &TestEnv, p: &str) -> String {
    let f = in_rootfs(env, p);
    wait_for(&format!("{} to be written", f.display()), || {
        std::fs::read_to_string(&f).is_ok_and(|t| t.ends_with('\n'))
    });
    read(&f)
}

pub fn cgroup_paths(env: &TestEnv, id: &str) -> BTreeMap<String, PathBuf> {
    let text = std::fs::read_to_string(env.root.join(id).join("state.json")).expect("state.json");
    let v: Value = serde_json::from_str(&text).expect("state.json is JSON");
    v["cgroup_paths"]
        .as_object()
        .expect("cgroup_paths recorded")
        .iter()
        .map(|(k, v)| (k.clone(), PathBuf::from(v.as_str().expect("path"))))
        .collect()
}

pub fn delete(env: &TestEnv, id: &str) {
    let out = env.rrc(&["delete", "-f", id]);
    assert!(out.status.success(), "delete -f {id}: {}", stderr(&out));
    env.assert_no_leftovers(id);
}

pub fn pids_json(env: &TestEnv, id: &str) -> Vec<i64> {
    let out = env.rrc(&["ps", "-f", "json", id]);
    assert!(out.status.success(), "ps -f json: {}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("ps json");
    v.as_array()
        .expect("an array")
        .iter()
        .map(|p| p.as_i64().expect("pid"))
        .collect()
}

/// Reads lines from a child's stdout on a thread, so the test can wait
/// for one without blocking forever.
pub fn line_reader(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let out = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

pub fn next_event(rx: &std::sync::mpsc::Receiver<String>, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no {want} event from rrc events"));
        let v: Value = serde_json::from_str(&line).expect("events prints JSON lines");
        if v["type"] == want {
            return v;
        }
    }
}

pub fn counter(env: &TestEnv) -> u64 {
    let f = in_rootfs(env, "/tmp/count");
    let mut v = None;
    wait_for("a readable counter", || {
        v = std::fs::read_to_string(&f)
            .ok()
            .and_then(|t| t.trim().parse().ok());
        v.is_some()
    });
    v.unwrap_or(0)
}

/// The host's first whole disk, as (major, minor), for a block I/O throttle.
pub fn a_disk() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/partitions").ok()?;
    text.lines().skip(2).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (maj, min) = (f.first()?.parse().ok()?, f.get(1)?.parse().ok()?);
        // loop and ram disks are skipped: throttles on them are unusual.
        (maj != 7 && maj != 1 && min == 0).then_some((maj, min))
    })
}

/// The /dev node of a block device, from its sysfs uevent.
pub fn dev_node(maj: u64, min: u64) -> String {
    let uevent = read(Path::new(&format!("/sys/dev/block/{maj}:{min}/uevent")));
    let name = uevent
        .lines()
        .find_map(|l| l.strip_prefix("DEVNAME="))
        .expect("DEVNAME in uevent");
    format!("/dev/{name}")
}

/// A container whose shell counts in /tmp/count as fast as it can (each
/// value written whole), for pause/resume tests; read it with [`counter`].
pub fn counter_env() -> TestEnv {
    writable_env(&[
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo $i > /tmp/count.tmp; mv /tmp/count.tmp /tmp/count; done",
    ])
}

/// Waits a while and checks that the counter did not move; returns it.
pub fn assert_counter_stopped(env: &TestEnv) -> u64 {
    let frozen_at = counter(env);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(counter(env), frozen_at, "the counter moved while paused");
    frozen_at
}

/// The memory limit of [`hog_env`]'s container, with no swap beside it.
pub const HOG_LIMIT: u64 = 32 << 20;

/// A container that waits for /tmp/go, then runs a memory hog under
/// [`HOG_LIMIT`] and writes its exit status to /tmp/hog.
pub fn hog_env() -> TestEnv {
    let env = writable_env(&[
        "sh",
        "-c",
        "while [ ! -e /tmp/go ]; do sleep 0.05; done; \
         awk 'BEGIN { s = \"0123456789abcdef\"; while (1) s = s s }'; \
         echo status=$? > /tmp/hog; exec sleep 1000",
    ]);
    env.edit_config(|c| {
        // Without swap accounting (no memsw) a swap limit is refused.
        let memory = if v1_offers("memory/memory.memsw.limit_in_bytes")
            || !Path::new("/sys/fs/cgroup/memory").exists()
        {
            json!({"limit": HOG_LIMIT, "swap": HOG_LIMIT})
        } else {
            json!({"limit": HOG_LIMIT})
        };
        c["linux"]["resources"]["memory"] = memory
    });
    env
}

/// With [`hog_env`]'s container running: starts `rrc events`, waits for its
/// first stats (the OOM watch is set up before them), lets the hog go, and
/// checks the oom event and that the hog was killed. Returns `rrc events`,
/// still running, with the receiver of its lines: that must live as long
/// as it, or its next write fails with EPIPE.
pub fn oom_through_events(env: &TestEnv, id: &str) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut events = env
        .rrc_cmd(&["events", "--interval", "100ms", id])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rrc events");
    let rx = line_reader(&mut events);
    let st = next_event(&rx, "stats");
    assert_eq!(st["id"], id);
    assert_eq!(st["data"]["memory"]["usage"]["limit"], json!(HOG_LIMIT));
    std::fs::write(in_rootfs(env, "/tmp/go"), "").expect("go");
    let oom = next_event(&rx, "oom");
    assert_eq!(oom, json!({"type": "oom", "id": id}));
    assert_eq!(wait_file(env, "/tmp/hog"), "status=137");
    (events, rx)
}

/// Force-deletes the container; `rrc events` on it then ends by itself.
pub fn delete_ends_events(
    env: &TestEnv,
    id: &str,
    (mut events, _lines): (Child, std::sync::mpsc::Receiver<String>),
) {
    let out = env.rrc(&["delete", "-f", id]);
    assert!(out.status.success(), "delete -f: {}", stderr(&out));
    let status = events.wait().expect("events exits");
    let mut err = String::new();
    if let Some(mut e) = events.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    assert!(status.success(), "events after delete: {status:?}: {err}");
    env.assert_no_leftovers(id);
}
