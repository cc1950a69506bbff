//! CRIU's notifications during `restore`: the hooks at setup-namespaces,
//! state.json at post-restore, and the terminal's master sent to the
//! console socket.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::Spec;
use rr_criu::NotifyError;
use rr_state::{ContainerDir, ContainerId};

use crate::config::Bundle;
use crate::error::Error;
use crate::runtime::Runtime;

/// CRIU's notifications during a restore: the createRuntime-time hooks at
/// setup-namespaces, state.json saved at post-restore (where a failure
/// is kept to be returned as it is), and the terminal's master sent to
/// the console socket.
pub(super) struct RestoreNotify<'a> {
    pub(super) runtime: &'a Runtime,
    pub(super) dir: &'a ContainerDir,
    pub(super) id: &'a ContainerId,
    pub(super) bundle: &'a Bundle,
    pub(super) cgroup: Option<&'a rr_cgroups::Manager>,
    pub(super) console_socket: Option<&'a Path>,
    /// The pid whose state was saved at post-restore.
    pub(super) saved: Option<i32>,
    /// Why saving the state failed.
    pub(super) failure: Option<Error>,
}

impl rr_criu::Notify for RestoreNotify<'_> {
    fn notify(
        &mut self,
        script: &str,
        pid: Option<i32>,
        fd: Option<OwnedFd>,
    ) -> std::result::Result<(), NotifyError> {
        match script {
            "setup-namespaces" => {
                if let Some(pid) = pid {
                    run_setup_namespaces_hooks(&self.bundle.spec, pid)?;
                }
            }
            "post-restore" => {
                let pid = pid.ok_or("post-restore notification without a pid")?;
                if let Err(e) =
                    self.runtime
                        .save_restored(self.dir, self.id, self.bundle, pid, self.cgroup)
                {
                    let m = e.to_string();
                    self.failure = Some(e);
                    return Err(m.into());
                }
                self.saved = Some(pid);
            }
            "orphan-pts-master" => {
                let fd = fd.ok_or("orphan-pts-master without a descriptor")?;
                let Some(sock) = self.console_socket else {
                    return Err(
                        "the restored container has a terminal but no --console-socket was given"
                            .into(),
                    );
                };
                send_fd(sock, &fd).map_err(|e| format!("{}: {e}", sock.display()))?;
            }
            // rr configures no network, so there is nothing to lock.
            _ => {}
        }
        Ok(())
    }
}

/// Call site for the OCI `prestart` and `createRuntime` hooks, which runc
/// runs when CRIU has set up the restored namespaces (state pid = `pid`).
/// Hooks are not implemented on this branch (nor run by `create`); the
/// hooks work plugs its runner in here.
fn run_setup_namespaces_hooks(spec: &Spec, pid: i32) -> std::result::Result<(), NotifyError> {
    let _ = (spec.hooks(), pid);
    Ok(())
}

/// Sends `fd` over the unix socket at `path` (SCM_RIGHTS), with the name
/// runc uses as the message.
fn send_fd(path: &Path, fd: &OwnedFd) -> std::io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
    let stream = std::os::unix::net::UnixStream::connect(path)?;
    let fds = [fd.as_raw_fd()];
    let iov = [std::io::IoSlice::new(b"orphan-pts-master")];
    sendmsg::<UnixAddr>(
        stream.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(std::io::Error::from)?;
    Ok(())
}
