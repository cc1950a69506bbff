// Shared by the cargo-fuzz target (nightly) and the corpus replay test
// in tests/tests/fuzz_corpus.rs (stable), so both run the same code.
// Feeds arbitrary bytes to the bootstrap message decoder. Besides not
// panicking, anything it accepts must survive an encode/decode cycle.
use rr_nsenter::BootstrapMessage;

/// The fuzz target's body: never panics on any input.
pub fn check(data: &[u8]) {
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
}
