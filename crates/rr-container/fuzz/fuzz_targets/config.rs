//! Arbitrary bytes as config.json: parse, validate, build the bootstrap
//! message. Never panics.
#![no_main]

include!("../checks/config.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
