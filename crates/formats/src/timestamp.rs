//! Timestamps as sources write them.
//!
//! The rule, the same in every format: an RFC 3339 text is exact; a number is a count of
//! [`TimeUnit`]s since the Unix epoch, seconds unless the record (JSON `timestamp_unit`) or the
//! request (`?precision=`, `--timestamp-unit`) says otherwise. Seconds may carry a fraction;
//! the original MyMonit messages carry integer seconds.

use std::str::FromStr;

use chrono::DateTime;

/// Unit of numeric timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeUnit {
    /// Seconds (the original format's unit), fractions allowed.
    #[default]
    Seconds,
    /// Milliseconds.
    Millis,
    /// Microseconds.
    Micros,
    /// Nanoseconds (line protocol's default).
    Nanos,
}

impl TimeUnit {
    /// Nanoseconds in one unit.
    pub fn nanos(self) -> i64 {
        match self {
            TimeUnit::Seconds => 1_000_000_000,
            TimeUnit::Millis => 1_000_000,
            TimeUnit::Micros => 1_000,
            TimeUnit::Nanos => 1,
        }
    }

    /// The short name (`s`, `ms`, `us`, `ns`).
    pub fn as_str(self) -> &'static str {
        match self {
            TimeUnit::Seconds => "s",
            TimeUnit::Millis => "ms",
            TimeUnit::Micros => "us",
            TimeUnit::Nanos => "ns",
        }
    }
}

impl FromStr for TimeUnit {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "s" | "second" | "seconds" => Ok(TimeUnit::Seconds),
            "ms" | "millisecond" | "milliseconds" => Ok(TimeUnit::Millis),
            "us" | "µs" | "u" | "microsecond" | "microseconds" => Ok(TimeUnit::Micros),
            "ns" | "n" | "nanosecond" | "nanoseconds" => Ok(TimeUnit::Nanos),
            other => Err(format!(
                "unknown time unit {other:?}: expected s, ms, us or ns"
            )),
        }
    }
}

/// An integer count of `unit`s, in nanoseconds; `None` when out of range.
pub fn from_integer(count: i64, unit: TimeUnit) -> Option<i64> {
    count.checked_mul(unit.nanos())
}

/// A fractional count of `unit`s, in nanoseconds; `None` when not finite or out of range.
pub fn from_float(count: f64, unit: TimeUnit) -> Option<i64> {
    let nanos = count * unit.nanos() as f64;
    (nanos.is_finite() && nanos.abs() < 9.2e18).then(|| nanos.round() as i64)
}

/// A plain decimal (`-12.345`) of `unit`s, exactly (a float would lose nanoseconds at epoch
/// scale); `None` when the text is not such a decimal or is out of range.
fn from_decimal(text: &str, unit: TimeUnit) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let is_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !is_digits(whole) || !is_digits(fraction) {
        return None;
    }
    let scale = unit.nanos();
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    // Digits below one nanosecond are dropped (truncated).
    let precision = scale.ilog10() as usize;
    let kept = &fraction[..fraction.len().min(precision)];
    let fraction_ns = if kept.is_empty() {
        0
    } else {
        kept.parse::<i64>().ok()? * 10_i64.pow((precision - kept.len()) as u32)
    };
    let magnitude = whole.checked_mul(scale)?.checked_add(fraction_ns)?;
    Some(if negative { -magnitude } else { magnitude })
}

/// Text: RFC 3339, or a number of `unit`s.
pub fn from_text(text: &str, unit: TimeUnit) -> Result<i64, String> {
    let text = text.trim();
    if let Some(nanos) = from_decimal(text, unit) {
        return Ok(nanos);
    }
    if text
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'-' || b == b'+' || b == b'.')
        && text.bytes().any(|b| b.is_ascii_digit())
    {
        return Err(format!("{text} is out of range"));
    }
    if let Ok(count) = text.parse::<f64>() {
        return from_float(count, unit).ok_or_else(|| format!("{text} is out of range"));
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .and_then(|time| time.timestamp_nanos_opt())
        .ok_or_else(|| {
            format!(
                "{text:?} is not a time: use epoch {} or RFC 3339",
                unit.as_str()
            )
        })
}

/// Seconds with a fraction only when needed, for encoders: `1653040000`, `1653040000.25`.
pub fn format_seconds(timestamp_ns: i64) -> String {
    let sign = if timestamp_ns < 0 { "-" } else { "" };
    let magnitude = timestamp_ns.unsigned_abs();
    let seconds = magnitude / 1_000_000_000;
    let nanos = magnitude % 1_000_000_000;
    if nanos == 0 {
        format!("{sign}{seconds}")
    } else {
        let fraction = format!("{nanos:09}");
        format!("{sign}{seconds}.{}", fraction.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_take_the_unit_and_text_is_rfc3339() {
        assert_eq!(
            from_text("1653040000", TimeUnit::Seconds),
            Ok(1_653_040_000_000_000_000)
        );
        assert_eq!(
            from_text("1653040000.5", TimeUnit::Seconds),
            Ok(1_653_040_000_500_000_000)
        );
        assert_eq!(
            from_text("1653040000123", TimeUnit::Millis),
            Ok(1_653_040_000_123_000_000)
        );
        assert_eq!(
            from_text("1653040000123456", TimeUnit::Micros),
            Ok(1_653_040_000_123_456_000)
        );
        assert_eq!(
            from_text("1653040000123456789", TimeUnit::Nanos),
            Ok(1_653_040_000_123_456_789)
        );
        assert_eq!(
            from_text("2022-05-20T09:46:40Z", TimeUnit::Nanos),
            Ok(1_653_040_000_000_000_000)
        );
        assert!(from_text("99999999999999999", TimeUnit::Seconds).is_err());
        assert!(
            from_text("noon", TimeUnit::Seconds)
                .unwrap_err()
                .contains("noon")
        );
        assert_eq!("ms".parse(), Ok(TimeUnit::Millis));
        assert!("hours".parse::<TimeUnit>().is_err());
    }

    #[test]
    fn seconds_format_exactly() {
        assert_eq!(format_seconds(1_653_040_000_000_000_000), "1653040000");
        assert_eq!(format_seconds(1_653_040_000_250_000_000), "1653040000.25");
        assert_eq!(format_seconds(-1_500_000_000), "-1.5");
        for ns in [
            0,
            1,
            -1,
            1_653_040_000_123_456_789,
            -1_653_040_000_123_456_789,
        ] {
            // Exact: no float in between loses the nanoseconds.
            assert_eq!(from_text(&format_seconds(ns), TimeUnit::Seconds), Ok(ns));
        }
        assert_eq!(
            from_text("1.5e9", TimeUnit::Seconds),
            Ok(1_500_000_000_000_000_000)
        );
        assert_eq!(from_text(".5", TimeUnit::Seconds), Ok(500_000_000));
        assert_eq!(
            from_text("1.1234567891", TimeUnit::Seconds),
            Ok(1_123_456_789)
        );
    }
}
