//! `cargo xtask <command>`: the project's own tasks.
//!
//! - `demo`: build `rrc`, make a busybox bundle and run a real container.
//! - `test`: the whole test suite (unit, property, black-box as root).
//! - `e2e`: the black-box suite inside a VM, once per cgroup mode.
//! - `bench`: rrc against runc and crun, and the kernel floor (see bench.rs);
//!   `--cri` adds pod and container start through containerd (bench_cri.rs).
//! - `clients`: rrc under podman and containerd (see clients.rs).
//! - `stress`: SIGKILLs rrc during each command and checks nothing leaks.
//! - `conformance`: runtime-tools' validation suite and critest, rrc beside
//!   runc (see conformance.rs).
//! - `dist`: builds the `rrc` to deploy, the one the bench measures.
//! - `hot-functions`: regenerates crates/rr-cli/hot-functions.txt, what the
//!   bench's rrc links first (see hot.rs).

mod bench;
mod bench_cri;
mod bench_scale;
mod clients;
mod conformance;
mod conformance_cri;
mod conformance_deb;
mod conformance_rt;
mod conformance_tap;
mod cpio;
mod cri_client;
mod criu_build;
mod e2e;
mod e2e_systemd;
mod hot;
mod stress;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

type Result<T> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo(),
        Some("test") => test(&args[1..]),
        Some("e2e") => return e2e::main(&args[1..]),
        Some("bench") => bench::bench(&args[1..]),
        Some("clients") => return clients::main(&args[1..]),
        Some("stress") => stress::stress(&args[1..]),
        Some("conformance") => return conformance::main(&args[1..]),
        Some("hot-functions") => hot::hot_functions(),
        Some("dist") => bench::dist(),
        _ => {
            eprintln!("usage: cargo xtask <demo|test|e2e|bench|clients|stress|conformance|dist|hot-functions> [args]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"))
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().map_err(|e| format!("running {cmd:?}: {e}"))?;
    if !status.success() {
        return Err(format!("{cmd:?} failed: {status}"));
    }
    Ok(())
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(project_root());
    c
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Installs Debian packages that are missing, when we are root; otherwise
/// says exactly what to install.
fn ensure_packages(pkgs: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> = pkgs
        .iter()
        .filter(|(_, file)| !Path::new(file).exists())
        .map(|(p, _)| *p)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        return Err(format!(
            "missing {}: install with `sudo apt-get install -y {}`",
            missing.join(", "),
            missing.join(" ")
        ));
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

fn build_rrc(release: bool) -> Result<PathBuf> {
    let mut c = cargo();
    c.args(["build", "-p", "rr-cli", "--bin", "rrc"]);
    if release {
        c.arg("--release");
    }
    run(&mut c)?;
    Ok(target_dir()
        .join(if release { "release" } else { "debug" })
        .join("rrc"))
}

/// The crates published on their own (xtask and the black-box tests are not).
const PUBLISHED_CRATES: &[&str] = &[
    "rr-nsenter",
    "rr-cgroups",
    "rr-intelrdt",
    "rr-criu",
    "rr-state",
    "rr-seccomp",
    "rr-container",
    "rr-cli",
];

/// The Debian packages the tests use, with a file that shows each is there.
const TEST_PACKAGES: &[(&str, &str)] = &[
    ("busybox-static", "/bin/busybox"),
    // Debian's CRIU 3.17.1: the tests check its VERSION answer and that its
    // feature probe fails on this kernel.
    ("criu", "/usr/sbin/criu"),
    // newuidmap/newgidmap: the rootless test maps several id ranges.
    ("uidmap", "/usr/bin/newuidmap"),
    // CRIU saves and locks a container's network namespace with them.
    ("iproute2", "/bin/ip"),
    ("iptables", "/usr/sbin/iptables-restore"),
    // Debian's runc 1.1.5: tests that compare rrc with runc run both.
    ("runc", "/usr/sbin/runc"),
    // The runtime-spec JSON schema: rr-container's spec catalogue test
    // walks it to check that every config field is catalogued.
    (
        "golang-github-opencontainers-specs-dev",
        "/usr/share/gocode/src/github.com/opencontainers/runtime-spec/schema/config-schema.json",
    ),
];

fn test(extra: &[String]) -> Result<()> {
    let mut cmd = cargo();
    if is_root() {
        ensure_packages(TEST_PACKAGES)?;
        // CRIU 4.2.1, built once from Debian's source package and cached.
        let criu = criu_build::ensure_criu(&target_dir().join("tools"))?;
        cmd.env("RR_CRIU_BIN", criu);
    } else {
        eprintln!("xtask: not root: the black-box container tests will be skipped");
    }
    // Every publishable crate must package cleanly; packaging them together
    // lets the ones that depend on siblings resolve them locally.
    let mut package = cargo();
    package.args(["package", "--no-verify", "--allow-dirty", "--quiet"]);
    for c in PUBLISHED_CRATES {
        package.args(["-p", c]);
    }
    run(&mut package)?;
    let rrc = build_rrc(false)?;
    run(cmd
        // One failing test binary must not hide the others.
        .args(["test", "--workspace", "--no-fail-fast"])
        .args(extra)
        .env("RRC_BIN", &rrc))
}

fn demo() -> Result<()> {
    if !is_root() {
        return Err("the demo creates namespaces and mounts: run it as root".into());
    }
    ensure_packages(&[("busybox-static", "/bin/busybox")])?;
    let rrc = build_rrc(false)?;
    let work = target_dir().join("demo");
    let _ = std::fs::remove_dir_all(&work);
    let bundle = work.join("bundle");
    let root = work.join("state");
    std::fs::create_dir_all(&bundle).map_err(|e| format!("{}: {e}", bundle.display()))?;
    rr_tests::make_busybox_rootfs(&bundle.join("rootfs"))
        .map_err(|e| format!("making the busybox rootfs: {e}"))?;
    let rrc_cmd = |args: &[&str]| {
        let mut c = Command::new(&rrc);
        c.arg("--root").arg(&root).args(args);
        c
    };
    println!("$ rrc spec -b {}", bundle.display());
    run(&mut rrc_cmd(&["spec", "-b", &bundle.to_string_lossy()]))?;
    set_process(
        &bundle,
        &[
            "sh",
            "-c",
            "echo \"hostname: $(hostname)\"; echo 'processes (ps):'; ps; echo 'mounts:'; \
             awk '{print \"  \" $5 \" \" $9}' /proc/self/mountinfo | head -n 12",
        ],
    )?;
    let b = bundle.to_string_lossy().to_string();
    println!("\n$ rrc run -b {b} demo");
    run(&mut rrc_cmd(&["run", "-b", &b, "demo"]))?;

    set_process(&bundle, &["sleep", "30"])?;
    let cleanup = |_: ()| {
        let _ = rrc_cmd(&["delete", "-f", "demo-lifecycle"]).status();
    };
    let walk = (|| -> Result<()> {
        for step in [
            vec!["create", "-b", &b, "demo-lifecycle"],
            vec!["state", "demo-lifecycle"],
            vec!["start", "demo-lifecycle"],
            vec!["state", "demo-lifecycle"],
            vec!["list"],
            vec!["delete", "-f", "demo-lifecycle"],
            vec!["list"],
        ] {
            println!("\n$ rrc {}", step.join(" "));
            run(&mut rrc_cmd(&step))?;
        }
        Ok(())
    })();
    cleanup(());
    let _ = std::fs::remove_dir_all(&work);
    walk
}

fn set_process(bundle: &Path, args: &[&str]) -> Result<()> {
    let path = bundle.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    v["process"]["terminal"] = false.into();
    v["process"]["args"] = args.iter().map(|a| serde_json::Value::from(*a)).collect();
    v["hostname"] = "rr-demo".into();
    std::fs::write(&path, v.to_string()).map_err(|e| format!("{}: {e}", path.display()))
}
