//! Tests that fork or change the umask. They run as a plain program (harness = false) so
//! that the process is single-threaded: a forked child may then use any code, and the
//! process-wide umask is not shared with tests running in parallel.

mod common;

use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use common::{mode_of, sample_state};
use std::path::Path;

use rr_state::{
    derive_status, process_alive, read_proc_stat, ContainerId, Error, State, StateRoot, Status,
};

fn id(s: &str) -> ContainerId {
    ContainerId::new(s).unwrap()
}

/// Forks; the child closes `inherited` (the parent's lock descriptors, which it would
/// otherwise share), runs `f` and exits with its return value without unwinding into the
/// parent's code or running its destructors (which would delete the parent's temp dirs).
fn fork_child(inherited: &[RawFd], f: impl FnOnce() -> i32) -> libc::pid_t {
    // SAFETY: this program is single-threaded, so the child may run arbitrary code.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: closes descriptors the child inherited and does not use; arms a timer so
        // that a child stuck on a lock dies instead of hanging the run.
        unsafe {
            for fd in inherited {
                libc::close(*fd);
            }
            libc::alarm(60);
        }
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(101);
        // SAFETY: ends the child immediately, skipping the parent's atexit and destructors.
        unsafe { libc::_exit(code) };
    }
    pid
}

/// Waits for `pid`; `Some(exit code)`, or `None` if it was killed by a signal.
fn wait_exit(pid: libc::pid_t) -> Option<i32> {
    let mut status = 0;
    // SAFETY: waits for our own child; `status` is a valid int.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid, "waitpid: {}", std::io::Error::last_os_error());
    libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status))
}

fn still_running(pid: libc::pid_t) -> bool {
    let mut status = 0;
    // SAFETY: non-blocking wait on our own child.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    r == 0
}

/// A pipe whose read end blocks until the child has written one byte.
struct Signal {
    read: libc::c_int,
    write: libc::c_int,
}

impl Signal {
    fn new() -> Signal {
        let mut fds = [0; 2];
        // SAFETY: fds has room for the two descriptors pipe writes.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        Signal {
            read: fds[0],
            write: fds[1],
        }
    }
    fn notify(&self) {
        // SAFETY: writes one byte from a valid buffer to our pipe.
        unsafe { libc::write(self.write, b"x".as_ptr().cast(), 1) };
    }
    fn wait(&self) {
        let mut b = 0u8;
        // SAFETY: reads one byte into a valid buffer from our pipe.
        let n = unsafe { libc::read(self.read, (&mut b as *mut u8).cast(), 1) };
        assert_eq!(n, 1, "child did not signal");
    }
}

impl Drop for Signal {
    fn drop(&mut self) {
        // SAFETY: closes descriptors this value owns.
        unsafe {
            libc::close(self.read);
            libc::close(self.write);
        }
    }
}

fn modes_are_exact_under_umask() {
    for mask in [0o022, 0o077, 0o277, 0o000] {
        // SAFETY: umask only swaps an integer; nothing else runs concurrently here.
        let old = unsafe { libc::umask(mask) };
        let tmp = tempfile::tempdir().unwrap();
        let root = StateRoot::open(&tmp.path().join("run/rrc")).unwrap();
        let (dir, _lock) = root.create(&id("m")).unwrap();
        dir.save(&sample_state("m", "A", 10)).unwrap();
        let fifo = dir.create_exec_fifo(0, 0).unwrap();
        let got = [
            mode_of(&tmp.path().join("run")),
            mode_of(root.path()),
            mode_of(dir.path()),
            mode_of(&dir.state_path()),
            mode_of(&fifo),
        ];
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        assert_eq!(got, [0o700, 0o700, 0o711, 0o600, 0o622], "umask {mask:03o}");
    }
}

fn lock_excludes_other_process_and_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    let root = StateRoot::open(tmp.path()).unwrap();
    let (dir, lock) = root.create(&id("x")).unwrap();
    dir.save(&sample_state("x", "parent-initial", 10)).unwrap();
    let started = Signal::new();
    let child_dir = dir.clone();
    let pid = fork_child(&[lock.as_raw_fd()], || {
        if child_dir.try_lock().map(|l| l.is_some()).unwrap_or(true) {
            return 10;
        }
        started.notify();
        let Ok(_l) = child_dir.lock() else { return 11 };
        // The parent's last write happened before it released the lock.
        match child_dir.load() {
            Ok(s) if s.config.labels.contains(&"tag=parent-final".to_string()) => {}
            _ => return 12,
        }
        if child_dir.save(&sample_state("x", "child", 10)).is_err() {
            return 13;
        }
        0
    });
    started.wait();
    std::thread::sleep(Duration::from_millis(300));
    assert!(still_running(pid), "child should be blocked on the lock");
    assert_eq!(dir.load().unwrap(), sample_state("x", "parent-initial", 10));
    dir.save(&sample_state("x", "parent-final", 10)).unwrap();
    drop(lock);
    assert_eq!(wait_exit(pid), Some(0));
    assert_eq!(dir.load().unwrap(), sample_state("x", "child", 10));
}

fn lock_is_released_when_holder_is_killed() {
    let tmp = tempfile::tempdir().unwrap();
    let root = StateRoot::open(tmp.path()).unwrap();
    let (dir, lock) = root.create(&id("k")).unwrap();
    drop(lock);
    let locked = Signal::new();
    let child_dir = dir.clone();
    let pid = fork_child(&[], || {
        let Ok(_l) = child_dir.lock() else { return 10 };
        locked.notify();
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    locked.wait();
    assert!(dir.try_lock().unwrap().is_none());
    // SAFETY: signals our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    assert_eq!(wait_exit(pid), None);
    assert!(dir.try_lock().unwrap().is_some());
}

fn waiting_lock_sees_destroy() {
    let tmp = tempfile::tempdir().unwrap();
    let root = StateRoot::open(tmp.path()).unwrap();
    let (dir, lock) = root.create(&id("d")).unwrap();
    let waiting = Signal::new();
    let child_dir = dir.clone();
    let pid = fork_child(&[lock.as_raw_fd()], || {
        waiting.notify();
        match child_dir.lock() {
            Err(Error::NotFound { id }) if id == "d" => 0,
            Err(_) => 10,
            Ok(_) => 11,
        }
    });
    waiting.wait();
    std::thread::sleep(Duration::from_millis(200));
    assert!(still_running(pid), "child should be blocked on the lock");
    dir.destroy().unwrap();
    drop(lock);
    assert_eq!(wait_exit(pid), Some(0));
}

fn state_for_pid(pid: i32, start: u64) -> State {
    let mut s = sample_state("p", "x", 1);
    s.init_process_pid = pid;
    s.init_process_start = start;
    s
}

fn derive_status_zombie_then_dead() {
    let pid = fork_child(&[], || 0);
    let proc_root = Path::new("/proc");
    let mut info = None;
    for _ in 0..1000 {
        info = read_proc_stat(proc_root, pid);
        if info.is_some_and(|i| i.state == 'Z') {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let info = info.expect("an unreaped child keeps its /proc entry");
    assert_eq!(info.state, 'Z');
    assert!(!process_alive(proc_root, pid, info.start_time));
    let st = state_for_pid(pid, info.start_time);
    assert_eq!(derive_status(&st, proc_root, true, false), Status::Stopped);
    assert_eq!(wait_exit(pid), Some(0));
    // Reaped: the /proc entry is gone.
    assert!(read_proc_stat(proc_root, pid).is_none());
    assert_eq!(derive_status(&st, proc_root, true, true), Status::Stopped);
}

fn main() {
    // A test that deadlocks is killed by SIGALRM instead of hanging the whole run.
    // SAFETY: arms a timer; no handler is installed, so the default action ends the process.
    unsafe { libc::alarm(120) };
    let tests: &[(&str, fn())] = &[
        ("modes_are_exact_under_umask", modes_are_exact_under_umask),
        (
            "lock_excludes_other_process_and_blocks",
            lock_excludes_other_process_and_blocks,
        ),
        (
            "lock_is_released_when_holder_is_killed",
            lock_is_released_when_holder_is_killed,
        ),
        ("waiting_lock_sees_destroy", waiting_lock_sees_destroy),
        (
            "derive_status_zombie_then_dead",
            derive_status_zombie_then_dead,
        ),
    ];
    if std::env::args().any(|a| a == "--list") {
        for (name, _) in tests {
            println!("{name}: test");
        }
        return;
    }
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut failed = 0;
    for (name, test) in tests {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let ok = std::panic::catch_unwind(test).is_ok();
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        failed += usize::from(!ok);
    }
    if failed > 0 {
        eprintln!("{failed} multiprocess test(s) failed");
        std::process::exit(1);
    }
}
