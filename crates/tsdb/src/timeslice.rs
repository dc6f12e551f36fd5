//! Time slices: calendar units aligned in a time zone (static), or fixed durations starting
//! at the range's start (dynamic).

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveDateTime, TimeZone, Timelike};
use chrono_tz::Tz;

const NS_PER_SECOND: i64 = 1_000_000_000;

/// A calendar unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalendarUnit {
    /// Minutes.
    Minute,
    /// Hours.
    Hour,
    /// Days, from local midnight.
    Day,
    /// ISO weeks, from Monday midnight.
    Week,
    /// Months, from the first.
    Month,
    /// Years, from the 1st of January.
    Year,
}

impl CalendarUnit {
    fn nominal_ns(self) -> Option<i64> {
        match self {
            Self::Minute => Some(60 * NS_PER_SECOND),
            Self::Hour => Some(3600 * NS_PER_SECOND),
            Self::Day => Some(86_400 * NS_PER_SECOND),
            Self::Week => Some(7 * 86_400 * NS_PER_SECOND),
            Self::Month | Self::Year => None,
        }
    }
}

/// How a range is cut into buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeslice {
    /// Aligned to the calendar of the request's time zone.
    Calendar(CalendarUnit),
    /// Consecutive slices of this many nanoseconds from the start of the range.
    Fixed(i64),
}

/// A timeslice request that cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimesliceError {
    /// Not a unit nor a duration.
    #[error(
        "unknown timeslice {0:?}: use minute, hour, day, week, month, year, or a duration such as 15m, 1h or 7d"
    )]
    Unknown(String),
    /// A duration needs the caller to say it is not calendar-aligned.
    #[error(
        "timeslice {0:?} is a duration: add timeslice_is_static=false (slices start at `from`)"
    )]
    DurationNeedsDynamic(String),
    /// Months and years have no fixed length.
    #[error(
        "timeslice {0:?} has no fixed length, so it can only be static; use a duration such as 30d"
    )]
    NoFixedLength(String),
    /// More buckets than the server allows.
    #[error(
        "the range holds more than {0} buckets of this timeslice: narrow the range or widen the slice"
    )]
    TooManyBuckets(usize),
    /// Not a time zone of the IANA database.
    #[error("unknown time zone {0:?}: use an IANA name such as Europe/Paris")]
    UnknownZone(String),
}

/// Parses an IANA zone name.
pub fn parse_zone(name: &str) -> Result<Tz, TimesliceError> {
    name.parse()
        .map_err(|_| TimesliceError::UnknownZone(name.to_owned()))
}

impl Timeslice {
    /// Parses `timeslice` with `timeslice_is_static` (absent means static for calendar units).
    pub fn parse(text: &str, is_static: Option<bool>) -> Result<Self, TimesliceError> {
        let unit = match text {
            "minute" => Some(CalendarUnit::Minute),
            "hour" => Some(CalendarUnit::Hour),
            "day" => Some(CalendarUnit::Day),
            "week" => Some(CalendarUnit::Week),
            "month" => Some(CalendarUnit::Month),
            "year" => Some(CalendarUnit::Year),
            _ => None,
        };
        if let Some(unit) = unit {
            return match is_static {
                None | Some(true) => Ok(Self::Calendar(unit)),
                Some(false) => unit
                    .nominal_ns()
                    .map(Self::Fixed)
                    .ok_or_else(|| TimesliceError::NoFixedLength(text.to_owned())),
            };
        }
        let duration =
            parse_duration(text).ok_or_else(|| TimesliceError::Unknown(text.to_owned()))?;
        match is_static {
            Some(false) => Ok(Self::Fixed(duration)),
            _ => Err(TimesliceError::DurationNeedsDynamic(text.to_owned())),
        }
    }

    /// Bucket starts covering `[from, to)`, followed by the end of the last bucket: `k + 1`
    /// values for `k` buckets. Calendar buckets start at the unit containing `from`.
    pub fn boundaries(
        self,
        from: i64,
        to: i64,
        zone: Tz,
        max_buckets: usize,
    ) -> Result<Vec<i64>, TimesliceError> {
        let too_many = TimesliceError::TooManyBuckets(max_buckets);
        match self {
            Self::Fixed(step) => {
                let span = i128::from(to) - i128::from(from);
                let count = (span + i128::from(step) - 1) / i128::from(step);
                if count > max_buckets as i128 {
                    return Err(too_many);
                }
                Ok((0..=count as i64)
                    .map(|i| from.saturating_add(i.saturating_mul(step)))
                    .collect())
            }
            Self::Calendar(unit) => {
                if let Some(nominal) = unit.nominal_ns() {
                    // DST shortens a day by an hour at most; this bounds the count early.
                    let estimate =
                        (i128::from(to) - i128::from(from)) / i128::from(nominal - nominal / 24);
                    if estimate > max_buckets as i128 + 1 {
                        return Err(too_many);
                    }
                }
                let mut out = vec![floor(unit, from, zone)];
                while out[out.len() - 1] < to {
                    if out.len() > max_buckets {
                        return Err(too_many);
                    }
                    out.push(next(unit, out[out.len() - 1], zone));
                }
                Ok(out)
            }
        }
    }
}

/// `15m`, `1h`, `7d`, `30s`, `2w` as nanoseconds.
fn parse_duration(text: &str) -> Option<i64> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().ok().filter(|n| *n > 0)?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    number.checked_mul(seconds)?.checked_mul(NS_PER_SECOND)
}

fn to_datetime(ns: i64, zone: Tz) -> DateTime<Tz> {
    DateTime::from_timestamp_nanos(ns).with_timezone(&zone)
}

/// Nanoseconds of an instant, clamped to what an `i64` holds (before 1677 or after 2262 the
/// count does not fit).
fn clamped_nanos<Z: TimeZone>(instant: &DateTime<Z>) -> i64 {
    instant
        .timestamp_nanos_opt()
        .unwrap_or(if instant.timestamp() < 0 {
            i64::MIN
        } else {
            i64::MAX
        })
}

/// The instant of a local time; in a DST gap, the first instant after it.
fn resolve(local: NaiveDateTime, zone: Tz) -> i64 {
    let mut probe = local;
    for _ in 0..48 {
        if let Some(earliest) = zone.from_local_datetime(&probe).earliest() {
            return clamped_nanos(&earliest);
        }
        probe += chrono::Duration::minutes(30);
    }
    clamped_nanos(&local.and_utc())
}

fn midnight(date: NaiveDate) -> NaiveDateTime {
    date.and_hms_opt(0, 0, 0).unwrap_or_default()
}

/// Start of the unit containing `ns`.
fn floor(unit: CalendarUnit, ns: i64, zone: Tz) -> i64 {
    let local = to_datetime(ns, zone);
    match unit {
        // Minutes and hours keep the instant's own offset, so the repeated hour of a
        // DST change is two buckets, not one.
        CalendarUnit::Minute | CalendarUnit::Hour => {
            let offset = local.naive_local().and_utc().timestamp() - local.timestamp();
            let step = if unit == CalendarUnit::Minute {
                60
            } else {
                3600
            };
            let local_seconds = ns.div_euclid(NS_PER_SECOND) + offset;
            let start = i128::from(local_seconds - local_seconds.rem_euclid(step) - offset)
                * i128::from(NS_PER_SECOND);
            start.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
        }
        CalendarUnit::Day => resolve(midnight(local.date_naive()), zone),
        CalendarUnit::Week => {
            let back = u64::from(local.weekday().num_days_from_monday());
            let monday = local.date_naive() - Days::new(back);
            resolve(midnight(monday), zone)
        }
        CalendarUnit::Month => {
            let first = local.date_naive().with_day(1).unwrap_or_default();
            resolve(midnight(first), zone)
        }
        CalendarUnit::Year => {
            let first = NaiveDate::from_ymd_opt(local.year(), 1, 1).unwrap_or_default();
            resolve(midnight(first), zone)
        }
    }
}

/// Start of the unit after the one starting at `start`.
fn next(unit: CalendarUnit, start: i64, zone: Tz) -> i64 {
    let date = to_datetime(start, zone).date_naive();
    let following = match unit {
        CalendarUnit::Minute => return floor(unit, start.saturating_add(60 * NS_PER_SECOND), zone),
        CalendarUnit::Hour => {
            let candidate = floor(unit, start.saturating_add(3600 * NS_PER_SECOND), zone);
            // A half-hour offset change can make the next floor fall back onto `start`.
            return if candidate > start {
                candidate
            } else {
                start.saturating_add(3600 * NS_PER_SECOND)
            };
        }
        CalendarUnit::Day => date.checked_add_days(Days::new(1)),
        CalendarUnit::Week => date.checked_add_days(Days::new(7)),
        CalendarUnit::Month => date.checked_add_months(Months::new(1)),
        CalendarUnit::Year => date.checked_add_months(Months::new(12)),
    };
    let Some(following) = following else {
        return i64::MAX;
    };
    let candidate = resolve(midnight(following), zone);
    if candidate > start {
        candidate
    } else {
        start.saturating_add(3600 * NS_PER_SECOND)
    }
}

/// Seconds since midnight of `ns` in `zone` (used by tests and callers that label buckets).
pub fn local_time_of_day(ns: i64, zone: Tz) -> u32 {
    to_datetime(ns, zone).num_seconds_from_midnight()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn at(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap()
    }

    fn utc() -> Tz {
        chrono_tz::UTC
    }

    #[test]
    fn names_and_durations_parse() {
        assert_eq!(
            Timeslice::parse("hour", None),
            Ok(Timeslice::Calendar(CalendarUnit::Hour))
        );
        assert_eq!(
            Timeslice::parse("hour", Some(false)),
            Ok(Timeslice::Fixed(3600 * NS_PER_SECOND))
        );
        assert_eq!(
            Timeslice::parse("15m", Some(false)),
            Ok(Timeslice::Fixed(900 * NS_PER_SECOND))
        );
        assert_eq!(
            Timeslice::parse("7d", Some(false)),
            Ok(Timeslice::Fixed(7 * 86_400 * NS_PER_SECOND))
        );
        assert!(matches!(
            Timeslice::parse("15m", None),
            Err(TimesliceError::DurationNeedsDynamic(_))
        ));
        assert!(matches!(
            Timeslice::parse("15m", Some(true)),
            Err(TimesliceError::DurationNeedsDynamic(_))
        ));
        assert!(matches!(
            Timeslice::parse("month", Some(false)),
            Err(TimesliceError::NoFixedLength(_))
        ));
        for bad in ["fortnight", "0m", "m", "15", "-1h", "1.5h", ""] {
            assert!(
                matches!(
                    Timeslice::parse(bad, Some(false)),
                    Err(TimesliceError::Unknown(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn fixed_slices_start_exactly_at_from() {
        let from = at("2026-01-05T10:07:00Z");
        let b = Timeslice::Fixed(900 * NS_PER_SECOND)
            .boundaries(from, from + 3600 * NS_PER_SECOND, utc(), 100)
            .unwrap();
        assert_eq!(b.len(), 5);
        assert_eq!(b[0], from);
        assert_eq!(b[4], from + 3600 * NS_PER_SECOND);
    }

    #[test]
    fn iso_weeks_start_on_monday() {
        // 2026-01-07 is a Wednesday.
        let b = Timeslice::Calendar(CalendarUnit::Week)
            .boundaries(
                at("2026-01-07T12:00:00Z"),
                at("2026-01-20T00:00:00Z"),
                utc(),
                100,
            )
            .unwrap();
        assert_eq!(
            b,
            vec![
                at("2026-01-05T00:00:00Z"),
                at("2026-01-12T00:00:00Z"),
                at("2026-01-19T00:00:00Z"),
                at("2026-01-26T00:00:00Z")
            ]
        );
    }

    #[test]
    fn months_and_leap_years() {
        let b = Timeslice::Calendar(CalendarUnit::Month)
            .boundaries(
                at("2024-01-31T00:00:00Z"),
                at("2024-03-15T00:00:00Z"),
                utc(),
                100,
            )
            .unwrap();
        assert_eq!(
            b,
            vec![
                at("2024-01-01T00:00:00Z"),
                at("2024-02-01T00:00:00Z"),
                at("2024-03-01T00:00:00Z"),
                at("2024-04-01T00:00:00Z")
            ]
        );
        let days = Timeslice::Calendar(CalendarUnit::Day)
            .boundaries(
                at("2024-02-28T00:00:00Z"),
                at("2024-03-01T00:00:00Z"),
                utc(),
                100,
            )
            .unwrap();
        assert_eq!(days.len(), 3, "2024-02-29 exists");
        let years = Timeslice::Calendar(CalendarUnit::Year)
            .boundaries(
                at("2024-06-01T00:00:00Z"),
                at("2025-06-01T00:00:00Z"),
                utc(),
                100,
            )
            .unwrap();
        assert_eq!(
            years,
            vec![
                at("2024-01-01T00:00:00Z"),
                at("2025-01-01T00:00:00Z"),
                at("2026-01-01T00:00:00Z")
            ]
        );
    }

    #[test]
    fn days_follow_daylight_saving_time_in_a_zone() {
        let paris = parse_zone("Europe/Paris").unwrap();
        // 2026-03-29: clocks go from 02:00 to 03:00 in Paris, a 23-hour day.
        let b = Timeslice::Calendar(CalendarUnit::Day)
            .boundaries(
                at("2026-03-28T12:00:00Z"),
                at("2026-03-30T12:00:00Z"),
                paris,
                100,
            )
            .unwrap();
        assert_eq!(
            b,
            vec![
                at("2026-03-27T23:00:00Z"),
                at("2026-03-28T23:00:00Z"),
                at("2026-03-29T22:00:00Z"),
                at("2026-03-30T22:00:00Z")
            ]
        );
        assert_eq!(b[2] - b[1], 23 * 3600 * NS_PER_SECOND);
        // 2026-10-25: 03:00 back to 02:00, a 25-hour day; hours stay one hour long.
        let hours = Timeslice::Calendar(CalendarUnit::Hour)
            .boundaries(
                at("2026-10-24T22:00:00Z"),
                at("2026-10-25T23:00:00Z"),
                paris,
                100,
            )
            .unwrap();
        assert_eq!(hours.len(), 26);
        assert!(
            hours
                .windows(2)
                .all(|w| w[1] - w[0] == 3600 * NS_PER_SECOND)
        );
        let days = Timeslice::Calendar(CalendarUnit::Day)
            .boundaries(
                at("2026-10-24T22:00:00Z"),
                at("2026-10-25T23:00:00Z"),
                paris,
                100,
            )
            .unwrap();
        assert_eq!(days[1] - days[0], 25 * 3600 * NS_PER_SECOND);
        assert_eq!(local_time_of_day(days[1], paris), 0);
    }

    #[test]
    fn half_hour_zones_align_hours_locally() {
        let kolkata = parse_zone("Asia/Kolkata").unwrap();
        let b = Timeslice::Calendar(CalendarUnit::Hour)
            .boundaries(
                at("2026-01-05T10:10:00Z"),
                at("2026-01-05T11:00:00Z"),
                kolkata,
                100,
            )
            .unwrap();
        assert_eq!(b[0], at("2026-01-05T09:30:00Z"));
    }

    // Anywhere in the 64-bit range, even where dates leave what nanoseconds hold, the slices
    // never panic, start at or before `from`, rise strictly and reach `to`.
    proptest! {
        #[test]
        fn slices_are_sound_over_the_whole_range(
            from in any::<i64>(),
            span in 0i64..400 * 86_400 * NS_PER_SECOND,
            near_an_end in any::<bool>(),
            unit in 0usize..6,
            zone in 0usize..3,
        ) {
            let from = if near_an_end {
                if from < 0 { i64::MIN + from.rem_euclid(86_400 * NS_PER_SECOND) } else { i64::MAX - span - from.rem_euclid(86_400 * NS_PER_SECOND) }
            } else {
                from
            };
            let to = from.saturating_add(span.max(1));
            let unit = [
                CalendarUnit::Minute,
                CalendarUnit::Hour,
                CalendarUnit::Day,
                CalendarUnit::Week,
                CalendarUnit::Month,
                CalendarUnit::Year,
            ][unit];
            let zone: Tz = ["UTC", "Europe/Paris", "Asia/Kolkata"][zone].parse().unwrap();
            if let Ok(bounds) = Timeslice::Calendar(unit).boundaries(from, to, zone, 1_000_000) {
                prop_assert!(bounds.len() >= 2, "{bounds:?}");
                prop_assert!(bounds[0] <= from);
                prop_assert!(bounds.windows(2).all(|pair| pair[0] < pair[1]), "{bounds:?}");
                prop_assert!(bounds[bounds.len() - 1] >= to);
            }
            if let Ok(bounds) = Timeslice::Fixed(3_600 * NS_PER_SECOND).boundaries(from, to, zone, 1_000_000) {
                prop_assert!(bounds[0] == from);
                prop_assert!(bounds[bounds.len() - 1] >= to);
            }
        }
    }

    #[test]
    fn a_month_of_1677_has_buckets() {
        let from = -9_223_372_036_854_775_807;
        let bounds = Timeslice::Calendar(CalendarUnit::Month)
            .boundaries(from, from + 86_400 * NS_PER_SECOND, utc(), 1000)
            .unwrap();
        assert_eq!(bounds.len(), 2, "{bounds:?}");
        assert_eq!(bounds[0], i64::MIN);
    }

    #[test]
    fn too_many_buckets_is_an_error_before_any_work() {
        let err = Timeslice::Calendar(CalendarUnit::Minute).boundaries(0, i64::MAX, utc(), 1000);
        assert_eq!(err, Err(TimesliceError::TooManyBuckets(1000)));
        let err = Timeslice::Fixed(1).boundaries(i64::MIN, i64::MAX, utc(), 1000);
        assert_eq!(err, Err(TimesliceError::TooManyBuckets(1000)));
        assert!(parse_zone("Mars/Olympus").is_err());
    }
}
