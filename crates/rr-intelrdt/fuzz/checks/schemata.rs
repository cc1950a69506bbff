// Shared by the cargo-fuzz target (nightly) and the corpus replay test
// in tests/tests/fuzz_corpus.rs (stable), so both run the same code.
// Feeds arbitrary bytes to the schemata parser; whatever it accepts must
// print to text that parses back to the same value.
use rr_intelrdt::Schemata;

/// The fuzz target's body: never panics on any input.
pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(s) = Schemata::parse(&text) {
        let printed = s.to_string();
        let again = Schemata::parse(&printed).expect("canonical text parses");
        assert_eq!(again, s);
    }
}
