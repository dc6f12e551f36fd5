//! A chunk: up to a few thousand points of one series, sorted by `(ts, seq)`, compressed.
//!
//! Layout: the version, the point count (LEB128), in version 2 the keys of the chunk's
//! extremes (see [`Extremes`]), then three integer columns as [`crate::bits::encode_ints`]
//! writes them: timestamps, arrival numbers, values. Version 1 (no extremes) is written when
//! the extremes cannot be told apart from the summary's (a NaN value, zeros of both signs);
//! both are read. Values are
//! stored as decimals when every value of the chunk is one: `v = i / 10^e` exactly (the idea of
//! ALP, Afroozeh et al., SIGMOD 2024), so `230.123` costs the bits of its spread around the
//! chunk's minimum rather than 64. Otherwise the IEEE bit patterns are stored (as deltas when
//! that is smaller). Decoding gives back every value bit for bit.

use crate::{
    Point,
    bits::{
        DecodeError, Reader, decode_ints, encode_ints, put_varint, skip_ints, unzigzag, zigzag,
    },
};

/// Points per chunk the compactor aims for: large enough to amortise headers, small enough
/// that a short window decodes little.
pub const TARGET_POINTS: usize = 1024;
/// No valid chunk holds more points; a larger count in a header means corruption.
pub const MAX_POINTS: usize = 1 << 20;

const VERSION_PLAIN: u8 = 1;
const VERSION_EXTREMES: u8 = 2;
const VALUES_DECIMAL: u8 = 0;
const VALUES_BITS: u8 = 1;
const MAX_EXPONENT: usize = 15;
const POW10: [f64; MAX_EXPONENT + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];
/// Integers up to 2^53 convert to f64 exactly.
const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0;

/// What queries can use without decoding: the chunk's bounds and aggregates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Points in the chunk (at least one).
    pub count: u64,
    /// Key `(ts, seq)` of the first point.
    pub start: (i64, i64),
    /// Key `(ts, seq)` of the last point.
    pub end: (i64, i64),
    /// Sum of the values.
    pub sum: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Sum of squared deviations from the chunk's mean (for the standard deviation).
    pub m2: f64,
    /// Value of the first point.
    pub first: f64,
    /// Value of the last point.
    pub last: f64,
}

impl Summary {
    /// The summary of points sorted by key; `None` when there are none.
    pub fn of(points: &[Point]) -> Option<Self> {
        let (first, last) = (points.first()?, points.last()?);
        let (sum, min, max, m2) = moments(points.iter().map(|p| p.value));
        Some(Self {
            count: points.len() as u64,
            start: first.key(),
            end: last.key(),
            sum,
            min,
            max,
            m2,
            first: first.value,
            last: last.value,
        })
    }
}

/// The keys of the points a chart's pixel column keeps as a chunk's smallest and largest
/// value: the first point, in key order, holding the summary's `min`, and the first holding
/// its `max` (what adding the points in order to an M4 column keeps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extremes {
    /// Key `(ts, seq)` of the first point holding the least value.
    pub min: (i64, i64),
    /// Key `(ts, seq)` of the first point holding the greatest value.
    pub max: (i64, i64),
}

impl Extremes {
    /// The extremes of points sorted by key, when they are the summary's `min` and `max` bit
    /// for bit: not with a NaN value (comparisons skip it, `min` ignores it) or where the
    /// least value is a zero of either sign.
    pub fn of(points: &[Point]) -> Option<Self> {
        let first = points.first()?;
        let (mut least, mut greatest) = (first, first);
        for point in points {
            if point.value.is_nan() {
                return None;
            }
            if point.value < least.value {
                least = point;
            }
            if point.value > greatest.value {
                greatest = point;
            }
        }
        // The summary's own computation, so that "bit for bit" holds by construction.
        let (_, min, max, _) = moments(points.iter().map(|p| p.value));
        (least.value.to_bits() == min.to_bits() && greatest.value.to_bits() == max.to_bits()).then(
            || Self {
                min: least.key(),
                max: greatest.key(),
            },
        )
    }
}

/// Sum, minimum, maximum and sum of squared deviations from the mean of some values (two
/// passes: the spread from the mean, not from running sums, keeps its precision).
pub(crate) fn moments(values: impl Iterator<Item = f64> + Clone) -> (f64, f64, f64, f64) {
    let mut count = 0usize;
    let mut sum = 0.0;
    let mut min = f64::INFINITY;
    let mut max = f64::NEG_INFINITY;
    for value in values.clone() {
        count += 1;
        sum += value;
        min = min.min(value);
        max = max.max(value);
    }
    let mean = sum / count as f64;
    let m2 = values.map(|v| (v - mean) * (v - mean)).sum();
    (sum, min, max, m2)
}

/// A decoded chunk, column by column (what statistics read fastest).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Columns {
    /// Timestamps, ascending.
    pub ts: Vec<i64>,
    /// Arrival numbers.
    pub seq: Vec<i64>,
    /// Values.
    pub values: Vec<f64>,
}

impl Columns {
    /// Number of points.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// The points, in order.
    pub fn points(&self) -> impl Iterator<Item = Point> + '_ {
        self.ts
            .iter()
            .zip(&self.seq)
            .zip(&self.values)
            .map(|((&ts, &seq), &value)| Point { ts, seq, value })
    }
}

fn decimal_at(value: f64, exponent: usize) -> Option<i64> {
    let scaled = (value * POW10[exponent]).round();
    // NaN and infinities fail this test too.
    if scaled.is_nan() || scaled.abs() >= EXACT_INTEGER_LIMIT {
        return None;
    }
    let integer = scaled as i64;
    ((integer as f64 / POW10[exponent]).to_bits() == value.to_bits()).then_some(integer)
}

/// The decimal form of all values at one exponent, if they all have one.
fn as_decimals(values: impl Iterator<Item = f64> + Clone) -> Option<(u8, Vec<i64>)> {
    let mut exponent = 0;
    for value in values.clone() {
        while decimal_at(value, exponent).is_none() {
            exponent += 1;
            if exponent > MAX_EXPONENT {
                return None;
            }
        }
    }
    let integers = values
        .map(|value| decimal_at(value, exponent))
        .collect::<Option<Vec<_>>>()?;
    Some((exponent as u8, integers))
}

/// Encodes points sorted by key (the caller sorts; the compactor merges sorted runs).
pub fn encode(points: &[Point]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + points.len() * 2);
    match (points.first(), Extremes::of(points)) {
        (Some(first), Some(extremes)) => {
            out.push(VERSION_EXTREMES);
            put_varint(&mut out, points.len() as u64);
            // As offsets from the first point's key: a few bytes each.
            for (ts, seq) in [extremes.min, extremes.max] {
                put_varint(&mut out, ts.wrapping_sub(first.ts) as u64);
                put_varint(&mut out, zigzag(seq.wrapping_sub(first.seq)));
            }
        }
        _ => {
            out.push(VERSION_PLAIN);
            put_varint(&mut out, points.len() as u64);
        }
    }
    let ts: Vec<i64> = points.iter().map(|p| p.ts).collect();
    encode_ints(&mut out, &ts);
    let seq: Vec<i64> = points.iter().map(|p| p.seq).collect();
    encode_ints(&mut out, &seq);
    match as_decimals(points.iter().map(|p| p.value)) {
        Some((exponent, integers)) => {
            out.push(VALUES_DECIMAL);
            out.push(exponent);
            encode_ints(&mut out, &integers);
        }
        None => {
            out.push(VALUES_BITS);
            let bits: Vec<i64> = points.iter().map(|p| p.value.to_bits() as i64).collect();
            encode_ints(&mut out, &bits);
        }
    }
    out
}

/// Decodes a chunk written by [`encode`].
pub fn decode(bytes: &[u8]) -> Result<Columns, DecodeError> {
    let mut reader = Reader::new(bytes);
    let (count, _) = read_header(&mut reader)?;
    let mut columns = Columns::default();
    decode_ints(&mut reader, count, &mut columns.ts)?;
    decode_ints(&mut reader, count, &mut columns.seq)?;
    read_values(&mut reader, count, &mut columns.values)?;
    if !reader.is_at_end() {
        return Err(DecodeError::Corrupt("trailing bytes"));
    }
    Ok(columns)
}

/// Appends the values of a chunk written by [`encode`] to `out`, leaving its timestamps and
/// arrival numbers undecoded (what a statistic over a chunk inside one bucket needs).
pub fn decode_values(bytes: &[u8], out: &mut Vec<f64>) -> Result<(), DecodeError> {
    let mut reader = Reader::new(bytes);
    let (count, _) = read_header(&mut reader)?;
    skip_ints(&mut reader, count)?;
    skip_ints(&mut reader, count)?;
    read_values(&mut reader, count, out)?;
    if !reader.is_at_end() {
        return Err(DecodeError::Corrupt("trailing bytes"));
    }
    Ok(())
}

/// The keys of a chunk's extremes if its encoder recorded them (version 2), reading only its
/// header; `first` is the key of its first point (the summary's `start`).
pub fn extremes(bytes: &[u8], first: (i64, i64)) -> Result<Option<Extremes>, DecodeError> {
    let (_, offsets) = read_header(&mut Reader::new(bytes))?;
    Ok(offsets.map(|[min_ts, min_seq, max_ts, max_seq]| Extremes {
        min: (
            first.0.wrapping_add(min_ts as i64),
            first.1.wrapping_add(unzigzag(min_seq)),
        ),
        max: (
            first.0.wrapping_add(max_ts as i64),
            first.1.wrapping_add(unzigzag(max_seq)),
        ),
    }))
}

/// Reads the version, the point count and, in version 2, the extremes' offsets as stored.
fn read_header(reader: &mut Reader<'_>) -> Result<(usize, Option<[u64; 4]>), DecodeError> {
    let version = reader.byte()?;
    if version != VERSION_PLAIN && version != VERSION_EXTREMES {
        return Err(DecodeError::Corrupt("unknown chunk version"));
    }
    let count = usize::try_from(reader.varint()?).unwrap_or(usize::MAX);
    if count > MAX_POINTS {
        return Err(DecodeError::Corrupt("point count out of range"));
    }
    if version == VERSION_PLAIN {
        return Ok((count, None));
    }
    let mut offsets = [0u64; 4];
    for offset in &mut offsets {
        *offset = reader.varint()?;
    }
    Ok((count, Some(offsets)))
}

/// Reads the value column of `count` points, appending to `out`.
fn read_values(
    reader: &mut Reader<'_>,
    count: usize,
    out: &mut Vec<f64>,
) -> Result<(), DecodeError> {
    let mut integers = Vec::new();
    match reader.byte()? {
        VALUES_DECIMAL => {
            let exponent = usize::from(reader.byte()?);
            let scale = *POW10
                .get(exponent)
                .ok_or(DecodeError::Corrupt("decimal exponent out of range"))?;
            decode_ints(reader, count, &mut integers)?;
            out.extend(integers.iter().map(|&i| i as f64 / scale));
        }
        VALUES_BITS => {
            decode_ints(reader, count, &mut integers)?;
            out.extend(integers.iter().map(|&i| f64::from_bits(i as u64)));
        }
        _ => return Err(DecodeError::Corrupt("unknown value encoding")),
    }
    Ok(())
}

/// Cuts a sorted run into chunks of at most `max` points, evenly (2,100 points at 1,024 make
/// three chunks of 700, not two full ones and a stub).
pub fn split_evenly(points: &[Point], max: usize) -> impl Iterator<Item = &[Point]> {
    let max = max.max(1);
    let pieces = points.len().div_ceil(max).max(1);
    let base = points.len() / pieces;
    let extra = points.len() % pieces;
    let mut start = 0;
    (0..pieces).filter_map(move |i| {
        let len = base + usize::from(i < extra);
        let piece = points.get(start..start + len)?;
        start += len;
        (!piece.is_empty()).then_some(piece)
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn series(values: &[f64]) -> Vec<Point> {
        values
            .iter()
            .enumerate()
            .map(|(i, &value)| Point {
                ts: 1_704_067_200_000_000_000 + i as i64 * 1_000_000_000,
                seq: 1 + 4 * i as i64,
                value,
            })
            .collect()
    }

    fn assert_round_trip(points: &[Point]) -> usize {
        let bytes = encode(points);
        let columns = decode(&bytes).unwrap();
        let mut values = vec![7.0];
        decode_values(&bytes, &mut values).unwrap();
        assert_eq!(values.len(), points.len() + 1, "values appended");
        for (a, b) in values[1..].iter().zip(points) {
            assert_eq!(a.to_bits(), b.value.to_bits());
        }
        let decoded: Vec<Point> = columns.points().collect();
        assert_eq!(decoded.len(), points.len());
        for (a, b) in decoded.iter().zip(points) {
            assert_eq!(
                (a.ts, a.seq, a.value.to_bits()),
                (b.ts, b.seq, b.value.to_bits())
            );
        }
        bytes.len()
    }

    #[test]
    fn three_decimal_readings_take_about_their_noise_in_bits() {
        // 230 V ± 0.5 V of noise at 3 decimals: about 12 bits of spread per point.
        let values: Vec<f64> = (0..1024)
            .map(|i| {
                let noise = ((i * 7919) % 2001) as f64 - 1000.0;
                format!("{:.3}", 230.0 + noise / 1000.0).parse().unwrap()
            })
            .collect();
        let size = assert_round_trip(&series(&values));
        assert!(size < 1024 * 12 / 8 + 40, "{size} bytes");
    }

    #[test]
    fn non_decimal_values_round_trip_bit_for_bit() {
        let values = [
            0.1 + 0.2,
            -0.0,
            f64::MIN_POSITIVE,
            1e300,
            -1.5e-300,
            f64::MAX,
            1.0 / 3.0,
        ];
        assert_round_trip(&series(&values));
    }

    #[test]
    fn extremes_are_the_first_points_holding_the_least_and_greatest_value() {
        let points = series(&[3.0, 1.0, 6.0, 1.0, 6.0, 2.0]);
        let bytes = encode(&points);
        let expected = Extremes {
            min: points[1].key(),
            max: points[2].key(),
        };
        assert_eq!(Extremes::of(&points), Some(expected));
        assert_eq!(extremes(&bytes, points[0].key()), Ok(Some(expected)));
        // Zeros of both signs: recorded only when the first zero is the summary's minimum.
        let zeros = series(&[0.0, -0.0, 2.0]);
        if let Some(found) = Extremes::of(&zeros) {
            assert_eq!(found.min, zeros[0].key());
            assert_eq!(Summary::of(&zeros).unwrap().min.to_bits(), 0.0f64.to_bits());
        }
        // A NaN: none recorded, still decoded.
        for values in [[1.0, f64::NAN, 0.5], [f64::NAN, 1.0, 2.0]] {
            let points = series(&values);
            assert_eq!(Extremes::of(&points), None);
            let bytes = encode(&points);
            assert_eq!(extremes(&bytes, points[0].key()), Ok(None));
            assert_round_trip(&points);
        }
        assert!(extremes(&[], (0, 0)).is_err());
    }

    #[test]
    fn summary_matches_the_points() {
        let points = series(&[3.0, 1.0, 2.0, 6.0]);
        let summary = Summary::of(&points).unwrap();
        assert_eq!(summary.count, 4);
        assert_eq!((summary.min, summary.max, summary.sum), (1.0, 6.0, 12.0));
        assert_eq!((summary.first, summary.last), (3.0, 6.0));
        assert_eq!(summary.m2, 0.0 + 4.0 + 1.0 + 9.0);
        assert_eq!(summary.start, points[0].key());
        assert_eq!(summary.end, points[3].key());
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn split_evenly_balances_and_keeps_every_point() {
        let points = series(&vec![1.0; 2100]);
        let sizes: Vec<usize> = split_evenly(&points, 1024).map(<[Point]>::len).collect();
        assert_eq!(sizes, vec![700, 700, 700]);
        let sizes: Vec<usize> = split_evenly(&points[..5], 1024)
            .map(<[Point]>::len)
            .collect();
        assert_eq!(sizes, vec![5]);
        assert_eq!(split_evenly(&[], 1024).count(), 0);
    }

    #[test]
    fn corrupt_chunks_are_errors() {
        let bytes = encode(&series(&[1.5, 2.25, 3.0]));
        for len in 0..bytes.len() {
            assert!(
                decode(&bytes[..len]).is_err(),
                "prefix of {len} bytes decoded"
            );
            assert!(decode_values(&bytes[..len], &mut Vec::new()).is_err());
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode(&trailing).is_err());
        assert!(decode(&[1, 0xff, 0xff, 0xff, 0xff, 0x7f]).is_err());
    }

    proptest! {
        #[test]
        fn any_sorted_points_round_trip(
            mut raw in proptest::collection::vec((any::<i64>(), any::<i64>(), any::<f64>()), 1..200)
        ) {
            raw.sort_by_key(|(ts, seq, _)| (*ts, *seq));
            let points: Vec<Point> = raw.into_iter().map(|(ts, seq, value)| Point { ts, seq, value }).collect();
            assert_round_trip(&points);
            // Recorded extremes come back, and are the summary's values.
            let recorded = extremes(&encode(&points), points[0].key()).unwrap();
            prop_assert_eq!(recorded, Extremes::of(&points));
            if let Some(found) = recorded {
                let summary = Summary::of(&points).unwrap();
                let at = |key: (i64, i64)| points.iter().find(|p| p.key() == key).unwrap().value;
                prop_assert_eq!(at(found.min).to_bits(), summary.min.to_bits());
                prop_assert_eq!(at(found.max).to_bits(), summary.max.to_bits());
                prop_assert!(points.iter().all(|p| p.value >= summary.min && p.value <= summary.max));
            }
        }

        #[test]
        fn decimal_points_round_trip(
            ints in proptest::collection::vec(-10_000_000i64..10_000_000, 1..200),
            exponent in 0usize..6,
        ) {
            let values: Vec<f64> = ints.iter().map(|&i| format!("{}", i as f64 / POW10[exponent]).parse().unwrap()).collect();
            assert_round_trip(&series(&values));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = decode(&bytes);
            let _ = decode_values(&bytes, &mut Vec::new());
        }
    }
}
