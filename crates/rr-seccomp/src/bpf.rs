//! The seccomp filter compiler: a [`Policy`] in, classic BPF out.
//!
//! Layout of the program:
//!
//! ```text
//!   ld [arch]
//!   jeq AUDIT_ARCH_a -> section a      (one per architecture)
//!   ret KILL_PROCESS                   (any other architecture)
//! section a:
//!   ld [nr]
//!   (x86_64) jge 0x40000000 -> x32 section, or kill when x32 is not allowed
//!   per syscall: jeq nr ? block : next syscall
//!     block: each rule's argument checks, then `ret action`
//!   ret default
//! ```
//!
//! Every syscall block ends in a `ret`, so the accumulator only has to hold
//! the syscall number on the dispatch chain. Arguments are 64 bits wide in
//! `seccomp_data` and compared as a high and a low 32-bit word.
//! Conditional jumps reach at most 255 instructions; a jump that would go
//! further is chained through an unconditional `ja` placed right after it.

use super::tables;

/// `struct sock_filter`, as the kernel takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct SockFilter {
    /// Opcode.
    pub code: u16,
    /// Jump offset when the condition holds.
    pub jt: u8,
    /// Jump offset when it does not.
    pub jf: u8,
    /// Operand.
    pub k: u32,
}

/// Opcodes used by the compiler.
pub mod op {
    /// `ld [k]` (32-bit word at offset k of seccomp_data).
    pub const LD_ABS: u16 = 0x20;
    /// `and #k`.
    pub const AND: u16 = 0x54;
    /// `ja k`.
    pub const JA: u16 = 0x05;
    /// `jeq #k`.
    pub const JEQ: u16 = 0x15;
    /// `jgt #k`.
    pub const JGT: u16 = 0x25;
    /// `jge #k`.
    pub const JGE: u16 = 0x35;
    /// `ret #k`.
    pub const RET: u16 = 0x06;
}

/// Offsets in `struct seccomp_data`.
pub mod data {
    /// The syscall number.
    pub const NR: u32 = 0;
    /// The AUDIT_ARCH value.
    pub const ARCH: u32 = 4;
    /// The first argument; each is 8 bytes.
    pub const ARGS: u32 = 16;
}

/// Seccomp return values (`SECCOMP_RET_*`).
pub mod ret {
    /// Kill the whole process.
    pub const KILL_PROCESS: u32 = 0x8000_0000;
    /// Kill the thread.
    pub const KILL_THREAD: u32 = 0x0000_0000;
    /// Send SIGSYS.
    pub const TRAP: u32 = 0x0003_0000;
    /// Fail with an errno in the low 16 bits.
    pub const ERRNO: u32 = 0x0005_0000;
    /// Ask the user-space listener.
    pub const USER_NOTIF: u32 = 0x7fc0_0000;
    /// Notify a ptrace tracer.
    pub const TRACE: u32 = 0x7ff0_0000;
    /// Allow and log.
    pub const LOG: u32 = 0x7ffc_0000;
    /// Allow.
    pub const ALLOW: u32 = 0x7fff_0000;
}

/// The kernel's limit on the program length (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

/// The bit that marks x32 syscall numbers on x86_64.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Architectures the compiler has syscall tables for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Arch {
    /// x86_64 (64-bit ABI).
    X86_64,
    /// i386, also the 32-bit compat ABI on x86_64.
    X86,
    /// x32 (x86_64 with 32-bit pointers; same audit arch as x86_64).
    X32,
    /// arm64.
    Aarch64,
}

impl Arch {
    /// The `AUDIT_ARCH_*` value the kernel puts in `seccomp_data.arch`.
    pub fn audit(self) -> u32 {
        match self {
            Arch::X86_64 | Arch::X32 => 0xc000_003e,
            Arch::X86 => 0x4000_0003,
            Arch::Aarch64 => 0xc000_00b7,
        }
    }

    /// The name -> number table.
    pub fn table(self) -> &'static [(&'static str, u32)] {
        match self {
            Arch::X86_64 => tables::X86_64,
            Arch::X86 => tables::X86,
            Arch::X32 => tables::X32,
            Arch::Aarch64 => tables::AARCH64,
        }
    }

    /// The syscall number of `name` on this architecture.
    pub fn syscall(self, name: &str) -> Option<u32> {
        self.table()
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, nr)| *nr)
    }

    /// The architecture this program was built for, if it has a table.
    pub fn native() -> Option<Arch> {
        if cfg!(target_arch = "x86_64") {
            Some(Arch::X86_64)
        } else if cfg!(target_arch = "x86") {
            Some(Arch::X86)
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch::Aarch64)
        } else {
            None
        }
    }
}

/// What the filter does with a syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Kill the calling thread (`SCMP_ACT_KILL`, `SCMP_ACT_KILL_THREAD`).
    KillThread,
    /// Kill the process.
    KillProcess,
    /// Send SIGSYS.
    Trap,
    /// Fail with this errno.
    Errno(u16),
    /// Notify a ptrace tracer with this value.
    Trace(u16),
    /// Allow.
    Allow,
    /// Allow and log.
    Log,
    /// Hand over to the user-space listener.
    Notify,
}

impl Action {
    /// The `SECCOMP_RET_*` value.
    pub fn ret(self) -> u32 {
        match self {
            Action::KillThread => ret::KILL_THREAD,
            Action::KillProcess => ret::KILL_PROCESS,
            Action::Trap => ret::TRAP,
            Action::Errno(e) => ret::ERRNO | e as u32,
            Action::Trace(v) => ret::TRACE | v as u32,
            Action::Allow => ret::ALLOW,
            Action::Log => ret::LOG,
            Action::Notify => ret::USER_NOTIF,
        }
    }
}

/// A comparison operator on one syscall argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// arg != value
    Ne,
    /// arg < value (unsigned)
    Lt,
    /// arg <= value
    Le,
    /// arg == value
    Eq,
    /// arg >= value
    Ge,
    /// arg > value
    Gt,
    /// (arg & value) == value_two
    MaskedEq,
}

/// One argument condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cond {
    /// Argument index, 0..6.
    pub index: u8,
    /// The operator.
    pub op: Op,
    /// The value (the mask for `MaskedEq`).
    pub value: u64,
    /// The second value (the wanted result for `MaskedEq`).
    pub value_two: u64,
}

impl Cond {
    /// Whether `arg` satisfies the condition (the reference semantics the
    /// BPF has to match).
    pub fn holds(&self, arg: u64) -> bool {
        match self.op {
            Op::Ne => arg != self.value,
            Op::Lt => arg < self.value,
            Op::Le => arg <= self.value,
            Op::Eq => arg == self.value,
            Op::Ge => arg >= self.value,
            Op::Gt => arg > self.value,
            Op::MaskedEq => arg & self.value == self.value_two,
        }
    }
}

/// A rule: when the syscall is `name` and every condition holds, `action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The syscall name.
    pub name: String,
    /// What to do.
    pub action: Action,
    /// All must hold (an empty list always matches).
    pub conds: Vec<Cond>,
}

/// A whole filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// For syscalls no rule matches.
    pub default: Action,
    /// The architectures allowed; syscalls of others kill the process.
    pub arches: Vec<Arch>,
    /// Rules, in order; for one syscall, the first matching rule with
    /// conditions wins, then the first rule without.
    pub rules: Vec<Rule>,
}

/// Why a policy cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// The program would be longer than the kernel takes.
    #[error("the seccomp filter needs {0} BPF instructions; the kernel takes at most 4096")]
    TooLong(usize),
    /// An argument index out of range.
    #[error("syscall {name}: argument index {index} is out of range (0-5)")]
    BadIndex {
        /// The syscall.
        name: String,
        /// The index given.
        index: u8,
    },
}

/// The result of a compilation: the program and the syscall names that no
/// requested architecture knows (skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    /// The BPF program.
    pub program: Vec<SockFilter>,
    /// Rule names that exist on none of the architectures.
    pub unknown: Vec<String>,
}

type Label = usize;

#[derive(Debug, Clone, Copy)]
enum Ins {
    Ld(u32),
    And(u32),
    Jmp {
        code: u16,
        k: u32,
        t: Label,
        f: Label,
    },
    Ja(Label),
    Ret(u32),
    Here(Label),
}

#[derive(Default)]
struct Asm {
    code: Vec<Ins>,
    labels: usize,
}

impl Asm {
    fn label(&mut self) -> Label {
        self.labels += 1;
        self.labels - 1
    }
    fn push(&mut self, i: Ins) {
        self.code.push(i);
    }
    fn here(&mut self, l: Label) {
        self.code.push(Ins::Here(l));
    }

    /// Resolves labels into offsets, inserting `ja` trampolines after any
    /// conditional jump whose target is more than 255 instructions away.
    fn finish(mut self) -> Vec<SockFilter> {
        loop {
            let (pos, idx) = self.positions();
            let far = self
                .code
                .iter()
                .enumerate()
                .find_map(|(i, ins)| match *ins {
                    Ins::Jmp { t, f, .. } => {
                        let from = idx[i] + 1;
                        let too_far = |l: Label| pos[l] - from > 255;
                        if too_far(t) {
                            Some((i, true))
                        } else if too_far(f) {
                            Some((i, false))
                        } else {
                            None
                        }
                    }
                    _ => None,
                });
            let Some((i, is_true)) = far else { break };
            let tramp = self.label();
            let Ins::Jmp { code, k, t, f } = self.code[i] else {
                break;
            };
            let target = if is_true { t } else { f };
            self.code[i] = if is_true {
                Ins::Jmp {
                    code,
                    k,
                    t: tramp,
                    f,
                }
            } else {
                Ins::Jmp {
                    code,
                    k,
                    t,
                    f: tramp,
                }
            };
            // The trampoline sits right after the jump, before the label of
            // the other branch if that was the next instruction, so that
            // branch now skips it by itself.
            self.code
                .splice(i + 1..i + 1, [Ins::Here(tramp), Ins::Ja(target)]);
        }
        let (pos, idx) = self.positions();
        let mut out = Vec::new();
        for (i, ins) in self.code.iter().enumerate() {
            let next = idx[i] + 1;
            match *ins {
                Ins::Ld(k) => out.push(sf(op::LD_ABS, 0, 0, k)),
                Ins::And(k) => out.push(sf(op::AND, 0, 0, k)),
                Ins::Ret(k) => out.push(sf(op::RET, 0, 0, k)),
                Ins::Ja(l) => out.push(sf(op::JA, 0, 0, (pos[l] - next) as u32)),
                Ins::Jmp { code, k, t, f } => {
                    out.push(sf(code, (pos[t] - next) as u8, (pos[f] - next) as u8, k))
                }
                Ins::Here(_) => {}
            }
        }
        out
    }

    /// Instruction index of every label, and of every entry of `code`.
    fn positions(&self) -> (Vec<usize>, Vec<usize>) {
        let mut pos = vec![0usize; self.labels];
        let mut idx = Vec::with_capacity(self.code.len());
        let mut n = 0;
        for ins in &self.code {
            idx.push(n);
            match ins {
                Ins::Here(l) => pos[*l] = n,
                _ => n += 1,
            }
        }
        (pos, idx)
    }
}

fn sf(code: u16, jt: u8, jf: u8, k: u32) -> SockFilter {
    SockFilter { code, jt, jf, k }
}

/// Compiles a policy.
pub fn compile(policy: &Policy) -> Result<Compiled, CompileError> {
    for r in &policy.rules {
        if let Some(c) = r.conds.iter().find(|c| c.index > 5) {
            return Err(CompileError::BadIndex {
                name: r.name.clone(),
                index: c.index,
            });
        }
    }
    let mut arches = policy.arches.clone();
    arches.sort();
    arches.dedup();
    let unknown = policy
        .rules
        .iter()
        .filter(|r| arches.iter().all(|a| a.syscall(&r.name).is_none()))
        .map(|r| r.name.clone())
        .fold(Vec::new(), |mut v, n| {
            if !v.contains(&n) {
                v.push(n);
            }
            v
        });

    let mut a = Asm::default();
    let bad = a.label();
    a.push(Ins::Ld(data::ARCH));
    // x86_64 and x32 share one audit arch and one section.
    let has64 = arches.contains(&Arch::X86_64);
    let has32 = arches.contains(&Arch::X32);
    let mut sections: Vec<(Arch, Label)> = Vec::new();
    for &arch in &arches {
        if arch == Arch::X32 && has64 {
            continue;
        }
        let l = a.label();
        let next = a.label();
        a.push(Ins::Jmp {
            code: op::JEQ,
            k: arch.audit(),
            t: l,
            f: next,
        });
        a.here(next);
        sections.push((arch, l));
    }
    a.here(bad);
    a.push(Ins::Ret(ret::KILL_PROCESS));
    for (arch, l) in sections {
        // BPF only jumps forward: each section has its own kill.
        let bad = a.label();
        a.here(l);
        a.push(Ins::Ld(data::NR));
        match arch {
            Arch::X86_64 | Arch::X32 => {
                let x32 = a.label();
                let native = a.label();
                let (t, f) = match (arch == Arch::X86_64, has32) {
                    (true, true) => (x32, native),
                    (true, false) => (bad, native),
                    // Only x32: plain x86_64 numbers are the wrong ABI.
                    _ => (x32, bad),
                };
                a.push(Ins::Jmp {
                    code: op::JGE,
                    k: X32_SYSCALL_BIT,
                    t,
                    f,
                });
                a.here(native);
                if arch == Arch::X86_64 {
                    dispatch(&mut a, policy, Arch::X86_64);
                }
                a.here(x32);
                if has32 {
                    dispatch(&mut a, policy, Arch::X32);
                }
            }
            _ => dispatch(&mut a, policy, arch),
        }
        a.here(bad);
        a.push(Ins::Ret(ret::KILL_PROCESS));
    }
    let program = a.finish();
    if program.len() > MAX_INSNS {
        return Err(CompileError::TooLong(program.len()));
    }
    Ok(Compiled { program, unknown })
}

/// The syscall dispatch of one architecture; the accumulator holds the
/// syscall number. Ends with `ret default`.
fn dispatch(a: &mut Asm, policy: &Policy, arch: Arch) {
    if let Some(newest) = enosys_above(policy, arch) {
        let enosys = a.label();
        let known = a.label();
        a.push(Ins::Jmp {
            code: op::JGT,
            k: newest,
            t: enosys,
            f: known,
        });
        a.here(enosys);
        a.push(Ins::Ret(Action::Errno(libc::ENOSYS as u16).ret()));
        a.here(known);
    }
    // Syscall numbers in first-seen order, each with its rules in order.
    let mut by_nr: Vec<(u32, Vec<&Rule>)> = Vec::new();
    for r in &policy.rules {
        let Some(nr) = arch.syscall(&r.name) else {
            continue;
        };
        match by_nr.iter_mut().find(|(n, _)| *n == nr) {
            Some((_, v)) => v.push(r),
            None => by_nr.push((nr, vec![r])),
        }
    }
    for (nr, rules) in by_nr {
        let conditional: Vec<&Rule> = rules
            .iter()
            .copied()
            .filter(|r| !r.conds.is_empty())
            .collect();
        let fallback = rules
            .iter()
            .find(|r| r.conds.is_empty())
            .map_or(policy.default, |r| r.action);
        if conditional.is_empty() && fallback == policy.default {
            continue;
        }
        let block = a.label();
        let after = a.label();
        a.push(Ins::Jmp {
            code: op::JEQ,
            k: nr,
            t: block,
            f: after,
        });
        a.here(block);
        for r in conditional {
            let fail = a.label();
            for c in &r.conds {
                let ok = a.label();
                cond(a, c, ok, fail);
                a.here(ok);
            }
            a.push(Ins::Ret(r.action.ret()));
            a.here(fail);
        }
        a.push(Ins::Ret(fallback.ret()));
        a.here(after);
    }
    a.push(Ins::Ret(policy.default.ret()));
}

/// The newest syscall number the policy names on `arch`, when syscalls
/// above it must fail with ENOSYS rather than the default action: they are
/// newer than the profile, so the C library should see them as missing and
/// fall back (clone3 to clone), as runc arranges. A permissive default
/// (allow, log, trace) needs no such help.
fn enosys_above(policy: &Policy, arch: Arch) -> Option<u32> {
    let enosys = Action::Errno(libc::ENOSYS as u16);
    if matches!(
        policy.default,
        Action::Allow | Action::Log | Action::Trace(_)
    ) || policy.default == enosys
    {
        return None;
    }
    policy
        .rules
        .iter()
        .filter_map(|r| arch.syscall(&r.name))
        .max()
}

/// Emits a 64-bit comparison that jumps to `yes` or `no`.
fn cond(a: &mut Asm, c: &Cond, yes: Label, no: Label) {
    let lo_off = data::ARGS + 8 * c.index as u32;
    // seccomp_data is in the host's byte order; the supported arches are
    // all little endian.
    let hi_off = lo_off + 4;
    let (vhi, vlo) = ((c.value >> 32) as u32, c.value as u32);
    let jmp = |code, k, t, f| Ins::Jmp { code, k, t, f };
    // The negated operators are their positive forms with the exits swapped.
    let (op, yes, no) = match c.op {
        Op::Ne => (Op::Eq, no, yes),
        Op::Lt => (Op::Ge, no, yes),
        Op::Le => (Op::Gt, no, yes),
        o => (o, yes, no),
    };
    match op {
        Op::Eq => {
            let lo = a.label();
            a.push(Ins::Ld(hi_off));
            a.push(jmp(op::JEQ, vhi, lo, no));
            a.here(lo);
            a.push(Ins::Ld(lo_off));
            a.push(jmp(op::JEQ, vlo, yes, no));
        }
        Op::MaskedEq => {
            let (dhi, dlo) = ((c.value_two >> 32) as u32, c.value_two as u32);
            let lo = a.label();
            a.push(Ins::Ld(hi_off));
            a.push(Ins::And(vhi));
            a.push(jmp(op::JEQ, dhi, lo, no));
            a.here(lo);
            a.push(Ins::Ld(lo_off));
            a.push(Ins::And(vlo));
            a.push(jmp(op::JEQ, dlo, yes, no));
        }
        _ => {
            let eq = a.label();
            let lo = a.label();
            a.push(Ins::Ld(hi_off));
            a.push(jmp(op::JGT, vhi, yes, eq));
            a.here(eq);
            a.push(jmp(op::JEQ, vhi, lo, no));
            a.here(lo);
            a.push(Ins::Ld(lo_off));
            // Only Gt and Ge are left here.
            let code = if op == Op::Gt { op::JGT } else { op::JGE };
            a.push(jmp(code, vlo, yes, no));
        }
    }
}

#[cfg(test)]
pub(crate) mod interp {
    //! A classic BPF interpreter for the subset the compiler emits, to run
    //! programs against (arch, nr, args) in tests.
    use super::*;

    /// Runs `prog` on one seccomp_data; None on a malformed program.
    pub fn run(prog: &[SockFilter], arch: u32, nr: u32, args: [u64; 6]) -> Option<u32> {
        let mut d = [0u8; 64];
        d[0..4].copy_from_slice(&nr.to_le_bytes());
        d[4..8].copy_from_slice(&arch.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            d[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        let mut acc: u32 = 0;
        let mut pc = 0usize;
        let mut steps = 0;
        while steps <= prog.len() {
            steps += 1;
            let i = prog.get(pc)?;
            pc += 1;
            match i.code {
                op::LD_ABS => {
                    let k = i.k as usize;
                    acc = u32::from_le_bytes(d.get(k..k + 4)?.try_into().ok()?);
                }
                op::AND => acc &= i.k,
                op::RET => return Some(i.k),
                op::JA => pc += i.k as usize,
                op::JEQ | op::JGT | op::JGE => {
                    let c = match i.code {
                        op::JEQ => acc == i.k,
                        op::JGT => acc > i.k,
                        _ => acc >= i.k,
                    };
                    pc += if c { i.jt } else { i.jf } as usize;
                }
                _ => return None,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::interp::run;
    use super::*;
    use proptest::prelude::*;

    const X64: u32 = 0xc000_003e;

    fn rule(name: &str, action: Action, conds: Vec<Cond>) -> Rule {
        Rule {
            name: name.into(),
            action,
            conds,
        }
    }

    fn c(index: u8, op: Op, value: u64, value_two: u64) -> Cond {
        Cond {
            index,
            op,
            value,
            value_two,
        }
    }

    #[test]
    fn arch_check_and_default() {
        let p = Policy {
            default: Action::Errno(1),
            arches: vec![Arch::X86_64],
            rules: vec![
                rule("read", Action::Allow, vec![]),
                rule("getpid", Action::Errno(1), vec![]),
            ],
        };
        let prog = compile(&p).expect("compiles").program;
        assert_eq!(run(&prog, X64, 0, [0; 6]), Some(ret::ALLOW));
        assert_eq!(run(&prog, X64, 1, [0; 6]), Some(ret::ERRNO | 1));
        // i386 and aarch64 are not allowed: killed.
        assert_eq!(run(&prog, 0x4000_0003, 3, [0; 6]), Some(ret::KILL_PROCESS));
        assert_eq!(run(&prog, 0xc000_00b7, 63, [0; 6]), Some(ret::KILL_PROCESS));
        // x32 numbers on x86_64 without x32 allowed: killed.
        assert_eq!(
            run(&prog, X64, X32_SYSCALL_BIT, [0; 6]),
            Some(ret::KILL_PROCESS)
        );
    }

    #[test]
    fn x32_and_i386_sections() {
        let p = Policy {
            default: Action::Errno(38),
            arches: vec![Arch::X86_64, Arch::X86, Arch::X32],
            rules: vec![rule("read", Action::Allow, vec![])],
        };
        let prog = compile(&p).expect("compiles").program;
        assert_eq!(run(&prog, X64, X32_SYSCALL_BIT, [0; 6]), Some(ret::ALLOW));
        assert_eq!(
            run(&prog, X64, X32_SYSCALL_BIT + 1, [0; 6]),
            Some(ret::ERRNO | 38)
        );
        assert_eq!(run(&prog, 0x4000_0003, 3, [0; 6]), Some(ret::ALLOW));
        assert_eq!(run(&prog, 0x4000_0003, 0, [0; 6]), Some(ret::ERRNO | 38));
        let only32 = Policy {
            arches: vec![Arch::X32],
            ..p
        };
        let prog = compile(&only32).expect("compiles").program;
        assert_eq!(run(&prog, X64, X32_SYSCALL_BIT, [0; 6]), Some(ret::ALLOW));
        assert_eq!(run(&prog, X64, 0, [0; 6]), Some(ret::KILL_PROCESS));
    }

    #[test]
    fn conditions_then_fallback() {
        // personality(0) and personality(0xffffffff) allowed, others EPERM;
        // clone without namespace flags allowed.
        let ns: u64 = 0x7e02_0000;
        let p = Policy {
            default: Action::Errno(1),
            arches: vec![Arch::X86_64],
            rules: vec![
                rule("personality", Action::Allow, vec![c(0, Op::Eq, 0, 0)]),
                rule(
                    "personality",
                    Action::Allow,
                    vec![c(0, Op::Eq, 0xffff_ffff, 0)],
                ),
                rule("clone", Action::Allow, vec![c(0, Op::MaskedEq, ns, 0)]),
                rule(
                    "write",
                    Action::Log,
                    vec![c(0, Op::Gt, 2, 0), c(2, Op::Le, 100, 0)],
                ),
                rule("write", Action::Allow, vec![]),
            ],
        };
        let prog = compile(&p).expect("compiles").program;
        let pers = 135;
        assert_eq!(run(&prog, X64, pers, [0; 6]), Some(ret::ALLOW));
        assert_eq!(
            run(&prog, X64, pers, [0xffff_ffff, 0, 0, 0, 0, 0]),
            Some(ret::ALLOW)
        );
        assert_eq!(
            run(&prog, X64, pers, [8, 0, 0, 0, 0, 0]),
            Some(ret::ERRNO | 1)
        );
        assert_eq!(
            run(&prog, X64, pers, [1 << 32, 0, 0, 0, 0, 0]),
            Some(ret::ERRNO | 1)
        );
        assert_eq!(run(&prog, X64, 56, [0x11, 0, 0, 0, 0, 0]), Some(ret::ALLOW));
        assert_eq!(
            run(&prog, X64, 56, [0x2000_0011, 0, 0, 0, 0, 0]),
            Some(ret::ERRNO | 1)
        );
        assert_eq!(run(&prog, X64, 1, [3, 0, 50, 0, 0, 0]), Some(ret::LOG));
        assert_eq!(run(&prog, X64, 1, [3, 0, 500, 0, 0, 0]), Some(ret::ALLOW));
        assert_eq!(run(&prog, X64, 1, [1, 0, 50, 0, 0, 0]), Some(ret::ALLOW));
    }

    #[test]
    fn unknown_names_are_reported_and_skipped() {
        let p = Policy {
            default: Action::Allow,
            arches: vec![Arch::X86_64, Arch::Aarch64],
            rules: vec![
                rule("no_such_call", Action::Errno(1), vec![]),
                rule("open", Action::Errno(2), vec![]),
            ],
        };
        let out = compile(&p).expect("compiles");
        assert_eq!(out.unknown, vec!["no_such_call".to_string()]);
        // open exists on x86_64 only; aarch64 just has no rule for it.
        assert_eq!(run(&out.program, X64, 2, [0; 6]), Some(ret::ERRNO | 2));
        assert_eq!(run(&out.program, 0xc000_00b7, 56, [0; 6]), Some(ret::ALLOW));
    }

    #[test]
    fn long_programs_chain_far_jumps() {
        // Every syscall with a 6-condition rule makes blocks long enough
        // that the dispatch needs trampolines.
        let names: Vec<&str> = tables::X86_64.iter().map(|(n, _)| *n).take(60).collect();
        let conds: Vec<Cond> = (0..6).map(|i| c(i, Op::Ge, 10, 0)).collect();
        let p = Policy {
            default: Action::Errno(1),
            arches: vec![Arch::X86_64],
            rules: names
                .iter()
                .map(|n| rule(n, Action::Allow, conds.clone()))
                .collect(),
        };
        let prog = compile(&p).expect("compiles").program;
        assert!(prog.len() > 256 * 3, "{}", prog.len());
        for (name, nr) in tables::X86_64.iter().take(60) {
            assert_eq!(run(&prog, X64, *nr, [10; 6]), Some(ret::ALLOW), "{name}");
            assert_eq!(
                run(&prog, X64, *nr, [10, 10, 10, 10, 10, 9]),
                Some(ret::ERRNO | 1),
                "{name}"
            );
        }
        // Newer than every name: ENOSYS.
        assert_eq!(run(&prog, X64, 400, [10; 6]), Some(ret::ERRNO | 38));
    }

    #[test]
    fn syscalls_newer_than_the_profile_get_enosys() {
        let p = Policy {
            default: Action::Errno(1),
            arches: vec![Arch::X86_64, Arch::X86, Arch::X32],
            rules: vec![
                rule("read", Action::Allow, vec![]),
                rule("clone", Action::Allow, vec![]),
            ],
        };
        let prog = compile(&p).expect("compiles").program;
        let clone = Arch::X86_64.syscall("clone").expect("clone");
        let clone3 = Arch::X86_64.syscall("clone3").expect("clone3");
        assert_eq!(run(&prog, X64, clone, [0; 6]), Some(ret::ALLOW));
        // Older than clone and not named: the default.
        assert_eq!(run(&prog, X64, 1, [0; 6]), Some(ret::ERRNO | 1));
        assert_eq!(run(&prog, X64, clone3, [0; 6]), Some(ret::ERRNO | 38));
        assert_eq!(run(&prog, X64, 1000, [0; 6]), Some(ret::ERRNO | 38));
        // Each ABI against its own newest name.
        let x32_clone = Arch::X32.syscall("clone").expect("x32 clone");
        assert_eq!(run(&prog, X64, x32_clone - 1, [0; 6]), Some(ret::ERRNO | 1));
        assert_eq!(
            run(&prog, X64, x32_clone + 1, [0; 6]),
            Some(ret::ERRNO | 38)
        );
        assert_eq!(
            run(&prog, X64, X32_SYSCALL_BIT + 1000, [0; 6]),
            Some(ret::ERRNO | 38)
        );
        let i386_clone = Arch::X86.syscall("clone").expect("i386 clone");
        assert_eq!(
            run(&prog, 0x4000_0003, i386_clone - 1, [0; 6]),
            Some(ret::ERRNO | 1)
        );
        assert_eq!(run(&prog, 0x4000_0003, 1000, [0; 6]), Some(ret::ERRNO | 38));
        // A permissive default needs no stub; nor one that is ENOSYS already.
        for default in [
            Action::Allow,
            Action::Log,
            Action::Trace(1),
            Action::Errno(38),
        ] {
            let q = Policy {
                default,
                ..p.clone()
            };
            let prog = compile(&q).expect("compiles").program;
            assert_eq!(
                run(&prog, X64, 1000, [0; 6]),
                Some(default.ret()),
                "{default:?}"
            );
        }
    }

    #[test]
    fn too_long_is_an_error() {
        let conds: Vec<Cond> = (0..6).map(|i| c(i, Op::Ge, 10, 0)).collect();
        let p = Policy {
            default: Action::Errno(1),
            arches: vec![Arch::X86_64],
            rules: tables::X86_64
                .iter()
                .map(|(n, _)| rule(n, Action::Allow, conds.clone()))
                .collect(),
        };
        assert!(matches!(compile(&p), Err(CompileError::TooLong(_))));
    }

    fn any_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            Just(Op::Ne),
            Just(Op::Lt),
            Just(Op::Le),
            Just(Op::Eq),
            Just(Op::Ge),
            Just(Op::Gt),
            Just(Op::MaskedEq)
        ]
    }

    /// Values near word boundaries, where hi/lo splitting goes wrong.
    fn edgy() -> impl Strategy<Value = u64> {
        prop_oneof![
            any::<u64>(),
            (0u64..4).prop_map(|x| x),
            (0u64..4).prop_map(|x| 0xffff_ffff - x),
            (0u64..4).prop_map(|x| 0x1_0000_0000 + x),
            (0u64..4).prop_map(|x| u64::MAX - x),
            (any::<u32>(), 0u64..3).prop_map(|(lo, hi)| (hi << 32) | lo as u64),
        ]
    }

    proptest! {
        #[test]
        fn bpf_matches_reference(
            conds in proptest::collection::vec((0u8..6, any_op(), edgy(), edgy()), 1..4),
            args in proptest::array::uniform6(edgy()),
        ) {
            let conds: Vec<Cond> = conds.into_iter().map(|(i, o, v, w)| c(i, o, v, w)).collect();
            let p = Policy {
                default: Action::Errno(1),
                arches: vec![Arch::X86_64],
                rules: vec![rule("ioctl", Action::Trace(7), conds.clone())],
            };
            let prog = compile(&p).expect("compiles").program;
            let want = if conds.iter().all(|c| c.holds(args[c.index as usize])) {
                ret::TRACE | 7
            } else {
                ret::ERRNO | 1
            };
            prop_assert_eq!(run(&prog, X64, 16, args), Some(want));
        }
    }
}
