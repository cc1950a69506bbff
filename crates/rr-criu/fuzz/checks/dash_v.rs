// Shared by the cargo-fuzz target (nightly) and the corpus replay test
// in tests/tests/fuzz_corpus.rs (stable), so both run the same code.
// `criu -V` output parsing: never panics, and an accepted version is consistent.
use rr_criu::Version;

/// The fuzz target's body: never panics on any input.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(v) = Version::parse_dash_v(text) {
        let base = u64::from(v.major()) * 10000 + u64::from(v.minor()) * 100;
        // Releases count as X.Y.Z; git builds only ever count as newer.
        match v.gitid() {
            None => assert_eq!(v.number(), base + u64::from(v.sublevel())),
            Some(_) => assert!(v.number() > base + u64::from(v.sublevel())),
        }
        let _ = v.to_string();
    }
}
