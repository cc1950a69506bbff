//! Conversions of cgroup v1-style spec values into cgroup v2 values.

use crate::error::{invalid, Result};

/// Smallest and largest `cpu.shares` the v1 kernel accepts.
pub const SHARES_MIN: u64 = 2;
/// Largest v1 `cpu.shares`.
pub const SHARES_MAX: u64 = 262_144;
/// Largest v2 `cpu.weight`.
pub const WEIGHT_MAX: u64 = 10_000;
/// Default CFS period in microseconds.
pub const DEFAULT_PERIOD: u64 = 100_000;

/// Map v1 `cpu.shares` onto v2 `cpu.weight` along a curve that sends the
/// v1 default (1024) to the v2 default (100) and the range ends to each other.
pub fn cpu_shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    if shares <= SHARES_MIN {
        return 1;
    }
    if shares >= SHARES_MAX {
        return WEIGHT_MAX;
    }
    let l = (shares as f64).log2();
    // 7/34 == 126/612; folding it into one fraction keeps 1024 -> exactly 100.
    let exponent = (l * l + 125.0 * l - 126.0) / 612.0;
    let w = 10f64.powf(exponent).ceil();
    (w as u64).clamp(1, WEIGHT_MAX)
}

/// Map v1 `blkio.weight` (10..=1000) linearly onto v2 `io.weight` (1..=10000).
/// 0 means "unset" and stays 0.
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    let w = u64::from(weight).clamp(10, 1000);
    1 + (w - 10) * 9999 / 990
}

/// The `cpu.max` line for a CFS quota and period: `"<quota|max> <period>"`.
/// A missing or negative quota is `max`; a missing or zero period is 100000.
pub fn cpu_max(quota: Option<i64>, period: Option<u64>) -> String {
    let q = match quota {
        Some(q) if q > 0 => q.to_string(),
        _ => "max".to_string(),
    };
    let p = match period {
        Some(p) if p > 0 => p,
        _ => DEFAULT_PERIOD,
    };
    format!("{q} {p}")
}

/// Convert a v1 memory+swap limit into the v2 `memory.swap.max` value.
///
/// Returns `None` when nothing should be written (swap unset), `Some("max")`
/// for unlimited, otherwise the swap-only byte count.
pub fn swap_v1_to_v2(swap: i64, memory: i64) -> Result<Option<String>> {
    const FIELD: &str = "linux.resources.memory.swap";
    // An unlimited memory limit with swap unset means both unlimited, as on v1.
    if memory == -1 && swap == 0 {
        return Ok(Some("max".into()));
    }
    match swap {
        -1 => return Ok(Some("max".into())),
        0 => return Ok(None),
        s if s < -1 => return Err(invalid(FIELD, s, "must be -1 (unlimited) or positive")),
        _ => {}
    }
    if memory == 0 || memory == -1 {
        return Err(invalid(
            FIELD,
            swap,
            "a swap limit needs a finite memory limit (v1 swap is memory+swap)",
        ));
    }
    if memory < 0 {
        return Err(invalid(
            "linux.resources.memory.limit",
            memory,
            "must be -1 or positive",
        ));
    }
    if swap < memory {
        return Err(invalid(
            FIELD,
            swap,
            format!("memory+swap must be >= the memory limit {memory}"),
        ));
    }
    Ok(Some((swap - memory).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_vectors() {
        assert_eq!(cpu_shares_to_weight(0), 0);
        assert_eq!(cpu_shares_to_weight(1), 1);
        assert_eq!(cpu_shares_to_weight(2), 1);
        assert_eq!(cpu_shares_to_weight(3), 2);
        assert_eq!(cpu_shares_to_weight(100), 17);
        assert_eq!(cpu_shares_to_weight(1024), 100);
        assert_eq!(cpu_shares_to_weight(262_143), 10_000);
        assert_eq!(cpu_shares_to_weight(262_144), 10_000);
        assert_eq!(cpu_shares_to_weight(u64::MAX), 10_000);
    }

    #[test]
    fn blkio_vectors() {
        assert_eq!(blkio_weight_to_io_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
        assert_eq!(blkio_weight_to_io_weight(500), 1 + 490 * 9999 / 990);
    }

    #[test]
    fn cpu_max_vectors() {
        assert_eq!(cpu_max(None, None), "max 100000");
        assert_eq!(cpu_max(Some(-1), Some(50_000)), "max 50000");
        assert_eq!(cpu_max(Some(20_000), None), "20000 100000");
        assert_eq!(cpu_max(Some(20_000), Some(0)), "20000 100000");
        assert_eq!(cpu_max(Some(150_000), Some(100_000)), "150000 100000");
    }

    #[test]
    fn swap_vectors() {
        assert_eq!(swap_v1_to_v2(-1, 1 << 20).unwrap().as_deref(), Some("max"));
        assert_eq!(swap_v1_to_v2(0, -1).unwrap().as_deref(), Some("max"));
        assert_eq!(swap_v1_to_v2(0, 1 << 20).unwrap(), None);
        assert_eq!(swap_v1_to_v2(3000, 1000).unwrap().as_deref(), Some("2000"));
        assert_eq!(swap_v1_to_v2(1000, 1000).unwrap().as_deref(), Some("0"));
        assert!(swap_v1_to_v2(500, 1000).is_err());
        assert!(swap_v1_to_v2(500, 0).is_err());
        assert!(swap_v1_to_v2(500, -1).is_err());
        assert!(swap_v1_to_v2(-2, 1000).is_err());
    }

    proptest::proptest! {
        #[test]
        fn weight_monotonic_and_in_range(a in 2u64..300_000, b in 2u64..300_000) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let (wl, wh) = (cpu_shares_to_weight(lo), cpu_shares_to_weight(hi));
            proptest::prop_assert!(wl <= wh);
            proptest::prop_assert!((1..=WEIGHT_MAX).contains(&wl));
        }

        #[test]
        fn io_weight_in_range(w in 10u16..=1000) {
            let v = blkio_weight_to_io_weight(w);
            proptest::prop_assert!((1..=10_000).contains(&v));
        }
    }
}
