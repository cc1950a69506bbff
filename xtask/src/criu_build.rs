//! Builds CRIU 4.2.1 from Debian's source package, for tests that need a CRIU
//! newer than the one bookworm ships (3.17.1 fails its vDSO probe on recent
//! kernels).
//!
//! Only std is used so the module can be included anywhere (the xtask binary or
//! a throwaway harness). The system apt configuration is never modified: the
//! sid `deb-src` line lives in a private directory under the cache.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The upstream version this module builds.
pub const CRIU_VERSION: &str = "4.2.1";

/// Build dependencies (bookworm package names) of `make criu`.
const BUILD_DEPS: &[&str] = &[
    "gcc",
    "make",
    "pkg-config",
    "protobuf-c-compiler",
    "libprotobuf-c-dev",
    "protobuf-compiler",
    "libprotobuf-dev",
    "python3-protobuf",
    "libnl-3-dev",
    "libnl-route-3-dev",
    "libcap-dev",
    "libnet1-dev",
    "libbsd-dev",
    "libgnutls28-dev",
    "libnftables-dev",
    "libaio-dev",
    "uuid-dev",
    "iptables",
    "xz-utils",
];

const DEBIAN_SOURCES: &str = "/etc/apt/sources.list.d/debian.sources";
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// Returns the path of a CRIU 4.2.1 binary, building it under `cache_dir` on
/// the first call. Later calls find the stamped result and return at once.
pub fn ensure_criu(cache_dir: &Path) -> Result<PathBuf, String> {
    let final_dir = cache_dir.join(format!("criu-{CRIU_VERSION}"));
    let binary = final_dir.join("criu").join("criu");
    let stamp = final_dir.join(".rr-built");
    if stamp.is_file() && binary.is_file() {
        return Ok(binary);
    }
    fs::create_dir_all(cache_dir).map_err(|e| format!("creating {}: {e}", cache_dir.display()))?;

    let tarball = download_orig_tarball(cache_dir)?;
    install_missing_build_deps()?;

    // Build in a scratch directory and rename at the end, so an interrupted
    // build never looks like a finished one.
    let scratch = cache_dir.join(format!("build-{}", std::process::id()));
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(&scratch).map_err(|e| format!("creating {}: {e}", scratch.display()))?;
    run(Command::new("tar")
        .arg("-xf")
        .arg(&tarball)
        .arg("-C")
        .arg(&scratch))?;
    let src = scratch.join(format!("criu-{CRIU_VERSION}"));
    if !src.is_dir() {
        return Err(format!(
            "{} did not unpack to {}",
            tarball.display(),
            src.display()
        ));
    }
    run(Command::new("make")
        .arg("-j2")
        .arg("criu")
        .current_dir(&src))?;
    check_version(&src.join("criu").join("criu"))?;

    let _ = fs::remove_dir_all(&final_dir);
    fs::rename(&src, &final_dir)
        .map_err(|e| format!("moving {} to {}: {e}", src.display(), final_dir.display()))?;
    let _ = fs::remove_dir_all(&scratch);
    // The build tree remembers its absolute path in a few generated files, but
    // the binary itself does not depend on where it lives.
    check_version(&binary)?;
    fs::write(&stamp, CRIU_VERSION).map_err(|e| format!("writing {}: {e}", stamp.display()))?;
    Ok(binary)
}

/// Fetches `criu_<version>.orig.tar.xz` from sid with a private apt setup.
fn download_orig_tarball(cache_dir: &Path) -> Result<PathBuf, String> {
    let download = cache_dir.join("download");
    let tarball = download.join(format!("criu_{CRIU_VERSION}.orig.tar.xz"));
    if tarball.is_file() {
        return Ok(tarball);
    }
    let apt = cache_dir.join("apt");
    let parts = apt.join("sources.list.d");
    let lists = apt.join("lists");
    let archives = apt.join("cache");
    for dir in [
        &parts,
        &lists.join("partial"),
        &archives.join("archives/partial"),
        &download,
    ] {
        fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let uri = mirror_uri()?;
    let list = apt.join("sources.list");
    let mut f = fs::File::create(&list).map_err(|e| format!("creating {}: {e}", list.display()))?;
    writeln!(f, "deb-src [signed-by={KEYRING}] {uri} sid main")
        .map_err(|e| format!("writing {}: {e}", list.display()))?;
    drop(f);

    let private = |cmd: &mut Command| {
        cmd.arg("-o")
            .arg(format!("Dir::Etc::SourceList={}", list.display()))
            .arg("-o")
            .arg(format!("Dir::Etc::SourceParts={}", parts.display()))
            .arg("-o")
            .arg(format!("Dir::State::Lists={}", lists.display()))
            .arg("-o")
            .arg(format!("Dir::Cache={}", archives.display()));
    };
    let mut update = Command::new("apt-get");
    private(&mut update);
    update.arg("update");
    run(&mut update)?;

    let mut source = Command::new("apt-get");
    private(&mut source);
    source
        .arg("source")
        .arg("--download-only")
        .arg("criu")
        .current_dir(&download);
    // The debian.tar part is not needed and has been seen to 404; only the orig
    // tarball decides success.
    let outcome = run(&mut source);
    if tarball.is_file() {
        return Ok(tarball);
    }
    let found: Vec<String> = fs::read_dir(&download)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    Err(format!(
        "apt-get source did not fetch {} (sid may have moved past {CRIU_VERSION}); found {:?}; apt-get: {}",
        tarball.display(),
        found,
        outcome.err().unwrap_or_else(|| "succeeded".into())
    ))
}

/// The URI of the main (non-security) Debian mirror the system already uses.
fn mirror_uri() -> Result<String, String> {
    let text =
        fs::read_to_string(DEBIAN_SOURCES).map_err(|e| format!("reading {DEBIAN_SOURCES}: {e}"))?;
    // deb822: stanzas separated by blank lines; skip the security stanza.
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().to_string())
            })
        };
        let (Some(uris), Some(suites)) = (field("URIs"), field("Suites")) else {
            continue;
        };
        if suites.contains("-security") {
            continue;
        }
        if let Some(uri) = uris.split_whitespace().next() {
            return Ok(uri.to_string());
        }
    }
    Err(format!(
        "{DEBIAN_SOURCES}: no non-security stanza with URIs and Suites"
    ))
}

fn install_missing_build_deps() -> Result<(), String> {
    let missing: Vec<&str> = BUILD_DEPS
        .iter()
        .copied()
        .filter(|p| !is_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    run(Command::new("apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", "--no-install-recommends"])
        .args(&missing))
}

fn is_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).ends_with(" installed"))
        .unwrap_or(false)
}

fn check_version(binary: &Path) -> Result<(), String> {
    let out = Command::new(binary)
        .arg("-V")
        .output()
        .map_err(|e| format!("running {} -V: {e}", binary.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text
        .lines()
        .any(|l| l.trim() == format!("Version: {CRIU_VERSION}"))
    {
        Ok(())
    } else {
        Err(format!(
            "{} -V printed {:?}, expected Version: {CRIU_VERSION}",
            binary.display(),
            text.trim()
        ))
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("starting {:?}: {e}", cmd))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{:?} failed: {status}", cmd))
    }
}
