//! `cargo xtask bench`: rrc, runc and crun side by side on one busybox
//! bundle, plus the kernel's floor (the same namespaces made by `unshare`).
//!
//! The runtimes run alternately, run by run, so that machine drift hits them
//! equally. All of it happens inside one private mount namespace where
//! /sys/fs/cgroup/unified is unmounted: crun refuses the hybrid layout, and
//! the three must see the same cgroups.
//!
//! Usage: `cargo xtask bench [--runs N] [--only rrc,runc,crun] [--rrc PATH]
//! [--cri | --no-cri] [--cri-pods N] [--cri-only] [--scale N]` (`--rrc`
//! measures that binary instead of building the release one). Pod and
//! container start through containerd's CRI (bench_cri.rs) are measured
//! when containerd is installed, `--cri` installs it, `--cri-only`
//! measures just that; `--scale` sets how many containers start at once in
//! the scale pass (bench_scale.rs), 0 to skip it, 100 by default.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::{json, Value};

use crate::Result;

/// Set in the re-executed xtask that runs inside the private mount namespace.
const INNER: &str = "RR_BENCH_INNER";

struct Options {
    runs: usize,
    only: Option<Vec<String>>,
    rrc: Option<PathBuf>,
    cri: crate::bench_cri::CriOptions,
    scale: usize,
}

fn parse_options(args: &[String]) -> Result<Options> {
    let mut o = Options {
        runs: 50,
        only: None,
        rrc: None,
        cri: crate::bench_cri::CriOptions::default(),
        scale: 100,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => {
                o.runs = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|n| *n > 0)
                    .ok_or("--runs needs a positive number")?;
            }
            "--only" => {
                let v = it.next().ok_or("--only needs a list like rrc,crun")?;
                o.only = Some(v.split(',').map(str::to_string).collect());
            }
            "--rrc" => o.rrc = Some(it.next().ok_or("--rrc needs a path")?.into()),
            "--scale" => {
                o.scale = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--scale needs a number")?;
            }
            other if o.cri.parse_arg(other, &mut it)? => {}
            other => return Err(format!("bench: unknown argument {other:?}")),
        }
    }
    Ok(o)
}

/// Entry point of `cargo xtask bench`.
pub fn bench(args: &[String]) -> Result<()> {
    let opts = parse_options(args)?;
    if std::env::var_os(INNER).is_some() {
        return inner(&opts);
    }
    if !crate::is_root() {
        return Err("the bench creates containers: run it as root".into());
    }
    crate::ensure_packages(&[
        ("busybox-static", "/bin/busybox"),
        ("runc", "/usr/sbin/runc"),
        ("crun", "/usr/bin/crun"),
    ])?;
    let rrc = match &opts.rrc {
        Some(p) => std::fs::canonicalize(p).map_err(|e| format!("{}: {e}", p.display()))?,
        None => build_static_rrc()?,
    };
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    // A private mount namespace of our own: the unmount of the cgroup2
    // hierarchy below must not leak to the host.
    let err = Command::new("unshare")
        .args(["--mount", "--propagation", "private"])
        .arg(&exe)
        .arg("bench")
        .args(args)
        .env(INNER, "1")
        .env("RR_BENCH_RRC", &rrc)
        .env("RR_BENCH_OUT", crate::target_dir().join("bench"))
        .exec();
    Err(format!("exec unshare {}: {err}", exe.display()))
}

/// `cargo xtask dist`: the `rrc` to deploy, built exactly as the bench
/// builds the one it measures, so the README's numbers are those of the
/// binary users install (a plain `cargo build --release` has neither the
/// static link nor the hot functions first).
pub fn dist() -> Result<()> {
    let rrc = build_static_rrc()?;
    println!("{}", rrc.display());
    Ok(())
}

/// Builds the release `rrc` as a static executable, the way it is meant to
/// be shipped: without the dynamic loader, libc.so and their relocations it
/// starts faster and has a smaller resident set. `crt-static` needs an
/// explicit `--target` (proc-macros cannot be built static), hence the
/// separate output directory. A static-pie relocates itself at startup:
/// packed relative relocations (DT_RELR, glibc 2.36 and binutils 2.38 or
/// newer) shrink that table from 260 KiB, all of it read on every run, to
/// 4 KiB.
///
/// The functions that create, start, delete, run and exec execute
/// (crates/rr-cli/hot-functions.txt) are laid out first, see
/// [`hot_text_flags`]. Should the linker refuse that, the build is retried
/// without it.
fn build_static_rrc() -> Result<PathBuf> {
    let target = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let base = "-C target-feature=+crt-static -C link-arg=-Wl,-z,pack-relative-relocs";
    let build = |flags: &str| {
        crate::run(
            crate::cargo()
                .args(["build", "--release", "-p", "rr-cli", "--bin", "rrc"])
                .arg("--target")
                .arg(&target)
                .env("RUSTFLAGS", flags),
        )
    };
    let ordered = hot_text_flags().map(|f| format!("{base} {f}"));
    match ordered {
        Ok(flags) => {
            if let Err(e) = build(&flags) {
                eprintln!("bench: linking rrc with its hot functions first failed ({e}); without");
                build(base)?;
            }
        }
        Err(e) => {
            eprintln!("bench: {e}; rrc is linked in the default order");
            build(base)?;
        }
    }
    Ok(crate::target_dir().join(target).join("release").join("rrc"))
}

/// Linker flags that put the functions named in
/// crates/rr-cli/hot-functions.txt at the start of the text. A page fault
/// on the text maps the 64 KiB window around it; the ~600 KiB of code a
/// command runs was spread over the whole 2.7 MiB of text, so nearly all
/// of it became resident (2.5 of rrc's 3.4 MiB peak).
///
/// The list holds names without what changes from build to build: the
/// `h<hash>E` of legacy-mangled Rust symbols (it depends on the profile)
/// and LTO's `.N` suffixes. Rust functions are placed by a linker script
/// that matches their sections (`.text.NAME*`, `.text.unlikely.NAME*`)
/// in an output section inserted before `.text`; C functions from the
/// static libc share one `.text` per object and are ordered by symbol
/// (lld's `--symbol-ordering-file`), right after it. The generated files'
/// names carry a hash of the list, so that a changed list relinks.
fn hot_text_flags() -> Result<String> {
    let list = crate::project_root().join("crates/rr-cli/hot-functions.txt");
    let text = std::fs::read_to_string(&list).map_err(|e| format!("{}: {e}", list.display()))?;
    let mut script = String::from("SECTIONS {\n  .text.rr_hot : {\n");
    let mut c_syms = String::new();
    for name in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(prefix) = name.strip_suffix("17h").filter(|_| name.starts_with("_ZN")) {
            for sec in [".text.", ".text.unlikely."] {
                script.push_str(&format!("    *({sec}{prefix}17h*)\n"));
            }
        } else if name.starts_with("_R") || name.starts_with("_ZN") {
            for sec in [".text.", ".text.unlikely."] {
                script.push_str(&format!("    *({sec}{name} {sec}{name}.*)\n"));
            }
        } else {
            c_syms.push_str(name);
            c_syms.push('\n');
        }
    }
    script.push_str("  }\n}\nINSERT BEFORE .text;\n");
    // FNV-1a: only needs to change when the list does.
    let hash = text.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    let dir = crate::target_dir().join("rrc-link");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let ld = dir.join(format!("hot-text-{hash:016x}.ld"));
    let order = dir.join(format!("hot-c-{hash:016x}.txt"));
    for (path, body) in [(&ld, &script), (&order, &c_syms)] {
        std::fs::write(path, body).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(format!(
        "-C link-arg=-Wl,-T,{} -C link-arg=-Wl,--symbol-ordering-file={} \
         -C link-arg=-Wl,--no-warn-symbol-ordering",
        ld.display(),
        order.display()
    ))
}

/// One runtime under test.
pub(crate) struct Runtime {
    pub(crate) name: &'static str,
    bin: PathBuf,
    root: PathBuf,
}

impl Runtime {
    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(&self.root).args(args);
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    }
}

/// The result of one timed child: wall time and its peak RSS.
#[derive(Clone, Copy)]
struct Sample {
    ms: f64,
    maxrss_kib: i64,
}

/// Set during the peak-RSS pass: `timed` then traces each runtime to read its
/// own VmHWM at exit. ru_maxrss cannot be used: exec folds the pre-exec mm's
/// high-water mark (the forked or vforked harness, ~3.5 MiB) into it, so every
/// runtime reported the harness's size. Tracing costs a stop per signal, so
/// the timed runs go without it.
static PROBE_RSS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Spawns `cmd`, waits for it with wait4, and fails with its stderr when it
/// does not exit 0. In the RSS pass, `maxrss_kib` is the runtime's own VmHWM.
fn timed(cmd: &mut Command) -> Result<Sample> {
    if PROBE_RSS.load(std::sync::atomic::Ordering::Relaxed) {
        return traced(cmd);
    }
    let t = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("spawning {cmd:?}: {e}"))?;
    let pid = child.id() as i32;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; status and ru are valid out pointers.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    if r != pid {
        return Err(format!(
            "wait4 {cmd:?}: {}",
            std::io::Error::last_os_error()
        ));
    }
    exited_zero(cmd, &mut child, status)?;
    Ok(Sample {
        ms,
        maxrss_kib: ru.ru_maxrss,
    })
}

/// Ok when the wait status is a zero exit; otherwise the error names the
/// command, the status and what it wrote to stderr.
fn exited_zero(cmd: &Command, child: &mut std::process::Child, status: i32) -> Result<()> {
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        return Ok(());
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    Err(format!(
        "{cmd:?} failed (wait status {status:#x}):\n{}",
        err.trim()
    ))
}

/// Runs `cmd` under ptrace with PTRACE_O_TRACEEXIT and reads VmHWM of its
/// main process at the exit stop, while its mm is still attached. Only the
/// runtime's own process counts (not the children it forks), the same for all
/// three runtimes.
fn traced(cmd: &mut Command) -> Result<Sample> {
    // SAFETY: PTRACE_TRACEME is async-signal-safe and touches no memory.
    unsafe {
        cmd.pre_exec(|| {
            if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let t = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("spawning {cmd:?}: {e}"))?;
    let pid = child.id() as i32;
    let mut hwm = 0;
    let mut first = true;
    let status = loop {
        let mut st = 0;
        // SAFETY: waits for our own (traced) child; st is a valid out pointer.
        if unsafe { libc::waitpid(pid, &mut st, libc::__WALL) } != pid {
            return Err(format!(
                "waitpid {cmd:?}: {}",
                std::io::Error::last_os_error()
            ));
        }
        if !libc::WIFSTOPPED(st) {
            break st;
        }
        let mut sig = libc::WSTOPSIG(st);
        if first && sig == libc::SIGTRAP {
            // The stop after exec: from here on, stop once more at exit.
            first = false;
            sig = 0;
            // TRACEEXEC turns later execs (crun re-executes itself from a
            // memfd) into event stops instead of a SIGTRAP that would kill it.
            let opts =
                libc::PTRACE_O_TRACEEXIT | libc::PTRACE_O_TRACEEXEC | libc::PTRACE_O_EXITKILL;
            // SAFETY: our stopped tracee; options are plain flags.
            unsafe { libc::ptrace(libc::PTRACE_SETOPTIONS, pid, 0, opts) };
        } else if st >> 8 == libc::SIGTRAP | (libc::PTRACE_EVENT_EXIT << 8) {
            hwm = vm_hwm_kib(pid).unwrap_or(0);
            sig = 0;
        } else if st >> 8 == libc::SIGTRAP | (libc::PTRACE_EVENT_EXEC << 8) {
            sig = 0;
        }
        // SAFETY: resumes our stopped tracee, passing its signal on.
        unsafe { libc::ptrace(libc::PTRACE_CONT, pid, 0, sig) };
    };
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    exited_zero(cmd, &mut child, status)?;
    Ok(Sample {
        ms,
        maxrss_kib: hwm,
    })
}

/// The VmHWM line of /proc/<pid>/status, in KiB.
fn vm_hwm_kib(pid: i32) -> Option<i64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn pidfd_open(pid: i32) -> Result<i32> {
    // SAFETY: pidfd_open with plain integers.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    if fd < 0 {
        return Err(format!(
            "pidfd_open {pid}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(fd)
}

/// Waits for the process behind `pidfd` to exit and reaps it (it is our
/// child: we are a subreaper and its runtime parent has exited).
fn wait_pidfd(pidfd: i32) -> Result<()> {
    let mut pfd = libc::pollfd {
        fd: pidfd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd; 10 s at most.
    let n = unsafe { libc::poll(&mut pfd, 1, 10_000) };
    if n != 1 {
        // SAFETY: our fd.
        unsafe { libc::close(pidfd) };
        return Err("the container process did not exit within 10 s".into());
    }
    // SAFETY: an all-zero siginfo is a valid out value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // P_PIDFD = 3; reaps the zombie so the runtime sees it gone. It may fail
    // with ECHILD when the process is not ours (someone else reaped it).
    // SAFETY: waitid on our pidfd with a valid out pointer.
    unsafe { libc::waitid(3, pidfd as libc::id_t, &mut info, libc::WEXITED) };
    // SAFETY: our fd.
    unsafe { libc::close(pidfd) };
    Ok(())
}

fn read_pid(path: &Path) -> Result<i32> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.trim()
        .parse()
        .map_err(|e| format!("{}: {e}: {text:?}", path.display()))
}

/// Reaps whatever orphans were reparented to us (we are a subreaper).
pub(crate) fn reap_orphans() {
    loop {
        let mut st = 0;
        // SAFETY: plain waitpid for any child without blocking.
        if unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) } <= 0 {
            break;
        }
    }
}

/// Per-runtime samples of each measured operation.
#[derive(Default)]
struct Series {
    lifecycle: Vec<f64>,
    create: Vec<f64>,
    start: Vec<f64>,
    delete: Vec<f64>,
    run: Vec<f64>,
    run_cold: Vec<f64>,
    exec: Vec<f64>,
    exec_error: Option<String>,
    maxrss_create: i64,
    maxrss_start: i64,
    maxrss_delete: i64,
    maxrss_run: i64,
    maxrss_exec: i64,
}

fn lifecycle(rt: &Runtime, bundle: &str, id: &str, pid_file: &Path, s: &mut Series) -> Result<()> {
    let pf = pid_file.to_string_lossy();
    let t0 = Instant::now();
    let c = timed(&mut rt.cmd(&["create", "--bundle", bundle, "--pid-file", &pf, id]))?;
    let pidfd = pidfd_open(read_pid(pid_file)?)?;
    let st = match timed(&mut rt.cmd(&["start", id])) {
        Ok(st) => st,
        Err(e) => {
            // SAFETY: our fd.
            unsafe { libc::close(pidfd) };
            let _ = rt.cmd(&["delete", "--force", id]).status();
            return Err(e);
        }
    };
    wait_pidfd(pidfd)?;
    let d = timed(&mut rt.cmd(&["delete", id]))?;
    s.lifecycle.push(t0.elapsed().as_secs_f64() * 1000.0);
    s.create.push(c.ms);
    s.start.push(st.ms);
    s.delete.push(d.ms);
    s.maxrss_create = s.maxrss_create.max(c.maxrss_kib);
    s.maxrss_start = s.maxrss_start.max(st.maxrss_kib);
    s.maxrss_delete = s.maxrss_delete.max(d.maxrss_kib);
    let _ = std::fs::remove_file(pid_file);
    Ok(())
}

fn run_foreground(rt: &Runtime, bundle: &str, id: &str, s: &mut Series) -> Result<()> {
    let r = timed(&mut rt.cmd(&["run", "--bundle", bundle, id]))?;
    s.run.push(r.ms);
    s.maxrss_run = s.maxrss_run.max(r.maxrss_kib);
    Ok(())
}

/// Runs of each command in the peak-RSS pass (the max is reported).
const RSS_RUNS: usize = 3;

/// Runs `f` with PROBE_RSS set, clearing it whatever `f` returns.
fn probing<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    use std::sync::atomic::Ordering;
    PROBE_RSS.store(true, Ordering::Relaxed);
    let r = f();
    PROBE_RSS.store(false, Ordering::Relaxed);
    r
}

/// Peak RSS of create, start, delete and run: untimed traced runs whose
/// samples go to a scratch series, so the timings keep untraced runs only.
fn rss_pass(rt: &Runtime, bundle: &str, pid_file: &Path, s: &mut Series) -> Result<()> {
    let mut scratch = Series::default();
    probing(|| {
        for i in 0..RSS_RUNS {
            lifecycle(rt, bundle, &format!("rss{i}"), pid_file, &mut scratch)?;
            run_foreground(rt, bundle, &format!("rssrun{i}"), &mut scratch)?;
            reap_orphans();
        }
        Ok(())
    })?;
    s.maxrss_create = scratch.maxrss_create;
    s.maxrss_start = scratch.maxrss_start;
    s.maxrss_delete = scratch.maxrss_delete;
    s.maxrss_run = scratch.maxrss_run;
    Ok(())
}

fn floor(rootfs: &Path) -> Result<f64> {
    let mut c = Command::new("unshare");
    c.args([
        "--mount", "--uts", "--ipc", "--net", "--pid", "--fork", "--cgroup", "chroot",
    ])
    .arg(rootfs)
    .arg("/bin/true")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    Ok(timed(&mut c)?.ms)
}

/// Median, 10th and 90th percentile, median absolute deviation.
pub(crate) fn stats(v: &[f64]) -> Value {
    if v.is_empty() {
        return Value::Null;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let q = |p: f64| s[((s.len() - 1) as f64 * p).round() as usize];
    let med = q(0.5);
    let mut dev: Vec<f64> = s.iter().map(|x| (x - med).abs()).collect();
    dev.sort_by(f64::total_cmp);
    let mad = dev[(dev.len() - 1) / 2];
    json!({"n": s.len(), "median_ms": med, "p10_ms": q(0.1), "p90_ms": q(0.9), "mad_ms": mad})
}

pub(crate) fn median(v: &[f64]) -> Option<f64> {
    stats(v)["median_ms"].as_f64()
}

fn inner(opts: &Options) -> Result<()> {
    let rrc = PathBuf::from(std::env::var_os("RR_BENCH_RRC").ok_or("RR_BENCH_RRC unset")?);
    let out_dir = PathBuf::from(std::env::var_os("RR_BENCH_OUT").ok_or("RR_BENCH_OUT unset")?);
    // Legacy v1 only, for all three (this namespace is private).
    if Path::new("/sys/fs/cgroup/unified").exists() {
        let _ = Command::new("umount")
            .arg("/sys/fs/cgroup/unified")
            .stderr(Stdio::null())
            .status();
    }
    // Container inits outlive their runtime process; as a subreaper we get
    // them back and can reap them, so that `delete` sees them gone.
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err("prctl(PR_SET_CHILD_SUBREAPER) failed".into());
    }

    if opts.cri.only {
        return crate::bench_cri::standalone(&opts.cri, &rrc, &out_dir, unix_now());
    }
    let work = tempfile_dir()?;
    let result = measure(opts, &rrc, &work, &out_dir);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn tempfile_dir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("rr-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
    Ok(d)
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| f.is_file())
    })
}

fn measure(opts: &Options, rrc: &Path, work: &Path, out_dir: &Path) -> Result<()> {
    let bundle = work.join("bundle");
    std::fs::create_dir_all(&bundle).map_err(|e| format!("{}: {e}", bundle.display()))?;
    let rootfs = bundle.join("rootfs");
    rr_tests::make_busybox_rootfs(&rootfs).map_err(|e| format!("busybox rootfs: {e}"))?;
    crate::run(Command::new(rrc).arg("spec").arg("--bundle").arg(&bundle))?;
    crate::set_process(&bundle, &["true"])?;
    let b = bundle.to_string_lossy().to_string();

    let mut rts = Vec::new();
    for (name, bin) in [
        ("rrc", Some(rrc.to_path_buf())),
        ("runc", which("runc")),
        ("crun", which("crun")),
    ] {
        if opts
            .only
            .as_ref()
            .is_some_and(|o| !o.iter().any(|x| x == name))
        {
            continue;
        }
        let bin = bin.ok_or(format!("{name} not found in PATH"))?;
        let root = work.join(format!("root-{name}"));
        std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
        rts.push(Runtime { name, bin, root });
    }
    let mut series: Vec<Series> = rts.iter().map(|_| Series::default()).collect();
    let mut floor_ms = Vec::new();
    let mut attach_ms = Vec::new();
    let attach_cg = PathBuf::from(format!(
        "/sys/fs/cgroup/pids/rr-bench-attach-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&attach_cg).map_err(|e| format!("{}: {e}", attach_cg.display()))?;
    let pid_file = work.join("pid");

    // One untimed warm-up of each (page cache, first cgroup creation).
    for rt in &rts {
        let mut scratch = Series::default();
        lifecycle(rt, &b, "warm", &pid_file, &mut scratch)?;
        run_foreground(rt, &b, "warm-run", &mut scratch)?;
    }
    eprintln!("bench: {} runs of each, alternating", opts.runs);
    for i in 0..opts.runs {
        // Rotate the order each round so no runtime always goes first.
        for k in 0..rts.len() {
            let j = (i + k) % rts.len();
            let rt = &rts[j];
            lifecycle(rt, &b, &format!("lc{i}"), &pid_file, &mut series[j])?;
            run_foreground(rt, &b, &format!("run{i}"), &mut series[j])?;
            reap_orphans();
        }
        floor_ms.push(floor(&rootfs)?);
        attach_ms.push(cgroup_attach(&attach_cg)?);
        reap_orphans();
        if (i + 1) % 10 == 0 {
            eprint!(".");
            let _ = std::io::stderr().flush();
        }
    }
    eprintln!();
    let attach_cold_ms = cold_pass(&rts, &b, &attach_cg, &mut series)?;
    for (j, rt) in rts.iter().enumerate() {
        rss_pass(rt, &b, &pid_file, &mut series[j])?;
    }

    // exec into a running container: one `sleep` container per runtime.
    crate::set_process(&bundle, &["sleep", "1000"])?;
    for (j, rt) in rts.iter().enumerate() {
        let id = "bench-exec";
        let _ = timed(&mut rt.cmd(&["delete", "--force", id]));
        timed(&mut rt.cmd(&["run", "--detach", "--bundle", &b, id]))?;
        for _ in 0..opts.runs {
            match timed(&mut rt.cmd(&["exec", id, "true"])) {
                Ok(s) => series[j].exec.push(s.ms),
                Err(e) => {
                    series[j].exec_error = Some(e.lines().last().unwrap_or("").trim().into());
                    series[j].exec.clear();
                    break;
                }
            }
        }
        if series[j].exec_error.is_none() {
            series[j].maxrss_exec = probing(|| {
                let mut kib = 0;
                for _ in 0..RSS_RUNS {
                    kib = kib.max(timed(&mut rt.cmd(&["exec", id, "true"]))?.maxrss_kib);
                }
                Ok(kib)
            })?;
        }
        let _ = timed(&mut rt.cmd(&["delete", "--force", id]));
        reap_orphans();
    }
    let scale = match opts.scale {
        0 => None,
        n => Some(crate::bench_scale::measure(&rts, &b, n, work)?),
    };
    crate::set_process(&bundle, &["true"])?;

    let _ = std::fs::remove_dir(&attach_cg);
    let cri = crate::bench_cri::measure(&opts.cri, rrc);
    report(
        &rts,
        &series,
        &floor_ms,
        [&attach_ms, &attach_cold_ms],
        cri.as_ref(),
        (scale.as_ref(), out_dir),
    )?;
    cri.map_or(Ok(()), |c| c.check())
}

/// Runs of each runtime in the cold pass, and the idle gap before each.
const COLD_RUNS: usize = 10;
const COLD_GAP: std::time::Duration = std::time::Duration::from_millis(150);

/// Foreground runs after an idle gap, as a node starting one pod sees them:
/// back to back, each runtime's cgroup.procs write finds the kernel's
/// cgroup lock still in writer mode from the previous one and skips the RCU
/// grace period a lone `run` waits for. Returns cold cgroup-attach times.
fn cold_pass(rts: &[Runtime], bundle: &str, cg: &Path, series: &mut [Series]) -> Result<Vec<f64>> {
    let mut attach = Vec::new();
    for i in 0..COLD_RUNS {
        for k in 0..rts.len() {
            let j = (i + k) % rts.len();
            std::thread::sleep(COLD_GAP);
            let mut scratch = Series::default();
            run_foreground(&rts[j], bundle, &format!("cold{i}"), &mut scratch)?;
            series[j].run_cold.extend(scratch.run);
            reap_orphans();
        }
        std::thread::sleep(COLD_GAP);
        attach.push(cgroup_attach(cg)?);
    }
    Ok(attach)
}

/// Time of one write of a fresh process's pid to a v1 cgroup.procs: what
/// every runtime pays (and the floor does not) before its container runs.
/// The kernel takes cgroup_threadgroup_rwsem for writing; unless another
/// write came just before, that waits for an RCU grace period, which no
/// runtime can avoid on cgroup v1 (short of the favordynmods mount option).
fn cgroup_attach(cg: &Path) -> Result<f64> {
    let mut child = Command::new("sleep")
        .arg("10")
        .spawn()
        .map_err(|e| format!("spawning sleep: {e}"))?;
    let procs = cg.join("cgroup.procs");
    let t = Instant::now();
    let r = std::fs::write(&procs, child.id().to_string());
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    let _ = child.kill();
    let _ = child.wait();
    r.map_err(|e| format!("{}: {e}", procs.display()))?;
    Ok(ms)
}

fn report(
    rts: &[Runtime],
    series: &[Series],
    floor_ms: &[f64],
    attach_ms: [&[f64]; 2],
    cri: Option<&crate::bench_cri::CriRows>,
    (scale, out_dir): (Option<&crate::bench_scale::ScaleReport>, &Path),
) -> Result<()> {
    let crun = rts.iter().position(|r| r.name == "crun");
    let floor = median(floor_ms);
    type Pick = fn(&Series) -> &Vec<f64>;
    let ops: [(&str, Pick); 7] = [
        ("lifecycle", |s| &s.lifecycle),
        ("run", |s| &s.run),
        ("run-cold", |s| &s.run_cold),
        ("create", |s| &s.create),
        ("start", |s| &s.start),
        ("delete", |s| &s.delete),
        ("exec", |s| &s.exec),
    ];
    println!(
        "\n{:<10} {:<6} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8}",
        "op", "rt", "median", "p10", "p90", "MAD", "/crun", "/floor"
    );
    for (op, pick) in ops {
        for (j, rt) in rts.iter().enumerate() {
            let st = stats(pick(&series[j]));
            let Some(med) = st["median_ms"].as_f64() else {
                let why = if op == "exec" {
                    series[j].exec_error.clone().unwrap_or_default()
                } else {
                    String::new()
                };
                println!("{op:<10} {:<6} {:>9} {why}", rt.name, "n/a");
                continue;
            };
            let vs_crun = crun
                .and_then(|c| median(pick(&series[c])))
                .map_or("-".into(), |c| format!("{:.2}x", med / c));
            let vs_floor = floor
                .filter(|_| matches!(op, "lifecycle" | "run" | "run-cold"))
                .map_or("-".into(), |f| format!("{:.2}x", med / f));
            println!(
                "{op:<10} {:<6} {:>7.2}ms {:>7.2}ms {:>7.2}ms {:>7.2}ms {:>8} {:>8}",
                rt.name,
                med,
                st["p10_ms"].as_f64().unwrap_or(0.0),
                st["p90_ms"].as_f64().unwrap_or(0.0),
                st["mad_ms"].as_f64().unwrap_or(0.0),
                vs_crun,
                vs_floor
            );
        }
    }
    let fs = stats(floor_ms);
    println!(
        "{:<10} {:<6} {:>7.2}ms {:>7.2}ms {:>7.2}ms {:>7.2}ms",
        "floor",
        "unshare",
        fs["median_ms"].as_f64().unwrap_or(0.0),
        fs["p10_ms"].as_f64().unwrap_or(0.0),
        fs["p90_ms"].as_f64().unwrap_or(0.0),
        fs["mad_ms"].as_f64().unwrap_or(0.0),
    );
    for (name, v) in [("cg-warm", attach_ms[0]), ("cg-cold", attach_ms[1])] {
        let at = stats(v);
        println!(
            "{name:<10} {:<6} {:>7.2}ms {:>7.2}ms {:>7.2}ms {:>7.2}ms",
            "kernel",
            at["median_ms"].as_f64().unwrap_or(0.0),
            at["p10_ms"].as_f64().unwrap_or(0.0),
            at["p90_ms"].as_f64().unwrap_or(0.0),
            at["mad_ms"].as_f64().unwrap_or(0.0),
        );
    }
    println!("(cg-*: one v1 cgroup.procs write right after the runtimes / after an idle gap)");
    if let Some(s) = scale {
        s.print();
    }
    if let Some(c) = cri {
        c.print_rows();
    }
    println!(
        "\n{:<6} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "rt", "rss create", "start", "delete", "run", "exec", "binary"
    );
    let mut out_rts = serde_json::Map::new();
    for (j, rt) in rts.iter().enumerate() {
        let s = &series[j];
        let size = std::fs::metadata(&rt.bin).map(|m| m.len()).unwrap_or(0);
        println!(
            "{:<6} {:>7} KiB {:>6} KiB {:>6} KiB {:>6} KiB {:>6} KiB {:>8} KiB",
            rt.name,
            s.maxrss_create,
            s.maxrss_start,
            s.maxrss_delete,
            s.maxrss_run,
            s.maxrss_exec,
            size / 1024
        );
        out_rts.insert(
            rt.name.into(),
            json!({
                "binary": rt.bin.display().to_string(),
                "binary_bytes": size,
                "version": version_of(&rt.bin),
                "lifecycle": stats(&s.lifecycle),
                "run": stats(&s.run),
                "run_cold": stats(&s.run_cold),
                "create": stats(&s.create),
                "start": stats(&s.start),
                "delete": stats(&s.delete),
                "exec": stats(&s.exec),
                "exec_error": s.exec_error,
                "maxrss_kib": {
                    "create": s.maxrss_create, "start": s.maxrss_start,
                    "delete": s.maxrss_delete, "run": s.maxrss_run, "exec": s.maxrss_exec,
                },
                "samples_ms": {"lifecycle": s.lifecycle, "run": s.run},
            }),
        );
    }
    let now = unix_now();
    let doc = json!({
        "unix_time": now,
        "runs": floor_ms.len(),
        "cgroups": "v1 (cgroup2 at /sys/fs/cgroup/unified unmounted in a private mount namespace)",
        "workload": "busybox true, config from `rrc spec` with terminal false",
        "floor": stats(floor_ms),
        "cgroup_attach_warm": stats(attach_ms[0]),
        "cgroup_attach_cold": stats(attach_ms[1]),
        "runtimes": out_rts,
        "cri": cri.map(crate::bench_cri::CriRows::json),
        "scale": scale.map(|s| s.json()),
    });
    if let Some(c) = cri {
        c.write_json(out_dir, now)?;
    }
    std::fs::create_dir_all(out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    for name in [format!("bench-{now}.json"), "latest.json".into()] {
        let p = out_dir.join(name);
        std::fs::write(&p, &text).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    println!("\nresults: {}", out_dir.join("latest.json").display());
    Ok(())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn version_of(bin: &Path) -> String {
    Command::new(bin)
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default()
}
