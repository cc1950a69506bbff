//! rrc under resource exhaustion: a full state filesystem, few file
//! descriptors, a pids cgroup at its limit, 512 KiB of memory. Each run
//! either works or fails with an error that names the cause, and leaves
//! nothing behind.

use std::ffi::CString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use rr_tests::{require_env, stderr, unique_id, TestEnv};

/// Runs `cmd` with stdio in files (a container keeps pipes open).
fn output_via_files(env: &TestEnv, mut cmd: Command, tag: &str) -> Output {
    let (o, e) = (
        env.dir.path().join(format!("{tag}.out")),
        env.dir.path().join(format!("{tag}.err")),
    );
    let status = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).expect("out"))
        .stderr(std::fs::File::create(&e).expect("err"))
        .status()
        .expect("spawn rrc");
    Output {
        status,
        stdout: std::fs::read(&o).unwrap_or_default(),
        stderr: std::fs::read(&e).unwrap_or_default(),
    }
}

/// Asserts the outcome is success or a refusal naming one of `causes`,
/// then that `delete -f` (with no limits) leaves nothing.
fn works_or_names_cause(env: &TestEnv, id: &str, out: &Output, causes: &[&str], what: &str) {
    let err = stderr(out);
    assert!(!err.contains("panicked"), "{what}: {err}");
    if !out.status.success() {
        assert!(
            causes.iter().any(|c| err.contains(c)),
            "{what}: the error does not name the cause ({causes:?}): {err} (status {:?})",
            out.status
        );
    }
    delete_leaves_nothing(env, id, what);
}

/// `delete -f` (with no limits) works and leaves nothing of `id`.
fn delete_leaves_nothing(env: &TestEnv, id: &str, what: &str) {
    let d = env.rrc(&["delete", "-f", id]);
    assert!(d.status.success(), "{what}: delete -f: {}", stderr(&d));
    let left = env.leftovers(id);
    assert!(left.is_empty(), "{what}: leftovers {left:?}");
}

/// `rrc run` of the bundle under a new id made from `prefix`, with
/// `limit` applied to the rrc process before it runs; stdio in files.
fn run_limited(env: &TestEnv, prefix: &str, limit: impl FnOnce(&mut Command)) -> (String, Output) {
    let id = unique_id(prefix);
    let b = env.bundle.display().to_string();
    let mut cmd = env.rrc_cmd(&["run", "-b", &b, &id]);
    limit(&mut cmd);
    let out = output_via_files(env, cmd, &id);
    (id, out)
}

struct Tmpfs(PathBuf);
impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn state_root_on_a_full_filesystem() {
    require_env!();
    let env = TestEnv::new(&["sleep", "600"]);
    let mnt = env.dir.path().join("tiny");
    std::fs::create_dir(&mnt).expect("mkdir");
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tiny"])
        .arg(&mnt)
        .status()
        .expect("mount");
    assert!(ok.success(), "mount tmpfs");
    let _guard = Tmpfs(mnt.clone());
    let root = mnt.join("state");
    std::fs::create_dir(&root).expect("state root");
    // Fill it up.
    let mut f = std::fs::File::create(mnt.join("fill")).expect("fill");
    let chunk = vec![0u8; 4096];
    while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    drop(f);
    let id = unique_id("enospc");
    let mut cmd = Command::new(rr_tests::rrc_bin());
    cmd.arg("--root")
        .arg(&root)
        .args(["create", "-b"])
        .arg(&env.bundle)
        .arg(&id);
    let out = output_via_files(&env, cmd, "enospc");
    let err = stderr(&out);
    assert!(!out.status.success(), "create on a full fs succeeded");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(err.contains("state"), "the error names the file: {err}");
    let left = rr_tests::leftovers::find(&rr_tests::leftovers::Scope {
        id: id.clone(),
        root: root.clone(),
        bundle: env.bundle.clone(),
        pids: Vec::new(),
        env_marker: None,
        executables: Vec::new(),
    });
    assert!(left.is_empty(), "leftovers {left:?}");
}

#[test]
fn low_open_file_limit() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    // The default spec raises RLIMIT_NOFILE to 1024, which needs
    // CAP_SYS_RESOURCE above the caller's hard limit: keep the test about
    // rrc's own descriptors.
    env.edit_config(|c| c["process"]["rlimits"] = serde_json::json!([]));
    for limit in [3u64, 4, 5, 6, 8, 10, 12, 16, 32] {
        let (id, out) = run_limited(&env, "nofile", |cmd| {
            // SAFETY: setrlimit is async-signal-safe.
            unsafe {
                cmd.pre_exec(move || {
                    let r = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        });
        eprintln!(
            "RLIMIT_NOFILE {limit}: {:?} {}",
            out.status.code(),
            stderr(&out).trim()
        );
        works_or_names_cause(
            &env,
            &id,
            &out,
            // "Error 24" (EMFILE) is the dynamic loader's, before rrc runs.
            &["Too many open files", "Error 24"],
            &format!("RLIMIT_NOFILE={limit}"),
        );
    }
}

/// A new cgroup `name` in the v1 hierarchy at `hier` (None when that
/// hierarchy is absent), removed on drop.
struct Cgroup(PathBuf);
impl Cgroup {
    fn new(hier: &str, name: &str) -> Option<Cgroup> {
        let base = Path::new("/sys/fs/cgroup").join(hier);
        if !base.join("cgroup.procs").exists() {
            return None;
        }
        let p = base.join(name);
        std::fs::create_dir(&p).ok()?;
        Some(Cgroup(p))
    }
    fn set(&self, file: &str, v: &str) {
        std::fs::write(self.0.join(file), v).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    fn get(&self, file: &str) -> String {
        std::fs::read_to_string(self.0.join(file)).unwrap_or_default()
    }
    /// Makes `cmd` join this cgroup between fork and exec.
    fn join_before_exec(&self, cmd: &mut Command) {
        let procs = CString::new(
            self.0
                .join("cgroup.procs")
                .into_os_string()
                .into_encoded_bytes(),
        )
        .expect("path");
        // SAFETY: open/write/close are async-signal-safe; the path was
        // allocated before the fork.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let n = libc::write(fd, b"0".as_ptr().cast(), 1);
                libc::close(fd);
                if n != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}
impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn pids_cgroup_at_its_limit() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    for max in [1, 2, 3, 4] {
        let Some(cg) = Cgroup::new("pids", &unique_id("rr-pids")) else {
            eprintln!("SKIPPED: no cgroup v1 pids hierarchy at /sys/fs/cgroup/pids");
            return;
        };
        cg.set("pids.max", &max.to_string());
        let (id, out) = run_limited(&env, "pidsmax", |cmd| cg.join_before_exec(cmd));
        eprintln!(
            "pids.max {max}: {:?} {}",
            out.status.code(),
            stderr(&out).trim()
        );
        works_or_names_cause(
            &env,
            &id,
            &out,
            &["Resource temporarily unavailable"],
            &format!("pids.max={max}"),
        );
    }
}

#[test]
fn half_a_megabyte_of_memory() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    let Some(cg) = Cgroup::new("memory", &unique_id("rr-mem")) else {
        eprintln!("SKIPPED: no cgroup v1 memory hierarchy at /sys/fs/cgroup/memory");
        return;
    };
    cg.set("memory.limit_in_bytes", "524288");
    let (id, out) = run_limited(&env, "mem512k", |cmd| cg.join_before_exec(cmd));
    let failcnt: u64 = cg.get("memory.failcnt").trim().parse().unwrap_or(0);
    eprintln!(
        "512 KiB: status {:?}, memory.failcnt {failcnt}, stderr {}",
        out.status,
        stderr(&out).trim()
    );
    if out.status.signal() == Some(libc::SIGKILL) {
        // The OOM killer leaves rrc no chance to speak; the cgroup names
        // the cause instead.
        assert!(failcnt > 0, "rrc SIGKILLed without hitting the limit");
        delete_leaves_nothing(&env, &id, "memory.limit_in_bytes=512K");
    } else {
        works_or_names_cause(
            &env,
            &id,
            &out,
            &["Cannot allocate memory", "memory"],
            "memory.limit_in_bytes=512K",
        );
    }
}
