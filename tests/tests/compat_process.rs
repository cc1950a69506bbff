//! What runs inside the container after the fork, compared with runc:
//! seccomp profiles that allow next to nothing, syscalls newer than the
//! profile, the native architecture, signals inherited by rrc, hooks' env,
//! cwd and filter, HOME, exec errors, `exec` users and cwd, the pty owner.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;

use rr_tests::{messages, require_env, stderr, stdout, unique_id, watchdog, TestEnv};
use serde_json::{json, Value};

/// A static x86_64 ELF of a few instructions: makes syscall `nr` with no
/// arguments and exits with its errno (0 when it succeeded). It needs
/// nothing from the kernel but execve and exit, so it runs under profiles
/// that allow only those.
fn tiny_elf(nr: u32) -> Vec<u8> {
    let mut code = vec![0xb8];
    code.extend_from_slice(&nr.to_le_bytes()); // mov eax, nr
    code.extend_from_slice(&[
        0x0f, 0x05, // syscall
        0x89, 0xc7, // mov edi, eax
        0xf7, 0xdf, // neg edi
        0x85, 0xc0, // test eax, eax
        0x7c, 0x02, // jl +2 (an error: keep edi = errno)
        0x31, 0xff, // xor edi, edi
        0xb8, 0x3c, 0x00, 0x00, 0x00, // mov eax, 60 (exit)
        0x0f, 0x05, // syscall
    ]);
    let base: u64 = 0x40_0000;
    let hdr = 64 + 56;
    let size = (hdr + code.len()) as u64;
    let mut e = Vec::new();
    e.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    e.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    e.extend_from_slice(&0x3eu16.to_le_bytes()); // x86_64
    e.extend_from_slice(&1u32.to_le_bytes());
    e.extend_from_slice(&(base + hdr as u64).to_le_bytes()); // entry
    e.extend_from_slice(&64u64.to_le_bytes()); // phoff
    e.extend_from_slice(&0u64.to_le_bytes()); // shoff
    e.extend_from_slice(&0u32.to_le_bytes()); // flags
    for v in [64u16, 56, 1, 64, 0, 0] {
        e.extend_from_slice(&v.to_le_bytes());
    }
    e.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    e.extend_from_slice(&5u32.to_le_bytes()); // R+X
    e.extend_from_slice(&0u64.to_le_bytes());
    e.extend_from_slice(&base.to_le_bytes());
    e.extend_from_slice(&base.to_le_bytes());
    e.extend_from_slice(&size.to_le_bytes());
    e.extend_from_slice(&size.to_le_bytes());
    e.extend_from_slice(&0x1000u64.to_le_bytes());
    e.extend_from_slice(&code);
    e
}

/// Puts [`tiny_elf`] for `nr` at `/<name>` in the rootfs.
fn put_elf(env: &TestEnv, name: &str, nr: u32) {
    let p = env.bundle.join("rootfs").join(name);
    std::fs::write(&p, tiny_elf(nr)).expect("write elf");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn x86_64_or_skip() -> bool {
    if cfg!(target_arch = "x86_64") {
        return true;
    }
    eprintln!("SKIPPED: the test programs are x86_64 machine code");
    false
}

const GETPID: u32 = 39;
const GETUID: u32 = 102;
const PAUSE: u32 = 34;

/// A profile that refuses everything but what the tiny programs need:
/// nothing of the runtime's own setup (close_range, capset, setuid, chdir,
/// prctl, fcntl, openat, write ...) is allowed.
fn strict_profile(allow: &[&str]) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": allow, "action": "SCMP_ACT_ALLOW"}]
    })
}

/// A user, no CAP_SYS_ADMIN and no noNewPrivileges: the filter has to go
/// in while the init still has CAP_SYS_ADMIN.
fn unprivileged(c: &mut Value) {
    c["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [1001]});
    c["process"]["cwd"] = json!("/tmp");
    c["process"]["noNewPrivileges"] = json!(false);
    c["process"]["capabilities"] = json!({
        "bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
        "permitted": ["CAP_KILL"], "inheritable": [], "ambient": []
    });
}

#[test]
fn a_profile_allowing_only_execve_runs_the_process_and_exec() {
    require_env!();
    if !x86_64_or_skip() {
        return;
    }
    let env = TestEnv::new(&["/getpid"]);
    put_elf(&env, "getpid", GETPID);
    put_elf(&env, "getuid", GETUID);
    put_elf(&env, "pause", PAUSE);
    for nnp in [false, true] {
        env.edit_config(|c| {
            unprivileged(c);
            c["process"]["noNewPrivileges"] = json!(nnp);
            c["process"]["args"] = json!(["/getpid"]);
            c["linux"]["seccomp"] =
                strict_profile(&["execve", "exit", "exit_group", "getpid", "pause"]);
        });
        let id = unique_id("strict");
        let out = env.rrc_bundle("run", &[&id]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "nnp {nnp}: run: {}",
            stderr(&out)
        );
        // The filter is in force: getuid is refused with the default EPERM.
        env.edit_config(|c| c["process"]["args"] = json!(["/getuid"]));
        let id = unique_id("strict");
        let out = env.rrc_bundle("run", &[&id]);
        assert_eq!(out.status.code(), Some(1), "nnp {nnp}: {}", stderr(&out));
        // exec into a container whose init pauses under the same profile.
        env.edit_config(|c| c["process"]["args"] = json!(["/pause"]));
        let id = unique_id("strict-exec");
        let out = env.rrc_bundle("run", &["-d", &id]);
        assert!(out.status.success(), "nnp {nnp}: run -d: {}", stderr(&out));
        let out = env.rrc(&["exec", &id, "/getpid"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "nnp {nnp}: exec: {}",
            stderr(&out)
        );
        let out = env.rrc(&["exec", "--user", "0", &id, "/getuid"]);
        assert_eq!(out.status.code(), Some(1), "nnp {nnp}: {}", stderr(&out));
        let out = env.rrc(&["delete", "-f", &id]);
        assert!(out.status.success(), "{}", stderr(&out));
        env.assert_no_leftovers(&id);
    }
}

#[test]
fn capabilities_are_the_specs_after_a_filter_installed_with_cap_sys_admin() {
    require_env!();
    let env = TestEnv::new(&["grep", "Cap", "/proc/self/status"]);
    for uid in [0, 1000] {
        env.edit_config(|c| {
            c["process"]["user"] = json!({"uid": uid, "gid": uid});
            c["process"]["noNewPrivileges"] = json!(false);
            let set = json!(["CAP_KILL", "CAP_CHOWN"]);
            c["process"]["capabilities"] = json!({"bounding": set, "effective": set,
                "permitted": set, "inheritable": set, "ambient": set});
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO"}]});
        });
        let id = unique_id("caps");
        let out = env.rrc_bundle("run", &[&id]);
        assert!(out.status.success(), "uid {uid}: {}", stderr(&out));
        let text = stdout(&out);
        for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            let line = format!("{set}:\t0000000000000021");
            assert!(text.contains(&line), "uid {uid}: {set}: {text}");
        }
    }
}

#[test]
fn syscalls_newer_than_the_profile_fail_with_enosys() {
    require_env!();
    if !x86_64_or_skip() {
        return;
    }
    let env = TestEnv::new(&["/nr1000"]);
    put_elf(&env, "nr1000", 1000);
    put_elf(&env, "getuid", GETUID);
    env.edit_config(|c| {
        c["linux"]["seccomp"] = strict_profile(&["execve", "exit", "exit_group"]);
    });
    let out = env.rrc_bundle("run", &[&unique_id("enosys")]);
    assert_eq!(out.status.code(), Some(libc::ENOSYS), "{}", stderr(&out));
    // An older syscall the profile does not name keeps the default errno.
    env.edit_config(|c| c["process"]["args"] = json!(["/getuid"]));
    let out = env.rrc_bundle("run", &[&unique_id("enosys")]);
    assert_eq!(out.status.code(), Some(libc::EPERM), "{}", stderr(&out));
    // With a kill default, a newer syscall still gets ENOSYS, not a kill.
    env.edit_config(|c| {
        c["process"]["args"] = json!(["/nr1000"]);
        c["linux"]["seccomp"]["defaultAction"] = json!("SCMP_ACT_KILL_PROCESS");
    });
    let out = env.rrc_bundle("run", &[&unique_id("enosys")]);
    assert_eq!(out.status.code(), Some(libc::ENOSYS), "{}", stderr(&out));
}

#[test]
fn a_profile_without_the_native_architecture_still_filters_it() {
    require_env!();
    if !x86_64_or_skip() {
        return;
    }
    let env = TestEnv::new(&["/getpid"]);
    put_elf(&env, "getpid", GETPID);
    env.edit_config(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42}]
        });
    });
    let out = env.rrc_bundle("run", &[&unique_id("noarch")]);
    assert_eq!(out.status.code(), Some(42), "{}", stderr(&out));
}

#[test]
fn the_container_starts_with_default_signals_whatever_rrc_inherited() {
    require_env!();
    let env = TestEnv::new(&[
        "sh",
        "-c",
        "trap 'echo got-INT; exit 11' INT; grep -E '^Sig(Blk|Ign)' /proc/$$/status; \
         echo ready; while true; do sleep 0.05; done",
    ]);
    let id = unique_id("sigign");
    let b = env.bundle.display().to_string();
    let mut cmd = env.rrc_cmd(&["run", "-b", &b, &id]);
    // SAFETY: the closure only calls async-signal-safe functions.
    unsafe {
        cmd.pre_exec(|| {
            // As `nohup` and CI runners leave it; and some blocked signal.
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            libc::signal(libc::SIGUSR1, libc::SIG_IGN);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR2);
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            Ok(())
        })
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rrc run");
    let done = watchdog(&env, &id, child.id(), 60);
    let mut seen = Vec::new();
    if let Some(out) = child.stdout.as_mut() {
        for l in BufReader::new(out).lines().map_while(|l| l.ok()) {
            let ready = l == "ready";
            seen.push(l);
            if ready {
                break;
            }
        }
    }
    // SAFETY: kill with plain integers on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().expect("wait rrc run");
    let _ = done.send(());
    let rest = String::from_utf8_lossy(&out.stdout);
    assert!(
        seen.iter().any(|l| l == "SigBlk:\t0000000000000000"),
        "{seen:?}"
    );
    // busybox sh ignores SIGQUIT itself; nothing else may be ignored.
    let ignored = seen
        .iter()
        .find_map(|l| l.strip_prefix("SigIgn:\t"))
        .and_then(|h| u64::from_str_radix(h, 16).ok());
    let quit = 1u64 << (libc::SIGQUIT - 1);
    assert_eq!(ignored.map(|m| m & !quit), Some(0), "{seen:?}");
    assert!(
        rest.contains("got-INT"),
        "{seen:?} {rest:?} {}",
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(11), "{}", stderr(&out));
}

fn hook(script: &str) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", script]})
}

#[test]
fn hooks_get_the_bundle_as_cwd_and_the_container_hooks_its_env_and_filter() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    let out_dir = env.dir.path().join("hooks-out");
    std::fs::create_dir_all(&out_dir).expect("mkdir");
    let o = out_dir.display().to_string();
    for nnp in [false, true] {
        env.edit_config(|c| {
            c["root"]["readonly"] = json!(false);
            c["process"]["env"] = json!(["PATH=/bin:/usr/bin", "MARK=from-process"]);
            c["process"]["noNewPrivileges"] = json!(nnp);
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO"}]});
            c["hooks"] = json!({
                "createRuntime": [hook(&format!("pwd > {o}/createRuntime; env > {o}/createRuntime.env"))],
                "createContainer": [hook(&format!("pwd > {o}/createContainer; env > {o}/createContainer.env"))],
                // It runs in the container: it writes into the rootfs.
                "startContainer": [hook("env > /tmp/start.env; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status > /tmp/start.status")],
                "poststart": [hook(&format!("pwd > {o}/poststart"))],
            });
        });
        let id = unique_id("hookctx");
        let b = env.bundle.display().to_string();
        let mut cmd = env.rrc_cmd(&["run", "-b", &b, &id]);
        cmd.env("RR_HOOK_MARK", "from-rrc");
        let out = rr_tests::detached(cmd);
        assert!(out.status.success(), "nnp {nnp}: {}", stderr(&out));
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let bundle = env.bundle.display().to_string();
        for kind in ["createRuntime", "poststart"] {
            assert_eq!(read(&out_dir.join(kind)).trim(), bundle, "{kind} cwd");
        }
        // runc: the runtime's hooks inherit its environment; the init's
        // createContainer hooks run from the rootfs with the process's.
        let cr = read(&out_dir.join("createRuntime.env"));
        assert!(
            cr.contains("RR_HOOK_MARK=from-rrc"),
            "createRuntime env: {cr}"
        );
        let rootfs = format!("{bundle}/rootfs");
        let cwd = read(&out_dir.join("createContainer"));
        assert_eq!(cwd.trim(), rootfs, "createContainer cwd");
        let cc = read(&out_dir.join("createContainer.env"));
        assert!(
            cc.contains("MARK=from-process"),
            "createContainer env: {cc}"
        );
        let rootfs = env.bundle.join("rootfs");
        let sc = read(&rootfs.join("tmp/start.env"));
        assert!(sc.contains("MARK=from-process"), "startContainer env: {sc}");
        assert!(sc.contains("HOME=/root"), "startContainer env: {sc}");
        let st = read(&rootfs.join("tmp/start.status"));
        assert!(
            st.contains("Seccomp:\t2"),
            "nnp {nnp}: startContainer: {st}"
        );
        let want = format!("NoNewPrivs:\t{}", u8::from(nnp));
        assert!(st.contains(&want), "nnp {nnp}: startContainer: {st}");
    }
}

#[test]
fn home_comes_from_the_containers_passwd_when_the_env_has_none() {
    require_env!();
    let env = TestEnv::new(&["sh", "-c", "echo home=$HOME; exec sleep 1000"]);
    let passwd = env.bundle.join("rootfs/etc/passwd");
    let mut text = std::fs::read_to_string(&passwd).expect("passwd");
    text.push_str("app:x:1234:1234::/home/app:/bin/sh\n");
    std::fs::write(&passwd, text).expect("passwd");
    env.edit_config(|c| c["process"]["env"] = json!(["PATH=/bin:/usr/bin"]));
    let id = unique_id("home");
    let out = env.rrc_bundle("run", &["-d", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let home = |args: &[&str]| {
        let mut a = vec!["exec"];
        a.extend_from_slice(args);
        a.extend_from_slice(&[&id, "sh", "-c", "echo $HOME"]);
        let out = env.rrc(&a);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out).trim().to_string()
    };
    assert_eq!(home(&[]), "/root");
    assert_eq!(home(&["--user", "1234"]), "/home/app");
    assert_eq!(home(&["--user", "4321"]), "/");
    assert_eq!(home(&["--env", "HOME=/mine"]), "/mine");
    let out = env.rrc(&["delete", "-f", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    // run: the init's own process.
    env.edit_config(|c| {
        c["process"]["args"] = json!(["sh", "-c", "echo home=$HOME"]);
        c["process"]["user"] = json!({"uid": 1234, "gid": 1234});
    });
    let out = env.rrc_bundle("run", &[&unique_id("home")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "home=/home/app");
    // An /etc/passwd that is a FIFO is not read (it would block the init).
    std::fs::remove_file(&passwd).expect("rm passwd");
    let c = std::ffi::CString::new(passwd.display().to_string()).expect("path");
    // SAFETY: mkfifo with a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let out = env.rrc_bundle("run", &[&unique_id("home")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "home=/");
}

#[test]
fn exec_failures_use_runcs_words() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    let rootfs = env.bundle.join("rootfs");
    std::fs::write(rootfs.join("tmp/plain"), "not a program").expect("write");
    for (arg, want) in [
        (
            "/nonexistent",
            r#"exec: "/nonexistent": stat /nonexistent: no such file or directory"#,
        ),
        ("/tmp", r#"exec: "/tmp": permission denied"#),
        ("/tmp/plain", r#"exec: "/tmp/plain": permission denied"#),
        (
            "no-such-cmd",
            r#"exec: "no-such-cmd": executable file not found in $PATH"#,
        ),
    ] {
        env.edit_config(|c| c["process"]["args"] = json!([arg]));
        let id = unique_id("noexec");
        let out = env.rrc_bundle("run", &[&id]);
        assert!(!out.status.success(), "{arg}");
        assert!(messages(&out).contains(want), "{arg}: {}", stderr(&out));
        env.assert_no_leftovers(&id);
    }
    env.edit_config(|c| c["process"]["args"] = json!(["sleep", "1000"]));
    let id = unique_id("noexec");
    let out = env.rrc_bundle("run", &["-d", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = env.rrc(&["exec", &id, "/tmp"]);
    assert!(
        messages(&out).contains(r#"exec: "/tmp": permission denied"#),
        "{}",
        stderr(&out)
    );
    let out = env.rrc(&["delete", "-f", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn exec_process_file_without_user_runs_as_root() {
    require_env!();
    let env = TestEnv::new(&["sleep", "1000"]);
    env.edit_config(|c| c["process"]["user"] = json!({"uid": 1000, "gid": 1000}));
    let id = unique_id("procfile");
    let out = env.rrc_bundle("run", &["-d", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pf = env.dir.path().join("process.json");
    std::fs::write(
        &pf,
        json!({"args": ["sh", "-c", "echo $(id -u):$(id -g)"], "cwd": "/"}).to_string(),
    )
    .expect("write process.json");
    let out = env.rrc(&["exec", "-p", pf.to_str().unwrap_or(""), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "0:0");
    let out = env.rrc(&["delete", "-f", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_cwd_only_root_can_enter_works_without_cap_dac_override() {
    require_env!();
    let env = TestEnv::new(&["sh", "-c", "pwd; exec sleep 1000"]);
    let secret = env.bundle.join("rootfs/secret");
    std::fs::create_dir_all(&secret).expect("mkdir");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    // SAFETY: chown with a valid path.
    let c = std::ffi::CString::new(secret.display().to_string()).expect("path");
    assert_eq!(unsafe { libc::chown(c.as_ptr(), 4000, 4000) }, 0);
    env.edit_config(|c| {
        c["process"]["cwd"] = json!("/secret");
        let set = json!(["CAP_KILL"]);
        c["process"]["capabilities"] = json!({"bounding": set, "effective": set,
            "permitted": set});
    });
    let id = unique_id("cwd");
    let out = env.rrc_bundle("run", &["-d", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = env.rrc(&["exec", "--user", "0", &id, "pwd"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "/secret");
    let out = env.rrc(&["delete", "-f", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn the_console_belongs_to_the_user_and_the_tty_group() {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    require_env!();
    let env = TestEnv::new(&["sh", "-c", "stat -c 'owner=%u:%g' $(tty)"]);
    env.edit_config(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    });
    let sock_path = env.dir.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).expect("bind");
    let id = unique_id("ptyown");
    let b = env.bundle.display().to_string();
    let sock = sock_path.display().to_string();
    let mut child = env
        .rrc_cmd(&["create", "-b", &b, "--console-socket", &sock, &id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn create");
    let done = watchdog(&env, &id, child.id(), 60);
    let (conn, _) = listener.accept().expect("accept");
    let (_, master) = rr_tests::recv_console(conn.as_raw_fd());
    let status = child.wait().expect("create");
    assert!(status.success(), "create failed");
    let out = env.rrc(&["start", &id]);
    assert!(out.status.success(), "start: {}", stderr(&out));
    let mut text = Vec::new();
    let _ = std::fs::File::from(master).read_to_end(&mut text);
    let _ = done.send(());
    let text = String::from_utf8_lossy(&text);
    // devpts' gid=5 (the spec's mount option) gives the group; rrc only
    // hands the pty to the user.
    assert!(text.contains("owner=1000:5"), "{text:?}");
    let out = env.rrc(&["delete", "-f", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn the_umask_is_the_specs_or_0022_whatever_rrc_had() {
    require_env!();
    let env = TestEnv::new(&["sh", "-c", "umask"]);
    for (spec, want) in [(None, "0022"), (Some(0o027), "0027")] {
        env.edit_config(|c| {
            c["process"]["user"] = json!({"uid": 0, "gid": 0});
            if let Some(m) = spec {
                c["process"]["user"]["umask"] = json!(m);
            }
        });
        let b = env.bundle.display().to_string();
        let mut cmd = env.rrc_cmd(&["run", "-b", &b, &unique_id("umask")]);
        // SAFETY: umask is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::umask(0o077);
                Ok(())
            })
        };
        let out = rr_tests::detached(cmd);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out).trim(), want, "spec umask {spec:?}");
    }
    // exec keeps its caller's umask, as runc's does, unless the process
    // says otherwise.
    env.edit_config(|c| {
        c["process"]["args"] = json!(["sleep", "1000"]);
        c["process"]["user"] = json!({"uid": 0, "gid": 0});
    });
    let id = unique_id("umask");
    let out = env.rrc_bundle("run", &["-d", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut cmd = env.rrc_cmd(&["exec", &id, "sh", "-c", "umask"]);
    // SAFETY: umask is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o077);
            Ok(())
        })
    };
    let out = rr_tests::detached(cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "0077");
    let out = env.rrc(&["delete", "-f", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn scheduler_io_priority_and_personality_are_applied_for_run_and_exec() {
    require_env!();
    let script = "uname -m; grep '^policy' /proc/self/sched; \
                  cut -d' ' -f19 /proc/self/stat; ionice";
    let env = TestEnv::new(&["sh", "-c", script]);
    env.edit_config(|c| {
        c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 5});
        c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
        c["linux"]["personality"] = json!({"domain": "LINUX32"});
    });
    let check = |out: &std::process::Output, what: &str| {
        assert!(out.status.success(), "{what}: {}", stderr(out));
        let text = stdout(out);
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        if cfg!(target_arch = "x86_64") {
            assert_eq!(lines.first().copied(), Some("i686"), "{what}: {text}");
        }
        let policy = lines.get(1).and_then(|l| l.rsplit(' ').next());
        assert_eq!(policy, Some("3"), "{what}: SCHED_BATCH: {text}");
        assert_eq!(lines.get(2).copied(), Some("5"), "{what}: nice: {text}");
        assert_eq!(lines.get(3).copied(), Some("idle"), "{what}: {text}");
    };
    let out = env.rrc_bundle("run", &[&unique_id("sched")]);
    check(&out, "run");
    env.edit_config(|c| c["process"]["args"] = json!(["sleep", "1000"]));
    let id = unique_id("sched");
    let out = env.rrc_bundle("run", &["-d", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = env.rrc(&["exec", &id, "sh", "-c", script]);
    check(&out, "exec");
    let out = env.rrc(&["delete", "-f", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
}
