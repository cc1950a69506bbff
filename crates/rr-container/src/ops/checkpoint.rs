//! `checkpoint`: dumping a running container with CRIU, and what `restore`
//! shares with it (the mounts CRIU must treat as external, the CRIU probe).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use rr_criu::{CgroupMode, Criu, CriuOpts, NotifyError, Version};
use rr_state::Status;

use crate::error::{Error, Result};
use crate::runtime::{wrong_state, Runtime};

/// The file in the images directory that lists what the container's stdio
/// were (runc's name and format: a JSON array of `/proc/<pid>/fd/N` targets).
pub const DESCRIPTORS_FILE: &str = "descriptors.json";

/// The marker runc leaves in the state directory once a dump has finished.
const CHECKPOINTED_MARKER: &str = "checkpoint";

/// The oldest CRIU with the VERSION request, which everything here relies on.
const MIN_CRIU: Version = Version::new(3, 0, 0);

/// From this CRIU on, lazy-pages readiness arrives as a `status-ready`
/// notification instead of through a descriptor CRIU writes to itself.
const STATUS_READY_NOTIFY: Version = Version::new(3, 15, 0);

/// Options of `checkpoint` (runc's flags).
#[derive(Debug, Clone, Default)]
pub struct CheckpointOptions {
    /// Where the images go (created if missing).
    pub image_path: PathBuf,
    /// Where CRIU's log and work files go (default: the images directory).
    pub work_path: Option<PathBuf>,
    /// Images of a previous pre-dump, relative to `image_path`.
    pub parent_path: Option<PathBuf>,
    /// Keep the container running after the dump.
    pub leave_running: bool,
    /// Dump established TCP connections.
    pub tcp_established: bool,
    /// Allow unix sockets connected outside the container.
    pub ext_unix_sk: bool,
    /// The container is a shell job (its session is outside it).
    pub shell_job: bool,
    /// Leave the memory on a page server for a lazy (post-copy) restore.
    pub lazy_pages: bool,
    /// A descriptor that gets one `\0` byte once the lazy pages are served.
    pub status_fd: Option<RawFd>,
    /// `ADDRESS:PORT` of the page server (lazy: where to serve pages).
    pub page_server: Option<String>,
    /// Dump file locks.
    pub file_locks: bool,
    /// Dump memory only and leave the container running.
    pub pre_dump: bool,
    /// How CRIU handles cgroups.
    pub manage_cgroups_mode: Option<String>,
    /// Namespaces restored empty (runc accepts only `network`).
    pub empty_ns: Vec<String>,
    /// Deduplicate against the parent images.
    pub auto_dedup: bool,
    /// Let CRIU link open but unlinked files back (`--link-remap`).
    pub link_remap: bool,
}

/// A mount CRIU cannot dump by itself because its source is outside the
/// container: named in the images, found again on the host at restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExternalMount {
    /// The mount point inside the container (the key on dump).
    pub(crate) destination: String,
    /// The name recorded in the images (the value on dump, the key on restore).
    pub(crate) name: String,
    /// The host path mounted there at restore.
    pub(crate) source: String,
}

impl Runtime {
    /// Checkpoints a running container into `opts.image_path`. Unless the
    /// dump leaves it running (`leave_running`, `pre_dump`), the container is
    /// gone afterwards, as with runc.
    pub fn checkpoint(&self, id: &str, criu: &Criu, opts: &CheckpointOptions) -> Result<()> {
        let dir = self.container(id)?;
        let lock = dir.lock()?;
        let state = dir.load()?;
        let status = self.status_of(&dir, &state);
        if matches!(status, Status::Created | Status::Stopped) {
            return Err(wrong_state(
                id,
                status,
                "only a running container can be checkpointed",
            ));
        }
        // As runc: the image directory is made and the parent checked
        // before CRIU is asked anything, so a wrong path gets runc's words.
        let images = open_dir_creating(&opts.image_path)?;
        let parent = match &opts.parent_path {
            Some(p) => Some(check_parent(&opts.image_path, p)?),
            None => None,
        };
        let version = probe(criu, &format!("checkpoint of container {id}"))?;
        let features = criu
            .features()
            .map_err(|e| criu_error(criu, "checkpoint", e))?;
        if opts.pre_dump && !features.mem_track {
            return Err(Error::Unsupported {
                field: "--pre-dump".into(),
                message: format!(
                    "CRIU {version} at {} reports no memory tracking (mem_track) on this kernel, which a pre-dump needs",
                    criu.path().display()
                ),
            });
        }
        if opts.parent_path.is_some() && !features.mem_track {
            return Err(Error::Unsupported {
                field: "--parent-path".into(),
                message: format!(
                    "CRIU {version} at {} reports no memory tracking (mem_track) on this kernel, which a dump on top of parent images needs",
                    criu.path().display()
                ),
            });
        }
        if opts.lazy_pages && !features.lazy_pages {
            return Err(Error::Unsupported {
                field: "--lazy-pages".into(),
                message: format!(
                    "CRIU {version} at {} reports no lazy pages (userfaultfd) support on this kernel",
                    criu.path().display()
                ),
            });
        }
        if opts.lazy_pages {
            check_lazy_pipe_size()?;
        }
        let status_fd = match opts.status_fd {
            Some(fd) if opts.lazy_pages => Some(writable_fd(fd)?),
            _ => None,
        };
        let page_server = opts
            .page_server
            .as_deref()
            .map(parse_page_server)
            .transpose()?;
        let cg_mode = cgroup_mode(opts.manage_cgroups_mode.as_deref())?;
        let empty_ns = empty_ns_flags(&opts.empty_ns)?;

        let work = opts
            .work_path
            .as_deref()
            .map(open_dir_creating)
            .transpose()?;
        let spec: Spec = serde_json::from_value(state.config.spec.clone()).map_err(|e| {
            Error::Init(format!(
                "container {id}: state.json holds no usable OCI config: {e}"
            ))
        })?;
        let pid = state.init_process_pid;
        // A CRIU that sends status-ready gets the byte written by us.
        let notify_status = version.number() >= STATUS_READY_NOTIFY.number();
        let (status_for_criu, mut status_fd) = if notify_status {
            (None, status_fd)
        } else {
            (status_fd, None)
        };

        let mut c = CriuOpts::new(images.as_fd())
            .pid(pid)
            .log_file("dump.log")
            .log_level(4)
            .root(state.config.rootfs.clone())
            .manage_cgroups(true)
            .manage_cgroups_mode(cg_mode)
            .shell_job(opts.shell_job)
            .leave_running(opts.leave_running)
            .tcp_established(opts.tcp_established)
            .ext_unix_sk(opts.ext_unix_sk)
            .file_locks(opts.file_locks)
            .empty_ns(empty_ns)
            .orphan_pts_master(true)
            .auto_dedup(opts.auto_dedup)
            .link_remap(opts.link_remap)
            .lazy_pages(opts.lazy_pages);
        if let Some(w) = &work {
            c = c.work_dir(w.as_fd());
        }
        if let Some((addr, port)) = &page_server {
            c = c.page_server(addr.clone(), *port);
        }
        if let Some(p) = &parent {
            c = c.parent_img(p.clone()).track_mem(true);
        }
        if let Some(fd) = &status_for_criu {
            c = c.status_fd(fd.as_fd());
        }
        for ext in external_namespaces(&spec)? {
            c = c.external(ext);
        }
        if !opts.pre_dump {
            for m in external_mounts(&spec, Some(pid), Path::new(state.bundle().unwrap_or("/")))? {
                c = c.ext_mount(m.destination, m.name);
            }
            let path = opts.image_path.join(DESCRIPTORS_FILE);
            let json = serde_json::to_vec(&state.external_descriptors)
                .map_err(|e| Error::Init(format!("{}: {e}", path.display())))?;
            write_private(&path, &json)?;
        }

        let state_dir = dir.path().to_path_buf();
        let mut notify = |script: &str,
                          _pid: Option<i32>,
                          _fd: Option<OwnedFd>|
         -> std::result::Result<(), NotifyError> {
            match script {
                "post-dump" => {
                    std::fs::File::create(state_dir.join(CHECKPOINTED_MARKER))?;
                }
                "status-ready" => {
                    if let Some(fd) = status_fd.take() {
                        // The waiter only needs the byte; a closed reader is its loss.
                        let _ = nix::unistd::write(&fd, &[0u8]);
                    }
                }
                // rr configures no network of its own, so nothing is to be
                // locked or unlocked around the dump.
                "network-lock" | "network-unlock" => {}
                _ => {}
            }
            Ok(())
        };
        let c = c.pid_file(dir.path().join(crate::unfinished::CRIU_PID));
        let result = if opts.pre_dump {
            criu.pre_dump(&c, &mut notify).map(drop)
        } else {
            criu.dump(&c, &mut notify).map(drop)
        };
        // CRIU has exited (rr-criu waits for it): its pid may be reused.
        let _ = std::fs::remove_file(dir.path().join(crate::unfinished::CRIU_PID));
        result.map_err(|e| criu_error(criu, &format!("checkpoint of container {id}"), e))?;

        if opts.leave_running || opts.pre_dump {
            let _ = std::fs::remove_file(dir.path().join(CHECKPOINTED_MARKER));
            return Ok(());
        }
        drop(lock);
        // CRIU has killed the container's processes; what is left is its
        // state (and whatever else `delete` cleans up).
        self.delete(id, true)
    }
}

/// Asks CRIU for its version and features; the error names the binary,
/// its version when known, and what failed.
pub(crate) fn probe(criu: &Criu, what: &str) -> Result<Version> {
    let version = criu
        .require_version(&MIN_CRIU, what)
        .map_err(|e| criu_error(criu, what, e))?
        .clone();
    criu.probe().map_err(|e| criu_error(criu, what, e))?;
    Ok(version)
}

pub(crate) fn criu_error(criu: &Criu, what: &str, source: rr_criu::Error) -> Error {
    let context = match &source {
        // These already name the binary and its version.
        rr_criu::Error::FeatureCheck { .. } | rr_criu::Error::Spawn { .. } => what.to_string(),
        _ => match criu.version() {
            Ok(v) => format!("{what} (CRIU {v} at {})", criu.path().display()),
            Err(_) => format!("{what} (CRIU at {})", criu.path().display()),
        },
    };
    let said = source.to_string();
    let context = match source.log_file().and_then(last_errors) {
        Some(errors) if !said.contains(&errors) => {
            format!("{context}; the CRIU log says: {errors}")
        }
        _ => context,
    };
    Error::Criu {
        context,
        source: Box::new(source),
    }
}

/// The last error lines of a CRIU log (its first error is often a harmless
/// warning that CRIU also puts in `cr_errmsg`).
fn last_errors(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Error (") && !l.contains("RLIMIT_NOFILE"))
        .map(|l| l.split_once(") Error").map_or(l, |(_, r)| r).trim())
        .collect();
    let tail = &lines[lines.len().saturating_sub(3)..];
    (!tail.is_empty()).then(|| tail.join(" | "))
}

pub(crate) fn cgroup_mode(flag: Option<&str>) -> Result<CgroupMode> {
    match flag {
        None | Some("") => Ok(CgroupMode::Default),
        Some(m @ ("soft" | "full" | "strict" | "ignore")) => m
            .parse()
            .map_err(|e: rr_criu::Error| Error::Init(e.to_string())),
        Some(other) => Err(Error::Unsupported {
            field: "--manage-cgroups-mode".into(),
            message: format!("{other:?} is not one of soft, full, strict, ignore"),
        }),
    }
}

/// runc always restores the network namespace empty (it configures no
/// network), and `--empty-ns network` is the only other value it takes.
pub(crate) fn empty_ns_flags(names: &[String]) -> Result<u32> {
    let mut flags = libc::CLONE_NEWNET as u32;
    for n in names {
        match n.as_str() {
            "network" => flags |= libc::CLONE_NEWNET as u32,
            other => {
                return Err(Error::Unsupported {
                    field: "--empty-ns".into(),
                    message: format!("namespace {other:?} is not supported (only network)"),
                })
            }
        }
    }
    Ok(flags)
}

fn parse_page_server(s: &str) -> Result<(String, u16)> {
    let bad = |why: &str| Error::Unsupported {
        field: "--page-server".into(),
        message: format!("{s:?}: {why}; use ADDRESS:PORT"),
    };
    let (addr, port) = s.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    if addr.is_empty() {
        return Err(bad("no address"));
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| bad("bad port"))?;
    Ok((addr.to_string(), port))
}

/// Where the kernel caps the pipe size a process without CAP_SYS_RESOURCE
/// may ask for.
const PIPE_MAX_SIZE_SYSCTL: &str = "/proc/sys/fs/pipe-max-size";

/// The pipe size CRIU's lazy page server asks for before it serves its
/// first page: as many pages as the kernel's 40-byte pipe buffer
/// descriptors that fit an order-3 (eight page) allocation, i.e. 819 pages
/// with 4 KiB pages.
fn lazy_server_pipe_bytes(page: usize) -> usize {
    (8 * page / 40) * page
}

/// A lazy dump serves the memory from a page server inside CRIU, which
/// resizes a pipe to [`lazy_server_pipe_bytes`] once the lazy-pages daemon
/// connects. CRIU 4.2.1 does not check that resize: when the kernel refuses
/// it (above fs.pipe-max-size without CAP_SYS_RESOURCE, as for a root whose
/// bounding set lacks that capability), its /dev/null sink is never opened
/// and every page request fails with `page-pipe: splice: -1: Bad file
/// descriptor`, after the container has been frozen and dumped. CRIU runs
/// with rrc's credentials, so the same resize tried here predicts it.
fn check_lazy_pipe_size() -> Result<()> {
    // SAFETY: sysconf only reads a system constant.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    let want = lazy_server_pipe_bytes(page);
    let (r, _w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::Init(format!("creating a pipe to probe its size limit: {e}")))?;
    let size = libc::c_int::try_from(want).unwrap_or(libc::c_int::MAX);
    match nix::fcntl::fcntl(r.as_raw_fd(), nix::fcntl::FcntlArg::F_SETPIPE_SZ(size)) {
        Ok(_) => Ok(()),
        Err(e) => {
            let max = std::fs::read_to_string(PIPE_MAX_SIZE_SYSCTL)
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into());
            // The kernel rounds a pipe size up to a power of two of pages
            // before comparing it with the limit.
            let rounded = want.div_ceil(page).next_power_of_two() * page;
            Err(Error::Unsupported {
                field: "--lazy-pages".into(),
                message: format!(
                    "CRIU's lazy page server needs a pipe of {want} bytes ({rounded} once rounded) and the kernel refuses it ({e}): {PIPE_MAX_SIZE_SYSCTL} is {max} and rrc runs without CAP_SYS_RESOURCE; raise it with `sysctl -w fs.pipe-max-size={rounded}`"
                ),
            })
        }
    }
}

/// Takes over `fd` (runc closes the status fd once used) after checking it
/// is open for writing.
fn writable_fd(fd: RawFd) -> Result<OwnedFd> {
    // SAFETY: F_GETFL on any number only reads flags or fails with EBADF.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(Error::Unsupported {
            field: "--status-fd".into(),
            message: format!("{fd}: {}", std::io::Error::last_os_error()),
        });
    }
    if flags & libc::O_ACCMODE == libc::O_RDONLY {
        return Err(Error::Unsupported {
            field: "--status-fd".into(),
            message: format!("{fd}: not open for writing"),
        });
    }
    // SAFETY: the caller handed this open descriptor to rrc for this use;
    // nothing else in rrc owns it.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

fn open_dir_creating(p: &Path) -> Result<std::fs::File> {
    match std::fs::create_dir_all(p) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io(p, e)),
    }
    open_dir(p)
}

pub(crate) fn open_dir(p: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(p)
        .map_err(|e| Error::io(p, e))
}

/// runc's rule: the parent images are named relative to the images dir,
/// and must be a directory there.
/// The parent images directory as CRIU takes it (relative to the images
/// directory), checked with runc's messages, which callers match.
fn check_parent(images: &Path, parent: &Path) -> Result<String> {
    if parent.is_absolute() {
        return Err(Error::Refused(format!(
            "--parent-path must be relative (to the image path {}): {}",
            images.display(),
            parent.display()
        )));
    }
    let real = images.join(parent);
    let why = match std::fs::metadata(&real) {
        Ok(m) if m.is_dir() => return Ok(parent.display().to_string()),
        Ok(_) => format!("{}: not a directory", real.display()),
        Err(e) => format!("stat {}: {}", real.display(), errno_words(&e)),
    };
    Err(Error::Refused(format!("invalid --parent-path: {why}")))
}

/// An OS error in the C library's words, lower case as Go prints them
/// (`no such file or directory`), without Rust's `(os error N)`.
fn errno_words(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut c = text.chars();
    match c.next() {
        Some(first) => first.to_lowercase().chain(c).collect(),
        None => text.to_string(),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| Error::io(path, e))
}

/// Joined namespaces (net, pid) given by path: CRIU leaves them alone and
/// expects them back at restore (`<type>[<inode>]:extRoot<Type>NS`).
fn external_namespaces(spec: &Spec) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let nss = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref());
    for ns in nss.into_iter().flatten() {
        let (name, key) = match ns.typ() {
            LinuxNamespaceType::Network => ("net", "extRootNetNS"),
            LinuxNamespaceType::Pid => ("pid", "extRootPidNS"),
            _ => continue,
        };
        if let Some(path) = ns.path() {
            use std::os::unix::fs::MetadataExt;
            let ino = std::fs::metadata(path)
                .map_err(|e| Error::io(path, e))?
                .ino();
            out.push(format!("{name}[{ino}]:{key}"));
        }
    }
    Ok(out)
}

/// The mounts of the container whose source lies outside it: bind mounts,
/// cgroup v1 hierarchies bound from the host (without a cgroup namespace),
/// masked files (bound from /dev/null) and device nodes. `pid` (at dump)
/// lets masked paths that do not exist in the container be skipped.
pub(crate) fn external_mounts(
    spec: &Spec,
    pid: Option<i32>,
    bundle: &Path,
) -> Result<Vec<ExternalMount>> {
    let mut out = Vec::new();
    let mut push = |dest: String, name: String, source: String| {
        if !out.iter().any(|m: &ExternalMount| m.destination == dest) {
            out.push(ExternalMount {
                destination: dest,
                name,
                source,
            });
        }
    };
    let cgroupns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|v| {
            v.iter()
                .any(|n| n.typ() == LinuxNamespaceType::Cgroup && n.path().is_none())
        });
    for m in spec.mounts().iter().flatten() {
        let dest = clean(m.destination());
        if crate::init::mount_opts::is_bind(m) {
            let src = m.source().clone().unwrap_or_default();
            let src = if src.is_absolute() {
                src
            } else {
                bundle.join(src)
            };
            push(dest.clone(), dest, src.display().to_string());
        } else if matches!(m.typ().as_deref(), Some("cgroup")) && !cgroupns {
            for h in crate::init::rootfs::host_cgroup_hierarchies() {
                let Ok(rel) = h.mount_point.strip_prefix("/sys/fs/cgroup") else {
                    continue;
                };
                if rel.as_os_str().is_empty() {
                    continue;
                }
                let d = format!("{}/{}", dest.trim_end_matches('/'), rel.display());
                push(d.clone(), d, h.mount_point.display().to_string());
            }
        }
    }
    let linux = spec.linux().as_ref();
    let masked: Vec<&String> = linux
        .and_then(|l| l.masked_paths().as_ref())
        .into_iter()
        .flatten()
        .collect();
    for p in masked {
        let is_file = match pid {
            Some(pid) => std::fs::metadata(format!("/proc/{pid}/root{p}"))
                .map(|m| !m.is_dir())
                .unwrap_or(false),
            None => true,
        };
        if is_file {
            push(p.clone(), "/dev/null".into(), "/dev/null".into());
        }
    }
    let devices = crate::init::rootfs::DEFAULT_DEVICES
        .iter()
        .map(|(p, _, _)| p.to_string())
        .chain(
            linux
                .and_then(|l| l.devices().as_ref())
                .into_iter()
                .flatten()
                .map(|d| d.path().display().to_string()),
        );
    for d in devices {
        push(d.clone(), d.clone(), d);
    }
    Ok(out)
}

/// A container path in the form CRIU compares mount points with: absolute,
/// no trailing slash, no `.` or empty components.
fn clean(p: &Path) -> String {
    let parts: Vec<String> = p
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    format!("/{}", parts.join("/"))
}

/// Keeps a borrowed stdio descriptor usable as CRIU's.
pub(crate) fn stdio_fd(n: RawFd) -> BorrowedFd<'static> {
    // SAFETY: 0, 1 and 2 stay open for the life of rrc (Rust's runtime
    // reopens missing ones as /dev/null at start-up).
    unsafe { BorrowedFd::borrow_raw(n) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_server_addresses() {
        assert_eq!(
            parse_page_server("10.0.0.1:27277").unwrap(),
            ("10.0.0.1".into(), 27277)
        );
        assert_eq!(parse_page_server("[::1]:80").unwrap(), ("::1".into(), 80));
        for bad in ["10.0.0.1", ":80", "h:0", "h:x", "h:70000"] {
            let e = parse_page_server(bad).unwrap_err().to_string();
            assert!(e.contains("--page-server"), "{bad}: {e}");
        }
    }

    #[test]
    fn lazy_server_pipe_is_819_pages_of_4k() {
        assert_eq!(lazy_server_pipe_bytes(4096), 819 * 4096);
    }

    #[test]
    fn cgroup_modes_and_empty_ns() {
        assert_eq!(cgroup_mode(None).unwrap(), CgroupMode::Default);
        assert_eq!(cgroup_mode(Some("strict")).unwrap(), CgroupMode::Strict);
        assert!(cgroup_mode(Some("props")).is_err());
        let net = libc::CLONE_NEWNET as u32;
        assert_eq!(empty_ns_flags(&[]).unwrap(), net);
        assert_eq!(empty_ns_flags(&["network".into()]).unwrap(), net);
        assert!(empty_ns_flags(&["pid".into()]).is_err());
    }

    #[test]
    fn external_mounts_of_a_spec() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "mounts": [
                {"destination": "/data/", "type": "bind", "source": "/srv/data", "options": ["rbind"]},
                {"destination": "/rel", "type": "none", "source": "sub", "options": ["bind"]},
                {"destination": "/proc", "type": "proc", "source": "proc"}
            ],
            "linux": {
                "namespaces": [{"type": "mount"}, {"type": "cgroup"}],
                "maskedPaths": ["/proc/kcore"],
                "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]
            }
        }))
        .unwrap();
        let m = external_mounts(&spec, None, Path::new("/b")).unwrap();
        let find = |d: &str| m.iter().find(|x| x.destination == d).cloned();
        let data = find("/data").expect("bind mount");
        assert_eq!(
            (data.name.as_str(), data.source.as_str()),
            ("/data", "/srv/data")
        );
        assert_eq!(find("/rel").unwrap().source, "/b/sub");
        assert_eq!(find("/proc/kcore").unwrap().name, "/dev/null");
        assert_eq!(find("/dev/fuse").unwrap().source, "/dev/fuse");
        assert_eq!(find("/dev/null").unwrap().source, "/dev/null");
        assert!(find("/proc").is_none());
    }
}
