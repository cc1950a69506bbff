//! One container's directory: its lock, its atomically replaced `state.json`, and the
//! exec fifo.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::id::ContainerId;
use crate::lock::StateLock;
use crate::state::State;
use crate::sys::{self, Wait};

/// Name of the state file inside a container directory.
pub const STATE_FILE: &str = "state.json";
/// Name of the fifo that holds the init process between `create` and `start`.
pub const EXEC_FIFO: &str = "exec.fifo";
/// Prefix of the temporary files that `save` writes before renaming.
pub const TEMP_PREFIX: &str = "state-";
/// Mode of `exec.fifo`: the owner reads, anyone may write the start byte.
pub const FIFO_MODE: u32 = 0o622;
/// Mode of `state.json`.
pub const STATE_FILE_MODE: u32 = 0o600;

/// The directory `<root>/<id>` of one container.
#[derive(Debug, Clone)]
pub struct ContainerDir {
    path: PathBuf,
    id: ContainerId,
}

impl ContainerDir {
    pub(crate) fn new(path: PathBuf, id: ContainerId) -> ContainerDir {
        ContainerDir { path, id }
    }

    /// The container id.
    pub fn id(&self) -> &ContainerId {
        &self.id
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `<dir>/state.json`.
    pub fn state_path(&self) -> PathBuf {
        self.path.join(STATE_FILE)
    }

    fn not_found(&self) -> Error {
        Error::NotFound {
            id: self.id.to_string(),
        }
    }

    /// Takes the container's exclusive lock, waiting for it. Fails with `NotFound` if the
    /// directory was removed (or replaced) while waiting. Removes temporary files left by
    /// an interrupted `save`.
    pub fn lock(&self) -> Result<StateLock> {
        self.acquire(Wait::Block)?.ok_or_else(|| self.not_found())
    }

    /// Takes the lock if it is free; `Ok(None)` if another process holds it.
    pub fn try_lock(&self) -> Result<Option<StateLock>> {
        self.acquire(Wait::NoBlock)
    }

    fn acquire(&self, wait: Wait) -> Result<Option<StateLock>> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(self.not_found()),
            Err(e) => return Err(Error::io(&self.path, e)),
        };
        if !sys::flock_exclusive(&file, wait).map_err(|e| Error::io(&self.path, e))? {
            return Ok(None);
        }
        // The previous holder may have destroyed the container while we waited.
        let held = file.metadata().map_err(|e| Error::io(&self.path, e))?;
        if held.nlink() == 0 {
            return Err(self.not_found());
        }
        match std::fs::symlink_metadata(&self.path) {
            Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {}
            Ok(_) => return Err(self.not_found()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(self.not_found()),
            Err(e) => return Err(Error::io(&self.path, e)),
        }
        let lock = StateLock {
            file,
            path: self.path.clone(),
        };
        self.cleanup_temp_files()?;
        Ok(Some(lock))
    }

    /// Removes `state-*` files left behind by a `save` that was killed before its rename.
    /// Only safe while holding the lock (another writer's file would be removed otherwise);
    /// `lock` and `try_lock` call it. Returns how many files were removed.
    pub fn cleanup_temp_files(&self) -> Result<usize> {
        let entries = match std::fs::read_dir(&self.path) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(self.not_found()),
            Err(e) => return Err(Error::io(&self.path, e)),
        };
        let mut removed = 0;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.path, e))?;
            let name = entry.file_name();
            let is_temp = name
                .to_str()
                .is_some_and(|n| n.starts_with(TEMP_PREFIX) && n != STATE_FILE);
            let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
            if !(is_temp && is_file) {
                continue;
            }
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(entry.path(), e)),
            }
        }
        Ok(removed)
    }

    /// Reads `state.json`. A missing file or directory is `NotFound`; bad content is
    /// `Corrupt`, naming the file and the position.
    pub fn load(&self) -> Result<State> {
        let path = self.state_path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(self.not_found()),
            Err(e) => return Err(Error::io(path, e)),
        };
        State::from_json_slice(&bytes, &path)
    }

    /// Replaces `state.json` atomically and durably: the state is written to a new
    /// `state-*` file in the same directory, flushed to disk, renamed over `state.json`,
    /// and the directory is flushed so the rename survives a crash. Readers see either the
    /// old or the new file, never a partial one. Call it while holding the lock.
    pub fn save(&self, state: &State) -> Result<()> {
        self.stage(state)?.commit()
    }

    /// The first half of [`ContainerDir::save`]: writes the state to a new
    /// `state-*` file and flushes it to disk, without touching `state.json`.
    /// [`StagedState::commit`] puts it in place; dropped uncommitted, the
    /// file is removed. The flush, the slow part, can so be done while
    /// something else is awaited. Call it while holding the lock.
    pub fn stage(&self, state: &State) -> Result<StagedState> {
        let target = self.state_path();
        let bytes = state.to_json_vec(&target)?;
        let (tmp_path, mut file) = self.create_temp()?;
        let written = file
            .write_all(&bytes)
            .and_then(|()| file.set_permissions(Permissions::from_mode(STATE_FILE_MODE)))
            .and_then(|()| file.sync_all());
        drop(file);
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp_path);
            return Err(Error::io(tmp_path, e));
        }
        Ok(StagedState {
            tmp: Some(tmp_path),
            target,
            dir: self.path.clone(),
        })
    }

    fn create_temp(&self) -> Result<(PathBuf, File)> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut last_err = None;
        for _ in 0..16 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let name = format!("{TEMP_PREFIX}{}-{n:x}-{nanos:08x}", std::process::id());
            let path = self.path.join(name);
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(STATE_FILE_MODE)
                .open(&path)
            {
                Ok(f) => return Ok((path, f)),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => last_err = Some((path, e)),
                Err(e) if e.kind() == ErrorKind::NotFound => return Err(self.not_found()),
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        let (path, e) = last_err.unwrap_or_else(|| {
            (
                self.path.clone(),
                std::io::Error::new(ErrorKind::AlreadyExists, "no free temporary name"),
            )
        });
        Err(Error::io(path, e))
    }

    /// `<dir>/exec.fifo`.
    pub fn fifo_path(&self) -> PathBuf {
        self.path.join(EXEC_FIFO)
    }

    /// Creates `exec.fifo` with mode exactly 0622 and gives it to `uid`:`gid` (the
    /// container's root user on the host). Returns its path.
    pub fn create_exec_fifo(&self, uid: u32, gid: u32) -> Result<PathBuf> {
        let path = self.fifo_path();
        sys::mkfifo(&path, FIFO_MODE).map_err(|e| Error::io(&path, e))?;
        let fixed = std::fs::set_permissions(&path, Permissions::from_mode(FIFO_MODE))
            .and_then(|()| std::os::unix::fs::lchown(&path, Some(uid), Some(gid)));
        if let Err(e) = fixed {
            let _ = std::fs::remove_file(&path);
            return Err(Error::io(path, e));
        }
        Ok(path)
    }

    /// Whether `exec.fifo` exists (the container is created but not started).
    pub fn exec_fifo_exists(&self) -> bool {
        std::fs::symlink_metadata(self.fifo_path()).is_ok()
    }

    /// Removes the container directory and everything in it. A directory that is already
    /// gone is not an error.
    pub fn destroy(self) -> Result<()> {
        match std::fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&self.path, e)),
        }
    }
}

/// A state written and flushed to a temporary file by
/// [`ContainerDir::stage`], not yet `state.json`.
#[derive(Debug)]
pub struct StagedState {
    tmp: Option<PathBuf>,
    target: PathBuf,
    dir: PathBuf,
}

impl StagedState {
    /// Renames the staged file over `state.json` and flushes the directory
    /// so that the rename survives a crash: the second half of
    /// [`ContainerDir::save`].
    pub fn commit(mut self) -> Result<()> {
        let Some(tmp) = self.tmp.take() else {
            return Ok(());
        };
        if let Err(e) = std::fs::rename(&tmp, &self.target) {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::io(&self.target, e));
        }
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(&self.dir, e))
    }
}

impl Drop for StagedState {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}
