//! Seccomp notify (issue 18 item 2): `SCMP_ACT_NOTIFY` rules, the listener
//! handed to the agent at `linux.seccomp.listenerPath` with runc's state
//! message, for the init and for exec. One agent (rr_tests::notify_agent)
//! answers for every test. Where runc is installed the same scenario runs
//! against it too, with its own --root, so each test shows the two
//! runtimes behave alike (or names where they differ).

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use rr_tests::notify_agent::{self, Agent, Answer, Outcome, Report};
use rr_tests::{require_env, stderr, stdout, unique_id, TestEnv};
use serde_json::{json, Value};

/// Skips (returns from) the test without root, busybox, rrc or a kernel
/// with user notification.
macro_rules! require_notify {
    () => {
        require_env!();
        if let Some(reason) = notify_agent::skip_reason() {
            eprintln!("SKIPPED: {reason}");
            return;
        }
    };
}

/// A runtime binary with its own state root: rrc, or runc beside it.
struct Runtime {
    name: &'static str,
    bin: PathBuf,
    root: PathBuf,
}

impl Runtime {
    fn rrc(env: &TestEnv) -> Runtime {
        Runtime {
            name: "rrc",
            bin: rr_tests::rrc_bin(),
            root: env.root.clone(),
        }
    }

    /// rrc, then runc when it is installed (Debian's 1.1.5 here).
    fn all(env: &TestEnv) -> Vec<Runtime> {
        let mut all = vec![Runtime::rrc(env)];
        match ["/usr/sbin/runc", "/usr/bin/runc"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
        {
            Some(bin) => all.push(Runtime {
                name: "runc",
                bin,
                root: env.dir.path().join("runc-state"),
            }),
            None => eprintln!("SKIPPED (runc comparison): runc is not installed"),
        }
        all
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(&self.root).args(args);
        c
    }

    /// Runs the runtime; a command still running after `secs` is killed
    /// and fails the test: nothing here may hang on the agent.
    fn run(&self, args: &[&str], secs: u64) -> Output {
        within(self.cmd(args), secs)
    }

    /// `<cmd> -b <bundle> <rest...>`.
    fn bundle(&self, env: &TestEnv, cmd: &str, rest: &[&str], secs: u64) -> Output {
        let b = env.bundle.to_string_lossy().to_string();
        let mut args = vec![cmd, "-b", &b];
        args.extend_from_slice(rest);
        self.run(&args, secs)
    }

    fn state(&self, id: &str) -> Value {
        let out = self.run(&["state", id], 20);
        assert!(
            out.status.success(),
            "{} state: {}",
            self.name,
            stderr(&out)
        );
        serde_json::from_slice(&out.stdout).expect("state is JSON")
    }

    /// What container `id` left: state dir, mounts, cgroups, processes
    /// (also the given (pid, start time) pairs).
    fn leftovers(&self, env: &TestEnv, id: &str, pids: Vec<(i32, u64)>) -> Vec<String> {
        rr_tests::leftovers::find(&rr_tests::leftovers::Scope {
            id: id.to_string(),
            root: self.root.clone(),
            bundle: env.bundle.clone(),
            pids,
            ..Default::default()
        })
    }

    fn assert_no_leftovers(&self, env: &TestEnv, id: &str) {
        let left = self.leftovers(env, id, Vec::new());
        assert!(left.is_empty(), "{}: {id} left {left:?}", self.name);
    }
}

/// A failed test must not leave runc's containers running (TestEnv cleans
/// rrc's root itself).
impl Drop for Runtime {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return;
        };
        for e in entries.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            let _ = within(self.cmd(&["delete", "--force", &id]), 30);
        }
    }
}

/// Runs `cmd` (stdin /dev/null, output in temporary files: a container
/// left running keeps pipes open) and kills it, failing the test, if it
/// is still running after `secs`.
fn within(cmd: Command, secs: u64) -> Output {
    rr_tests::detached_within(cmd, Duration::from_secs(secs))
}

/// stdout and stderr together.
fn text(o: &Output) -> String {
    stdout(o) + &stderr(o)
}

/// The profile every test starts from: `names` notified, the rest allowed,
/// the listener sent to `listener` with metadata "meta".
fn notify_profile(listener: &std::path::Path, names: &[&str]) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": listener,
        "listenerMetadata": "meta",
        "syscalls": [{"names": names, "action": "SCMP_ACT_NOTIFY"}]
    })
}

/// Sets the process's args and a notify profile for `names` whose
/// listener goes to `sock`.
fn configure(env: &TestEnv, sock: &std::path::Path, names: &[&str], script: &str) {
    env.edit_config(|c| {
        c["process"]["args"] = json!(["sh", "-c", script]);
        c["linux"]["seccomp"] = notify_profile(sock, names);
    });
}

/// A socket path for this runtime's agent, fresh per call.
fn agent_path(env: &TestEnv, rt: &Runtime) -> PathBuf {
    env.dir
        .path()
        .join(unique_id(&format!("{}-agent", rt.name)) + ".sock")
}

/// Points the listener at a new agent for `rt` with `policy`, runs the
/// container to its end and returns its output and the agent's reports,
/// checking nothing is left.
fn run_with_agent(
    env: &TestEnv,
    rt: &Runtime,
    policy: notify_agent::Policy,
) -> (Output, Vec<Report>) {
    let sock = agent_path(env, rt);
    env.edit_config(|c| c["linux"]["seccomp"]["listenerPath"] = json!(sock));
    let agent = Agent::listen(&sock, policy);
    let id = unique_id("notify");
    let out = rt.bundle(env, "run", &[&id], 60);
    let reports = agent.finish();
    rt.assert_no_leftovers(env, &id);
    (out, reports)
}

fn is_mkdir(nr: i64) -> bool {
    nr == libc::SYS_mkdir || nr == libc::SYS_mkdirat
}

/// uname goes on, mkdir fails with EACCES.
fn deny_mkdir(nr: i64) -> Answer {
    if is_mkdir(nr) {
        Answer::Errno(libc::EACCES)
    } else {
        Answer::Continue
    }
}

/// What a notified shell shows: uname went on, mkdir failed.
fn assert_uname_on_mkdir_denied(text: &str, report: &Report) {
    assert!(text.contains("Linux"), "uname went on: {text}");
    assert!(text.contains("Permission denied"), "mkdir failed: {text}");
    assert!(text.contains("rc=1"), "{text}");
    let nrs: Vec<i64> = report.events.iter().map(|e| e.nr).collect();
    assert!(nrs.contains(&libc::SYS_uname), "{nrs:?}");
    assert!(nrs.iter().any(|&n| is_mkdir(n)), "{nrs:?}");
}

const NOTIFIED_SCRIPT: &str = "uname -s; mkdir /newdir; echo rc=$?";

/// The agent gets the listener with the state message, lets uname go on
/// (CONTINUE) and fails mkdir with EACCES; the process sees both. runc
/// 1.1.5 says `running` as the state's status here; rrc says `creating`,
/// as runc does since 1.2 (the init has not been started).
#[test]
fn seccomp_notify_agent_answers_for_the_init() {
    require_notify!();
    if !notify_agent::kernel_has_continue() {
        eprintln!("SKIPPED: no SECCOMP_USER_NOTIF_FLAG_CONTINUE (Linux 5.5)");
        return;
    }
    let env = TestEnv::new(&["true"]);
    for rt in Runtime::all(&env) {
        configure(
            &env,
            &env.dir.path().join("x"),
            &["uname", "mkdir", "mkdirat"],
            NOTIFIED_SCRIPT,
        );
        let (out, reports) = run_with_agent(&env, &rt, deny_mkdir);
        assert!(out.status.success(), "{}: {}", rt.name, stderr(&out));
        assert_eq!(reports.len(), 1, "{}: one listener: {reports:?}", rt.name);
        let report = &reports[0];
        assert_uname_on_mkdir_denied(&text(&out), report);
        let m = &report.message;
        assert_eq!(report.fds, 1, "{}: {m}", rt.name);
        assert_eq!(m["fds"], json!(["seccompFd"]), "{}: {m}", rt.name);
        assert_eq!(m["metadata"], "meta", "{}: {m}", rt.name);
        assert!(m["ociVersion"].is_string(), "{}: {m}", rt.name);
        let pid = m["pid"].as_i64().unwrap_or(0);
        assert!(pid > 0, "{}: {m}", rt.name);
        assert!(
            m["state"]["id"]
                .as_str()
                .is_some_and(|i| i.starts_with("notify-")),
            "{m}"
        );
        assert_eq!(m["state"]["pid"].as_i64(), Some(pid), "{}: {m}", rt.name);
        if rt.name == "rrc" {
            assert_eq!(m["state"]["status"], "creating", "{m}");
        }
    }
}

/// A notify action needs a listenerPath; write (and what rrc needs to
/// send the listener) cannot be notified; each refusal names the field
/// and leaves nothing. runc refuses the same listenerPath and write cases
/// (runc's "empty listener path" and "write" cases).
#[test]
fn seccomp_notify_errors_name_the_field() {
    require_env!();
    runc_refuses_the_same();
    let env = TestEnv::new(&["sleep", "100"]);
    let sock = env.dir.path().join("absent.sock");
    let mut without_path = notify_profile(&sock, &["mkdir"]);
    without_path
        .as_object_mut()
        .map(|o| o.remove("listenerPath"));
    let mut empty_path = notify_profile(&sock, &["mkdir"]);
    empty_path["listenerPath"] = json!("");
    let mut as_default = notify_profile(&sock, &["mkdir"]);
    as_default["defaultAction"] = json!("SCMP_ACT_NOTIFY");
    let cases = [
        (without_path, "linux.seccomp.listenerPath"),
        (empty_path, "linux.seccomp.listenerPath"),
        (as_default, "linux.seccomp.defaultAction"),
        (
            notify_profile(&sock, &["write"]),
            "SCMP_ACT_NOTIFY cannot be used for the write syscall",
        ),
        (
            notify_profile(&sock, &["sendmsg"]),
            "linux.seccomp.syscalls",
        ),
    ];
    for (profile, field) in cases {
        env.edit_config(|c| c["linux"]["seccomp"] = profile.clone());
        let id = unique_id("notifybad");
        let out = env.rrc_bundle("create", &[&id]);
        assert!(!out.status.success(), "{profile} accepted");
        assert!(stderr(&out).contains(field), "{profile}: {}", stderr(&out));
        env.assert_no_leftovers(&id);
    }
}

fn runc_refuses_the_same() {
    if notify_agent::skip_reason().is_some() {
        return;
    }
    let env = TestEnv::new(&["true"]);
    let sock = env.dir.path().join("absent.sock");
    let mut without_path = notify_profile(&sock, &["mkdir"]);
    without_path
        .as_object_mut()
        .map(|o| o.remove("listenerPath"));
    let mut empty_path = notify_profile(&sock, &["mkdir"]);
    empty_path["listenerPath"] = json!("");
    let cases = [
        (without_path, ""),
        (empty_path, ""),
        (
            notify_profile(&sock, &["write"]),
            "SCMP_ACT_NOTIFY cannot be used for the write syscall",
        ),
    ];
    for rt in Runtime::all(&env).into_iter().skip(1) {
        for (profile, says) in &cases {
            env.edit_config(|c| c["linux"]["seccomp"] = profile.clone());
            let id = unique_id("notifybad");
            let out = rt.bundle(&env, "create", &[&id], 30);
            assert!(!out.status.success(), "{}: {profile} accepted", rt.name);
            assert!(stderr(&out).contains(says), "{}: {}", rt.name, stderr(&out));
            rt.assert_no_leftovers(&env, &id);
        }
    }
}

/// `exec` hands the exec'd process's own listener to the agent, with its
/// pid and the running container's state.
#[test]
fn seccomp_notify_agent_answers_for_exec() {
    require_notify!();
    if !notify_agent::kernel_has_continue() {
        eprintln!("SKIPPED: no SECCOMP_USER_NOTIF_FLAG_CONTINUE (Linux 5.5)");
        return;
    }
    let env = TestEnv::new(&["sleep", "100"]);
    for rt in Runtime::all(&env) {
        let sock = agent_path(&env, &rt);
        let mut profile = notify_profile(&sock, &["uname", "mkdir", "mkdirat"]);
        // TSYNC too: the kernel takes it with a listener only with
        // TSYNC_ESRCH. runc 1.1.5 refuses every flag ("seccomp flags are
        // not yet supported by runc").
        if rt.name == "rrc" {
            profile["flags"] = json!(["SECCOMP_FILTER_FLAG_TSYNC"]);
        }
        env.edit_config(|c| c["linux"]["seccomp"] = profile);
        let agent = Agent::listen(&sock, deny_mkdir);
        let id = unique_id("notifyexec");
        let out = rt.bundle(&env, "run", &["-d", &id], 60);
        assert!(out.status.success(), "{}: {}", rt.name, stderr(&out));
        let init = rt.state(&id)["pid"].as_i64().unwrap_or(0);
        let ex = rt.run(&["exec", &id, "sh", "-c", NOTIFIED_SCRIPT], 60);
        let del = rt.run(&["delete", "-f", &id], 60);
        let reports = agent.finish();
        assert!(ex.status.success(), "{}: {}", rt.name, stderr(&ex));
        assert!(del.status.success(), "{}: {}", rt.name, stderr(&del));
        let report = reports
            .iter()
            .find(|r| r.message["state"]["status"] == "running" && r.message["pid"] != json!(init))
            .unwrap_or_else(|| panic!("{}: no exec listener: {reports:?}", rt.name));
        assert_uname_on_mkdir_denied(&text(&ex), report);
        let m = &report.message;
        assert_eq!(m["fds"], json!(["seccompFd"]), "{}: {m}", rt.name);
        assert_eq!(m["metadata"], "meta", "{}: {m}", rt.name);
        assert_eq!(m["state"]["pid"].as_i64(), Some(init), "{}: {m}", rt.name);
        assert!(m["pid"].as_i64().unwrap_or(0) > 0, "{}: {m}", rt.name);
        rt.assert_no_leftovers(&env, &id);
    }
}

/// An agent that closes the listener as soon as it has it (runc's "kill
/// seccompagent"): the notified syscalls fail with ENOSYS instead of
/// hanging, and the container runs to its end.
#[test]
fn seccomp_notify_agent_gone_gives_enosys() {
    require_notify!();
    let env = TestEnv::new(&["true"]);
    for rt in Runtime::all(&env) {
        let sock = agent_path(&env, &rt);
        configure(
            &env,
            &sock,
            &["mkdir", "mkdirat"],
            "mkdir /newdir; echo rc=$?",
        );
        let listening = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
        let took = std::thread::spawn(move || {
            listening.set_nonblocking(true).ok()?;
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok((conn, _)) = listening.accept() {
                    conn.set_nonblocking(false).ok()?;
                    let mut buf = [0u8; 8192];
                    // The fd that came with it is dropped unread: closed.
                    return std::io::Read::read(&mut &conn, &mut buf).ok();
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            None
        });
        let id = unique_id("notifygone");
        let out = rt.bundle(&env, "run", &[&id], 60);
        let got = took.join().expect("agent thread");
        assert!(got.is_some_and(|n| n > 0), "{}: no message", rt.name);
        assert!(out.status.success(), "{}: {}", rt.name, stderr(&out));
        let t = text(&out);
        assert!(t.contains("not implemented"), "{}: {t}", rt.name);
        assert!(t.contains("rc=1"), "{}: {t}", rt.name);
        rt.assert_no_leftovers(&env, &id);
    }
}

/// Polls `rt state` until it says `want`, for up to `secs`.
fn wait_status(rt: &Runtime, id: &str, want: &str, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let st = rt.state(id);
        if st["status"] == want || Instant::now() > deadline {
            return st;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An agent that takes the listener and never answers: the notified
/// syscall blocks, yet create and start return, state says running,
/// SIGKILL ends the container (state says stopped, the agent's listener
/// hangs up), and delete leaves no state dir, cgroup or process. Once with
/// the program's own mkdir blocked, once with the init's execve blocked
/// (the container never reaches its program), and for rrc once more with
/// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV where the kernel has it (runc
/// 1.1.5 takes no seccomp flags).
#[test]
fn seccomp_notify_unanswered_syscall_is_killable() {
    require_notify!();
    let env = TestEnv::new(&["true"]);
    let killable = notify_agent::kernel_has_wait_killable_recv();
    if !killable {
        eprintln!("SKIPPED (the WAIT_KILLABLE_RECV case): the kernel lacks it (Linux 5.19)");
    }
    let script = "echo before; mkdir /blocked; echo after";
    let cases: [(&[&str], &[i64], bool); 3] = [
        (
            &["mkdir", "mkdirat"],
            &[libc::SYS_mkdir, libc::SYS_mkdirat],
            false,
        ),
        (&["execve"], &[libc::SYS_execve], false),
        (
            &["mkdir", "mkdirat"],
            &[libc::SYS_mkdir, libc::SYS_mkdirat],
            true,
        ),
    ];
    for rt in Runtime::all(&env) {
        for (names, nrs, wait_killable) in cases {
            if wait_killable && (rt.name != "rrc" || !killable) {
                continue;
            }
            let sock = agent_path(&env, &rt);
            configure(&env, &sock, names, script);
            if wait_killable {
                env.edit_config(|c| {
                    c["linux"]["seccomp"]["flags"] =
                        json!(["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"])
                });
            }
            let case = format!("{} {names:?} killable={wait_killable}", rt.name);
            let agent = Agent::listen(&sock, |_| Answer::Never);
            let id = unique_id("notifynever");
            let out = rt.bundle(&env, "create", &[&id], 30);
            assert!(out.status.success(), "{case}: {}", stderr(&out));
            let init = rr_tests::leftovers::recorded_init(&rt.root, &id);
            assert!(init.is_some(), "{case}: no init in state.json");
            let out = rt.run(&["start", &id], 30);
            assert!(out.status.success(), "{case}: {}", stderr(&out));
            let blocked = agent.wait_until(Duration::from_secs(20), |r| {
                r.iter()
                    .flat_map(|r| &r.events)
                    .any(|e| nrs.contains(&e.nr) && e.outcome == Outcome::Unanswered)
            });
            assert!(blocked, "{case}: never notified: {:?}", agent.reports());
            assert_eq!(rt.state(&id)["status"], "running", "{case}");
            let out = rt.run(&["kill", &id, "KILL"], 10);
            assert!(out.status.success(), "{case}: {}", stderr(&out));
            let st = wait_status(&rt, &id, "stopped", 10);
            assert_eq!(st["status"], "stopped", "{case}: {st}");
            let hung_up = agent.wait_until(Duration::from_secs(10), |r| {
                !r.is_empty() && r.iter().all(|r| r.hung_up)
            });
            assert!(hung_up, "{case}: a filtered process lives on");
            let out = rt.run(&["delete", &id], 30);
            assert!(out.status.success(), "{case}: {}", stderr(&out));
            let left = rt.leftovers(&env, &id, init.into_iter().collect());
            assert!(left.is_empty(), "{case}: {left:?}");
            let reports = agent.finish();
            assert_eq!(reports.len(), 1, "{case}: {reports:?}");
            assert_eq!(reports[0].fds, 1, "{case}");
        }
        env.edit_config(|c| {
            if let Some(s) = c["linux"]["seccomp"].as_object_mut() {
                s.remove("flags");
            }
        });
    }
}

/// Nothing takes the listener at listenerPath: no such file, a socket
/// file nobody listens on and a regular file (connection refused), an
/// abstract name nobody holds. The create fails at once with runc's
/// "failed to connect with seccomp agent" (rrc adds the field and the
/// path) and leaves nothing behind, for both runtimes.
#[test]
fn seccomp_notify_refused_socket_fails_the_create() {
    require_notify!();
    let env = TestEnv::new(&["true"]);
    let missing = env.dir.path().join("missing.sock");
    let stale = env.dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).expect("bind"));
    let file = env.dir.path().join("plain-file");
    std::fs::write(&file, "not a socket").expect("write");
    let abstract_name = PathBuf::from(format!("@{}", unique_id("rr-no-agent")));
    for rt in Runtime::all(&env) {
        for path in [&missing, &stale, &file, &abstract_name] {
            configure(&env, path, &["mkdir", "mkdirat"], "true");
            let id = unique_id("notifyrefused");
            let out = rt.bundle(&env, "create", &[&id], 30);
            let case = format!("{} {}", rt.name, path.display());
            assert!(!out.status.success(), "{case}: created");
            let e = stderr(&out);
            assert!(
                e.contains("failed to connect with seccomp agent"),
                "{case}: {e}"
            );
            if rt.name == "rrc" {
                assert!(e.contains("linux.seccomp.listenerPath"), "{case}: {e}");
                assert!(e.contains(&path.display().to_string()), "{case}: {e}");
            }
            rt.assert_no_leftovers(&env, &id);
        }
    }
}

/// Sets `process.noNewPrivileges` and a writable root (the agent's mkdir
/// is made in the container's mount namespace, read-only root and all).
fn writable_with_nnp(env: &TestEnv, nnp: bool) {
    env.edit_config(|c| {
        c["process"]["noNewPrivileges"] = json!(nnp);
        c["root"]["readonly"] = json!(false);
    });
}

fn mkdir_emulated(nr: i64) -> Answer {
    if is_mkdir(nr) {
        Answer::Mkdir
    } else {
        Answer::Continue
    }
}

fn mkdir_suffixed(nr: i64) -> Answer {
    if is_mkdir(nr) {
        Answer::MkdirSuffixed
    } else {
        Answer::Continue
    }
}

/// The paths the agent made, with the errno it answered.
fn emulated(reports: &[Report]) -> Vec<(String, i32)> {
    reports
        .iter()
        .flat_map(|r| &r.events)
        .filter_map(|e| match &e.outcome {
            Outcome::Emulated(p, errno) => Some((p.clone(), *errno)),
            _ => None,
        })
        .collect()
}

/// The agent emulates mkdir: it reads the path from the caller's memory
/// (the request checked valid before and after), makes the directory in
/// the container's mount namespace, root and working directory, and
/// answers 0. Inside, `mkdir /x && test -d /x` holds and the host sees the
/// directory in the rootfs; relative to the working directory too. With
/// runc's agent's rule (the name gets `-<listenerMetadata>`), mkdir in the
/// container's own /dev/shm tmpfs makes `foo-meta` and no `foo`: the
/// kernel did not run the mkdir, the agent did, in the right namespace.
/// noNewPrivileges false and true (runc installs the filter at different
/// points for each).
#[test]
fn seccomp_notify_agent_emulates_mkdir() {
    require_notify!();
    let env = TestEnv::new(&["true"]);
    let rootfs = env.bundle.join("rootfs");
    for rt in Runtime::all(&env) {
        for nnp in [false, true] {
            let case = format!("{} nnp={nnp}", rt.name);
            let _ = std::fs::remove_dir(rootfs.join("x"));
            let _ = std::fs::remove_dir(rootfs.join("tmp/rel"));
            configure(
                &env,
                &env.dir.path().join("x"),
                &["mkdir", "mkdirat"],
                "mkdir /x && test -d /x && echo made-x; cd /tmp && mkdir rel && test -d /tmp/rel && echo made-rel",
            );
            writable_with_nnp(&env, nnp);
            let (out, reports) = run_with_agent(&env, &rt, mkdir_emulated);
            let t = text(&out);
            assert!(out.status.success(), "{case}: {t}");
            assert!(
                t.contains("made-x") && t.contains("made-rel"),
                "{case}: {t}"
            );
            let made = emulated(&reports);
            assert!(made.contains(&("/x".into(), 0)), "{case}: {made:?}");
            assert!(made.contains(&("rel".into(), 0)), "{case}: {made:?}");
            assert!(rootfs.join("x").is_dir(), "{case}: /x not on the host");
            assert!(
                rootfs.join("tmp/rel").is_dir(),
                "{case}: /tmp/rel not on the host"
            );

            configure(
                &env,
                &env.dir.path().join("x"),
                &["mkdir", "mkdirat"],
                "mkdir /dev/shm/foo && stat /dev/shm/foo-meta && ! test -e /dev/shm/foo && cd /dev/shm && mkdir test-dir && test -d test-dir-meta && echo suffixed",
            );
            writable_with_nnp(&env, nnp);
            let (out, reports) = run_with_agent(&env, &rt, mkdir_suffixed);
            let t = text(&out);
            assert!(
                out.status.success() && t.contains("suffixed"),
                "{case}: {t}"
            );
            let made = emulated(&reports);
            assert!(
                made.contains(&("/dev/shm/foo-meta".into(), 0)),
                "{case}: {made:?}"
            );
            assert!(
                made.contains(&("test-dir-meta".into(), 0)),
                "{case}: {made:?}"
            );
        }
    }
}

fn mkdir_eperm_chmod_enomedium(nr: i64) -> Answer {
    match nr {
        n if is_mkdir(n) => Answer::Errno(libc::EPERM),
        libc::SYS_chmod | libc::SYS_fchmod | libc::SYS_fchmodat => Answer::Errno(libc::ENOMEDIUM),
        _ => Answer::Continue,
    }
}

/// The agent answers with an errno: mkdir gets EPERM ("Operation not
/// permitted") and makes nothing; chmod gets ENOMEDIUM ("No medium
/// found"), runc's "error chmod" case.
#[test]
fn seccomp_notify_agent_errno_reaches_the_program() {
    require_notify!();
    let env = TestEnv::new(&["true"]);
    let rootfs = env.bundle.join("rootfs");
    for rt in Runtime::all(&env) {
        configure(
            &env,
            &env.dir.path().join("x"),
            &["mkdir", "mkdirat", "chmod", "fchmod", "fchmodat"],
            "mkdir /y; echo rc=$?; test -e /y || echo no-y; touch /tmp/f; chmod 777 /tmp/f; echo rc2=$?",
        );
        writable_with_nnp(&env, false);
        let (out, reports) = run_with_agent(&env, &rt, mkdir_eperm_chmod_enomedium);
        let t = text(&out);
        let case = rt.name;
        assert!(out.status.success(), "{case}: {t}");
        assert!(t.contains("Operation not permitted"), "{case}: {t}");
        assert!(t.contains("rc=1") && t.contains("no-y"), "{case}: {t}");
        assert!(
            t.contains("No medium found") && t.contains("rc2=1"),
            "{case}: {t}"
        );
        assert!(!rootfs.join("y").exists(), "{case}");
        let failed: Vec<i32> = reports
            .iter()
            .flat_map(|r| &r.events)
            .filter_map(|e| match e.outcome {
                Outcome::Failed(errno) => Some(errno),
                _ => None,
            })
            .collect();
        assert!(failed.contains(&libc::EPERM), "{case}: {failed:?}");
        assert!(failed.contains(&libc::ENOMEDIUM), "{case}: {failed:?}");
    }
}

/// runc's "important syscalls" case: execve, open, openat, read, close and
/// fcntl notified, each let go on with SECCOMP_USER_NOTIF_FLAG_CONTINUE
/// (Linux 5.5). The runtime must not need any of them between installing
/// the filter and handing the listener over, nor deadlock on them after;
/// the container's `true` exits 0, noNewPrivileges false and true.
#[test]
fn seccomp_notify_continue_on_syscalls_the_runtime_uses() {
    require_notify!();
    if !notify_agent::kernel_has_continue() {
        eprintln!("SKIPPED: no SECCOMP_USER_NOTIF_FLAG_CONTINUE (Linux 5.5)");
        return;
    }
    let env = TestEnv::new(&["true"]);
    let names = ["execve", "openat", "open", "read", "close", "fcntl"];
    for rt in Runtime::all(&env) {
        for nnp in [false, true] {
            let case = format!("{} nnp={nnp}", rt.name);
            configure(&env, &env.dir.path().join("x"), &names, "true");
            env.edit_config(|c| {
                c["process"]["args"] = json!(["/bin/true"]);
                c["process"]["noNewPrivileges"] = json!(nnp);
            });
            let (out, reports) = run_with_agent(&env, &rt, |_| Answer::Continue);
            assert!(out.status.success(), "{case}: {}", text(&out));
            let events: Vec<_> = reports.iter().flat_map(|r| &r.events).collect();
            assert!(
                events.iter().any(|e| e.nr == libc::SYS_execve),
                "{case}: {events:?}"
            );
            // A notified syscall interrupted by a signal is withdrawn by the
            // kernel (the answer then fails with ENOENT, or the id is no
            // longer valid) and notified again when it restarts: runc's Go
            // runtime preempts its threads with signals, so this happens
            // to runc's init now and then. Every answer that reached a
            // live request must still be CONTINUE.
            let interrupted =
                |o: &Outcome| matches!(o, Outcome::Invalidated | Outcome::SendFailed(libc::ENOENT));
            assert!(
                events
                    .iter()
                    .all(|e| e.outcome == Outcome::Continued || interrupted(&e.outcome)),
                "{case}: {events:?}"
            );
        }
    }
}

/// runc's exec cases: the exec'd process's own listener reaches the agent,
/// which emulates its mkdir (`-<metadata>` suffix, in the container's
/// /dev/shm), noNewPrivileges false and true.
#[test]
fn seccomp_notify_agent_emulates_mkdir_for_exec() {
    require_notify!();
    let env = TestEnv::new(&["sleep", "100"]);
    for rt in Runtime::all(&env) {
        for nnp in [false, true] {
            let case = format!("{} nnp={nnp}", rt.name);
            let sock = agent_path(&env, &rt);
            configure(&env, &sock, &["mkdir", "mkdirat"], "sleep 100");
            writable_with_nnp(&env, nnp);
            let agent = Agent::listen(&sock, mkdir_suffixed);
            let id = unique_id("notifyexecmk");
            let out = rt.bundle(&env, "run", &["-d", &id], 60);
            assert!(out.status.success(), "{case}: {}", stderr(&out));
            let script = "mkdir /dev/shm/foo && stat /dev/shm/foo-meta && ! test -e /dev/shm/foo";
            let ex = rt.run(&["exec", &id, "sh", "-c", script], 60);
            let del = rt.run(&["delete", "-f", &id], 60);
            let reports = agent.finish();
            assert!(ex.status.success(), "{case}: {}", text(&ex));
            assert!(del.status.success(), "{case}: {}", stderr(&del));
            assert_eq!(reports.len(), 2, "{case}: init's and exec's: {reports:?}");
            let made = emulated(&reports);
            assert_eq!(made, [("/dev/shm/foo-meta".to_string(), 0)], "{case}");
            rt.assert_no_leftovers(&env, &id);
        }
    }
}

/// runc's "ignore listener path if no notify act": a listenerPath with no
/// notify rule is not used (no agent is there, the run succeeds); rrc says
/// so in a warning naming the field.
#[test]
fn seccomp_notify_listener_path_without_notify_rules_is_unused() {
    require_env!();
    let env = TestEnv::new(&["true"]);
    for rt in Runtime::all(&env) {
        env.edit_config(|c| {
            c["process"]["args"] = json!([
                "sh",
                "-c",
                "mkdir /dev/shm/foo && stat /dev/shm/foo >/dev/null && echo made"
            ]);
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": env.dir.path().join("nobody.sock"),
                "listenerMetadata": "meta",
            });
        });
        let id = unique_id("notifyunused");
        let out = rt.bundle(&env, "run", &[&id], 60);
        assert!(out.status.success(), "{}: {}", rt.name, text(&out));
        assert!(stdout(&out).contains("made"), "{}: {}", rt.name, text(&out));
        if rt.name == "rrc" {
            assert!(
                stderr(&out).contains("linux.seccomp.listenerPath"),
                "{}",
                stderr(&out)
            );
        }
        rt.assert_no_leftovers(&env, &id);
    }
}

/// runc's "startContainer hook" case: a hook run with a notifying filter
/// gets no fd beyond its stdio (ls of /proc/self/fd shows 4, its own
/// directory fd included): the listener does not leak into it.
#[test]
fn seccomp_notify_start_container_hook_gets_no_extra_fd() {
    require_notify!();
    let env = TestEnv::new(&["true"]);
    let counted = env.bundle.join("rootfs/tmp/hook-fds");
    for rt in Runtime::all(&env) {
        let _ = std::fs::remove_file(&counted);
        configure(
            &env,
            &env.dir.path().join("x"),
            &["mkdir", "mkdirat"],
            "true",
        );
        writable_with_nnp(&env, false);
        env.edit_config(|c| {
            c["process"]["args"] = json!(["/bin/true"]);
            c["hooks"] = json!({"startContainer": [{
                "path": "/bin/sh",
                "args": ["sh", "-c", "n=$(ls /proc/self/fd | wc -l); echo $n > /tmp/hook-fds; test $n -eq 4"]
            }]});
        });
        let (out, _) = run_with_agent(&env, &rt, mkdir_emulated);
        let n = std::fs::read_to_string(&counted).unwrap_or_default();
        assert!(out.status.success(), "{}: fds {n}: {}", rt.name, text(&out));
        assert_eq!(n.trim(), "4", "{}", rt.name);
    }
    env.edit_config(|c| {
        if let Some(o) = c.as_object_mut() {
            o.remove("hooks");
        }
    });
}

/// An agent on an abstract socket (`@name`): runc's net.Dial reads the
/// `@` so, and rrc does too; the agent gets the listener and emulates.
#[test]
fn seccomp_notify_agent_on_an_abstract_socket() {
    require_notify!();
    let env = TestEnv::new(&["true"]);
    for rt in Runtime::all(&env) {
        let name = PathBuf::from(format!("@{}", unique_id("rr-agent")));
        configure(
            &env,
            &name,
            &["mkdir", "mkdirat"],
            "mkdir /dev/shm/a && test -d /dev/shm/a-meta && echo made",
        );
        let agent = Agent::listen(&name, mkdir_suffixed);
        let id = unique_id("notifyabstract");
        let out = rt.bundle(&env, "run", &[&id], 60);
        let reports = agent.finish();
        assert!(out.status.success(), "{}: {}", rt.name, text(&out));
        assert!(stdout(&out).contains("made"), "{}: {}", rt.name, text(&out));
        assert_eq!(emulated(&reports), [("/dev/shm/a-meta".to_string(), 0)]);
        rt.assert_no_leftovers(&env, &id);
    }
}

/// What a stop signal does to a mkdir whose notification the agent holds
/// for a while: the number of notifications and what answering the first
/// one gave.
fn stopped_while_pending(env: &TestEnv, rt: &Runtime, flags: Value) -> (usize, Vec<Outcome>) {
    let sock = agent_path(env, rt);
    configure(
        env,
        &sock,
        &["mkdir", "mkdirat"],
        "mkdir /tmp/late; echo rc=$?",
    );
    writable_with_nnp(env, false);
    env.edit_config(|c| c["linux"]["seccomp"]["flags"] = flags);
    let agent = Agent::listen(&sock, |_| {
        Answer::ContinueAfter(Duration::from_millis(1500))
    });
    let id = unique_id("notifykillable");
    let out = rt.bundle(env, "run", &["-d", &id], 30);
    assert!(out.status.success(), "{}: {}", rt.name, stderr(&out));
    let mut pid = 0;
    let got = agent.wait_until(Duration::from_secs(20), |r| {
        r.iter().flat_map(|r| &r.received).next().is_some()
    });
    assert!(got, "{}: no notification", rt.name);
    if let Some((_, p)) = agent
        .reports()
        .iter()
        .flat_map(|r| r.received.clone())
        .next()
    {
        pid = p as i32;
    }
    // SAFETY: plain signals to the container's process this test made.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let st = wait_status(rt, &id, "stopped", 20);
    assert_eq!(st["status"], "stopped", "{}: {st}", rt.name);
    let del = rt.run(&["delete", "-f", &id], 30);
    assert!(del.status.success(), "{}: {}", rt.name, stderr(&del));
    let reports = agent.finish();
    let received = reports.iter().map(|r| r.received.len()).sum();
    let outcomes = reports
        .iter()
        .flat_map(|r| &r.events)
        .map(|e| e.outcome.clone())
        .collect();
    rt.assert_no_leftovers(env, &id);
    (received, outcomes)
}

/// runc's WAIT_KILLABLE_RECV case, shown by its effect: without the flag a
/// stop signal interrupts a notified mkdir the agent has received (its
/// answer finds no request, ENOENT, and the restarted mkdir is notified
/// again); with it the wait ignores all but fatal signals once received,
/// so the first answer lands. rrc only: runc 1.1.5 refuses every seccomp
/// flag ("seccomp flags are not yet supported by runc"); runc 1.2 takes it.
#[test]
fn seccomp_notify_wait_killable_recv_holds_against_signals() {
    require_notify!();
    if !notify_agent::kernel_has_wait_killable_recv() || !notify_agent::kernel_has_continue() {
        eprintln!("SKIPPED: no SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Linux 5.19)");
        return;
    }
    let env = TestEnv::new(&["true"]);
    let rt = Runtime::rrc(&env);
    let (received, outcomes) = stopped_while_pending(&env, &rt, json!([]));
    assert_eq!(received, 2, "{outcomes:?}");
    assert_eq!(
        outcomes,
        [Outcome::SendFailed(libc::ENOENT), Outcome::Continued]
    );
    let flag = json!(["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]);
    let (received, outcomes) = stopped_while_pending(&env, &rt, flag);
    assert_eq!(received, 1, "{outcomes:?}");
    assert_eq!(outcomes, [Outcome::Continued]);
}

/// runc's seccomp-notify-compat case: on a kernel without user
/// notification a notify profile fails the create with a message naming
/// it, and leaves nothing.
#[test]
fn seccomp_notify_on_a_kernel_without_it_fails_clearly() {
    require_env!();
    if notify_agent::kernel_has_user_notif() {
        eprintln!("SKIPPED: the kernel has SECCOMP_RET_USER_NOTIF (this checks older ones)");
        return;
    }
    let env = TestEnv::new(&["true"]);
    let sock = env.dir.path().join("agent.sock");
    configure(&env, &sock, &["mkdir", "mkdirat"], "true");
    let agent = Agent::listen(&sock, mkdir_emulated);
    let id = unique_id("notifyold");
    let out = env.rrc_bundle("create", &[&id]);
    drop(agent);
    assert!(!out.status.success(), "created");
    assert!(stderr(&out).contains("Notify"), "{}", stderr(&out));
    env.assert_no_leftovers(&id);
}

fn open_injected(nr: i64) -> Answer {
    if nr == libc::SYS_openat || nr == libc::SYS_open {
        Answer::OpenInjected("/agent-says")
    } else {
        Answer::Continue
    }
}

/// The agent answers an open of a file that does not exist in the
/// container by putting its own memfd into the caller's fd table
/// (SECCOMP_IOCTL_NOTIF_ADDFD, Linux 5.9) and returning its number; every
/// other open goes on (CONTINUE, 5.5). `cat` shows the agent's text and the
/// rootfs has no such file.
#[test]
fn seccomp_notify_agent_injects_an_fd() {
    require_notify!();
    if !notify_agent::kernel_has_addfd() || !notify_agent::kernel_has_continue() {
        eprintln!("SKIPPED: no SECCOMP_IOCTL_NOTIF_ADDFD (Linux 5.9)");
        return;
    }
    let env = TestEnv::new(&["true"]);
    for rt in Runtime::all(&env) {
        configure(
            &env,
            &env.dir.path().join("x"),
            &["open", "openat"],
            "cat /agent-says; echo rc=$?",
        );
        let (out, reports) = run_with_agent(&env, &rt, open_injected);
        let t = text(&out);
        assert!(out.status.success(), "{}: {t}", rt.name);
        assert!(t.contains(notify_agent::INJECTED), "{}: {t}", rt.name);
        assert!(t.contains("rc=0"), "{}: {t}", rt.name);
        assert!(!env.bundle.join("rootfs/agent-says").exists());
        let injected = reports
            .iter()
            .flat_map(|r| &r.events)
            .filter(|e| matches!(e.outcome, Outcome::Injected(fd) if fd >= 0))
            .count();
        assert_eq!(injected, 1, "{}: {reports:?}", rt.name);
    }
}
