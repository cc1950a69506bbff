//! cgroup v2 device control: an eBPF program of type
//! `BPF_PROG_TYPE_CGROUP_DEVICE`, assembled here from the rules and loaded
//! and attached with the bpf(2) system call.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::devices::{access, DeviceKind, DeviceRule};
use crate::error::{Error, Result};

/// One eBPF instruction in the kernel's 8-byte layout.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Opcode.
    pub code: u8,
    /// dst register in the low nibble, src in the high nibble.
    pub regs: u8,
    /// Signed offset (jumps, memory).
    pub off: i16,
    /// Signed immediate.
    pub imm: i32,
}

// Opcode pieces from the eBPF instruction set.
const ALU64: u8 = 0x07;
const JMP: u8 = 0x05;
const JMP32: u8 = 0x06;
const LDX: u8 = 0x01;
const MEM: u8 = 0x60;
const W: u8 = 0x00;
const K: u8 = 0x00;
const X: u8 = 0x08;
const MOV: u8 = 0xb0;
const AND: u8 = 0x50;
const RSH: u8 = 0x70;
const JNE: u8 = 0x50;
const JEQ: u8 = 0x10;
const EXIT: u8 = 0x90;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (dst & 0xf) | (src << 4),
        off,
        imm,
    }
}

fn ldx_w(dst: u8, src: u8, off: i16) -> Insn {
    insn(LDX | MEM | W, dst, src, off, 0)
}
fn mov_reg(dst: u8, src: u8) -> Insn {
    insn(ALU64 | MOV | X, dst, src, 0, 0)
}
fn mov_imm(dst: u8, imm: i32) -> Insn {
    insn(ALU64 | MOV | K, dst, 0, 0, imm)
}
fn and_imm(dst: u8, imm: i32) -> Insn {
    insn(ALU64 | AND | K, dst, 0, 0, imm)
}
fn rsh_imm(dst: u8, imm: i32) -> Insn {
    insn(ALU64 | RSH | K, dst, 0, 0, imm)
}
fn jne32(dst: u8, imm: u32, off: i16) -> Insn {
    insn(JMP32 | JNE | K, dst, 0, off, imm as i32)
}
fn jeq32(dst: u8, imm: u32, off: i16) -> Insn {
    insn(JMP32 | JEQ | K, dst, 0, off, imm as i32)
}
fn exit() -> Insn {
    insn(JMP | EXIT, 0, 0, 0, 0)
}

// Kernel values for the device type in the low 16 bits of access_type.
const DEV_BLOCK: u32 = 1;
const DEV_CHAR: u32 = 2;

// Registers: r2 type, r3 access, r4 major, r5 minor, r6 scratch.
const R_TYPE: u8 = 2;
const R_ACC: u8 = 3;
const R_MAJ: u8 = 4;
const R_MIN: u8 = 5;
const R_TMP: u8 = 6;

/// Assemble the program for `rules`.
///
/// The rules are applied in order on top of "everything allowed", as v1
/// writes to devices.allow/deny would be, so the last matching rule wins:
/// the program checks them from last to first and returns the first match.
/// An allow rule matches when it grants every requested access; a deny
/// rule when it covers any of them.
pub fn device_program(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut p = vec![
        // struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
        ldx_w(R_TYPE, 1, 0),
        mov_reg(R_ACC, R_TYPE),
        and_imm(R_TYPE, 0xffff),
        rsh_imm(R_ACC, 16),
        ldx_w(R_MAJ, 1, 4),
        ldx_w(R_MIN, 1, 8),
    ];
    for r in rules.iter().rev() {
        let mut block: Vec<Option<Insn>> = Vec::new();
        // `None` marks a jump to the end of this block, patched below.
        let mut skips: Vec<(usize, Insn)> = Vec::new();
        let mut cond = |b: &mut Vec<Option<Insn>>, i: Insn| {
            skips.push((b.len(), i));
            b.push(None);
        };
        match r.kind {
            DeviceKind::All => {}
            DeviceKind::Char => cond(&mut block, jne32(R_TYPE, DEV_CHAR, 0)),
            DeviceKind::Block => cond(&mut block, jne32(R_TYPE, DEV_BLOCK, 0)),
        }
        if let Some(m) = r.major {
            cond(&mut block, jne32(R_MAJ, m, 0));
        }
        if let Some(m) = r.minor {
            cond(&mut block, jne32(R_MIN, m, 0));
        }
        let acc = r.access & access::ALL;
        if r.allow && acc != access::ALL {
            block.push(Some(mov_reg(R_TMP, R_ACC)));
            block.push(Some(and_imm(R_TMP, (!acc & access::ALL) as i32)));
            cond(&mut block, jne32(R_TMP, 0, 0));
        } else if !r.allow && acc != access::ALL {
            block.push(Some(mov_reg(R_TMP, R_ACC)));
            block.push(Some(and_imm(R_TMP, acc as i32)));
            cond(&mut block, jeq32(R_TMP, 0, 0));
        }
        block.push(Some(mov_imm(0, i32::from(r.allow))));
        block.push(Some(exit()));
        let len = block.len();
        let skips_len = skips.len();
        for (pos, mut i) in skips {
            i.off = (len - pos - 1) as i16;
            if let Some(slot) = block.get_mut(pos) {
                *slot = Some(i);
            }
        }
        let unconditional = skips_len == 0;
        p.extend(block.into_iter().flatten());
        if unconditional {
            // This rule decides every request: anything after it would be
            // unreachable, which the verifier rejects.
            return p;
        }
    }
    p.push(mov_imm(0, 1));
    p.push(exit());
    p
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

#[repr(C)]
#[derive(Default)]
struct LoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    // Room for later kernel fields, which must be zero.
    _pad: [u64; 8],
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
    _pad: [u32; 11],
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: [u32; 11],
}

#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
    _pad: [u32; 13],
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, properly sized repr(C) bpf_attr prefix for
    // `cmd`; the kernel reads (and for queries writes) only within size_of::<T>().
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: the kernel just returned this descriptor to us and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// Load a device program; the kernel verifier checks it here.
pub fn load(prog: &[Insn]) -> Result<OwnedFd> {
    let license = b"Apache-2.0\0";
    let mut log = vec![0u8; 64 * 1024];
    let mut name = [0u8; 16];
    for (d, s) in name.iter_mut().zip(b"rr_devices") {
        *d = *s;
    }
    let mut attr = LoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        prog_name: name,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(owned(fd)),
        Err(source) => {
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(log.get(..end).unwrap_or_default()).into_owned();
            Err(Error::Bpf {
                op: "BPF_PROG_LOAD",
                source,
                log: text,
            })
        }
    }
}

fn open_dir(dir: &Path) -> Result<std::fs::File> {
    std::fs::File::open(dir).map_err(crate::error::io_err(dir))
}

/// The ids of the device programs attached to the cgroup directory.
pub fn query(dir: &Path) -> Result<Vec<u32>> {
    let d = open_dir(dir)?;
    let mut ids = vec![0u32; 64];
    let mut attr = QueryAttr {
        target_fd: d.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut attr).map_err(|source| Error::Bpf {
        op: "BPF_PROG_QUERY",
        source,
        log: String::new(),
    })?;
    ids.truncate(attr.prog_cnt as usize);
    Ok(ids)
}

/// Attach `prog` to the cgroup at `dir` and then detach the device programs
/// that were there before, so there is no moment without a filter.
pub fn replace(dir: &Path, prog: &OwnedFd) -> Result<()> {
    let old = query(dir)?;
    let d = open_dir(dir)?;
    let mut attr = AttachAttr {
        target_fd: d.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map_err(|source| Error::Bpf {
        op: "BPF_PROG_ATTACH",
        source,
        log: String::new(),
    })?;
    for id in old {
        let mut g = GetFdAttr {
            prog_id: id,
            ..Default::default()
        };
        let Ok(fd) = bpf(BPF_PROG_GET_FD_BY_ID, &mut g).map(owned) else {
            continue; // already gone
        };
        let mut det = AttachAttr {
            target_fd: d.as_raw_fd() as u32,
            attach_bpf_fd: fd.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            ..Default::default()
        };
        bpf(BPF_PROG_DETACH, &mut det).map_err(|source| Error::Bpf {
            op: "BPF_PROG_DETACH",
            source,
            log: String::new(),
        })?;
    }
    Ok(())
}

/// Build, load and attach the program for `rules` to the cgroup at `dir`.
pub fn apply_rules(dir: &Path, rules: &[DeviceRule]) -> Result<()> {
    let prog = device_program(rules);
    let fd = load(&prog)?;
    replace(dir, &fd)
}

/// Run the program in user space on one request (for testing the logic
/// of the assembled code independently of the kernel). Supports exactly
/// the instructions [`device_program`] emits.
pub fn interpret(prog: &[Insn], dev_type: u32, acc: u32, major: u32, minor: u32) -> Option<u64> {
    let ctx = [(acc << 16) | dev_type, major, minor];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    for _ in 0..100_000 {
        let i = *prog.get(pc)?;
        let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
        pc += 1;
        match i.code {
            c if c == LDX | MEM | W => *r.get_mut(dst)? = u64::from(*ctx.get(i.off as usize / 4)?),
            c if c == ALU64 | MOV | X => *r.get_mut(dst)? = *r.get(src)?,
            c if c == ALU64 | MOV | K => *r.get_mut(dst)? = i.imm as i64 as u64,
            c if c == ALU64 | AND | K => *r.get_mut(dst)? &= i.imm as i64 as u64,
            c if c == ALU64 | RSH | K => *r.get_mut(dst)? >>= i.imm,
            c if c == JMP32 | JNE | K || c == JMP32 | JEQ | K => {
                let v = *r.get(dst)? as u32;
                let hit = if c == JMP32 | JNE | K {
                    v != i.imm as u32
                } else {
                    v == i.imm as u32
                };
                if hit {
                    pc = (pc as i64 + i64::from(i.off)) as usize;
                }
            }
            c if c == JMP | EXIT => return Some(r[0]),
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        allow: bool,
        kind: DeviceKind,
        major: Option<u32>,
        minor: Option<u32>,
        acc: u32,
    ) -> DeviceRule {
        DeviceRule {
            allow,
            kind,
            major,
            minor,
            access: acc,
        }
    }

    #[test]
    fn encoding() {
        let i = ldx_w(2, 1, 4);
        assert_eq!((i.code, i.regs, i.off), (0x61, 0x12, 4));
        assert_eq!(exit().code, 0x95);
        assert_eq!(mov_imm(0, 1).code, 0xb7);
        assert_eq!(jne32(4, 1, 3).code, 0x56);
        assert_eq!(std::mem::size_of::<Insn>(), 8);
    }

    #[test]
    fn semantics() {
        use access::*;
        let rules = vec![
            rule(false, DeviceKind::All, None, None, ALL),
            rule(true, DeviceKind::Char, Some(1), Some(5), ALL),
            rule(true, DeviceKind::Char, Some(1), Some(3), READ),
            rule(false, DeviceKind::Char, Some(1), Some(5), WRITE),
        ];
        let p = device_program(&rules);
        let run = |t, a, ma, mi| interpret(&p, t, a, ma, mi).unwrap();
        assert_eq!(run(DEV_CHAR, READ, 1, 5), 1);
        assert_eq!(run(DEV_CHAR, WRITE, 1, 5), 0);
        assert_eq!(run(DEV_CHAR, READ | WRITE, 1, 5), 0);
        assert_eq!(run(DEV_CHAR, READ, 1, 3), 1);
        assert_eq!(run(DEV_CHAR, READ | WRITE, 1, 3), 0);
        assert_eq!(run(DEV_BLOCK, READ, 1, 3), 0);
        assert_eq!(run(DEV_CHAR, READ, 4, 0), 0);
        let open = device_program(&[]);
        assert_eq!(interpret(&open, DEV_BLOCK, WRITE, 8, 0), Some(1));
        // Nothing follows a rule that matches everything.
        let closed = device_program(&[
            rule(true, DeviceKind::Char, None, None, ALL),
            rule(false, DeviceKind::All, None, None, ALL),
        ]);
        assert_eq!(closed.last().map(|i| i.code), Some(0x95));
        assert_eq!(closed.len(), 6 + 2);
    }

    proptest::proptest! {
        // Against a direct evaluation of "last matching rule wins".
        #[test]
        fn matches_reference(
            raw in proptest::collection::vec((proptest::bool::ANY, 0u8..3, proptest::option::of(0u32..3), proptest::option::of(0u32..3), 1u32..8), 0..6),
            t in 1u32..3, a in 1u32..8, ma in 0u32..3, mi in 0u32..3,
        ) {
            let rules: Vec<DeviceRule> = raw.iter().map(|(al, k, ma, mi, ac)| rule(*al,
                match k { 0 => DeviceKind::All, 1 => DeviceKind::Char, _ => DeviceKind::Block }, *ma, *mi, *ac)).collect();
            let expect = rules.iter().rev().find_map(|r| {
                let kind_ok = match r.kind { DeviceKind::All => true, DeviceKind::Char => t == DEV_CHAR, DeviceKind::Block => t == DEV_BLOCK };
                let num_ok = r.major.is_none_or(|m| m == ma) && r.minor.is_none_or(|m| m == mi);
                let acc_ok = if r.allow { a & !r.access == 0 } else { a & r.access != 0 };
                (kind_ok && num_ok && acc_ok).then_some(u64::from(r.allow))
            }).unwrap_or(1);
            proptest::prop_assert_eq!(interpret(&device_program(&rules), t, a, ma, mi), Some(expect));
        }
    }
}
