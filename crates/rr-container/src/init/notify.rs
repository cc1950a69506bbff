//! Seccomp notify (`SCMP_ACT_NOTIFY`, `linux.seccomp.listenerPath`): the
//! init installs its filter with a listener at the end of its setup and
//! passes the listener to rrc over its sync socket; rrc passes it on to the
//! agent at `listenerPath` with the container's state, as runc does.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use serde_json::{json, Value};

use crate::error::{Error, Result};

fn sys(call: &str, e: nix::Error) -> Error {
    Error::Sys {
        call: call.into(),
        source: e.into(),
    }
}

fn send_with_fd(sock: RawFd, data: &[u8], fd: &OwnedFd, call: &str) -> Result<()> {
    let fds = [fd.as_raw_fd()];
    let iov = [std::io::IoSlice::new(data)];
    sendmsg::<()>(
        sock,
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| sys(call, e))?;
    Ok(())
}

/// In the init: sends the listener of the filter just installed to rrc.
pub(crate) fn send_listener(sync_fd: RawFd, listener: &OwnedFd) -> Result<()> {
    send_with_fd(
        sync_fd,
        b"seccompFd",
        listener,
        "sending the seccomp listener",
    )
}

/// In rrc: receives the listener the init sent after its report.
pub(crate) fn recv_listener(sync_fd: RawFd) -> Result<OwnedFd> {
    let mut buf = [0u8; 64];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 253]);
    let msg = recvmsg::<()>(
        sync_fd,
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| sys("receiving the seccomp listener from the init", e))?;
    let mut got = None;
    for c in msg
        .cmsgs()
        .map_err(|e| sys("reading the seccomp listener message", e))?
    {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for fd in fds {
                // SAFETY: the kernel just gave us this fd; each is owned
                // once, the extra ones are closed on drop.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                got.get_or_insert(owned);
            }
        }
    }
    got.ok_or_else(|| Error::Init("the init sent no seccomp listener".into()))
}

/// The message the agent gets with the listener: the container's state
/// (`state`, already JSON), its pid and the profile's `listenerMetadata`.
pub(crate) fn agent_message(oci_version: &str, pid: i32, metadata: &str, state: &str) -> Value {
    let state: Value = serde_json::from_str(state).unwrap_or(Value::Null);
    json!({
        "ociVersion": oci_version,
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": metadata,
        "state": state,
    })
}

/// Connects to the agent at `path` and sends it `message` with the
/// listener. A leading `@` names an abstract socket, as runc (Go's
/// net.Dial) reads it.
pub(crate) fn hand_to_agent(path: &Path, listener: &OwnedFd, message: &Value) -> Result<()> {
    let stream = connect(path).map_err(|e| Error::Sys {
        // runc's words, which its tests and engines match on, and the field.
        call: format!(
            "failed to connect with seccomp agent specified in the seccomp profile: linux.seccomp.listenerPath {}",
            path.display()
        ),
        source: e,
    })?;
    send_with_fd(
        stream.as_raw_fd(),
        message.to_string().as_bytes(),
        listener,
        &format!(
            "linux.seccomp.listenerPath {}: sending the listener",
            path.display()
        ),
    )
}

fn connect(path: &Path) -> std::io::Result<std::os::unix::net::UnixStream> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::{SocketAddr, UnixStream};
    match path.as_os_str().as_bytes().strip_prefix(b"@") {
        Some(name) => UnixStream::connect_addr(&SocketAddr::from_abstract_name(name)?),
        None => UnixStream::connect(path),
    }
}
