//! Helpers for black-box tests of the `rrc` binary: a busybox bundle, a
//! private state root, and running `rrc` with output captured.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

pub mod cg;
pub mod leftovers;
pub mod mounts;
pub mod notify_agent;

/// Where Debian's busybox-static puts its binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// Path of the `rrc` binary under test: `$RRC_BIN`, else the one built next
/// to this test binary (target/<profile>/rrc).
pub fn rrc_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("RRC_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test> -> target/<profile>/rrc
    exe.parent()
        .and_then(Path::parent)
        .map(|p| p.join("rrc"))
        .unwrap_or_else(|| PathBuf::from("rrc"))
}

/// Why the black-box tests cannot run here, if they cannot.
pub fn skip_reason() -> Option<String> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("black-box container tests need root".into());
    }
    if !is_static_busybox(Path::new(BUSYBOX)) {
        return Some(format!(
            "{BUSYBOX} (static) is missing: apt-get install busybox-static"
        ));
    }
    if !rrc_bin().exists() {
        return Some(format!(
            "{} is missing: build it with cargo build -p rr-cli (cargo xtask test does)",
            rrc_bin().display()
        ));
    }
    None
}

/// Skips the calling test (returns from it) with a printed reason when the
/// black-box tests cannot run on this machine.
#[macro_export]
macro_rules! require_env {
    () => {
        if let Some(reason) = $crate::skip_reason() {
            eprintln!("SKIPPED: {reason}");
            return;
        }
    };
}

/// A 64-bit ELF file without a PT_INTERP program header. (Searching for
/// "ld-linux" is wrong: static glibc carries that string for dlopen, so
/// Debian's busybox-static has it.)
fn is_static_busybox(p: &Path) -> bool {
    let Ok(b) = std::fs::read(p) else {
        return false;
    };
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let mut phoff = [0u8; 8];
    phoff.copy_from_slice(&b[0x20..0x28]);
    let phoff = u64::from_le_bytes(phoff) as usize;
    const PT_INTERP: u32 = 3;
    (0..u16_at(0x38)).all(|i| {
        let o = phoff + i * u16_at(0x36);
        b.get(o..o + 4)
            .is_some_and(|t| u32::from_le_bytes([t[0], t[1], t[2], t[3]]) != PT_INTERP)
    })
}

/// Builds a busybox root filesystem in `rootfs`: the static binary, a link
/// per applet, and the directories and /etc files programs expect.
pub fn make_busybox_rootfs(rootfs: &Path) -> std::io::Result<()> {
    for d in [
        "bin", "proc", "sys", "dev", "tmp", "etc", "root", "usr/bin", "var",
    ] {
        std::fs::create_dir_all(rootfs.join(d))?;
    }
    std::fs::copy(BUSYBOX, rootfs.join("bin/busybox"))?;
    let list = Command::new(BUSYBOX).arg("--list").output()?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet.is_empty() || applet == "busybox" {
            continue;
        }
        let link = rootfs.join("bin").join(applet);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", link)?;
        }
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )?;
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    Ok(())
}

/// A test's private world: a temp dir holding a busybox bundle and an rrc
/// state root.
pub struct TestEnv {
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
    /// The state root passed as `--root`.
    pub root: PathBuf,
    /// The bundle directory.
    pub bundle: PathBuf,
}

/// A test that fails half-way must not leave its containers running (the
/// temp dir, their rootfs and state root, goes with it): whatever the state
/// root still lists is force-deleted.
impl Drop for TestEnv {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return;
        };
        for e in entries.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            let _ = self
                .rrc_cmd(&["delete", "--force", &id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl TestEnv {
    /// A new bundle whose config comes from `rrc spec`, with a non-terminal
    /// process running `args`.
    pub fn new(args: &[&str]) -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("rr-test-")
            .tempdir()
            .expect("temp dir");
        let root = dir.path().join("state");
        let bundle = dir.path().join("bundle");
        std::fs::create_dir_all(&bundle).expect("bundle dir");
        make_busybox_rootfs(&bundle.join("rootfs")).expect("busybox rootfs");
        let env = TestEnv { dir, root, bundle };
        let out = env.rrc(&["spec", "-b", env.bundle.to_str().unwrap_or(".")]);
        assert!(out.status.success(), "rrc spec: {}", stderr(&out));
        env.edit_config(|c| {
            c["process"]["terminal"] = Value::Bool(false);
            c["process"]["args"] = args.iter().map(|a| Value::String(a.to_string())).collect();
        });
        env
    }

    /// Path of config.json.
    pub fn config_path(&self) -> PathBuf {
        self.bundle.join("config.json")
    }

    /// Reads, changes and writes back config.json.
    pub fn edit_config(&self, f: impl FnOnce(&mut Value)) {
        let text = std::fs::read_to_string(self.config_path()).expect("read config");
        let mut v: Value = serde_json::from_str(&text).expect("parse config");
        f(&mut v);
        std::fs::write(
            self.config_path(),
            serde_json::to_string_pretty(&v).expect("serialize"),
        )
        .expect("write config");
    }

    /// Runs rrc with `--root <root>` and the given arguments.
    /// stdout and stderr go through files, not pipes: a container process
    /// left running (`create`, `run -d`, `exec -d`) inherits them, and a
    /// pipe would never reach end of file.
    pub fn rrc(&self, args: &[&str]) -> Output {
        detached(self.rrc_cmd(args))
    }

    /// Same as [`TestEnv::rrc`]; names the intent where a process is left behind.
    pub fn rrc_detached(&self, args: &[&str]) -> Output {
        detached(self.rrc_cmd(args))
    }

    /// A Command for rrc with `--root` set, for tests that need to adjust it.
    pub fn rrc_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(rrc_bin());
        c.arg("--root").arg(&self.root).args(args);
        c
    }

    /// Runs rrc with `-b <bundle>` appended after the subcommand's args.
    pub fn rrc_bundle(&self, cmd: &str, rest: &[&str]) -> Output {
        let b = self.bundle.to_str().unwrap_or(".").to_string();
        let mut args = vec![cmd, "-b", &b];
        args.extend_from_slice(rest);
        self.rrc(&args)
    }

    /// Parsed `rrc state <id>` output.
    pub fn state(&self, id: &str) -> Value {
        let out = self.rrc(&["state", id]);
        assert!(out.status.success(), "rrc state {id}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).expect("state is JSON")
    }

    /// Everything container `id` left on the host (see [`leftovers`]).
    pub fn leftovers(&self, id: &str) -> Vec<String> {
        leftovers::find(&leftovers::Scope {
            id: id.to_string(),
            root: self.root.clone(),
            bundle: self.bundle.clone(),
            pids: Vec::new(),
            env_marker: None,
            executables: Vec::new(),
        })
    }

    /// Asserts that nothing of container `id` is left: no state dir, no
    /// mount under the bundle, no process whose root is the rootfs, no
    /// cgroup named after it in any hierarchy.
    pub fn assert_no_leftovers(&self, id: &str) {
        let dir = self.root.join(id);
        assert!(!dir.exists(), "state dir {} left behind", dir.display());
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let b = self.bundle.to_string_lossy().to_string();
        assert!(
            !mounts.lines().any(|l| l.contains(&b)),
            "mount under {b} left behind"
        );
        let left = processes_mentioning(id);
        assert!(left.is_empty(), "processes of {id} still running: {left:?}");
        let cgroups = cgroup_dirs_named(Path::new("/sys/fs/cgroup"), id);
        assert!(
            cgroups.is_empty(),
            "cgroups of {id} left behind: {cgroups:?}"
        );
    }
}

/// Runs `cmd` (stdin from /dev/null) until it exits and returns its output.
/// `Command::output` would wait for EOF on stdout and stderr, which never
/// comes after `rrc create`: the container's init inherits them and keeps
/// them open until it exits. Temporary files have no such end.
pub fn run_to_exit(cmd: Command) -> Output {
    detached_within(cmd, COMMAND_TIMEOUT)
}

/// Every directory named `name` in the cgroup hierarchies under `root`.
pub fn cgroup_dirs_named(root: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            // Hierarchy links such as cpu -> cpu,cpuacct are not followed.
            if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            let p = e.path();
            if e.file_name() == name {
                found.push(p.clone());
            }
            todo.push(p);
        }
    }
    found
}

/// Pids of live processes (other than this one) whose command line
/// mentions `id`. A container init that has not exec'd yet is a fork of the
/// `rrc create` or `rrc run` that made it, so it carries the id in its
/// command line; a leftover from a failed create shows up here.
pub fn processes_mentioning(id: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    all_pids()
        .into_iter()
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| c.split(|b| *b == 0).any(|arg| arg == id.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

/// Every pid in /proc (empty when it cannot be read).
pub fn all_pids() -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .collect()
}

/// Runs `cmd` with stdin on /dev/null and stdout and stderr in anonymous
/// temporary files, returning what they held when it exited.
pub fn detached(cmd: Command) -> Output {
    detached_within(cmd, COMMAND_TIMEOUT)
}

/// [`detached`] with its own time limit: still running after `limit`, the
/// command is killed and the test fails, naming it.
pub fn detached_within(mut cmd: Command, limit: std::time::Duration) -> Output {
    use std::io::{Read, Seek};
    let mut out = tempfile::tempfile().expect("stdout file");
    let mut err = tempfile::tempfile().expect("stderr file");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup stdout file"))
        .stderr(err.try_clone().expect("dup stderr file"))
        .spawn()
        .expect("spawn rrc");
    let status = wait_or_kill(child, &cmd, limit);
    let read = |f: &mut std::fs::File| {
        let mut v = Vec::new();
        f.rewind().expect("rewind");
        f.read_to_end(&mut v).expect("read output");
        v
    };
    Output {
        status,
        stdout: read(&mut out),
        stderr: read(&mut err),
    }
}

/// How long one rrc command of a test may take before it counts as hung.
pub const COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Waits for `child` up to `limit`; a command still running then is
/// killed and the test fails, naming it, instead of hanging.
fn wait_or_kill(
    mut child: std::process::Child,
    cmd: &Command,
    limit: std::time::Duration,
) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{cmd:?} still running after {limit:?}: killed");
            }
        }
    }
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A container id unique within this test process.
pub fn unique_id(prefix: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// stderr with each of rrc's log lines (`time=".." level=.. msg=".."`, as
/// runc writes errors) replaced by its message, unquoted: for matching a
/// message that itself holds quotes, which the log line escapes.
pub fn messages(o: &Output) -> String {
    stderr(o)
        .lines()
        .map(|l| log_message(l).unwrap_or_else(|| l.to_string()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `msg` value of a logrus text line, unquoted as Go quotes it.
fn log_message(line: &str) -> Option<String> {
    let rest = &line[line.find(" msg=")? + 5..];
    let Some(quoted) = rest.strip_prefix('"') else {
        return Some(rest.split(' ').next().unwrap_or("").to_string());
    };
    let mut out = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                e @ ('x' | 'u') => {
                    let n = if e == 'x' { 2 } else { 4 };
                    let hex: String = chars.by_ref().take(n).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// Kills `pid` (the test's rrc) and force-deletes container `id` once
/// `secs` have passed without a word on the returned channel, so that a
/// lost signal or a stuck container fails the test instead of hanging it.
pub fn watchdog(env: &TestEnv, id: &str, pid: u32, secs: u64) -> std::sync::mpsc::Sender<()> {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let mut del = env.rrc_cmd(&["delete", "--force", id]);
    del.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    std::thread::spawn(move || {
        if rx
            .recv_timeout(std::time::Duration::from_secs(secs))
            .is_err()
        {
            // SAFETY: kill with plain integers on the test's own child.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            let _ = del.status();
        }
    });
    tx
}

/// Receives one console-socket message (the pty's name as data, its master
/// by SCM_RIGHTS), as containerd's console socket does.
pub fn recv_console(sock: std::os::fd::RawFd) -> (String, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let mut data = [0u8; 512];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // Room for one cmsghdr with one int, aligned generously.
    let mut cbuf = [0u64; 8];
    // SAFETY: a zeroed msghdr is valid; every pointer set below outlives
    // the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf);
    // SAFETY: msg is fully initialised.
    let n = unsafe { libc::recvmsg(sock, &mut msg, 0) };
    assert!(n > 0, "recvmsg: {}", std::io::Error::last_os_error());
    // SAFETY: the kernel filled msg_control.
    let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    assert!(!cmsg.is_null(), "no control message");
    // SAFETY: cmsg points into cbuf.
    let (level, typ) = unsafe { ((*cmsg).cmsg_level, (*cmsg).cmsg_type) };
    assert_eq!((level, typ), (libc::SOL_SOCKET, libc::SCM_RIGHTS));
    // SAFETY: an SCM_RIGHTS message carries ints.
    let fd = unsafe { *(libc::CMSG_DATA(cmsg) as *const std::os::fd::RawFd) };
    let name = String::from_utf8_lossy(&data[..n as usize]).into_owned();
    // SAFETY: the fd was just received and is ours.
    (name, unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}
