//! rr-seccomp: the OCI spec's `linux.seccomp` compiled to a classic BPF
//! filter in Rust (no libseccomp), and its installation with seccomp(2).
//!
//! [`from_spec`] checks and translates the spec into a [`bpf::Policy`]
//! (before anything is created, so a bad profile fails `create` cleanly);
//! [`bpf::compile`] builds the program; [`build`] does both and collects the
//! warnings; [`Filter::install`] loads the program, in a container runtime
//! right before the user process is exec'd.
//!
//! This crate depends on no other rr crate.
#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod bpf;
#[cfg(test)]
mod fixture;
pub mod tables;

use oci_spec::runtime::{
    Arch as OciArch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

use bpf::{Action, Arch, Cond, Op, Policy, Rule, SockFilter};

/// `SECCOMP_FILTER_FLAG_*`.
pub mod flag {
    /// Synchronise all threads to the filter.
    pub const TSYNC: u32 = 1;
    /// Log every action except allow.
    pub const LOG: u32 = 2;
    /// Keep the Speculative Store Bypass mitigation off.
    pub const SPEC_ALLOW: u32 = 4;
    /// With TSYNC: report a thread that cannot sync as ESRCH.
    pub const TSYNC_ESRCH: u32 = 16;
    /// Return a notify listener fd for the filter's SCMP_ACT_NOTIFY rules.
    pub const NEW_LISTENER: u32 = 8;
    /// Make the notify listener wait killably.
    pub const WAIT_KILLABLE_RECV: u32 = 32;
}

/// A compiled filter ready to install.
#[derive(Debug, Clone)]
pub struct Filter {
    /// The BPF program.
    pub program: Vec<SockFilter>,
    /// `SECCOMP_FILTER_FLAG_*` bits.
    pub flags: u32,
    /// The actions the program returns, to check the kernel supports them.
    pub actions: Vec<Action>,
}

/// The translated policy, its flags and the warnings about skipped parts.
#[derive(Debug, Clone)]
pub struct Translated {
    /// The policy.
    pub policy: Policy,
    /// `SECCOMP_FILTER_FLAG_*` bits.
    pub flags: u32,
    /// Things skipped, each a sentence for the user.
    pub warnings: Vec<String>,
}

/// Why a profile could not be compiled or installed. Each message names the
/// spec field or the system call at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A field of `linux.seccomp` is not acceptable.
    #[error("{field}: {message}")]
    Invalid {
        /// The JSON path of the field, e.g. `linux.seccomp.syscalls[2]`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A seccomp(2) call failed.
    #[error("{call}: {source}")]
    Sys {
        /// What was being done.
        call: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn invalid(field: &str, message: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// The errno used when an ERRNO or TRACE action gives none (runc's choice).
const DEFAULT_ERRNO: u32 = libc::EPERM as u32;

fn action(field: &str, a: LinuxSeccompAction, errno: Option<u32>) -> Result<Action> {
    let value = |errno: Option<u32>| -> Result<u16> {
        let e = errno.unwrap_or(DEFAULT_ERRNO);
        // The kernel caps errno values at MAX_ERRNO.
        if e > 4095 {
            return Err(invalid(
                field,
                format!("errnoRet {e} is out of range (0-4095)"),
            ));
        }
        Ok(e as u16)
    };
    let no_errno = |act: Action| -> Result<Action> {
        if errno.is_some() {
            return Err(invalid(
                field,
                format!("errnoRet is only valid with SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not {a}"),
            ));
        }
        Ok(act)
    };
    match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            no_errno(Action::KillThread)
        }
        LinuxSeccompAction::ScmpActKillProcess => no_errno(Action::KillProcess),
        LinuxSeccompAction::ScmpActTrap => no_errno(Action::Trap),
        LinuxSeccompAction::ScmpActErrno => Ok(Action::Errno(value(errno)?)),
        LinuxSeccompAction::ScmpActTrace => Ok(Action::Trace(value(errno)?)),
        LinuxSeccompAction::ScmpActAllow => no_errno(Action::Allow),
        LinuxSeccompAction::ScmpActLog => no_errno(Action::Log),
        LinuxSeccompAction::ScmpActNotify => no_errno(Action::Notify),
    }
}

fn arch(a: OciArch) -> Option<Arch> {
    match a {
        OciArch::ScmpArchNative => Arch::native(),
        OciArch::ScmpArchX86_64 => Some(Arch::X86_64),
        OciArch::ScmpArchX86 => Some(Arch::X86),
        OciArch::ScmpArchX32 => Some(Arch::X32),
        OciArch::ScmpArchAarch64 => Some(Arch::Aarch64),
        _ => None,
    }
}

fn op(o: LinuxSeccompOperator) -> Op {
    match o {
        LinuxSeccompOperator::ScmpCmpNe => Op::Ne,
        LinuxSeccompOperator::ScmpCmpLt => Op::Lt,
        LinuxSeccompOperator::ScmpCmpLe => Op::Le,
        LinuxSeccompOperator::ScmpCmpEq => Op::Eq,
        LinuxSeccompOperator::ScmpCmpGe => Op::Ge,
        LinuxSeccompOperator::ScmpCmpGt => Op::Gt,
        LinuxSeccompOperator::ScmpCmpMaskedEq => Op::MaskedEq,
    }
}

/// Syscalls the init makes between installing its filter and handing the
/// listener to rrc, or rrc to the agent: notified, they would wait for an
/// agent that has no listener yet.
const NOT_NOTIFIABLE: &[&str] = &["write", "sendmsg", "sendto"];

/// A notify action needs a listener. A listenerPath without one is taken
/// with a warning: runc ignores it (its test "ignore listener path if no
/// notify act" runs such a profile), and engines send one profile to all.
fn check_notify(
    s: &LinuxSeccomp,
    default: Action,
    rules: &[Rule],
    flags: u32,
) -> Result<Option<String>> {
    if default == Action::Notify {
        return Err(invalid(
            "linux.seccomp.defaultAction",
            "SCMP_ACT_NOTIFY cannot be the default action",
        ));
    }
    for r in rules.iter().filter(|r| r.action == Action::Notify) {
        if NOT_NOTIFIABLE.contains(&r.name.as_str()) {
            return Err(invalid(
                "linux.seccomp.syscalls",
                // runc's wording for write, which its tests match on.
                format!("SCMP_ACT_NOTIFY cannot be used for the {} syscall: the runtime needs it before the agent has the listener", r.name),
            ));
        }
    }
    let notifies = rules.iter().any(|r| r.action == Action::Notify);
    let path = s
        .listener_path()
        .as_ref()
        .filter(|p| !p.as_os_str().is_empty());
    match (notifies, path) {
        (true, None) => Err(invalid(
            "linux.seccomp.listenerPath",
            "SCMP_ACT_NOTIFY rules need a listenerPath to send the listener to",
        )),
        (false, Some(p)) => Ok(Some(format!(
            "linux.seccomp.listenerPath: {} is not used: no rule uses SCMP_ACT_NOTIFY",
            p.display()
        ))),
        (false, None) if flags & flag::WAIT_KILLABLE_RECV != 0 => Err(invalid(
            "linux.seccomp.flags",
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs SCMP_ACT_NOTIFY rules",
        )),
        _ => Ok(None),
    }
}

/// Translates the spec's seccomp section.
///
/// Unknown action, architecture and operator names are refused by the
/// config parser, which names them. Architectures that are valid but have
/// no syscall table here are left out of the filter with a warning: their
/// syscalls are then killed, as for any architecture not listed.
pub fn from_spec(s: &LinuxSeccomp) -> Result<Translated> {
    let mut warnings = Vec::new();
    let default = action(
        "linux.seccomp.defaultAction",
        s.default_action(),
        s.default_errno_ret(),
    )?;
    let mut arches = Vec::new();
    for a in s.architectures().iter().flatten() {
        match arch(*a) {
            Some(x) => arches.push(x),
            None => warnings.push(format!(
                "linux.seccomp.architectures: {a} is not supported by rrc's seccomp compiler; its syscalls will be killed"
            )),
        }
    }
    // The native architecture is always allowed, listed or not, as runc
    // does: a profile that names only X86 and X32 must not kill the init.
    if let Some(native) = Arch::native() {
        if !arches.contains(&native) {
            arches.push(native);
        }
    }
    if arches.is_empty() {
        return Err(invalid(
            "linux.seccomp.architectures",
            "none of the listed architectures is supported",
        ));
    }
    let mut flags = 0;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => flag::LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => flag::TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => flag::SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => flag::WAIT_KILLABLE_RECV,
        };
    }
    let mut rules = Vec::new();
    for (i, sc) in s.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let act = action(&field, sc.action(), sc.errno_ret())?;
        let mut conds = Vec::new();
        for (j, a) in sc.args().iter().flatten().enumerate() {
            if a.index() > 5 {
                return Err(invalid(
                    &format!("{field}.args[{j}].index"),
                    format!("{} is out of range (0-5)", a.index()),
                ));
            }
            conds.push(Cond {
                index: a.index() as u8,
                op: op(a.op()),
                value: a.value(),
                value_two: a.value_two().unwrap_or(0),
            });
        }
        // Several conditions on one argument can never all hold; as in
        // runc, they are then alternatives, each its own rule.
        let repeated = conds
            .iter()
            .enumerate()
            .any(|(k, c)| conds[..k].iter().any(|d| d.index == c.index));
        let groups: Vec<Vec<Cond>> = if repeated {
            conds.iter().map(|c| vec![*c]).collect()
        } else {
            vec![conds]
        };
        for name in sc.names() {
            for g in &groups {
                rules.push(Rule {
                    name: name.clone(),
                    action: act,
                    conds: g.clone(),
                });
            }
        }
    }
    warnings.extend(check_notify(s, default, &rules, flags)?);
    Ok(Translated {
        policy: Policy {
            default,
            arches,
            rules,
        },
        flags,
        warnings,
    })
}

/// Translates and compiles; warnings (skipped names and architectures) are
/// returned for the caller to show.
pub fn build(s: &LinuxSeccomp) -> Result<(Filter, Vec<String>)> {
    let t = from_spec(s)?;
    let compiled = bpf::compile(&t.policy).map_err(|e| invalid("linux.seccomp", e.to_string()))?;
    // Names this kernel's tables lack (Docker's and podman's profiles list
    // syscalls of other architectures and kernels) are skipped, as runc
    // does; the runtime decides where the warning goes (its log file: its
    // stderr is the container's under podman and containerd).
    let mut warnings = t.warnings;
    for n in compiled.unknown {
        warnings.push(format!("linux.seccomp: unknown syscall {n:?} skipped"));
    }
    let mut actions: Vec<Action> = vec![t.policy.default];
    for r in &t.policy.rules {
        if !actions.contains(&r.action) {
            actions.push(r.action);
        }
    }
    Ok((
        Filter {
            program: compiled.program,
            flags: t.flags,
            actions,
        },
        warnings,
    ))
}

const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
const SECCOMP_GET_ACTION_AVAIL: libc::c_uint = 2;

#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const SockFilter,
}

impl Filter {
    /// Checks that the kernel knows every action of the filter, so that an
    /// old kernel fails with a name instead of a bare EINVAL.
    pub fn check_kernel(&self) -> Result<()> {
        for a in &self.actions {
            let k = a.ret() & 0xffff_0000;
            // SAFETY: the kernel reads one u32 from a valid pointer.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    SECCOMP_GET_ACTION_AVAIL,
                    0,
                    &k as *const u32,
                )
            };
            if r != 0 {
                return Err(Error::Sys {
                    call: format!("seccomp: the kernel does not support action {a:?}"),
                    source: std::io::Error::last_os_error(),
                });
            }
        }
        Ok(())
    }

    /// Installs the filter on the calling thread. Needs no_new_privs or
    /// CAP_SYS_ADMIN.
    pub fn install(&self) -> Result<()> {
        self.install_raw().map_err(|source| Error::Sys {
            call: format!("seccomp(SECCOMP_SET_MODE_FILTER, flags {:#x})", self.flags),
            source,
        })
    }

    /// Whether the filter has SCMP_ACT_NOTIFY rules, which need a listener.
    pub fn notifies(&self) -> bool {
        self.actions.contains(&Action::Notify)
    }

    /// Installs the filter on the calling thread with a notify listener,
    /// and returns the listener.
    pub fn install_listener(&self) -> Result<std::os::fd::OwnedFd> {
        let mut flags = self.flags | flag::NEW_LISTENER;
        if flags & flag::TSYNC != 0 {
            // The kernel takes TSYNC with a listener only if a thread that
            // cannot sync fails with ESRCH (the return value is the fd).
            flags |= flag::TSYNC_ESRCH;
        }
        let fd = self.install_with(flags).map_err(|source| Error::Sys {
            call: format!("seccomp(SECCOMP_SET_MODE_FILTER, flags {flags:#x})"),
            source,
        })?;
        // SAFETY: with NEW_LISTENER the kernel returns a new fd, ours.
        Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd as i32) })
    }

    /// [`Filter::install`] without allocating, for a forked child between
    /// fork and exec.
    pub fn install_raw(&self) -> std::io::Result<()> {
        self.install_with(self.flags).map(|_| ())
    }

    fn install_with(&self, flags: u32) -> std::io::Result<libc::c_long> {
        let prog = SockFprog {
            len: self.program.len() as libc::c_ushort,
            filter: self.program.as_ptr(),
        };
        // SAFETY: prog points at the program, which outlives the call; the
        // kernel copies it.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_SET_MODE_FILTER,
                flags,
                &prog as *const SockFprog,
            )
        };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).expect("valid seccomp json")
    }

    #[test]
    fn translation_rules() {
        let t = from_spec(&parse(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,
                "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_PPC64"],
                "flags":["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
                "syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"},
                  {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[
                    {"index":0,"value":0,"op":"SCMP_CMP_EQ"},
                    {"index":0,"value":8,"op":"SCMP_CMP_EQ"}]},
                  {"names":["mount"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#,
        ))
        .expect("translates");
        assert_eq!(t.policy.default, Action::Errno(38));
        assert_eq!(t.policy.arches, vec![Arch::X86_64]);
        assert_eq!(t.warnings.len(), 1, "{:?}", t.warnings);
        assert_eq!(t.flags, flag::LOG | flag::SPEC_ALLOW);
        // read, write, two alternatives for personality, mount.
        assert_eq!(t.policy.rules.len(), 5);
        assert_eq!(t.policy.rules[4].action, Action::Errno(13));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","defaultErrnoRet":1}"#,
                "defaultAction",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_ERRNO","errnoRet":70000}]}"#,
                "syscalls[0]",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_NOTIFY"}]}"#,
                "linux.seccomp.listenerPath",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_NOTIFY","listenerPath":"/a"}"#,
                "linux.seccomp.defaultAction",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/a","syscalls":[{"names":["write"],"action":"SCMP_ACT_NOTIFY"}]}"#,
                "linux.seccomp.syscalls",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
                "linux.seccomp.flags",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_ALLOW","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
                "syscalls[0].args[0].index",
            ),
        ];
        for (json, field) in cases {
            let err = from_spec(&parse(json)).expect_err(field);
            assert!(err.to_string().contains(field), "{field}: {err}");
        }
        let err = serde_json::from_str::<LinuxSeccomp>(r#"{"defaultAction":"SCMP_ACT_BOGUS"}"#)
            .expect_err("unknown action");
        assert!(err.to_string().contains("SCMP_ACT_BOGUS"), "{err}");
    }

    /// As runc: the profile runs, and the warning names the field.
    #[test]
    fn listener_path_without_notify_is_a_warning() {
        let t = from_spec(&parse(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/a","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#,
        ))
        .expect("runc runs it");
        assert!(
            t.warnings
                .iter()
                .any(|w| w.contains("linux.seccomp.listenerPath")),
            "{:?}",
            t.warnings
        );
    }

    #[test]
    fn notify_with_a_listener_compiles() {
        let t = from_spec(&parse(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/agent.sock",
                "flags":["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "syscalls":[{"names":["mkdirat"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        ))
        .expect("valid");
        assert_eq!(t.policy.rules[0].action, Action::Notify);
        assert_eq!(t.flags, flag::WAIT_KILLABLE_RECV);
    }

    #[test]
    fn the_native_architecture_is_always_in() {
        let t = from_spec(&parse(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"]}"#,
        ))
        .expect("translates");
        let native = Arch::native().expect("a supported build architecture");
        assert!(t.policy.arches.contains(&native), "{:?}", t.policy.arches);
        assert!(t.policy.arches.contains(&Arch::X86));
        let t = from_spec(&parse(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_MIPS"]}"#,
        ))
        .expect("translates");
        assert_eq!(t.policy.arches, vec![native]);
        assert_eq!(t.warnings.len(), 1, "{:?}", t.warnings);
    }

    #[test]
    fn fixture_profile_compiles() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/seccomp-default.json"
        ))
        .expect("fixture");
        let s = parse(&text);
        let (f, warnings) = build(&s).expect("compiles");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(f.program.len() < bpf::MAX_INSNS);
        let allowed = s
            .syscalls()
            .iter()
            .flatten()
            .filter(|r| r.action() == LinuxSeccompAction::ScmpActAllow)
            .map(|r| r.names().len())
            .sum::<usize>();
        assert!(allowed >= 300, "{allowed}");
        // Through the interpreter: read allowed, mount EPERM, clone with
        // CLONE_NEWUSER refused, plain clone allowed, on x86_64 and i386.
        let run = |arch: u32, nr: u32, a0: u64| {
            bpf::interp::run(&f.program, arch, nr, [a0, 0, 0, 0, 0, 0])
        };
        assert_eq!(run(0xc000_003e, 0, 0), Some(bpf::ret::ALLOW));
        assert_eq!(run(0xc000_003e, 165, 0), Some(bpf::ret::ERRNO | 1));
        assert_eq!(run(0xc000_003e, 56, 0x1001_1000), Some(bpf::ret::ERRNO | 1));
        assert_eq!(run(0xc000_003e, 56, 0x0001_1000), Some(bpf::ret::ALLOW));
        assert_eq!(run(0x4000_0003, 3, 0), Some(bpf::ret::ALLOW));
        assert_eq!(run(0xc000_00b7, 63, 0), Some(bpf::ret::KILL_PROCESS));
    }

    /// Installs filters in forked children and checks what the kernel does.
    #[test]
    fn kernel_applies_the_filter() {
        let (f, _) = build(&parse(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":77},
                {"names":["getpriority"],"action":"SCMP_ACT_ERRNO","errnoRet":78,
                 "args":[{"index":1,"value":4294967296,"op":"SCMP_CMP_GE"}]}]}"#,
        ))
        .expect("compiles");
        f.check_kernel().expect("kernel supports ERRNO and ALLOW");
        // SAFETY: the child only makes raw syscalls and _exits; the test
        // harness's other threads are not touched.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: prctl and raw syscalls with integer arguments.
            let code = unsafe {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                if f.install().is_err() {
                    libc::_exit(10);
                }
                let e = |r: libc::c_long| if r < 0 { *libc::__errno_location() } else { 0 };
                let a = e(libc::syscall(libc::SYS_getppid));
                let b = e(libc::syscall(libc::SYS_getpriority, 0, 1u64 << 32));
                let c = e(libc::syscall(libc::SYS_getpriority, 0, 0));
                if (a, b, c) == (77, 78, 0) {
                    0
                } else {
                    11
                }
            };
            // SAFETY: leaves the child.
            unsafe { libc::_exit(code) };
        }
        let mut st = 0;
        // SAFETY: waits for our child.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        assert!(libc::WIFEXITED(st), "child status {st:#x}");
        assert_eq!(
            libc::WEXITSTATUS(st),
            0,
            "10: install failed, 11: wrong errno"
        );
    }
}
