//! Attribute type numbers of the bootstrap message.
//!
//! The numbers are fixed by runc's wire format: a runtime and the process
//! that consumes the message must agree on them exactly.

use std::fmt;

/// Namespaces to create, as `CLONE_NEW*` flags (u32).
pub const CLONE_FLAGS: u16 = 27281;
/// Namespaces to join, as comma-joined `kind:path` (bytes).
pub const NS_PATHS: u16 = 27282;
/// Uid mappings, one `"<container> <host> <size>\n"` line each (bytes).
pub const UID_MAP: u16 = 27283;
/// Gid mappings, one `"<container> <host> <size>\n"` line each (bytes).
pub const GID_MAP: u16 = 27284;
/// Whether `setgroups(2)` stays allowed in a new user namespace (bool).
pub const SET_GROUP: u16 = 27285;
/// The `oom_score_adj` value as a decimal string (bytes).
pub const OOM_SCORE_ADJ: u16 = 27286;
/// Whether the runtime runs with a non-root effective uid (bool).
pub const ROOTLESS_EUID: u16 = 27287;
/// Path of the `newuidmap` helper (bytes).
pub const UID_MAP_PATH: u16 = 27288;
/// Path of the `newgidmap` helper (bytes).
pub const GID_MAP_PATH: u16 = 27289;
/// Time namespace offsets, one `"<clock> <secs> <nanosecs>\n"` line each
/// (bytes). runc 1.1 used this number for its mount sources attribute.
pub const TIME_OFFSETS: u16 = 27290;

/// Every attribute type this crate knows, in the order runc emits them.
pub const ALL: [u16; 10] = [
    CLONE_FLAGS,
    NS_PATHS,
    UID_MAP_PATH,
    UID_MAP,
    GID_MAP,
    GID_MAP_PATH,
    SET_GROUP,
    OOM_SCORE_ADJ,
    ROOTLESS_EUID,
    TIME_OFFSETS,
];

/// The runc name of an attribute type, or `None` for an unknown number.
pub fn name(attr_type: u16) -> Option<&'static str> {
    Some(match attr_type {
        CLONE_FLAGS => "CloneFlagsAttr",
        NS_PATHS => "NsPathsAttr",
        UID_MAP => "UidmapAttr",
        GID_MAP => "GidmapAttr",
        SET_GROUP => "SetgroupAttr",
        OOM_SCORE_ADJ => "OomScoreAdjAttr",
        ROOTLESS_EUID => "RootlessEUIDAttr",
        UID_MAP_PATH => "UidmapPathAttr",
        GID_MAP_PATH => "GidmapPathAttr",
        TIME_OFFSETS => "TimeOffsetsAttr",
        _ => return None,
    })
}

/// An attribute type number that prints as its name and number, so error
/// messages say both (`NsPathsAttr (27282)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttrType(pub u16);

impl fmt::Display for AttrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match name(self.0) {
            Some(n) => write!(f, "{n} ({})", self.0),
            None => write!(f, "unknown attribute ({})", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_known() {
        let mut names: Vec<_> = ALL.iter().map(|&t| name(t)).collect();
        assert!(names.iter().all(Option::is_some));
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        assert_eq!(name(27280), None);
        assert_eq!(name(27291), None);
    }

    #[test]
    fn types_are_contiguous() {
        // The decoder's duplicate table indexes by `type - CLONE_FLAGS`.
        let mut sorted = ALL;
        sorted.sort();
        assert_eq!(
            sorted.to_vec(),
            (CLONE_FLAGS..=TIME_OFFSETS).collect::<Vec<_>>()
        );
    }

    #[test]
    fn display_names_and_number() {
        assert_eq!(AttrType(NS_PATHS).to_string(), "NsPathsAttr (27282)");
        assert_eq!(AttrType(1).to_string(), "unknown attribute (1)");
    }
}
