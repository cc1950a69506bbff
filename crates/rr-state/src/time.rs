//! RFC 3339 timestamps without a date library.

/// The current time as RFC 3339 in UTC with nanoseconds, e.g. `2026-11-29T01:53:20.123456789Z`.
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now();
    let (secs, nanos) = match now.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(before) => {
            // A clock before 1970: borrow a second so that the nanoseconds stay positive.
            let d = before.duration();
            let secs = -i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            match d.subsec_nanos() {
                0 => (secs, 0),
                n => (secs - 1, 1_000_000_000 - n),
            }
        }
    };
    format_rfc3339(secs, nanos)
}

/// Formats seconds since the Unix epoch plus nanoseconds (`< 1_000_000_000`) as RFC 3339 UTC.
pub fn format_rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        nanos.min(999_999_999)
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01, using 400-year eras of
/// 146097 days starting on March 1 so that the leap day falls at the end of a year.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], March-based
    let mp = (5 * doy + 2) / 153; // [0, 11], 0 = March
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    // d is in [1, 31] and m in [1, 12] by construction.
    (y, m as u32, d as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(format_rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            format_rfc3339(951_782_400, 5),
            "2000-02-29T00:00:00.000000005Z"
        );
        assert_eq!(
            format_rfc3339(1_795_830_800, 123_456_789),
            "2026-11-28T01:53:20.123456789Z"
        );
        assert_eq!(format_rfc3339(-1, 0), "1969-12-31T23:59:59.000000000Z");
        assert_eq!(
            format_rfc3339(4_107_542_399, 0),
            "2100-02-28T23:59:59.000000000Z"
        );
        assert_eq!(
            format_rfc3339(4_107_542_400, 0),
            "2100-03-01T00:00:00.000000000Z"
        );
    }

    #[test]
    fn now_is_well_formed() {
        let s = now_rfc3339();
        assert_eq!(s.len(), 30, "{s}");
        assert!(s.ends_with('Z'));
        assert!(s.as_str() > "2024-01-01");
    }
}
