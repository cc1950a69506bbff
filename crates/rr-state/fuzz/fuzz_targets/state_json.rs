//! Loads arbitrary bytes as a state.json and exercises everything derived from a loaded
//! state. Must never panic; a state that loads must encode and load again.
#![no_main]

include!("../checks/state_json.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
