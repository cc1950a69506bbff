//! Feeds arbitrary bytes to the bootstrap message decoder. Besides not
//! panicking, anything it accepts must survive an encode/decode cycle.
#![no_main]

include!("../checks/decode.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
