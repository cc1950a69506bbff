// Shared by the cargo-fuzz target (nightly) and the corpus replay test
// in tests/tests/fuzz_corpus.rs (stable), so both run the same code.
// Loads arbitrary bytes as a state.json and exercises everything derived from a loaded
// state. Must never panic; a state that loads must encode and load again.
use std::path::Path;

use rr_state::{OciState, State, Status};

/// The fuzz target's body: never panics on any input.
pub fn check(data: &[u8]) {
    let path = Path::new("state.json");
    let Ok(state) = State::from_json_slice(data, path) else {
        return;
    };
    let _ = state.bundle();
    let _ = state.annotations();
    let _ = serde_json::to_vec(&OciState::new(&state, Status::Running));
    let bytes = state.to_json_vec(path).expect("a loaded state encodes");
    let again = State::from_json_slice(&bytes, path).expect("an encoded state loads");
    assert_eq!(again.id, state.id);
    assert_eq!(again.init_process_pid, state.init_process_pid);
    assert_eq!(again.config.labels, state.config.labels);
}
