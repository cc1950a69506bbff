//! OCI hooks: running one hook with the container state on its stdin and
//! a timeout, and the kinds' failure rules.
//!
//! Where each kind runs (runtime spec, config.md "POSIX-platform Hooks"):
//! `prestart` and `createRuntime` in the runtime namespace during `create`,
//! once the container's namespaces exist and before pivot_root (the init
//! asks the runtime over the sync socket); `createContainer` in the
//! container's namespaces at the same point, from the init;
//! `startContainer` in the container, after `start` and right before the
//! user process is exec'd; `poststart` in the runtime namespace once the
//! process runs, before `start` returns; `poststop` in the runtime
//! namespace after `delete` removed the container. A failure of the first
//! four fails the operation and the container is torn down; a failure of
//! `poststart` or `poststop` is a warning only.

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use oci_spec::runtime::{Hook, Hooks, Spec};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use rr_seccomp::Filter;

/// How hooks run besides what their own fields say.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// Their working directory (runc runs them from the bundle), when it
    /// exists where they run.
    pub cwd: Option<&'a std::path::Path>,
    /// The environment of a hook that has no `env` (the container process's
    /// for the hooks that run in the container, as with runc); None leaves
    /// such a hook the runtime's own environment.
    pub default_env: Option<&'a [String]>,
    /// The container's seccomp filter, for the hooks that run under it.
    pub seccomp: Option<&'a Filter>,
}

/// What a hook is told about the container (the OCI state).
#[derive(Debug, Clone, Default)]
pub struct HookState {
    /// The spec's ociVersion.
    pub oci_version: String,
    /// The container id.
    pub id: String,
    /// The bundle directory.
    pub bundle: String,
    /// The spec's annotations.
    pub annotations: Value,
}

impl HookState {
    /// The state of a container created from `spec`.
    pub fn new(id: &str, bundle: &std::path::Path, spec: &Spec) -> HookState {
        HookState {
            oci_version: spec.version().clone(),
            id: id.to_string(),
            bundle: bundle.display().to_string(),
            annotations: spec.annotations().as_ref().map_or(json!({}), |a| json!(a)),
        }
    }

    /// The JSON a hook reads on stdin.
    pub fn json(&self, status: &str, pid: i32) -> String {
        let mut v = json!({
            "ociVersion": self.oci_version,
            "id": self.id,
            "status": status,
            "bundle": self.bundle,
            "annotations": self.annotations,
        });
        // A stopped container has no pid.
        if pid > 0 {
            v["pid"] = json!(pid);
        }
        v.to_string()
    }
}

/// The hook kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `prestart` (deprecated; runs with createRuntime).
    Prestart,
    /// `createRuntime`.
    CreateRuntime,
    /// `createContainer`.
    CreateContainer,
    /// `startContainer`.
    StartContainer,
    /// `poststart`.
    Poststart,
    /// `poststop`.
    Poststop,
}

impl Kind {
    /// The spec's name of the kind.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Prestart => "prestart",
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        }
    }

    /// The hooks of this kind in `hooks`.
    #[allow(deprecated)]
    pub fn of(self, hooks: &Hooks) -> &[Hook] {
        let v = match self {
            Kind::Prestart => hooks.prestart(),
            Kind::CreateRuntime => hooks.create_runtime(),
            Kind::CreateContainer => hooks.create_container(),
            Kind::StartContainer => hooks.start_container(),
            Kind::Poststart => hooks.poststart(),
            Kind::Poststop => hooks.poststop(),
        };
        v.as_deref().unwrap_or(&[])
    }
}

/// The hooks of `kind` in a spec.
pub fn of_spec(spec: &Spec, kind: Kind) -> Vec<Hook> {
    spec.hooks()
        .as_ref()
        .map(|h| kind.of(h).to_vec())
        .unwrap_or_default()
}

/// The hooks of `kind` in a spec kept as JSON in state.json.
pub fn of_stored(spec: &Value, kind: Kind) -> Vec<Hook> {
    spec.get("hooks")
        .and_then(|h| serde_json::from_value::<Hooks>(h.clone()).ok())
        .map(|h| kind.of(&h).to_vec())
        .unwrap_or_default()
}

/// Checks every hook of the spec before anything is created.
pub fn validate(spec: &Spec) -> Result<()> {
    let Some(hooks) = spec.hooks() else {
        return Ok(());
    };
    for kind in [
        Kind::Prestart,
        Kind::CreateRuntime,
        Kind::CreateContainer,
        Kind::StartContainer,
        Kind::Poststart,
        Kind::Poststop,
    ] {
        for (i, h) in kind.of(hooks).iter().enumerate() {
            let field = format!("hooks.{}[{i}]", kind.name());
            if !h.path().is_absolute() {
                return Err(Error::ConfigInvalid {
                    path: "config.json".into(),
                    field: format!("{field}.path"),
                    message: format!("{} is not an absolute path", h.path().display()),
                });
            }
            if let Some(t) = h.timeout() {
                if t <= 0 {
                    return Err(Error::ConfigInvalid {
                        path: "config.json".into(),
                        field: format!("{field}.timeout"),
                        message: format!("{t} is not a positive number of seconds"),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Runs every hook of `kind` in order, stopping at the first failure.
pub fn run_all(kind: Kind, hooks: &[Hook], state_json: &str, ctx: &Context) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        run_one(h, state_json, ctx).map_err(|m| {
            Error::Init(format!(
                "{} hook #{i} ({}) failed: {m}",
                kind.name(),
                h.path().display()
            ))
        })?;
    }
    Ok(())
}

/// Runs every hook of a kind whose failures are only warnings.
pub fn run_all_warn(kind: Kind, hooks: &[Hook], state_json: &str, ctx: &Context) {
    for (i, h) in hooks.iter().enumerate() {
        if let Err(m) = run_one(h, state_json, ctx) {
            eprintln!(
                "rrc: warning: {} hook #{i} ({}) failed: {m}",
                kind.name(),
                h.path().display()
            );
        }
    }
}

/// Runs one hook: `args[0]` becomes its argv[0], its environment is
/// exactly `env` (or the context's default when it has none), the state is
/// written to its stdin, and it is killed when it outlives its timeout. Its
/// output is captured for the error message.
fn run_one(h: &Hook, state_json: &str, ctx: &Context) -> std::result::Result<(), String> {
    let out = memfd("rrc-hook-output")?;
    let dup = |f: &OwnedFd| f.try_clone().map_err(|e| format!("dup: {e}"));
    let reader = std::fs::File::from(dup(&out)?);
    let out2 = dup(&out)?;
    let mut cmd = Command::new(h.path());
    let args = h.args().clone().unwrap_or_default();
    if let Some((first, rest)) = args.split_first() {
        cmd.arg0(first).args(rest);
    }
    // Without env of its own, a hook gets the container process's
    // environment where the context gives one, the runtime's otherwise (as
    // runc's hooks inherit its own).
    let env = h.env().as_deref().or(ctx.default_env);
    if env.is_some() {
        cmd.env_clear();
    }
    for e in env.unwrap_or(&[]) {
        match e.split_once('=') {
            Some((k, v)) => cmd.env(k, v),
            None => cmd.env(e, ""),
        };
    }
    if let Some(dir) = ctx.cwd.filter(|d| d.is_dir()) {
        cmd.current_dir(dir);
    }
    if let Some(f) = ctx.seccomp {
        let f = f.clone();
        // SAFETY: the closure makes one syscall and does not allocate.
        unsafe { cmd.pre_exec(move || f.install_raw()) };
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(out2));
    let mut child = cmd.spawn().map_err(|e| format!("spawn: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine.
        let _ = stdin.write_all(state_json.as_bytes());
    }
    let timeout = h.timeout().filter(|t| *t > 0);
    let status = match timeout {
        None => child.wait().map_err(|e| format!("wait: {e}"))?,
        Some(secs) => match wait_timeout(&mut child, secs)? {
            Some(s) => s,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {secs}s and was killed"));
            }
        },
    };
    if status.success() {
        return Ok(());
    }
    Err(format!("{status}{}", output_tail(&reader)))
}

/// The last KiB of what the hook printed, for the error message.
fn output_tail(f: &std::fs::File) -> String {
    use std::os::unix::fs::FileExt;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(1024);
    let mut buf = vec![0u8; (len - start) as usize];
    let n = f.read_at(&mut buf, start).unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]).trim().to_string();
    if text.is_empty() {
        String::new()
    } else {
        format!(", output: {text}")
    }
}

fn memfd(name: &str) -> std::result::Result<OwnedFd, String> {
    let c = std::ffi::CString::new(name).map_err(|e| e.to_string())?;
    // SAFETY: c is a valid C string.
    let fd = unsafe { libc::memfd_create(c.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(format!("memfd_create: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: fd was just created and is owned here.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Waits up to `secs` for the child; None when it is still running.
fn wait_timeout(
    child: &mut std::process::Child,
    secs: i64,
) -> std::result::Result<Option<std::process::ExitStatus>, String> {
    // SAFETY: pidfd_open with plain integers.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id() as libc::pid_t, 0) };
    if fd < 0 {
        return Err(format!("pidfd_open: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: fd was just opened and is owned here.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs as u64);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return child.try_wait().map_err(|e| format!("wait: {e}"));
        }
        let mut pfd = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, ms.max(1)) };
        if n > 0 {
            return child.wait().map(Some).map_err(|e| format!("wait: {e}"));
        }
    }
}
