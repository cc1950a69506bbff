//! Probes against real CRIU binaries: Debian's 3.17.1 at /usr/sbin/criu and,
//! when `RR_CRIU_BIN` names one, a CRIU 4.2.1 (built by xtask's criu_build).

use std::path::Path;

use rr_criu::{Criu, Error, Version};

const DEBIAN_CRIU: &str = "/usr/sbin/criu";

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn debian_criu_3_17_1_version_and_failing_feature_check() {
    if !Path::new(DEBIAN_CRIU).exists() {
        eprintln!("skipped: {DEBIAN_CRIU} is missing (apt-get install -y criu)");
        return;
    }
    if !is_root() {
        eprintln!("skipped: CRIU's RPC service needs root");
        return;
    }
    let criu = Criu::new(DEBIAN_CRIU);
    let v = criu.version().expect("VERSION probe").clone();
    if v != Version::new(3, 17, 1) {
        eprintln!("skipped: {DEBIAN_CRIU} is {v}, not Debian's 3.17.1");
        return;
    }
    assert_eq!(v.number(), 31701);
    // The `criu -V` fallback agrees with the RPC.
    let out = std::process::Command::new(DEBIAN_CRIU)
        .arg("-V")
        .output()
        .unwrap();
    let dash_v = Version::parse_dash_v(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert_eq!(dash_v.number(), v.number());

    // 3.17.1's vDSO probe fails on this kernel, so FEATURE_CHECK fails; the
    // error must say which CRIU and why.
    match criu.probe() {
        Err(e @ Error::FeatureCheck { .. }) => {
            let msg = e.to_string();
            eprintln!("feature check error: {msg}");
            assert!(msg.contains("CRIU 3.17.1"), "{msg}");
            assert!(msg.contains("feature check failed"), "{msg}");
        }
        Ok(p) => panic!("feature check unexpectedly passed on this kernel: {p:?}"),
        Err(e) => panic!("unexpected error kind: {e}"),
    }
    // Cached: the same answer again, and the version still available.
    assert!(criu.features().is_err());
    assert_eq!(criu.version().unwrap(), &v);
    let err = criu
        .require_version(&Version::new(4, 0, 0), "pidfd_store")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "CRIU 3.17.1 found, 4.0 or newer needed for pidfd_store"
    );
    assert!(criu
        .require_version(&Version::new(3, 15, 0), "checkpoint")
        .is_ok());
}

/// The 3.17.1 above comes from CRIU's VERSION reply, not from the `criu -V`
/// fallback: the same binary behind a wrapper that refuses `-V` still
/// reports 3.17.1, and still fails the feature check with that version in
/// the error.
#[test]
fn debian_criu_3_17_1_version_comes_from_the_rpc() {
    use std::os::unix::fs::PermissionsExt;

    if !Path::new(DEBIAN_CRIU).exists() {
        eprintln!("skipped: {DEBIAN_CRIU} is missing (apt-get install -y criu)");
        return;
    }
    if !is_root() {
        eprintln!("skipped: CRIU's RPC service needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let wrapper = dir.path().join("criu");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ncase \"$1\" in -V|--version) echo 'no -V here' >&2; exit 3;; esac\nexec {DEBIAN_CRIU} \"$@\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dash_v = std::process::Command::new(&wrapper)
        .arg("-V")
        .output()
        .unwrap();
    assert!(!dash_v.status.success(), "the wrapper must refuse -V");

    let criu = Criu::new(&wrapper);
    let v = criu.version().expect("VERSION over swrk").clone();
    if v != Version::new(3, 17, 1) {
        eprintln!("skipped: {DEBIAN_CRIU} is {v}, not Debian's 3.17.1");
        return;
    }
    let msg = criu.probe().expect_err("feature check").to_string();
    let head = format!(
        "CRIU 3.17.1 at {}: feature check failed: CRIU feature-check failed",
        wrapper.display()
    );
    assert!(msg.starts_with(&head), "{msg}");
    // What CRIU printed (its vDSO error, followed by NUL bytes) comes as
    // clean text in the message, never raw on our stderr.
    assert!(msg.contains("; CRIU printed: Error (criu/vdso.c"), "{msg}");
    assert!(!msg.chars().any(char::is_control), "{msg:?}");
}

#[test]
fn criu_4_2_1_probe() {
    let Some(bin) = std::env::var_os("RR_CRIU_BIN") else {
        eprintln!("skipped: RR_CRIU_BIN is unset (point it at a CRIU 4.2.1 binary)");
        return;
    };
    if !is_root() {
        eprintln!("skipped: CRIU's RPC service needs root");
        return;
    }
    let criu = Criu::new(&bin);
    let probe = criu.probe().expect("probe of CRIU 4.2.1");
    eprintln!("probe: {probe:?}");
    assert_eq!(probe.version, Version::new(4, 2, 1));
    assert!(!probe.features.mem_track, "mem_track");
    assert!(probe.features.lazy_pages, "lazy_pages");
    assert!(probe.features.pidfd_store, "pidfd_store");
    criu.check().expect("criu check passes with 4.2.1");
}

/// A real checkpoint and restore of a `sleep` in its own session with CRIU
/// 4.2.1, through the typed requests and the notification callback.
#[test]
fn criu_4_2_1_dump_and_restore_a_process() {
    use std::os::fd::{AsFd, OwnedFd};
    use std::os::unix::process::CommandExt;

    use rr_criu::{CriuOpts, NotifyError};

    let Some(bin) = std::env::var_os("RR_CRIU_BIN") else {
        eprintln!("skipped: RR_CRIU_BIN is unset (point it at a CRIU 4.2.1 binary)");
        return;
    };
    if !is_root() {
        eprintln!("skipped: checkpointing needs root");
        return;
    }
    let criu = Criu::new(&bin);
    let dir = tempfile::tempdir().unwrap();
    let images_path = dir.path().join("images");
    std::fs::create_dir(&images_path).unwrap();
    let images = std::fs::File::open(&images_path).unwrap();
    let work = std::fs::File::open(dir.path()).unwrap();

    let mut cmd = std::process::Command::new("sleep");
    cmd.arg("1000")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd.current_dir("/");
    // SAFETY: setsid and close_range are async-signal-safe. A session of its
    // own makes the sleep a self-contained tree that CRIU can dump without
    // --shell-job; closing inherited descriptors (cargo passes a locked build
    // lock file down) leaves nothing external for CRIU to refuse.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()?;
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            Ok(())
        });
    }
    let mut sleeper = cmd.spawn().unwrap();
    let pid = i32::try_from(sleeper.id()).unwrap();

    let mut dump_scripts = Vec::new();
    let mut on_dump = |s: &str, _: Option<i32>, _: Option<OwnedFd>| -> Result<(), NotifyError> {
        dump_scripts.push(s.to_string());
        Ok(())
    };
    let dump_opts = CriuOpts::new(images.as_fd())
        .work_dir(work.as_fd())
        .log_file("dump.log")
        .log_level(4)
        .pid(pid);
    let dumped = criu.dump(&dump_opts, &mut on_dump);
    if let Err(e) = &dumped {
        let log = std::fs::read_to_string(dir.path().join("dump.log")).unwrap_or_default();
        let _ = sleeper.kill();
        let _ = sleeper.wait();
        panic!("dump failed: {e}\n{}", tail(&log));
    }
    // The dump killed the tree (no leave_running).
    let status = sleeper.wait().unwrap();
    assert!(
        !status.success(),
        "sleep should have been killed by the dump"
    );
    assert!(
        dump_scripts.iter().any(|s| s == "post-dump"),
        "{dump_scripts:?}"
    );
    assert!(images_path.join("inventory.img").exists());

    let mut restore_scripts = Vec::new();
    let mut post_restore_pid = None;
    let mut on_restore = |s: &str, p: Option<i32>, _: Option<OwnedFd>| -> Result<(), NotifyError> {
        if s == "post-restore" {
            post_restore_pid = p;
        }
        restore_scripts.push(s.to_string());
        Ok(())
    };
    let restore_opts = CriuOpts::new(images.as_fd())
        .work_dir(work.as_fd())
        .log_file("restore.log")
        .log_level(4)
        .rst_sibling(true);
    let restored = criu.restore(&restore_opts, &mut on_restore);
    let restored = match restored {
        Ok(r) => r,
        Err(e) => {
            let log = std::fs::read_to_string(dir.path().join("restore.log")).unwrap_or_default();
            panic!("restore failed: {e}\n{}", tail(&log));
        }
    };
    eprintln!("dump notifications {dump_scripts:?}, restore notifications {restore_scripts:?}");
    // Same pid as before, reported both by the reply and by post-restore.
    assert_eq!(restored.pid, pid);
    assert_eq!(post_restore_pid, Some(pid));
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "sleep");
    // rst_sibling: the restored tree is our child, so we can reap it.
    let rpid = nix::unistd::Pid::from_raw(pid);
    nix::sys::signal::kill(rpid, nix::sys::signal::Signal::SIGKILL).unwrap();
    let ws = nix::sys::wait::waitpid(rpid, None).unwrap();
    assert!(
        matches!(ws, nix::sys::wait::WaitStatus::Signaled(..)),
        "{ws:?}"
    );
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
