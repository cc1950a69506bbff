//! Random input never makes the parser (or the validator) panic, and what
//! it accepts prints to text that parses back to the same schemata.

mod common;

use common::HostExt;

use proptest::prelude::*;
use rr_intelrdt::{find_resctrl, validate_clos_id, Schemata};

/// Lines that look like schemata lines, with random damage.
fn schemata_like() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("L3".to_string()),
        Just("L3CODE".to_string()),
        Just("L3DATA".to_string()),
        Just("L2".to_string()),
        Just("MB".to_string()),
        Just("SMBA".to_string()),
        "[A-Z0-9_ ]{0,6}",
    ];
    let value = prop_oneof!["[0-9a-fA-Fx]{0,18}", "[0-9]{0,11}", ".{0,4}"];
    let entry = ("[0-9 ]{0,3}", prop::option::of(value)).prop_map(|(id, v)| match v {
        Some(v) => format!("{id}={v}"),
        None => id,
    });
    let line =
        (name, prop::option::of(prop::collection::vec(entry, 0..5))).prop_map(|(n, es)| match es {
            Some(es) => format!("{n}:{}", es.join(";")),
            None => n,
        });
    prop::collection::vec(line, 0..6).prop_map(|ls| ls.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        let _ = Schemata::parse(&text);
        let _ = find_resctrl(&text);
        let _ = validate_clos_id(&text);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = Schemata::parse(&text);
    }

    #[test]
    fn schemata_like_lines_round_trip(text in schemata_like()) {
        if let Ok(s) = Schemata::parse(&text) {
            let printed = s.to_string();
            let again = Schemata::parse(&printed).expect("canonical text parses");
            prop_assert_eq!(&again, &s);
            prop_assert_eq!(again.to_string(), printed);
        }
    }

    #[test]
    fn validator_never_panics(text in schemata_like()) {
        if let Ok(s) = Schemata::parse(&text) {
            for h in [
                common::FakeHost::intel_cdp(),
                common::FakeHost::amd(),
                common::FakeHost::monitoring_only(),
            ] {
                let _ = h.resctrl().validate(&s);
            }
        }
    }
}
