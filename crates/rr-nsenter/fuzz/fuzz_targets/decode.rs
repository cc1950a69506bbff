//! Feeds arbitrary bytes to the bootstrap message decoder. Besides not
//! panicking, anything it accepts must survive an encode/decode cycle.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rr_nsenter::BootstrapMessage;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = BootstrapMessage::decode(data) else {
        return;
    };
    // Values near the 16-bit attribute limit may grow by a newline when
    // normalized; only check the cycle when the encoder accepts them.
    let Ok(bytes) = msg.encode(0) else {
        return;
    };
    let mut expected = msg;
    expected.ns_paths.sort_by_key(|p| p.kind);
    assert_eq!(BootstrapMessage::decode(&bytes).ok(), Some(expected));
});
