//! Downsampling for charts: M4 (Jugel et al., VLDB 2014). Each pixel column keeps its first,
//! last, smallest and largest point, which is all a line chart of that width can show, so
//! the drawing of the downsampled series equals the drawing of the whole one.

use crate::Point;

#[derive(Debug, Clone, Copy)]
struct Column {
    first: Point,
    last: Point,
    min: Point,
    max: Point,
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

    /// Adds what another M4 over the same columns kept from the points that come after this
    /// one's in `(ts, seq)` order (the next run of chunks, on another thread): the result is
    /// what adding all the points to one M4 in that order gives.
    pub fn absorb(&mut self, later: M4) {
        if (later.from, later.to, later.columns.len()) != (self.from, self.to, self.columns.len()) {
            debug_assert!(false, "M4s over different columns");
            return;
        }
        for (slot, theirs) in self.columns.iter_mut().zip(later.columns) {
            let Some(theirs) = theirs else { continue };
            match slot {
                None => *slot = Some(theirs),
                Some(column) => {
                    if theirs.first.key() < column.first.key() {
                        column.first = theirs.first;
                    }
                    if theirs.last.key() > column.last.key() {
                        column.last = theirs.last;
                    }
                    // Ties keep the earlier point, as adding in order does.
                    if theirs.min.value < column.min.value {
                        column.min = theirs.min;
                    }
                    if theirs.max.value > column.max.value {
                        column.max = theirs.max;
                    }
                }
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
    use super::*;

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
