//! Feeds arbitrary bytes to the schemata parser; whatever it accepts must
//! print to text that parses back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rr_intelrdt::Schemata;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(s) = Schemata::parse(&text) {
        let printed = s.to_string();
        let again = Schemata::parse(&printed).expect("canonical text parses");
        assert_eq!(again, s);
    }
});
