//! The statistics of `GET …/stats`: what can be asked, and their exact computation per bucket.
//!
//! A bucket takes whole chunks through their [`Summary`] when nothing needs the values
//! themselves, and decoded runs of points otherwise. Spreads merge with the pairwise formula
//! of Chan, Golub and LeVeque, so the standard deviation of merged chunks is that of their
//! points. Percentiles interpolate linearly between the closest ranks (numpy's default,
//! PostgreSQL's `percentile_cont`), found by selection, not by sorting.

use std::{collections::BTreeSet, fmt, str::FromStr};

use crate::{
    bits::DecodeError,
    chunk::{self, Summary},
};

/// A statistic a caller can ask for.
#[derive(Debug, Clone, PartialEq)]
pub enum Statistic {
    /// Number of points.
    Count,
    /// Sum of the values.
    Sum,
    /// Arithmetic mean.
    Mean,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Sample standard deviation (n − 1, as PostgreSQL's `stddev`); none for one point.
    Stddev,
    /// Value of the earliest point.
    First,
    /// Value of the latest point.
    Last,
    /// A percentile in 0..=100 (`p50`, `p99.9`).
    Percentile(f64),
    /// Number of distinct values of a tag (`count_distinct:tag:host`).
    CountDistinct(String),
    /// A percentile by nearest rank, as InfluxDB's `percentile(f, N)`: the value of rank
    /// `floor(n × N / 100 + 0.5)` in ascending order (from 1), none when that rank is 0.
    /// InfluxQL's only; `/stats` interpolates.
    NearestRank(f64),
}

/// A statistic name that means nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown statistic {0:?}: use count, sum, mean, min, max, stddev, first, last, pNN (0 to 100) or count_distinct:tag:KEY"
)]
pub struct UnknownStatistic(pub String);

impl FromStr for Statistic {
    type Err = UnknownStatistic;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownStatistic(text.to_owned());
        Ok(match text {
            "count" => Self::Count,
            "sum" => Self::Sum,
            "mean" | "avg" => Self::Mean,
            "min" => Self::Min,
            "max" => Self::Max,
            "stddev" => Self::Stddev,
            "first" => Self::First,
            "last" => Self::Last,
            _ => {
                if let Some(key) = text.strip_prefix("count_distinct:tag:") {
                    if key.is_empty() {
                        return Err(unknown());
                    }
                    Self::CountDistinct(key.to_owned())
                } else if let Some(number) = text.strip_prefix('p') {
                    let valid = !number.is_empty()
                        && number.chars().all(|c| c.is_ascii_digit() || c == '.');
                    let p: f64 = number.parse().map_err(|_| unknown())?;
                    if !valid || !(0.0..=100.0).contains(&p) {
                        return Err(unknown());
                    }
                    Self::Percentile(p)
                } else {
                    return Err(unknown());
                }
            }
        })
    }
}

impl fmt::Display for Statistic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Count => f.write_str("count"),
            Self::Sum => f.write_str("sum"),
            Self::Mean => f.write_str("mean"),
            Self::Min => f.write_str("min"),
            Self::Max => f.write_str("max"),
            Self::Stddev => f.write_str("stddev"),
            Self::First => f.write_str("first"),
            Self::Last => f.write_str("last"),
            Self::Percentile(p) => write!(f, "p{p}"),
            Self::CountDistinct(key) => write!(f, "count_distinct:tag:{key}"),
            Self::NearestRank(p) => write!(f, "nearest_rank:{p}"),
        }
    }
}

/// One figure of a bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Figure {
    /// A count.
    Integer(u64),
    /// A value.
    Number(f64),
    /// Not defined for this bucket (the mean of nothing, the deviation of one point).
    Missing,
}

/// Values below which percentiles are selected on one thread (a thread costs tens of µs).
const PARALLEL_VALUES: usize = 200_000;

/// What a request needs kept per bucket.
#[derive(Debug, Clone, Copy, Default)]
struct Needs {
    values: bool,
    distinct: bool,
}

/// The running state of one bucket.
#[derive(Debug, Clone, Default)]
pub struct Bucket {
    count: u64,
    sum: f64,
    m2: f64,
    min: f64,
    max: f64,
    first: Option<((i64, i64), f64)>,
    last: Option<((i64, i64), f64)>,
    values: Vec<f64>,
    distinct: BTreeSet<String>,
}

impl Bucket {
    /// Whether no point was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds another bucket's points (the same bucket of another part of the data).
    fn absorb(&mut self, other: Bucket) {
        if other.count == 0 {
            return;
        }
        let (first, last) = (other.first, other.last);
        if let (Some((start, first)), Some((end, last))) = (first, last) {
            self.merge(&Summary {
                count: other.count,
                start,
                end,
                sum: other.sum,
                min: other.min,
                max: other.max,
                m2: other.m2,
                first,
                last,
            });
        }
        if self.values.is_empty() {
            self.values = other.values;
        } else {
            self.values.extend_from_slice(&other.values);
        }
        if self.distinct.is_empty() {
            self.distinct = other.distinct;
        } else {
            self.distinct.extend(other.distinct);
        }
    }

    fn merge(&mut self, part: &Summary) {
        if part.count == 0 {
            return;
        }
        if self.count == 0 {
            self.count = part.count;
            self.sum = part.sum;
            self.m2 = part.m2;
            self.min = part.min;
            self.max = part.max;
        } else {
            let (n_a, n_b) = (self.count as f64, part.count as f64);
            let delta = part.sum / n_b - self.sum / n_a;
            self.m2 += part.m2 + delta * delta * n_a * n_b / (n_a + n_b);
            self.count += part.count;
            self.sum += part.sum;
            self.min = self.min.min(part.min);
            self.max = self.max.max(part.max);
        }
        if self.first.is_none_or(|(key, _)| part.start < key) {
            self.first = Some((part.start, part.first));
        }
        if self.last.is_none_or(|(key, _)| part.end > key) {
            self.last = Some((part.end, part.last));
        }
    }
}

/// A slice of consecutive points, as columns.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    /// Timestamps.
    pub ts: &'a [i64],
    /// Arrival numbers.
    pub seq: &'a [i64],
    /// Values.
    pub values: &'a [f64],
}

impl Run<'_> {
    /// The summary of points in `(ts, seq)` order: the first and last are at the ends.
    fn summary_of_sorted(&self) -> Option<Summary> {
        let n = self.values.len();
        if n == 0 {
            return None;
        }
        let (sum, min, max, m2) = chunk::moments(self.values.iter().copied());
        Some(Summary {
            count: n as u64,
            start: (self.ts[0], self.seq[0]),
            end: (self.ts[n - 1], self.seq[n - 1]),
            sum,
            min,
            max,
            m2,
            first: self.values[0],
            last: self.values[n - 1],
        })
    }

    fn summary(&self) -> Option<Summary> {
        let n = self.values.len();
        if n == 0 {
            return None;
        }
        let (sum, min, max, m2) = chunk::moments(self.values.iter().copied());
        let (mut first, mut last) = (0, 0);
        // Runs from the recent table are not sorted; chunks are.
        for i in 1..n {
            if (self.ts[i], self.seq[i]) < (self.ts[first], self.seq[first]) {
                first = i;
            }
            if (self.ts[i], self.seq[i]) > (self.ts[last], self.seq[last]) {
                last = i;
            }
        }
        Some(Summary {
            count: n as u64,
            start: (self.ts[first], self.seq[first]),
            end: (self.ts[last], self.seq[last]),
            sum,
            min,
            max,
            m2,
            first: self.values[first],
            last: self.values[last],
        })
    }
}

/// The bucket of `[boundaries[i], boundaries[i + 1])`, clipped to `[from, to)`, holding
/// `ts`, if any.
fn bucket_index(boundaries: &[i64], (from, to): (i64, i64), ts: i64) -> Option<usize> {
    if ts < from || ts >= to {
        return None;
    }
    let index = boundaries.partition_point(|&b| b <= ts).checked_sub(1)?;
    (index < boundaries.len().saturating_sub(1)).then_some(index)
}

/// Which chunks an [`Aggregation`] answers from their summaries alone: those inside one
/// bucket. A reader may skip the bytes of those chunks (see [`Aggregation::summary_rule`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRule {
    boundaries: Vec<i64>,
    from: i64,
    to: i64,
}

impl SummaryRule {
    /// The bucket boundaries, ascending.
    pub fn boundaries(&self) -> &[i64] {
        &self.boundaries
    }

    /// The range `[from, to)` the buckets are clipped to.
    pub fn range(&self) -> (i64, i64) {
        (self.from, self.to)
    }

    /// Whether the chunk with this summary is answered without its bytes.
    pub fn answers(&self, summary: &Summary) -> bool {
        let range = (self.from, self.to);
        bucket_index(&self.boundaries, range, summary.start.0).is_some_and(|bucket| {
            bucket_index(&self.boundaries, range, summary.end.0) == Some(bucket)
        })
    }
}

/// Statistics over a set of buckets `[boundaries[i], boundaries[i + 1])`, clipped to
/// `[from, to)`.
#[derive(Debug, Clone)]
pub struct Aggregation {
    statistics: Vec<Statistic>,
    needs: Needs,
    boundaries: Vec<i64>,
    from: i64,
    to: i64,
    buckets: Vec<Bucket>,
}

impl Aggregation {
    /// Prepares buckets between consecutive `boundaries` (at least two, ascending).
    pub fn new(statistics: Vec<Statistic>, boundaries: Vec<i64>, from: i64, to: i64) -> Self {
        let needs = Needs {
            values: statistics
                .iter()
                .any(|s| matches!(s, Statistic::Percentile(_) | Statistic::NearestRank(_))),
            distinct: statistics
                .iter()
                .any(|s| matches!(s, Statistic::CountDistinct(_))),
        };
        let buckets = vec![Bucket::default(); boundaries.len().saturating_sub(1)];
        Self {
            statistics,
            needs,
            boundaries,
            from,
            to,
            buckets,
        }
    }

    /// The statistics asked for, in order.
    pub fn statistics(&self) -> &[Statistic] {
        &self.statistics
    }

    /// The bucket holding `ts`, if any.
    fn bucket_of(&self, ts: i64) -> Option<usize> {
        bucket_index(&self.boundaries, (self.from, self.to), ts)
    }

    /// Which chunks [`Self::add_chunk`] answers from their summaries alone (none when the
    /// statistics need every value): their bytes may be left unread, and passed empty.
    pub fn summary_rule(&self) -> Option<SummaryRule> {
        (!self.needs.values).then(|| SummaryRule {
            boundaries: self.boundaries.clone(),
            from: self.from,
            to: self.to,
        })
    }

    /// The value of the tag a distinct count counts, for a series.
    fn note_distinct(&mut self, bucket: usize, tag_value: Option<&str>) {
        if let (true, Some(value)) = (self.needs.distinct, tag_value) {
            self.buckets[bucket].distinct.insert(value.to_owned());
        }
    }

    /// Adds a chunk of a series whose distinct-counted tag (if asked) is `tag_value`. A chunk
    /// inside one bucket is taken from its summary, plus its values alone when percentiles
    /// need them.
    pub fn add_chunk(
        &mut self,
        summary: &Summary,
        bytes: &[u8],
        tag_value: Option<&str>,
    ) -> Result<(), DecodeError> {
        if let Some(bucket) = self.bucket_of(summary.start.0)
            && self.bucket_of(summary.end.0) == Some(bucket)
        {
            if self.needs.values {
                // Decoded before merging: a corrupt chunk leaves the bucket as it was.
                let values = &mut self.buckets[bucket].values;
                let before = values.len();
                if let Err(error) = chunk::decode_values(bytes, values) {
                    values.truncate(before);
                    return Err(error);
                }
            }
            self.buckets[bucket].merge(summary);
            self.note_distinct(bucket, tag_value);
            return Ok(());
        }
        let columns = chunk::decode(bytes)?;
        self.add_points(
            Run {
                ts: &columns.ts,
                seq: &columns.seq,
                values: &columns.values,
            },
            tag_value,
            true,
        );
        Ok(())
    }

    /// Adds points in any order.
    pub fn add_run(&mut self, run: Run<'_>, tag_value: Option<&str>) {
        self.add_points(run, tag_value, false);
    }

    /// Adds points; `sorted` (a chunk's, in `(ts, seq)` order) finds each bucket's piece by
    /// bisection and its ends without a scan.
    fn add_points(&mut self, run: Run<'_>, tag_value: Option<&str>, sorted: bool) {
        let mut start = if sorted {
            run.ts.partition_point(|&ts| ts < self.from)
        } else {
            0
        };
        while start < run.ts.len() {
            if sorted && run.ts[start] >= self.to {
                break;
            }
            let Some(bucket) = self.bucket_of(run.ts[start]) else {
                start += 1;
                continue;
            };
            // Extend while the points stay in this bucket (sorted input gives long runs).
            let (low, high) = (
                self.boundaries[bucket].max(self.from),
                self.boundaries[bucket + 1].min(self.to),
            );
            let end = if sorted {
                start + run.ts[start..].partition_point(|&ts| ts < high)
            } else {
                let mut end = start + 1;
                while end < run.ts.len() && (low..high).contains(&run.ts[end]) {
                    end += 1;
                }
                end
            };
            let piece = Run {
                ts: &run.ts[start..end],
                seq: &run.seq[start..end],
                values: &run.values[start..end],
            };
            let summary = if sorted {
                piece.summary_of_sorted()
            } else {
                piece.summary()
            };
            if let Some(summary) = summary {
                self.buckets[bucket].merge(&summary);
            }
            if self.needs.values {
                self.buckets[bucket].values.extend_from_slice(piece.values);
            }
            self.note_distinct(bucket, tag_value);
            start = end;
        }
    }

    /// Adds the points another aggregation over the same buckets took (another part of the
    /// same data, aggregated on another thread). Mismatched buckets are left out.
    pub fn absorb(&mut self, other: Aggregation) {
        if other.boundaries != self.boundaries || (other.from, other.to) != (self.from, self.to) {
            debug_assert!(false, "aggregations over different buckets");
            return;
        }
        for (bucket, theirs) in self.buckets.iter_mut().zip(other.buckets) {
            bucket.absorb(theirs);
        }
    }

    /// The buckets, by start, with one figure per statistic; empty buckets are `None`.
    pub fn finish(self) -> Vec<(i64, Option<Vec<Figure>>)> {
        self.finish_on(1)
    }

    /// [`Self::finish`] with up to `threads` threads selecting the percentiles, when there
    /// are enough values to be worth it.
    pub fn finish_on(self, threads: usize) -> Vec<(i64, Option<Vec<Figure>>)> {
        self.finish_with(threads, PARALLEL_VALUES)
    }

    /// [`Self::finish_on`], on one thread below `parallel_values` values.
    fn finish_with(
        mut self,
        threads: usize,
        parallel_values: usize,
    ) -> Vec<(i64, Option<Vec<Figure>>)> {
        let values: usize = self.buckets.iter().map(|b| b.values.len()).sum();
        let threads = if values >= parallel_values {
            threads.clamp(1, self.buckets.len().max(1))
        } else {
            1
        };
        let buckets = std::mem::take(&mut self.buckets);
        if threads == 1 {
            return self.figures(0, buckets);
        }
        // Consecutive runs of buckets holding about as many values each.
        let per_thread = values.div_ceil(threads);
        let mut parts: Vec<(usize, Vec<Bucket>)> = Vec::with_capacity(threads);
        let (mut part, mut part_start, mut part_values) = (Vec::new(), 0, 0);
        for (index, bucket) in buckets.into_iter().enumerate() {
            part_values += bucket.values.len();
            part.push(bucket);
            if part_values >= per_thread {
                parts.push((part_start, std::mem::take(&mut part)));
                (part_start, part_values) = (index + 1, 0);
            }
        }
        if !part.is_empty() {
            parts.push((part_start, part));
        }
        let this = &self;
        std::thread::scope(|scope| {
            let running: Vec<_> = parts
                .into_iter()
                .map(|(first, part)| scope.spawn(move || this.figures(first, part)))
                .collect();
            running
                .into_iter()
                .flat_map(|thread| {
                    thread
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        })
    }

    /// The figures of `buckets`, the first of which is bucket `first`.
    fn figures(&self, first: usize, mut buckets: Vec<Bucket>) -> Vec<(i64, Option<Vec<Figure>>)> {
        let percentiles: Vec<f64> = self
            .statistics
            .iter()
            .filter_map(|s| match s {
                Statistic::Percentile(p) => Some(*p),
                _ => None,
            })
            .collect();
        let mut out = Vec::with_capacity(buckets.len());
        for (i, bucket) in buckets.iter_mut().enumerate() {
            let start = self.boundaries[first + i];
            if bucket.is_empty() {
                out.push((start, None));
                continue;
            }
            let mut found = percentile_values(&mut bucket.values, &percentiles).into_iter();
            let values = &mut bucket.values;
            let n = bucket.count as f64;
            let figures = self
                .statistics
                .iter()
                .map(|statistic| match statistic {
                    Statistic::Count => Figure::Integer(bucket.count),
                    Statistic::Sum => Figure::Number(bucket.sum),
                    Statistic::Mean => Figure::Number(bucket.sum / n),
                    Statistic::Min => Figure::Number(bucket.min),
                    Statistic::Max => Figure::Number(bucket.max),
                    Statistic::Stddev if bucket.count > 1 => {
                        Figure::Number((bucket.m2 / (n - 1.0)).max(0.0).sqrt())
                    }
                    Statistic::Stddev => Figure::Missing,
                    Statistic::First => bucket
                        .first
                        .map_or(Figure::Missing, |f| Figure::Number(f.1)),
                    Statistic::Last => bucket.last.map_or(Figure::Missing, |l| Figure::Number(l.1)),
                    Statistic::Percentile(_) => {
                        found.next().map_or(Figure::Missing, Figure::Number)
                    }
                    Statistic::CountDistinct(_) => Figure::Integer(bucket.distinct.len() as u64),
                    Statistic::NearestRank(p) => {
                        nearest_rank(values, *p).map_or(Figure::Missing, Figure::Number)
                    }
                })
                .collect();
            out.push((start, Some(figures)));
        }
        out
    }
}

/// InfluxDB's percentile: the value of rank `floor(n × p / 100 + 0.5)` (from 1) in ascending
/// order; `None` when the rank falls outside the values. Reorders `values`.
pub fn nearest_rank(values: &mut [f64], p: f64) -> Option<f64> {
    let n = values.len();
    let rank = (n as f64 * p / 100.0 + 0.5).floor() as i64 - 1;
    let index = usize::try_from(rank).ok().filter(|&i| i < n)?;
    Some(*values.select_nth_unstable_by(index, f64::total_cmp).1)
}

/// Percentiles `ps` (0..=100) of `values`, in the order asked, by linear interpolation
/// between the closest ranks. Reorders `values`. Empty when `values` is.
pub fn percentile_values(values: &mut [f64], ps: &[f64]) -> Vec<f64> {
    let n = values.len();
    if n == 0 {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..ps.len()).collect();
    order.sort_by(|&a, &b| ps[a].total_cmp(&ps[b]));
    let mut out = vec![0.0; ps.len()];
    // Invariant: every value before `lower` is ≤ every value from `lower` on.
    let mut lower = 0;
    for index in order {
        let rank = ps[index].clamp(0.0, 100.0) / 100.0 * (n - 1) as f64;
        let k = (rank.floor() as usize).min(n - 1);
        let fraction = rank - k as f64;
        if k >= lower {
            values[lower..].select_nth_unstable_by(k - lower, f64::total_cmp);
            lower = k;
        }
        let low = values[k];
        out[index] = if fraction > 0.0 && k + 1 < n {
            let high = values[k + 1..]
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min);
            low + (high - low) * fraction
        } else {
            low
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::{Point, chunk};

    #[test]
    fn nearest_rank_is_influxdbs_percentile() {
        let values = [5.0, 1.0, 4.0, 2.0, 3.0];
        let rank = |p| nearest_rank(&mut values.clone(), p);
        // floor(5 × p / 100 + 0.5): 50 → rank 3, 90 → rank 5, 10 → rank 1, 5 → rank 0.
        assert_eq!(rank(50.0), Some(3.0));
        assert_eq!(rank(90.0), Some(5.0));
        assert_eq!(rank(10.0), Some(1.0));
        assert_eq!(rank(5.0), None);
        assert_eq!(rank(100.0), Some(5.0));
        assert_eq!(nearest_rank(&mut [], 50.0), None);
    }

    /// The textbook definition, by sorting.
    fn reference_percentile(values: &[f64], p: f64) -> f64 {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rank = p / 100.0 * (sorted.len() - 1) as f64;
        let k = rank.floor() as usize;
        let fraction = rank - k as f64;
        if fraction > 0.0 {
            sorted[k] + (sorted[k + 1] - sorted[k]) * fraction
        } else {
            sorted[k]
        }
    }

    #[test]
    fn statistic_names_parse_and_print_back() {
        for name in [
            "count",
            "sum",
            "mean",
            "min",
            "max",
            "stddev",
            "first",
            "last",
            "p50",
            "p99.9",
            "p0",
            "p100",
            "count_distinct:tag:host",
        ] {
            assert_eq!(name.parse::<Statistic>().unwrap().to_string(), name);
        }
        for bad in [
            "median",
            "p",
            "p101",
            "p-1",
            "pNaN",
            "p1e2",
            "count_distinct:tag:",
            "COUNT",
        ] {
            assert!(bad.parse::<Statistic>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn percentiles_match_numpy_on_a_known_case() {
        // numpy.percentile([1, 2, 3, 4], [25, 50, 90]) == [1.75, 2.5, 3.7]
        let mut values = [4.0, 1.0, 3.0, 2.0];
        let got = percentile_values(&mut values, &[90.0, 25.0, 50.0]);
        assert_eq!(got[1], 1.75);
        assert_eq!(got[2], 2.5);
        assert!((got[0] - 3.7).abs() < 1e-12);
        assert_eq!(
            percentile_values(&mut [5.0], &[0.0, 50.0, 100.0]),
            vec![5.0; 3]
        );
        assert!(percentile_values(&mut [], &[50.0]).is_empty());
    }

    fn points_of(values: &[f64]) -> Vec<Point> {
        values
            .iter()
            .enumerate()
            .map(|(i, &value)| Point {
                ts: i as i64 * 10,
                seq: i as i64,
                value,
            })
            .collect()
    }

    proptest! {
        #[test]
        fn percentiles_equal_the_sorting_reference(
            values in proptest::collection::vec(-1e6f64..1e6, 1..400),
            ps in proptest::collection::vec(0.0f64..=100.0, 1..6),
        ) {
            let got = percentile_values(&mut values.clone(), &ps);
            for (p, value) in ps.iter().zip(got) {
                prop_assert_eq!(value, reference_percentile(&values, *p));
            }
        }

        /// Chunks taken whole by their summaries and points taken one by one agree with a
        /// direct computation, whatever the chunk size and bucket width.
        #[test]
        fn buckets_agree_with_a_direct_computation(
            values in proptest::collection::vec(-1000.0f64..1000.0, 1..300),
            chunk_size in 1usize..50,
            width in 1i64..200,
            cut_front in 0i64..300,
            cut_back in 0i64..300,
            split in 0usize..20,
            threads in 1usize..4,
        ) {
            let points = points_of(&values);
            let end = points.len() as i64 * 10;
            // A range that may start after the first point and end before the last.
            let from = cut_front.min(end);
            let to = (end - cut_back).max(from + 1);
            let boundaries: Vec<i64> = (0..=to / width + 1).map(|i| i * width).collect();
            let mut statistics: Vec<Statistic> = ["count", "sum", "mean", "min", "max", "stddev", "first", "last", "p50", "p90"]
                .iter().map(|s| s.parse().unwrap()).collect();
            statistics.extend([Statistic::NearestRank(95.0), Statistic::NearestRank(10.0)]);
            let aggregates_only: Vec<Statistic> = statistics[..8].to_vec();
            for stats in [statistics, aggregates_only] {
                // The chunks before `split` and the others aggregated apart (as on two
                // threads) and merged; the buckets finished on `threads` threads.
                let mut aggregation = Aggregation::new(stats.clone(), boundaries.clone(), from, to);
                let mut later = Aggregation::new(stats.clone(), boundaries.clone(), from, to);
                // The bytes of chunks the summary rule answers are not read: passed empty.
                let rule = aggregation.summary_rule();
                prop_assert_eq!(rule.is_some(), stats.len() == 8);
                for (index, piece) in points.chunks(chunk_size).enumerate() {
                    let summary = chunk::Summary::of(piece).unwrap();
                    let bytes = if rule.as_ref().is_some_and(|rule| rule.answers(&summary)) {
                        Vec::new()
                    } else {
                        chunk::encode(piece)
                    };
                    let part = if index < split { &mut aggregation } else { &mut later };
                    part.add_chunk(&summary, &bytes, None).unwrap();
                }
                aggregation.absorb(later);
                for (start, figures) in aggregation.finish_with(threads, 0) {
                    let inside: Vec<f64> = points.iter().filter(|p| p.ts >= start && p.ts < start + width && p.ts >= from && p.ts < to).map(|p| p.value).collect();
                    let Some(figures) = figures else {
                        prop_assert!(inside.is_empty());
                        continue;
                    };
                    let n = inside.len() as f64;
                    let mean = inside.iter().sum::<f64>() / n;
                    for (statistic, figure) in stats.iter().zip(figures) {
                        let expected = match statistic {
                            Statistic::Count => { prop_assert_eq!(figure, Figure::Integer(inside.len() as u64)); continue; }
                            Statistic::Sum => inside.iter().sum(),
                            Statistic::Mean => mean,
                            Statistic::Min => inside.iter().copied().fold(f64::INFINITY, f64::min),
                            Statistic::Max => inside.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                            Statistic::Stddev if inside.len() < 2 => { prop_assert_eq!(figure, Figure::Missing); continue; }
                            Statistic::Stddev => (inside.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt(),
                            Statistic::First => inside[0],
                            Statistic::Last => inside[inside.len() - 1],
                            Statistic::Percentile(p) => reference_percentile(&inside, *p),
                            Statistic::CountDistinct(_) => unreachable!(),
                            Statistic::NearestRank(p) => {
                                let mut sorted = inside.clone();
                                sorted.sort_by(f64::total_cmp);
                                let rank = (n * p / 100.0 + 0.5).floor() as usize;
                                if rank == 0 {
                                    prop_assert_eq!(figure, Figure::Missing);
                                    continue;
                                }
                                sorted[rank - 1]
                            }
                        };
                        let Figure::Number(got) = figure else { panic!("{statistic}: {figure:?}") };
                        prop_assert!((got - expected).abs() <= 1e-9 * (1.0 + expected.abs()), "{}: {} vs {}", statistic, got, expected);
                    }
                }
            }
        }
    }
}
