//! `linux.netDevices` (runtime-spec 1.3): host network interfaces moved
//! into the container's network namespace under their new names, with
//! their global addresses (the kernel drops addresses when a link changes
//! namespace; MTU and MAC address go with the link).
//!
//! Into a network namespace the container makes, the devices are moved
//! back (under their host names) when the container is deleted, before
//! its namespace goes: a virtual device (veth, ...) would go with it. Into
//! one joined by path they stay when the container goes, as with runc: that
//! namespace's owner decides about them. A create that fails gives them
//! back in both cases.
//!
//! Runtime side: rrc does this at create and delete, from the host (a
//! helper it forks joins the container's network namespace for the
//! requests that must be made there); nothing here runs in the init. The
//! requests themselves are in [`crate::netlink`].

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result};
use crate::netlink::{self, index_of};

/// One device: its name on the host and in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetDevice {
    /// Name in the runtime's network namespace.
    pub host: String,
    /// Name in the container's.
    pub inside: String,
}

/// The devices of a spec and where they go.
#[derive(Debug, Default)]
pub struct Plan {
    /// The devices, by host name.
    pub devices: Vec<NetDevice>,
    /// The network namespace joined by path, if it is one.
    pub joined: Option<PathBuf>,
}

const IFNAMSIZ: usize = 16;
/// NS_GET_NSTYPE of linux/nsfs.h.
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

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

fn invalid(config: &Path, field: String, message: String) -> Error {
    Error::ConfigInvalid {
        path: config.to_path_buf(),
        field,
        message,
    }
}

/// The devices of `spec`, checked: names, a network namespace (made, or
/// joined by a path that is a network namespace other than the runtime's
/// own), root, and each device present on the host.
pub fn plan(spec: &Spec, config: &Path) -> Result<Plan> {
    let linux = spec.linux().as_ref();
    let Some(map) = linux.and_then(|l| l.net_devices().as_ref()) else {
        return Ok(Plan::default());
    };
    if map.is_empty() {
        return Ok(Plan::default());
    }
    let field = || "linux.netDevices".to_string();
    let netns = linux
        .and_then(|l| l.namespaces().as_ref())
        .and_then(|v| v.iter().find(|n| n.typ() == LinuxNamespaceType::Network))
        .ok_or_else(|| {
            invalid(
                config,
                field(),
                "needs a network namespace (linux.namespaces)".into(),
            )
        })?;
    let joined = netns.path().clone();
    if let Some(p) = &joined {
        check_joined(p).map_err(|m| invalid(config, field(), m))?;
    }
    if crate::sys::rootless() {
        return Err(Error::Unsupported {
            field: field(),
            message: "moving host network devices needs root".into(),
        });
    }
    let mut names: Vec<&String> = map.keys().collect();
    names.sort();
    let mut devices: Vec<NetDevice> = Vec::new();
    for host in names {
        let field = format!("linux.netDevices.{host}");
        if let Some(why) = bad_name(host) {
            return Err(invalid(
                config,
                field,
                format!("device name {host:?} {why}"),
            ));
        }
        let inside = map[host]
            .name()
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| host.clone());
        if let Some(why) = bad_name(&inside) {
            return Err(invalid(
                config,
                format!("{field}.name"),
                format!("{inside:?} {why}"),
            ));
        }
        if devices.iter().any(|d| d.inside == inside) {
            return Err(invalid(
                config,
                format!("{field}.name"),
                format!("{inside:?} is given to two devices"),
            ));
        }
        if index_of(host).is_none() {
            return Err(invalid(
                config,
                field,
                format!("no network device {host:?} on the host"),
            ));
        }
        devices.push(NetDevice {
            host: host.clone(),
            inside,
        });
    }
    Ok(Plan { devices, joined })
}

/// A network namespace joined by path must be one, and not the runtime's
/// own (the host's): the devices would not leave the host.
fn check_joined(p: &Path) -> std::result::Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let f = File::open(p).map_err(|e| format!("network namespace {}: {e}", p.display()))?;
    // SAFETY: an ioctl without argument on an open fd.
    let kind = unsafe { libc::ioctl(f.as_raw_fd(), NS_GET_NSTYPE) };
    if kind != libc::CLONE_NEWNET {
        return Err(format!("{} is not a network namespace", p.display()));
    }
    let (Ok(theirs), Ok(ours)) = (f.metadata(), std::fs::metadata("/proc/self/ns/net")) else {
        return Ok(());
    };
    if (theirs.dev(), theirs.ino()) == (ours.dev(), ours.ino()) {
        return Err(format!(
            "the network namespace joined by path ({}) is the runtime's own, not the container's: the devices would stay on the host",
            p.display()
        ));
    }
    Ok(())
}

/// The namespace the devices go to, held open: a namespace the init made
/// then outlives the init, which may exit on its own when its setup fails.
pub fn target(plan: &Plan, init: i32) -> Result<File> {
    let p = plan
        .joined
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("/proc/{init}/ns/net")));
    File::open(&p).map_err(|e| Error::io(p, e))
}

/// The devices of a stored spec that `delete` moves back: those of a
/// network namespace the container made.
pub fn of_state(state: &rr_state::State) -> Vec<NetDevice> {
    let spec = &state.config.spec;
    let joined = spec
        .pointer("/linux/namespaces")
        .and_then(|n| n.as_array())
        .is_some_and(|v| {
            v.iter()
                .any(|n| n["type"] == "network" && n.get("path").is_some_and(|p| !p.is_null()))
        });
    let Some(map) = spec
        .pointer("/linux/netDevices")
        .and_then(|m| m.as_object())
    else {
        return Vec::new();
    };
    if joined {
        return Vec::new();
    }
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

/// Runtime side: moves `d` into the namespace `target`, with its global
/// addresses.
pub fn move_in(d: &NetDevice, target: &File) -> Result<()> {
    let call = |what: &str| {
        format!(
            "{what} network device {:?} (container name {:?}, linux.netDevices)",
            d.host, d.inside
        )
    };
    let index = index_of(&d.host).ok_or_else(|| Error::ConfigInvalid {
        path: "config.json".into(),
        field: format!("linux.netDevices.{}", d.host),
        message: format!("no network device {:?} on the host", d.host),
    })?;
    let sys = |what: &str| {
        let call = call(what);
        move |source| Error::Sys { call, source }
    };
    let addrs = netlink::global_addrs(index).map_err(sys("listing the addresses of"))?;
    netlink::move_link(index, target.as_raw_fd(), &d.inside).map_err(sys("moving"))?;
    if addrs.is_empty() {
        return Ok(());
    }
    let failed = in_netns(target, || readd(&d.inside, &addrs));
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Init(format!("{}: {failed}", call("addresses of"))))
    }
}

/// Adds `addrs` to link `name` of this namespace; the error in words, or
/// nothing.
fn readd(name: &str, addrs: &[netlink::Addr]) -> String {
    let Some(index) = index_of(name) else {
        return format!("no link {name:?} after the move");
    };
    for a in addrs {
        if let Err(e) = netlink::add_addr(index, a) {
            return format!("adding an address to {name:?}: {e}");
        }
    }
    String::new()
}

/// Moves `devs` back from the namespace `theirs` into the runtime's, under
/// their host names and with their global addresses; what fails is
/// returned as warnings.
pub fn move_out(devs: &[NetDevice], theirs: &File) -> Vec<String> {
    if devs.is_empty() {
        return Vec::new();
    }
    let host = match File::open("/proc/self/ns/net") {
        Ok(f) => f,
        Err(e) => return vec![format!("linux.netDevices: /proc/self/ns/net: {e}")],
    };
    // Each request must come from the namespace the device is in: a helper
    // joins the container's, then the host's again for the addresses.
    let report = in_netns(theirs, || {
        let mut out = String::new();
        let mut moved = Vec::new();
        for d in devs {
            let r = index_of(&d.inside)
                .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENODEV))
                .and_then(|i| {
                    let addrs = netlink::global_addrs(i)?;
                    netlink::move_link(i, host.as_raw_fd(), &d.host)?;
                    Ok(addrs)
                });
            match r {
                Ok(addrs) => moved.push((d, addrs)),
                Err(e) => out.push_str(&format!(
                    "linux.netDevices.{}: moving {:?} back to the host: {e}\n",
                    d.host, d.inside
                )),
            }
        }
        // SAFETY: host is an open namespace fd.
        if unsafe { libc::setns(host.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return out;
        }
        for (d, addrs) in moved {
            let e = readd(&d.host, &addrs);
            if !e.is_empty() {
                out.push_str(&format!("linux.netDevices.{}: {e}\n", d.host));
            }
        }
        out
    });
    report.lines().map(|l| l.to_string()).collect()
}

/// Runs `f` in a helper forked into the network namespace `ns`; its text.
fn in_netns(ns: &File, f: impl FnOnce() -> String) -> String {
    let mut pipe = [0; 2];
    // SAFETY: pipe is a valid out array of two ints.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return format!("pipe: {}\n", std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two new fds that nothing else owns.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(pipe[0]), OwnedFd::from_raw_fd(pipe[1])) };
    // SAFETY: the runtime is single threaded; the child makes system calls
    // and exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return format!("fork: {}\n", std::io::Error::last_os_error());
    }
    if pid == 0 {
        drop(rd);
        // SAFETY: ns is an open namespace fd.
        let report = if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            format!(
                "joining the container's network namespace: {}\n",
                std::io::Error::last_os_error()
            )
        } else {
            f()
        };
        // SAFETY: writes a buffer we own to our pipe.
        unsafe { libc::write(wr.as_raw_fd(), report.as_ptr().cast(), report.len()) };
        // SAFETY: leaves the forked child without the parent's exit handlers.
        unsafe { libc::_exit(0) }
    }
    drop(wr);
    let mut text = String::new();
    let _ = std::io::Read::read_to_string(&mut File::from(rd), &mut text);
    let mut st = 0;
    // SAFETY: pid is our child.
    unsafe { libc::waitpid(pid, &mut st, 0) };
    text
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
}
