//! Time namespace offsets in the text form of `/proc/<pid>/timens_offsets`.

use std::fmt::Write as _;

use crate::error::Error;

const NSEC_PER_SEC: u32 = 1_000_000_000;

/// A clock a time namespace can offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeClock {
    /// `CLOCK_MONOTONIC`.
    Monotonic,
    /// `CLOCK_BOOTTIME`.
    Boottime,
}

impl TimeClock {
    /// The name used in the offsets text and in the OCI `timeOffsets` keys.
    pub fn name(self) -> &'static str {
        match self {
            TimeClock::Monotonic => "monotonic",
            TimeClock::Boottime => "boottime",
        }
    }

    /// The clock whose [`name`](Self::name) is `s`.
    pub fn from_name(s: &str) -> Option<TimeClock> {
        match s {
            "monotonic" => Some(TimeClock::Monotonic),
            "boottime" => Some(TimeClock::Boottime),
            _ => None,
        }
    }
}

/// The offset of one clock in a new time namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOffset {
    /// The clock.
    pub clock: TimeClock,
    /// Whole seconds (may be negative).
    pub secs: i64,
    /// Nanoseconds, below one second.
    pub nanosecs: u32,
}

/// The text the kernel's `timens_offsets` file takes: one
/// `"<clock> <secs> <nanosecs>\n"` line per offset. Fails on nanoseconds of
/// a second or more, which the kernel would reject.
pub fn encode_time_offsets(offsets: &[TimeOffset]) -> Result<String, Error> {
    let mut out = String::new();
    for o in offsets {
        if o.nanosecs >= NSEC_PER_SEC {
            return Err(Error::TimeOffsetNanos {
                clock: o.clock,
                nanosecs: o.nanosecs,
            });
        }
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{} {} {}", o.clock.name(), o.secs, o.nanosecs);
    }
    Ok(out)
}

/// Reads the text form of time offsets: lines of a clock name, an i64 and
/// a u32 below 1e9; the last line may lack its newline.
pub fn parse_time_offsets(text: &str) -> Result<Vec<TimeOffset>, Error> {
    parse_lines(text).map_err(|(line, text)| Error::InvalidTimeOffset { line, text })
}

/// Parses offset lines, giving the 1-based number and text of the first bad
/// line on failure.
pub(crate) fn parse_lines(text: &str) -> Result<Vec<TimeOffset>, (usize, String)> {
    let mut out = Vec::new();
    for (index, line) in crate::idmap::lines(text).enumerate() {
        let mut fields = line.split_ascii_whitespace();
        let parsed = match (fields.next(), fields.next(), fields.next(), fields.next()) {
            (Some(clock), Some(secs), Some(nanos), None) => TimeClock::from_name(clock)
                .zip(secs.parse::<i64>().ok())
                .zip(nanos.parse::<u32>().ok().filter(|&n| n < NSEC_PER_SEC)),
            _ => None,
        };
        let Some(((clock, secs), nanosecs)) = parsed else {
            return Err((index + 1, line.to_owned()));
        };
        out.push(TimeOffset {
            clock,
            secs,
            nanosecs,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_names() {
        for c in [TimeClock::Monotonic, TimeClock::Boottime] {
            assert_eq!(TimeClock::from_name(c.name()), Some(c));
        }
        assert_eq!(TimeClock::from_name("realtime"), None);
    }

    #[test]
    fn encode_and_parse() {
        let offsets = [
            TimeOffset {
                clock: TimeClock::Monotonic,
                secs: -86400,
                nanosecs: 5,
            },
            TimeOffset {
                clock: TimeClock::Boottime,
                secs: i64::MAX,
                nanosecs: 999_999_999,
            },
        ];
        let text = encode_time_offsets(&offsets).unwrap();
        assert_eq!(
            text,
            "monotonic -86400 5\nboottime 9223372036854775807 999999999\n"
        );
        assert_eq!(parse_time_offsets(&text).unwrap(), offsets);
        assert_eq!(parse_time_offsets("").unwrap(), []);
    }

    #[test]
    fn errors() {
        let err = encode_time_offsets(&[TimeOffset {
            clock: TimeClock::Boottime,
            secs: 0,
            nanosecs: NSEC_PER_SEC,
        }])
        .unwrap_err();
        assert!(matches!(
            err,
            Error::TimeOffsetNanos {
                clock: TimeClock::Boottime,
                nanosecs: NSEC_PER_SEC
            }
        ));
        for (text, line) in [
            ("realtime 1 0\n", 1),
            ("monotonic 1\n", 1),
            ("monotonic 1 2 3\n", 1),
            ("monotonic 1 1000000000\n", 1),
            ("monotonic 1 0\nboottime x 0\n", 2),
            ("monotonic 99999999999999999999 0\n", 1),
        ] {
            match parse_time_offsets(text) {
                Err(Error::InvalidTimeOffset { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }
}
