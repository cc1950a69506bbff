//! Property tests: valid messages round-trip, and the decoder never panics
//! on random or mutated input.

use proptest::prelude::*;
use rr_nsenter::{
    BootstrapMessage, IdMapping, NsKind, NsPath, TimeClock, TimeOffset, INIT_MSG_TYPE,
};

fn id_mapping() -> impl Strategy<Value = IdMapping> {
    (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(container_id, host_id, size)| IdMapping {
        container_id,
        host_id,
        size,
    })
}

fn time_offset() -> impl Strategy<Value = TimeOffset> {
    (
        prop_oneof![Just(TimeClock::Monotonic), Just(TimeClock::Boottime)],
        any::<i64>(),
        0u32..1_000_000_000,
    )
        .prop_map(|(clock, secs, nanosecs)| TimeOffset {
            clock,
            secs,
            nanosecs,
        })
}

fn ns_paths() -> impl Strategy<Value = Vec<NsPath>> {
    // A subset of kinds (each at most once), in random order.
    proptest::collection::vec(proptest::option::of("[^,\\x00]{1,24}"), 8)
        .prop_map(|paths| {
            NsKind::ALL
                .into_iter()
                .zip(paths)
                .filter_map(|(kind, path)| path.map(|path| NsPath { kind, path }))
                .collect::<Vec<_>>()
        })
        .prop_shuffle()
}

prop_compose! {
    fn message()(
        clone_flags in any::<u32>(),
        ns_paths in ns_paths(),
        uid_map in proptest::collection::vec(id_mapping(), 0..4),
        gid_map in proptest::collection::vec(id_mapping(), 0..4),
        uid_map_path in proptest::option::of("[^\\x00]{0,24}"),
        gid_map_path in proptest::option::of("[^\\x00]{0,24}"),
        set_groups in proptest::option::of(any::<bool>()),
        oom_score_adj in proptest::option::of(any::<i32>()),
        rootless_euid in any::<bool>(),
        time_offsets in proptest::collection::vec(time_offset(), 0..3),
    ) -> BootstrapMessage {
        BootstrapMessage {
            clone_flags, ns_paths, uid_map, gid_map, uid_map_path, gid_map_path,
            set_groups, oom_score_adj, rootless_euid, time_offsets,
        }
    }
}

/// The message as decoding its encoding gives it back: paths in wire order.
fn normalized(msg: &BootstrapMessage) -> BootstrapMessage {
    let mut out = msg.clone();
    out.ns_paths.sort_by_key(|p| p.kind);
    out
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(usize, u8),
    Truncate(usize),
    /// Overwrite a u16 at an attribute-sized stride (hits nla_len/nla_type).
    SetU16(usize, u16),
    /// Rewrite the header length.
    SetLen(u32),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (
            any::<usize>(),
            prop_oneof![any::<u16>(), 0u16..16, 27278u16..27294]
        )
            .prop_map(|(i, v)| Mutation::SetU16(i, v)),
        prop_oneof![any::<u32>(), 0u32..512].prop_map(Mutation::SetLen),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<usize>(), 1usize..8).prop_map(|(i, n)| Mutation::Remove(i, n)),
    ]
}

fn apply(buf: &mut Vec<u8>, m: &Mutation) {
    let n = buf.len();
    match *m {
        Mutation::FlipBit(i, b) if n > 0 => buf[i % n] ^= 1 << b,
        Mutation::Truncate(i) => buf.truncate(i % (n + 1)),
        Mutation::SetU16(i, v) if n >= 2 => {
            let at = (i % (n / 2)) * 2;
            buf[at..at + 2].copy_from_slice(&v.to_ne_bytes());
        }
        Mutation::SetLen(v) if n >= 4 => buf[0..4].copy_from_slice(&v.to_ne_bytes()),
        Mutation::Insert(i, ref bytes) => {
            let at = i % (n + 1);
            buf.splice(at..at, bytes.iter().copied());
        }
        Mutation::Remove(i, k) if n > 0 => {
            let at = i % n;
            buf.drain(at..(at + k).min(n));
        }
        _ => {}
    }
}

/// Whatever the decoder accepts must encode again and decode to the same
/// message: a decoded message is always a valid one.
fn check_decoded(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(msg) = BootstrapMessage::decode(bytes) {
        let again = msg.encode(7);
        prop_assert!(again.is_ok(), "{msg:?}: {again:?}");
        let again = again.unwrap_or_default();
        prop_assert_eq!(
            BootstrapMessage::decode(&again).ok(),
            Some(normalized(&msg))
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn encode_decode_round_trips(msg in message(), seq in any::<u32>()) {
        let bytes = msg.encode(seq).unwrap();
        prop_assert_eq!(bytes.len() % 4, 0);
        let (header, decoded) = BootstrapMessage::decode_with_header(&bytes).unwrap();
        prop_assert_eq!(header.seq, seq);
        prop_assert_eq!(header.len as usize, bytes.len());
        prop_assert_eq!(decoded, normalized(&msg));
    }

    #[test]
    fn decode_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        check_decoded(&bytes)?;
    }

    #[test]
    fn decode_never_panics_on_random_attributes(
        body in proptest::collection::vec(any::<u8>(), 0..256),
        extra in 0usize..8,
    ) {
        // A valid header in front of random bytes, so the attribute walk
        // (not the header check) is what gets exercised.
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        bytes.extend_from_slice(&INIT_MSG_TYPE.to_ne_bytes());
        bytes.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        bytes.extend_from_slice(&body);
        bytes.extend(std::iter::repeat_n(0xAA, extra));
        check_decoded(&bytes)?;
    }

    #[test]
    fn decode_never_panics_on_mutated_encodings(
        msg in message(),
        mutations in proptest::collection::vec(mutation(), 1..5),
    ) {
        let mut bytes = msg.encode(1).unwrap();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        check_decoded(&bytes)?;
    }
}
