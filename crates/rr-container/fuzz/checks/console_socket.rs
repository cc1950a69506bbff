// Shared by the cargo-fuzz target (nightly) and the corpus replay test
// in tests/tests/fuzz_corpus.rs (stable), so both run the same code.
// Decodes an arbitrary console-socket message: the first byte chooses how
// many descriptors ride along (bits 0-1), a datagram rather than a
// seqpacket socket (bit 2) and a sender that hangs up without a message
// (bit 3); the rest is the message's data (a pty name in a well-formed
// one). Receiving must never panic and must return a descriptor exactly
// when one was sent.
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

fn socket_pair(kind: libc::c_int) -> Option<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid out array of two ints.
    if unsafe { libc::socketpair(libc::AF_UNIX, kind | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: both fds were just created and are owned here.
    Some(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sends `data` with `fds` attached on `sock`.
fn send(sock: &OwnedFd, data: &[u8], fds: &[libc::c_int]) -> bool {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let payload = std::mem::size_of_val(fds) as u32;
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(payload) } as usize;
    let mut control = vec![0u8; space];
    // SAFETY: an all-zero msghdr is valid; the fields are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: control is CMSG_SPACE(payload) bytes, room for one header
        // and the fds; CMSG_FIRSTHDR/CMSG_DATA point inside it.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(payload) as _;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(c).cast(), fds.len());
        }
    }
    // SAFETY: msg points at live buffers for the duration of the call.
    unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) >= 0 }
}

/// The fuzz target's body.
pub fn check(data: &[u8]) {
    let (flags, payload) = match data.split_first() {
        Some((f, rest)) => (*f, rest),
        None => (0, &[][..]),
    };
    let nfds = (flags & 3) as usize;
    let kind = if flags & 4 != 0 {
        libc::SOCK_DGRAM
    } else {
        libc::SOCK_SEQPACKET
    };
    let hang_up = flags & 8 != 0;
    // A datagram larger than the socket buffer cannot be sent at all.
    let payload = &payload[..payload.len().min(32 * 1024)];
    let Some((tx, rx)) = socket_pair(kind) else {
        return;
    };
    let Ok(null) = std::fs::File::open("/dev/null") else {
        return;
    };
    let sent = if hang_up {
        drop(tx);
        false
    } else {
        let fds = vec![null.as_raw_fd(); nfds];
        let ok = send(&tx, payload, &fds);
        drop(tx);
        ok
    };
    let got = rr_container::fuzzing::recv_console_master(&rx);
    match &got {
        Ok(_) => assert!(sent && nfds > 0, "a master out of a message without one"),
        Err(e) => {
            assert!(!(sent && nfds > 0), "a master was sent but not received: {e}");
            assert!(!e.to_string().is_empty());
        }
    }
}
