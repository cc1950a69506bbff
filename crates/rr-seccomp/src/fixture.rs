//! Generates tests/fixtures/seccomp-default.json, rr's own profile of the
//! shape of Docker's default one, from the syscall tables, and checks that
//! the committed file is what the rule below gives.
//!
//! The rule: default action SCMP_ACT_ERRNO with errno 1 (EPERM);
//! architectures x86_64, x86 and x32; every syscall of the x86_64 and i386
//! tables is allowed except those in [`DENIED`] (privileged or host-wide
//! operations) and those in [`CONDITIONAL`]; `clone` is allowed when its
//! flags ask for no new namespace, `personality` for the five personas
//! programs use, and `clone3` fails with ENOSYS (its flags are behind a
//! pointer that seccomp cannot read) so that C libraries fall back to
//! `clone`. Set RR_REGENERATE_FIXTURES=1 to rewrite the file.

use serde_json::{json, Value};

use super::tables;

/// Syscalls left out of the allow list.
const DENIED: &[&str] = &[
    "_sysctl",
    "acct",
    "add_key",
    "adjtimex",
    "afs_syscall",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "clock_settime64",
    "create_module",
    "delete_module",
    "fanotify_init",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "get_mempolicy",
    "getpmsg",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "lsm_set_self_attr",
    "mbind",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "open_tree_attr",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "putpmsg",
    "query_module",
    "quotactl",
    "quotactl_fd",
    "reboot",
    "request_key",
    "security",
    "set_mempolicy",
    "set_mempolicy_home_node",
    "setns",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "syslog",
    "tuxcall",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vhangup",
    "vm86",
    "vm86old",
    "vserver",
];

/// Syscalls with their own rules below.
const CONDITIONAL: &[&str] = &["clone", "clone3", "personality"];

/// CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET.
const NS_FLAGS: u64 =
    0x0002_0000 | 0x0200_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000;

/// The profile as JSON.
pub fn profile() -> Value {
    let mut names: Vec<&str> = tables::X86_64
        .iter()
        .chain(tables::X86.iter())
        .map(|(n, _)| *n)
        .filter(|n| !DENIED.contains(n) && !CONDITIONAL.contains(n))
        .collect();
    names.sort();
    names.dedup();
    let mut syscalls = vec![json!({"names": names, "action": "SCMP_ACT_ALLOW"})];
    for p in [0u64, 8, 0x20000, 0x20008, 0xffff_ffff] {
        syscalls.push(json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": p, "op": "SCMP_CMP_EQ"}]}));
    }
    syscalls.push(json!({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 0, "value": NS_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}));
    syscalls
        .push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS}));
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": syscalls,
    })
}

#[test]
fn fixture_is_generated_by_the_rule() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/seccomp-default.json"
    );
    let want = serde_json::to_string_pretty(&profile()).expect("json") + "\n";
    if std::env::var_os("RR_REGENERATE_FIXTURES").is_some() {
        std::fs::write(path, &want).expect("write fixture");
    }
    let have = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        have == want,
        "{path} is stale: rerun with RR_REGENERATE_FIXTURES=1"
    );
}
