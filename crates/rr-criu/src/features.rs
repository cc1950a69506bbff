//! Optional CRIU features a runtime asks about before using them.

use crate::rpc;

/// Which optional features CRIU and the kernel support, from FEATURE_CHECK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Features {
    /// Memory change tracking (soft-dirty), needed by pre-dump and `track_mem`.
    pub mem_track: bool,
    /// Lazy (post-copy) restore through userfaultfd.
    pub lazy_pages: bool,
    /// Keeping pidfds of dumped tasks across pre-dumps (`pidfd_store`).
    pub pidfd_store: bool,
}

impl Features {
    /// The FEATURE_CHECK request body that asks about every feature above.
    pub(crate) fn query() -> rpc::CriuFeatures {
        rpc::CriuFeatures {
            mem_track: Some(true),
            lazy_pages: Some(true),
            pidfd_store: Some(true),
        }
    }

    /// Reads the reply; a feature CRIU does not mention is unsupported (an
    /// older CRIU does not know `pidfd_store` and leaves it out).
    pub fn from_rpc(f: &rpc::CriuFeatures) -> Self {
        Self {
            mem_track: f.mem_track.unwrap_or(false),
            lazy_pages: f.lazy_pages.unwrap_or(false),
            pidfd_store: f.pidfd_store.unwrap_or(false),
        }
    }
}
