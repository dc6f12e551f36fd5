//! Timestamps: MyMonit keeps nanoseconds since the Unix epoch (UTC) and speaks RFC 3339 or
//! epoch seconds on the wire.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// A time the client sent that is neither RFC 3339 nor epoch seconds, or is out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a time: use RFC 3339 (2026-01-05T00:00:00Z) or epoch seconds (1767571200, 1767571200.5)"
)]
pub struct TimeParseError(pub String);

/// Parses RFC 3339 (`2026-01-05T00:00:00Z`, any offset) or epoch seconds, integer or
/// fractional, into nanoseconds since the epoch.
pub fn parse_instant(text: &str) -> Result<i64, TimeParseError> {
    let text = text.trim();
    let error = || TimeParseError(text.to_string());
    if let Ok(parsed) = DateTime::parse_from_rfc3339(text) {
        return parsed
            .with_timezone(&Utc)
            .timestamp_nanos_opt()
            .ok_or_else(error);
    }
    if let Ok(seconds) = text.parse::<i64>() {
        return seconds.checked_mul(1_000_000_000).ok_or_else(error);
    }
    match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds.abs() < 9.2e9 => {
            Ok((seconds * 1e9).round() as i64)
        }
        _ => Err(error()),
    }
}

/// The instant as a UTC date-time.
pub fn to_datetime(timestamp_ns: i64) -> DateTime<Utc> {
    Utc.timestamp_nanos(timestamp_ns)
}

/// RFC 3339 in UTC ending in `Z`, with as many fractional digits as needed
/// (`2026-01-05T00:00:00Z`, `2026-01-05T00:00:00.250Z`).
pub fn format_rfc3339(timestamp_ns: i64) -> String {
    to_datetime(timestamp_ns).to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The HTTP date the original Flask API produced for a stored timestamp
/// (`Wed, 06 Apr 2022 07:00:00 GMT`), kept for the original routes' clients.
pub fn format_http_date(timestamp_ns: i64) -> String {
    to_datetime(timestamp_ns)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// Now, in nanoseconds since the epoch.
pub fn now_ns() -> i64 {
    Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_both_notations() {
        assert_eq!(parse_instant("1653040000"), Ok(1_653_040_000_000_000_000));
        assert_eq!(parse_instant("1653040000.5"), Ok(1_653_040_000_500_000_000));
        assert_eq!(
            parse_instant("2022-05-20T09:46:40Z"),
            Ok(1_653_040_000_000_000_000)
        );
        assert_eq!(
            parse_instant("2022-05-20T11:46:40+02:00"),
            Ok(1_653_040_000_000_000_000)
        );
        assert!(parse_instant("yesterday").is_err());
        assert!(parse_instant("1e300").is_err());
        assert!(parse_instant("NaN").is_err());
        assert!(parse_instant("99999999999999999").is_err());
    }

    #[test]
    fn formats_like_the_apis_promise() {
        assert_eq!(
            format_rfc3339(1_653_040_000_000_000_000),
            "2022-05-20T09:46:40Z"
        );
        assert_eq!(
            format_rfc3339(1_653_040_000_250_000_000),
            "2022-05-20T09:46:40.250Z"
        );
        assert_eq!(
            format_http_date(1_649_228_400_000_000_000),
            "Wed, 06 Apr 2022 07:00:00 GMT"
        );
    }

    proptest! {
        #[test]
        fn rfc3339_round_trips(ns in i64::MIN / 2..i64::MAX / 2) {
            prop_assert_eq!(parse_instant(&format_rfc3339(ns)), Ok(ns));
        }
    }
}
