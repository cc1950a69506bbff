//! Helpers for black-box tests of the `rrc` binary: a busybox bundle, a
//! private state root, and running `rrc` with output captured.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

pub mod leftovers;

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

/// Whether `p` is a 64-bit ELF with no program interpreter (PT_INTERP),
/// i.e. statically linked. (Searching the bytes for "ld-linux" is not
/// enough: Debian's static busybox 1.35 contains that string.)
fn is_static_busybox(p: &Path) -> bool {
    let Ok(b) = std::fs::read(p) else {
        return false;
    };
    let u16_at = |o: usize| {
        b.get(o..o + 2)
            .map(|x| u16::from_le_bytes([x[0], x[1]]) as usize)
    };
    let u32_at = |o: usize| {
        b.get(o..o + 4)
            .map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
    };
    let u64_at = |o: usize| {
        b.get(o..o + 8)
            .and_then(|x| x.try_into().ok())
            .map(|x: [u8; 8]| u64::from_le_bytes(x) as usize)
    };
    // ELF magic, 64-bit, little endian.
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return false;
    }
    const PT_INTERP: u32 = 3;
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(32), u16_at(54), u16_at(56)) else {
        return false;
    };
    (0..phnum).all(|i| u32_at(phoff + i * phentsize).is_some_and(|t| t != PT_INTERP))
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

    /// Runs rrc with `--root <root>` and the given arguments. Output goes
    /// through files, not pipes: a container started by the command
    /// inherits its stdio and would keep a pipe open (and `output()`
    /// waiting) for as long as it runs.
    pub fn rrc(&self, args: &[&str]) -> Output {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let out = self.dir.path().join(format!(".rrc-{n}.out"));
        let err = self.dir.path().join(format!(".rrc-{n}.err"));
        let status = self
            .rrc_cmd(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("stdout file"))
            .stderr(std::fs::File::create(&err).expect("stderr file"))
            .status()
            .expect("spawn rrc");
        let o = Output {
            status,
            stdout: std::fs::read(&out).unwrap_or_default(),
            stderr: std::fs::read(&err).unwrap_or_default(),
        };
        let _ = std::fs::remove_file(out);
        let _ = std::fs::remove_file(err);
        o
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
        })
    }

    /// Asserts that nothing of container `id` is left: no state dir, no
    /// mount under the bundle, no process whose root is the rootfs.
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
    }
}

/// Pids of live processes (other than this one) whose command line
/// mentions `id`. A container init that has not exec'd yet is a fork of the
/// `rrc create` or `rrc run` that made it, so it carries the id in its
/// command line; a leftover from a failed create shows up here.
pub fn processes_mentioning(id: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| c.split(|b| *b == 0).any(|arg| arg == id.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
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
