//! `criu -V` output parsing: never panics, and an accepted version is consistent.
#![no_main]

include!("../checks/dash_v.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
