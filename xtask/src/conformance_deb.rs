//! Fetches a Debian source package's orig tarball with a private apt setup
//! (its own deb-src list, package lists and cache under the caller's
//! directory), so the system's apt configuration is never modified.
//! Debian's archive is the one source of upstream code these machines reach.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Result;

const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
const MIRROR: &str = "http://deb.debian.org/debian";

/// Returns `<cache>/<package>_<version>.orig.tar.*`, downloading it on the
/// first call; its SHA-256 must be `sha256`.
pub fn orig_tarball(cache: &Path, package: &str, version: &str, sha256: &str) -> Result<PathBuf> {
    let download = cache.join("files");
    if let Some(found) = find_orig(&download, package, version) {
        check_sha(&found, sha256)?;
        return Ok(found);
    }
    let apt = cache.join("apt");
    for dir in [
        apt.join("sources.list.d"),
        apt.join("lists/partial"),
        apt.join("cache/archives/partial"),
        download.clone(),
    ] {
        fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let list = apt.join("sources.list");
    let mut f = fs::File::create(&list).map_err(|e| format!("creating {}: {e}", list.display()))?;
    for suite in ["sid", "bookworm"] {
        writeln!(f, "deb-src [signed-by={KEYRING}] {MIRROR} {suite} main")
            .map_err(|e| format!("writing {}: {e}", list.display()))?;
    }
    drop(f);
    let private = |cmd: &mut Command| {
        for (k, v) in [
            ("Dir::Etc::SourceList", list.clone()),
            ("Dir::Etc::SourceParts", apt.join("sources.list.d")),
            ("Dir::State::Lists", apt.join("lists")),
            ("Dir::Cache", apt.join("cache")),
        ] {
            cmd.arg("-o").arg(format!("{k}={}", v.display()));
        }
    };
    let mut update = Command::new("apt-get");
    private(&mut update);
    crate::run(update.args(["update", "-qq"]))?;
    // Only the orig tarball matters; the .dsc of a version sid is replacing
    // has been seen to 404 while the tarball is still served. apt-get source
    // wants the exact Debian revision.
    let mut found = None;
    let mut last_error = String::new();
    for rev in ["1", "2", "3"] {
        let mut source = Command::new("apt-get");
        private(&mut source);
        if let Err(e) = crate::run(
            source
                .args(["source", "--download-only", "-qq"])
                .arg(format!("{package}={version}-{rev}"))
                .current_dir(&download),
        ) {
            last_error = e;
        }
        found = find_orig(&download, package, version);
        if found.is_some() {
            break;
        }
    }
    let found = found.ok_or_else(|| {
        format!("apt-get source {package}={version} gave no orig tarball ({last_error})")
    })?;
    check_sha(&found, sha256)?;
    Ok(found)
}

fn find_orig(dir: &Path, package: &str, version: &str) -> Option<PathBuf> {
    let prefix = format!("{package}_{version}.orig.tar.");
    fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
        })
}

fn check_sha(path: &Path, want: &str) -> Result<()> {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .map_err(|e| format!("sha256sum {}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let got = text.split_whitespace().next().unwrap_or("");
    if got == want {
        Ok(())
    } else {
        let _ = fs::remove_file(path);
        Err(format!(
            "{}: SHA-256 {got}, expected {want} (removed)",
            path.display()
        ))
    }
}
