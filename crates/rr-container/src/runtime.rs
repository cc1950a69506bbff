//! The `Runtime` handle through which every command goes: the state root,
//! the warning handler, container lookup and the status derived from what
//! the kernel shows. The commands add their methods in `ops/`.

use std::path::{Path, PathBuf};

use rr_state::{ContainerDir, ContainerId, OciState, State, StateRoot, Status};

use crate::error::{Error, Result};

/// A handle on the state root, through which every operation goes.
pub struct Runtime {
    pub(crate) root: StateRoot,
    pub(crate) proc_root: PathBuf,
    pub(crate) warnings: std::cell::RefCell<Option<WarningFn>>,
    pub(crate) systemd_cgroup: bool,
}

/// Receives warnings (see [`Runtime::on_warning`]).
pub(crate) type WarningFn = Box<dyn FnMut(&str)>;

impl Runtime {
    /// Opens (creating if needed) the state root.
    pub fn new(root: &Path) -> Result<Runtime> {
        Ok(Runtime {
            root: StateRoot::open(root)?,
            proc_root: PathBuf::from("/proc"),
            warnings: Default::default(),
            systemd_cgroup: false,
        })
    }

    pub(crate) fn container(&self, id: &str) -> Result<ContainerDir> {
        let id = ContainerId::new(id)?;
        Ok(self.root.open_container(&id)?)
    }

    /// Hands a warning to the caller's handler (the library never prints).
    pub(crate) fn warn(&self, msg: String) {
        if let Ok(mut h) = self.warnings.try_borrow_mut() {
            if let Some(f) = h.as_mut() {
                f(&msg);
            }
        }
    }

    /// Makes create, run and restore place the container's cgroup as a transient
    /// systemd unit (`--systemd-cgroup`); the other commands follow what
    /// state.json recorded.
    pub fn use_systemd_cgroup(&mut self, on: bool) {
        self.systemd_cgroup = on;
    }

    /// Sets the function that receives warnings, such as resource fields the
    /// kernel no longer has and that were ignored. Without one they are dropped.
    pub fn on_warning(&mut self, f: impl FnMut(&str) + 'static) {
        self.warnings = std::cell::RefCell::new(Some(Box::new(f)));
    }

    pub(crate) fn status_of(&self, dir: &ContainerDir, state: &State) -> Status {
        let frozen = crate::cgroups::manager_of(state)
            .ok()
            .flatten()
            .and_then(|cg| cg.is_frozen().ok())
            .unwrap_or(false);
        let waiting = dir.exec_fifo_exists() && !self.init_has_execd(dir, state);
        rr_state::derive_status(state, &self.proc_root, waiting, frozen)
    }

    /// Whether the init has exec'd the container's process, asked only
    /// while exec.fifo exists: `start` removes the fifo right after opening
    /// it, but a `start` killed between the two leaves the fifo behind a
    /// running process. Until its exec the init is a fork of the rrc that
    /// created it, so its executable is that very file (device and inode,
    /// kept in the state dir by create: an rrc binary replaced since keeps
    /// its inode while a waiting init maps it); after it, it is the
    /// container's. Unlike the process's arguments, nothing the container
    /// does can make its executable that inode. When it cannot be read (a
    /// non-dumpable init seen by a rootless rrc) the fifo decides.
    fn init_has_execd(&self, dir: &ContainerDir, state: &State) -> bool {
        use std::os::unix::fs::MetadataExt;
        let init = self
            .proc_root
            .join(state.init_process_pid.to_string())
            .join("exe");
        let Ok(i) = std::fs::metadata(init) else {
            return false;
        };
        match creator_exe(dir) {
            Some(creator) => (i.dev(), i.ino()) != creator,
            None => false,
        }
    }

    pub(crate) fn oci_state(&self, dir: &ContainerDir, state: &State) -> OciState {
        let mut out = OciState::new(state, self.status_of(dir, state));
        if let Some(v) = state.config.spec.get("ociVersion").and_then(|v| v.as_str()) {
            out.oci_version = v.to_string();
        }
        out.owner = owner_of(dir.path());
        out
    }
}

pub(crate) fn wrong_state(id: &str, status: Status, message: &str) -> Error {
    Error::WrongState {
        id: id.to_string(),
        status: status.to_string(),
        message: message.to_string(),
    }
}

/// Where create keeps the (device, inode) of the rrc that made the init.
const CREATOR_EXE: &str = "creator-exe";

/// Records this rrc's executable for [`creator_exe`].
pub(crate) fn record_creator_exe(dir: &ContainerDir) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let me = std::fs::metadata("/proc/self/exe").map_err(|e| Error::io("/proc/self/exe", e))?;
    let path = dir.path().join(CREATOR_EXE);
    std::fs::write(&path, format!("{} {}\n", me.dev(), me.ino())).map_err(|e| Error::io(&path, e))
}

/// The (device, inode) of the rrc that created the container; this rrc's
/// when it was not recorded (a create killed before, or an older rrc).
fn creator_exe(dir: &ContainerDir) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let recorded = std::fs::read_to_string(dir.path().join(CREATOR_EXE))
        .ok()
        .and_then(|t| {
            let mut it = t.split_whitespace().map(|n| n.parse::<u64>().ok());
            Some((it.next()??, it.next()??))
        });
    recorded.or_else(|| {
        std::fs::metadata("/proc/self/exe")
            .ok()
            .map(|m| (m.dev(), m.ino()))
    })
}

fn owner_of(p: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(p) else {
        return String::new();
    };
    let uid = meta.uid();
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                let _ = f.next();
                (f.next()?.parse::<u32>().ok()? == uid).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| format!("#{uid}"))
}
