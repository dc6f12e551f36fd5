//! Where compaction puts a series' recent points: into the stored chunks whose ranges hold
//! them (which are then rewritten), or into new chunks in the gaps between. Pure planning, so
//! every backend compacts alike and the rules are tested without a database.
//!
//! Chunks of a series never overlap in `(ts, seq)`. A short last chunk absorbs the points that
//! follow it, so a series fed a few points at a time still ends up in full chunks.

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

/// Cuts sorted points into the pieces that become chunks.
pub fn pieces(points: &[Point], cut: Cut) -> Vec<&[Point]> {
    match cut {
        Cut::Evenly => chunk::split_evenly(points, chunk::TARGET_POINTS).collect(),
        Cut::FullFirst => points.chunks(chunk::TARGET_POINTS).collect(),
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
}
