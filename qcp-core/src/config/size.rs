//! Sizes (`3.1 GB`) and durations (`500ms`) as written in the configuration, both ways.
//!
//! Size units are binary: 1 KB = 1024 B, 1 MB = 1024 KB, 1 GB = 1024 MB, 1 TB = 1024 GB (the
//! `KiB`, `MiB`, `GiB`, `TiB` spellings mean the same). Units are case-insensitive. Decimals
//! are allowed with a unit and the result is rounded down to whole bytes. [`format_size`]
//! prints with the same units, so its output parses back (to within its rounding).
//!
//! Arithmetic is done on integers (u128), never on floats, so `3.1 GB` is exactly
//! `floor(3.1 * 2^30)` bytes.

use std::time::Duration;

use humansize::WINDOWS;

use super::MAX_TIMEOUT;

/// Parses a size: a whole number of bytes (`66560`, `100 B`) or a number with a `KB`, `MB`,
/// `GB` or `TB` suffix, decimals allowed (`3.1 GB`, `1.5MB`). 1 KB = 1024 B.
///
/// ```
/// use qcp_core::config::parse_size;
/// assert_eq!(parse_size("1KB"), Ok(1024));
/// assert_eq!(parse_size("3.1 GB"), Ok(3_328_599_654));
/// assert!(parse_size("12 parsecs").is_err());
/// ```
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (number, unit) = split_number(t, "size")?;
    let multiplier: u64 = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "KB" | "KIB" => 1 << 10,
        "MB" | "MIB" => 1 << 20,
        "GB" | "GIB" => 1 << 30,
        "TB" | "TIB" => 1 << 40,
        _ => {
            return Err(format!(
                "`{t}` has an unknown unit `{unit}`: sizes take B, KB, MB or GB (1 KB = 1024 B)"
            ))
        }
    };
    if multiplier == 1 && number.contains('.') {
        return Err(format!("`{t}` is not a whole number of bytes"));
    }
    let bytes = scale_decimal(number, u128::from(multiplier))
        .filter(|&b| b <= u128::from(u64::MAX))
        .ok_or_else(|| format!("`{t}` is too large"))?;
    // The filter above keeps `bytes` within u64.
    Ok(bytes as u64)
}

/// Parses a duration: seconds (`30`, `0.5`) or a number with a unit: `ms`, `s`, `min`, `h`
/// (`500ms`, `30s`, `5min`, `1h`, `1.5 h`). At most 365 days.
///
/// ```
/// use qcp_core::config::parse_duration;
/// use std::time::Duration;
/// assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
/// assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = split_number(t, "duration")?;
    let nanos_per_unit: u64 = match unit.to_ascii_lowercase().as_str() {
        "ms" => 1_000_000,
        "" | "s" => 1_000_000_000,
        "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => {
            return Err(format!(
                "`{t}` has an unknown unit `{unit}`: durations are seconds, or take ms, s, min or h"
            ))
        }
    };
    let nanos = scale_decimal(number, u128::from(nanos_per_unit))
        .filter(|&n| n <= MAX_TIMEOUT.as_nanos())
        .ok_or_else(|| format!("`{t}` is longer than 365 days (use 0 to disable a timeout)"))?;
    // The filter above keeps `nanos` within 365 days, far below u64::MAX nanoseconds.
    Ok(Duration::from_nanos(nanos as u64))
}

/// Turns a YAML number of seconds into a duration (see [`parse_duration`]).
pub(super) fn duration_from_seconds(seconds: f64) -> Result<Duration, String> {
    // f64's Display never uses an exponent, so this is plain decimal text.
    parse_duration(&seconds.to_string())
}

/// Prints a size with binary units labelled B, KB, MB, GB, TB: `format_size(66560)` is
/// `"65 KB"`, `format_size(3_328_599_654)` is `"3.10 GB"`.
pub fn format_size(bytes: u64) -> String {
    // humansize's WINDOWS options: divide by 1024, decimal-style labels; it spells kilo "kB".
    humansize::format_size(bytes, WINDOWS).replace("kB", "KB")
}

/// Prints a duration in the largest unit that keeps it whole: `2min`, `30s`, `500ms`, `0s`;
/// the output parses back with [`parse_duration`].
pub fn format_duration(d: Duration) -> String {
    const SECOND: u128 = 1_000_000_000;
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    for (unit_nanos, unit) in [(3600 * SECOND, "h"), (60 * SECOND, "min"), (SECOND, "s")] {
        if nanos % unit_nanos == 0 {
            return format!("{}{unit}", nanos / unit_nanos);
        }
    }
    if nanos % 1_000_000 == 0 {
        return format!("{}ms", nanos / 1_000_000);
    }
    let fraction = format!("{:09}", d.subsec_nanos());
    format!("{}.{}s", d.as_secs(), fraction.trim_end_matches('0'))
}

/// Splits `12.5 GB` into `("12.5", "GB")`, checking the number is digits with at most one dot.
fn split_number<'a>(t: &'a str, what: &str) -> Result<(&'a str, &'a str), String> {
    if t.is_empty() {
        return Err(format!("an empty {what}"));
    }
    if t.starts_with('-') {
        return Err(format!("`{t}` is negative"));
    }
    let end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(end);
    let digits = number.chars().filter(char::is_ascii_digit).count();
    if digits == 0 || number.matches('.').count() > 1 {
        return Err(format!(
            "`{t}` is not a {what}: it must start with a number"
        ));
    }
    Ok((number, unit.trim()))
}

/// `number` (digits with at most one dot) times `unit`, rounded down; `None` on overflow.
fn scale_decimal(number: &str, unit: u128) -> Option<u128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    // Digits past the 20th change the result by less than 10^-20 × unit: ignore them.
    let fraction = fraction.get(..fraction.len().min(20)).unwrap_or("");
    let mut result = whole.checked_mul(unit)?;
    if !fraction.is_empty() {
        let numerator: u128 = fraction.parse().ok()?;
        let denominator = 10u128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
        result = result.checked_add(numerator.checked_mul(unit)? / denominator)?;
    }
    Some(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("66560"), Ok(66_560));
        assert_eq!(parse_size("100 B"), Ok(100));
        assert_eq!(parse_size("1KB"), Ok(1024));
        assert_eq!(parse_size("1 kb"), Ok(1024));
        assert_eq!(parse_size("1 KiB"), Ok(1024));
        assert_eq!(parse_size("65 KB"), Ok(66_560));
        assert_eq!(parse_size("1.5 MB"), Ok(1_572_864));
        assert_eq!(parse_size("3.1 GB"), Ok(3_328_599_654)); // floor(3.1 * 2^30)
        assert_eq!(parse_size("1 GB"), Ok(1 << 30));
        assert_eq!(parse_size("0.5GB"), Ok(1 << 29));
        assert_eq!(parse_size(".5 KB"), Ok(512));
        assert_eq!(parse_size("2 TB"), Ok(2 << 40));
        assert_eq!(parse_size("  7  "), Ok(7));
    }

    #[test]
    fn bad_sizes() {
        for bad in [
            "", "GB", "-1 KB", "1.2.3 KB", "1.5", "1.5 B", "3 XB", "3 GBs", "1e3", ".",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} should not parse");
        }
        let err = parse_size("3 XB").unwrap_err();
        assert!(
            err.contains("unknown unit `XB`") && err.contains("1 KB = 1024 B"),
            "{err}"
        );
        assert!(parse_size("99999999999 TB")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn size_output_parses_back() {
        assert_eq!(format_size(66_560), "65 KB");
        assert_eq!(format_size(1 << 30), "1 GB");
        assert_eq!(format_size(512), "512 B");
        assert_eq!(format_size(3_328_599_654), "3.10 GB");
        for bytes in [512u64, 66_560, 1 << 20, 1 << 30, 3_328_599_654, 68_157_440] {
            let back = parse_size(&format_size(bytes)).unwrap();
            // Two decimals of the unit: within 0.5 % of the value.
            assert!(back.abs_diff(bytes) <= bytes / 200, "{bytes} -> {back}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5min"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("5 MIN"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(duration_from_seconds(0.5), Ok(Duration::from_millis(500)));
        assert_eq!(duration_from_seconds(1e-7), Ok(Duration::from_nanos(100)));
    }

    #[test]
    fn bad_durations() {
        for bad in ["", "s", "-1s", "5 days", "5m", "1..2s", "400 d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should not parse");
        }
        assert!(parse_duration("366 * 24h").is_err());
        assert!(parse_duration("9000h").unwrap_err().contains("365 days"));
        assert!(duration_from_seconds(-1.0).is_err());
        assert!(duration_from_seconds(f64::NAN).is_err());
        assert!(duration_from_seconds(f64::INFINITY).is_err());
    }

    #[test]
    fn duration_output_parses_back() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_secs(7200), "2h"),
            (Duration::from_secs(120), "2min"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_nanos(1_000_100), "0.0010001s"),
        ];
        for (d, text) in cases {
            assert_eq!(format_duration(d), text);
            assert_eq!(parse_duration(text), Ok(d));
        }
    }
}
