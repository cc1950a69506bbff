//! The bootstrap message: a netlink-style header followed by flat
//! attributes, encoded exactly as runc encodes it.

use crate::attr::{self, AttrType};
use crate::error::{Error, Malformed};
use crate::idmap::{self, encode_id_map, IdMapping};
use crate::namespace::{self, encode_ns_paths, NsPath};
use crate::timens::{self, encode_time_offsets, TimeOffset};

/// The netlink message type of the bootstrap message (runc's `InitMsg`).
pub const INIT_MSG_TYPE: u16 = 62000;

/// Size of the message header.
pub const HEADER_LEN: usize = 16;

/// `NLM_F_REQUEST`, the only header flag runc sets.
pub const NLM_F_REQUEST: u16 = 1;

const NLA_HDRLEN: usize = 4;

/// The 16-byte header in front of the attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Length of the whole message, header included.
    pub len: u32,
    /// Message type, [`INIT_MSG_TYPE`].
    pub msg_type: u16,
    /// Flags, [`NLM_F_REQUEST`] from runc (not checked when decoding).
    pub flags: u16,
    /// Sequence number.
    pub seq: u32,
    /// Port id, 0 from runc (not checked when decoding).
    pub pid: u32,
}

impl Header {
    /// Reads and checks a header from the start of `buf`: enough bytes, the
    /// right type and a length that covers at least the header. It does not
    /// require the rest of the message to be present, so a reader can use
    /// [`len`](Self::len) to learn how many more bytes to read.
    pub fn parse(buf: &[u8]) -> Result<Header, Error> {
        let truncated = || Error::TruncatedHeader {
            available: buf.len(),
        };
        let header = Header {
            len: read_u32(buf, 0).ok_or_else(truncated)?,
            msg_type: read_u16(buf, 4).ok_or_else(truncated)?,
            flags: read_u16(buf, 6).ok_or_else(truncated)?,
            seq: read_u32(buf, 8).ok_or_else(truncated)?,
            pid: read_u32(buf, 12).ok_or_else(truncated)?,
        };
        if header.msg_type != INIT_MSG_TYPE {
            return Err(Error::WrongMessageType {
                found: header.msg_type,
            });
        }
        if (header.len as usize) < HEADER_LEN {
            return Err(Error::LengthTooSmall {
                declared: header.len,
            });
        }
        Ok(header)
    }
}

/// The settings a runtime hands to the process that builds a container's
/// namespaces.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BootstrapMessage {
    /// `CLONE_NEW*` flags of the namespaces to create (those without a path).
    pub clone_flags: u32,
    /// Namespaces to join; encoded sorted in wire order (user, ipc, uts,
    /// net, pid, mnt, cgroup, time); decoded in the order received.
    pub ns_paths: Vec<NsPath>,
    /// Uid mappings for a new user namespace (attribute omitted when empty).
    pub uid_map: Vec<IdMapping>,
    /// Gid mappings for a new user namespace (attribute omitted when empty).
    pub gid_map: Vec<IdMapping>,
    /// Path of the `newuidmap` helper.
    pub uid_map_path: Option<String>,
    /// Path of the `newgidmap` helper.
    pub gid_map_path: Option<String>,
    /// Whether setgroups stays allowed; `None` omits the attribute.
    pub set_groups: Option<bool>,
    /// `oom_score_adj` to set; sent as a decimal string.
    pub oom_score_adj: Option<i32>,
    /// Whether the runtime runs with a non-root effective uid (always sent).
    pub rootless_euid: bool,
    /// Time namespace offsets (attribute omitted when empty).
    pub time_offsets: Vec<TimeOffset>,
}

impl BootstrapMessage {
    /// The wire form, byte-identical to runc's, with sequence number `seq`.
    ///
    /// Attributes come in runc's order: CloneFlags, NsPaths, UidmapPath,
    /// Uidmap, Gidmap, GidmapPath, Setgroup, OomScoreAdj, RootlessEUID,
    /// TimeOffsets; optional ones only when set or non-empty.
    ///
    /// Fails when a value would make `nla_len` exceed 65535, when a bytes
    /// value contains a NUL, when a namespace path is empty, contains a
    /// comma or repeats a kind, or when a time offset has nanoseconds of a
    /// second or more.
    pub fn encode(&self, seq: u32) -> Result<Vec<u8>, Error> {
        let mut w = Writer::new(seq);
        w.u32(attr::CLONE_FLAGS, self.clone_flags);
        if !self.ns_paths.is_empty() {
            w.bytes(attr::NS_PATHS, encode_ns_paths(&self.ns_paths)?.as_bytes())?;
        }
        if let Some(path) = &self.uid_map_path {
            w.bytes(attr::UID_MAP_PATH, path.as_bytes())?;
        }
        if !self.uid_map.is_empty() {
            w.bytes(attr::UID_MAP, encode_id_map(&self.uid_map).as_bytes())?;
        }
        if !self.gid_map.is_empty() {
            w.bytes(attr::GID_MAP, encode_id_map(&self.gid_map).as_bytes())?;
        }
        if let Some(path) = &self.gid_map_path {
            w.bytes(attr::GID_MAP_PATH, path.as_bytes())?;
        }
        if let Some(allowed) = self.set_groups {
            w.bool(attr::SET_GROUP, allowed);
        }
        if let Some(score) = self.oom_score_adj {
            w.bytes(attr::OOM_SCORE_ADJ, score.to_string().as_bytes())?;
        }
        w.bool(attr::ROOTLESS_EUID, self.rootless_euid);
        if !self.time_offsets.is_empty() {
            let text = encode_time_offsets(&self.time_offsets)?;
            w.bytes(attr::TIME_OFFSETS, text.as_bytes())?;
        }
        Ok(w.finish())
    }

    /// Reads a message from the start of `buf`. Bytes after the header's
    /// length are ignored. Never panics; every malformed input is a typed
    /// [`Error`].
    ///
    /// Attributes may come in any order but each at most once; missing ones
    /// take their defaults (no flags, no paths, not rootless). A bool in the
    /// 2017 five-byte form (`nla_len` 5, no padding) is accepted and the
    /// next attribute is read right after its single byte.
    pub fn decode(buf: &[u8]) -> Result<BootstrapMessage, Error> {
        Self::decode_with_header(buf).map(|(_, msg)| msg)
    }

    /// Like [`decode`](Self::decode), also returning the header (for the
    /// sequence number).
    pub fn decode_with_header(buf: &[u8]) -> Result<(Header, BootstrapMessage), Error> {
        let header = Header::parse(buf)?;
        let msg = buf
            .get(..header.len as usize)
            .ok_or(Error::LengthExceedsBuffer {
                declared: header.len,
                available: buf.len(),
            })?;
        let mut out = BootstrapMessage::default();
        let mut seen = Seen::default();
        let mut offset = HEADER_LEN;
        while offset < msg.len() {
            let rest = msg.get(offset..).unwrap_or_default();
            let (Some(nla_len), Some(nla_type)) = (read_u16(rest, 0), read_u16(rest, 2)) else {
                // Up to 3 zero bytes are tolerated as alignment padding.
                if rest.iter().all(|&b| b == 0) {
                    break;
                }
                return Err(Error::TruncatedAttrHeader {
                    offset,
                    remaining: rest.len(),
                });
            };
            let at = AttrType(nla_type);
            let len = usize::from(nla_len);
            if len < NLA_HDRLEN {
                return Err(Error::AttrLengthTooSmall {
                    attr: at,
                    offset,
                    nla_len,
                });
            }
            let Some(payload) = rest.get(NLA_HDRLEN..len) else {
                return Err(Error::AttrPastEnd {
                    attr: at,
                    offset,
                    nla_len,
                    msg_len: msg.len(),
                });
            };
            if attr::name(nla_type).is_none() {
                return Err(Error::UnknownAttr { attr: at, offset });
            }
            seen.check(nla_type, offset)?;
            let malformed = |problem| Error::MalformedAttr {
                attr: at,
                offset,
                problem,
            };
            out.set(nla_type, payload).map_err(malformed)?;
            let legacy_bool = is_bool(nla_type) && len == NLA_HDRLEN + 1;
            offset += if legacy_bool { len } else { align4(len) };
        }
        Ok((header, out))
    }

    /// Stores one attribute's payload in the matching field.
    fn set(&mut self, nla_type: u16, payload: &[u8]) -> Result<(), Malformed> {
        match nla_type {
            attr::CLONE_FLAGS => self.clone_flags = payload_u32(payload)?,
            attr::SET_GROUP => self.set_groups = Some(payload_bool(payload)?),
            attr::ROOTLESS_EUID => self.rootless_euid = payload_bool(payload)?,
            attr::NS_PATHS => self.ns_paths = namespace::parse_ns_paths(payload_str(payload)?)?,
            attr::UID_MAP => self.uid_map = payload_id_map(payload)?,
            attr::GID_MAP => self.gid_map = payload_id_map(payload)?,
            attr::UID_MAP_PATH => self.uid_map_path = Some(payload_str(payload)?.to_owned()),
            attr::GID_MAP_PATH => self.gid_map_path = Some(payload_str(payload)?.to_owned()),
            attr::OOM_SCORE_ADJ => {
                let text = payload_str(payload)?;
                // Only the forms Go's strconv.Itoa writes: no sign but '-'.
                let parsed = match text.strip_prefix('+') {
                    Some(_) => None,
                    None => text.parse::<i32>().ok(),
                };
                self.oom_score_adj = Some(parsed.ok_or_else(|| Malformed::OomScore {
                    text: text.to_owned(),
                })?);
            }
            attr::TIME_OFFSETS => {
                self.time_offsets = timens::parse_lines(payload_str(payload)?)
                    .map_err(|(line, text)| Malformed::TimeOffset { line, text })?;
            }
            // The caller has rejected unknown types already.
            _ => {}
        }
        Ok(())
    }
}

/// First offset of each attribute type, to reject repeats.
#[derive(Default)]
struct Seen([Option<usize>; attr::ALL.len()]);

impl Seen {
    fn check(&mut self, nla_type: u16, offset: usize) -> Result<(), Error> {
        // The known types are the contiguous range 27281..=27290.
        let slot = usize::from(nla_type.wrapping_sub(attr::CLONE_FLAGS));
        if let Some(first) = self.0.get_mut(slot) {
            if let Some(first_offset) = *first {
                return Err(Error::DuplicateAttr {
                    attr: AttrType(nla_type),
                    offset,
                    first_offset,
                });
            }
            *first = Some(offset);
        }
        Ok(())
    }
}

fn is_bool(nla_type: u16) -> bool {
    matches!(nla_type, attr::SET_GROUP | attr::ROOTLESS_EUID)
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn read_u16(buf: &[u8], at: usize) -> Option<u16> {
    let bytes = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_ne_bytes(bytes.try_into().ok()?))
}

fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes(bytes.try_into().ok()?))
}

fn payload_u32(payload: &[u8]) -> Result<u32, Malformed> {
    match payload.try_into() {
        Ok(bytes) => Ok(u32::from_ne_bytes(bytes)),
        Err(_) => Err(Malformed::Size {
            expected: "8",
            found: nla_len_of(payload),
        }),
    }
}

fn payload_bool(payload: &[u8]) -> Result<bool, Malformed> {
    let value = match payload {
        [b] => u32::from(*b),
        _ => payload_u32(payload).map_err(|_| Malformed::Size {
            expected: "8 (or 5 in the 2017 form)",
            found: nla_len_of(payload),
        })?,
    };
    match value {
        0 => Ok(false),
        1 => Ok(true),
        value => Err(Malformed::Bool { value }),
    }
}

fn payload_str(payload: &[u8]) -> Result<&str, Malformed> {
    let Some((&0, value)) = payload.split_last() else {
        return Err(Malformed::MissingNul);
    };
    if let Some(index) = value.iter().position(|&b| b == 0) {
        return Err(Malformed::InteriorNul { index });
    }
    std::str::from_utf8(value).map_err(|e| Malformed::Utf8 {
        valid_up_to: e.valid_up_to(),
    })
}

fn payload_id_map(payload: &[u8]) -> Result<Vec<IdMapping>, Malformed> {
    idmap::parse_lines(payload_str(payload)?)
        .map_err(|(line, text)| Malformed::IdMap { line, text })
}

/// The `nla_len` a payload came from; payloads are sliced from a 16-bit
/// length so this never saturates in practice.
fn nla_len_of(payload: &[u8]) -> u16 {
    u16::try_from(payload.len() + NLA_HDRLEN).unwrap_or(u16::MAX)
}

/// Builds a message in place, header first, its length filled in last.
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn new(seq: u32) -> Writer {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&INIT_MSG_TYPE.to_ne_bytes());
        buf.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        Writer { buf }
    }

    fn header(&mut self, nla_len: u16, nla_type: u16) {
        self.buf.extend_from_slice(&nla_len.to_ne_bytes());
        self.buf.extend_from_slice(&nla_type.to_ne_bytes());
    }

    fn u32(&mut self, nla_type: u16, value: u32) {
        self.header(8, nla_type);
        self.buf.extend_from_slice(&value.to_ne_bytes());
    }

    fn bool(&mut self, nla_type: u16, value: bool) {
        self.u32(nla_type, u32::from(value));
    }

    fn bytes(&mut self, nla_type: u16, value: &[u8]) -> Result<(), Error> {
        let attr = AttrType(nla_type);
        if let Some(index) = value.iter().position(|&b| b == 0) {
            return Err(Error::NulInValue { attr, index });
        }
        let len = NLA_HDRLEN + value.len() + 1;
        // A length that does not fit would wrap, and the reader would take
        // the rest of the value for further attributes.
        let nla_len = u16::try_from(len).map_err(|_| Error::ValueTooLong {
            attr,
            len: value.len(),
        })?;
        self.header(nla_len, nla_type);
        self.buf.extend_from_slice(value);
        self.buf.push(0);
        self.buf.resize(self.buf.len() + (align4(len) - len), 0);
        Ok(())
    }

    fn finish(mut self) -> Vec<u8> {
        // At most ten attributes of at most 64 KiB each: the total fits.
        let len = u32::try_from(self.buf.len()).unwrap_or(u32::MAX);
        if let Some(field) = self.buf.get_mut(0..4) {
            field.copy_from_slice(&len.to_ne_bytes());
        }
        self.buf
    }
}
