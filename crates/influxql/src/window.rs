//! `GROUP BY time(…)` windows and `fill(…)`, computed as InfluxDB 1.x computes them: windows
//! aligned to the epoch (shifted by the offset, and by the zone's offset with `tz`), the
//! first one containing the range's start, the last one containing its end.

use chrono::{Offset, TimeZone};
use chrono_tz::Tz;

use crate::ast::Fill;

/// The zone's offset from UTC at an instant, in nanoseconds.
fn zone_offset(zone: Option<Tz>, ns: i64) -> i64 {
    let Some(zone) = zone else { return 0 };
    let utc = chrono::DateTime::from_timestamp_nanos(ns).naive_utc();
    i64::from(zone.offset_from_utc_datetime(&utc).fix().local_minus_utc()) * 1_000_000_000
}

/// The window `[start, end)` holding `t`.
pub fn window(t: i64, interval: i64, offset: i64, zone: Option<Tz>) -> (i64, i64) {
    let t = t - offset;
    let zone_at_t = zone_offset(zone, t);
    let dt = (t + zone_at_t).rem_euclid(interval);
    let mut start = t - dt;
    // At midnight local time the offset may differ from the one at `t` (a change of
    // daylight saving time in between): start at the real local boundary.
    if zone.is_some() {
        let change = zone_at_t - zone_offset(zone, start);
        if change != 0 && change.abs() < interval {
            start += change;
        }
    }
    start += offset;
    let mut end = t + (interval - dt) + offset;
    if zone.is_some() {
        let change = zone_at_t - zone_offset(zone, end);
        if change > 0 || (change < 0 && -change < interval) {
            end += change;
        }
    }
    (start, end)
}

/// The starts of the windows from the one holding `from` to the one holding `to`
/// (inclusive), at most `max` of them; `None` when there would be more.
pub fn window_starts(
    from: i64,
    to: i64,
    interval: i64,
    offset: i64,
    zone: Option<Tz>,
    max: usize,
) -> Option<Vec<i64>> {
    let mut starts = Vec::new();
    let mut t = from;
    while t <= to {
        if starts.len() == max {
            return None;
        }
        let (start, end) = window(t, interval, offset, zone);
        starts.push(start);
        if end <= t {
            break;
        }
        t = end;
    }
    Some(starts)
}

/// Fills the empty windows of one column (`None`) as `fill` says; `fill(none)` is the
/// caller's (it drops rows whose every column is empty).
pub fn fill_column(times: &[i64], values: &mut [Option<f64>], fill: Fill) {
    match fill {
        Fill::Null | Fill::None => {}
        Fill::Number(number) => {
            for value in values.iter_mut() {
                value.get_or_insert(number);
            }
        }
        Fill::Previous => {
            let mut previous = None;
            for value in values.iter_mut() {
                match value {
                    Some(v) => previous = Some(*v),
                    None => *value = previous,
                }
            }
        }
        Fill::Linear => {
            let mut previous: Option<usize> = None;
            for index in 0..values.len() {
                if values[index].is_none() {
                    continue;
                }
                if let Some(before) = previous
                    && index > before + 1
                {
                    let (t0, v0) = (times[before], values[before].unwrap_or_default());
                    let (t1, v1) = (times[index], values[index].unwrap_or_default());
                    // InfluxDB's formula, for the same rounding.
                    let slope = (v1 - v0) / (t1 - t0) as f64;
                    for gap in before + 1..index {
                        values[gap] = Some(slope * (times[gap] - t0) as f64 + v0);
                    }
                }
                previous = Some(index);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000_000_000;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;

    #[test]
    fn windows_align_to_the_epoch() {
        assert_eq!(
            window(90 * 1_000_000_000, MINUTE, 0, None),
            (MINUTE, 2 * MINUTE)
        );
        assert_eq!(window(-1, MINUTE, 0, None), (-MINUTE, 0));
        // An offset shifts the grid.
        assert_eq!(
            window(90 * 1_000_000_000, MINUTE, 15 * 1_000_000_000, None),
            (75 * 1_000_000_000, 135 * 1_000_000_000)
        );
        assert_eq!(
            window_starts(30 * 1_000_000_000, 3 * MINUTE, MINUTE, 0, None, 100),
            Some(vec![0, MINUTE, 2 * MINUTE, 3 * MINUTE])
        );
        assert_eq!(window_starts(0, DAY, MINUTE, 0, None, 100), None);
    }

    #[test]
    fn days_in_a_zone_start_at_local_midnight() {
        let zurich: Tz = "Europe/Zurich".parse().unwrap_or(Tz::UTC);
        // 2024-01-15T12:00:00Z is 13:00 in Zurich (UTC+1): the day began at 23:00 UTC.
        let noon = 1_705_320_000 * 1_000_000_000;
        let (start, end) = window(noon, DAY, 0, Some(zurich));
        assert_eq!(start, noon - 13 * HOUR);
        assert_eq!(end, start + DAY);
        // 2024-03-31 has 23 hours in Zurich.
        let spring = 1_711_886_400 * 1_000_000_000; // 2024-03-31T12:00:00Z
        let (start, end) = window(spring, DAY, 0, Some(zurich));
        assert_eq!(start, 1_711_839_600 * 1_000_000_000); // 2024-03-30T23:00:00Z
        assert_eq!(end - start, 23 * HOUR);
    }

    #[test]
    fn fills() {
        let times = [0, 10, 20, 30, 40];
        let column = [None, Some(1.0), None, Some(3.0), None];
        let filled = |fill| {
            let mut values = column;
            fill_column(&times, &mut values, fill);
            values
        };
        assert_eq!(filled(Fill::Null), column);
        assert_eq!(
            filled(Fill::Number(0.0)),
            [Some(0.0), Some(1.0), Some(0.0), Some(3.0), Some(0.0)]
        );
        assert_eq!(
            filled(Fill::Previous),
            [None, Some(1.0), Some(1.0), Some(3.0), Some(3.0)]
        );
        assert_eq!(
            filled(Fill::Linear),
            [None, Some(1.0), Some(2.0), Some(3.0), None]
        );
    }
}
