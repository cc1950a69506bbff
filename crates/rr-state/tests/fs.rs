//! Filesystem behaviour of the state root and container directories, on a real
//! filesystem in temporary directories. Tests that create processes live in
//! `multiprocess.rs`: a child forked here would briefly share the locks that parallel
//! tests hold.

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use common::{mode_of, sample_state};
use rr_state::{
    derive_status, process_alive, read_proc_stat, ContainerId, Error, OciState, State, StateRoot,
    Status,
};

fn id(s: &str) -> ContainerId {
    ContainerId::new(s).unwrap()
}

fn root() -> (tempfile::TempDir, StateRoot) {
    let tmp = tempfile::tempdir().unwrap();
    let root = StateRoot::open(&tmp.path().join("a/b/rrc")).unwrap();
    (tmp, root)
}

#[test]
fn save_load_round_trip() {
    let (_tmp, root) = root();
    let (dir, _lock) = root.create(&id("c1")).unwrap();
    let state = sample_state("c1", "A", 1000);
    dir.save(&state).unwrap();
    assert_eq!(dir.load().unwrap(), state);
    assert_eq!(mode_of(&dir.state_path()), 0o600);
    // A second save replaces the first and leaves no temporary file.
    let other = sample_state("c1", "B", 10);
    dir.save(&other).unwrap();
    assert_eq!(dir.load().unwrap(), other);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["state.json".to_string()]);
}

#[test]
fn runc_written_state_loads_and_round_trips() {
    let text = include_str!("data/runc-1.1.5-state.json");
    let path = Path::new("data/runc-1.1.5-state.json");
    let state = State::from_json_slice(text.as_bytes(), path).unwrap();
    assert_eq!(state.id, "ctr1");
    assert_eq!(state.init_process_pid, 5901);
    assert_eq!(state.init_process_start, 18170);
    assert_eq!(state.created, "2026-11-29T01:55:47.388516936Z");
    assert_eq!(state.bundle(), Some("/tmp/runcsample.UW1v"));
    assert_eq!(state.config.rootfs, "/tmp/runcsample.UW1v/rootfs");
    assert_eq!(state.cgroup_paths[""], "/sys/fs/cgroup/unified/ctr1");
    assert_eq!(state.namespace_paths["NEWPID"], "/proc/5901/ns/pid");
    assert_eq!(state.external_descriptors.len(), 3);
    assert!(state.config.spec.is_null());
    assert_eq!(state.config.extra["hostname"], "runc");
    assert!(state.config.extra.contains_key("mounts"));
    assert!(state.config.extra.contains_key("Hooks"));
    // runc keeps annotations as labels.
    let ann = state.annotations();
    assert_eq!(ann.len(), 1);
    assert_eq!(ann["org.example.key"], "value");

    // Every key of runc's document survives a save/load cycle with the same values.
    let (_tmp, root) = root();
    let (dir, _lock) = root.create(&id("ctr1")).unwrap();
    dir.save(&state).unwrap();
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.state_path()).unwrap()).unwrap();
    let original: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(written, original);
}

#[test]
fn state_with_extra_runc_keys_loads() {
    // Hand-written with runc's key set plus keys rr does not know, at both levels.
    let text = r#"{"id":"x1","init_process_pid":77,"init_process_start":9,
        "created":"2026-01-02T03:04:05.5Z",
        "config":{"rootfs":"/r","labels":["bundle=/b"],"no_pivot_root":true,
                  "future_key":{"nested":[1,2,3]}},
        "rootless":true,"cgroup_paths":{"":"/sys/fs/cgroup/x1"},
        "namespace_paths":{},"external_descriptors":[],"intel_rdt_path":"",
        "future_top_level":5}"#;
    let state = State::from_json_slice(text.as_bytes(), Path::new("s")).unwrap();
    assert!(state.rootless);
    assert_eq!(state.bundle(), Some("/b"));
    assert_eq!(state.config.extra["future_key"]["nested"][2], 3);
    assert_eq!(state.config.extra["no_pivot_root"], true);
}

#[test]
fn corrupt_file_names_path_and_position() {
    let (_tmp, root) = root();
    let (dir, _lock) = root.create(&id("bad")).unwrap();
    std::fs::write(
        dir.state_path(),
        b"{\"id\": \"bad\",\n \"init_process_pid\": \"x\"}",
    )
    .unwrap();
    let err = dir.load().unwrap_err();
    match &err {
        Error::Corrupt {
            path, line, column, ..
        } => {
            assert_eq!(path, &dir.state_path());
            assert_eq!(*line, 2);
            assert!(*column > 1);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("state.json"), "{err}");
    std::fs::write(dir.state_path(), b"").unwrap();
    assert!(matches!(dir.load(), Err(Error::Corrupt { .. })));
}

#[test]
fn create_open_list_destroy() {
    let (tmp, root) = root();
    assert_eq!(mode_of(root.path()), 0o700);
    assert_eq!(mode_of(&tmp.path().join("a")), 0o700);
    let (c2, l2) = root.create(&id("c2")).unwrap();
    let (c1, l1) = root.create(&id("c1")).unwrap();
    assert_eq!(mode_of(c1.path()), 0o711);
    match root.create(&id("c1")) {
        Err(e @ Error::AlreadyExists { .. }) => assert!(e.to_string().contains("c1"), "{e}"),
        other => panic!("unexpected {other:?}"),
    }
    // Without state.json a directory is not listed yet.
    assert!(root.list().unwrap().is_empty());
    c2.save(&sample_state("c2", "x", 1)).unwrap();
    c1.save(&sample_state("c1", "x", 1)).unwrap();
    // Entries that are not containers are skipped.
    std::fs::create_dir(root.path().join("bad id")).unwrap();
    std::fs::write(root.path().join("bad id/state.json"), b"{}").unwrap();
    std::fs::write(root.path().join("plainfile"), b"").unwrap();
    std::fs::create_dir(root.path().join("empty")).unwrap();
    assert_eq!(root.list().unwrap(), vec![id("c1"), id("c2")]);

    let again = root.open_container(&id("c1")).unwrap();
    assert_eq!(again.id().as_str(), "c1");
    assert_eq!(again.load().unwrap().id, "c1");
    match root.open_container(&id("nope")) {
        Err(e @ Error::NotFound { .. }) => assert!(e.to_string().contains("nope"), "{e}"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        root.open_container(&id("plainfile")),
        Err(Error::NotFound { .. })
    ));

    drop(l1);
    drop(l2);
    let path = c1.path().to_path_buf();
    c1.destroy().unwrap();
    assert!(!path.exists());
    // Destroying twice is fine.
    again.clone().destroy().unwrap();
    assert!(matches!(again.load(), Err(Error::NotFound { .. })));
    assert_eq!(root.list().unwrap(), vec![id("c2")]);
    // A root below a regular file cannot be made.
    assert!(matches!(
        StateRoot::open(&root.path().join("plainfile/sub")),
        Err(Error::Io { .. })
    ));
    // An existing root is opened as it is.
    let reopened = StateRoot::open(root.path()).unwrap();
    assert_eq!(reopened.path(), root.path());
}

#[test]
fn lock_is_exclusive_between_handles_and_released_on_drop() {
    let (_tmp, root) = root();
    let (dir, lock) = root.create(&id("l")).unwrap();
    let other = root.open_container(&id("l")).unwrap();
    // flock conflicts between open file descriptions even within one process.
    assert!(other.try_lock().unwrap().is_none());
    assert_eq!(lock.path(), dir.path());
    drop(lock);
    let l2 = other.try_lock().unwrap().expect("free after drop");
    assert!(dir.try_lock().unwrap().is_none());
    drop(l2);
    dir.lock().unwrap();
}

#[test]
fn lock_after_destroy_is_not_found() {
    let (_tmp, root) = root();
    let (dir, lock) = root.create(&id("gone")).unwrap();
    let other = root.open_container(&id("gone")).unwrap();
    dir.destroy().unwrap();
    drop(lock);
    assert!(matches!(other.lock(), Err(Error::NotFound { .. })));
    assert!(matches!(other.try_lock(), Err(Error::NotFound { .. })));
    // A handle is a name: once a new container takes the name, the handle reaches it.
    let (_new, new_lock) = root.create(&id("gone")).unwrap();
    drop(new_lock);
    assert!(other.lock().is_ok());
}

/// Creates share the root's lock: one in its mkdir-to-lock window (a shared
/// lock on the root, held here) does not hold up another create, as an
/// exclusive one did (a convoy at 100 creates at once), while the removal of
/// an unfinished create still waits for it.
#[test]
fn creates_share_the_root_lock_and_removal_waits_for_them() {
    use std::os::fd::AsRawFd;
    use std::sync::mpsc;
    use std::time::Duration;
    let (_tmp, root) = root();
    let (dead, dead_lock) = root.create(&id("dead")).unwrap();
    let window = std::fs::File::open(root.path()).unwrap();
    // SAFETY: flock on an fd this test owns.
    assert_eq!(unsafe { libc::flock(window.as_raw_fd(), libc::LOCK_SH) }, 0);

    let (tx, rx) = mpsc::channel();
    let other = root.clone();
    std::thread::spawn(move || {
        let _ = tx.send(other.create(&id("other")).is_ok());
    });
    let created = rx.recv_timeout(Duration::from_secs(10));
    assert_eq!(created, Ok(true), "a create waited for another's window");

    let (tx, rx) = mpsc::channel();
    let remover = root.clone();
    std::thread::spawn(move || {
        let r = remover.remove_unfinished(dead, dead_lock, |_| Ok::<(), Error>(()));
        let _ = tx.send(r.is_ok_and(|removed| removed));
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "remove_unfinished did not wait for a create in its window"
    );
    drop(window);
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(true));
    assert!(!root.path().join("dead").exists());
}

/// A staged state is flushed to a temporary file only: `state.json` appears
/// at the commit, and a stage dropped uncommitted leaves nothing.
#[test]
fn stage_then_commit_or_drop() {
    let (_tmp, root) = root();
    let (dir, _lock) = root.create(&id("s")).unwrap();
    let names = |d: &Path| -> Vec<String> {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    let staged = dir.stage(&sample_state("s", "A", 10)).unwrap();
    assert!(!dir.state_path().exists());
    assert_eq!(names(dir.path()).len(), 1);
    assert!(names(dir.path())[0].starts_with(rr_state::TEMP_PREFIX));
    drop(staged);
    assert!(names(dir.path()).is_empty());
    let staged = dir.stage(&sample_state("s", "B", 20)).unwrap();
    staged.commit().unwrap();
    assert_eq!(names(dir.path()), vec!["state.json".to_string()]);
    assert_eq!(dir.load().unwrap(), sample_state("s", "B", 20));
    assert_eq!(mode_of(&dir.state_path()), 0o600);
}

#[test]
fn lock_removes_stray_temp_files() {
    let (_tmp, root) = root();
    let (dir, lock) = root.create(&id("t")).unwrap();
    dir.save(&sample_state("t", "A", 10)).unwrap();
    std::fs::write(dir.path().join("state-123-0-abc"), b"{partial").unwrap();
    std::fs::write(dir.path().join("statefoo"), b"").unwrap();
    drop(lock);
    let _lock = dir.lock().unwrap();
    assert!(!dir.path().join("state-123-0-abc").exists());
    assert!(dir.path().join("statefoo").exists());
    assert_eq!(dir.load().unwrap(), sample_state("t", "A", 10));
}

#[test]
fn exec_fifo_mode_and_owner() {
    let (_tmp, root) = root();
    let (dir, _lock) = root.create(&id("f")).unwrap();
    assert!(!dir.exec_fifo_exists());
    let path = dir.create_exec_fifo(1234, 5678).unwrap();
    assert_eq!(path, dir.fifo_path());
    assert!(path.ends_with("exec.fifo"));
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_fifo());
    assert_eq!(mode_of(&path), 0o622);
    assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
    assert!(dir.exec_fifo_exists());
    assert!(matches!(dir.create_exec_fifo(0, 0), Err(Error::Io { .. })));
    std::fs::remove_file(&path).unwrap();
    assert!(!dir.exec_fifo_exists());
}

fn state_for_pid(pid: i32, start: u64) -> State {
    let mut s = sample_state("p", "x", 1);
    s.init_process_pid = pid;
    s.init_process_start = start;
    s
}

#[test]
fn derive_status_live_reused_dead() {
    let proc_root = Path::new("/proc");
    let me = std::process::id() as i32;
    let start = read_proc_stat(proc_root, me).unwrap().start_time;
    let live = state_for_pid(me, start);
    assert!(process_alive(proc_root, me, start));
    assert_eq!(
        derive_status(&live, proc_root, false, false),
        Status::Running
    );
    assert_eq!(
        derive_status(&live, proc_root, true, false),
        Status::Created
    );
    assert_eq!(derive_status(&live, proc_root, true, true), Status::Paused);
    assert_eq!(derive_status(&live, proc_root, false, true), Status::Paused);

    // Same pid, different start time: the pid was reused by another process.
    let reused = state_for_pid(me, start + 1);
    assert_eq!(
        derive_status(&reused, proc_root, true, true),
        Status::Stopped
    );

    for pid in [0, -1] {
        assert_eq!(
            derive_status(&state_for_pid(pid, 0), proc_root, true, true),
            Status::Stopped
        );
    }
}

#[test]
fn derive_status_with_fake_proc() {
    // A proc root is only a directory of <pid>/stat files, so every state letter can be
    // checked without making such processes.
    let tmp = tempfile::tempdir().unwrap();
    let write = |pid: i32, comm: &str, st: char, start: u64| {
        let dir = tmp.path().join(pid.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let filler: Vec<String> = (4..22).map(|n| n.to_string()).collect();
        let line = format!("{pid} ({comm}) {st} {} {start} 1 2\n", filler.join(" "));
        std::fs::write(dir.join("stat"), line).unwrap();
    };
    write(10, "sleep", 'S', 500);
    write(11, "a) (b c", 'R', 600);
    write(12, "dead", 'X', 700);
    write(13, "zomb", 'Z', 800);
    let p = tmp.path();
    assert_eq!(
        derive_status(&state_for_pid(10, 500), p, false, false),
        Status::Running
    );
    assert_eq!(
        derive_status(&state_for_pid(11, 600), p, true, false),
        Status::Created
    );
    assert_eq!(
        derive_status(&state_for_pid(12, 700), p, false, false),
        Status::Stopped
    );
    assert_eq!(
        derive_status(&state_for_pid(13, 800), p, false, true),
        Status::Stopped
    );
    assert_eq!(
        derive_status(&state_for_pid(14, 800), p, false, false),
        Status::Stopped
    );
}

#[test]
fn oci_state_key_order() {
    let mut s = sample_state("web", "v", 1);
    s.init_process_pid = 4242;
    let json = serde_json::to_string(&OciState::new(&s, Status::Running)).unwrap();
    assert_eq!(
        json,
        r#"{"ociVersion":"1.0.2","id":"web","pid":4242,"status":"running","bundle":"/bundles/web","rootfs":"/bundles/web/rootfs","created":"2026-11-29T01:53:20.123456789Z","annotations":{"org.example.tag":"v"},"owner":""}"#
    );
    // Stopped containers report pid 0; empty annotations are omitted.
    s.config.spec = serde_json::json!({});
    let json = serde_json::to_string(&OciState::new(&s, Status::Stopped)).unwrap();
    assert_eq!(
        json,
        r#"{"ociVersion":"1.0.2","id":"web","pid":0,"status":"stopped","bundle":"/bundles/web","rootfs":"/bundles/web/rootfs","created":"2026-11-29T01:53:20.123456789Z","owner":""}"#
    );
}

#[test]
fn default_root_paths() {
    assert_eq!(
        rr_state::default_root(false).unwrap(),
        Path::new(rr_state::DEFAULT_ROOT)
    );
    assert_eq!(rr_state::DEFAULT_ROOT, "/run/rrc");
    // Reading the environment is racy with other tests only if they write it; none do.
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => {
            assert_eq!(
                rr_state::default_root(true).unwrap(),
                Path::new(&d).join("rrc")
            );
        }
        _ => assert!(matches!(
            rr_state::default_root(true),
            Err(Error::NoRuntimeDir)
        )),
    }
}
