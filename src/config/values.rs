//! Config values with units, as HAProxy writes them.

use std::time::Duration;

/// A time as HAProxy's config writes it: a number with `us`, `ms`, `s`, `m`, `h` or `d`; a
/// bare number is milliseconds.
pub fn parse_time(spec: &str) -> Result<Duration, String> {
    let digits = spec.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = spec.split_at(digits);
    let bad = || format!("bad time '{spec}': expected a number with us, ms, s, m, h or d");
    let n: u64 = number.parse().map_err(|_| bad())?;
    let micros_per_unit: u64 = match unit {
        "us" => 1,
        "" | "ms" => 1_000,
        "s" => 1_000_000,
        "m" => 60_000_000,
        "h" => 3_600_000_000,
        "d" => 86_400_000_000,
        _ => return Err(bad()),
    };
    n.checked_mul(micros_per_unit)
        .map(Duration::from_micros)
        .ok_or_else(bad)
}

/// A size in bytes: a number with an optional `k`, `m` or `g` (powers of 1024, either case,
/// optionally followed by `b` or `ib`).
pub fn parse_size(spec: &str) -> Result<u64, String> {
    let digits = spec.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = spec.split_at(digits);
    let bad = || format!("bad size '{spec}': expected e.g. 512k, 10M or 1G");
    let n: u64 = number.parse().map_err(|_| bad())?;
    let unit = unit.to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let scale: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => return Err(bad()),
    };
    n.checked_mul(scale).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_default_to_milliseconds() {
        assert_eq!(parse_time("2000"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_time("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_time("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_time("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_time("1d"), Ok(Duration::from_secs(86_400)));
        for bad in ["", "s", "5 s", "5w", "-1s"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_are_binary() {
        assert_eq!(parse_size("10M"), Ok(10 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        for bad in ["", "M", "10T", "1.5M"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
