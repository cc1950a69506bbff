//! The raw protobuf messages of CRIU's RPC protocol, generated at build time
//! from `proto/rpc.proto` (prost types; field numbers are CRIU's).
//!
//! Most callers never need these: [`crate::Criu`] and [`crate::CriuOpts`]
//! build and read them. They are public for tools that want to speak the
//! protocol directly, such as the fuzz targets and the test fake.
#![allow(missing_docs)]
#![allow(clippy::all, clippy::pedantic)]

include!(concat!(env!("OUT_DIR"), "/criu.rs"));
