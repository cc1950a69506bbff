//! The D-Bus wire format (little endian) for the few messages the systemd
//! driver sends and receives: method calls with basic, array, struct and
//! variant arguments, and replies, errors and signals of basic types.

use super::props::Value;

/// Message types.
pub mod kind {
    /// A method call.
    pub const CALL: u8 = 1;
    /// A method's return.
    pub const RETURN: u8 = 2;
    /// An error reply.
    pub const ERROR: u8 = 3;
    /// A signal.
    pub const SIGNAL: u8 = 4;
}

/// A body being marshalled, aligned from the start of the message (the
/// header ends 8-aligned, so body offsets align the same way).
#[derive(Debug, Default, Clone)]
pub struct Writer {
    /// The bytes so far.
    pub buf: Vec<u8>,
}

impl Writer {
    /// Pads with zeros to a multiple of `n`.
    pub fn align(&mut self, n: usize) {
        while self.buf.len() % n != 0 {
            self.buf.push(0);
        }
    }
    /// `y`
    pub fn byte(&mut self, b: u8) {
        self.buf.push(b);
    }
    /// `u`
    pub fn u32(&mut self, v: u32) {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// `t`
    pub fn u64(&mut self, v: u64) {
        self.align(8);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// `b`
    pub fn bool(&mut self, v: bool) {
        self.u32(u32::from(v));
    }
    /// `s` and `o`
    pub fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }
    /// `g`
    pub fn sig(&mut self, s: &str) {
        self.buf.push(s.len() as u8);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }
    /// An array whose elements align to `elem_align`; `f` writes them.
    pub fn array(&mut self, elem_align: usize, f: impl FnOnce(&mut Writer)) {
        self.align(4);
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        // The padding before the first element is not part of the length.
        self.align(elem_align);
        let start = self.buf.len();
        f(self);
        let len = (self.buf.len() - start) as u32;
        self.buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }
    /// A value of a unit property, bare (the variant's signature is
    /// written by [`Writer::variant`]).
    pub fn value(&mut self, v: &Value) {
        match v {
            Value::Bool(b) => self.bool(*b),
            Value::U64(n) => self.u64(*n),
            Value::Str(s) => self.str(s),
            Value::U32s(l) => self.array(4, |w| l.iter().for_each(|n| w.u32(*n))),
            Value::Bytes(b) => self.array(1, |w| w.buf.extend_from_slice(b)),
            Value::Pairs(l) => self.array(8, |w| {
                for (a, b) in l {
                    w.align(8);
                    w.str(a);
                    w.str(b);
                }
            }),
        }
    }
    /// `v`
    pub fn variant(&mut self, v: &Value) {
        self.sig(v.signature());
        self.value(v);
    }
    /// `a(sv)`: unit properties.
    pub fn properties(&mut self, props: &[(String, Value)]) {
        self.array(8, |w| {
            for (name, v) in props {
                w.align(8);
                w.str(name);
                w.variant(v);
            }
        });
    }
}

/// A method call to marshal.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    /// Destination bus name.
    pub destination: &'a str,
    /// Object path.
    pub path: &'a str,
    /// Interface.
    pub interface: &'a str,
    /// Method.
    pub member: &'a str,
    /// Signature of the body ("" for none).
    pub signature: &'a str,
    /// The marshalled body (written with a fresh [`Writer`]).
    pub body: Vec<u8>,
}

fn header_field(w: &mut Writer, code: u8, sig: &str, f: impl FnOnce(&mut Writer)) {
    w.align(8);
    w.byte(code);
    w.sig(sig);
    f(w);
}

/// The bytes of a method call with serial `serial`.
pub fn encode_call(c: &Call<'_>, serial: u32) -> Vec<u8> {
    let mut w = Writer::default();
    w.buf.extend_from_slice(&[b'l', kind::CALL, 0, 1]);
    w.u32(c.body.len() as u32);
    w.u32(serial);
    w.array(8, |w| {
        header_field(w, 1, "o", |w| w.str(c.path));
        header_field(w, 2, "s", |w| w.str(c.interface));
        header_field(w, 3, "s", |w| w.str(c.member));
        header_field(w, 6, "s", |w| w.str(c.destination));
        if !c.signature.is_empty() {
            header_field(w, 8, "g", |w| w.sig(c.signature));
        }
    });
    w.align(8);
    w.buf.extend_from_slice(&c.body);
    w.buf
}

/// A basic value read from a received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Basic {
    /// `s`, `o` or `g`.
    Str(String),
    /// `y`, `b`, `u`, `i`, `t`, `x` (widened).
    Num(u64),
    /// A type this reader does not decode; reading stops there.
    Other,
}

/// A received message, with what the driver needs of its header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// [`kind`] of the message.
    pub kind: u8,
    /// Serial of the call this replies to.
    pub reply_serial: Option<u32>,
    /// Interface (signals).
    pub interface: Option<String>,
    /// Member (signals).
    pub member: Option<String>,
    /// Error name (errors).
    pub error_name: Option<String>,
    /// The body's leading basic values (and variants of one), in order.
    pub body: Vec<Basic>,
}

impl Message {
    /// The `n`th body value as a string.
    pub fn str_arg(&self, n: usize) -> Option<&str> {
        match self.body.get(n) {
            Some(Basic::Str(s)) => Some(s),
            _ => None,
        }
    }
}

/// Reads values out of a received message; offsets count from its start.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn align(&mut self, n: usize) {
        self.pos = self.pos.div_ceil(n) * n;
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    fn u32(&mut self) -> Option<u32> {
        self.align(4);
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        self.align(8);
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn str(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        let s = self.take(n)?;
        self.take(1)?;
        Some(String::from_utf8_lossy(s).into_owned())
    }
    fn sig(&mut self) -> Option<String> {
        let n = *self.take(1)?.first()? as usize;
        let s = self.take(n)?;
        self.take(1)?;
        Some(String::from_utf8_lossy(s).into_owned())
    }
    fn basic(&mut self, t: u8) -> Option<Basic> {
        Some(match t {
            b's' | b'o' => Basic::Str(self.str()?),
            b'g' => Basic::Str(self.sig()?),
            b'y' => Basic::Num(u64::from(*self.take(1)?.first()?)),
            b'b' | b'u' | b'i' => Basic::Num(u64::from(self.u32()?)),
            b't' | b'x' => Basic::Num(self.u64()?),
            b'v' => {
                let s = self.sig()?;
                match s.as_bytes() {
                    [one] => self.basic(*one)?,
                    _ => Basic::Other,
                }
            }
            _ => Basic::Other,
        })
    }
}

/// The total size of the message whose first 16 bytes are `head`, or
/// `None` if they are not a little-endian D-Bus header.
pub fn message_len(head: &[u8; 16]) -> Option<usize> {
    if head[0] != b'l' || head[3] != 1 {
        return None;
    }
    let word = |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    let body = word(4) as usize;
    let fields = word(12) as usize;
    let header = (16 + fields).div_ceil(8) * 8;
    header.checked_add(body).filter(|n| *n <= 1 << 27)
}

/// Decode one whole message (as sized by [`message_len`]).
pub fn decode(buf: &[u8]) -> Option<Message> {
    let mut r = Reader { buf, pos: 12 };
    let mut m = Message {
        kind: *buf.get(1)?,
        ..Default::default()
    };
    let fields_len = r.u32()? as usize;
    let fields_end = r.pos + fields_len;
    let mut signature = String::new();
    while r.pos < fields_end {
        r.align(8);
        let code = *r.take(1)?.first()?;
        let sig = r.sig()?;
        let v = match sig.as_bytes() {
            [t] => r.basic(*t)?,
            _ => return None,
        };
        match (code, v) {
            (2, Basic::Str(s)) => m.interface = Some(s),
            (3, Basic::Str(s)) => m.member = Some(s),
            (4, Basic::Str(s)) => m.error_name = Some(s),
            (5, Basic::Num(n)) => m.reply_serial = u32::try_from(n).ok(),
            (8, Basic::Str(s)) => signature = s,
            _ => {}
        }
    }
    r.align(8);
    for t in signature.bytes() {
        match r.basic(t)? {
            Basic::Other => break,
            v => m.body.push(v),
        }
    }
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// Hello, laid out by hand from the specification: the fixed header,
    /// then each field 8-aligned as (code, signature, value).
    #[test]
    fn hello_golden_bytes() {
        let c = Call {
            destination: "org.freedesktop.DBus",
            path: "/org/freedesktop/DBus",
            interface: "org.freedesktop.DBus",
            member: "Hello",
            signature: "",
            body: Vec::new(),
        };
        let got = encode_call(&c, 1);
        let mut want: Vec<u8> = vec![b'l', 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0];
        // fields array length: 0x6d = 109 bytes (computed below), then fields.
        let mut fields = Vec::new();
        let field = |f: &mut Vec<u8>, code: u8, sig: u8, s: &str| {
            while (16 + f.len()) % 8 != 0 {
                f.push(0);
            }
            f.extend_from_slice(&[code, 1, sig, 0]);
            f.extend_from_slice(&(s.len() as u32).to_le_bytes());
            f.extend_from_slice(s.as_bytes());
            f.push(0);
        };
        field(&mut fields, 1, b'o', "/org/freedesktop/DBus");
        field(&mut fields, 2, b's', "org.freedesktop.DBus");
        field(&mut fields, 3, b's', "Hello");
        field(&mut fields, 6, b's', "org.freedesktop.DBus");
        assert_eq!(fields.len(), 109);
        want.extend_from_slice(&(fields.len() as u32).to_le_bytes());
        want.extend_from_slice(&fields);
        while want.len() % 8 != 0 {
            want.push(0);
        }
        assert_eq!(hex(&got), hex(&want));
        assert_eq!(got.len(), 128);
        let head: [u8; 16] = got[..16].try_into().unwrap();
        assert_eq!(message_len(&head), Some(128));
    }

    #[test]
    fn property_array_golden_bytes() {
        let mut w = Writer::default();
        w.properties(&[
            ("Delegate".into(), Value::Bool(true)),
            ("PIDs".into(), Value::U32s(vec![7])),
            ("TasksMax".into(), Value::U64(64)),
        ]);
        let want = concat!(
            "48000000",
            "00000000", // length 72, pad to 8
            "08000000",
            "44656c656761746500",
            "016200",
            "01000000", // Delegate: v(b true)
            "00000000", // pad to 8
            "04000000",
            "5049447300",
            "02617500",
            "000000",
            "04000000",
            "07000000", // PIDs: v(au [7])
            "08000000",
            "5461736b734d617800",
            "017400",
            "4000000000000000", // TasksMax: v(t 64)
        );
        assert_eq!(hex(&w.buf), want);
    }

    #[test]
    fn pairs_and_bytes() {
        let mut w = Writer::default();
        w.value(&Value::Pairs(vec![("a".into(), "rw".into())]));
        // length 15, pad to 8, "a", pad to 4, "rw"
        assert_eq!(
            hex(&w.buf),
            "0f000000000000000100000061000000020000007277".to_string() + "00"
        );
        let mut w = Writer::default();
        w.value(&Value::Bytes(vec![3, 1]));
        assert_eq!(hex(&w.buf), "020000000301");
    }

    #[test]
    fn decodes_a_signal() {
        // JobRemoved(u 9, o "/j/9", s "rr-x.scope", s "done") as a sender would write it.
        let mut body = Writer::default();
        body.u32(9);
        body.str("/j/9");
        body.str("rr-x.scope");
        body.str("done");
        let mut w = Writer::default();
        w.buf.extend_from_slice(&[b'l', kind::SIGNAL, 1, 1]);
        w.u32(body.buf.len() as u32);
        w.u32(77);
        w.array(8, |w| {
            header_field(w, 2, "s", |w| w.str("org.freedesktop.systemd1.Manager"));
            header_field(w, 3, "s", |w| w.str("JobRemoved"));
            header_field(w, 8, "g", |w| w.sig("uoss"));
        });
        w.align(8);
        w.buf.extend_from_slice(&body.buf);
        let head: [u8; 16] = w.buf[..16].try_into().unwrap();
        assert_eq!(message_len(&head), Some(w.buf.len()));
        let m = decode(&w.buf).unwrap();
        assert_eq!(m.kind, kind::SIGNAL);
        assert_eq!(m.member.as_deref(), Some("JobRemoved"));
        assert_eq!(m.body[0], Basic::Num(9));
        assert_eq!(m.str_arg(1), Some("/j/9"));
        assert_eq!(m.str_arg(2), Some("rr-x.scope"));
        assert_eq!(m.str_arg(3), Some("done"));
    }

    #[test]
    fn decodes_an_error_and_rejects_garbage() {
        let mut body = Writer::default();
        body.str("Unit rr-x.scope already exists.");
        let mut w = Writer::default();
        w.buf.extend_from_slice(&[b'l', kind::ERROR, 1, 1]);
        w.u32(body.buf.len() as u32);
        w.u32(5);
        w.array(8, |w| {
            header_field(w, 4, "s", |w| w.str("org.freedesktop.systemd1.UnitExists"));
            header_field(w, 5, "u", |w| w.u32(3));
            header_field(w, 8, "g", |w| w.sig("s"));
        });
        w.align(8);
        w.buf.extend_from_slice(&body.buf);
        let m = decode(&w.buf).unwrap();
        assert_eq!(m.kind, kind::ERROR);
        assert_eq!(m.reply_serial, Some(3));
        assert_eq!(
            m.error_name.as_deref(),
            Some("org.freedesktop.systemd1.UnitExists")
        );
        assert_eq!(m.str_arg(0), Some("Unit rr-x.scope already exists."));
        assert!(decode(&w.buf[..30]).is_none());
        assert_eq!(message_len(&[b'B'; 16]), None);
    }
}
