//! The state root: where it is, creating it, and the container directories under it.

use std::fs::{DirBuilder, Permissions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::container::{ContainerDir, STATE_FILE};
use crate::error::{Error, Result};
use crate::id::ContainerId;
use crate::lock::StateLock;

/// The state root used when running as root.
pub const DEFAULT_ROOT: &str = "/run/rrc";

/// Name of the directory under `$XDG_RUNTIME_DIR` used when rootless.
pub const TOOL_NAME: &str = "rrc";

/// Mode of the state root: only its owner may look inside.
pub const ROOT_MODE: u32 = 0o700;

/// Mode of a container directory: others may traverse it (to reach `exec.fifo`) but not
/// list it.
pub const CONTAINER_DIR_MODE: u32 = 0o711;

/// The default state root: [`DEFAULT_ROOT`], or `$XDG_RUNTIME_DIR/rrc` when rootless.
pub fn default_root(rootless: bool) -> Result<PathBuf> {
    if !rootless {
        return Ok(PathBuf::from(DEFAULT_ROOT));
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => Ok(Path::new(&dir).join(TOOL_NAME)),
        _ => Err(Error::NoRuntimeDir),
    }
}

/// Whether this process runs in a user namespace other than the initial
/// one: its uid map is not the identity over every uid (as runc decides).
/// Rootless podman runs the runtime as uid 0 in such a namespace.
pub fn in_user_namespace() -> bool {
    match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(map) => !is_identity_map(&map),
        // No map to read (no user namespaces in this kernel): the initial one.
        Err(_) => false,
    }
}

/// Whether a uid_map text maps every id to itself (`0 0 4294967295`).
pub fn is_identity_map(map: &str) -> bool {
    let lines: Vec<Vec<&str>> = map
        .lines()
        .map(|l| l.split_whitespace().collect())
        .filter(|f: &Vec<&str>| !f.is_empty())
        .collect();
    matches!(lines.as_slice(), [l] if l.as_slice() == ["0", "0", "4294967295"])
}

/// The state root when none is given, chosen as runc chooses its own:
/// `$XDG_RUNTIME_DIR/rrc` for a non-root user (an error without
/// XDG_RUNTIME_DIR), and for uid 0 inside a user namespace when
/// XDG_RUNTIME_DIR is set and `$USER` is not `root` (rootless podman);
/// [`DEFAULT_ROOT`] for the real root, whatever XDG_RUNTIME_DIR says.
pub fn auto_root(euid: u32) -> Result<PathBuf> {
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty());
    let user = std::env::var_os("USER");
    default_root(uses_runtime_dir(
        euid,
        xdg.is_some(),
        in_user_namespace,
        user.as_deref(),
    ))
}

/// runc's rule for honouring XDG_RUNTIME_DIR (see [`auto_root`]); pure so
/// that it can be tested.
fn uses_runtime_dir(
    euid: u32,
    xdg_set: bool,
    in_userns: impl FnOnce() -> bool,
    user: Option<&std::ffi::OsStr>,
) -> bool {
    if euid != 0 {
        return true;
    }
    xdg_set && in_userns() && user.is_none_or(|u| u != "root")
}

/// Creates `path` with exactly `mode`, whatever the umask. `Ok(false)` if it already existed.
pub(crate) fn mkdir_exact(path: &Path, mode: u32) -> Result<bool> {
    match DirBuilder::new().mode(mode).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(Error::io(path, e)),
    }
    std::fs::set_permissions(path, Permissions::from_mode(mode)).map_err(|e| Error::io(path, e))?;
    Ok(true)
}

/// How [`StateRoot::lock_root`] holds the root's lock.
#[derive(Clone, Copy)]
enum Share {
    /// Creates, which may run together.
    Shared,
    /// The removal of an unfinished create, alone.
    Exclusive,
}

/// A directory holding one subdirectory per container.
#[derive(Debug, Clone)]
pub struct StateRoot {
    path: PathBuf,
}

impl StateRoot {
    /// Opens the state root, creating it and any missing parents with mode 0700. An existing
    /// directory keeps its mode.
    pub fn open(path: &Path) -> Result<StateRoot> {
        let mut missing = Vec::new();
        let mut cur = Some(path);
        while let Some(p) = cur {
            if p.as_os_str().is_empty() {
                break;
            }
            match std::fs::metadata(p) {
                Ok(m) if m.is_dir() => break,
                Ok(_) => {
                    return Err(Error::io(
                        p,
                        std::io::Error::from_raw_os_error(libc::ENOTDIR),
                    ))
                }
                Err(e) if e.kind() == ErrorKind::NotFound => missing.push(p),
                Err(e) => return Err(Error::io(p, e)),
            }
            cur = p.parent();
        }
        for dir in missing.iter().rev() {
            mkdir_exact(dir, ROOT_MODE)?;
        }
        Ok(StateRoot {
            path: path.to_path_buf(),
        })
    }

    /// The root directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory a container with this id would have.
    pub fn container_path(&self, id: &ContainerId) -> PathBuf {
        self.path.join(id.as_str())
    }

    /// Creates the directory of a new container (mode 0711) and returns it locked.
    ///
    /// The root's own lock is held, shared, from the mkdir to the container
    /// lock, so that [`StateRoot::remove_unfinished`], which takes it
    /// exclusively, never mistakes a directory being created for one whose
    /// create died. Shared, because creates need no protection from each
    /// other (the mkdir decides between two of one id): an exclusive lock
    /// queued every create of a node starting many containers at once
    /// behind the others' mkdir and lock, a convoy of 150 ms each at 100.
    pub fn create(&self, id: &ContainerId) -> Result<(ContainerDir, StateLock)> {
        let path = self.container_path(id);
        let _root = self.lock_root(Share::Shared)?;
        if !mkdir_exact(&path, CONTAINER_DIR_MODE)? {
            return Err(Error::AlreadyExists { id: id.to_string() });
        }
        let dir = ContainerDir::new(path, id.clone());
        match dir.lock() {
            Ok(lock) => Ok((dir, lock)),
            Err(e) => {
                // Do not leave a directory behind that no one will ever fill in.
                let _ = std::fs::remove_dir_all(dir.path());
                Err(e)
            }
        }
    }

    /// A lock on the state root directory itself.
    fn lock_root(&self, share: Share) -> Result<StateLock> {
        let file = std::fs::File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        match share {
            Share::Shared => crate::sys::flock_shared(&file),
            Share::Exclusive => {
                crate::sys::flock_exclusive(&file, crate::sys::Wait::Block).map(|_| ())
            }
        }
        .map_err(|e| Error::io(&self.path, e))?;
        Ok(StateLock {
            file,
            path: self.path.clone(),
        })
    }

    /// Removes a container directory that has no state file: what a create
    /// killed before its first save leaves. `held` is the caller's lock on
    /// it, given up here: a create that made the directory but has not
    /// locked it yet would wait for it. `undo` runs, with the directory
    /// locked and known to be a dead create's, right before the directory
    /// goes: it removes what the create made outside of it (cgroups,
    /// mounts), and its error keeps the directory for a retry. Returns
    /// false, removing nothing, when a create finished meanwhile and the
    /// state file now exists.
    pub fn remove_unfinished<E: From<Error>>(
        &self,
        dir: ContainerDir,
        held: StateLock,
        undo: impl FnOnce(&ContainerDir) -> std::result::Result<(), E>,
    ) -> std::result::Result<bool, E> {
        drop(held);
        let _root = self.lock_root(Share::Exclusive)?;
        // With the root locked no create is between its mkdir and its lock:
        // whoever holds the container lock now is a live create, and
        // waiting for it ends with a state file or with it gone.
        let _lock = match dir.lock() {
            Ok(l) => l,
            Err(Error::NotFound { .. }) => return Ok(true),
            Err(e) => return Err(e.into()),
        };
        if dir.state_path().exists() {
            return Ok(false);
        }
        undo(&dir)?;
        dir.destroy()?;
        Ok(true)
    }

    /// Opens the directory of an existing container.
    pub fn open_container(&self, id: &ContainerId) -> Result<ContainerDir> {
        let path = self.container_path(id);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => Ok(ContainerDir::new(path, id.clone())),
            Ok(_) => Err(Error::NotFound { id: id.to_string() }),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                Err(Error::NotFound { id: id.to_string() })
            }
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// The ids of all containers that have a `state.json`, sorted. Entries whose names are
    /// not valid ids, that are not directories, or that have no state file are skipped.
    pub fn list(&self) -> Result<Vec<ContainerId>> {
        let entries = match std::fs::read_dir(&self.path) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.path, e)),
        };
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.path, e))?;
            let Some(id) = entry
                .file_name()
                .to_str()
                .and_then(|n| ContainerId::new(n).ok())
            else {
                continue;
            };
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if is_dir && entry.path().join(STATE_FILE).is_file() {
                ids.push(id);
            }
        }
        ids.sort();
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn identity_map_is_the_initial_namespace() {
        assert!(is_identity_map("         0          0 4294967295\n"));
        assert!(!is_identity_map("         0       1000          1\n"));
        assert!(!is_identity_map("0 0 1\n"));
        assert!(!is_identity_map("0 0 4294967295\n1 1 1\n"));
        assert!(!is_identity_map(""));
    }

    #[test]
    fn runtime_dir_as_runc_honours_it() {
        let never = || -> bool { panic!("user namespace probed needlessly") };
        assert!(uses_runtime_dir(1000, false, never, None));
        assert!(!uses_runtime_dir(0, false, never, None));
        assert!(!uses_runtime_dir(
            0,
            true,
            || false,
            Some(OsStr::new("alice"))
        ));
        assert!(uses_runtime_dir(
            0,
            true,
            || true,
            Some(OsStr::new("alice"))
        ));
        assert!(uses_runtime_dir(0, true, || true, None));
        assert!(!uses_runtime_dir(
            0,
            true,
            || true,
            Some(OsStr::new("root"))
        ));
    }
}
