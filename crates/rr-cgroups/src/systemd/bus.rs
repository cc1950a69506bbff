//! A synchronous D-Bus client for the handful of systemd manager calls the
//! driver makes. It runs on the calling thread only: rrc forks after
//! setting up cgroups, which is safe only while it has a single thread.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::props::Property;
use super::wire::{self, kind, Call, Message, Writer};
use crate::error::{Error, Result};

const SYSTEMD: &str = "org.freedesktop.systemd1";
const SYSTEMD_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// How long a job may take before the driver gives up (runc waits as long).
pub const JOB_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(25);

fn err(what: impl std::fmt::Display) -> Error {
    Error::Systemd(what.to_string())
}

/// The socket named by a `unix:path=...` bus address, if it names one.
pub fn address_path(address: &str) -> Option<PathBuf> {
    address.split(';').find_map(|a| {
        let rest = a.strip_prefix("unix:")?;
        rest.split(',')
            .find_map(|kv| kv.strip_prefix("path="))
            .map(PathBuf::from)
    })
}

/// The system bus socket ($DBUS_SYSTEM_BUS_ADDRESS or the standard one).
pub fn system_socket() -> PathBuf {
    std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
        .ok()
        .and_then(|a| address_path(&a))
        .unwrap_or_else(|| PathBuf::from("/run/dbus/system_bus_socket"))
}

/// The user's session bus socket: $DBUS_SESSION_BUS_ADDRESS, else
/// `$XDG_RUNTIME_DIR/bus`.
pub fn user_socket() -> Result<PathBuf> {
    if let Some(p) = std::env::var("DBUS_SESSION_BUS_ADDRESS")
        .ok()
        .and_then(|a| address_path(&a))
    {
        return Ok(p);
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => Ok(Path::new(&d).join("bus")),
        _ => Err(err(
            "rootless systemd cgroups need the user's bus: XDG_RUNTIME_DIR is not set",
        )),
    }
}

/// A connection to a bus, authenticated and named (Hello).
#[derive(Debug)]
pub struct Bus {
    sock: UnixStream,
    socket: PathBuf,
    serial: u32,
    signals: VecDeque<Message>,
}

impl Bus {
    /// Connects to the bus at `socket` and says Hello.
    pub fn connect(socket: &Path) -> Result<Bus> {
        let sock = UnixStream::connect(socket).map_err(|e| {
            err(format!(
                "connecting to the D-Bus socket {}: {e}",
                socket.display()
            ))
        })?;
        let mut bus = Bus {
            sock,
            socket: socket.to_path_buf(),
            serial: 0,
            signals: VecDeque::new(),
        };
        bus.auth()?;
        bus.call(&Call {
            destination: "org.freedesktop.DBus",
            path: "/org/freedesktop/DBus",
            interface: "org.freedesktop.DBus",
            member: "Hello",
            signature: "",
            body: Vec::new(),
        })?;
        Ok(bus)
    }

    fn io(&self, what: &str) -> impl Fn(std::io::Error) -> Error + '_ {
        let what = what.to_string();
        move |e| err(format!("{what} on {}: {e}", self.socket.display()))
    }

    /// SASL EXTERNAL with the effective uid, which the bus checks against
    /// the socket's peer credentials.
    fn auth(&mut self) -> Result<()> {
        // SAFETY: geteuid cannot fail.
        let uid = unsafe { libc::geteuid() }.to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        let hello = format!("\0AUTH EXTERNAL {hex}\r\n");
        self.sock
            .set_read_timeout(Some(CALL_TIMEOUT))
            .map_err(self.io("setting a timeout"))?;
        (&self.sock)
            .write_all(hello.as_bytes())
            .map_err(self.io("authenticating"))?;
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            (&self.sock)
                .read_exact(&mut b)
                .map_err(self.io("authenticating"))?;
            line.push(b[0]);
            if line.len() > 512 {
                return Err(err("the bus sent an overlong authentication line"));
            }
        }
        if !line.starts_with(b"OK ") {
            return Err(err(format!(
                "the bus refused authentication as uid {uid}: {}",
                String::from_utf8_lossy(&line).trim()
            )));
        }
        (&self.sock)
            .write_all(b"BEGIN\r\n")
            .map_err(self.io("authenticating"))
    }

    fn read_message(&mut self, deadline: Instant) -> Result<Message> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(err("timed out waiting for systemd"));
        }
        self.sock
            .set_read_timeout(Some(left))
            .map_err(self.io("setting a timeout"))?;
        let mut head = [0u8; 16];
        (&self.sock)
            .read_exact(&mut head)
            .map_err(self.io("reading a message"))?;
        let len =
            wire::message_len(&head).ok_or_else(|| err("the bus sent a malformed message"))?;
        let mut buf = head.to_vec();
        buf.resize(len, 0);
        (&self.sock)
            .read_exact(&mut buf[16..])
            .map_err(self.io("reading a message"))?;
        wire::decode(&buf).ok_or_else(|| err("the bus sent a malformed message"))
    }

    /// Sends a call and waits for its reply; signals that arrive meanwhile
    /// are kept for [`Bus::wait_job`].
    pub fn call(&mut self, c: &Call<'_>) -> Result<Message> {
        self.serial = self.serial.wrapping_add(1).max(1);
        let serial = self.serial;
        (&self.sock)
            .write_all(&wire::encode_call(c, serial))
            .map_err(self.io("sending a call"))?;
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let m = self.read_message(deadline)?;
            match m.kind {
                kind::SIGNAL => self.signals.push_back(m),
                kind::RETURN if m.reply_serial == Some(serial) => return Ok(m),
                kind::ERROR if m.reply_serial == Some(serial) => {
                    return Err(Error::SystemdCall {
                        method: c.member.to_string(),
                        name: m.error_name.clone().unwrap_or_default(),
                        message: m.str_arg(0).unwrap_or_default().to_string(),
                    })
                }
                _ => {}
            }
        }
    }

    fn manager_call(&mut self, member: &str, signature: &str, body: Writer) -> Result<Message> {
        self.call(&Call {
            destination: SYSTEMD,
            path: SYSTEMD_PATH,
            interface: MANAGER,
            member,
            signature,
            body: body.buf,
        })
    }

    /// Asks for JobRemoved signals: a match rule, and Subscribe, without
    /// which older systemd sends no job signals.
    pub fn subscribe_jobs(&mut self) -> Result<()> {
        let mut w = Writer::default();
        w.str("type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.systemd1.Manager',member='JobRemoved',path='/org/freedesktop/systemd1'");
        self.call(&Call {
            destination: "org.freedesktop.DBus",
            path: "/org/freedesktop/DBus",
            interface: "org.freedesktop.DBus",
            member: "AddMatch",
            signature: "s",
            body: w.buf,
        })?;
        self.manager_call("Subscribe", "", Writer::default())?;
        Ok(())
    }

    /// Waits for the JobRemoved signal of `job`; returns its result
    /// (`done`, `failed`, `timeout`...).
    pub fn wait_job(&mut self, job: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let m = match self.signals.pop_front() {
                Some(m) => m,
                None => self.read_message(deadline).map_err(|e| match e {
                    Error::Systemd(m) if m.starts_with("timed out") => err(format!(
                        "timed out after {timeout:?} waiting for systemd job {job}"
                    )),
                    e => e,
                })?,
            };
            if m.kind == kind::SIGNAL
                && m.member.as_deref() == Some("JobRemoved")
                && m.str_arg(1) == Some(job)
            {
                return Ok(m.str_arg(3).unwrap_or_default().to_string());
            }
        }
    }

    fn job_of(m: &Message, method: &str) -> Result<String> {
        m.str_arg(0)
            .map(str::to_string)
            .ok_or_else(|| err(format!("{method} returned no job")))
    }

    fn run_job(&mut self, method: &str, unit: &str, m: &Message) -> Result<()> {
        let job = Self::job_of(m, method)?;
        match self.wait_job(&job, JOB_TIMEOUT)?.as_str() {
            "done" => Ok(()),
            r => Err(err(format!(
                "{method} {unit}: job {job} ended with result {r:?}"
            ))),
        }
    }

    /// StartTransientUnit(name, "replace", properties, no aux units), and
    /// its job's end.
    pub fn start_transient_unit(&mut self, unit: &str, props: &[Property]) -> Result<()> {
        let mut w = Writer::default();
        w.str(unit);
        w.str("replace");
        w.properties(props);
        w.array(8, |_| {});
        let m = self.manager_call("StartTransientUnit", "ssa(sv)a(sa(sv))", w)?;
        self.run_job("StartTransientUnit", unit, &m)
    }

    /// StopUnit(name, "replace") and its job's end.
    pub fn stop_unit(&mut self, unit: &str) -> Result<()> {
        let mut w = Writer::default();
        w.str(unit);
        w.str("replace");
        let m = self.manager_call("StopUnit", "ss", w)?;
        self.run_job("StopUnit", unit, &m)
    }

    /// ResetFailedUnit(name).
    pub fn reset_failed_unit(&mut self, unit: &str) -> Result<()> {
        let mut w = Writer::default();
        w.str(unit);
        self.manager_call("ResetFailedUnit", "s", w).map(drop)
    }

    /// SetUnitProperties(name, runtime = true, properties).
    pub fn set_unit_properties(&mut self, unit: &str, props: &[Property]) -> Result<()> {
        let mut w = Writer::default();
        w.str(unit);
        w.bool(true);
        w.properties(props);
        self.manager_call("SetUnitProperties", "sba(sv)", w)
            .map(drop)
    }

    /// A string property of the manager (e.g. `ControlGroup`).
    pub fn manager_property(&mut self, name: &str) -> Result<String> {
        let mut w = Writer::default();
        w.str(MANAGER);
        w.str(name);
        let m = self.call(&Call {
            destination: SYSTEMD,
            path: SYSTEMD_PATH,
            interface: "org.freedesktop.DBus.Properties",
            member: "Get",
            signature: "ss",
            body: w.buf,
        })?;
        m.str_arg(0)
            .map(str::to_string)
            .ok_or_else(|| err(format!("the manager's {name} is not a string")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            address_path("unix:path=/run/dbus/system_bus_socket"),
            Some(PathBuf::from("/run/dbus/system_bus_socket"))
        );
        assert_eq!(
            address_path("tcp:host=x;unix:guid=1,path=/tmp/b"),
            Some(PathBuf::from("/tmp/b"))
        );
        assert_eq!(address_path("unix:abstract=/x"), None);
    }

    /// A fake bus on a socket pair: checks what the client sends and
    /// answers as the bus and systemd would.
    #[test]
    fn hello_and_a_job_against_a_fake_bus() {
        let (client, server) = UnixStream::pair().unwrap();
        let srv = std::thread::spawn(move || fake_bus(server));
        let mut bus = Bus {
            sock: client,
            socket: PathBuf::from("pair"),
            serial: 0,
            signals: VecDeque::new(),
        };
        bus.auth().unwrap();
        bus.call(&Call {
            destination: "org.freedesktop.DBus",
            path: "/org/freedesktop/DBus",
            interface: "org.freedesktop.DBus",
            member: "Hello",
            signature: "",
            body: Vec::new(),
        })
        .unwrap();
        bus.start_transient_unit("rr-x.scope", &[]).unwrap();
        let e = bus.stop_unit("rr-x.scope").unwrap_err().to_string();
        assert!(e.contains("NoSuchUnit") && e.contains("StopUnit"), "{e}");
        srv.join().unwrap();
    }

    fn read_call(s: &mut UnixStream) -> Message {
        let mut head = [0u8; 16];
        s.read_exact(&mut head).unwrap();
        let mut buf = head.to_vec();
        buf.resize(wire::message_len(&head).unwrap(), 0);
        s.read_exact(&mut buf[16..]).unwrap();
        let m = wire::decode(&buf).unwrap();
        assert_eq!(m.kind, kind::CALL);
        m
    }

    fn send(
        s: &mut UnixStream,
        k: u8,
        reply: Option<u32>,
        fields: &[(u8, &str, &str)],
        body: Writer,
        sig: &str,
    ) {
        let mut w = Writer::default();
        w.buf.extend_from_slice(&[b'l', k, 1, 1]);
        w.u32(body.buf.len() as u32);
        w.u32(1000);
        w.array(8, |w| {
            if let Some(r) = reply {
                w.align(8);
                w.byte(5);
                w.sig("u");
                w.u32(r);
            }
            for (code, t, v) in fields {
                w.align(8);
                w.byte(*code);
                w.sig(t);
                w.str(v);
            }
            if !sig.is_empty() {
                w.align(8);
                w.byte(8);
                w.sig("g");
                w.sig(sig);
            }
        });
        w.align(8);
        w.buf.extend_from_slice(&body.buf);
        s.write_all(&w.buf).unwrap();
    }

    fn fake_bus(mut s: UnixStream) {
        let mut got = Vec::new();
        let mut b = [0u8; 1];
        while !got.ends_with(b"\r\n") {
            s.read_exact(&mut b).unwrap();
            got.push(b[0]);
        }
        let uid = unsafe { libc::geteuid() }.to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, format!("\0AUTH EXTERNAL {hex}\r\n").into_bytes());
        s.write_all(b"OK 0123456789abcdef\r\n").unwrap();
        let mut begin = [0u8; 7];
        s.read_exact(&mut begin).unwrap();
        assert_eq!(&begin, b"BEGIN\r\n");
        // Hello: serial 1.
        let m = read_call(&mut s);
        assert_eq!(m.member.as_deref(), Some("Hello"));
        let mut w = Writer::default();
        w.str(":1.5");
        send(&mut s, kind::RETURN, Some(1), &[], w, "s");
        // StartTransientUnit: the signal comes before the reply, as it may.
        let m = read_call(&mut s);
        assert_eq!(m.member.as_deref(), Some("StartTransientUnit"));
        assert_eq!(m.str_arg(0), Some("rr-x.scope"));
        assert_eq!(m.str_arg(1), Some("replace"));
        let mut w = Writer::default();
        w.u32(7);
        w.str("/org/freedesktop/systemd1/job/7");
        w.str("rr-x.scope");
        w.str("done");
        send(
            &mut s,
            kind::SIGNAL,
            None,
            &[(2, "s", MANAGER), (3, "s", "JobRemoved")],
            w,
            "uoss",
        );
        let mut w = Writer::default();
        w.str("/org/freedesktop/systemd1/job/7");
        send(&mut s, kind::RETURN, Some(2), &[], w, "o");
        // StopUnit: an error.
        let m = read_call(&mut s);
        assert_eq!(m.member.as_deref(), Some("StopUnit"));
        let mut w = Writer::default();
        w.str("Unit rr-x.scope not loaded.");
        send(
            &mut s,
            kind::ERROR,
            Some(3),
            &[(4, "s", "org.freedesktop.systemd1.NoSuchUnit")],
            w,
            "s",
        );
    }
}
