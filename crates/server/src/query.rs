//! Reading and aggregating series for every query API (`/api/v1/…/stats`, InfluxQL's
//! `SELECT`): the store's chunks and recent points in, `mymonit_tsdb`'s exact statistics out,
//! the CPU-bound part off the request threads.

use std::collections::BTreeMap;

use mymonit_model::time;
use mymonit_store::{Point, Series, Summary, SummaryRule};
use mymonit_tsdb::{
    downsample::M4,
    stats::{Aggregation, Figure, Run, Statistic},
};

use crate::{
    api::measures::parse_bound,
    error::{ApiError, ApiResult},
    state::AppState,
};

/// Buckets of one group: starts and figures (`None`: no point in the bucket).
pub type Buckets = Vec<(i64, Option<Vec<Figure>>)>;

/// What one series contributes: its chunks (summary and bytes) and its recent points.
pub struct SeriesData {
    /// Chunks holding points of the range (and maybe others).
    pub chunks: Vec<(Summary, Vec<u8>)>,
    /// Points not yet compacted, in no particular order.
    pub recent: Vec<Point>,
}

/// Reads a series' chunks and recent points in `[from, to)`; the chunks `whole` answers
/// from their summaries may come without their bytes.
pub async fn read_series(
    state: &AppState,
    series_id: i64,
    from: i64,
    to: i64,
    whole: Option<&SummaryRule>,
) -> ApiResult<SeriesData> {
    let mut chunks = Vec::new();
    let mut keep = |summary: &Summary, bytes: &[u8]| {
        chunks.push((*summary, bytes.to_vec()));
        Ok(())
    };
    let recent = state
        .measures
        .read_series(series_id, from, to, whole, &mut keep)
        .await?;
    Ok(SeriesData { chunks, recent })
}

impl SeriesData {
    /// The points in `[from, to)`, in `(timestamp, seq)` order (decodes every chunk).
    pub fn points(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<Point>, mymonit_tsdb::bits::DecodeError> {
        let inside = |point: &Point| (from..to).contains(&point.ts);
        let mut points: Vec<Point> = self.recent.iter().copied().filter(inside).collect();
        for (_, bytes) in &self.chunks {
            let columns = mymonit_tsdb::chunk::decode(bytes)?;
            points.extend(columns.points().filter(inside));
        }
        points.sort_by_key(Point::key);
        Ok(points)
    }
}

impl SeriesData {
    /// The series' points in `[from, to)` downsampled for a chart of about `points` points
    /// (M4); a long range is decoded on several threads, a run of chunks each.
    pub fn downsample(
        &self,
        from: i64,
        to: i64,
        points: usize,
    ) -> Result<Vec<Point>, mymonit_tsdb::bits::DecodeError> {
        let part = |chunks: &[(Summary, Vec<u8>)]| {
            let mut m4 = M4::new(from, to, points);
            for (summary, bytes) in chunks {
                m4.add_chunk(summary, bytes)?;
            }
            Ok::<_, mymonit_tsdb::bits::DecodeError>(m4)
        };
        let threads = if self.chunks.len() >= PARALLEL_CHUNKS {
            aggregation_threads()
        } else {
            1
        };
        let mut m4 = if threads > 1 {
            let parts = in_parallel(&self.chunks, threads, part)?;
            let mut parts = parts.into_iter();
            let mut m4 = parts.next().unwrap_or_else(|| M4::new(from, to, points));
            // In order: each part's chunks come after the previous part's.
            parts.for_each(|later| m4.absorb(later));
            m4
        } else {
            part(&self.chunks)?
        };
        self.recent.iter().for_each(|point| m4.add(*point));
        Ok(m4.finish())
    }
}

/// Runs CPU-bound work (decoding, selecting percentiles) off the request threads, so that a
/// heavy query does not hold up the others.
pub async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, mymonit_tsdb::bits::DecodeError> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| ApiError::Internal(anyhow::anyhow!("statistics task failed: {err}")))?
        .map_err(|err| ApiError::Internal(anyhow::anyhow!("stored data is corrupt: {err}")))
}

/// The timestamp of the earliest point of any of these series.
pub async fn earliest(state: &AppState, series_ids: &[i64]) -> ApiResult<Option<i64>> {
    let mut earliest: Option<i64> = None;
    for &series_id in series_ids {
        if let Some(ts) = state.measures.earliest(series_id).await? {
            earliest = Some(earliest.map_or(ts, |e| e.min(ts)));
        }
    }
    Ok(earliest)
}

/// `[from, to)` from request parameters; `from` defaults to the first point and `to` to now.
/// `None` when there is no point and no `from`.
pub async fn range(
    state: &AppState,
    series: &[Series],
    from: Option<&str>,
    to: Option<&str>,
) -> ApiResult<Option<(i64, i64)>> {
    let to = parse_bound("to", to)?.unwrap_or_else(|| time::now_ns().saturating_add(1));
    let from = match parse_bound("from", from)? {
        Some(from) => from,
        None => {
            let ids: Vec<i64> = series.iter().map(|one| one.series_id).collect();
            match earliest(state, &ids).await? {
                Some(ts) => ts.min(to.saturating_sub(1)),
                None => return Ok(None),
            }
        }
    };
    if from >= to {
        return Err(ApiError::BadRequest("from must be before to".into()));
    }
    Ok(Some((from, to)))
}

/// One series' part in an aggregation.
pub struct Input<K> {
    /// The group whose buckets it adds to.
    pub group: K,
    /// The value of the tag a distinct count counts, if one is asked.
    pub tag_value: Option<String>,
    /// The series.
    pub series_id: i64,
}

/// Chunks below which an aggregation decodes on one thread.
const PARALLEL_CHUNKS: usize = 32;

/// Threads one aggregation may use (the machine's cores, at most 4).
fn aggregation_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// Cuts `items` into `threads` runs in order and works on each on its own thread; the results
/// in the runs' order (a panic on a thread is raised again here).
fn in_parallel<T: Sync, R: Send, E: Send>(
    items: &[T],
    threads: usize,
    work: impl Fn(&[T]) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E> {
    let work = &work;
    std::thread::scope(|scope| {
        let running: Vec<_> = items
            .chunks(items.len().div_ceil(threads.max(1)).max(1))
            .map(|part| scope.spawn(move || work(part)))
            .collect();
        running
            .into_iter()
            .map(|thread| {
                thread
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// Runs an aggregation over series, one set of buckets per group, clipped to `[from, to)`.
/// A long range is decoded on several threads, each taking a run of the chunks; their
/// buckets are then merged (percentiles select from all the values either way, so answers
/// do not depend on the split).
pub async fn aggregate_groups<K: Ord + Send + 'static>(
    state: &AppState,
    inputs: Vec<Input<K>>,
    statistics: &[Statistic],
    boundaries: &[i64],
    (from, to): (i64, i64),
) -> ApiResult<BTreeMap<K, Buckets>> {
    // Chunks inside one bucket are answered by their summaries: their bytes stay unread.
    let whole = Aggregation::new(statistics.to_vec(), boundaries.to_vec(), from, to).summary_rule();
    let mut read = Vec::with_capacity(inputs.len());
    for input in inputs {
        let data = read_series(state, input.series_id, from, to, whole.as_ref()).await?;
        read.push((input.group, input.tag_value, data));
    }
    let (statistics, boundaries) = (statistics.to_vec(), boundaries.to_vec());
    off_thread(move || {
        let new_aggregation = || Aggregation::new(statistics.clone(), boundaries.clone(), from, to);
        // Groups by index, in key order.
        let mut index_of: BTreeMap<K, usize> = BTreeMap::new();
        let mut series = Vec::with_capacity(read.len());
        for (group, tag_value, data) in read {
            let next = index_of.len();
            let index = *index_of.entry(group).or_insert(next);
            series.push((index, tag_value, data));
        }
        let work: Vec<(usize, Option<&str>, &Summary, &[u8])> = series
            .iter()
            .flat_map(|(group, tag_value, data)| {
                let group = *group;
                data.chunks.iter().map(move |(summary, bytes)| {
                    (group, tag_value.as_deref(), summary, bytes.as_slice())
                })
            })
            .collect();
        let threads = if work.len() >= PARALLEL_CHUNKS {
            aggregation_threads()
        } else {
            1
        };
        let group_count = index_of.len();
        let aggregate_part = |part: &[(usize, Option<&str>, &Summary, &[u8])]| {
            let mut groups: Vec<Option<Aggregation>> = vec![None; group_count];
            for &(group, tag_value, summary, bytes) in part {
                groups[group]
                    .get_or_insert_with(new_aggregation)
                    .add_chunk(summary, bytes, tag_value)?;
            }
            Ok::<_, mymonit_tsdb::bits::DecodeError>(groups)
        };
        let mut groups = if threads > 1 {
            let parts = in_parallel(&work, threads, aggregate_part)?;
            let mut parts = parts.into_iter();
            let mut merged = parts.next().unwrap_or_default();
            for part in parts {
                for (mine, theirs) in merged.iter_mut().zip(part) {
                    match (mine.as_mut(), theirs) {
                        (Some(mine), Some(theirs)) => mine.absorb(theirs),
                        (None, theirs) => *mine = theirs,
                        (_, None) => {}
                    }
                }
            }
            merged
        } else {
            aggregate_part(&work)?
        };
        drop(work);
        for (group, tag_value, data) in &series {
            let group = *group;
            let ts: Vec<i64> = data.recent.iter().map(|p| p.ts).collect();
            let seq: Vec<i64> = data.recent.iter().map(|p| p.seq).collect();
            let values: Vec<f64> = data.recent.iter().map(|p| p.value).collect();
            groups[group].get_or_insert_with(new_aggregation).add_run(
                Run {
                    ts: &ts,
                    seq: &seq,
                    values: &values,
                },
                tag_value.as_deref(),
            );
        }
        let finishing = aggregation_threads();
        Ok(index_of
            .into_iter()
            .filter_map(|(group, index)| {
                let aggregation = groups[index].take()?;
                Some((group, aggregation.finish_on(finishing)))
            })
            .collect())
    })
    .await
}

/// What an aggregation's buckets are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy<'a> {
    /// The value of a tag (series without it form the group `None`).
    Tag(&'a str),
    /// The measure type.
    Measure,
}

/// Runs an aggregation over series, one set of buckets per group (all in one without
/// `group_by`).
pub async fn aggregate(
    state: &AppState,
    series: &[Series],
    statistics: &[Statistic],
    boundaries: &[i64],
    range: (i64, i64),
    group_by: Option<GroupBy<'_>>,
) -> ApiResult<BTreeMap<Option<String>, Buckets>> {
    let distinct_key = statistics.iter().find_map(|s| match s {
        Statistic::CountDistinct(key) => Some(key.clone()),
        _ => None,
    });
    let inputs = series
        .iter()
        .map(|one| Input {
            group: match group_by {
                None => None,
                Some(GroupBy::Tag(key)) => one.tags.get(key).cloned(),
                Some(GroupBy::Measure) => Some(one.measure_type.clone()),
            },
            tag_value: distinct_key
                .as_ref()
                .and_then(|key| one.tags.get(key))
                .cloned(),
            series_id: one.series_id,
        })
        .collect();
    aggregate_groups(state, inputs, statistics, boundaries, range).await
}
