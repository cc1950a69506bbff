//! The options of a dump, pre-dump, restore or page-server request.

use std::fmt;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::rpc;

/// How CRIU handles the cgroups of the tree (`criu_cg_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CgroupMode {
    /// Leave cgroups alone entirely.
    Ignore,
    /// Neither dump nor restore cgroup properties (`CG_NONE`).
    None,
    /// Dump and restore only properties.
    Props,
    /// Restore properties only into cgroups that CRIU creates.
    Soft,
    /// Restore every property, creating the cgroups.
    Full,
    /// Like full, failing when an existing cgroup differs.
    Strict,
    /// CRIU's own default (soft).
    Default,
}

impl CgroupMode {
    fn wire(self) -> rpc::CriuCgMode {
        match self {
            Self::Ignore => rpc::CriuCgMode::Ignore,
            Self::None => rpc::CriuCgMode::CgNone,
            Self::Props => rpc::CriuCgMode::Props,
            Self::Soft => rpc::CriuCgMode::Soft,
            Self::Full => rpc::CriuCgMode::Full,
            Self::Strict => rpc::CriuCgMode::Strict,
            Self::Default => rpc::CriuCgMode::Default,
        }
    }
}

impl FromStr for CgroupMode {
    type Err = Error;

    /// The names runc's `--manage-cgroups-mode` takes, plus CRIU's others.
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "ignore" => Self::Ignore,
            "none" => Self::None,
            "props" => Self::Props,
            "soft" => Self::Soft,
            "full" => Self::Full,
            "strict" => Self::Strict,
            "default" => Self::Default,
            _ => {
                return Err(Error::InvalidOption {
                    field: "manage_cgroups_mode",
                    value: s.to_string(),
                    reason: "not one of ignore, none, props, soft, full, strict, default",
                })
            }
        })
    }
}

impl fmt::Display for CgroupMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ignore => "ignore",
            Self::None => "none",
            Self::Props => "props",
            Self::Soft => "soft",
            Self::Full => "full",
            Self::Strict => "strict",
            Self::Default => "default",
        })
    }
}

/// Options of a CRIU request, built with chained setters.
///
/// File descriptors are borrowed because CRIU does not receive them: it opens
/// `/proc/<caller pid>/fd/<n>` of the process that sent the request, so they
/// must stay open in this process until the request returns (the lifetime
/// makes sure of that).
///
/// ```no_run
/// # use std::os::fd::AsFd;
/// # fn f(images: &std::fs::File, work: &std::fs::File) -> rr_criu::Result<()> {
/// let opts = rr_criu::CriuOpts::new(images.as_fd())
///     .work_dir(work.as_fd())
///     .log_file("dump.log")
///     .log_level(4)
///     .pid(1234)
///     .root("/run/rr/ctr/rootfs")
///     .manage_cgroups_mode(rr_criu::CgroupMode::Soft)
///     .tcp_established(true)
///     .file_locks(true);
/// # let _ = opts; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct CriuOpts<'a> {
    images_dir: BorrowedFd<'a>,
    work_dir: Option<BorrowedFd<'a>>,
    pid: Option<i32>,
    log_file: Option<String>,
    log_level: Option<i32>,
    root: Option<String>,
    manage_cgroups: Option<bool>,
    manage_cgroups_mode: Option<CgroupMode>,
    shell_job: bool,
    leave_running: bool,
    tcp_established: bool,
    ext_unix_sk: bool,
    file_locks: bool,
    empty_ns: Option<u32>,
    auto_dedup: bool,
    link_remap: bool,
    lazy_pages: bool,
    status_fd: Option<BorrowedFd<'a>>,
    page_server: Option<(String, u16)>,
    parent_img: Option<String>,
    track_mem: bool,
    ext_mounts: Vec<(String, String)>,
    external: Vec<String>,
    inherit_fds: Vec<(String, BorrowedFd<'a>)>,
    veths: Vec<(String, String)>,
    cgroup_roots: Vec<(Option<String>, String)>,
    rst_sibling: bool,
    orphan_pts_master: bool,
    notify_scripts: bool,
    criu_stdio: Option<[BorrowedFd<'a>; 3]>,
    join_cgroups: Vec<BorrowedFd<'a>>,
    pid_file: Option<PathBuf>,
}

impl<'a> CriuOpts<'a> {
    /// Options for images in the directory open at `images_dir`.
    /// Notifications are enabled; everything else is CRIU's default.
    pub fn new(images_dir: BorrowedFd<'a>) -> Self {
        Self {
            images_dir,
            work_dir: None,
            pid: None,
            log_file: None,
            log_level: None,
            root: None,
            manage_cgroups: None,
            manage_cgroups_mode: None,
            shell_job: false,
            leave_running: false,
            tcp_established: false,
            ext_unix_sk: false,
            file_locks: false,
            empty_ns: None,
            auto_dedup: false,
            link_remap: false,
            lazy_pages: false,
            status_fd: None,
            page_server: None,
            parent_img: None,
            track_mem: false,
            ext_mounts: Vec::new(),
            external: Vec::new(),
            inherit_fds: Vec::new(),
            veths: Vec::new(),
            cgroup_roots: Vec::new(),
            rst_sibling: false,
            orphan_pts_master: false,
            notify_scripts: true,
            criu_stdio: None,
            join_cgroups: Vec::new(),
            pid_file: None,
        }
    }

    /// Directory for CRIU's log and other work files (default: the images dir).
    pub fn work_dir(mut self, fd: BorrowedFd<'a>) -> Self {
        self.work_dir = Some(fd);
        self
    }

    /// The root of the tree to dump (dump, pre-dump; CRIU dumps the caller
    /// when unset).
    pub fn pid(mut self, pid: i32) -> Self {
        self.pid = Some(pid);
        self
    }

    /// Log file name inside the work directory (CRIU allows no subdirectory).
    pub fn log_file(mut self, name: impl Into<String>) -> Self {
        self.log_file = Some(name.into());
        self
    }

    /// Log verbosity, 0 to 4 (CRIU's default is 2).
    pub fn log_level(mut self, level: i32) -> Self {
        self.log_level = Some(level);
        self
    }

    /// The root directory of the tree (the container's rootfs).
    pub fn root(mut self, path: impl Into<String>) -> Self {
        self.root = Some(path.into());
        self
    }

    /// Whether CRIU dumps and restores cgroups.
    pub fn manage_cgroups(mut self, on: bool) -> Self {
        self.manage_cgroups = Some(on);
        self
    }

    /// How CRIU handles cgroups.
    pub fn manage_cgroups_mode(mut self, mode: CgroupMode) -> Self {
        self.manage_cgroups_mode = Some(mode);
        self
    }

    /// The tree is a shell job (its session and terminal are outside it).
    pub fn shell_job(mut self, on: bool) -> Self {
        self.shell_job = on;
        self
    }

    /// Keep the tree running after the dump.
    pub fn leave_running(mut self, on: bool) -> Self {
        self.leave_running = on;
        self
    }

    /// Checkpoint and restore established TCP connections.
    pub fn tcp_established(mut self, on: bool) -> Self {
        self.tcp_established = on;
        self
    }

    /// Allow unix sockets connected to peers outside the tree.
    pub fn ext_unix_sk(mut self, on: bool) -> Self {
        self.ext_unix_sk = on;
        self
    }

    /// Checkpoint and restore file locks.
    pub fn file_locks(mut self, on: bool) -> Self {
        self.file_locks = on;
        self
    }

    /// Namespaces (CLONE_NEW* flags) that are restored empty, such as a
    /// network namespace the runtime configures itself.
    pub fn empty_ns(mut self, clone_flags: u32) -> Self {
        self.empty_ns = Some(clone_flags);
        self
    }

    /// Deduplicate pages against the parent images while dumping.
    pub fn auto_dedup(mut self, on: bool) -> Self {
        self.auto_dedup = on;
        self
    }

    /// Let CRIU link open but unlinked files back into the file system
    /// (as `link_remap` ghost files) instead of failing the dump on them.
    pub fn link_remap(mut self, on: bool) -> Self {
        self.link_remap = on;
        self
    }

    /// Dump for, or restore with, lazy (post-copy) pages.
    pub fn lazy_pages(mut self, on: bool) -> Self {
        self.lazy_pages = on;
        self
    }

    /// A descriptor CRIU writes a byte to when the lazy-pages server is ready.
    pub fn status_fd(mut self, fd: BorrowedFd<'a>) -> Self {
        self.status_fd = Some(fd);
        self
    }

    /// Send pages to (dump) or serve them on (page server) this address.
    pub fn page_server(mut self, address: impl Into<String>, port: u16) -> Self {
        self.page_server = Some((address.into(), port));
        self
    }

    /// The parent images (a pre-dump), relative to the images directory.
    pub fn parent_img(mut self, path: impl Into<String>) -> Self {
        self.parent_img = Some(path.into());
        self
    }

    /// Track memory changes so that a later dump writes only changed pages.
    pub fn track_mem(mut self, on: bool) -> Self {
        self.track_mem = on;
        self
    }

    /// An external bind mount: `key` names it in the images, `val` is the
    /// source path on restore (the mount point on dump).
    pub fn ext_mount(mut self, key: impl Into<String>, val: impl Into<String>) -> Self {
        self.ext_mounts.push((key.into(), val.into()));
        self
    }

    /// A raw `--external` resource, such as `net[4026531993]:extRootNetNS`.
    pub fn external(mut self, resource: impl Into<String>) -> Self {
        self.external.push(resource.into());
        self
    }

    /// On restore, the resource named `key` in the images (e.g. `pipe:[1234]`)
    /// is replaced by this descriptor.
    pub fn inherit_fd(mut self, key: impl Into<String>, fd: BorrowedFd<'a>) -> Self {
        self.inherit_fds.push((key.into(), fd));
        self
    }

    /// A veth pair: `if_in` inside the tree, `if_out` its host peer name.
    pub fn veth_pair(mut self, if_in: impl Into<String>, if_out: impl Into<String>) -> Self {
        self.veths.push((if_in.into(), if_out.into()));
        self
    }

    /// Restore the cgroups of `controller` (all when `None`) under `path`.
    pub fn cgroup_root(mut self, controller: Option<String>, path: impl Into<String>) -> Self {
        self.cgroup_roots.push((controller, path.into()));
        self
    }

    /// Restore the tree as a sibling of CRIU (a child of the caller), as
    /// runtimes do so that they can wait for it.
    pub fn rst_sibling(mut self, on: bool) -> Self {
        self.rst_sibling = on;
        self
    }

    /// Send the master of a restored orphan pty through the
    /// `orphan-pts-master` notification.
    pub fn orphan_pts_master(mut self, on: bool) -> Self {
        self.orphan_pts_master = on;
        self
    }

    /// Whether CRIU sends notifications (default: yes).
    pub fn notify_scripts(mut self, on: bool) -> Self {
        self.notify_scripts = on;
        self
    }

    /// The stdin, stdout and stderr of the CRIU process (default: /dev/null,
    /// and this process's stdout and stderr). A restored shell job inherits
    /// them.
    pub fn criu_stdio(
        mut self,
        stdin: BorrowedFd<'a>,
        stdout: BorrowedFd<'a>,
        stderr: BorrowedFd<'a>,
    ) -> Self {
        self.criu_stdio = Some([stdin, stdout, stderr]);
        self
    }

    pub(crate) fn stdio(&self) -> Option<[BorrowedFd<'a>; 3]> {
        self.criu_stdio
    }

    /// `cgroup.procs` files, open for writing, that the CRIU process joins
    /// before it runs (it writes `0`, which moves the writer): everything
    /// CRIU forks, the restored tree too, then starts in those cgroups, so
    /// that killing them reaches all of it, also when the client died.
    pub fn join_cgroups(mut self, procs: Vec<BorrowedFd<'a>>) -> Self {
        self.join_cgroups = procs;
        self
    }

    pub(crate) fn cgroups_to_join(&self) -> &[BorrowedFd<'a>] {
        &self.join_cgroups
    }

    /// A file to write the CRIU process's pid and start time (field 22 of
    /// /proc/<pid>/stat) to, as `<pid> <start>`, once it runs: whoever
    /// finds it after the client died can kill a CRIU that outlived it.
    /// CRIU then also runs in a process group of its own (its pid), so that
    /// the processes it forks can be found as well. Not for a restore of a
    /// shell job, which needs CRIU in its caller's process group.
    pub fn pid_file(mut self, path: PathBuf) -> Self {
        self.pid_file = Some(path);
        self
    }

    pub(crate) fn pid_file_path(&self) -> Option<&Path> {
        self.pid_file.as_deref()
    }

    /// Where CRIU writes the log of this request, for error messages: the
    /// work (or images) directory, found through /proc, joined with the log
    /// file name.
    pub fn log_path(&self) -> Option<PathBuf> {
        let name = self.log_file.as_deref()?;
        let dir = self.work_dir.unwrap_or(self.images_dir);
        let link = format!("/proc/self/fd/{}", dir.as_raw_fd());
        let dir = std::fs::read_link(link).ok()?;
        Some(dir.join(name))
    }

    /// The `criu_opts` message for these options.
    pub fn to_rpc(&self) -> Result<rpc::CriuOpts> {
        if let Some(name) = &self.log_file {
            if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                return Err(Error::InvalidOption {
                    field: "log_file",
                    value: name.clone(),
                    reason: "must be a plain file name (CRIU allows no directory)",
                });
            }
        }
        if let Some(level) = self.log_level {
            if !(0..=4).contains(&level) {
                return Err(Error::InvalidOption {
                    field: "log_level",
                    value: level.to_string(),
                    reason: "must be 0 to 4",
                });
            }
        }
        check_strings(self)?;
        let flag = |on: bool| on.then_some(true);
        Ok(rpc::CriuOpts {
            images_dir_fd: self.images_dir.as_raw_fd(),
            work_dir_fd: self.work_dir.map(|f| f.as_raw_fd()),
            pid: self.pid,
            log_file: self.log_file.clone(),
            log_level: self.log_level,
            root: self.root.clone(),
            manage_cgroups: self.manage_cgroups,
            manage_cgroups_mode: self.manage_cgroups_mode.map(|m| m.wire() as i32),
            shell_job: flag(self.shell_job),
            leave_running: flag(self.leave_running),
            tcp_established: flag(self.tcp_established),
            ext_unix_sk: flag(self.ext_unix_sk),
            file_locks: flag(self.file_locks),
            empty_ns: self.empty_ns,
            auto_dedup: flag(self.auto_dedup),
            link_remap: flag(self.link_remap),
            lazy_pages: flag(self.lazy_pages),
            status_fd: self.status_fd.map(|f| f.as_raw_fd()),
            ps: self
                .page_server
                .as_ref()
                .map(|(address, port)| rpc::CriuPageServerInfo {
                    address: Some(address.clone()),
                    port: Some(i32::from(*port)),
                    pid: None,
                    fd: None,
                }),
            parent_img: self.parent_img.clone(),
            track_mem: flag(self.track_mem),
            ext_mnt: self
                .ext_mounts
                .iter()
                .map(|(key, val)| rpc::ExtMountMap {
                    key: key.clone(),
                    val: val.clone(),
                })
                .collect(),
            external: self.external.clone(),
            inherit_fd: self
                .inherit_fds
                .iter()
                .map(|(key, fd)| rpc::InheritFd {
                    key: key.clone(),
                    fd: fd.as_raw_fd(),
                })
                .collect(),
            veths: self
                .veths
                .iter()
                .map(|(i, o)| rpc::CriuVethPair {
                    if_in: i.clone(),
                    if_out: o.clone(),
                })
                .collect(),
            cg_root: self
                .cgroup_roots
                .iter()
                .map(|(ctrl, path)| rpc::CgroupRoot {
                    ctrl: ctrl.clone(),
                    path: path.clone(),
                })
                .collect(),
            rst_sibling: flag(self.rst_sibling),
            orphan_pts_master: flag(self.orphan_pts_master),
            notify_scripts: flag(self.notify_scripts),
        })
    }
}

/// CRIU reads every string as a C string: an embedded NUL would silently cut it.
fn check_strings(o: &CriuOpts<'_>) -> Result<()> {
    let mut all: Vec<(&'static str, &str)> = Vec::new();
    for (field, v) in [
        ("log_file", o.log_file.as_deref()),
        ("root", o.root.as_deref()),
        ("parent_img", o.parent_img.as_deref()),
        ("page_server", o.page_server.as_ref().map(|p| p.0.as_str())),
    ] {
        if let Some(v) = v {
            all.push((field, v));
        }
    }
    for (k, v) in &o.ext_mounts {
        all.push(("ext_mount", k));
        all.push(("ext_mount", v));
    }
    for e in &o.external {
        all.push(("external", e));
    }
    for (k, _) in &o.inherit_fds {
        all.push(("inherit_fd", k));
    }
    for (i, out) in &o.veths {
        all.push(("veth_pair", i));
        all.push(("veth_pair", out));
    }
    for (c, p) in &o.cgroup_roots {
        if let Some(c) = c {
            all.push(("cgroup_root", c));
        }
        all.push(("cgroup_root", p));
    }
    match all.into_iter().find(|(_, v)| v.contains('\0')) {
        Some((field, value)) => Err(Error::InvalidOption {
            field,
            value: value.to_string(),
            reason: "contains a NUL byte",
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use std::os::fd::AsFd;

    #[test]
    fn runc_style_options_reach_the_wire() {
        let images = std::fs::File::open("/").unwrap();
        let work = std::fs::File::open("/tmp").unwrap();
        let opts = CriuOpts::new(images.as_fd())
            .work_dir(work.as_fd())
            .log_file("dump.log")
            .log_level(4)
            .pid(42)
            .root("/r")
            .manage_cgroups(true)
            .manage_cgroups_mode("strict".parse().unwrap())
            .shell_job(true)
            .leave_running(true)
            .tcp_established(true)
            .ext_unix_sk(true)
            .file_locks(true)
            .empty_ns(0x4000_0000)
            .auto_dedup(true)
            .link_remap(true)
            .lazy_pages(true)
            .status_fd(work.as_fd())
            .page_server("10.0.0.1", 8080)
            .parent_img("../pre")
            .track_mem(true)
            .ext_mount("/etc/hosts", "/host/hosts")
            .external("net[4026531993]:extRootNetNS")
            .inherit_fd("pipe:[99]", images.as_fd())
            .veth_pair("eth0", "veth1")
            .cgroup_root(Some("memory".into()), "/ctr")
            .rst_sibling(true)
            .orphan_pts_master(true);
        let rpc = opts.to_rpc().unwrap();
        assert_eq!(rpc.images_dir_fd, images.as_raw_fd());
        assert_eq!(rpc.work_dir_fd, Some(work.as_raw_fd()));
        assert_eq!(rpc.manage_cgroups_mode, Some(5));
        assert_eq!(rpc.empty_ns, Some(0x4000_0000));
        assert_eq!(rpc.ps.as_ref().unwrap().port, Some(8080));
        assert_eq!(rpc.inherit_fd[0].fd, images.as_raw_fd());
        assert_eq!(rpc.cg_root[0].ctrl.as_deref(), Some("memory"));
        assert_eq!(rpc.notify_scripts, Some(true));
        assert_eq!(opts.log_path(), Some(PathBuf::from("/tmp/dump.log")));

        // Spot-check CRIU's field numbers on the wire: tag = field << 3 | wire type.
        let bytes = rpc.encode_to_vec();
        let has_varint_field = |field: u32| {
            let tag = field << 3; // wire type 0
            let mut enc = Vec::new();
            prost::encoding::encode_varint(u64::from(tag), &mut enc);
            bytes
                .windows(enc.len() + 1)
                .any(|w| w[..enc.len()] == enc[..] && w[enc.len()] == 1)
        };
        for (name, field) in [
            ("leave_running", 3),
            ("ext_unix_sk", 4),
            ("tcp_established", 5),
            ("shell_job", 7),
            ("file_locks", 8),
            ("track_mem", 15),
            ("auto_dedup", 16),
            ("link_remap", 18),
            ("manage_cgroups", 24),
            ("rst_sibling", 26),
            ("lazy_pages", 48),
            ("orphan_pts_master", 50),
        ] {
            assert!(
                has_varint_field(field),
                "{name} (field {field}) not set to 1"
            );
        }
    }

    #[test]
    fn defaults_are_minimal() {
        let images = std::fs::File::open("/").unwrap();
        let rpc = CriuOpts::new(images.as_fd()).to_rpc().unwrap();
        assert_eq!(rpc.leave_running, None);
        assert_eq!(rpc.log_file, None);
        assert_eq!(rpc.notify_scripts, Some(true));
        assert!(CriuOpts::new(images.as_fd()).log_path().is_none());
    }

    #[test]
    fn refuses_bad_values() {
        let images = std::fs::File::open("/").unwrap();
        for (opts, field) in [
            (
                CriuOpts::new(images.as_fd()).log_file("a/b.log"),
                "log_file",
            ),
            (CriuOpts::new(images.as_fd()).log_file(".."), "log_file"),
            (CriuOpts::new(images.as_fd()).log_level(9), "log_level"),
            (CriuOpts::new(images.as_fd()).root("/a\0b"), "root"),
            (
                CriuOpts::new(images.as_fd()).ext_mount("k", "v\0"),
                "ext_mount",
            ),
        ] {
            match opts.to_rpc() {
                Err(Error::InvalidOption { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        assert!("bogus".parse::<CgroupMode>().is_err());
        for m in [
            "ignore", "none", "props", "soft", "full", "strict", "default",
        ] {
            assert_eq!(m.parse::<CgroupMode>().unwrap().to_string(), m);
        }
    }
}
