//! Decoding CRIU replies: the first byte picks the request being served, the
//! rest is the message. Never panics; a successful final reply has the
//! payload its request needs.
#![no_main]

include!("../checks/reply.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
