//! `linux.netDevices` (runtime-spec 1.3): host network interfaces moved
//! into the container's new network namespace under their new names, and
//! moved back (with their old names) when the container is deleted or its
//! create fails, before its namespace goes: a virtual device (veth, ...)
//! would go with the namespace.
//!
//! The move is one RTM_NEWLINK request (IFLA_NET_NS_PID or IFLA_NET_NS_FD
//! with IFLA_IFNAME), so the device is renamed as it arrives and never
//! clashes with a name in the target namespace.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result};

/// One device: its name on the host and in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetDevice {
    /// Name in the runtime's network namespace.
    pub host: String,
    /// Name in the container's.
    pub inside: String,
}

const IFNAMSIZ: usize = 16;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_PID: u16 = 19;
const IFLA_NET_NS_FD: u16 = 28;

/// Why `name` cannot be an interface name, if it cannot.
fn bad_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.len() >= IFNAMSIZ {
        Some("is longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("is . or ..")
    } else if name.contains(['/', ':']) || name.chars().any(char::is_whitespace) {
        Some("holds '/', ':' or white space")
    } else {
        None
    }
}

/// The devices of `spec`, checked: names, a network namespace the
/// container makes, root, and each device present on the host.
pub fn plan(spec: &Spec, config: &Path) -> Result<Vec<NetDevice>> {
    let linux = spec.linux().as_ref();
    let Some(map) = linux.and_then(|l| l.net_devices().as_ref()) else {
        return Ok(Vec::new());
    };
    if map.is_empty() {
        return Ok(Vec::new());
    }
    let invalid = |field: String, message: String| Error::ConfigInvalid {
        path: config.to_path_buf(),
        field,
        message,
    };
    let netns = linux
        .and_then(|l| l.namespaces().as_ref())
        .and_then(|v| v.iter().find(|n| n.typ() == LinuxNamespaceType::Network));
    match netns.map(|n| n.path().as_ref()) {
        None => {
            return Err(invalid(
                "linux.netDevices".into(),
                "needs a network namespace (linux.namespaces)".into(),
            ))
        }
        Some(Some(p)) => {
            return Err(invalid(
                "linux.netDevices".into(),
                format!(
                    "the network namespace is joined by path ({}), which the container does not own: devices move only into one it creates",
                    p.display()
                ),
            ))
        }
        Some(None) => {}
    }
    if crate::lifecycle::rootless() {
        return Err(Error::Unsupported {
            field: "linux.netDevices".into(),
            message: "moving host network devices needs root".into(),
        });
    }
    let mut names: Vec<&String> = map.keys().collect();
    names.sort();
    let mut out: Vec<NetDevice> = Vec::new();
    for host in names {
        let field = format!("linux.netDevices.{host}");
        if let Some(why) = bad_name(host) {
            return Err(invalid(field, format!("device name {host:?} {why}")));
        }
        let inside = map[host]
            .name()
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| host.clone());
        if let Some(why) = bad_name(&inside) {
            return Err(invalid(
                format!("{field}.name"),
                format!("{inside:?} {why}"),
            ));
        }
        if out.iter().any(|d| d.inside == inside) {
            return Err(invalid(
                format!("{field}.name"),
                format!("{inside:?} is given to two devices"),
            ));
        }
        if index_of(host).is_none() {
            return Err(invalid(
                field,
                format!("no network device {host:?} on the host"),
            ));
        }
        out.push(NetDevice {
            host: host.clone(),
            inside,
        });
    }
    Ok(out)
}

/// The devices of a stored spec (for delete); none when it has none or
/// does not parse.
pub fn of_state(state: &rr_state::State) -> Vec<NetDevice> {
    let Some(map) = state.config.spec.pointer("/linux/netDevices") else {
        return Vec::new();
    };
    let Some(map) = map.as_object() else {
        return Vec::new();
    };
    map.iter()
        .map(|(host, d)| NetDevice {
            host: host.clone(),
            inside: d
                .get("name")
                .and_then(|n| n.as_str())
                .filter(|n| !n.is_empty())
                .unwrap_or(host)
                .to_string(),
        })
        .collect()
}

fn index_of(name: &str) -> Option<i32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: c is a valid C string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    i32::try_from(i).ok().filter(|i| *i > 0)
}

/// Runtime side: moves `d` into the network namespace of `init`.
pub fn move_in(d: &NetDevice, init: i32) -> Result<()> {
    let index = index_of(&d.host).ok_or_else(|| Error::ConfigInvalid {
        path: "config.json".into(),
        field: format!("linux.netDevices.{}", d.host),
        message: format!("no network device {:?} on the host", d.host),
    })?;
    let pid = u32::try_from(init).unwrap_or(0).to_ne_bytes();
    set_link(index, IFLA_NET_NS_PID, &pid, &d.inside).map_err(|e| Error::Sys {
        call: format!(
            "moving network device {:?} into the container as {:?} (linux.netDevices)",
            d.host, d.inside
        ),
        source: e,
    })
}

/// The network namespace of `init`, held open: the namespace (and the
/// devices in it) then outlives the init, which may exit on its own when
/// its setup fails.
pub fn hold_netns(init: i32) -> Result<std::fs::File> {
    let p = format!("/proc/{init}/ns/net");
    open(&p).map_err(|e| Error::io(p, e))
}

/// Moves `devs` back from the network namespace `theirs` into the
/// runtime's, under their host names; what fails is returned as warnings
/// (the device stays with the container, and goes with its namespace).
pub fn move_out(devs: &[NetDevice], theirs: &std::fs::File) -> Vec<String> {
    if devs.is_empty() {
        return Vec::new();
    }
    let fail = |e: String| vec![format!("linux.netDevices: moving the devices back: {e}")];
    let host = match open("/proc/self/ns/net") {
        Ok(f) => f,
        Err(e) => return fail(e.to_string()),
    };
    // The request must come from inside the container's namespace, where
    // the device is: a helper joins it.
    let mut pipe = [0; 2];
    // SAFETY: pipe is a valid out array of two ints.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return fail(std::io::Error::last_os_error().to_string());
    }
    // SAFETY: pipe2 returned two new fds that nothing else owns.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(pipe[0]), OwnedFd::from_raw_fd(pipe[1])) };
    // SAFETY: the runtime is single threaded; the child makes system calls
    // and exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return fail(std::io::Error::last_os_error().to_string());
    }
    if pid == 0 {
        drop(rd);
        let report = back_from_inside(devs, theirs.as_raw_fd(), host.as_raw_fd());
        // SAFETY: writes a buffer we own to our pipe.
        unsafe { libc::write(wr.as_raw_fd(), report.as_ptr().cast(), report.len()) };
        // SAFETY: leaves the forked child without the parent's exit handlers.
        unsafe { libc::_exit(0) }
    }
    drop(wr);
    let mut text = String::new();
    let _ = std::io::Read::read_to_string(&mut std::fs::File::from(rd), &mut text);
    let mut st = 0;
    // SAFETY: pid is our child.
    unsafe { libc::waitpid(pid, &mut st, 0) };
    text.lines().map(|l| l.to_string()).collect()
}

/// In the helper: joins `theirs` and sends each device to `host`. The
/// failures, one line each.
fn back_from_inside(devs: &[NetDevice], theirs: RawFd, host: RawFd) -> String {
    // SAFETY: theirs is an open namespace fd.
    if unsafe { libc::setns(theirs, libc::CLONE_NEWNET) } != 0 {
        return format!(
            "linux.netDevices: joining the container's network namespace: {}\n",
            std::io::Error::last_os_error()
        );
    }
    let mut out = String::new();
    let fd = u32::try_from(host).unwrap_or(0).to_ne_bytes();
    for d in devs {
        let r = match index_of(&d.inside) {
            Some(i) => set_link(i, IFLA_NET_NS_FD, &fd, &d.host),
            None => Err(std::io::Error::from_raw_os_error(libc::ENODEV)),
        };
        if let Err(e) = r {
            out.push_str(&format!(
                "linux.netDevices.{}: moving {:?} back to the host: {e}\n",
                d.host, d.inside
            ));
        }
    }
    out
}

fn open(p: &str) -> std::io::Result<std::fs::File> {
    std::fs::File::open(p)
}

/// Appends a netlink attribute, padded to 4 bytes.
fn attr(buf: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&u16::try_from(len).unwrap_or(0).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(data);
    buf.resize(buf.len() + (4 - len % 4) % 4, 0);
}

/// RTM_NEWLINK on the link `index`: the namespace attribute `ns_kind`
/// (`ns` its u32) and the new name, and the kernel's answer.
fn set_link(index: i32, ns_kind: u16, ns: &[u8], name: &str) -> std::io::Result<()> {
    let mut body = Vec::with_capacity(64);
    // struct ifinfomsg: family, pad, type, index, flags, change.
    body.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
    body.extend_from_slice(&index.to_ne_bytes());
    body.extend_from_slice(&[0; 8]);
    attr(&mut body, ns_kind, ns);
    let mut cname = name.as_bytes().to_vec();
    cname.push(0);
    attr(&mut body, IFLA_IFNAME, &cname);
    let mut msg = Vec::with_capacity(16 + body.len());
    let len = u32::try_from(16 + body.len()).unwrap_or(0);
    msg.extend_from_slice(&len.to_ne_bytes());
    msg.extend_from_slice(&libc::RTM_NEWLINK.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
    msg.extend_from_slice(&flags.to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&body);
    request(&msg)
}

/// Sends one netlink request and reads its acknowledgement.
fn request(msg: &[u8]) -> std::io::Result<()> {
    // SAFETY: socket takes integers only.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: socket returned a new fd that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: msg is a valid buffer of its length.
    let n = unsafe { libc::send(sock.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut buf = [0u8; 1024];
    // SAFETY: buf is a valid buffer of its length.
    let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let n = n as usize;
    // nlmsghdr (16 bytes) of type NLMSG_ERROR, then the error (an i32,
    // 0 for an acknowledgement).
    let kind = buf.get(4..6).map(|b| u16::from_ne_bytes([b[0], b[1]]));
    let code = buf
        .get(16..20)
        .filter(|_| n >= 20)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
    match (kind, code) {
        (Some(k), Some(0)) if k == libc::NLMSG_ERROR as u16 => Ok(()),
        (Some(k), Some(e)) if k == libc::NLMSG_ERROR as u16 => {
            Err(std::io::Error::from_raw_os_error(-e))
        }
        _ => Err(std::io::Error::other("unexpected netlink answer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(bad_name("eth0").is_none());
        assert!(bad_name("").is_some());
        assert!(bad_name("a/b").is_some());
        assert!(bad_name("a b").is_some());
        assert!(bad_name("0123456789abcdef").is_some());
        assert!(bad_name("0123456789abcde").is_none());
        assert!(bad_name("..").is_some());
    }

    #[test]
    fn attributes_are_padded() {
        let mut b = Vec::new();
        attr(&mut b, IFLA_IFNAME, b"ab\0");
        assert_eq!(b.len(), 8);
        assert_eq!(&b[..4], &[7, 0, 3, 0]);
    }
}
