//! `cargo xtask e2e`: the black-box suite inside QEMU, once per cgroup mode.
//!
//! This machine and CI's only have hybrid cgroups, so pure cgroup v2 (what
//! most hosts run) and pure v1 are tested in a VM: Debian's cloud kernel,
//! an initramfs written here (static `rrc`, static test binaries, busybox,
//! the few modules the tests need), one boot per mode. Results come back as a
//! tar on a raw virtio disk; the serial console is the live log and the
//! fallback when the disk has nothing.
//!
//! QEMU and the kernel are taken from Debian's archive and unpacked under
//! `target/e2e/cache` instead of being installed: installing bookworm's
//! qemu-system-x86 would remove a newer qemu-utils from this machine, and
//! unpacking changes nothing on the host.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use crate::cpio;
use crate::e2e_systemd;
use crate::{cargo, project_root, run, target_dir, Result};

/// The modes, all run by default (CI). The systemd VM runs only the
/// systemd driver's tests (see e2e_systemd.rs) and adds about a minute.
const MODES: [&str; 4] = ["v2", "v1", "hybrid", e2e_systemd::MODE];
/// Modes run only when asked for.
const EXTRA_MODES: [&str; 1] = [e2e_systemd::HYBRID_MODE];
/// Modules loaded in the VM (with their dependencies): the virtio disk the
/// results go to, and what the black-box tests use.
/// What the VM loads: its disk and what containers use.
const MODULES: &[&str] = &["virtio_pci", "virtio_blk", "overlay", "veth"];
const TARGET: &str = "x86_64-unknown-linux-gnu";
const KERNEL_META: &str = "linux-image-cloud-amd64";
const DEFAULT_TIMEOUT_SECS: u64 = 1800;
const TEST_THREADS: u32 = 2;

struct Opts {
    modes: Vec<String>,
    filter: Vec<String>,
    keep: bool,
    timeout: Duration,
}

fn usage() -> String {
    "usage: cargo xtask e2e [--mode v2|v1|hybrid|systemd|systemd-hybrid]... [--filter NAME]... [--keep] [--timeout SECS]"
        .into()
}

fn parse(args: &[String]) -> Result<Opts> {
    let mut o = Opts {
        modes: Vec::new(),
        filter: Vec::new(),
        keep: false,
        timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |flag: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value\n{}", usage()))
        };
        match a.as_str() {
            "--mode" => {
                let m = value("--mode")?;
                if !MODES.contains(&m.as_str()) && !EXTRA_MODES.contains(&m.as_str()) {
                    return Err(format!(
                        "unknown mode {m:?}: one of v2, v1, hybrid, systemd, systemd-hybrid"
                    ));
                }
                if !o.modes.contains(&m) {
                    o.modes.push(m);
                }
            }
            "--filter" => o.filter.push(value("--filter")?),
            "--keep" => o.keep = true,
            "--timeout" => {
                let v = value("--timeout")?;
                let secs: u64 = v
                    .parse()
                    .map_err(|_| format!("--timeout {v:?}: not a number of seconds"))?;
                o.timeout = Duration::from_secs(secs);
            }
            "-h" | "--help" => return Err(usage()),
            other => return Err(format!("unknown argument {other:?}\n{}", usage())),
        }
    }
    if o.modes.is_empty() {
        o.modes = MODES.iter().map(|m| m.to_string()).collect();
    }
    Ok(o)
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Entry point; prints the summary, whose last line is `N passed, N failed`.
pub fn main(args: &[String]) -> ExitCode {
    let opts = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("xtask e2e: {e}");
            return ExitCode::from(2);
        }
    };
    let tools = match Tools::prepare() {
        Ok(t) => t,
        Err(e) if !in_ci() => {
            println!("e2e skipped: {e}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("xtask e2e: cannot run in CI: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run_all(&opts, &tools) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("xtask e2e: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What a boot needs from outside the project.
struct Tools {
    /// Host programs copied in with their libraries.
    programs: Vec<PathBuf>,
    qemu: PathBuf,
    /// `-L` directories (firmware) and LD_LIBRARY_PATH for an unpacked QEMU.
    qemu_data: Vec<PathBuf>,
    qemu_libs: Option<String>,
    vmlinuz: PathBuf,
    /// lib/modules/<release> of the unpacked kernel package.
    modules_dir: PathBuf,
    busybox: PathBuf,
}

fn cache_dir() -> PathBuf {
    target_dir().join("e2e").join("cache")
}

fn have(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn mkdir(p: &Path) -> Result<()> {
    fs::create_dir_all(p).map_err(|e| format!("creating {}: {e}", p.display()))
}

/// `apt-get` with the download sandbox off: the cache directories belong
/// to root, not to `_apt`.
fn apt_get() -> Command {
    let mut c = Command::new("apt-get");
    c.args(["-q", "-o", "APT::Sandbox::User=root"])
        .env("DEBIAN_FRONTEND", "noninteractive");
    c
}

fn apt_update() -> Result<()> {
    run(apt_get().arg("update"))
}

fn unpack_debs(debs_dir: &Path, root: &Path) -> Result<()> {
    let _ = fs::remove_dir_all(root);
    mkdir(root)?;
    let entries = fs::read_dir(debs_dir).map_err(|e| format!("{}: {e}", debs_dir.display()))?;
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "deb") {
            run(Command::new("dpkg-deb").arg("-x").arg(&p).arg(root))?;
        }
    }
    Ok(())
}

impl Tools {
    fn prepare() -> Result<Tools> {
        if !have("apt-get") || !have("dpkg-deb") {
            return Err(
                "apt-get and dpkg-deb are needed to fetch QEMU and the kernel (a Debian host)"
                    .into(),
            );
        }
        crate::ensure_packages(&[
            ("busybox-static", rr_tests::BUSYBOX),
            ("uidmap", "/usr/bin/newuidmap"),
            ("runc", "/usr/sbin/runc"),
        ])?;
        let programs: Vec<PathBuf> = HOST_PROGRAMS.iter().map(PathBuf::from).collect();
        let (qemu, qemu_data, qemu_libs) = Self::qemu()?;
        let (vmlinuz, modules_dir) = Self::kernel()?;
        Ok(Tools {
            programs,
            qemu,
            qemu_data,
            qemu_libs,
            vmlinuz,
            modules_dir,
            busybox: PathBuf::from(rr_tests::BUSYBOX),
        })
    }

    fn qemu_cmd(&self) -> Command {
        let mut c = Command::new(&self.qemu);
        for d in &self.qemu_data {
            c.arg("-L").arg(d);
        }
        if let Some(l) = &self.qemu_libs {
            c.env("LD_LIBRARY_PATH", l);
        }
        c
    }

    /// The installed qemu-system-x86_64 if there is one, else bookworm's
    /// qemu-system-x86 and the libraries this host lacks, unpacked.
    fn qemu() -> Result<(PathBuf, Vec<PathBuf>, Option<String>)> {
        let system = Path::new("/usr/bin/qemu-system-x86_64");
        if system.exists() {
            return Ok((system.to_path_buf(), Vec::new(), None));
        }
        let dir = cache_dir().join("qemu");
        let root = dir.join("root");
        let bin = root.join("usr/bin/qemu-system-x86_64");
        let data = vec![root.join("usr/share/qemu"), root.join("usr/share/seabios")];
        let libs = format!(
            "{}:{}",
            root.join("usr/lib/x86_64-linux-gnu").display(),
            root.join("lib/x86_64-linux-gnu").display()
        );
        let works = || {
            Command::new(&bin)
                .arg("--version")
                .env("LD_LIBRARY_PATH", &libs)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !works() {
            eprintln!("xtask e2e: fetching qemu-system-x86 into {}", dir.display());
            let debs = dir.join("debs");
            let _ = fs::remove_dir_all(&debs);
            mkdir(&debs.join("partial"))?;
            // --download-only computes what this host lacks and changes
            // nothing on it.
            let download = || {
                run(apt_get()
                    .args([
                        "install",
                        "--download-only",
                        "-y",
                        "--no-install-recommends",
                    ])
                    .arg(format!("-o=Dir::Cache::archives={}", debs.display()))
                    .arg("qemu-system-x86"))
            };
            if download().is_err() {
                apt_update()?;
                download()?;
            }
            unpack_debs(&debs, &root)?;
            if !works() {
                return Err(format!("the unpacked {} does not run", bin.display()));
            }
        }
        Ok((bin, data, Some(libs)))
    }

    /// The package the cloud kernel metapackage depends on now, unpacked.
    fn kernel() -> Result<(PathBuf, PathBuf)> {
        let resolve = || -> Option<String> {
            let out = Command::new("apt-cache")
                .args(["depends", "--no-recommends", "--no-suggests"])
                .arg(KERNEL_META)
                .output()
                .ok()?;
            String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
                l.trim()
                    .strip_prefix("Depends: ")
                    .filter(|p| p.starts_with("linux-image-"))
                    .map(str::to_string)
            })
        };
        let pkg = match resolve() {
            Some(p) => p,
            None => {
                apt_update()?;
                resolve().ok_or_else(|| format!("apt-cache cannot resolve {KERNEL_META}"))?
            }
        };
        let dir = cache_dir().join("kernel");
        let root = dir.join(&pkg);
        let find = || -> Option<(PathBuf, PathBuf)> {
            let boot = fs::read_dir(root.join("boot")).ok()?;
            let vmlinuz = boot
                .flatten()
                .map(|e| e.path())
                .find(|p| p.to_string_lossy().contains("/vmlinuz-"))?;
            let release = vmlinuz
                .file_name()?
                .to_str()?
                .strip_prefix("vmlinuz-")?
                .to_string();
            let modules = root.join("lib/modules").join(release);
            modules
                .join("modules.order")
                .exists()
                .then_some((vmlinuz, modules))
        };
        if let Some(found) = find() {
            return Ok(found);
        }
        eprintln!("xtask e2e: fetching {pkg} into {}", dir.display());
        let debs = dir.join("debs");
        let _ = fs::remove_dir_all(&debs);
        mkdir(&debs)?;
        let download = || run(apt_get().current_dir(&debs).arg("download").arg(&pkg));
        if download().is_err() {
            apt_update()?;
            download()?;
        }
        unpack_debs(&debs, &root)?;
        find().ok_or_else(|| format!("no vmlinuz and modules in {pkg}"))
    }
}

/// The executables the VM runs.
struct Build {
    rrc: PathBuf,
    tests: Vec<(String, PathBuf)>,
}

/// Builds `rrc` and the black-box test binaries as static executables.
/// `--target` keeps the static flag off build scripts and proc macros.
fn build() -> Result<Build> {
    let mut flags = std::env::var("RUSTFLAGS").unwrap_or_default();
    flags.push_str(" -C target-feature=+crt-static");
    run(cargo()
        .args(["build", "-p", "rr-cli", "--bin", "rrc", "--target", TARGET])
        .env("RUSTFLAGS", &flags))?;
    let rrc = target_dir().join(TARGET).join("debug").join("rrc");
    let out = cargo()
        .args([
            "test",
            "-p",
            "rr-tests",
            "--no-run",
            "--message-format=json",
        ])
        .args(["--target", TARGET])
        .env("RUSTFLAGS", &flags)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cargo test --no-run: {e}"))?;
    if !out.status.success() {
        return Err(format!("building the test binaries failed: {}", out.status));
    }
    let mut tests = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let is_test_target = v["target"]["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == "test"));
        if v["reason"] != "compiler-artifact" || !is_test_target {
            continue;
        }
        if let (Some(name), Some(exe)) = (v["target"]["name"].as_str(), v["executable"].as_str()) {
            if NOT_IN_VM.iter().any(|(n, _)| *n == name) {
                continue;
            }
            tests.push((name.to_string(), PathBuf::from(exe)));
        }
    }
    if tests.is_empty() {
        return Err("cargo reported no black-box test executables".into());
    }
    for p in std::iter::once(&rrc).chain(tests.iter().map(|(_, p)| p)) {
        if has_interpreter(p)? {
            return Err(format!(
                "{} is not static (it has an ELF interpreter)",
                p.display()
            ));
        }
    }
    Ok(Build { rrc, tests })
}

/// Whether an ELF file has a PT_INTERP program header (is dynamically linked).
fn has_interpreter(p: &Path) -> Result<bool> {
    let b = fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
    let bad = || format!("{}: not a 64-bit ELF file", p.display());
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 {
        return Err(bad());
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[0x20..0x28].try_into().map_err(|_| bad())?) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        let t = b.get(o..o + 4).ok_or_else(bad)?;
        if u32::from_le_bytes([t[0], t[1], t[2], t[3]]) == 3 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `MODULES` and their dependencies, dependencies first, as paths relative
/// to lib/modules/<release>. The package has no modules.dep (depmod makes
/// it at install time), so dependencies come from each module's .modinfo
/// `depends=` entry, which is what depmod reads too.
fn module_closure(modules_dir: &Path, modules: &[&str]) -> Result<Vec<String>> {
    let order_path = modules_dir.join("modules.order");
    let order =
        fs::read_to_string(&order_path).map_err(|e| format!("{}: {e}", order_path.display()))?;
    let by_name: BTreeMap<String, String> = order
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let base = Path::new(l).file_name()?.to_str()?.strip_suffix(".ko")?;
            Some((base.replace('-', "_"), l.to_string()))
        })
        .collect();
    let mut out = Vec::new();
    fn visit(
        name: &str,
        dir: &Path,
        by_name: &BTreeMap<String, String>,
        out: &mut Vec<String>,
        depth: usize,
    ) -> Result<()> {
        let name = name.replace('-', "_");
        let Some(rel) = by_name.get(&name) else {
            // Not in modules.order: built into this kernel.
            return Ok(());
        };
        if out.contains(rel) {
            return Ok(());
        }
        if depth > 32 {
            return Err(format!("module dependency loop at {name}"));
        }
        let path = dir.join(rel);
        let bytes = fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let key = b"\0depends=";
        if let Some(at) = bytes.windows(key.len()).position(|w| w == key) {
            let rest = &bytes[at + key.len()..];
            let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
            for dep in String::from_utf8_lossy(&rest[..end]).split(',') {
                if !dep.is_empty() {
                    visit(dep, dir, by_name, out, depth + 1)?;
                }
            }
        }
        out.push(rel.clone());
        Ok(())
    }
    for m in modules {
        visit(m, modules_dir, &by_name, &mut out, 0)?;
    }
    Ok(out)
}

fn read(p: &Path) -> Result<Vec<u8>> {
    fs::read(p).map_err(|e| format!("{}: {e}", p.display()))
}

/// Writes the initramfs (an uncompressed newc cpio: see the README's e2e
/// section for why it is not gzipped).
/// Test binaries the VM does not run, and why (printed in the summary).
const NOT_IN_VM: &[(&str, &str)] = &[
    (
        "checkpoint",
        "CRIU 4.2.1 cannot dump a container's network namespace on the VM's \
         6.1 cloud kernel (netlink EINVAL while dumping it, and its tools \
         would need iproute2, iptables and GNU tar in the initramfs); it is \
         not about cgroup modes, and cargo xtask test and cargo xtask \
         clients run it on the host",
    ),
    (
        "fuzz_corpus",
        "it replays the checked-in fuzz corpora (read from the source tree, \
         which the VM does not have) and property cases through pure parsing \
         code: nothing in it depends on the kernel, and cargo xtask test runs it",
    ),
];

/// The user tests/tests/rootless.rs runs rrc as.
const ROOTLESS_USER: &str = "rr-rootless-test";

/// Dynamically linked host programs the tests use, copied in with their
/// libraries (setuid bits kept): the id map helpers of rootless mode, and
/// runc, which the side-by-side tests (seccomp notify) run beside rrc.
const HOST_PROGRAMS: &[&str] = &["/usr/bin/newuidmap", "/usr/bin/newgidmap", "/usr/sbin/runc"];

/// Adds each program and the shared libraries `ldd` names for it, at their
/// host paths, creating the parent directories the archive lacks so far
/// (it already has the top-level ones and lib/).
fn add_host_programs<W: std::io::Write>(
    w: &mut cpio::Writer<W>,
    programs: &[PathBuf],
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut files: Vec<PathBuf> = Vec::new();
    for p in programs {
        files.push(p.clone());
        let out = Command::new("ldd").arg(p).output()?;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
            // "/lib64/ld-linux-x86-64.so.2 (0x...)"
            let path = line
                .split("=>")
                .last()
                .and_then(|r| r.split_whitespace().next())
                .filter(|t| t.starts_with('/'));
            if let Some(path) = path {
                let path = PathBuf::from(path);
                if !files.contains(&path) {
                    files.push(path);
                }
            }
        }
    }
    let mut made: Vec<String> = [
        "bin", "dev", "etc", "proc", "sys", "tmp", "root", "e2e", "lib",
    ]
    .iter()
    .map(|d| d.to_string())
    .collect();
    for f in &files {
        let rel = f
            .strip_prefix("/")
            .unwrap_or(f)
            .to_string_lossy()
            .into_owned();
        let mut prefix = String::new();
        let parts: Vec<&str> = rel.split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            if !made.contains(&prefix) {
                w.dir(&prefix, 0o755)?;
                made.push(prefix.clone());
            }
        }
        // Libraries may be symlinks: store what they point at.
        let data = fs::read(f)?;
        let mode = fs::metadata(f)?.permissions().mode() & 0o7777;
        w.file(&rel, mode, &data)?;
    }
    Ok(())
}

fn make_initramfs(out: &Path, tools: &Tools, build: &Build, opts: &Opts) -> Result<()> {
    let file = fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut w = cpio::Writer::new(BufWriter::new(file));
    let io = |e: std::io::Error| format!("writing {}: {e}", out.display());
    for d in [
        "bin",
        "dev",
        "etc",
        "proc",
        "sys",
        "tmp",
        "root",
        "e2e",
        "e2e/tests",
    ] {
        w.dir(d, 0o755).map_err(io)?;
    }
    w.char_dev("dev/console", 0o600, 5, 1).map_err(io)?;
    w.file("init", 0o755, include_bytes!("e2e_init.sh"))
        .map_err(io)?;
    w.file("bin/busybox", 0o755, &read(&tools.busybox)?)
        .map_err(io)?;
    w.symlink("bin/sh", "busybox").map_err(io)?;
    // The rootless test's user (it would run useradd on a normal host) and
    // its subordinate id ranges, for newuidmap/newgidmap.
    w.file(
        "etc/passwd",
        0o644,
        format!(
            "root:x:0:0:root:/root:/bin/sh\n\
             nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
             {ROOTLESS_USER}:x:1500:1500::/nonexistent:/bin/sh\n"
        )
        .as_bytes(),
    )
    .map_err(io)?;
    w.file(
        "etc/group",
        0o644,
        format!("root:x:0:\nnogroup:x:65534:\n{ROOTLESS_USER}:x:1500:\n").as_bytes(),
    )
    .map_err(io)?;
    for f in ["etc/subuid", "etc/subgid"] {
        w.file(
            f,
            0o644,
            format!("{ROOTLESS_USER}:100000:65536\n").as_bytes(),
        )
        .map_err(io)?;
    }
    w.file("etc/hosts", 0o644, b"127.0.0.1 localhost rr-e2e\n")
        .map_err(io)?;
    w.file("e2e/rrc", 0o755, &read(&build.rrc)?).map_err(io)?;
    for (name, exe) in &build.tests {
        w.file(&format!("e2e/tests/{name}"), 0o755, &read(exe)?)
            .map_err(io)?;
    }
    w.file(
        "e2e/test-threads",
        0o644,
        format!("{TEST_THREADS}\n").as_bytes(),
    )
    .map_err(io)?;
    if !opts.filter.is_empty() {
        w.file("e2e/filter", 0o644, opts.filter.join(" ").as_bytes())
            .map_err(io)?;
    }
    // lib/modules/<release>/<path>, with every parent directory first.
    let release = tools
        .modules_dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("bad modules directory name")?;
    let mods = module_closure(&tools.modules_dir, MODULES)?;
    let mut made = vec!["lib".to_string(), "lib/modules".to_string()];
    w.dir("lib", 0o755).map_err(io)?;
    w.dir("lib/modules", 0o755).map_err(io)?;
    for rel in &mods {
        let full = format!("lib/modules/{release}/{rel}");
        let mut prefix = String::new();
        for part in full
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map_or(&[][..], |s| s.1)
        {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            if !made.contains(&prefix) {
                w.dir(&prefix, 0o755).map_err(io)?;
                made.push(prefix.clone());
            }
        }
        w.file(&full, 0o644, &read(&tools.modules_dir.join(rel))?)
            .map_err(io)?;
    }
    let list: String = mods.iter().map(|m| format!("{release}/{m}\n")).collect();
    w.file("e2e/modules", 0o644, list.as_bytes()).map_err(io)?;
    add_host_programs(&mut w, &tools.programs).map_err(io)?;
    w.finish().map_err(io)?;
    Ok(())
}

/// Kills QEMU however the boot ends.
struct Vm(Child);

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Boot {
    console: PathBuf,
    results: PathBuf,
    timed_out: bool,
    secs: f64,
}

fn boot(mode: &str, work: &Path, initramfs: &Path, tools: &Tools, opts: &Opts) -> Result<Boot> {
    let dir = work.join(mode);
    mkdir(&dir)?;
    let disk = dir.join("results.img");
    let f = fs::File::create(&disk).map_err(|e| format!("{}: {e}", disk.display()))?;
    f.set_len(256 << 20)
        .map_err(|e| format!("{}: {e}", disk.display()))?;
    drop(f);
    // No AppArmor: like this machine and CI's, so the LSM test checks the
    // clear error for a profile the host cannot apply.
    let mut append = format!("console=ttyS0 quiet panic=-1 apparmor=0 rr.mode={mode}");
    if mode == "v2" {
        append.push_str(" cgroup_no_v1=all");
    }
    if e2e_systemd::is_systemd(mode) {
        append.push(' ');
        append.push_str(e2e_systemd::append(mode));
    }
    let mut cmd = tools.qemu_cmd();
    cmd.args(["-nodefaults", "-no-user-config", "-display", "none"])
        .args(["-accel", "tcg,thread=multi", "-m", "2G", "-smp", "2"])
        .args(["-serial", "stdio", "-no-reboot"])
        .arg("-kernel")
        .arg(&tools.vmlinuz)
        .arg("-initrd")
        .arg(initramfs)
        .args(["-append", &append])
        .arg("-drive")
        .arg(format!("file={},format=raw,if=virtio", disk.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    println!("e2e {mode}: booting ({append})");
    let start = Instant::now();
    let mut vm = Vm(cmd.spawn().map_err(|e| format!("starting QEMU: {e}"))?);
    let console = dir.join("console.log");
    let mut log = fs::File::create(&console).map_err(|e| format!("{}: {e}", console.display()))?;
    let stdout = vm.0.stdout.take().ok_or("no QEMU stdout")?;
    let stderr = vm.0.stderr.take().ok_or("no QEMU stderr")?;
    let tag = mode.to_string();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n').map_while(|l| l.ok()) {
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches('\r');
            let _ = writeln!(log, "{text}");
            println!("[{tag}] {text}");
        }
    });
    let tag = mode.to_string();
    let err_reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
            eprintln!("[{tag} qemu] {line}");
        }
    });
    let mut timed_out = false;
    loop {
        match vm.0.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() > opts.timeout => {
                timed_out = true;
                println!(
                    "e2e {mode}: timed out after {} s: killing QEMU",
                    opts.timeout.as_secs()
                );
                break;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => return Err(format!("waiting for QEMU: {e}")),
        }
    }
    drop(vm);
    let _ = reader.join();
    let _ = err_reader.join();
    let secs = start.elapsed().as_secs_f64();
    let results = dir.join("results");
    mkdir(&results)?;
    // An empty disk (the VM died before writing) makes tar fail; the console
    // is then the only source.
    let _ = Command::new("tar")
        .arg("-xf")
        .arg(&disk)
        .arg("-C")
        .arg(&results)
        .stderr(Stdio::null())
        .status();
    let _ = fs::remove_file(&disk);
    Ok(Boot {
        console,
        results,
        timed_out,
        secs,
    })
}

/// The systemd mode: its own initramfs (a Debian root with systemd) and
/// only the driver's test binaries.
fn boot_systemd(
    mode: &str,
    work: &Path,
    tools: &Tools,
    build: &Build,
    opts: &Opts,
) -> Result<(Boot, ModeResult)> {
    let sd_build = Build {
        rrc: build.rrc.clone(),
        tests: build
            .tests
            .iter()
            .filter(|(n, _)| e2e_systemd::TESTS.contains(&n.as_str()))
            .cloned()
            .collect(),
    };
    let initramfs = work.join("initramfs-systemd.cpio");
    let t = Instant::now();
    let payload = e2e_systemd::Payload {
        modules_dir: &tools.modules_dir,
        modules: module_closure(
            &tools.modules_dir,
            &[MODULES, e2e_systemd::CRIU_MODULES].concat(),
        )?,
        rrc: &sd_build.rrc,
        tests: &sd_build.tests,
        threads: TEST_THREADS,
        filter: &opts.filter,
        criu: Some(crate::target_dir().join("tools/criu-4.2.1/criu/criu")).filter(|p| p.is_file()),
    };
    e2e_systemd::make_initramfs(&initramfs, &cache_dir(), &payload)?;
    println!(
        "e2e: systemd initramfs {} ({} MiB, {:.1} s)",
        initramfs.display(),
        fs::metadata(&initramfs).map(|m| m.len() >> 20).unwrap_or(0),
        t.elapsed().as_secs_f64()
    );
    let b = boot(mode, work, &initramfs, tools, opts)?;
    let _ = fs::remove_file(&initramfs);
    let r = collect(&b, &sd_build);
    Ok((b, r))
}

#[derive(Default)]
struct ModeResult {
    passed: Vec<String>,
    failed: Vec<String>,
    /// name -> reason, from the test's SKIPPED line.
    skipped: BTreeMap<String, String>,
    /// Problems that are not a single test (crash, timeout, missing results).
    broken: Vec<String>,
    /// name -> the lines of its `---- NAME stdout ----` section (the panic
    /// message of a failed test), so the summary can say why.
    output: BTreeMap<String, Vec<String>>,
}

/// How many lines of a failed test's output the summary shows.
const FAILURE_LINES: usize = 40;

/// Reads libtest output: `test NAME ... ok|FAILED|ignored` lines, and
/// `SKIPPED: reason` inside the `---- NAME stdout ----` sections that
/// `--show-output` prints. `bin` names the binary when known; on the console
/// `e2e: running BIN` lines say which binary follows.
fn parse_libtest(text: &str, mut bin: String, r: &mut ModeResult) {
    let mut section: Option<String> = None;
    for line in text.lines() {
        if let Some(b) = line.strip_prefix("e2e: running ") {
            bin = b.trim().to_string();
            continue;
        }
        if let Some(rest) = line.strip_prefix("---- ") {
            section = rest
                .strip_suffix(" stdout ----")
                .map(|n| format!("{bin}::{n}"));
            continue;
        }
        if line == "failures:" || line.starts_with("test result: ") {
            section = None;
        }
        if let Some(name) = &section {
            let lines = r.output.entry(name.clone()).or_default();
            if lines.len() < FAILURE_LINES && !line.trim().is_empty() {
                lines.push(line.to_string());
            }
        }
        if let Some(rest) = line.strip_prefix("test ") {
            if let Some((name, outcome)) = rest.rsplit_once(" ... ") {
                let full = format!("{bin}::{name}");
                match outcome.trim() {
                    "ok" => r.passed.push(full),
                    "FAILED" => r.failed.push(full),
                    _ => {}
                }
                continue;
            }
        }
        if let (Some(name), Some(reason)) = (&section, line.trim().strip_prefix("SKIPPED: ")) {
            r.skipped.insert(name.clone(), reason.to_string());
        }
    }
}

fn collect(boot: &Boot, build: &Build) -> ModeResult {
    let mut r = ModeResult::default();
    let has_disk_results = build
        .tests
        .iter()
        .any(|(n, _)| boot.results.join(format!("{n}.log")).exists());
    if has_disk_results {
        for (name, _) in &build.tests {
            let log = boot.results.join(format!("{name}.log"));
            let Ok(text) = fs::read_to_string(&log) else {
                r.broken
                    .push(format!("{name}: no results (the VM stopped before it ran)"));
                continue;
            };
            let before = r.failed.len();
            parse_libtest(&text, name.clone(), &mut r);
            let rc = fs::read_to_string(boot.results.join(format!("{name}.rc")))
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok());
            match rc {
                Some(0) => {}
                Some(c) if r.failed.len() == before => r
                    .broken
                    .push(format!("{name}: exited {c} with no failed test (crash?)")),
                Some(_) => {}
                None => r.broken.push(format!("{name}: did not finish")),
            }
        }
    } else {
        let text = fs::read_to_string(&boot.console).unwrap_or_default();
        parse_libtest(&text, "?".into(), &mut r);
        r.broken
            .push("no results on the virtio disk; counted from the serial console".into());
    }
    if boot.timed_out {
        r.broken.push("the VM timed out".into());
    }
    // libtest counts a test that returned early with SKIPPED as passed.
    let skipped = std::mem::take(&mut r.skipped);
    r.passed.retain(|n| !skipped.contains_key(n));
    r.skipped = skipped;
    r
}

fn run_all(opts: &Opts, tools: &Tools) -> Result<bool> {
    let build = build()?;
    let work = target_dir()
        .join("e2e")
        .join(format!("run-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    mkdir(&work)?;
    let initramfs = work.join("initramfs.cpio");
    let t = Instant::now();
    if opts.modes.iter().any(|m| !e2e_systemd::is_systemd(m)) {
        // The systemd VM has an initramfs of its own.
        make_initramfs(&initramfs, tools, &build, opts)?;
        println!(
            "e2e: initramfs {} ({} MiB, {:.1} s)",
            initramfs.display(),
            fs::metadata(&initramfs).map(|m| m.len() >> 20).unwrap_or(0),
            t.elapsed().as_secs_f64()
        );
    }
    let mut results = Vec::new();
    for mode in &opts.modes {
        if e2e_systemd::is_systemd(mode) {
            let (b, r) = boot_systemd(mode, &work, tools, &build, opts)?;
            results.push((mode.clone(), r, b.secs));
            continue;
        }
        let b = boot(mode, &work, &initramfs, tools, opts)?;
        let r = collect(&b, &build);
        results.push((mode.clone(), r, b.secs));
    }

    println!("\ne2e summary ({})", project_root().display());
    let (mut passed, mut failed) = (0usize, 0usize);
    for (mode, r, secs) in &results {
        println!(
            "  {mode}: {} passed, {} failed, {} skipped (VM {secs:.0} s)",
            r.passed.len(),
            r.failed.len() + r.broken.len(),
            r.skipped.len()
        );
        for f in &r.failed {
            println!("    FAILED {f}");
            for l in r.output.get(f).into_iter().flatten() {
                println!("      | {l}");
            }
        }
        for b in &r.broken {
            println!("    FAILED {b}");
        }
        for (n, why) in &r.skipped {
            println!("    skipped {n}: {why}");
        }
        passed += r.passed.len();
        failed += r.failed.len() + r.broken.len();
    }
    for (name, why) in NOT_IN_VM {
        println!("  not run in the VM: {name}: {why}");
    }
    if opts.keep {
        println!("e2e: work dir kept: {}", work.display());
    } else {
        let _ = fs::remove_dir_all(&work);
    }
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtest_output_with_skips() {
        let text = "running 3 tests\ntest a ... ok\ntest b ... FAILED\ntest c ... ok\n\n\
                    successes:\n\n---- c stdout ----\nSKIPPED: no veth\n\nfailures:\n\n";
        let mut r = ModeResult::default();
        parse_libtest(text, "life".into(), &mut r);
        assert_eq!(r.passed, ["life::a", "life::c"]);
        assert_eq!(r.failed, ["life::b"]);
        assert_eq!(
            r.skipped.get("life::c").map(String::as_str),
            Some("no veth")
        );
    }

    #[test]
    fn failure_output_is_kept_for_the_summary() {
        let text = "test b ... FAILED\n\nfailures:\n\n---- b stdout ----\n\
                    thread 'b' panicked at tests/x.rs:3:5:\nlimit 42 != 41\n\n\
                    failures:\n    b\n\ntest result: FAILED. 0 passed; 1 failed\n";
        let mut r = ModeResult::default();
        parse_libtest(text, "cg".into(), &mut r);
        assert_eq!(r.failed, ["cg::b"]);
        assert_eq!(
            r.output["cg::b"],
            ["thread 'b' panicked at tests/x.rs:3:5:", "limit 42 != 41"]
        );
    }

    #[test]
    fn console_names_the_binary() {
        let text = "[ 1.0] kernel\ne2e: running bad_input\ntest x ... ok\ne2e: running lifecycle\ntest y ... FAILED\n";
        let mut r = ModeResult::default();
        parse_libtest(text, "?".into(), &mut r);
        assert_eq!(r.passed, ["bad_input::x"]);
        assert_eq!(r.failed, ["lifecycle::y"]);
    }

    #[test]
    fn modes_and_filters_parse() {
        let o = parse(&[
            "--mode".into(),
            "v1".into(),
            "--filter".into(),
            "kill".into(),
        ])
        .unwrap();
        assert_eq!(o.modes, ["v1"]);
        assert_eq!(o.filter, ["kill"]);
        assert_eq!(parse(&[]).unwrap().modes, MODES);
        assert!(parse(&["--mode".into(), "v3".into()]).is_err());
        let sd = parse(&["--mode".into(), "systemd".into()]).unwrap();
        assert_eq!(sd.modes, ["systemd"]);
    }
}
