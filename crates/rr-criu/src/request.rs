//! The kinds of request CRIU's RPC serves.

use std::fmt;

use crate::rpc::CriuReqType;

/// A request (or reply) type of CRIU's RPC protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequestType {
    /// `EMPTY`: CRIU answers an unknown request with this type and `success = false`.
    Empty,
    /// `DUMP`: checkpoint a process tree.
    Dump,
    /// `RESTORE`: restore a process tree from images.
    Restore,
    /// `CHECK`: check that the kernel supports what CRIU needs.
    Check,
    /// `PRE_DUMP`: dump memory only, to shorten a later dump.
    PreDump,
    /// `PAGE_SERVER`: start a page server.
    PageServer,
    /// `NOTIFY`: a notification from CRIU, or the answer to one.
    Notify,
    /// `FEATURE_CHECK`: ask which optional features work.
    FeatureCheck,
    /// `VERSION`: ask CRIU's version.
    Version,
    /// Any other value on the wire (kept so errors can name it).
    Other(i32),
}

impl RequestType {
    /// The number this type has on the wire.
    pub fn wire(self) -> i32 {
        let t = match self {
            Self::Empty => CriuReqType::Empty,
            Self::Dump => CriuReqType::Dump,
            Self::Restore => CriuReqType::Restore,
            Self::Check => CriuReqType::Check,
            Self::PreDump => CriuReqType::PreDump,
            Self::PageServer => CriuReqType::PageServer,
            Self::Notify => CriuReqType::Notify,
            Self::FeatureCheck => CriuReqType::FeatureCheck,
            Self::Version => CriuReqType::Version,
            Self::Other(n) => return n,
        };
        t as i32
    }

    /// The type for a number read from the wire.
    pub fn from_wire(n: i32) -> Self {
        match CriuReqType::try_from(n) {
            Ok(CriuReqType::Empty) => Self::Empty,
            Ok(CriuReqType::Dump) => Self::Dump,
            Ok(CriuReqType::Restore) => Self::Restore,
            Ok(CriuReqType::Check) => Self::Check,
            Ok(CriuReqType::PreDump) => Self::PreDump,
            Ok(CriuReqType::PageServer) => Self::PageServer,
            Ok(CriuReqType::Notify) => Self::Notify,
            Ok(CriuReqType::FeatureCheck) => Self::FeatureCheck,
            Ok(CriuReqType::Version) => Self::Version,
            _ => Self::Other(n),
        }
    }
}

impl fmt::Display for RequestType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Empty => "empty",
            Self::Dump => "dump",
            Self::Restore => "restore",
            Self::Check => "check",
            Self::PreDump => "pre-dump",
            Self::PageServer => "page-server",
            Self::Notify => "notify",
            Self::FeatureCheck => "feature-check",
            Self::Version => "version",
            Self::Other(n) => return write!(f, "request type {n}"),
        };
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_numbers_match_criu() {
        let expected = [
            (RequestType::Empty, 0),
            (RequestType::Dump, 1),
            (RequestType::Restore, 2),
            (RequestType::Check, 3),
            (RequestType::PreDump, 4),
            (RequestType::PageServer, 5),
            (RequestType::Notify, 6),
            (RequestType::FeatureCheck, 9),
            (RequestType::Version, 10),
        ];
        for (t, n) in expected {
            assert_eq!(t.wire(), n, "{t}");
            assert_eq!(RequestType::from_wire(n), t);
        }
        // Known to CRIU but not modelled: kept as a number.
        assert_eq!(RequestType::from_wire(13), RequestType::Other(13));
        assert_eq!(RequestType::Other(13).wire(), 13);
        assert_eq!(RequestType::from_wire(-5).to_string(), "request type -5");
    }
}
