//! The container's confinement beyond namespaces and capabilities: seccomp,
//! sysctls, AppArmor and SELinux labels, and the hooks that run during
//! create and start.
//!
//! [`Confinement::prepare`] checks all of it against the spec and the host
//! in the runtime, before anything is created; the init then applies the
//! parts at their points (see the methods) and the runtime serves the
//! init's request to run the runtime-namespace hooks.

use std::os::fd::RawFd;
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{Hook, LinuxNamespaceType, Spec};

use crate::error::{Error, Result};
use crate::init::hooks::{self, HookState, Kind};
use crate::sync::{self, InitReport};
use rr_seccomp as seccomp;

/// Everything the init applies besides rootfs, user and capabilities.
#[derive(Debug, Clone, Default)]
pub struct Confinement {
    /// The compiled seccomp filter.
    pub seccomp: Option<seccomp::Filter>,
    /// `(path under /proc/sys, value)` of each sysctl.
    pub sysctls: Vec<(PathBuf, String)>,
    /// The AppArmor profile to exec into.
    pub apparmor: Option<String>,
    /// The SELinux label of the process.
    pub selinux: Option<String>,
    /// What hooks are told.
    pub hook_state: HookState,
    /// `linux.personality` as personality(2) takes it.
    pub personality: Option<libc::c_ulong>,
    /// `linux.memoryPolicy` as set_mempolicy(2) takes it.
    pub mempolicy: Option<crate::init::mempolicy::MemPolicy>,
    /// prestart then createRuntime hooks (run by the runtime).
    pub runtime_hooks: Vec<(Kind, Hook)>,
    /// createContainer hooks.
    pub create_container: Vec<Hook>,
    /// startContainer hooks.
    pub start_container: Vec<Hook>,
    /// What was skipped (unknown seccomp syscalls), for the runtime's log.
    pub warnings: Vec<String>,
    /// The spec's process environment, for createContainer hooks without
    /// their own.
    pub process_env: Vec<String>,
}

fn invalid(field: &str, message: impl Into<String>) -> Error {
    Error::ConfigInvalid {
        path: "config.json".into(),
        field: field.into(),
        message: message.into(),
    }
}

impl Confinement {
    /// Checks and compiles the confinement of `spec` for container `id`.
    /// Warnings (seccomp parts skipped) go to stderr.
    pub fn prepare(id: &str, bundle: &Path, spec: &Spec) -> Result<Confinement> {
        let linux = spec.linux().as_ref();
        let process = spec.process().as_ref();
        let mut c = Confinement {
            hook_state: HookState::new(id, bundle, spec),
            ..Default::default()
        };
        if let Some(s) = linux.and_then(|l| l.seccomp().as_ref()) {
            let (filter, warnings) = seccomp::build(s)?;
            c.warnings = warnings;
            filter.check_kernel()?;
            c.seccomp = Some(filter);
        }
        let namespaces: Vec<LinuxNamespaceType> = linux
            .and_then(|l| l.namespaces().as_ref())
            .map(|v| v.iter().map(|n| n.typ()).collect())
            .unwrap_or_default();
        if let Some(map) = linux.and_then(|l| l.sysctl().as_ref()) {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for k in keys {
                let path = sysctl_path(k, &namespaces)?;
                c.sysctls.push((path, map[k].clone()));
            }
        }
        if let Some(p) = process
            .and_then(|p| p.apparmor_profile().as_ref())
            .filter(|p| !p.is_empty())
        {
            if !apparmor_enabled() {
                return Err(invalid(
                    "process.apparmorProfile",
                    format!("profile {p:?} requested but AppArmor is not enabled on this host (/sys/module/apparmor/parameters/enabled is not Y)"),
                ));
            }
            c.apparmor = Some(p.clone());
        }
        let selinux_requested = [
            (
                "process.selinuxLabel",
                process.and_then(|p| p.selinux_label().clone()),
            ),
            (
                "linux.mountLabel",
                linux.and_then(|l| l.mount_label().clone()),
            ),
        ];
        for (field, label) in selinux_requested {
            let Some(label) = label.filter(|l| !l.is_empty()) else {
                continue;
            };
            // Refused on every host, so that the error does not depend on
            // whether this one has SELinux.
            if field == "linux.mountLabel" {
                return Err(Error::Unsupported {
                    field: field.into(),
                    message: "SELinux mount labels are not supported by rrc yet".into(),
                });
            }
            if !selinux_enabled() {
                return Err(invalid(
                    field,
                    format!("label {label:?} requested but SELinux is not enabled on this host (no selinuxfs at /sys/fs/selinux)"),
                ));
            }
            c.selinux = Some(label);
        }
        crate::init::sched::check(spec)?;
        c.personality = crate::init::personality::from_spec(linux)?;
        c.mempolicy = crate::init::mempolicy::from_spec(linux)?;
        hooks::validate(spec)?;
        for kind in [Kind::Prestart, Kind::CreateRuntime] {
            for h in hooks::of_spec(spec, kind) {
                c.runtime_hooks.push((kind, h));
            }
        }
        c.create_container = hooks::of_spec(spec, Kind::CreateContainer);
        c.process_env = process.and_then(|p| p.env().clone()).unwrap_or_default();
        c.start_container = hooks::of_spec(spec, Kind::StartContainer);
        Ok(c)
    }

    /// In the runtime, during create: answers the init's reports until the
    /// final one, running the prestart and createRuntime hooks when asked.
    /// A hook failure is returned as the create's error.
    pub fn serve_init(&self, fd: RawFd, init_pid: i32) -> Result<InitReport> {
        loop {
            match sync::recv_report(fd) {
                InitReport::RunHooks => {
                    let state = self.hook_state.json("creating", init_pid);
                    let ctx = hooks::Context {
                        cwd: Some(Path::new(&self.hook_state.bundle)),
                        ..Default::default()
                    };
                    for (kind, h) in &self.runtime_hooks {
                        hooks::run_all(*kind, std::slice::from_ref(h), &state, &ctx)?;
                    }
                    sync::send_hooks_done(fd).map_err(|e| Error::Sys {
                        call: "telling the init that the hooks ran".into(),
                        source: e,
                    })?;
                }
                other => return Ok(other),
            }
        }
    }

    /// In the init, before the rootfs is built: writes the sysctls through
    /// /proc/sys, which is still the host's procfs mount but resolves to
    /// the namespaces of the writer, that is the container's.
    pub fn write_sysctls(&self) -> Result<()> {
        for (path, value) in &self.sysctls {
            let full = Path::new("/proc/sys").join(path);
            std::fs::write(&full, value.as_bytes()).map_err(|e| {
                Error::Init(format!(
                    "linux.sysctl {}: writing {value:?} to {}: {e}",
                    path.display().to_string().replace('/', "."),
                    full.display()
                ))
            })?;
        }
        Ok(())
    }

    /// In the init, after the mounts and before pivot_root: has the runtime
    /// run its hooks, then runs the createContainer hooks here, in the
    /// container's namespaces. Returns the init's pid as the host sees it.
    /// The createContainer hooks run from the rootfs (`rootfs`, the host's
    /// path to it), as runc's do.
    pub fn before_pivot(&self, sync_fd: RawFd, rootfs: &Path) -> Result<i32> {
        // /proc is still the host's procfs here, so /proc/self names the
        // init by its host pid.
        let pid = std::fs::read_link("/proc/self")
            .ok()
            .and_then(|p| p.to_str()?.parse::<i32>().ok())
            .unwrap_or(0);
        if !self.runtime_hooks.is_empty() {
            match sync::run_hooks(sync_fd) {
                Ok(true) => {}
                _ => {
                    return Err(Error::Init(
                        "the runtime did not run the createRuntime hooks".into(),
                    ))
                }
            }
        }
        hooks::run_all(
            Kind::CreateContainer,
            &self.create_container,
            &self.hook_state.json("creating", pid),
            &hooks::Context {
                cwd: Some(rootfs),
                default_env: Some(&self.process_env),
                seccomp: None,
            },
        )?;
        Ok(pid)
    }

    /// In the init (or exec), after pivot_root: sets the personality and
    /// memory policy, and the AppArmor profile or SELinux label that the
    /// next exec takes on.
    pub fn apply_lsm(&self) -> Result<()> {
        crate::init::personality::set(self.personality)?;
        crate::init::mempolicy::set(self.mempolicy.as_ref())?;
        if let Some(p) = &self.apparmor {
            let target = if Path::new("/proc/self/attr/apparmor/exec").exists() {
                "/proc/self/attr/apparmor/exec"
            } else {
                "/proc/self/attr/exec"
            };
            std::fs::write(target, format!("exec {p}")).map_err(|e| {
                Error::Init(format!("process.apparmorProfile {p:?}: {target}: {e}"))
            })?;
        }
        if let Some(l) = &self.selinux {
            std::fs::write("/proc/self/attr/exec", l.as_bytes()).map_err(|e| {
                Error::Init(format!(
                    "process.selinuxLabel {l:?}: /proc/self/attr/exec: {e}"
                ))
            })?;
        }
        Ok(())
    }
}

/// In the runtime, after `start`: the poststart hooks (failures warn).
pub fn poststart(state: &rr_state::State) {
    run_stored(state, Kind::Poststart, "running", state.init_process_pid);
}

/// In the runtime, after `delete`: the poststop hooks (failures warn).
pub fn poststop(state: &rr_state::State) {
    run_stored(state, Kind::Poststop, "stopped", 0);
}

fn run_stored(state: &rr_state::State, kind: Kind, status: &str, pid: i32) {
    let spec = &state.config.spec;
    let list = hooks::of_stored(spec, kind);
    if list.is_empty() {
        return;
    }
    let hs = HookState {
        oci_version: spec
            .get("ociVersion")
            .and_then(|v| v.as_str())
            .unwrap_or("1.0.2")
            .to_string(),
        id: state.id.clone(),
        bundle: state.bundle().unwrap_or_default().to_string(),
        annotations: spec
            .get("annotations")
            .cloned()
            .unwrap_or_else(|| serde_json::json!({})),
    };
    let bundle = hs.bundle.clone();
    hooks::run_all_warn(
        kind,
        &list,
        &hs.json(status, pid),
        &hooks::Context {
            cwd: Some(Path::new(&bundle)),
            ..Default::default()
        },
    );
}

pub(crate) fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.starts_with('Y'))
}

pub(crate) fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// Which namespace makes a sysctl the container's own; None for keys that
/// are host-wide.
fn sysctl_namespace(key: &str) -> Option<LinuxNamespaceType> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(LinuxNamespaceType::Ipc)
    } else if key.starts_with("net.") {
        Some(LinuxNamespaceType::Network)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some(LinuxNamespaceType::Uts)
    } else {
        None
    }
}

/// Checks one sysctl key and gives its path under /proc/sys.
fn sysctl_path(key: &str, namespaces: &[LinuxNamespaceType]) -> Result<PathBuf> {
    let field = format!("linux.sysctl.{key}");
    // Both spellings are in use: dots and slashes.
    let dotted = key.replace('/', ".");
    let ns = sysctl_namespace(&dotted).ok_or_else(|| {
        invalid(
            &field,
            "not a namespaced sysctl: only kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*, net.*, kernel.hostname and kernel.domainname can be set for a container",
        )
    })?;
    if !namespaces.contains(&ns) {
        return Err(invalid(
            &field,
            format!("needs the container to have its own {ns:?} namespace"),
        ));
    }
    let path: PathBuf = dotted.split('.').collect();
    if dotted.split('.').any(|c| c.is_empty())
        || path
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(invalid(&field, "not a valid sysctl name"));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_keys() {
        let all = [
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Uts,
        ];
        assert_eq!(
            sysctl_path("net.ipv4.ip_forward", &all).expect("ok"),
            PathBuf::from("net/ipv4/ip_forward")
        );
        assert_eq!(
            sysctl_path("kernel/shmmax", &all).expect("ok"),
            PathBuf::from("kernel/shmmax")
        );
        assert!(sysctl_path("fs.mqueue.msg_max", &all).is_ok());
        for bad in [
            "kernel.pid_max",
            "vm.swappiness",
            "net..x",
            "net.ipv4..",
            "fs.file-max",
        ] {
            let e = sysctl_path(bad, &all).expect_err(bad);
            assert!(e.to_string().contains(bad), "{e}");
        }
        let e =
            sysctl_path("net.ipv4.ip_forward", &[LinuxNamespaceType::Ipc]).expect_err("no netns");
        assert!(e.to_string().contains("Network"), "{e}");
    }
}
