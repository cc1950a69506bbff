//! The crate error type.

use crate::attr::AttrType;
use crate::namespace::NsKind;
use crate::timens::TimeClock;

/// Errors returned by this crate.
///
/// Decoder errors carry the byte offset (from the start of the buffer) of the
/// header field or attribute that is wrong, and attribute errors name the
/// attribute by name and number.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation on a named path failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory the operation was about.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The buffer is shorter than the 16-byte message header.
    #[error("bootstrap message: buffer of {available} bytes is shorter than the 16-byte header")]
    TruncatedHeader {
        /// Bytes available.
        available: usize,
    },

    /// The header's length field (byte 0) says more than the buffer holds.
    #[error(
        "bootstrap message: header length {declared} at byte 0 exceeds the {available}-byte buffer"
    )]
    LengthExceedsBuffer {
        /// The length in the header.
        declared: u32,
        /// Bytes available.
        available: usize,
    },

    /// The header's length field (byte 0) is smaller than the header itself.
    #[error(
        "bootstrap message: header length {declared} at byte 0 is smaller than the 16-byte header"
    )]
    LengthTooSmall {
        /// The length in the header.
        declared: u32,
    },

    /// The header's type field (byte 4) is not 62000.
    #[error(
        "bootstrap message: message type {found} at byte 4 is not {}",
        crate::INIT_MSG_TYPE
    )]
    WrongMessageType {
        /// The type in the header.
        found: u16,
    },

    /// Fewer than 4 bytes remain for an attribute header, and they are not
    /// zero padding.
    #[error("bootstrap message: {remaining} trailing bytes at byte {offset} are too short for an attribute header")]
    TruncatedAttrHeader {
        /// Offset of the partial attribute header.
        offset: usize,
        /// Bytes left in the message.
        remaining: usize,
    },

    /// An attribute's `nla_len` is smaller than its own 4-byte header.
    #[error("bootstrap message: {attr} at byte {offset} has nla_len {nla_len}, smaller than its 4-byte header")]
    AttrLengthTooSmall {
        /// The attribute type.
        attr: AttrType,
        /// Offset of the attribute header.
        offset: usize,
        /// The attribute length field.
        nla_len: u16,
    },

    /// An attribute's `nla_len` runs past the end of the message.
    #[error("bootstrap message: {attr} at byte {offset} has nla_len {nla_len}, running past the message end at byte {msg_len}")]
    AttrPastEnd {
        /// The attribute type.
        attr: AttrType,
        /// Offset of the attribute header.
        offset: usize,
        /// The attribute length field.
        nla_len: u16,
        /// The message length from the header.
        msg_len: usize,
    },

    /// An attribute type that is not one of the known numbers.
    #[error("bootstrap message: {attr} at byte {offset}")]
    UnknownAttr {
        /// The attribute type.
        attr: AttrType,
        /// Offset of the attribute header.
        offset: usize,
    },

    /// An attribute whose payload cannot be read as its kind.
    #[error("bootstrap message: {attr} at byte {offset}: {problem}")]
    MalformedAttr {
        /// The attribute type.
        attr: AttrType,
        /// Offset of the attribute header.
        offset: usize,
        /// What is wrong with the payload.
        problem: Malformed,
    },

    /// An attribute that appears a second time.
    #[error("bootstrap message: {attr} at byte {offset} repeats the one at byte {first_offset}")]
    DuplicateAttr {
        /// The attribute type.
        attr: AttrType,
        /// Offset of the repeated attribute.
        offset: usize,
        /// Offset of the first occurrence.
        first_offset: usize,
    },

    /// A bytes attribute too long for the 16-bit `nla_len` (the limit runc
    /// added for CVE-2021-43784, where a wrapped length let one attribute
    /// smuggle others).
    #[error("bootstrap message: {attr} value of {len} bytes makes nla_len exceed 65535")]
    ValueTooLong {
        /// The attribute type.
        attr: AttrType,
        /// Length of the value in bytes (without the NUL).
        len: usize,
    },

    /// A bytes attribute value containing a NUL byte, which the C side of
    /// the protocol would read as the end of the string.
    #[error("bootstrap message: {attr} value contains a NUL byte at index {index}")]
    NulInValue {
        /// The attribute type.
        attr: AttrType,
        /// Index of the first NUL in the value.
        index: usize,
    },

    /// A namespace path containing a comma, the separator of the paths list.
    #[error("{} namespace path {path:?} contains a comma", kind.name())]
    CommaInNsPath {
        /// The namespace kind.
        kind: NsKind,
        /// The offending path.
        path: String,
    },

    /// An empty namespace path.
    #[error("{} namespace path is empty", kind.name())]
    EmptyNsPath {
        /// The namespace kind.
        kind: NsKind,
    },

    /// A namespace path that is not valid UTF-8.
    #[error("{} namespace path {path:?} is not valid UTF-8", kind.name())]
    NonUtf8NsPath {
        /// The namespace kind.
        kind: NsKind,
        /// The offending path.
        path: std::path::PathBuf,
    },

    /// The same namespace kind listed twice.
    #[error("{} namespace is listed more than once", kind.name())]
    DuplicateNamespace {
        /// The namespace kind.
        kind: NsKind,
    },

    /// A time offset whose nanoseconds are not below one second.
    #[error("{} time offset nanoseconds {nanosecs} are not below 1000000000", clock.name())]
    TimeOffsetNanos {
        /// The clock.
        clock: TimeClock,
        /// The offending value.
        nanosecs: u32,
    },

    /// An id map line that is not `<container> <host> <size>`.
    #[error("id map line {line} {text:?} is not \"<container> <host> <size>\"")]
    InvalidIdMap {
        /// 1-based line number.
        line: usize,
        /// The line's text.
        text: String,
    },

    /// A time offsets line that is not `<clock> <secs> <nanosecs>`.
    #[error("time offsets line {line} {text:?} is not \"<monotonic|boottime> <secs> <nanosecs below 1e9>\"")]
    InvalidTimeOffset {
        /// 1-based line number.
        line: usize,
        /// The line's text.
        text: String,
    },
}

/// What is wrong with an attribute payload ([`Error::MalformedAttr`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Malformed {
    /// A fixed-size attribute with the wrong `nla_len`.
    #[error("nla_len {found}, expected {expected}")]
    Size {
        /// The expected `nla_len`.
        expected: &'static str,
        /// The `nla_len` found.
        found: u16,
    },
    /// A bool whose value is neither 0 nor 1.
    #[error("bool value {value} is neither 0 nor 1")]
    Bool {
        /// The value found.
        value: u32,
    },
    /// A bytes attribute whose payload does not end with a NUL.
    #[error("value is not NUL-terminated")]
    MissingNul,
    /// A bytes attribute with a NUL before its terminator.
    #[error("value has a NUL byte at payload index {index} before its terminator")]
    InteriorNul {
        /// Index of the NUL in the payload.
        index: usize,
    },
    /// A bytes attribute that is not UTF-8.
    #[error("value is not valid UTF-8 (error at payload index {valid_up_to})")]
    Utf8 {
        /// Length of the valid UTF-8 prefix.
        valid_up_to: usize,
    },
    /// A namespace paths entry that is not `kind:path` with a known kind,
    /// a non-empty path and a kind not seen before.
    #[error("namespace paths entry {entry:?}: {reason}")]
    NsPath {
        /// The entry's text.
        entry: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// An unparsable id map line.
    #[error("id map line {line} {text:?} is not \"<container> <host> <size>\"")]
    IdMap {
        /// 1-based line number.
        line: usize,
        /// The line's text.
        text: String,
    },
    /// An oom score that is not a decimal i32.
    #[error("oom score {text:?} is not a decimal integer")]
    OomScore {
        /// The value's text.
        text: String,
    },
    /// An unparsable time offsets line.
    #[error("time offsets line {line} {text:?} is not \"<monotonic|boottime> <secs> <nanosecs below 1e9>\"")]
    TimeOffset {
        /// 1-based line number.
        line: usize,
        /// The line's text.
        text: String,
    },
}
