//! Feeds arbitrary bytes to the schemata parser; whatever it accepts must
//! print to text that parses back to the same value.
#![no_main]

include!("../checks/schemata.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
