//! Terminals: the master of the container's pty arrives on the console
//! socket (SCM_RIGHTS, the pty name as data), and the container sees a
//! terminal on its stdio.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixListener;
use std::process::Stdio;

use rr_tests::{require_env, stderr, stdout, unique_id, TestEnv};
use serde_json::json;

/// Reads a pty master until every slave is closed (EIO).
fn read_master(fd: OwnedFd) -> String {
    let mut f = std::fs::File::from(fd);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

const SCRIPT: &str =
    "tty; test -t 0 && echo stdin-tty; test -t 1 && echo stdout-tty; stty size; echo end";

#[test]
fn console_socket_receives_the_master() {
    require_env!();
    let env = TestEnv::new(&["sh", "-c", SCRIPT]);
    env.edit_config(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["consoleSize"] = json!({"height": 31, "width": 97});
    });
    let sock_path = env.dir.path().join("console.sock");
    let listener = UnixListener::bind(&sock_path).expect("bind");
    let id = unique_id("tty");
    let b = env.bundle.to_str().unwrap_or(".").to_string();
    let child = env
        .rrc_cmd(&[
            "create",
            "-b",
            &b,
            "--console-socket",
            sock_path.to_str().unwrap_or(""),
            &id,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn create");
    let (conn, _) = listener.accept().expect("accept");
    let (name, master) = rr_tests::recv_console(conn.as_raw_fd());
    let out = child.wait_with_output().expect("create");
    assert!(out.status.success(), "create: {}", stderr(&out));
    assert!(name.starts_with("/dev/pts/"), "message data {name:?}");
    let out = env.rrc(&["start", &id]);
    assert!(out.status.success(), "start: {}", stderr(&out));
    let text = read_master(master);
    assert!(text.contains(&name), "tty printed another name: {text}");
    assert!(text.contains("stdin-tty"), "{text}");
    assert!(text.contains("stdout-tty"), "{text}");
    assert!(text.contains("31 97"), "consoleSize not applied: {text}");
    let out = env.rrc(&["delete", "-f", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    env.assert_no_leftovers(&id);
}

#[test]
fn terminal_without_console_socket() {
    require_env!();
    let env = TestEnv::new(&["sh", "-c", SCRIPT]);
    env.edit_config(|c| c["process"]["terminal"] = json!(true));
    // create would detach: refused, nothing left.
    let id = unique_id("tty-none");
    let b = env.bundle.to_str().unwrap_or(".").to_string();
    let out = env.rrc_bundle("create", &[&id]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot allocate tty"),
        "{}",
        stderr(&out)
    );
    env.assert_no_leftovers(&id);
    let out = env.rrc_detached(&["run", "-b", &b, "-d", &id]);
    assert!(!out.status.success());
    env.assert_no_leftovers(&id);
    // Foreground run proxies the terminal itself.
    let out = env.rrc_bundle("run", &[&id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("/dev/pts/"), "{text}");
    assert!(
        text.contains("stdin-tty") && text.contains("stdout-tty"),
        "{text}"
    );
    assert!(text.contains("end"), "{text}");
    env.assert_no_leftovers(&id);
}

#[test]
fn console_socket_ignored_without_terminal() {
    require_env!();
    let env = TestEnv::new(&["sh", "-c", "test -t 1 || echo not-a-tty"]);
    let sock_path = env.dir.path().join("unused.sock");
    let _listener = UnixListener::bind(&sock_path).expect("bind");
    let id = unique_id("tty-ignored");
    let out = env.rrc_bundle(
        "run",
        &["--console-socket", sock_path.to_str().unwrap_or(""), &id],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "not-a-tty");
    env.assert_no_leftovers(&id);
}

#[test]
fn exec_with_a_terminal() {
    require_env!();
    let env = TestEnv::new(&["sleep", "1000"]);
    let id = unique_id("tty-exec");
    let b = env.bundle.to_str().unwrap_or(".").to_string();
    let out = env.rrc_detached(&["run", "-b", &b, "-d", &id]);
    assert!(out.status.success(), "{}", stderr(&out));

    let sock_path = env.dir.path().join("exec.sock");
    let listener = UnixListener::bind(&sock_path).expect("bind");
    let child = env
        .rrc_cmd(&[
            "exec",
            "-t",
            "-d",
            "--console-socket",
            sock_path.to_str().unwrap_or(""),
            &id,
            "sh",
            "-c",
            SCRIPT,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn exec");
    let (conn, _) = listener.accept().expect("accept");
    let (name, master) = rr_tests::recv_console(conn.as_raw_fd());
    let out = child.wait_with_output().expect("exec");
    assert!(out.status.success(), "exec: {}", stderr(&out));
    let text = read_master(master);
    assert!(text.contains(&name) && text.contains("stdin-tty"), "{text}");

    // Foreground exec -t without a socket: rrc proxies, exit code kept.
    let out = env.rrc(&["exec", "-t", &id, "sh", "-c", "test -t 0 && exit 9"]);
    assert_eq!(out.status.code(), Some(9), "{}", stderr(&out));
    let out = env.rrc(&["exec", "-t", "-d", &id, "true"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot allocate tty"),
        "{}",
        stderr(&out)
    );

    let out = env.rrc(&["delete", "-f", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    env.assert_no_leftovers(&id);
}
