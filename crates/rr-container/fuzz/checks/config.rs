// Shared by the cargo-fuzz target (nightly) and the corpus replay test
// in tests/tests/fuzz_corpus.rs (stable), so both run the same code.
// Loads arbitrary bytes as a bundle's config.json: parsing, validation and
// the bootstrap message built from it must never panic, whatever the spec.
use std::path::Path;

/// The fuzz target's body: never panics on any input.
pub fn check(data: &[u8]) {
    // A bundle that does not exist: validation must not need one to answer,
    // and the fuzzer must not reach the host's files through root.path.
    let bundle = Path::new("/nonexistent/rr-fuzz-bundle");
    let config = bundle.join("config.json");
    let Ok(spec) = rr_container::config::parse_spec(&config, data) else {
        return;
    };
    if let Err(e) = rr_container::config::validate(&config, bundle, &spec) {
        // Every refusal names the file it is about.
        let text = e.to_string();
        assert!(!text.is_empty());
    }
    if let Ok(msg) = rr_container::bootstrap_message(&spec) {
        let _ = msg.encode(1);
    }
}
