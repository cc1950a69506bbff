//! The runc-compatible bootstrap message.
//!
//! A container runtime hands the process that builds a container's
//! namespaces its settings as one netlink-style message: a 16-byte header
//! (type 62000) followed by flat attributes (namespaces to create and to
//! join, id maps, setgroups, oom score, rootless, time offsets). This crate
//! encodes that message byte-for-byte as runc does and decodes it strictly:
//! any byte string gives either a message or a typed [`Error`], never a
//! panic.
//!
//! Everything here is pure (no system calls), so it is testable without
//! privileges.
//!
//! ```
//! use rr_nsenter::{BootstrapMessage, NsKind, NsPath};
//!
//! let msg = BootstrapMessage {
//!     clone_flags: NsKind::Net.clone_flag(),
//!     ns_paths: vec![NsPath { kind: NsKind::Pid, path: "/proc/1/ns/pid".into() }],
//!     ..Default::default()
//! };
//! let bytes = msg.encode(1)?;
//! assert_eq!(bytes.len(), 56);
//! assert_eq!(BootstrapMessage::decode(&bytes)?, msg);
//! # Ok::<(), rr_nsenter::Error>(())
//! ```
#![deny(missing_docs)]

pub mod attr;
pub mod bootstrap;
mod error;
mod idmap;
mod message;
mod namespace;
mod timens;

pub use error::{Error, Malformed};
pub use idmap::{encode_id_map, parse_id_map, setgroups_allowed, IdMapping};
pub use message::{BootstrapMessage, Header, HEADER_LEN, INIT_MSG_TYPE, NLM_F_REQUEST};
pub use namespace::{clone_flags_to_create, encode_ns_paths, ns_paths_to_join, NsKind, NsPath};
pub use timens::{encode_time_offsets, parse_time_offsets, TimeClock, TimeOffset};

// Compiles and runs the README example as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
