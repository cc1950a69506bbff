//! The few rtnetlink requests `linux.netDevices` needs: move a link to
//! another network namespace under a new name, list its global addresses,
//! add an address. Each request goes through a socket of the calling
//! process's network namespace.
//!
//! Runtime side, used by [`crate::netdev`] only: a leaf that imports
//! nothing from the rest of the crate.

use std::io::{Error, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const NLMSG_DONE: u16 = 3;
const NLMSG_ERROR: u16 = 2;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
/// Addresses of this scope (RT_SCOPE_UNIVERSE) survive a move; the kernel
/// drops every address of a link that changes namespace.
const SCOPE_GLOBAL: u8 = 0;

/// One address of a link, as the kernel listed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    family: u8,
    prefixlen: u8,
    /// IFA_LOCAL and IFA_ADDRESS, raw.
    attrs: Vec<(u16, Vec<u8>)>,
}

/// The index of link `name` in this namespace.
pub fn index_of(name: &str) -> Option<i32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: c is a valid C string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    i32::try_from(i).ok().filter(|i| *i > 0)
}

/// Appends a netlink attribute, padded to 4 bytes.
fn attr(buf: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&u16::try_from(len).unwrap_or(0).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(data);
    buf.resize(buf.len() + (4 - len % 4) % 4, 0);
}

/// A whole message: the header, then `body`.
fn message(kind: u16, flags: libc::c_int, body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(16 + body.len());
    let len = u32::try_from(16 + body.len()).unwrap_or(0);
    msg.extend_from_slice(&len.to_ne_bytes());
    msg.extend_from_slice(&kind.to_ne_bytes());
    msg.extend_from_slice(&((flags | libc::NLM_F_REQUEST) as u16).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(body);
    msg
}

/// RTM_NEWLINK on link `index`: into the namespace `ns`, named `name`
/// there.
pub fn move_link(index: i32, ns: RawFd, name: &str) -> Result<()> {
    let mut body = Vec::with_capacity(64);
    // struct ifinfomsg: family, pad, type, index, flags, change.
    body.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
    body.extend_from_slice(&index.to_ne_bytes());
    body.extend_from_slice(&[0; 8]);
    attr(
        &mut body,
        IFLA_NET_NS_FD,
        &u32::try_from(ns).unwrap_or(0).to_ne_bytes(),
    );
    let mut cname = name.as_bytes().to_vec();
    cname.push(0);
    attr(&mut body, IFLA_IFNAME, &cname);
    let sock = socket()?;
    send(&sock, &message(libc::RTM_NEWLINK, libc::NLM_F_ACK, &body))?;
    ack(&sock)
}

/// struct ifaddrmsg: family, prefixlen, flags, scope, index.
fn ifaddrmsg(family: u8, prefixlen: u8, index: i32) -> Vec<u8> {
    let mut b = vec![family, prefixlen, 0, SCOPE_GLOBAL];
    b.extend_from_slice(&index.to_ne_bytes());
    b
}

/// The global addresses of link `index`.
pub fn global_addrs(index: i32) -> Result<Vec<Addr>> {
    let sock = socket()?;
    let body = ifaddrmsg(libc::AF_UNSPEC as u8, 0, 0);
    send(&sock, &message(RTM_GETADDR, libc::NLM_F_DUMP, &body))?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = recv(&sock, &mut buf)?;
        let mut at = 0;
        while at + 16 <= n {
            let len = u32::from_ne_bytes(word(&buf, at)) as usize;
            let kind = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
            if len < 16 || at + len > n {
                return Err(Error::other("malformed netlink answer"));
            }
            match kind {
                NLMSG_DONE => return Ok(out),
                NLMSG_ERROR => return Err(error_of(&buf[at..at + len])),
                RTM_NEWADDR => {
                    if let Some(a) = parse_addr(&buf[at + 16..at + len], index) {
                        out.push(a);
                    }
                }
                _ => {}
            }
            at += (len + 3) & !3;
        }
    }
}

fn word(b: &[u8], at: usize) -> [u8; 4] {
    [b[at], b[at + 1], b[at + 2], b[at + 3]]
}

/// An RTM_NEWADDR payload, when it is a global address of link `index`.
fn parse_addr(p: &[u8], index: i32) -> Option<Addr> {
    if p.len() < 8 {
        return None;
    }
    let (family, prefixlen, scope) = (p[0], p[1], p[3]);
    if i32::from_ne_bytes(word(p, 4)) != index || scope != SCOPE_GLOBAL {
        return None;
    }
    let mut attrs = Vec::new();
    let mut at = 8;
    while at + 4 <= p.len() {
        let len = usize::from(u16::from_ne_bytes([p[at], p[at + 1]]));
        let kind = u16::from_ne_bytes([p[at + 2], p[at + 3]]);
        if len < 4 || at + len > p.len() {
            break;
        }
        if kind == IFA_LOCAL || kind == IFA_ADDRESS {
            attrs.push((kind, p[at + 4..at + len].to_vec()));
        }
        at += (len + 3) & !3;
    }
    Some(Addr {
        family,
        prefixlen,
        attrs,
    })
}

/// Adds `addr` to link `index`.
pub fn add_addr(index: i32, addr: &Addr) -> Result<()> {
    let mut body = ifaddrmsg(addr.family, addr.prefixlen, index);
    for (kind, data) in &addr.attrs {
        attr(&mut body, *kind, data);
    }
    let flags = libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_EXCL;
    let sock = socket()?;
    send(&sock, &message(RTM_NEWADDR, flags, &body))?;
    ack(&sock)
}

fn socket() -> Result<OwnedFd> {
    // SAFETY: socket takes integers only.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(Error::last_os_error());
    }
    // SAFETY: socket returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn send(sock: &OwnedFd, msg: &[u8]) -> Result<()> {
    // SAFETY: msg is a valid buffer of its length.
    let n = unsafe { libc::send(sock.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
    if n < 0 {
        return Err(Error::last_os_error());
    }
    Ok(())
}

fn recv(sock: &OwnedFd, buf: &mut [u8]) -> Result<usize> {
    // SAFETY: buf is a valid buffer of its length.
    let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(Error::last_os_error());
    }
    Ok(n as usize)
}

/// The error an NLMSG_ERROR message carries (after its 16-byte header).
fn error_of(msg: &[u8]) -> Error {
    match msg.get(16..20) {
        Some(b) => Error::from_raw_os_error(-i32::from_ne_bytes(word(b, 0))),
        None => Error::other("short netlink error"),
    }
}

/// Reads the acknowledgement of a request.
fn ack(sock: &OwnedFd) -> Result<()> {
    let mut buf = [0u8; 1024];
    let n = recv(sock, &mut buf)?;
    let kind = buf.get(4..6).map(|b| u16::from_ne_bytes([b[0], b[1]]));
    match kind {
        Some(NLMSG_ERROR) if n >= 20 => {
            let e = error_of(&buf[..n]);
            if e.raw_os_error() == Some(0) {
                Ok(())
            } else {
                Err(e)
            }
        }
        _ => Err(Error::other("unexpected netlink answer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded() {
        let mut b = Vec::new();
        attr(&mut b, IFLA_IFNAME, b"ab\0");
        assert_eq!(b.len(), 8);
        assert_eq!(&b[..4], &[7, 0, 3, 0]);
    }

    #[test]
    fn address_payloads() {
        let mut p = ifaddrmsg(libc::AF_INET as u8, 32, 7);
        attr(&mut p, IFA_LOCAL, &[169, 254, 169, 77]);
        attr(&mut p, 3, b"x\0");
        let a = parse_addr(&p, 7).expect("global address of link 7");
        assert_eq!(a.prefixlen, 32);
        assert_eq!(a.attrs, vec![(IFA_LOCAL, vec![169, 254, 169, 77])]);
        assert!(parse_addr(&p, 8).is_none());
        p[3] = 254;
        assert!(parse_addr(&p, 7).is_none(), "host scope is left out");
    }
}
