//! The crash test: a writer process saving two large states in turn is killed with
//! SIGKILL at random moments. After every kill `state.json` must hold exactly one of the
//! two states, and the temporary files it left must be removed by the next `lock`.
//! Readers running while the writer writes must also only ever see one of the two.
//!
//! Runs as a plain program (harness = false) so that the process is single-threaded and
//! the forked writer may run ordinary code. Iterations: `RR_STATE_CRASH_ITERS` (default
//! 300); seed: `RR_STATE_CRASH_SEED` (default from the clock, printed).

mod common;

use std::time::{Duration, Instant};

use common::sample_state;
use rr_state::{ContainerDir, ContainerId, State, StateRoot, TEMP_PREFIX};

/// Size of the filler in each state's config, so that a write takes real time.
const PAD: usize = 64 * 1024;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

fn temp_files(dir: &ContainerDir) -> usize {
    std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(TEMP_PREFIX))
        })
        .count()
}

fn check(dir: &ContainerDir, a: &State, b: &State) -> char {
    let got = dir
        .load()
        .unwrap_or_else(|e| panic!("state.json unreadable: {e}"));
    if &got == a {
        'A'
    } else if &got == b {
        'B'
    } else {
        panic!("state.json is neither A nor B (id {:?})", got.id)
    }
}

/// The writer: saves A and B in turn until it is killed. Never returns.
fn writer(dir: &ContainerDir, a: &State, b: &State, ready_fd: libc::c_int) -> ! {
    let Ok(lock) = dir.lock() else {
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(3) }
    };
    // SAFETY: one byte from a valid buffer to our pipe.
    unsafe { libc::write(ready_fd, b"r".as_ptr().cast(), 1) };
    loop {
        for s in [a, b] {
            if dir.save(s).is_err() {
                // SAFETY: as above.
                unsafe { libc::_exit(4) }
            }
        }
        // Keep the lock alive for as long as the loop runs.
        let _ = &lock;
    }
}

fn main() {
    // Behave like a libtest binary towards runners that list tests or pass a name filter.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("crash: test");
        return;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if !filters.is_empty() && !filters.iter().any(|f| "crash".contains(f.as_str())) {
        return;
    }
    // SAFETY: arms a timer whose default action ends a run that hangs.
    unsafe { libc::alarm(600) };
    let iters: usize = std::env::var("RR_STATE_CRASH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let seed: u64 = std::env::var("RR_STATE_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
        | 1;
    println!("crash test: {iters} iterations, RR_STATE_CRASH_SEED={seed}");
    let mut rng = XorShift(seed);

    let tmp = tempfile::tempdir().unwrap();
    let root = StateRoot::open(&tmp.path().join("rrc")).unwrap();
    let id = ContainerId::new("crash").unwrap();
    let a = sample_state("crash", "A", PAD);
    let b = sample_state("crash", "B", PAD);
    assert_ne!(a, b);
    let (dir, lock) = root.create(&id).unwrap();

    // Time a save so that the kill delays span several of them.
    let t = Instant::now();
    for _ in 0..10 {
        dir.save(&a).unwrap();
        dir.save(&b).unwrap();
    }
    let per_save = t.elapsed() / 20;
    let max_delay_us = (per_save.as_micros() as u64 * 4).max(200);
    println!("one save takes {per_save:?}; kill delays 0..{max_delay_us} µs");
    drop(lock);

    let (mut seen_a, mut seen_b, mut mid_write, mut reads) = (0, 0, 0, 0);
    for i in 0..iters {
        let mut fds = [0; 2];
        // SAFETY: fds has room for the two descriptors pipe writes.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: this program is single-threaded, so the child may run ordinary code.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            writer(&dir, &a, &b, fds[1]);
        }
        let mut byte = 0u8;
        // SAFETY: reads one byte into a valid buffer; closes our pipe afterwards.
        unsafe {
            assert_eq!(libc::read(fds[0], (&mut byte as *mut u8).cast(), 1), 1);
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        let delay = Duration::from_micros(rng.next() % max_delay_us);
        if i % 2 == 0 {
            std::thread::sleep(delay);
        } else {
            // Unlocked readers during the writes: each must see a whole state.
            let end = Instant::now() + delay;
            while Instant::now() < end {
                check(&dir, &a, &b);
                reads += 1;
            }
        }
        // SAFETY: signals our own child.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
        let mut status = 0;
        // SAFETY: reaps our own child; status is a valid int.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL,
            "iteration {i}: writer ended on its own (status {status:#x})"
        );

        match check(&dir, &a, &b) {
            'A' => seen_a += 1,
            _ => seen_b += 1,
        }
        let stray = temp_files(&dir);
        mid_write += usize::from(stray > 0);
        let lock = dir.lock().unwrap();
        assert_eq!(temp_files(&dir), 0, "iteration {i}: lock left temp files");
        check(&dir, &a, &b);
        drop(lock);
    }
    println!(
        "after {iters} kills: A {seen_a}, B {seen_b}, killed mid-write {mid_write}, \
         concurrent reads {reads}"
    );
    // Without these the test would not have exercised what it claims to.
    assert!(
        seen_a > 0 && seen_b > 0,
        "kills never landed on both states"
    );
    assert!(
        mid_write > 0,
        "no kill landed while a temporary file existed"
    );
    println!("test crash ... ok");
}
