//! An arbitrary console-socket message, received as `rrc run` and `exec -t`
//! receive the terminal master. Never panics, never leaks a descriptor.
#![no_main]

include!("../checks/console_socket.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
