//! Downsampling for charts: M4 (Jugel et al., VLDB 2014). Each pixel column keeps its first,
//! last, smallest and largest point, which is all a line chart of that width can show, so
//! the drawing of the downsampled series equals the drawing of the whole one.

use crate::{
    Point,
    bits::DecodeError,
    chunk::{self, Summary},
};

#[derive(Debug, Clone, Copy)]
struct Column {
    first: Point,
    last: Point,
    min: Point,
    max: Point,
}

/// Merges into `slot` a column kept from points that come after the slot's in key order.
fn merge_later(slot: &mut Option<Column>, later: Column) {
    let Some(column) = slot else {
        *slot = Some(later);
        return;
    };
    if later.first.key() < column.first.key() {
        column.first = later.first;
    }
    if later.last.key() > column.last.key() {
        column.last = later.last;
    }
    // Ties keep the earlier point, as adding in order does.
    if later.min.value < column.min.value {
        column.min = later.min;
    }
    if later.max.value > column.max.value {
        column.max = later.max;
    }
}

/// Accumulates points into `columns` equal slices of `[from, to)`.
#[derive(Debug, Clone)]
pub struct M4 {
    from: i64,
    to: i64,
    /// Columns per nanosecond (a float: one multiply per point instead of a wide division).
    scale: f64,
    columns: Vec<Option<Column>>,
}

impl M4 {
    /// At most about `points` points out: four per column.
    pub fn new(from: i64, to: i64, points: usize) -> Self {
        let columns = (points / 4).max(1);
        let to = to.max(from.saturating_add(1));
        Self {
            from,
            to,
            scale: columns as f64 / (to as f64 - from as f64),
            columns: vec![None; columns],
        }
    }

    fn column_of(&self, ts: i64) -> Option<usize> {
        if ts < self.from || ts >= self.to {
            return None;
        }
        let index = ((ts as f64 - self.from as f64) * self.scale) as usize;
        Some(index.min(self.columns.len() - 1))
    }

    /// Adds a point (in any order).
    pub fn add(&mut self, point: Point) {
        let Some(index) = self.column_of(point.ts) else {
            return;
        };
        let slot = &mut self.columns[index];
        match slot {
            None => {
                *slot = Some(Column {
                    first: point,
                    last: point,
                    min: point,
                    max: point,
                });
            }
            Some(column) => {
                if point.key() < column.first.key() {
                    column.first = point;
                }
                if point.key() > column.last.key() {
                    column.last = point;
                }
                if point.value < column.min.value {
                    column.min = point;
                }
                if point.value > column.max.value {
                    column.max = point;
                }
            }
        }
    }

    /// Adds a chunk whose points come after those added so far in `(ts, seq)` order (chunks
    /// are read in order). A chunk inside one column that recorded its extremes is taken from
    /// its summary without decoding; the result is what adding its points gives.
    pub fn add_chunk(&mut self, summary: &Summary, bytes: &[u8]) -> Result<(), DecodeError> {
        if let Some(index) = self.column_of(summary.start.0)
            && self.column_of(summary.end.0) == Some(index)
            && let Some(extremes) = chunk::extremes(bytes, summary.start)?
        {
            let point = |(ts, seq): (i64, i64), value| Point { ts, seq, value };
            merge_later(
                &mut self.columns[index],
                Column {
                    first: point(summary.start, summary.first),
                    last: point(summary.end, summary.last),
                    min: point(extremes.min, summary.min),
                    max: point(extremes.max, summary.max),
                },
            );
            return Ok(());
        }
        chunk::decode(bytes)?
            .points()
            .for_each(|point| self.add(point));
        Ok(())
    }

    /// Adds what another M4 over the same columns kept from the points that come after this
    /// one's in `(ts, seq)` order (the next run of chunks, on another thread): the result is
    /// what adding all the points to one M4 in that order gives.
    pub fn absorb(&mut self, later: M4) {
        if (later.from, later.to, later.columns.len()) != (self.from, self.to, self.columns.len()) {
            debug_assert!(false, "M4s over different columns");
            return;
        }
        for (slot, theirs) in self.columns.iter_mut().zip(later.columns) {
            if let Some(theirs) = theirs {
                merge_later(slot, theirs);
            }
        }
    }

    /// The kept points in time order, each once.
    pub fn finish(self) -> Vec<Point> {
        let mut out = Vec::new();
        for column in self.columns.into_iter().flatten() {
            let mut kept = [column.first, column.min, column.max, column.last];
            kept.sort_by_key(Point::key);
            for point in kept {
                if out
                    .last()
                    .is_none_or(|last: &Point| last.key() != point.key())
                {
                    out.push(point);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// What M4 keeps, bit for bit.
    fn kept(m4: M4) -> Vec<(i64, i64, u64)> {
        m4.finish()
            .iter()
            .map(|p| (p.ts, p.seq, p.value.to_bits()))
            .collect()
    }

    proptest! {
        #[test]
        fn chunks_from_summaries_equal_their_points(
            values in proptest::collection::vec(
                prop_oneof![(-5i8..5).prop_map(f64::from), Just(0.0), Just(-0.0), Just(f64::NAN), any::<f64>()],
                1..400,
            ),
            gaps in proptest::collection::vec(0i64..50, 400),
            chunk_size in 1usize..60,
            columns in 1usize..40,
            cut_front in 0i64..200,
            cut_back in 0i64..200,
        ) {
            let mut ts = 0;
            let points: Vec<Point> = values.iter().zip(&gaps).enumerate().map(|(i, (&value, &gap))| {
                ts += gap;
                Point { ts, seq: (i as i64 * 7919) % 1009, value }
            }).collect();
            let mut points = points;
            points.sort_by_key(Point::key);
            let (from, to) = (cut_front, (ts + 1 - cut_back).max(cut_front + 1));
            let mut by_points = M4::new(from, to, columns * 4);
            let mut by_chunks = M4::new(from, to, columns * 4);
            for piece in points.chunks(chunk_size) {
                piece.iter().for_each(|p| by_points.add(*p));
                let summary = Summary::of(piece).unwrap();
                by_chunks.add_chunk(&summary, &chunk::encode(piece)).unwrap();
            }
            prop_assert_eq!(kept(by_chunks), kept(by_points));
        }
    }

    #[test]
    fn keeps_extremes_and_ends_of_each_column() {
        let points: Vec<Point> = (0..10_000)
            .map(|i| Point {
                ts: i,
                seq: i,
                value: if i == 5_555 { 1e9 } else { (i % 100) as f64 },
            })
            .collect();
        let mut m4 = M4::new(0, 10_000, 400);
        for point in points.iter().rev() {
            m4.add(*point);
        }
        let kept = m4.finish();
        assert!(kept.len() <= 400, "{} points", kept.len());
        assert!(kept.windows(2).all(|w| w[0].key() < w[1].key()));
        assert!(kept.iter().any(|p| p.value == 1e9), "the spike is kept");
        assert_eq!(kept[0].ts, 0);
        assert_eq!(kept[kept.len() - 1].ts, 9_999);
    }

    #[test]
    fn absorbing_a_later_part_equals_adding_everything_in_order() {
        let points: Vec<Point> = (0..5_000)
            .map(|i| Point {
                ts: i,
                seq: i,
                value: ((i * 7919) % 13) as f64,
            })
            .collect();
        let mut whole = M4::new(0, 5_000, 200);
        points.iter().for_each(|p| whole.add(*p));
        for split in [0, 1, 1_234, 4_999, 5_000] {
            let (mut early, mut late) = (M4::new(0, 5_000, 200), M4::new(0, 5_000, 200));
            points[..split].iter().for_each(|p| early.add(*p));
            points[split..].iter().for_each(|p| late.add(*p));
            early.absorb(late);
            let keys = |kept: Vec<Point>| kept.iter().map(Point::key).collect::<Vec<_>>();
            assert_eq!(
                keys(early.finish()),
                keys(whole.clone().finish()),
                "split at {split}"
            );
        }
    }

    #[test]
    fn few_points_come_back_unchanged() {
        let mut m4 = M4::new(0, 100, 1000);
        for ts in [50, 10, 90] {
            m4.add(Point {
                ts,
                seq: ts,
                value: ts as f64,
            });
        }
        m4.add(Point {
            ts: 100,
            seq: 1,
            value: 0.0,
        });
        let kept: Vec<i64> = m4.finish().iter().map(|p| p.ts).collect();
        assert_eq!(kept, vec![10, 50, 90]);
    }
}
