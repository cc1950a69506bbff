//! The swrk protocol against a scripted fake CRIU.
//!
//! This test binary is its own fake: started with `RR_FAKE_CRIU=<scenario>`
//! and the arguments `swrk <fd>` (or `-V`), it plays CRIU's side of the
//! scenario instead of running the tests. A small shell script per scenario
//! sets the variable and execs the binary, and is what the client runs as
//! "criu". The harness is our own (`harness = false`) because libtest would
//! read `swrk <fd>` as test filters.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::socket::{getsockopt, sendmsg, sockopt, ControlMessage, MsgFlags};
use prost::Message;
use rr_criu::rpc::{self, CriuReqType};
use rr_criu::{AcceptAll, Criu, CriuOpts, Error, NotifyError, RequestType, Version};

// ---------------------------------------------------------------- the fake

mod fake {
    use super::*;

    pub fn main(scenario: &str) -> i32 {
        let args: Vec<String> = std::env::args().skip(1).collect();
        if args.first().map(String::as_str) == Some("-V") {
            return dash_v(scenario);
        }
        let (Some("swrk"), Some(fd)) = (args.first().map(String::as_str), args.get(1)) else {
            eprintln!("fake criu: unexpected arguments {args:?}");
            return 64;
        };
        let Ok(fd) = fd.parse::<RawFd>() else {
            eprintln!("fake criu: bad fd {fd}");
            return 64;
        };
        if let Ok(counter) = std::env::var("RR_FAKE_COUNTER") {
            let mut f = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(counter)
                .unwrap();
            writeln!(f, "{}", std::process::id()).unwrap();
        }
        // SAFETY: the client passed this descriptor for us to own.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        // The client must hand over a SEQPACKET socket, inherited across exec.
        match getsockopt(&sock, sockopt::SockType) {
            Ok(nix::sys::socket::SockType::SeqPacket) => {}
            other => {
                eprintln!("fake criu: fd {fd} is not a SEQPACKET socket: {other:?}");
                return 65;
            }
        }
        let mut c = Conn { sock };
        match scenario {
            "probe" => probe(&mut c),
            "old" => old(&mut c),
            "dump" => dump(&mut c),
            "restore" => restore(&mut c),
            "reject" => reject(&mut c),
            "early-exit" => {
                let _ = c.recv();
                3
            }
            "garbage" => {
                let _ = c.recv();
                c.send_raw(&[0xff, 0xff, 0xff]);
                let _ = c.recv();
                0
            }
            "garbage-then-hang" => {
                let _ = c.recv();
                c.send_raw(&[0xff, 0xff, 0xff]);
                std::thread::sleep(Duration::from_secs(120));
                0
            }
            "fail" => {
                let _ = c.recv();
                let mut r = resp(CriuReqType::Dump, false);
                r.cr_errno = Some(13);
                r.cr_errmsg = Some("Can't dump task 1234".into());
                c.send(&r);
                1
            }
            "big" => {
                let req = c.recv();
                let mut r = resp(CriuReqType::try_from(req.r#type).unwrap(), true);
                r.cr_errmsg = Some("x".repeat(100_000));
                c.send(&r);
                0
            }
            "exit-after-success" => {
                let _ = c.recv();
                c.send(&resp(CriuReqType::Dump, true));
                2
            }
            "pre-dump-loop" => {
                // As CRIU: after a pre-dump it waits for the next request,
                // and fails (exit 70 in recv) when the socket closes instead.
                let _ = c.recv();
                c.send(&resp(CriuReqType::PreDump, true));
                let _ = c.recv();
                0
            }
            "wrong-type" => {
                let _ = c.recv();
                c.send(&resp(CriuReqType::Restore, true));
                0
            }
            _ => {
                eprintln!("fake criu: unknown scenario {scenario}");
                64
            }
        }
    }

    fn dash_v(scenario: &str) -> i32 {
        match scenario {
            "old" => print!("Version: 2.12\nGitID: v2.12-7-gfeed\n"),
            _ => println!("Version: 4.2.1"),
        }
        0
    }

    pub struct Conn {
        sock: OwnedFd,
    }

    impl Conn {
        pub fn recv(&mut self) -> rpc::CriuReq {
            let mut buf = vec![0u8; 1 << 20];
            let n =
                nix::sys::socket::recv(self.sock.as_raw_fd(), &mut buf, MsgFlags::empty()).unwrap();
            if n == 0 {
                eprintln!("fake criu: client closed the connection");
                std::process::exit(70);
            }
            rpc::CriuReq::decode(&buf[..n]).unwrap()
        }

        pub fn send_raw(&mut self, bytes: &[u8]) {
            nix::sys::socket::send(self.sock.as_raw_fd(), bytes, MsgFlags::empty()).unwrap();
        }

        pub fn send(&mut self, r: &rpc::CriuResp) {
            self.send_raw(&r.encode_to_vec());
        }

        fn send_with_fd(&mut self, r: &rpc::CriuResp, fd: RawFd) {
            let bytes = r.encode_to_vec();
            let iov = [std::io::IoSlice::new(&bytes)];
            let fds = [fd];
            sendmsg::<()>(
                self.sock.as_raw_fd(),
                &iov,
                &[ControlMessage::ScmRights(&fds)],
                MsgFlags::empty(),
                None,
            )
            .unwrap();
        }

        /// Sends a notification and returns the client's notify_success.
        fn notify(&mut self, script: &str, pid: Option<i32>, fd: Option<RawFd>) -> bool {
            let mut r = resp(CriuReqType::Notify, true);
            r.notify = Some(rpc::CriuNotify {
                script: Some(script.into()),
                pid,
            });
            match fd {
                Some(fd) => self.send_with_fd(&r, fd),
                None => self.send(&r),
            }
            let answer = self.recv();
            assert_eq!(answer.r#type, CriuReqType::Notify as i32, "answer type");
            answer.notify_success.unwrap_or(false)
        }

        fn peer_pid(&self) -> i32 {
            getsockopt(&self.sock, sockopt::PeerCredentials)
                .unwrap()
                .pid()
        }
    }

    pub fn resp(t: CriuReqType, success: bool) -> rpc::CriuResp {
        rpc::CriuResp {
            r#type: t as i32,
            success,
            ..Default::default()
        }
    }

    fn probe(c: &mut Conn) -> i32 {
        let v = c.recv();
        if v.r#type != CriuReqType::Version as i32 || v.keep_open != Some(true) {
            eprintln!("fake criu: expected VERSION with keep_open, got {v:?}");
            return 66;
        }
        let mut r = resp(CriuReqType::Version, true);
        r.version = Some(rpc::CriuVersion {
            major_number: 4,
            minor_number: 2,
            sublevel: Some(1),
            ..Default::default()
        });
        c.send(&r);
        let f = c.recv();
        let asked = f.features.unwrap_or_default();
        if f.r#type != CriuReqType::FeatureCheck as i32
            || asked.mem_track != Some(true)
            || asked.lazy_pages != Some(true)
            || asked.pidfd_store != Some(true)
        {
            eprintln!("fake criu: expected FEATURE_CHECK of all features");
            return 66;
        }
        let mut r = resp(CriuReqType::FeatureCheck, true);
        r.features = Some(rpc::CriuFeatures {
            mem_track: Some(false),
            lazy_pages: Some(true),
            pidfd_store: Some(true),
        });
        c.send(&r);
        0
    }

    fn old(c: &mut Conn) -> i32 {
        // CRIU before 3.0 knows neither VERSION nor FEATURE_CHECK.
        let _ = c.recv();
        c.send(&resp(CriuReqType::Empty, false));
        0
    }

    /// Checks the options the way CRIU reads them: through /proc/<peer>/fd.
    fn check_dump_opts(c: &Conn, req: &rpc::CriuReq) -> Result<(), String> {
        let opts = req.opts.as_ref().ok_or("no opts")?;
        let expected = std::env::var("RR_FAKE_IMAGES").map_err(|e| e.to_string())?;
        let link = format!("/proc/{}/fd/{}", c.peer_pid(), opts.images_dir_fd);
        let got = fs::read_link(&link).map_err(|e| format!("{link}: {e}"))?;
        if got != Path::new(&expected) {
            return Err(format!("images dir {got:?}, expected {expected}"));
        }
        if opts.log_file.as_deref() != Some("dump.log")
            || opts.leave_running != Some(true)
            || opts.pid != Some(4321)
            || opts.notify_scripts != Some(true)
        {
            return Err(format!("unexpected opts {opts:?}"));
        }
        Ok(())
    }

    fn dump(c: &mut Conn) -> i32 {
        let req = c.recv();
        if req.r#type != CriuReqType::Dump as i32 {
            return 66;
        }
        if let Err(e) = check_dump_opts(c, &req) {
            eprintln!("fake criu: {e}");
            return 67;
        }
        if !c.notify("pre-dump", None, None) {
            return 68;
        }
        let (r, w) = nix::unistd::pipe().unwrap();
        fs::File::from(w).write_all(b"pty master").unwrap();
        if !c.notify("orphan-pts-master", None, Some(r.as_raw_fd())) {
            return 68;
        }
        drop(r);
        if !c.notify("post-dump", None, None) {
            return 68;
        }
        let mut done = resp(CriuReqType::Dump, true);
        done.cr_errmsg = Some("RLIMIT_NOFILE is low".into());
        c.send(&done);
        0
    }

    fn restore(c: &mut Conn) -> i32 {
        let req = c.recv();
        if req.r#type != CriuReqType::Restore as i32 {
            return 66;
        }
        if !c.notify("post-restore", Some(4242), None) {
            return 68;
        }
        let mut done = resp(CriuReqType::Restore, true);
        done.restore = Some(rpc::CriuRestoreResp { pid: 4242 });
        c.send(&done);
        0
    }

    fn reject(c: &mut Conn) -> i32 {
        let _ = c.recv();
        if c.notify("network-lock", None, None) {
            eprintln!("fake criu: expected notify_success false");
            return 69;
        }
        let mut r = resp(CriuReqType::Dump, false);
        r.cr_errmsg = Some("network-lock script failed".into());
        c.send(&r);
        1
    }
}

// ---------------------------------------------------------------- the tests

struct Setup {
    dir: tempfile::TempDir,
    criu: PathBuf,
}

/// A script that runs this binary as the fake CRIU of `scenario`.
fn setup(scenario: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let criu = dir.path().join("criu");
    let images = dir.path().join("images");
    fs::create_dir(&images).unwrap();
    fs::write(
        &criu,
        format!(
            "#!/bin/sh\nRR_FAKE_CRIU={scenario} RR_FAKE_COUNTER={counter} RR_FAKE_IMAGES={images} exec {exe} \"$@\"\n",
            counter = dir.path().join("spawns").display(),
            images = images.display(),
            exe = exe.display(),
        ),
    )
    .unwrap();
    fs::set_permissions(&criu, fs::Permissions::from_mode(0o755)).unwrap();
    Setup { dir, criu }
}

impl Setup {
    fn images(&self) -> fs::File {
        fs::File::open(self.dir.path().join("images")).unwrap()
    }
    fn spawns(&self) -> Vec<i32> {
        fs::read_to_string(self.dir.path().join("spawns"))
            .unwrap_or_default()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect()
    }
}

fn assert_reaped(pids: &[i32]) {
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "fake criu {pid} was not reaped"
        );
    }
}

fn probe_uses_one_process_and_caches() {
    let s = setup("probe");
    let criu = Criu::new(&s.criu);
    let p = criu.probe().unwrap();
    assert_eq!(p.version, Version::new(4, 2, 1));
    assert!(!p.features.mem_track && p.features.lazy_pages && p.features.pidfd_store);
    // Cached: no second CRIU for any of these.
    criu.probe().unwrap();
    criu.features().unwrap();
    assert_eq!(criu.version().unwrap().number(), 40201);
    let spawns = s.spawns();
    assert_eq!(spawns.len(), 1, "one CRIU answers both requests");
    assert_reaped(&spawns);
    let e = criu
        .require_version(&Version::new(4, 3, 0), "something new")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "CRIU 4.2.1 found, 4.3 or newer needed for something new"
    );
}

fn old_criu_falls_back_to_dash_v() {
    let s = setup("old");
    let criu = Criu::new(&s.criu);
    let v = criu.version().unwrap();
    // Git build of 2.12 counts as 2.13.0.
    assert_eq!(v.number(), 21300);
    assert_eq!(v.gitid(), Some("v2.12-7-gfeed"));
    let e = criu.probe().unwrap_err();
    assert!(matches!(e, Error::FeatureCheck { .. }), "{e}");
    assert_reaped(&s.spawns());
}

fn criu_missing() {
    let criu = Criu::new("/nonexistent/criu");
    match criu.probe() {
        Err(Error::Spawn { path, source }) => {
            assert_eq!(path, Path::new("/nonexistent/criu"));
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
    let images = fs::File::open("/").unwrap();
    let e = criu
        .dump(&CriuOpts::new(images.as_fd()), &mut AcceptAll)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("cannot start CRIU at /nonexistent/criu"),
        "{e}"
    );
}

fn dump_with_notifications_and_fd() {
    let s = setup("dump");
    let images = s.images();
    let opts = CriuOpts::new(images.as_fd())
        .log_file("dump.log")
        .pid(4321)
        .leave_running(true);
    let mut seen = Vec::new();
    let mut pty = String::new();
    let mut handler =
        |script: &str, pid: Option<i32>, fd: Option<OwnedFd>| -> Result<(), NotifyError> {
            if let Some(fd) = fd {
                fs::File::from(fd).read_to_string(&mut pty)?;
            }
            seen.push((script.to_string(), pid));
            Ok(())
        };
    let out = Criu::new(&s.criu).dump(&opts, &mut handler).unwrap();
    assert_eq!(out.warning.as_deref(), Some("RLIMIT_NOFILE is low"));
    assert!(!out.restored);
    assert_eq!(
        seen,
        vec![
            ("pre-dump".to_string(), None),
            ("orphan-pts-master".to_string(), None),
            ("post-dump".to_string(), None)
        ]
    );
    assert_eq!(pty, "pty master");
    assert_reaped(&s.spawns());
}

fn restore_reports_pid() {
    let s = setup("restore");
    let images = s.images();
    let mut post_restore = None;
    let mut handler =
        |script: &str, pid: Option<i32>, _fd: Option<OwnedFd>| -> Result<(), NotifyError> {
            if script == "post-restore" {
                post_restore = pid;
            }
            Ok(())
        };
    let out = Criu::new(&s.criu)
        .restore(
            &CriuOpts::new(images.as_fd()).rst_sibling(true),
            &mut handler,
        )
        .unwrap();
    assert_eq!(out.pid, 4242);
    assert_eq!(post_restore, Some(4242));
}

fn rejected_notification_aborts() {
    let s = setup("reject");
    let images = s.images();
    let mut handler =
        |script: &str, _: Option<i32>, _: Option<OwnedFd>| -> Result<(), NotifyError> {
            if script == "network-lock" {
                return Err("cannot lock the network".into());
            }
            Ok(())
        };
    let e = Criu::new(&s.criu)
        .dump(&CriuOpts::new(images.as_fd()), &mut handler)
        .unwrap_err();
    match &e {
        Error::NotifyRejected {
            request, script, ..
        } => {
            assert_eq!(*request, RequestType::Dump);
            assert_eq!(script, "network-lock");
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("cannot lock the network"), "{e}");
    assert_reaped(&s.spawns());
}

fn criu_exits_early() {
    let s = setup("early-exit");
    let images = s.images();
    let e = Criu::new(&s.criu)
        .pre_dump(&CriuOpts::new(images.as_fd()), &mut AcceptAll)
        .unwrap_err();
    match &e {
        Error::ConnectionClosed {
            request: RequestType::PreDump,
            status: Some(st),
            ..
        } => assert_eq!(st.code(), Some(3)),
        other => panic!("{other:?}"),
    }
    assert_reaped(&s.spawns());
}

fn garbage_reply() {
    let s = setup("garbage");
    let images = s.images();
    let e = Criu::new(&s.criu)
        .dump(&CriuOpts::new(images.as_fd()), &mut AcceptAll)
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Decode {
                request: RequestType::Dump,
                len: 3,
                ..
            }
        ),
        "{e}"
    );
    assert_reaped(&s.spawns());
}

fn hung_criu_is_killed_and_reaped() {
    let s = setup("garbage-then-hang");
    let images = s.images();
    let start = Instant::now();
    let e = Criu::new(&s.criu)
        .dump(&CriuOpts::new(images.as_fd()), &mut AcceptAll)
        .unwrap_err();
    assert!(matches!(e, Error::Decode { .. }), "{e}");
    // Closed socket, then the grace period, then SIGKILL.
    assert!(start.elapsed() < Duration::from_secs(60));
    assert_reaped(&s.spawns());
}

fn failure_carries_errno_message_and_log() {
    let s = setup("fail");
    let images = s.images();
    let work = fs::File::open(s.dir.path()).unwrap();
    let opts = CriuOpts::new(images.as_fd())
        .work_dir(work.as_fd())
        .log_file("dump.log");
    let e = Criu::new(&s.criu).dump(&opts, &mut AcceptAll).unwrap_err();
    match &e {
        Error::Request {
            request: RequestType::Dump,
            cr_errno: Some(13),
            cr_errmsg: Some(m),
            log: Some(log),
        } => {
            assert_eq!(m, "Can't dump task 1234");
            assert_eq!(log, &s.dir.path().join("dump.log"));
        }
        other => panic!("{other:?}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains("Permission denied") && msg.contains("dump.log"),
        "{msg}"
    );
    assert_reaped(&s.spawns());
}

fn reply_larger_than_40960_bytes() {
    let s = setup("big");
    let images = s.images();
    let out = Criu::new(&s.criu)
        .dump(&CriuOpts::new(images.as_fd()), &mut AcceptAll)
        .unwrap();
    assert_eq!(out.warning.map(|w| w.len()), Some(100_000));
}

fn nonzero_exit_after_success() {
    let s = setup("exit-after-success");
    let images = s.images();
    let e = Criu::new(&s.criu)
        .dump(&CriuOpts::new(images.as_fd()), &mut AcceptAll)
        .unwrap_err();
    match e {
        Error::CriuExit { status, .. } => assert_eq!(status.code(), Some(2)),
        other => panic!("{other:?}"),
    }
}

/// One pre-dump per CRIU process: its exit when the next request never
/// comes is not a failure, and it is reaped.
fn pre_dump_ends_crius_loop() {
    let s = setup("pre-dump-loop");
    let images = s.images();
    let out = Criu::new(&s.criu).pre_dump(&CriuOpts::new(images.as_fd()), &mut AcceptAll);
    assert!(out.is_ok(), "{out:?}");
    assert_reaped(&s.spawns());
}

fn reply_of_wrong_type() {
    let s = setup("wrong-type");
    let images = s.images();
    let e = Criu::new(&s.criu)
        .dump(&CriuOpts::new(images.as_fd()), &mut AcceptAll)
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::UnexpectedReply {
                request: RequestType::Dump,
                got: RequestType::Restore
            }
        ),
        "{e}"
    );
}

fn main() {
    if let Ok(scenario) = std::env::var("RR_FAKE_CRIU") {
        std::process::exit(fake::main(&scenario));
    }
    let tests: &[(&str, fn())] = &[
        (
            "probe_uses_one_process_and_caches",
            probe_uses_one_process_and_caches,
        ),
        (
            "old_criu_falls_back_to_dash_v",
            old_criu_falls_back_to_dash_v,
        ),
        ("criu_missing", criu_missing),
        (
            "dump_with_notifications_and_fd",
            dump_with_notifications_and_fd,
        ),
        ("restore_reports_pid", restore_reports_pid),
        ("rejected_notification_aborts", rejected_notification_aborts),
        ("criu_exits_early", criu_exits_early),
        ("garbage_reply", garbage_reply),
        (
            "hung_criu_is_killed_and_reaped",
            hung_criu_is_killed_and_reaped,
        ),
        (
            "failure_carries_errno_message_and_log",
            failure_carries_errno_message_and_log,
        ),
        (
            "reply_larger_than_40960_bytes",
            reply_larger_than_40960_bytes,
        ),
        ("nonzero_exit_after_success", nonzero_exit_after_success),
        ("reply_of_wrong_type", reply_of_wrong_type),
        ("pre_dump_ends_crius_loop", pre_dump_ends_crius_loop),
    ];
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let (mut passed, mut failed) = (0, 0);
    println!("\nrunning {} tests", tests.len());
    for (name, test) in tests {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        match std::panic::catch_unwind(test) {
            Ok(()) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    let verdict = if failed == 0 { "ok" } else { "FAILED" };
    println!("\ntest result: {verdict}. {passed} passed; {failed} failed; 0 ignored; 0 measured; 0 filtered out\n");
    if failed != 0 {
        std::process::exit(101);
    }
}
