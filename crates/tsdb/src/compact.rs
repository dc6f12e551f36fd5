//! Where compaction puts a series' recent points: into the stored chunks whose ranges hold
//! them (which are then rewritten), or into new chunks in the gaps between. Pure planning, so
//! every backend compacts alike and the rules are tested without a database.
//!
//! Chunks of a series never overlap in `(ts, seq)`. A short last chunk absorbs the points that
//! follow it, so a series fed a few points at a time still ends up in full chunks. Chunks
//! end at round times (a day, an hour, a quarter of an hour, …) as far as the series' rate
//! allows chunks of about full size: statistics by hour or minute then find each chunk
//! inside one bucket and read its summary instead of decoding it.

use crate::{Point, chunk};

/// A stored chunk's bounds, as compaction needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkBounds {
    /// The chunk's id in the store.
    pub chunk_id: i64,
    /// Its first `(ts, seq)`.
    pub start: (i64, i64),
    /// Its last `(ts, seq)`.
    pub end: (i64, i64),
    /// Its points.
    pub count: i64,
}

/// How a run of points is cut into chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// In equal pieces: for runs between other chunks, which will not grow.
    Evenly,
    /// In full chunks and a short last one: for the end of a series, which will grow.
    FullFirst,
}

/// One step of a plan: points to write as new chunks, after merging in the points of the
/// stored chunk they replace, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// The stored chunk to read, delete and merge (`None`: the points fill a gap).
    pub replaces: Option<i64>,
    /// The recent points that go here, sorted by key.
    pub points: Vec<Point>,
    /// How to cut the result.
    pub cut: Cut,
}

/// Where a recent point goes: into an existing chunk, or into the gap before chunk `i`
/// (`i` = number of chunks for the gap after the last).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Destination {
    Chunk(usize),
    Gap(usize),
}

/// Plans the compaction of one series' recent points (`rows`, sorted by key).
///
/// `overlapping` are the stored chunks whose time range meets `[rows' first ts, rows' last
/// ts]`, ordered by end key; `last` is the series' last chunk (highest end key), if any.
pub fn plan(
    rows: &[Point],
    mut overlapping: Vec<ChunkBounds>,
    last: Option<ChunkBounds>,
) -> Vec<Placement> {
    let Some(low) = rows.first().map(Point::key) else {
        return Vec::new();
    };
    if overlapping.is_empty()
        && let Some(last) = last
        && last.end < low
    {
        overlapping.push(last);
    }
    let metas = overlapping;
    let extend_last = metas.last().is_some_and(|meta| {
        last.is_some_and(|last| last.chunk_id == meta.chunk_id)
            && meta.count < chunk::TARGET_POINTS as i64
    });
    let mut groups: std::collections::BTreeMap<Destination, Vec<Point>> = Default::default();
    for row in rows {
        let index = metas.partition_point(|meta| meta.end < row.key());
        let destination = if index < metas.len() && metas[index].start <= row.key() {
            Destination::Chunk(index)
        } else if index == metas.len() && extend_last {
            Destination::Chunk(index - 1)
        } else {
            Destination::Gap(index)
        };
        groups.entry(destination).or_default().push(*row);
    }
    let tail = if extend_last {
        Destination::Chunk(metas.len() - 1)
    } else {
        Destination::Gap(metas.len())
    };
    groups
        .into_iter()
        .map(|(destination, points)| Placement {
            replaces: match destination {
                Destination::Chunk(index) => Some(metas[index].chunk_id),
                Destination::Gap(_) => None,
            },
            points,
            cut: if destination == tail {
                Cut::FullFirst
            } else {
                Cut::Evenly
            },
        })
        .collect()
}

/// Merges the points of a replaced chunk into a placement's points: sorted by key, each
/// position once (a point compacted twice after a crash between two stores is one point).
pub fn merge(mut points: Vec<Point>, stored: impl IntoIterator<Item = Point>) -> Vec<Point> {
    points.extend(stored);
    points.sort_by_key(Point::key);
    points.dedup_by_key(|point| point.key());
    points
}

/// Cuts sorted points into the pieces that become chunks: first at the round times a
/// series is dense enough for (see [`ROUND_TIMES_NS`]), then pieces longer than a chunk as
/// `cut` says.
pub fn pieces(points: &[Point], cut: Cut) -> Vec<&[Point]> {
    let mut out = Vec::with_capacity(points.len().div_ceil(MIN_FULL_POINTS));
    cut_at_round_times(points, &ROUND_TIMES_NS, cut, &mut out);
    out
}

/// [`pieces`] as ranges of `points`' indices.
pub fn piece_ranges(points: &[Point], cut: Cut) -> Vec<std::ops::Range<usize>> {
    let mut start = 0;
    pieces(points, cut)
        .iter()
        .map(|piece| {
            let range = start..start + piece.len();
            start = range.end;
            range
        })
        .collect()
}

/// Whether `piece` holds exactly the points of a stored chunk (`stored`): the same keys and
/// the same values, bit for bit. A replaced chunk whose points come back as the first piece
/// of the merge (new points that follow a series' last chunk across a round time) can then
/// stay as it is stored.
pub fn same_points(piece: &[Point], stored: &[Point]) -> bool {
    piece.len() == stored.len()
        && piece
            .iter()
            .zip(stored)
            .all(|(a, b)| a.key() == b.key() && a.value.to_bits() == b.value.to_bits())
}

/// The fewest points a round period must hold on average for chunks to end at its
/// boundaries (so that alignment does not make chunks small).
pub const MIN_FULL_POINTS: usize = chunk::TARGET_POINTS * 3 / 4;

/// Round times chunks end at, coarsest first (a day, an hour, a quarter of an hour, five
/// minutes, a minute, ten seconds, a second; in nanoseconds). Statistics by hour or minute
/// then find whole chunks inside a bucket and read their summaries instead of decoding.
const ROUND_TIMES_NS: [i64; 7] = [
    86_400_000_000_000,
    3_600_000_000_000,
    900_000_000_000,
    300_000_000_000,
    60_000_000_000,
    10_000_000_000,
    1_000_000_000,
];

/// Cuts `points` at every boundary of the coarsest round time that falls inside them, if
/// they are dense enough for it, and each part likewise with finer ones, down to parts of at
/// most a chunk; parts still longer are cut as `cut` says.
fn cut_at_round_times<'a>(
    points: &'a [Point],
    rounds: &[i64],
    cut: Cut,
    out: &mut Vec<&'a [Point]>,
) {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return;
    };
    if points.len() <= chunk::TARGET_POINTS {
        out.push(points);
        return;
    }
    for (index, &round) in rounds.iter().enumerate() {
        let period = |point: &Point| point.ts.div_euclid(round);
        if period(first) == period(last) {
            continue;
        }
        // Points per round period at this run's rate: below a chunk's worth, cutting at
        // every boundary would make small chunks (and finer round times smaller still).
        let span = (last.ts as f64 - first.ts as f64).max(1.0);
        if points.len() as f64 * round as f64 / span < MIN_FULL_POINTS as f64 {
            break;
        }
        let mut rest = points;
        while let Some(first) = rest.first() {
            let start = period(first);
            let length = rest.partition_point(|point| period(point) == start);
            let (part, after) = rest.split_at(length);
            cut_at_round_times(part, &rounds[index + 1..], cut, out);
            rest = after;
        }
        return;
    }
    match cut {
        Cut::Evenly => out.extend(chunk::split_evenly(points, chunk::TARGET_POINTS)),
        Cut::FullFirst => out.extend(points.chunks(chunk::TARGET_POINTS)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(keys: &[(i64, i64)]) -> Vec<Point> {
        keys.iter()
            .map(|&(ts, seq)| Point {
                ts,
                seq,
                value: 0.0,
            })
            .collect()
    }

    fn bounds(chunk_id: i64, start: (i64, i64), end: (i64, i64), count: i64) -> ChunkBounds {
        ChunkBounds {
            chunk_id,
            start,
            end,
            count,
        }
    }

    #[test]
    fn a_series_without_chunks_gets_one_growing_tail() {
        let plan = plan(&points(&[(1, 1), (2, 2)]), Vec::new(), None);
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].replaces, None);
        assert_eq!(plan[0].cut, Cut::FullFirst);
        assert_eq!(plan[0].points.len(), 2);
    }

    #[test]
    fn a_short_last_chunk_absorbs_the_points_after_it() {
        let last = bounds(7, (1, 1), (5, 5), 5);
        let plan = plan(&points(&[(6, 6), (7, 7)]), Vec::new(), Some(last));
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].replaces, Some(7));
        assert_eq!(plan[0].cut, Cut::FullFirst);
    }

    #[test]
    fn a_full_last_chunk_is_left_alone() {
        let last = bounds(7, (1, 1), (5, 5), chunk::TARGET_POINTS as i64);
        let plan = plan(&points(&[(6, 6)]), Vec::new(), Some(last));
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].replaces, None);
        assert_eq!(plan[0].cut, Cut::FullFirst);
    }

    #[test]
    fn late_points_go_into_the_chunk_that_holds_their_time_or_the_gap_before_it() {
        let full = chunk::TARGET_POINTS as i64;
        let first = bounds(1, (10, 1), (20, 2), full);
        let second = bounds(2, (30, 3), (40, 4), full);
        let rows = points(&[(5, 9), (15, 10), (25, 11), (45, 12)]);
        let plan = plan(&rows, vec![first, second], Some(second));
        let summary: Vec<(Option<i64>, Vec<i64>, Cut)> = plan
            .iter()
            .map(|p| (p.replaces, p.points.iter().map(|p| p.ts).collect(), p.cut))
            .collect();
        assert_eq!(
            summary,
            vec![
                (Some(1), vec![15], Cut::Evenly),
                (None, vec![5], Cut::Evenly),
                (None, vec![25], Cut::Evenly),
                (None, vec![45], Cut::FullFirst),
            ]
        );
    }

    #[test]
    fn merging_keeps_each_position_once_and_equal_values_at_distinct_positions() {
        let merged = merge(points(&[(2, 2), (1, 1)]), points(&[(1, 1), (1, 3)]));
        let keys: Vec<(i64, i64)> = merged.iter().map(Point::key).collect();
        assert_eq!(keys, vec![(1, 1), (1, 3), (2, 2)]);
    }

    /// `count` points one every `step_ns`, the first at `start_ns`.
    fn regular(start_ns: i64, step_ns: i64, count: i64) -> Vec<Point> {
        (0..count)
            .map(|i| Point {
                ts: start_ns + i * step_ns,
                seq: i,
                value: 0.0,
            })
            .collect()
    }

    #[test]
    fn chunks_end_at_the_round_times_the_rate_allows() {
        const SECOND: i64 = 1_000_000_000;
        let day = 1_704_067_200 * SECOND;
        for cut in [Cut::FullFirst, Cut::Evenly] {
            // One point a second from 7 s past midnight for a day: quarters of an hour.
            let rows = regular(day + 7 * SECOND, SECOND, 86_400);
            let sizes: Vec<usize> = pieces(&rows, cut).iter().map(|p| p.len()).collect();
            let mut expected = vec![893];
            expected.extend(std::iter::repeat_n(900, 95));
            expected.push(7);
            assert_eq!(sizes, expected, "{cut:?}");
            // From ten to the hour for 25 minutes: cut at the hour, then at a quarter.
            let rows = regular(day + 3_000 * SECOND, SECOND, 1_500);
            let sizes: Vec<usize> = pieces(&rows, cut).iter().map(|p| p.len()).collect();
            assert_eq!(sizes, vec![600, 900], "{cut:?}");
        }
        // Ten points a second: a minute holds 600, too few; five minutes, cut in three.
        let rows = regular(day, SECOND / 10, 6_000);
        let sizes: Vec<usize> = pieces(&rows, Cut::Evenly).iter().map(|p| p.len()).collect();
        assert_eq!(sizes, vec![1_000; 6]);
        // A point a day: no round time is dense enough; as without alignment.
        let rows = regular(day + 5, 86_400 * SECOND, 2_100);
        let sizes: Vec<usize> = pieces(&rows, Cut::Evenly).iter().map(|p| p.len()).collect();
        assert_eq!(sizes, vec![700; 3]);
        let sizes: Vec<usize> = pieces(&rows, Cut::FullFirst)
            .iter()
            .map(|p| p.len())
            .collect();
        assert_eq!(sizes, vec![1_024, 1_024, 52]);
        // A burst within one second crosses no round time.
        let rows = regular(day, 1, 3_000);
        let sizes: Vec<usize> = pieces(&rows, Cut::FullFirst)
            .iter()
            .map(|p| p.len())
            .collect();
        assert_eq!(sizes, vec![chunk::TARGET_POINTS, chunk::TARGET_POINTS, 952]);
    }

    proptest::proptest! {
        #[test]
        fn pieces_keep_every_point_in_order_and_hold_at_most_a_chunk(
            start in -10_000_000_000_000i64..10_000_000_000_000,
            steps in proptest::collection::vec(0i64..5_000_000_000, 0..4_000),
            evenly in proptest::bool::ANY,
        ) {
            let mut ts = start;
            let rows: Vec<Point> = steps
                .iter()
                .enumerate()
                .map(|(i, step)| {
                    ts += step;
                    Point { ts, seq: i as i64, value: 0.0 }
                })
                .collect();
            let cut = pieces(&rows, if evenly { Cut::Evenly } else { Cut::FullFirst });
            let joined: Vec<Point> = cut.iter().flat_map(|p| p.iter().copied()).collect();
            proptest::prop_assert_eq!(joined, rows.clone());
            for piece in &cut {
                proptest::prop_assert!(!piece.is_empty() && piece.len() <= chunk::TARGET_POINTS);
            }
        }
    }

    #[test]
    fn pieces_cut_evenly_or_full_first() {
        let rows: Vec<Point> = (0..(chunk::TARGET_POINTS as i64 + 2))
            .map(|i| Point {
                ts: i,
                seq: i,
                value: 0.0,
            })
            .collect();
        let full: Vec<usize> = pieces(&rows, Cut::FullFirst)
            .iter()
            .map(|p| p.len())
            .collect();
        assert_eq!(full, vec![chunk::TARGET_POINTS, 2]);
        let even: Vec<usize> = pieces(&rows, Cut::Evenly).iter().map(|p| p.len()).collect();
        assert_eq!(even.len(), 2);
        assert!(even.iter().all(|&n| n == rows.len() / 2));
    }

    #[test]
    fn piece_ranges_cover_the_points_in_order() {
        let second = 1_000_000_000;
        // Three quarters of an hour at a point a second: cut at the quarters.
        let run: Vec<Point> = (0..2_700)
            .map(|i| Point {
                ts: i * second,
                seq: i,
                value: i as f64,
            })
            .collect();
        let ranges = piece_ranges(&run, Cut::FullFirst);
        assert_eq!(ranges, vec![0..900, 900..1_800, 1_800..2_700]);
        let cut = pieces(&run, Cut::FullFirst);
        assert!(
            ranges
                .iter()
                .zip(&cut)
                .all(|(range, piece)| &run[range.clone()] == *piece)
        );
    }

    #[test]
    fn same_points_compares_keys_and_value_bits() {
        let stored = points(&[(1, 1), (2, 2)]);
        assert!(same_points(&stored, &stored.clone()));
        assert!(!same_points(&stored[..1], &stored));
        let mut moved = stored.clone();
        moved[1].seq = 3;
        assert!(!same_points(&moved, &stored));
        let mut negative_zero = stored.clone();
        negative_zero[0].value = -0.0;
        assert!(!same_points(&negative_zero, &stored));
        let nan: Vec<Point> = stored
            .iter()
            .map(|p| Point {
                value: f64::NAN,
                ..*p
            })
            .collect();
        assert!(same_points(&nan, &nan.clone()));
    }
}
