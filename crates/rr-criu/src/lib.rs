//! A client for CRIU's RPC interface.
//!
//! Talks to `criu swrk` over a SEQPACKET socket: version and feature probing,
//! dump, pre-dump, restore and page server, with CRIU's notifications answered
//! through the [`Notify`] trait. It needs no system `protoc` to build: the
//! messages are generated from the bundled `proto/rpc.proto` by prost and protox.
//!
//! ```no_run
//! let criu = rr_criu::Criu::new("/usr/sbin/criu");
//! let probe = criu.probe()?;
//! println!("CRIU {} (lazy pages: {})", probe.version, probe.features.lazy_pages);
//! criu.require_version(&rr_criu::Version::new(3, 15, 0), "checkpoint")?;
//! # Ok::<(), rr_criu::Error>(())
//! ```
#![deny(missing_docs)]

mod client;
mod error;
mod features;
mod notify;
mod opts;
mod reply;
mod request;
pub mod rpc;
mod transport;
mod version;

pub use client::{Criu, DumpOutcome, Probe, RestoreOutcome};
pub use error::{Error, NotifyError, Result};
pub use features::Features;
pub use notify::{AcceptAll, Notify};
pub use opts::{CgroupMode, CriuOpts};
pub use reply::{decode_reply, PageServerInfo, Reply, Response};
pub use request::RequestType;
pub use version::Version;

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
