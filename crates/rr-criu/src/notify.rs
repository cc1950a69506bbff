//! Answering CRIU's notifications (its "action scripts" over RPC).

use std::os::fd::OwnedFd;

use crate::error::NotifyError;

/// Receives CRIU's notifications while a request runs.
///
/// CRIU stops at each point (`pre-dump`, `post-dump`, `network-lock`,
/// `network-unlock`, `setup-namespaces`, `post-setup-namespaces`,
/// `pre-restore`, `post-restore`, `pre-resume`, `post-resume`,
/// `orphan-pts-master`, `status-ready`, ...) until it is answered. `Ok`
/// answers `notify_success = true`; `Err` answers false, CRIU aborts the
/// request, and the error comes back as [`crate::Error::NotifyRejected`].
pub trait Notify {
    /// Handles the notification `script`. `pid` is what CRIU attached (the
    /// restored init for `post-restore`); `fd` is a descriptor CRIU passed with
    /// it (the pty master for `orphan-pts-master`), now owned by the callee.
    fn notify(
        &mut self,
        script: &str,
        pid: Option<i32>,
        fd: Option<OwnedFd>,
    ) -> Result<(), NotifyError>;
}

/// Answers every notification with success and drops any descriptor.
#[derive(Debug, Clone, Copy, Default)]
pub struct AcceptAll;

impl Notify for AcceptAll {
    fn notify(&mut self, _: &str, _: Option<i32>, _: Option<OwnedFd>) -> Result<(), NotifyError> {
        Ok(())
    }
}

impl<F> Notify for F
where
    F: FnMut(&str, Option<i32>, Option<OwnedFd>) -> Result<(), NotifyError>,
{
    fn notify(
        &mut self,
        script: &str,
        pid: Option<i32>,
        fd: Option<OwnedFd>,
    ) -> Result<(), NotifyError> {
        self(script, pid, fd)
    }
}
