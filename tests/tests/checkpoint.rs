//! `rrc checkpoint` and `rrc restore` with a real CRIU (`RR_CRIU_BIN`,
//! CRIU 4.2.1 as `cargo xtask test` builds it), on busybox containers whose
//! stdio are pipes, as runc needs too.

use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rr_tests::{require_env, rrc_bin, stderr, stdout, unique_id, TestEnv};
use serde_json::Value;

/// The container counts in memory: each line is `<$$> <count>`, and the
/// count also goes to /out/count in a bind-mounted host directory.
const COUNTER: &str =
    "i=0; while true; do i=$((i+1)); echo \"$$ $i\"; echo $i > /out/count; sleep 0.1; done";

fn criu_bin() -> Option<PathBuf> {
    match std::env::var_os("RR_CRIU_BIN") {
        Some(p) if Path::new(&p).is_file() => Some(PathBuf::from(p)),
        _ => {
            eprintln!(
                "SKIPPED: RR_CRIU_BIN is not set to a CRIU 4.x binary (cargo xtask test builds one)"
            );
            None
        }
    }
}

macro_rules! require_criu {
    () => {{
        require_env!();
        match criu_bin() {
            Some(c) => c,
            None => return,
        }
    }};
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid out array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both fds were just created and are owned here.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Everything written to the stdout and stderr of a container (and of the
/// rrc that started it), line by line, read by a thread.
struct Lines {
    lines: Arc<Mutex<Vec<String>>>,
    /// Kept open so that the container's stdin stays a live pipe.
    _stdin: OwnedFd,
}

impl Lines {
    /// Points `cmd`'s stdio at fresh pipes read by a thread.
    fn attach(cmd: &mut Command) -> Lines {
        let (out_r, out_w) = pipe();
        let (in_r, in_w) = pipe();
        let err_w = out_w.try_clone().expect("dup");
        cmd.stdin(Stdio::from(in_r))
            .stdout(Stdio::from(out_w))
            .stderr(Stdio::from(err_w));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(std::fs::File::from(out_r))
                .lines()
                .map_while(Result::ok)
            {
                sink.lock().unwrap().push(l);
            }
        });
        Lines {
            lines,
            _stdin: in_w,
        }
    }

    fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// The `(pid, count)` lines of the counter.
    fn counts(&self) -> Vec<(String, u64)> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| {
                let (p, n) = l.split_once(' ')?;
                Some((p.to_string(), n.parse().ok()?))
            })
            .collect()
    }
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn counter_env() -> (TestEnv, PathBuf) {
    let env = TestEnv::new(&["sh", "-c", COUNTER]);
    let out = env.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let src = out.display().to_string();
    env.edit_config(|c| {
        // CRIU restores into the rootfs; runc's checkpoint tests use a
        // writable one as well.
        c["root"]["readonly"] = Value::Bool(false);
        c["mounts"].as_array_mut().unwrap().push(serde_json::json!({
            "destination": "/out", "type": "bind", "source": src, "options": ["rbind", "rw"]
        }));
    });
    (env, out)
}

/// `rrc run -d` with pipes as the container's stdio; waits for 3 counts.
fn start_counter(env: &TestEnv, id: &str) -> (Lines, i32) {
    let b = env.bundle.display().to_string();
    let mut cmd = env.rrc_cmd(&["run", "-d", "-b", &b, id]);
    let lines = Lines::attach(&mut cmd);
    let status = cmd.status().expect("spawn rrc run");
    assert!(status.success(), "rrc run -d: {}", lines.text());
    wait_for("the counter to start", || lines.counts().len() >= 3);
    let pid = env.state(id)["pid"].as_i64().unwrap() as i32;
    (lines, pid)
}

fn read_count(out: &Path) -> u64 {
    std::fs::read_to_string(out.join("count"))
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or(0)
}

fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z')),
    }
}

fn fds_of(pid: i32) -> Vec<i32> {
    let mut v: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn criu_args(criu: &Path) -> Vec<String> {
    vec!["--criu".into(), criu.display().to_string()]
}

/// `rrc --criu <criu> <args>`, run to its end.
fn rrc_criu(env: &TestEnv, criu: &Path, args: &[&str]) -> std::process::Output {
    let c = criu.display().to_string();
    let mut all = vec!["--criu", &c];
    all.extend_from_slice(args);
    env.rrc(&all)
}

/// `rrc --criu <criu> <args>`, to be spawned by the caller.
fn criu_cmd(env: &TestEnv, criu: &Path, args: &[&str]) -> Command {
    let c = criu.display().to_string();
    let mut all = vec!["--criu", &c];
    all.extend_from_slice(args);
    env.rrc_cmd(&all)
}

/// `rrc delete -f`, which must succeed and leave nothing of `id` behind.
fn delete_clean(env: &TestEnv, id: &str) {
    let o = env.rrc(&["delete", "-f", id]);
    assert!(o.status.success(), "{}", stderr(&o));
    env.assert_no_leftovers(id);
}

#[test]
fn checkpoint_and_restore_continue_the_count_with_the_same_pid() {
    let criu = require_criu!();
    let (env, out) = counter_env();
    let id = unique_id("ckpt");
    let (before, pid) = start_counter(&env, &id);

    // Nothing of rrc or of the test harness reaches the container: between
    // two writes the shell holds only its stdio (a leaked fd, such as a
    // harness's lock file, would be there in every sample; CRIU refuses
    // to dump a held lock without --file-locks).
    let mut clean = false;
    for _ in 0..200 {
        if fds_of(pid) == [0, 1, 2] {
            clean = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(clean, "container init holds extra fds: {:?}", fds_of(pid));

    let images = env.dir.path().join("images");
    let img = images.display().to_string();
    let o = rrc_criu(&env, &criu, &["checkpoint", "--image-path", &img, &id]);
    assert!(
        o.status.success(),
        "checkpoint: {}\n--- dump.log, last lines ---\n{}",
        stderr(&o),
        log_tail(&images.join("dump.log"))
    );

    // The container is gone: no state, no process.
    let o = env.rrc(&["state", &id]);
    assert!(
        !o.status.success(),
        "state after checkpoint: {}",
        stdout(&o)
    );
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    wait_for("the checkpointed init to die", || gone(pid));
    env.assert_no_leftovers(&id);
    let at_dump = read_count(&out);
    assert!(at_dump >= 3, "count at dump: {at_dump}");
    let seen = before.counts();
    assert!(seen.iter().all(|(p, _)| p == "1"), "{seen:?}");

    let descriptors: Vec<String> =
        serde_json::from_slice(&std::fs::read(images.join("descriptors.json")).unwrap()).unwrap();
    assert_eq!(descriptors.len(), 3, "{descriptors:?}");
    assert!(
        descriptors.iter().all(|d| d.starts_with("pipe:[")),
        "{descriptors:?}"
    );

    // Restore under a new id with new pipes as its stdio.
    let id2 = unique_id("rest");
    let b = env.bundle.display().to_string();
    let mut cmd = criu_cmd(
        &env,
        &criu,
        &["restore", "-d", "--image-path", &img, "-b", &b, &id2],
    );
    let after = Lines::attach(&mut cmd);
    let status = cmd.status().expect("spawn rrc restore");
    assert!(status.success(), "restore: {}", after.text());
    wait_for("the restored counter", || after.counts().len() >= 3);
    let resumed = after.counts();
    let first = resumed[0].1;
    assert!(
        first == at_dump + 1 || first == at_dump + 2,
        "restored count starts at {first}, count at dump was {at_dump}: {resumed:?}"
    );
    assert!(resumed.iter().all(|(p, _)| p == "1"), "{resumed:?}");
    let st = env.state(&id2);
    assert_eq!(st["status"], "running", "{st}");
    let new_pid = st["pid"].as_i64().unwrap() as i32;
    assert!(!gone(new_pid));
    wait_for("the count file to move on", || read_count(&out) > at_dump);

    let o = env.rrc(&["delete", "-f", &id2]);
    assert!(o.status.success(), "{}", stderr(&o));
    wait_for("the restored init to die", || gone(new_pid));
    env.assert_no_leftovers(&id2);
}

#[test]
fn leave_running_keeps_the_container() {
    let criu = require_criu!();
    let (env, out) = counter_env();
    let id = unique_id("leave");
    let (_lines, pid) = start_counter(&env, &id);
    let img = env.dir.path().join("images").display().to_string();
    let o = rrc_criu(
        &env,
        &criu,
        &["checkpoint", "--leave-running", "--image-path", &img, &id],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(Path::new(&img).join("descriptors.json").is_file());
    assert!(Path::new(&img).join("pages-1.img").is_file());
    let st = env.state(&id);
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(st["pid"].as_i64(), Some(i64::from(pid)));
    let c = read_count(&out);
    wait_for("the count to go on", || read_count(&out) > c + 1);
    assert!(!env.root.join(&id).join("checkpoint").exists());
    delete_clean(&env, &id);
}

/// Whether the kernel keeps soft-dirty bits (CONFIG_MEM_SOFT_DIRTY), which
/// CRIU's memory tracking reads: after clearing them through clear_refs
/// ("4"), a page written again must show bit 55 in /proc/self/pagemap.
/// This is CRIU's own probe (its kerndat has_dirty_track, reported as the
/// mem_track feature).
fn kernel_tracks_soft_dirty() -> bool {
    use std::os::unix::fs::FileExt;
    // SAFETY: a fresh private anonymous page, unmapped below.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(page, libc::MAP_FAILED);
    // A kernel without soft-dirty refuses "4" with EINVAL.
    let cleared = std::fs::write("/proc/self/clear_refs", "4").is_ok();
    // SAFETY: the page is mapped writable above.
    unsafe { std::ptr::write_volatile(page.cast::<u8>(), 1) };
    let mut entry = [0u8; 8];
    let pagemap = std::fs::File::open("/proc/self/pagemap").unwrap();
    pagemap
        .read_exact_at(&mut entry, (page as u64 / 4096) * 8)
        .unwrap();
    // SAFETY: unmaps the page mapped above.
    unsafe { libc::munmap(page, 4096) };
    let entry = u64::from_ne_bytes(entry);
    assert!(entry >> 63 & 1 == 1, "the written page is not present");
    cleared && entry >> 55 & 1 == 1
}

/// A pre-dump, and a dump on top of parent images (`--parent-path`, for
/// which runc sends track_mem), need CRIU's memory tracking, which reads
/// the kernel's soft-dirty bits. This machine's kernel is built without
/// CONFIG_MEM_SOFT_DIRTY (/proc/config.gz: "# CONFIG_MEM_SOFT_DIRTY is not
/// set"), so CRIU 4.2.1 reports mem_track false (`criu check --feature
/// mem_dirty_track`: "Dirty tracking is OFF") and would refuse the
/// pre-dump itself ("Tracking memory is not available"). rrc must then
/// fail up front, naming CRIU, the flag and the missing feature, and leave
/// the container running. On a kernel with soft-dirty bits the pre-dump
/// then dump path runs instead.
#[test]
fn pre_dump_needs_memory_tracking() {
    let criu = require_criu!();
    let tracks = kernel_tracks_soft_dirty();
    let (env, out) = counter_env();
    let id = unique_id("pre");
    let (_lines, _pid) = start_counter(&env, &id);
    let images = env.dir.path().join("images");
    let pre = images.join("pre").display().to_string();
    let o = rrc_criu(
        &env,
        &criu,
        &["checkpoint", "--pre-dump", "--image-path", &pre, &id],
    );
    assert_eq!(
        o.status.success(),
        tracks,
        "pre-dump with soft-dirty bits {}: {}",
        if tracks { "kept" } else { "absent" },
        stderr(&o)
    );
    if tracks {
        // Dump on top of the pre-dump.
        assert!(Path::new(&pre).join("pages-1.img").is_file());
        let fin = images.join("final").display().to_string();
        let o = rrc_criu(
            &env,
            &criu,
            &[
                "checkpoint",
                "--parent-path",
                "../pre",
                "--image-path",
                &fin,
                &id,
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(Path::new(&fin).join("parent").exists());
        env.assert_no_leftovers(&id);
        return;
    }
    let e = stderr(&o);
    assert!(e.contains("--pre-dump"), "{e}");
    assert!(e.contains("mem_track"), "{e}");
    assert!(e.contains(&criu.display().to_string()), "{e}");
    assert!(e.contains("CRIU 4."), "{e}");
    // --parent-path implies memory tracking too (runc sends track_mem).
    std::fs::create_dir_all(&pre).unwrap();
    let fin = images.join("final").display().to_string();
    let o = rrc_criu(
        &env,
        &criu,
        &[
            "checkpoint",
            "--parent-path",
            "../pre",
            "--image-path",
            &fin,
            &id,
        ],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("mem_track"), "{}", stderr(&o));
    let c = read_count(&out);
    wait_for("the count to go on", || read_count(&out) > c);
    assert_eq!(env.state(&id)["status"], "running");
    delete_clean(&env, &id);
}

#[test]
fn debian_criu_3_17_fails_with_a_clear_error() {
    require_env!();
    let debian = Path::new("/usr/sbin/criu");
    if !debian.is_file() {
        eprintln!("SKIPPED: Debian's criu is not installed (apt-get install criu)");
        return;
    }
    let (env, _out) = counter_env();
    let id = unique_id("old");
    let (_lines, pid) = start_counter(&env, &id);
    let img = env.dir.path().join("images").display().to_string();
    let o = env.rrc(&[
        "--criu",
        "/usr/sbin/criu",
        "checkpoint",
        "--image-path",
        &img,
        &id,
    ]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("CRIU 3.17.1 at /usr/sbin/criu"), "{e}");
    assert!(e.contains("feature check failed"), "{e}");
    assert!(e.contains(&id), "{e}");
    assert_eq!(env.state(&id)["status"], "running");
    assert!(!gone(pid));
    delete_clean(&env, &id);
}

#[test]
fn help_and_bad_input() {
    require_env!();
    // podman runs `checkpoint --help` as a probe.
    let env = TestEnv::new(&["true"]);
    let o = env.rrc(&["checkpoint", "--help"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for flag in [
        "--image-path",
        "--work-path",
        "--parent-path",
        "--leave-running",
        "--tcp-established",
        "--ext-unix-sk",
        "--shell-job",
        "--lazy-pages",
        "--status-fd",
        "--page-server",
        "--file-locks",
        "--pre-dump",
        "--manage-cgroups-mode",
        "--empty-ns",
        "--auto-dedup",
    ] {
        assert!(stdout(&o).contains(flag), "checkpoint --help lacks {flag}");
    }
    let o = env.rrc(&["restore", "--help"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for flag in [
        "--bundle",
        "--detach",
        "--pid-file",
        "--console-socket",
        "--no-subreaper",
        "--no-pivot",
        "--no-new-keyring",
        "--lazy-pages",
    ] {
        assert!(stdout(&o).contains(flag), "restore --help lacks {flag}");
    }
    let o = env.rrc(&["checkpoint", "nope"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));

    let Some(criu) = std::env::var_os("RR_CRIU_BIN") else {
        return;
    };
    let criu = criu.to_string_lossy().into_owned();
    // Restoring from a directory that holds no checkpoint leaves nothing.
    let empty = env.dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let id = unique_id("norest");
    let o = env.rrc_bundle(
        "restore",
        &[
            "--criu",
            &criu,
            "--image-path",
            empty.to_str().unwrap(),
            &id,
        ],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("descriptors.json"), "{}", stderr(&o));
    env.assert_no_leftovers(&id);
    // A bad page server address or cgroup mode is refused by name.
    let o = env.rrc(&["--criu", &criu, "checkpoint", "--page-server", "nope", "x"]);
    assert!(!o.status.success());
}

/// Two network namespaces joined by a veth pair stand for two hosts. The
/// source dumps with lazy pages and serves the memory from its page server;
/// the destination restores from a copy of the images while `criu
/// lazy-pages` fetches the pages over the veth. The restored container
/// goes on counting.
///
/// CRIU's lazy page server resizes a pipe to 819 pages (4 MiB once the
/// kernel rounds it), above the default fs.pipe-max-size (1 MiB); root on
/// this machine lacks CAP_SYS_RESOURCE, so the kernel refuses, and CRIU
/// 4.2.1 ignores that failure and then fails every page request with
/// `page-pipe: splice: -1: Bad file descriptor` (its /dev/null sink was
/// never opened). rrc refuses such a lazy checkpoint up front; the test
/// checks that, then raises the limit for the migration.
#[test]
fn lazy_migration_between_two_network_namespaces() {
    let criu = require_criu!();
    let tag = format!("{:x}", std::process::id() & 0xffff);
    let net = NetPair::new(&tag);
    let (env, out) = counter_env();
    let id = unique_id("lazy");
    let (_lines, pid) = start_counter(&env, &id);
    let _source = SourceGuard(pid);

    if !can_grow_pipe_to(LAZY_PIPE_BYTES) {
        let img = env.dir.path().join("refused").display().to_string();
        let o = rrc_criu(
            &env,
            &criu,
            &["checkpoint", "--lazy-pages", "--image-path", &img, &id],
        );
        assert!(!o.status.success(), "lazy checkpoint: {}", stdout(&o));
        let e = stderr(&o);
        assert!(e.contains("--lazy-pages"), "{e}");
        assert!(e.contains("/proc/sys/fs/pipe-max-size"), "{e}");
        assert!(e.contains("CAP_SYS_RESOURCE"), "{e}");
        assert!(e.contains("fs.pipe-max-size=4194304"), "{e}");
        assert_eq!(env.state(&id)["status"], "running");
        let c = read_count(&out);
        wait_for("the count to go on", || read_count(&out) > c);
    }
    let _limit = PipeMaxSize::at_least(4 << 20);
    assert!(can_grow_pipe_to(LAZY_PIPE_BYTES));

    let port = 20000 + (std::process::id() % 20000) as u16;
    let img_a = env.dir.path().join("images-a");
    let (status_r, status_w) = pipe();
    let w = status_w.as_raw_fd();
    let mut dump = net.run_in(&net.a, &rrc_bin());
    dump.arg("--root").arg(&env.root);
    dump.args(criu_args(&criu));
    dump.args([
        "checkpoint",
        "--lazy-pages",
        "--page-server",
        &format!("{}:{port}", net.addr_a),
        "--status-fd",
        "3",
        "--image-path",
    ]);
    dump.arg(&img_a).arg(&id);
    dump.stdin(Stdio::null());
    // SAFETY: dup2 only, in the forked child before exec.
    unsafe {
        dump.pre_exec(move || {
            if libc::dup2(w, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut dump = Kill(
        dump.stderr(Stdio::piped())
            .spawn()
            .expect("spawn checkpoint"),
    );
    drop(status_w);
    // The status fd gets its byte once the dump is done and pages are served.
    let mut byte = [0u8; 1];
    // SAFETY: reads at most one byte into `byte`.
    let n = unsafe { libc::read(status_r.as_raw_fd(), byte.as_mut_ptr().cast(), 1) };
    if n != 1 {
        let _ = dump.0.kill();
        let o = dump.take().wait_with_output().unwrap();
        panic!(
            "checkpoint --lazy-pages did not report ready: {}\n--- dump.log ---\n{}",
            stderr(&o),
            log_tail(&img_a.join("dump.log"))
        );
    }
    // The dumped tree stays frozen on the source (its memory is what the
    // page server sends) until the last page has gone.
    let at_dump = read_count(&out);

    // "Copy" the images and the bundle to the destination host.
    let img_b = env.dir.path().join("images-b");
    let bundle_b = env.dir.path().join("bundle-b");
    for (from, to) in [(&img_a, &img_b), (&env.bundle, &bundle_b)] {
        let s = Command::new("cp")
            .arg("-a")
            .arg(from)
            .arg(to)
            .status()
            .unwrap();
        assert!(s.success());
    }
    let mut lazy = net.run_in(&net.b, &criu);
    lazy.args([
        "lazy-pages",
        "--page-server",
        "--address",
        &net.addr_a,
        "--port",
    ])
    .arg(port.to_string())
    .arg("-D")
    .arg(&img_b)
    .args(["-o", "lazy-pages.log", "-v4"])
    .stdin(Stdio::null());
    let _lazy = Kill(lazy.spawn().expect("spawn criu lazy-pages"));
    wait_for("the lazy-pages daemon socket", || {
        img_b.join("lazy-pages.socket").exists()
    });

    let root_b = env.dir.path().join("state-b");
    let id2 = unique_id("lazyb");
    let mut restore = net.run_in(&net.b, &rrc_bin());
    restore.arg("--root").arg(&root_b).args(criu_args(&criu));
    restore.args(["restore", "-d", "--lazy-pages", "--image-path"]);
    restore.arg(&img_b).arg("-b").arg(&bundle_b).arg(&id2);
    let after = Lines::attach(&mut restore);
    let s = restore.status().unwrap();
    assert!(
        s.success(),
        "restore: {}\n{}",
        after.text(),
        std::fs::read_to_string(img_b.join("restore.log")).unwrap_or_default()
    );
    wait_for("the migrated counter", || after.counts().len() >= 3);
    let resumed = after.counts();
    assert!(resumed[0].1 > at_dump, "{resumed:?} after {at_dump}");
    assert!(resumed.iter().all(|(p, _)| p == "1"), "{resumed:?}");
    // The source's dump ends once every page has been fetched.
    let o = dump.take().wait_with_output().unwrap();
    assert!(o.status.success(), "lazy checkpoint: {}", stderr(&o));
    wait_for("the source container to stop", || gone(pid));
    env.assert_no_leftovers(&id);

    let o = Command::new(rrc_bin())
        .arg("--root")
        .arg(&root_b)
        .args(["delete", "-f", &id2])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!root_b.join(&id2).exists());
}

/// The pipe size CRIU 4.2.1's lazy page server asks for (819 pages of 4 KiB).
const LAZY_PIPE_BYTES: i32 = 819 * 4096;

fn can_grow_pipe_to(bytes: i32) -> bool {
    let (r, _w) = pipe();
    // SAFETY: F_SETPIPE_SZ on a pipe this function owns.
    unsafe { libc::fcntl(r.as_raw_fd(), libc::F_SETPIPE_SZ, bytes) >= 0 }
}

const PIPE_MAX_SIZE: &str = "/proc/sys/fs/pipe-max-size";

/// Raises fs.pipe-max-size for the life of the guard and puts the old value
/// back (a host-wide limit: it only lets unprivileged pipes grow larger).
struct PipeMaxSize(Option<String>);

impl PipeMaxSize {
    fn at_least(bytes: u64) -> PipeMaxSize {
        let old = std::fs::read_to_string(PIPE_MAX_SIZE).unwrap();
        if old.trim().parse::<u64>().unwrap() >= bytes {
            return PipeMaxSize(None);
        }
        std::fs::write(PIPE_MAX_SIZE, bytes.to_string()).unwrap();
        PipeMaxSize(Some(old))
    }
}

impl Drop for PipeMaxSize {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            let _ = std::fs::write(PIPE_MAX_SIZE, old.trim());
        }
    }
}

/// On a failed run, the frozen source tree and CRIU's detached page server
/// (`criu: dump ... -t <pid>`) would outlive the test.
struct SourceGuard(i32);

impl Drop for SourceGuard {
    fn drop(&mut self) {
        let needle = format!("-t {}", self.0);
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(p) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd);
            if cmd.starts_with("criu: dump") && cmd.contains(&needle) {
                // SAFETY: kill with plain integers.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
        }
        if !gone(self.0) {
            // SAFETY: kill with plain integers.
            unsafe { libc::kill(self.0, libc::SIGKILL) };
        }
    }
}

/// A child killed on drop.
struct Kill(Child);

impl Kill {
    fn take(mut self) -> Child {
        let pid = self.0.id();
        std::mem::replace(&mut self.0, dummy_child(pid))
    }
}

fn dummy_child(_: u32) -> Child {
    Command::new("true").spawn().expect("spawn true")
}

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Two named network namespaces joined by a veth pair, in 10.231.x.0/24.
struct NetPair {
    a: String,
    b: String,
    addr_a: String,
}

impl NetPair {
    fn new(tag: &str) -> NetPair {
        let a = format!("rrA{tag}");
        let b = format!("rrB{tag}");
        let x = u32::from_str_radix(tag, 16).unwrap_or(0) % 250 + 1;
        let addr_a = format!("10.231.{x}.1");
        let addr_b = format!("10.231.{x}.2");
        let pair = NetPair { a, b, addr_a };
        let va = format!("va{tag}");
        let vb = format!("vb{tag}");
        for cmd in [
            format!("netns add {}", pair.a),
            format!("netns add {}", pair.b),
            format!("link add {va} type veth peer name {vb}"),
            format!("link set {va} netns {}", pair.a),
            format!("link set {vb} netns {}", pair.b),
            format!("-n {} addr add {}/24 dev {va}", pair.a, pair.addr_a),
            format!("-n {} addr add {addr_b}/24 dev {vb}", pair.b),
            format!("-n {} link set {va} up", pair.a),
            format!("-n {} link set {vb} up", pair.b),
            format!("-n {} link set lo up", pair.a),
            format!("-n {} link set lo up", pair.b),
        ] {
            let o = Command::new("ip")
                .args(cmd.split(' '))
                .output()
                .expect("ip");
            assert!(o.status.success(), "ip {cmd}: {}", stderr(&o));
        }
        let ping = Command::new("ip")
            .args([
                "netns",
                "exec",
                &pair.b,
                "/bin/busybox",
                "ping",
                "-c1",
                "-W5",
                &pair.addr_a,
            ])
            .output()
            .expect("ping");
        assert!(
            ping.status.success(),
            "no route between the namespaces: {}",
            stdout(&ping)
        );
        pair
    }

    /// A command run in network namespace `ns` only (mounts and the rest
    /// stay the host's, so paths mean the same on both "hosts").
    fn run_in(&self, ns: &str, prog: &Path) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{ns}")).arg("--").arg(prog);
        c
    }
}

impl Drop for NetPair {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// The end of a CRIU log, for a failure message (the e2e VM's temp dirs
/// are gone by the time anyone could read them).
fn log_tail(p: &Path) -> String {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(25)..].join("\n")
}
