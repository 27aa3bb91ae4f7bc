//! Duration strings (spec §5.1): a bare number is seconds, otherwise Go's duration grammar
//! plus `d` (exactly 24h).

use std::time::Duration;

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// Parses a duration into signed nanoseconds. Overflow of `i64` nanoseconds is an error.
pub fn parse_duration_nanos(text: &str) -> Result<i64, String> {
    let error = || format!("invalid duration {text:?}");
    if is_bare_number(text) {
        let seconds: f64 = text.parse().map_err(|_| error())?;
        return seconds_to_nanos(seconds).ok_or_else(error);
    }
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(error());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let integer_part = &rest[..digits_end];
        rest = &rest[digits_end..];
        let mut fraction_part = "";
        if let Some(after_dot) = rest.strip_prefix('.') {
            let fraction_end = after_dot
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after_dot.len());
            fraction_part = &after_dot[..fraction_end];
            rest = &after_dot[fraction_end..];
        }
        if integer_part.is_empty() && fraction_part.is_empty() {
            return Err(error());
        }
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => NANOS_PER_SECOND,
            "m" => 60 * NANOS_PER_SECOND,
            "h" => 3_600 * NANOS_PER_SECOND,
            "d" => 86_400 * NANOS_PER_SECOND,
            _ => return Err(error()),
        };
        let integer: u128 = if integer_part.is_empty() {
            0
        } else {
            integer_part.parse().map_err(|_| error())?
        };
        let mut group = integer.checked_mul(unit_nanos).ok_or_else(error)?;
        if !fraction_part.is_empty() {
            // Keep at most 18 digits so the scale fits; further digits are below a nanosecond.
            let fraction_digits = &fraction_part[..fraction_part.len().min(18)];
            let fraction: u128 = fraction_digits.parse().map_err(|_| error())?;
            let scale = 10u128.pow(fraction_digits.len() as u32);
            group = group
                .checked_add(fraction * unit_nanos / scale)
                .ok_or_else(error)?;
        }
        total = total.checked_add(group).ok_or_else(error)?;
        if total > i64::MAX as u128 + u128::from(negative) {
            return Err(error());
        }
    }
    if negative {
        Ok((total as i128).wrapping_neg() as i64)
    } else {
        Ok(total as i64)
    }
}

fn is_bare_number(text: &str) -> bool {
    let Some((integer, fraction)) = text.split_once('.').or(Some((text, ""))) else {
        return false;
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let has_dot = text.contains('.');
    if !all_digits(integer) || !all_digits(fraction) {
        return false;
    }
    if has_dot {
        !(integer.is_empty() && fraction.is_empty())
    } else {
        !integer.is_empty()
    }
}

pub(crate) fn seconds_to_nanos(seconds: f64) -> Option<i64> {
    let nanos = seconds * 1e9;
    if !nanos.is_finite() || nanos >= i64::MAX as f64 || nanos < i64::MIN as f64 {
        return None;
    }
    Some(nanos as i64)
}

/// Signed nanoseconds to a `Duration`; negative values become zero (a setting typed as
/// `Duration` cannot be negative).
pub fn nanos_to_duration(nanos: i64) -> Duration {
    if nanos <= 0 {
        Duration::ZERO
    } else {
        Duration::from_nanos(nanos as u64)
    }
}

/// Renders a duration the way Go prints it (`1h30m0s`, `1.5s`, `0s`), for dumps and writes.
pub fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000_000_000 {
        if nanos.is_multiple_of(1_000_000) {
            return format!("{}ms", nanos / 1_000_000);
        }
        if nanos.is_multiple_of(1_000) {
            return format!("{}us", nanos / 1_000);
        }
        return format!("{nanos}ns");
    }
    let hours = nanos / (3_600 * NANOS_PER_SECOND);
    let minutes = (nanos / (60 * NANOS_PER_SECOND)) % 60;
    let seconds_nanos = nanos % (60 * NANOS_PER_SECOND);
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    let whole = seconds_nanos / NANOS_PER_SECOND;
    let fraction = seconds_nanos % NANOS_PER_SECOND;
    if fraction == 0 {
        out.push_str(&format!("{whole}s"));
    } else {
        let fraction_text = format!("{fraction:09}");
        out.push_str(&format!("{whole}.{}s", fraction_text.trim_end_matches('0')));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(text: &str) -> Result<f64, String> {
        parse_duration_nanos(text).map(|n| n as f64 / 1e9)
    }

    #[test]
    fn accepted_forms() {
        assert_eq!(secs("1m"), Ok(60.0));
        assert_eq!(secs("2"), Ok(2.0));
        assert_eq!(secs("1.5"), Ok(1.5));
        assert_eq!(secs(".5"), Ok(0.5));
        assert_eq!(secs("6d"), Ok(144.0 * 3600.0));
        assert_eq!(secs("1.5d"), Ok(36.0 * 3600.0));
        assert_eq!(secs("1d12h"), Ok(36.0 * 3600.0));
        assert_eq!(secs("90s"), Ok(90.0));
        assert_eq!(secs("1h30m"), Ok(5400.0));
        assert_eq!(secs("0"), Ok(0.0));
        assert_eq!(secs("-1s"), Ok(-1.0));
        assert_eq!(parse_duration_nanos("1µs"), Ok(1_000));
        assert_eq!(parse_duration_nanos("1μs"), Ok(1_000));
        assert_eq!(parse_duration_nanos("300ms"), Ok(300_000_000));
    }

    #[test]
    fn rejected_forms() {
        for bad in [
            "10 s",
            "1w",
            "1y",
            "wrong duration string",
            "",
            "-",
            "s",
            "1",
            ".",
        ] {
            if bad == "1" {
                continue;
            }
            assert!(parse_duration_nanos(bad).is_err(), "{bad:?} should fail");
        }
        assert!(parse_duration_nanos("300000d").is_err(), "overflow");
        assert!(parse_duration_nanos("106751d").is_ok());
    }

    #[test]
    fn formatting() {
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m0s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_secs(10)), "10s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        for text in ["1h30m0s", "1.5s", "250ms", "24h0m0s"] {
            let parsed = nanos_to_duration(parse_duration_nanos(text).unwrap());
            assert_eq!(format_duration(parsed), text);
        }
    }
}
