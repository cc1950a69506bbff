//! Mount helpers shared by the mount and spec-feature tests: a tmpfs on
//! the host that goes away with the test, the spec's mount list, and the
//! probe for mount_setattr(2).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::TestEnv;

/// A tmpfs this test mounted on the host, unmounted when dropped.
pub struct HostMount(pub PathBuf);

impl HostMount {
    /// Mounts a fresh tmpfs at `at` (made if missing).
    pub fn tmpfs(at: &Path) -> HostMount {
        std::fs::create_dir_all(at).expect("mkdir mount point");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "tmpfs"])
            .arg(at)
            .status()
            .expect("spawn mount")
            .success();
        assert!(ok, "mount tmpfs on {}", at.display());
        HostMount(at.to_path_buf())
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Appends `m` to the bundle's `mounts`.
pub fn add_mount(env: &TestEnv, m: Value) {
    env.edit_config(|c| c["mounts"].as_array_mut().expect("mounts").push(m));
}

/// How many mounts the bundle's spec lists.
pub fn mount_count(env: &TestEnv) -> usize {
    let text = std::fs::read_to_string(env.config_path()).expect("config");
    let c: Value = serde_json::from_str(&text).expect("json");
    c["mounts"].as_array().map_or(0, Vec::len)
}

/// Whether the kernel has mount_setattr(2) (Linux 5.12).
pub fn has_mount_setattr() -> bool {
    // SAFETY: invalid arguments on purpose: the kernel answers EBADF or
    // EINVAL when the call exists, ENOSYS when it does not.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            -1,
            c"".as_ptr(),
            0,
            std::ptr::null::<u8>(),
            0,
        )
    };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS)
}
