// Shared by the cargo-fuzz target (nightly) and the corpus replay test
// in tests/tests/fuzz_corpus.rs (stable), so both run the same code.
// Decoding CRIU replies: the first byte picks the request being served, the
// rest is the message. Never panics; a successful final reply has the
// payload its request needs.
use rr_criu::{decode_reply, Reply, RequestType};

/// The fuzz target's body: never panics on any input.
pub fn check(data: &[u8]) {
    let Some((&kind, bytes)) = data.split_first() else {
        return;
    };
    let request = RequestType::from_wire(i32::from(kind % 16));
    match decode_reply(request, bytes) {
        Ok(Reply::Done(r)) => {
            assert_eq!(r.request, request);
            match request {
                RequestType::Version => assert!(r.version.is_some()),
                RequestType::FeatureCheck => assert!(r.features.is_some()),
                RequestType::Restore => assert!(r.restored_pid.is_some_and(|p| p > 0)),
                _ => {}
            }
        }
        Ok(Reply::Notify { script, .. }) => assert!(!script.is_empty()),
        Err(e) => {
            let _ = e.to_string();
        }
    }
}
