//! The systemd mode of `cargo xtask e2e`: a VM whose PID 1 is systemd with
//! its system bus, on pure cgroup v2, for the `--systemd-cgroup` driver.
//!
//! The root file system is Debian bookworm made by mmdebstrap (systemd,
//! dbus, busybox-static), cached under `target/e2e/cache/systemd-root`. It
//! goes into the initramfs whole, with rrc, the test binaries, the modules
//! and a unit that runs the tests; /init copies it into a tmpfs and hands
//! over to systemd.

use std::fs;
use std::io::BufWriter;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cpio;
use crate::{run, Result};

/// The mode's name on the command line.
pub(crate) const MODE: &str = "systemd";
/// The test binaries the systemd VM runs: the driver's own. The rest of
/// the suite runs in the v2 mode, whose kernel and cgroup mode are the same.
pub(crate) const TESTS: &[&str] = &["systemd"];
/// The same VM with systemd's hybrid layout (v1 controllers, cgroup2 at
/// /sys/fs/cgroup/unified), for the v1 unit properties; not a default mode.
pub(crate) const HYBRID_MODE: &str = "systemd-hybrid";

/// Whether `mode` boots the systemd VM.
pub(crate) fn is_systemd(mode: &str) -> bool {
    mode == MODE || mode == HYBRID_MODE
}

/// Kernel command line additions: pure cgroup v2, or systemd's hybrid
/// layout.
pub(crate) fn append(mode: &str) -> &'static str {
    if mode == HYBRID_MODE {
        "systemd.unified_cgroup_hierarchy=0 systemd.show_status=0"
    } else {
        "cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1 systemd.show_status=0"
    }
}
/// What CRIU's feature check and dump need beyond the other modes'
/// modules: /dev/net/tun, the socket diagnostics of each family and
/// nftables' netlink.
pub(crate) const CRIU_MODULES: &[&str] = &[
    "tun",
    "unix_diag",
    "inet_diag",
    "tcp_diag",
    "udp_diag",
    "raw_diag",
    "netlink_diag",
    "af_packet_diag",
    "nfnetlink",
    "nf_tables",
];
/// containerd (with its runc v2 shim) drives rrc with `SystemdCgroup =
/// true`, and podman with `cgroup_manager = "systemd"`; the libraries are the cached CRIU 4.2.1's, for restore into a
/// scope (Debian's criu package would bring python3 along).
const PACKAGES: &str = "systemd,systemd-sysv,dbus,dbus-user-session,passwd,busybox-static,\
containerd,podman,libbsd0,libgnutls30,libnet1,libnftables1,libnl-3-200,libprotobuf-c1";
/// Binaries of those packages that nothing here runs (the shim runs rrc,
/// not runc), left out of a VM that loads its whole root into memory.
const UNUSED: &[&str] = &[
    "/usr/sbin/runc",
    "/usr/bin/containerd-shim",
    "/usr/bin/containerd-shim-runc-v1",
    "/usr/bin/containerd-stress",
];
const MARKER: &str = ".rr-e2e-complete";

fn mirror() -> String {
    let text = fs::read_to_string("/etc/apt/sources.list.d/debian.sources").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("URIs:"))
        .and_then(|u| u.split_whitespace().next())
        .unwrap_or("http://deb.debian.org/debian")
        .to_string()
}

/// The cached root file system, made once.
fn root(cache: &Path) -> Result<PathBuf> {
    let dir = cache.join("systemd-root");
    let recipe = format!("bookworm {PACKAGES} -{}", UNUSED.join(","));
    if fs::read_to_string(dir.join(MARKER)).is_ok_and(|m| m == recipe) {
        return Ok(dir);
    }
    crate::ensure_packages(&[("mmdebstrap", "/usr/bin/mmdebstrap")])?;
    let _ = fs::remove_dir_all(&dir);
    eprintln!(
        "xtask e2e: making a bookworm root with {PACKAGES} in {}",
        dir.display()
    );
    run(Command::new("mmdebstrap")
        .args(["--variant=apt", "--include", PACKAGES])
        .args([
            "--dpkgopt=path-exclude=/usr/share/man/*",
            "--dpkgopt=path-exclude=/usr/share/doc/*",
            "--dpkgopt=path-exclude=/usr/share/locale/*",
        ])
        .args(UNUSED.iter().map(|p| format!("--dpkgopt=path-exclude={p}")))
        .arg("bookworm")
        .arg(&dir)
        .arg(mirror()))?;
    fs::write(dir.join(MARKER), recipe).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

fn dev_numbers(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major as u32, minor as u32)
}

/// Adds the tree at `dir` as `rel` (parents before children); block
/// devices, sockets and fifos are left out.
fn add_tree<W: std::io::Write>(w: &mut cpio::Writer<W>, dir: &Path, rel: &str) -> Result<()> {
    let io = |e: std::io::Error| format!("{}: {e}", dir.display());
    let mut entries: Vec<_> = fs::read_dir(dir).map_err(io)?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        if rel.is_empty() && name == MARKER {
            continue;
        }
        let path = e.path();
        let r = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let md = fs::symlink_metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let perm = md.permissions().mode() & 0o7777;
        let ft = md.file_type();
        let res = if ft.is_symlink() {
            let t = fs::read_link(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            w.symlink(&r, &t.to_string_lossy())
        } else if ft.is_dir() {
            w.dir(&r, perm).map_err(io)?;
            add_tree(w, &path, &r)?;
            Ok(())
        } else if ft.is_file() {
            let data = fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            w.file(&r, perm, &data)
        } else if md.mode() & 0o170000 == 0o020000 {
            let (major, minor) = dev_numbers(md.rdev());
            w.char_dev(&r, perm, major, minor)
        } else {
            Ok(())
        };
        res.map_err(|e| format!("writing {r}: {e}"))?;
    }
    Ok(())
}

const UNIT: &str = "[Unit]
Description=rr e2e tests (--systemd-cgroup)
Wants=dbus.service
After=dbus.service basic.target

[Service]
Type=oneshot
ExecStart=/e2e/run.sh
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity
";

/// What goes into the systemd VM besides its root file system.
pub(crate) struct Payload<'a> {
    /// lib/modules/<release> of the kernel.
    pub modules_dir: &'a Path,
    /// The modules to load, relative to `modules_dir`, dependencies first.
    pub modules: Vec<String>,
    /// The static rrc.
    pub rrc: &'a Path,
    /// The static test binaries, by name.
    pub tests: &'a [(String, PathBuf)],
    /// libtest's --test-threads.
    pub threads: u32,
    /// libtest filters.
    pub filter: &'a [String],
    /// The cached CRIU 4.2.1 build, if `cargo xtask test` made one.
    pub criu: Option<PathBuf>,
}

/// Writes the systemd VM's initramfs.
pub(crate) fn make_initramfs(out: &Path, cache: &Path, p: &Payload<'_>) -> Result<()> {
    let Payload {
        modules_dir,
        modules,
        rrc,
        tests,
        threads,
        filter,
        criu,
    } = p;
    let root = root(cache)?;
    let file = fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut w = cpio::Writer::new(BufWriter::new(file));
    let io = |e: std::io::Error| format!("writing {}: {e}", out.display());
    let read = |p: &Path| fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    add_tree(&mut w, &root, "")?;
    w.file("init", 0o755, include_bytes!("e2e_systemd_init.sh"))
        .map_err(io)?;
    w.dir("e2e", 0o755).map_err(io)?;
    w.dir("e2e/tests", 0o755).map_err(io)?;
    w.file("e2e/run.sh", 0o755, include_bytes!("e2e_systemd_run.sh"))
        .map_err(io)?;
    w.file("e2e/rrc", 0o755, &read(rrc)?).map_err(io)?;
    for (name, exe) in tests.iter() {
        w.file(&format!("e2e/tests/{name}"), 0o755, &read(exe)?)
            .map_err(io)?;
    }
    if let Some(c) = criu {
        w.file("e2e/criu", 0o755, &read(c)?).map_err(io)?;
    }
    w.file("e2e/test-threads", 0o644, format!("{threads}\n").as_bytes())
        .map_err(io)?;
    if !filter.is_empty() {
        w.file("e2e/filter", 0o644, filter.join(" ").as_bytes())
            .map_err(io)?;
    }
    let sd = "etc/systemd/system";
    w.file(&format!("{sd}/rr-e2e.service"), 0o644, UNIT.as_bytes())
        .map_err(io)?;
    w.dir(&format!("{sd}/multi-user.target.wants"), 0o755)
        .map_err(io)?;
    w.symlink(
        &format!("{sd}/multi-user.target.wants/rr-e2e.service"),
        "/etc/systemd/system/rr-e2e.service",
    )
    .map_err(io)?;
    // No login prompts on the console the results are read from.
    for masked in ["serial-getty@ttyS0.service", "getty@tty1.service"] {
        w.symlink(&format!("{sd}/{masked}"), "/dev/null")
            .map_err(io)?;
    }
    // Modules under usr/lib (lib is a symlink to it in bookworm).
    let release = modules_dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("bad modules directory name")?;
    let mut made: Vec<String> = Vec::new();
    for rel in modules {
        let full = format!("usr/lib/modules/{release}/{rel}");
        let parts: Vec<&str> = full.split('/').collect();
        let mut prefix = String::new();
        for part in &parts[..parts.len() - 1] {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            if !made.contains(&prefix) && !root.join(&prefix).is_dir() {
                w.dir(&prefix, 0o755).map_err(io)?;
                made.push(prefix.clone());
            }
        }
        w.file(&full, 0o644, &read(&modules_dir.join(rel))?)
            .map_err(io)?;
    }
    let list: String = modules.iter().map(|m| format!("{release}/{m}\n")).collect();
    w.file("e2e/modules", 0o644, list.as_bytes()).map_err(io)?;
    w.finish().map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers() {
        // /dev/null is 1:3, /dev/console 5:1; large numbers use the high bits.
        assert_eq!(dev_numbers(0x103), (1, 3));
        assert_eq!(dev_numbers(0x501), (5, 1));
        for (ma, mi) in [(259u32, 70000u32), (4095, 255), (70000, 1 << 20)] {
            assert_eq!(dev_numbers(libc::makedev(ma, mi)), (ma, mi));
        }
    }
}
