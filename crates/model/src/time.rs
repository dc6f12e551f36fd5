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

const NS_PER_DAY: i64 = 86_400_000_000_000;

/// Writes timestamps exactly as [`format_rfc3339`] does, without an allocation each: the
/// date part is formatted once per day and reused, the time of day is plain arithmetic. For
/// pages of points, which mostly share a day.
#[derive(Debug, Default)]
pub struct Rfc3339Writer {
    /// The day (since the epoch) whose `YYYY-MM-DDT` is in `date`.
    day: Option<i64>,
    date: String,
}

impl Rfc3339Writer {
    /// Appends the timestamp's RFC 3339 form to `out`.
    pub fn write(&mut self, timestamp_ns: i64, out: &mut Vec<u8>) {
        let day = timestamp_ns.div_euclid(NS_PER_DAY);
        let Some(midnight) = day.checked_mul(NS_PER_DAY) else {
            out.extend_from_slice(format_rfc3339(timestamp_ns).as_bytes());
            return;
        };
        if self.day != Some(day) {
            let text = format_rfc3339(midnight);
            let Some(date) = text.strip_suffix("00:00:00Z") else {
                out.extend_from_slice(format_rfc3339(timestamp_ns).as_bytes());
                return;
            };
            self.date.clear();
            self.date.push_str(date);
            self.day = Some(day);
        }
        out.extend_from_slice(self.date.as_bytes());
        let of_day = timestamp_ns - midnight;
        let seconds = of_day / 1_000_000_000;
        let fraction = of_day % 1_000_000_000;
        push_digits(out, (seconds / 3600) as u32, 2);
        out.push(b':');
        push_digits(out, (seconds / 60 % 60) as u32, 2);
        out.push(b':');
        push_digits(out, (seconds % 60) as u32, 2);
        // As chrono's `SecondsFormat::AutoSi`: milli-, micro- or nanoseconds, whichever
        // shows every non-zero digit.
        if fraction != 0 {
            out.push(b'.');
            if fraction % 1_000_000 == 0 {
                push_digits(out, (fraction / 1_000_000) as u32, 3);
            } else if fraction % 1_000 == 0 {
                push_digits(out, (fraction / 1_000) as u32, 6);
            } else {
                push_digits(out, fraction as u32, 9);
            }
        }
        out.push(b'Z');
    }
}

/// Appends `value` in decimal, zero-padded to `width` digits.
fn push_digits(out: &mut Vec<u8>, value: u32, width: usize) {
    let mut digits = [b'0'; 10];
    let mut rest = value;
    for slot in digits[..width].iter_mut().rev() {
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    out.extend_from_slice(&digits[..width]);
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

    #[test]
    fn the_writer_writes_what_format_writes_at_the_edges() {
        let mut writer = Rfc3339Writer::default();
        for ns in [
            i64::MIN,
            i64::MIN + 1,
            -1,
            0,
            1,
            999_999_999,
            NS_PER_DAY - 1,
            NS_PER_DAY,
            1_653_040_000_250_000_000,
            1_653_040_000_250_001_000,
            1_653_040_000_250_001_001,
            i64::MAX,
        ] {
            let mut out = Vec::new();
            writer.write(ns, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), format_rfc3339(ns), "{ns}");
        }
    }

    proptest! {
        #[test]
        fn the_writer_writes_what_format_writes(
            start in any::<i64>(),
            steps in proptest::collection::vec(0i64..2 * NS_PER_DAY, 0..20),
        ) {
            let mut writer = Rfc3339Writer::default();
            let mut ns = start;
            for step in std::iter::once(0).chain(steps) {
                ns = ns.saturating_add(step);
                let mut out = Vec::new();
                writer.write(ns, &mut out);
                prop_assert_eq!(String::from_utf8(out).unwrap(), format_rfc3339(ns));
            }
        }

        #[test]
        fn rfc3339_round_trips(ns in i64::MIN / 2..i64::MAX / 2) {
            prop_assert_eq!(parse_instant(&format_rfc3339(ns)), Ok(ns));
        }
    }
}
