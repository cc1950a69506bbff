//! Helpers for tests against the real kernel.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use rr_cgroups::{Manager, Mode, OwnCgroups};

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Skip (with a printed reason) unless root and every named v1 controller is mounted.
pub fn need_v1(controllers: &[&str]) -> bool {
    if !is_root() {
        eprintln!("skipping: needs root");
        return false;
    }
    for c in controllers {
        if !Path::new("/sys/fs/cgroup")
            .join(c)
            .join("cgroup.procs")
            .exists()
        {
            eprintln!("skipping: v1 controller {c} is not mounted at /sys/fs/cgroup/{c}");
            return false;
        }
    }
    true
}

pub const UNIFIED: &str = "/sys/fs/cgroup/unified";

/// Skip unless root and a cgroup2 hierarchy is mounted at /sys/fs/cgroup/unified.
pub fn need_v2_mount() -> bool {
    if !is_root() {
        eprintln!("skipping: needs root");
        return false;
    }
    if rr_cgroups::mode::fs_magic(Path::new(UNIFIED))
        .ok()
        .flatten()
        != Some(rr_cgroups::mode::CGROUP2_SUPER_MAGIC)
    {
        eprintln!("skipping: no cgroup2 mount at {UNIFIED}");
        return false;
    }
    true
}

/// Removes the test's top cgroup (in every hierarchy) when dropped, even
/// when the test panics.
pub struct Guard(pub Manager);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Err(e) = self.0.destroy() {
            eprintln!("cleanup failed: {e}");
        }
    }
}

pub fn top_name(test: &str) -> String {
    format!("/rr-test-{}-{test}", std::process::id())
}

/// A v1 manager for `<top>/ctr` plus a guard removing `<top>`.
pub fn v1_manager(test: &str) -> (Manager, Guard) {
    let top = top_name(test);
    let own = OwnCgroups::current().unwrap();
    let root = Path::new("/sys/fs/cgroup");
    let m = Manager::with_root_and_own(Mode::Legacy, root, &own, Some(&format!("{top}/ctr")), "x")
        .unwrap();
    let g = Manager::with_root_and_own(Mode::Legacy, root, &own, Some(&top), "x").unwrap();
    (m, Guard(g))
}

/// A v2 manager for `<top>/ctr` under the hybrid cgroup2 mount plus its guard.
pub fn v2_manager(test: &str) -> (Manager, Guard) {
    let top = top_name(test);
    let own = OwnCgroups::parse("0::/\n").unwrap();
    let root = Path::new(UNIFIED);
    let m = Manager::with_root_and_own(Mode::Unified, root, &own, Some(&format!("{top}/ctr")), "x")
        .unwrap();
    let g = Manager::with_root_and_own(Mode::Unified, root, &own, Some(&top), "x").unwrap();
    (m, Guard(g))
}

/// A shell that waits for a line on stdin before running `script`, so it
/// can be moved into a cgroup first.
pub struct Waiting {
    pub child: Child,
    stdin: Option<ChildStdin>,
    out: BufReader<ChildStdout>,
}

impl Waiting {
    pub fn spawn(script: &str) -> Waiting {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("read go; {script}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let out = BufReader::new(child.stdout.take().unwrap());
        Waiting { child, stdin, out }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn go(&mut self) {
        if let Some(s) = self.stdin.as_mut() {
            writeln!(s, "go").unwrap();
            s.flush().unwrap();
        }
    }

    pub fn line(&mut self) -> String {
        let mut s = String::new();
        self.out.read_line(&mut s).unwrap();
        s.trim().to_string()
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn read(p: impl AsRef<Path>) -> String {
    std::fs::read_to_string(p.as_ref())
        .unwrap_or_else(|e| panic!("{}: {e}", p.as_ref().display()))
        .trim()
        .to_string()
}

pub fn res(json: &str) -> oci_spec::runtime::LinuxResources {
    serde_json::from_str(json).unwrap()
}

pub fn dir(m: &Manager, sub: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(&m.paths()[sub])
}

/// The process state letter from /proc/<pid>/stat.
pub fn proc_state(pid: i32) -> char {
    let s = read(format!("/proc/{pid}/stat"));
    s.rsplit_once(") ")
        .and_then(|(_, r)| r.chars().next())
        .unwrap_or('?')
}
