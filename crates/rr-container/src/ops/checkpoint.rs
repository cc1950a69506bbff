//! `checkpoint`: dumping a running container with CRIU (what `restore`
//! shares with it is in criu.rs).

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use rr_criu::{CgroupMode, Criu, CriuOpts, NotifyError, Version};
use rr_state::Status;

use crate::criu::{cgroup_mode, criu_error, empty_ns_flags, external_mounts, open_dir, probe};
use crate::error::{Error, Result};
use crate::runtime::{wrong_state, Runtime};

/// The file in the images directory that lists what the container's stdio
/// were (runc's name and format: a JSON array of `/proc/<pid>/fd/N` targets).
pub const DESCRIPTORS_FILE: &str = "descriptors.json";

/// The marker runc leaves in the state directory once a dump has finished.
const CHECKPOINTED_MARKER: &str = "checkpoint";

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
        check_features(criu, &version, opts)?;
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
        let spec = state_spec(id, &state)?;
        // A CRIU that sends status-ready gets the byte written by us.
        let notify_status = version.number() >= STATUS_READY_NOTIFY.number();
        let (status_for_criu, mut status_fd) = if notify_status {
            (None, status_fd)
        } else {
            (status_fd, None)
        };

        let mut c = dump_opts(&images, &state, opts, cg_mode, empty_ns);
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
        let c = with_externals(c, &spec, &state, opts)?;

        run_dump(criu, c, &dir, &mut status_fd, opts.pre_dump)
            .map_err(|e| criu_error(criu, &format!("checkpoint of container {id}"), e))?;

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

/// The OCI config the container was created with, as kept in state.json
/// (the bundle may have changed since).
fn state_spec(id: &str, state: &rr_state::State) -> Result<Spec> {
    serde_json::from_value(state.config.spec.clone()).map_err(|e| {
        Error::Init(format!(
            "container {id}: state.json holds no usable OCI config: {e}"
        ))
    })
}

/// Runs CRIU's dump (or pre-dump). CRIU's pid is recorded in the state
/// directory while it runs, so that a `delete` of a container whose
/// checkpoint was killed half-way finds CRIU's leftovers.
fn run_dump(
    criu: &Criu,
    c: CriuOpts<'_>,
    dir: &rr_state::ContainerDir,
    status_fd: &mut Option<OwnedFd>,
    pre_dump: bool,
) -> rr_criu::Result<()> {
    let state_dir = dir.path().to_path_buf();
    let mut notify = dump_notify(&state_dir, status_fd);
    let c = c.pid_file(dir.path().join(crate::unfinished::CRIU_PID));
    let result = if pre_dump {
        criu.pre_dump(&c, &mut notify).map(drop)
    } else {
        criu.dump(&c, &mut notify).map(drop)
    };
    // CRIU has exited (rr-criu waits for it): its pid may be reused.
    let _ = std::fs::remove_file(dir.path().join(crate::unfinished::CRIU_PID));
    result
}

/// The dump's options that come straight from the state and the flags.
fn dump_opts<'a>(
    images: &'a std::fs::File,
    state: &rr_state::State,
    opts: &CheckpointOptions,
    cg_mode: CgroupMode,
    empty_ns: u32,
) -> CriuOpts<'a> {
    CriuOpts::new(images.as_fd())
        .pid(state.init_process_pid)
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
        .lazy_pages(opts.lazy_pages)
}

/// Refuses, naming the flag, CRIU and the missing feature, what this CRIU
/// on this kernel cannot do, before anything is dumped.
fn check_features(criu: &Criu, version: &Version, opts: &CheckpointOptions) -> Result<()> {
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
    Ok(())
}

/// Names what CRIU must treat as outside the container (joined
/// namespaces; for a full dump, external mounts) and, for a full dump,
/// writes the stdio list `restore` needs.
fn with_externals<'a>(
    mut c: CriuOpts<'a>,
    spec: &Spec,
    state: &rr_state::State,
    opts: &CheckpointOptions,
) -> Result<CriuOpts<'a>> {
    let pid = state.init_process_pid;
    for ext in external_namespaces(spec)? {
        c = c.external(ext);
    }
    if !opts.pre_dump {
        for m in external_mounts(spec, Some(pid), Path::new(state.bundle().unwrap_or("/")))? {
            c = c.ext_mount(m.destination, m.name);
        }
        let path = opts.image_path.join(DESCRIPTORS_FILE);
        let json = serde_json::to_vec(&state.external_descriptors)
            .map_err(|e| Error::Init(format!("{}: {e}", path.display())))?;
        write_private(&path, &json)?;
    }
    Ok(c)
}

/// CRIU's notifications during a dump: the checkpointed marker after the
/// dump, and the byte on `--status-fd` once lazy pages are served.
fn dump_notify<'a>(
    state_dir: &'a Path,
    status_fd: &'a mut Option<OwnedFd>,
) -> impl FnMut(&str, Option<i32>, Option<OwnedFd>) -> std::result::Result<(), NotifyError> + 'a {
    move |script: &str, _pid: Option<i32>, _fd: Option<OwnedFd>| {
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
    }
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
}
