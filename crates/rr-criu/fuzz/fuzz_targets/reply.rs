//! Decoding CRIU replies: the first byte picks the request being served, the
//! rest is the message. Never panics; a successful final reply has the
//! payload its request needs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rr_criu::{decode_reply, Reply, RequestType};

fuzz_target!(|data: &[u8]| {
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
});
