//! `cargo xtask hot-functions`: regenerates crates/rr-cli/hot-functions.txt,
//! the functions that `cargo xtask bench` links first in the static rrc.
//!
//! Each of create, start, delete, run and exec runs once with its main
//! process single-stepped under ptrace (the processes it forks run
//! untraced: only the main process's pages count in its peak RSS). Every
//! instruction address is mapped to its function with `nm` of an
//! unstripped build, and the union is written without what changes from
//! build to build (legacy-mangling hashes, LTO's `.N` suffixes). Root only;
//! it takes a few minutes (about a million steps per command).

use std::collections::{BTreeMap, HashSet};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::Result;

/// Set in the re-executed xtask inside the private mount namespace.
const INNER: &str = "RR_HOT_INNER";

/// Entry point of `cargo xtask hot-functions`.
pub fn hot_functions() -> Result<()> {
    if let Some(rrc) = std::env::var_os(INNER) {
        return inner(Path::new(&rrc));
    }
    if !crate::is_root() {
        return Err("hot-functions creates containers: run it as root".into());
    }
    crate::ensure_packages(&[("busybox-static", "/bin/busybox")])?;
    let rrc = build_unstripped()?;
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    // Private: the cgroup2 unmount below (as in the bench) must not leak.
    let err = Command::new("unshare")
        .args(["--mount", "--propagation", "private"])
        .arg(&exe)
        .arg("hot-functions")
        .env(INNER, &rrc)
        .exec();
    Err(format!("exec unshare {}: {err}", exe.display()))
}

/// The bench's static build with symbols kept, in its own target dir so
/// that neither build invalidates the other.
fn build_unstripped() -> Result<PathBuf> {
    let target = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let dir = crate::target_dir().join("hot");
    crate::run(
        crate::cargo()
            .args(["build", "--release", "-p", "rr-cli", "--bin", "rrc"])
            .arg("--target")
            .arg(&target)
            .env("CARGO_TARGET_DIR", &dir)
            .env("CARGO_PROFILE_RELEASE_STRIP", "false")
            .env(
                "RUSTFLAGS",
                "-C target-feature=+crt-static -C link-arg=-Wl,-z,pack-relative-relocs",
            ),
    )?;
    Ok(dir.join(target).join("release").join("rrc"))
}

fn inner(rrc: &Path) -> Result<()> {
    if Path::new("/sys/fs/cgroup/unified").exists() {
        let _ = Command::new("umount")
            .arg("/sys/fs/cgroup/unified")
            .stderr(Stdio::null())
            .status();
    }
    let work = std::env::temp_dir().join(format!("rr-hot-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let result = trace_all(rrc, &work);
    let _ = std::fs::remove_dir_all(&work);
    let offsets = result?;
    let names = symbolize(rrc, &offsets)?;
    let out = crate::project_root().join("crates/rr-cli/hot-functions.txt");
    let mut text = names.join("\n");
    text.push('\n');
    std::fs::write(&out, text).map_err(|e| format!("{}: {e}", out.display()))?;
    eprintln!(
        "hot-functions: {} functions -> {}",
        names.len(),
        out.display()
    );
    Ok(())
}

/// Instruction offsets (from the binary's load address) executed by the
/// main process of each command.
fn trace_all(rrc: &Path, work: &Path) -> Result<HashSet<u64>> {
    let bundle = work.join("bundle");
    rr_tests::make_busybox_rootfs(&bundle.join("rootfs"))
        .map_err(|e| format!("busybox rootfs: {e}"))?;
    crate::run(Command::new(rrc).arg("spec").arg("--bundle").arg(&bundle))?;
    crate::set_process(&bundle, &["true"])?;
    let b = bundle.to_string_lossy().into_owned();
    let root = work.join("root").to_string_lossy().into_owned();
    let rrc_cmd = |args: &[&str]| {
        let mut c = Command::new(rrc);
        c.arg("--root").arg(&root).args(args);
        c.stdin(Stdio::null()).stdout(Stdio::null());
        c
    };
    let mut pcs = HashSet::new();
    step(rrc_cmd(&["create", "--bundle", &b, "hot"]), &mut pcs)?;
    step(rrc_cmd(&["start", "hot"]), &mut pcs)?;
    std::thread::sleep(std::time::Duration::from_millis(300));
    step(rrc_cmd(&["delete", "hot"]), &mut pcs)?;
    let _ = rrc_cmd(&["delete", "--force", "hot"]).status();
    step(rrc_cmd(&["run", "--bundle", &b, "hot-run"]), &mut pcs)?;
    let _ = rrc_cmd(&["delete", "--force", "hot-run"]).status();
    crate::set_process(&bundle, &["sleep", "1000"])?;
    crate::run(&mut rrc_cmd(&[
        "run", "--detach", "--bundle", &b, "hot-exec",
    ]))?;
    let traced = step(rrc_cmd(&["exec", "hot-exec", "true"]), &mut pcs);
    let _ = rrc_cmd(&["delete", "--force", "hot-exec"]).status();
    traced?;
    Ok(pcs)
}

/// Runs `cmd` single-stepping its main process from its exec to its exit,
/// adding each instruction's offset from the binary's load address.
fn step(mut cmd: Command, pcs: &mut HashSet<u64>) -> Result<()> {
    // SAFETY: PTRACE_TRACEME is async-signal-safe and touches no memory.
    unsafe {
        cmd.pre_exec(|| {
            if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| format!("spawning {cmd:?}: {e}"))?;
    let pid = child.id() as i32;
    let mut st = 0;
    // SAFETY: waits for our own traced child; st is a valid out pointer.
    if unsafe { libc::waitpid(pid, &mut st, 0) } != pid || !libc::WIFSTOPPED(st) {
        return Err(format!("{cmd:?}: no stop after exec"));
    }
    // SAFETY: our stopped tracee; a plain flag.
    unsafe { libc::ptrace(libc::PTRACE_SETOPTIONS, pid, 0, libc::PTRACE_O_EXITKILL) };
    let base = load_address(pid)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let mut sig = 0;
    loop {
        // SAFETY: our stopped tracee; resumes it for one instruction.
        unsafe { libc::ptrace(libc::PTRACE_SINGLESTEP, pid, 0, sig) };
        sig = 0;
        // SAFETY: as above.
        if unsafe { libc::waitpid(pid, &mut st, libc::__WALL) } != pid || !libc::WIFSTOPPED(st) {
            break;
        }
        if libc::WSTOPSIG(st) != libc::SIGTRAP {
            sig = libc::WSTOPSIG(st);
            continue;
        }
        if let Some(off) = pc(pid)?.checked_sub(base) {
            pcs.insert(off);
        }
        if std::time::Instant::now() > deadline {
            // SAFETY: our child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            return Err(format!("{cmd:?}: still running after 300 s of stepping"));
        }
    }
    if !(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0) {
        return Err(format!("{cmd:?} failed (wait status {st:#x})"));
    }
    Ok(())
}

/// The program counter of a stopped tracee (NT_PRSTATUS regset).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn pc(pid: i32) -> Result<u64> {
    // SAFETY: an all-zero user_regs_struct is a valid out value.
    let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: (&mut regs as *mut libc::user_regs_struct).cast(),
        iov_len: std::mem::size_of::<libc::user_regs_struct>(),
    };
    // SAFETY: our stopped tracee; iov describes regs, a valid out buffer.
    let r = unsafe { libc::ptrace(libc::PTRACE_GETREGSET, pid, libc::NT_PRSTATUS, &mut iov) };
    if r != 0 {
        return Err(format!(
            "PTRACE_GETREGSET {pid}: {}",
            std::io::Error::last_os_error()
        ));
    }
    #[cfg(target_arch = "x86_64")]
    return Ok(regs.rip);
    #[cfg(target_arch = "aarch64")]
    return Ok(regs.pc);
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn pc(_pid: i32) -> Result<u64> {
    Err("hot-functions: reading the program counter is only written for x86_64 and aarch64".into())
}

/// Where the static-pie is mapped: the start of its first mapping.
fn load_address(pid: i32) -> Result<u64> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map_err(|e| format!("/proc/{pid}/maps: {e}"))?;
    maps.split('-')
        .next()
        .and_then(|a| u64::from_str_radix(a, 16).ok())
        .ok_or_else(|| format!("/proc/{pid}/maps: no first mapping"))
}

/// The functions containing `offsets`, by address, normalized.
fn symbolize(rrc: &Path, offsets: &HashSet<u64>) -> Result<Vec<String>> {
    let out = Command::new("nm")
        .args(["-n", "-S", "--defined-only"])
        .arg(rrc)
        .output()
        .map_err(|e| format!("nm: {e}"))?;
    // start -> (end, name) of each function symbol with a size.
    let mut funcs = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let [addr, size, kind, name] = f[..] {
            if !matches!(kind, "t" | "T" | "w" | "W") {
                continue;
            }
            let (Ok(a), Ok(s)) = (u64::from_str_radix(addr, 16), u64::from_str_radix(size, 16))
            else {
                continue;
            };
            funcs.insert(a, (a + s.max(1), name.to_string()));
        }
    }
    let mut hit = BTreeMap::new();
    for &pc in offsets {
        if let Some((&start, (end, name))) = funcs.range(..=pc).next_back() {
            if pc < *end {
                hit.insert(start, normalize(name));
            }
        }
    }
    let mut seen = HashSet::new();
    Ok(hit
        .into_values()
        .filter(|n| seen.insert(n.clone()))
        .collect())
}

/// `name` without LTO's `.N` suffixes and, for legacy-mangled Rust, the
/// 16 hex digits of its hash (kept: the `17h` that ends the prefix).
fn normalize(name: &str) -> String {
    if !name.starts_with("_ZN") && !name.starts_with("_R") {
        return name.to_string();
    }
    let mut n = name;
    while let Some((head, tail)) = n.rsplit_once('.') {
        if tail.is_empty() || !tail.bytes().all(|b| b.is_ascii_digit()) {
            break;
        }
        n = head;
    }
    if n.starts_with("_ZN") && n.len() > 20 {
        let (head, hash) = n.split_at(n.len() - 20);
        if hash.starts_with("17h") && hash.ends_with('E') {
            return format!("{head}17h");
        }
    }
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn hashes_and_lto_suffixes_are_dropped() {
        assert_eq!(
            normalize("_ZN12rr_container6config11load_bundle17h77e239dcaa347149E"),
            "_ZN12rr_container6config11load_bundle17h"
        );
        assert_eq!(
            normalize("_RNvNtCslNYArtu3iFV_5alloc3fmt6format.1174"),
            "_RNvNtCslNYArtu3iFV_5alloc3fmt6format"
        );
        assert_eq!(normalize("__strlen_evex"), "__strlen_evex");
        assert_eq!(normalize("call_fini.part.0"), "call_fini.part.0");
    }
}
