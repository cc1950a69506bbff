//! The link between containers and rr-cgroups: which cgroup a spec asks
//! for (cgroupfs, or a systemd unit with `--systemd-cgroup`), the device
//! rules a container always needs, rebuilding the manager from
//! state.json, and the cgroups an `exec`'d process joins.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources, Spec};
use rr_cgroups::Manager;
use rr_state::State;

use crate::error::{Error, Result};

/// Device nodes every container may use (and create), whatever its spec's
/// device rules deny: `(type, major, minor, access)`, `None` for any number.
/// The list is the usual runtime set: any mknod, the null/zero/full/random
/// devices, the tty, ptmx and pty slaves, and tun.
const DEFAULT_ALLOWED: &[(LinuxDeviceType, Option<i64>, Option<i64>, &str)] = &[
    (LinuxDeviceType::C, None, None, "m"),
    (LinuxDeviceType::B, None, None, "m"),
    (LinuxDeviceType::C, Some(1), Some(3), "rwm"),
    (LinuxDeviceType::C, Some(1), Some(5), "rwm"),
    (LinuxDeviceType::C, Some(1), Some(7), "rwm"),
    (LinuxDeviceType::C, Some(1), Some(8), "rwm"),
    (LinuxDeviceType::C, Some(1), Some(9), "rwm"),
    (LinuxDeviceType::C, Some(5), Some(0), "rwm"),
    (LinuxDeviceType::C, Some(5), Some(2), "rwm"),
    (LinuxDeviceType::C, Some(136), None, "rwm"),
    (LinuxDeviceType::C, Some(10), Some(200), "rwm"),
];

fn rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow);
    r.set_typ(Some(typ));
    r.set_major(major);
    r.set_minor(minor);
    r.set_access(Some(access.to_string()));
    r
}

/// The resources to write at create: the spec's, with the default
/// devices allowed after the spec's device rules (as runc appends them), so
/// that they stay usable after a deny-all rule. The devices of
/// `linux.devices` get no rule of their own: the spec's rules decide, in
/// their order, the last match winning (runc does the same; engines list
/// an allow rule for each device they add). A spec without device rules
/// keeps the parent's (unrestricted) device access.
pub(crate) fn create_resources(spec: &Spec) -> LinuxResources {
    let linux = spec.linux().as_ref();
    let mut res = linux
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    if let Some(rules) = res.devices_mut() {
        for (t, maj, min, acc) in DEFAULT_ALLOWED {
            rules.push(rule(true, *t, *maj, *min, acc));
        }
    }
    res
}

fn cgroups_path(spec: &Spec) -> Option<String> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.to_string_lossy().into_owned())
}

/// The container's cgroup manager as the spec places it.
pub(crate) fn manager_for_spec(spec: &Spec, id: &str) -> Result<Manager> {
    Ok(Manager::new(cgroups_path(spec).as_deref(), id)?)
}

/// The key in state.json's `config` naming the systemd unit of a
/// container created with `--systemd-cgroup`: `{"unit": ..., "user": ...}`.
#[cfg(feature = "systemd")]
pub(crate) const SYSTEMD_KEY: &str = "rr_systemd_unit";

/// The container's manager for create: a systemd unit with
/// `--systemd-cgroup` (the user's manager when rootless), else cgroupfs.
#[cfg(feature = "systemd")]
pub(crate) fn manager_for_driver(systemd: bool, spec: &Spec, id: &str) -> Result<Manager> {
    if !systemd {
        return manager_for_spec(spec, id);
    }
    let user = crate::sys::rootless();
    Ok(Manager::systemd(cgroups_path(spec).as_deref(), id, user)?)
}

#[cfg(not(feature = "systemd"))]
pub(crate) fn manager_for_driver(systemd: bool, spec: &Spec, id: &str) -> Result<Manager> {
    if systemd {
        return Err(Error::Unsupported {
            field: "--systemd-cgroup".into(),
            message: "this rrc was built without the systemd cgroup driver".into(),
        });
    }
    manager_for_spec(spec, id)
}

/// Whether `--systemd-cgroup` can work here: the driver is built in, the
/// host booted with systemd (sd_booted's test) and the bus socket is
/// there: the system bus, or with `user` the caller's session bus.
pub(crate) fn systemd_available(user: bool) -> bool {
    #[cfg(feature = "systemd")]
    {
        use rr_cgroups::systemd::bus;
        let socket = if user {
            bus::user_socket().ok()
        } else {
            Some(bus::system_socket())
        };
        std::path::Path::new("/run/systemd/system").is_dir() && socket.is_some_and(|s| s.exists())
    }
    #[cfg(not(feature = "systemd"))]
    {
        let _ = user;
        false
    }
}

/// `config` with the marks state.json keeps of the container's cgroups:
/// shared with other processes, and the systemd unit they are.
pub(crate) fn mark(
    mut config: rr_state::StoredConfig,
    shared: bool,
    cg: Option<&Manager>,
) -> rr_state::StoredConfig {
    if shared {
        config
            .extra
            .insert(SHARED_KEY.into(), serde_json::Value::Bool(true));
    }
    #[cfg(feature = "systemd")]
    if let Some(Manager::Systemd(m)) = cg {
        config.extra.insert(
            SYSTEMD_KEY.into(),
            serde_json::json!({"unit": m.unit(), "user": m.is_user()}),
        );
    }
    #[cfg(not(feature = "systemd"))]
    let _ = cg;
    config
}

/// As [`manager_for_spec`], refusing cgroups that already hold processes:
/// the container's cgroups are killed and removed when it goes, which must
/// never reach processes that are not the container's (a `cgroupsPath` of
/// `/` would otherwise mean every process on the host).
pub(crate) fn unused_manager_for_spec(spec: &Spec, id: &str) -> Result<Manager> {
    let cg = manager_for_spec(spec, id)?;
    let pids = cg.pids()?;
    if !pids.is_empty() {
        // Name a directory that really has processes of its own.
        let paths = cg.paths();
        let busy = paths.values().find(|p| {
            std::fs::read_to_string(std::path::Path::new(p).join("cgroup.procs"))
                .is_ok_and(|t| !t.trim().is_empty())
        });
        let where_ = busy.or(paths.values().next()).cloned().unwrap_or_default();
        return Err(Error::Unsupported {
            field: "linux.cgroupsPath".into(),
            message: format!(
                "cgroup {where_} already has processes ({} of them, e.g. pid {}); a container needs a cgroup of its own",
                pids.len(),
                pids[0]
            ),
        });
    }
    Ok(cg)
}

/// A child of rrc that keeps a systemd scope alive until the restored
/// tree is in it: systemd starts a scope only with a pid in it, and a
/// restore has none before CRIU (which joins the scope's cgroup) runs.
/// Killed and reaped on drop; it dies with rrc too.
pub(crate) struct UnitHold(Option<i32>);

/// Starts `cg`'s systemd unit around a placeholder process; nothing for
/// cgroupfs managers, whose directories need no process.
pub(crate) fn hold_unit(cg: &Manager) -> Result<UnitHold> {
    #[cfg(feature = "systemd")]
    if let Manager::Systemd(_) = cg {
        let hold = UnitHold(Some(placeholder()?));
        if let Some(pid) = hold.0 {
            cg.apply(pid)?;
        }
        return Ok(hold);
    }
    let _ = cg;
    Ok(UnitHold(None))
}

#[cfg(feature = "systemd")]
fn placeholder() -> Result<i32> {
    // SAFETY: getpid takes nothing.
    let parent = unsafe { libc::getpid() };
    // SAFETY: rrc is single-threaded here (nothing started a thread yet),
    // and the child only makes async-signal-safe calls.
    match unsafe { libc::fork() } {
        -1 => Err(Error::last_os(
            "fork (the placeholder of the systemd scope)",
        )),
        // SAFETY: prctl, getppid, pause and _exit with plain values.
        0 => unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != parent {
                libc::_exit(0);
            }
            loop {
                libc::pause();
            }
        },
        pid => Ok(pid),
    }
}

impl Drop for UnitHold {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            // SAFETY: kill and waitpid with plain integers on our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                let mut st = 0;
                libc::waitpid(pid, &mut st, 0);
            }
        }
    }
}

/// The key in state.json's `config` that marks cgroups which already held
/// processes of others when the container was created.
pub(crate) const SHARED_KEY: &str = "rr_cgroup_shared";

/// The container's cgroup manager for create, with the number of
/// processes its cgroups already hold. A frozen cgroup is refused before
/// anything is made: the init would freeze on joining it, and create
/// would wait for it forever. runc refuses it with the same words.
pub(crate) fn manager_for_create(systemd: bool, spec: &Spec, id: &str) -> Result<(Manager, usize)> {
    let cg = manager_for_driver(systemd, spec, id)?;
    if let Some((file, value)) = frozen_at(&cg) {
        return Err(Error::Init(format!(
            "container's cgroup unexpectedly frozen ({} is {value})",
            file.display()
        )));
    }
    let busy = cg.pids()?.len();
    Ok((cg, busy))
}

/// The freezer file that says the container's cgroup is frozen, and what
/// it says: v1's freezer.state, or cgroup.events of the v2 cgroup (also
/// the unified one of a hybrid host, whose freezer works too). A cgroup not
/// made yet is as frozen as its nearest existing ancestor, which it would
/// inherit.
fn frozen_at(cg: &Manager) -> Option<(std::path::PathBuf, String)> {
    let paths = cg.paths();
    [("freezer", "freezer.state"), ("", "cgroup.events")]
        .into_iter()
        .filter_map(|(key, file)| Some((paths.get(key)?, file)))
        .find_map(|(dir, file)| frozen_file(std::path::Path::new(dir), file))
}

fn frozen_file(dir: &std::path::Path, file: &str) -> Option<(std::path::PathBuf, String)> {
    let f = dir.ancestors().map(|a| a.join(file)).find(|f| f.exists())?;
    let text = std::fs::read_to_string(&f).ok()?;
    let value = if file == "freezer.state" {
        text.trim().to_string()
    } else {
        text.lines()
            .find(|l| l.starts_with("frozen "))
            .unwrap_or_default()
            .to_string()
    };
    matches!(value.as_str(), "FROZEN" | "FREEZING" | "frozen 1").then_some((f, value))
}

/// Whether state.json marks the container's cgroups as shared.
pub(crate) fn is_shared(state: &State) -> bool {
    state.config.extra.get(SHARED_KEY) == Some(&serde_json::Value::Bool(true))
}

/// Ends the container's use of its cgroups: kills what is left in them and
/// removes them, or, when they are shared with processes that are not the
/// container's, removes only what is empty and kills nothing. Returns
/// warnings naming the directories left.
pub(crate) fn teardown(cg: &Manager, shared: bool) -> Result<Vec<String>> {
    if !shared {
        cg.destroy()?;
        return Ok(Vec::new());
    }
    Ok(cg
        .release()?
        .iter()
        .map(|d| {
            format!(
                "cgroup {} still holds processes that are not the container's: left in place",
                d.display()
            )
        })
        .collect())
}

/// The manager for the cgroups recorded in state.json, if any.
pub(crate) fn manager_of(state: &State) -> Result<Option<Manager>> {
    if state.cgroup_paths.is_empty() {
        return Ok(None);
    }
    #[cfg(feature = "systemd")]
    if let Some(unit) = state.config.extra.get(SYSTEMD_KEY) {
        if let Some(name) = unit.get("unit").and_then(|u| u.as_str()) {
            let user = unit.get("user").and_then(|u| u.as_bool()).unwrap_or(false);
            let m = rr_cgroups::systemd::Manager::existing(name, user, &state.cgroup_paths)?;
            return Ok(Some(Manager::Systemd(Box::new(m))));
        }
    }
    // Without the driver, a unit's cgroup is still worked on through its files.
    Ok(Some(Manager::from_paths(&state.cgroup_paths)?))
}

/// Whether `e` is the kernel refusing access to a cgroup file.
pub(crate) fn denied(e: &Error) -> bool {
    let Error::Cgroup(c) = e else { return false };
    let source = match c {
        rr_cgroups::Error::Io { source, .. } | rr_cgroups::Error::Write { source, .. } => source,
        _ => return false,
    };
    matches!(
        source.kind(),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
    ) || source.raw_os_error() == Some(libc::EPERM)
}

/// Whether the spec sets any resource limit (device rules aside, which a
/// rootless container cannot enforce anyway).
pub(crate) fn wants_limits(spec: &Spec) -> bool {
    let Some(r) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) else {
        return false;
    };
    let mut r = r.clone();
    r.set_devices(None);
    r != Default::default()
}

/// Moves `pid` into each of `cgroups`.
pub(crate) fn join_cgroups(cgroups: &[PathBuf], pid: i32) -> Result<()> {
    for path in cgroups {
        let procs = path.join("cgroup.procs");
        std::fs::write(&procs, pid.to_string()).map_err(|e| Error::io(&procs, e))?;
    }
    Ok(())
}

/// The cgroups an exec'd process joins: the container's, or with
/// `--cgroup` sub-cgroups of them. As runc: a value without a controller
/// applies to every hierarchy (and is the only form cgroup v2 has); with
/// controllers, to those only, the others staying at the container's.
/// A container cgroup that is gone is skipped; a named sub-cgroup must exist.
pub(crate) fn exec_cgroups(state: &State, args: &[String]) -> Result<Vec<PathBuf>> {
    let subs = sub_cgroup_paths(args)?;
    let mut out = Vec::new();
    for (ctrl, base) in &state.cgroup_paths {
        let base = Path::new(base);
        let sub = subs.get("").or_else(|| subs.get(ctrl.as_str()));
        match sub {
            Some(sub) => out.push(sub_cgroup(base, sub)?),
            None if base.exists() => out.push(base.to_path_buf()),
            None => {}
        }
    }
    if let Some(ctrl) = subs
        .keys()
        .find(|k| !k.is_empty() && !state.cgroup_paths.contains_key(*k))
    {
        return Err(Error::InvalidFlag {
            flag: "--cgroup".into(),
            message: format!("unknown controller {ctrl}: the container has no cgroup for it"),
        });
    }
    Ok(out)
}

/// `base/sub`, refused when `sub` climbs out of `base`.
fn sub_cgroup(base: &Path, sub: &str) -> Result<PathBuf> {
    let mut p = base.to_path_buf();
    for c in Path::new(sub).components() {
        match c {
            std::path::Component::Normal(n) => p.push(n),
            std::path::Component::ParentDir if p != base => {
                p.pop();
            }
            std::path::Component::ParentDir => {
                return Err(Error::InvalidFlag {
                    flag: "--cgroup".into(),
                    message: format!("{sub} is not a sub cgroup path of {}", base.display()),
                })
            }
            _ => {}
        }
    }
    Ok(p)
}

/// Parses `--cgroup` values as runc does into controller -> path (the key
/// `""` for a path that applies to every controller).
fn sub_cgroup_paths(args: &[String]) -> Result<std::collections::BTreeMap<String, String>> {
    let bad = |m: String| Error::InvalidFlag {
        flag: "--cgroup".into(),
        message: m,
    };
    let mut out = std::collections::BTreeMap::new();
    for a in args {
        match a.split_once(':') {
            Some((ctrls, path)) => {
                if path.contains(':') {
                    return Err(bad(format!("invalid --cgroup argument: {a}")));
                }
                for c in ctrls.split(',') {
                    if c.is_empty() {
                        return Err(bad(format!(
                            "invalid --cgroup argument: {a} (empty <controller> prefix)"
                        )));
                    }
                    if out.insert(c.to_string(), path.to_string()).is_some() {
                        return Err(bad(format!(
                            "invalid --cgroup argument(s): controller {c} specified multiple times"
                        )));
                    }
                }
            }
            None if args.len() != 1 => {
                return Err(bad(format!(
                    "invalid --cgroup argument: {a} (missing <controller>: prefix)"
                )))
            }
            None => {
                out.insert(String::new(), a.clone());
            }
        }
    }
    Ok(out)
}

/// Whether the container's cgroup is frozen (v1 freezer or v2 cgroup.freeze).
pub(crate) fn is_frozen(state: &State) -> bool {
    state.cgroup_paths.iter().any(|(k, p)| {
        let p = Path::new(p);
        if k == "freezer" {
            std::fs::read_to_string(p.join("freezer.state"))
                .map(|s| s.trim() != "THAWED")
                .unwrap_or(false)
        } else if k.is_empty() {
            std::fs::read_to_string(p.join("cgroup.freeze"))
                .map(|s| s.trim() == "1")
                .unwrap_or(false)
        } else {
            false
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    /// The spec's deny of a device it also lists in linux.devices wins:
    /// nothing allows it again after it, in the v1 rule list or in the v2
    /// program made from the same list.
    #[test]
    fn spec_deny_of_a_listed_device_stays() {
        let s = spec(
            r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
            "linux":{"resources":{"devices":[{"allow":false,"access":"rwm"},
                {"allow":true,"type":"c","major":1,"minor":11,"access":"rwm"},
                {"allow":false,"type":"c","major":1,"minor":11,"access":"rwm"}]},
            "devices":[{"path":"/dev/kmsg","type":"c","major":1,"minor":11},
                       {"path":"/dev/fuse","type":"c","major":10,"minor":229}]}}"#,
        );
        let r = create_resources(&s);
        let d = r.devices().as_ref().unwrap();
        assert_eq!(d.len(), 3 + DEFAULT_ALLOWED.len());
        assert!(!d[0].allow() && !d[2].allow());
        let after_deny = &d[3..];
        assert!(
            !after_deny.iter().any(|x| x.allow()
                && matches!(x.major(), Some(1) | Some(10))
                && matches!(x.minor(), Some(11) | Some(229))),
            "{after_deny:?}"
        );
        let rules = rr_cgroups::devices::DeviceRule::from_oci_list(d).unwrap();
        let lines: Vec<String> = rules
            .iter()
            .map(|r| format!("{} {}", r.v1_file(), r.v1_line()))
            .collect();
        let deny = lines
            .iter()
            .rposition(|l| l == "devices.deny c 1:11 rwm")
            .unwrap();
        assert!(
            !lines[deny + 1..].iter().any(|l| l.contains(" 1:11 ")),
            "{lines:?}"
        );
        use rr_cgroups::bpf::{device_program, interpret};
        use rr_cgroups::devices::access::{READ, WRITE};
        let prog = device_program(&rules);
        const CHAR: u32 = 2;
        assert_eq!(
            interpret(&prog, CHAR, READ, 1, 11),
            Some(0),
            "kmsg read allowed"
        );
        assert_eq!(
            interpret(&prog, CHAR, WRITE, 1, 11),
            Some(0),
            "kmsg write allowed"
        );
        assert_eq!(
            interpret(&prog, CHAR, READ, 10, 229),
            Some(0),
            "fuse allowed"
        );
        assert_eq!(
            interpret(&prog, CHAR, READ | WRITE, 1, 3),
            Some(1),
            "null denied"
        );
    }

    #[test]
    fn no_device_rules_stay_none() {
        let s = spec(
            r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
            "linux":{"resources":{"pids":{"limit":5}}}}"#,
        );
        let r = create_resources(&s);
        assert!(r.devices().is_none());
        assert_eq!(r.pids().as_ref().map(|p| p.limit()), Some(5));
    }

    #[test]
    fn cgroup_flags_parse_as_runc() {
        let m = |a: &[&str]| sub_cgroup_paths(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let v = m(&["sub"]).expect("v2 form");
        assert_eq!(v.get("").map(String::as_str), Some("sub"));
        let v = m(&["cpu,memory:a", "pids:b"]).expect("v1 form");
        assert_eq!(v.get("memory").map(String::as_str), Some("a"));
        assert_eq!(v.get("pids").map(String::as_str), Some("b"));
        assert!(m(&["a", "b"]).is_err(), "two bare paths");
        assert!(m(&[":a"]).is_err(), "empty controller");
        assert!(m(&["cpu:a", "cpu:b"]).is_err(), "controller twice");
        assert!(m(&["cpu:a:b"]).is_err(), "two colons");
    }

    #[test]
    fn sub_cgroups_stay_inside() {
        let base = Path::new("/sys/fs/cgroup/pids/c1");
        assert_eq!(sub_cgroup(base, "x/y").ok(), Some(base.join("x/y")));
        assert_eq!(sub_cgroup(base, "/x").ok(), Some(base.join("x")));
        assert_eq!(sub_cgroup(base, "x/../y").ok(), Some(base.join("y")));
        assert!(sub_cgroup(base, "../c2").is_err());
        assert!(sub_cgroup(base, "x/../../c2").is_err());
    }
}
