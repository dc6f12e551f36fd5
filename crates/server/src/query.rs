//! Reading and aggregating series for every query API (`/api/v1/…/stats`, InfluxQL's
//! `SELECT`): the store's chunks and recent points in, `mymonit_tsdb`'s exact statistics out,
//! the CPU-bound part off the request threads.

use std::collections::BTreeMap;

use mymonit_model::time;
use mymonit_store::{Point, Series, Summary};
use mymonit_tsdb::stats::{Aggregation, Figure, Run, Statistic};

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

/// Reads a series' chunks and recent points in `[from, to)`.
pub async fn read_series(
    state: &AppState,
    series_id: i64,
    from: i64,
    to: i64,
) -> ApiResult<SeriesData> {
    let mut chunks = Vec::new();
    let recent = state
        .measures
        .read_series(series_id, from, to, &mut |summary, bytes| {
            chunks.push((*summary, bytes.to_vec()));
            Ok(())
        })
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

/// Runs an aggregation over series, one set of buckets per group, clipped to `[from, to)`.
pub async fn aggregate_groups<K: Ord + Send + 'static>(
    state: &AppState,
    inputs: Vec<Input<K>>,
    statistics: &[Statistic],
    boundaries: &[i64],
    (from, to): (i64, i64),
) -> ApiResult<BTreeMap<K, Buckets>> {
    let mut read = Vec::with_capacity(inputs.len());
    for input in inputs {
        let data = read_series(state, input.series_id, from, to).await?;
        read.push((input.group, input.tag_value, data));
    }
    let (statistics, boundaries) = (statistics.to_vec(), boundaries.to_vec());
    off_thread(move || {
        let mut groups: BTreeMap<K, Aggregation> = BTreeMap::new();
        for (group, tag_value, data) in read {
            let aggregation = groups.entry(group).or_insert_with(|| {
                Aggregation::new(statistics.clone(), boundaries.clone(), from, to)
            });
            let tag_value = tag_value.as_deref();
            for (summary, bytes) in &data.chunks {
                aggregation.add_chunk(summary, bytes, tag_value)?;
            }
            let ts: Vec<i64> = data.recent.iter().map(|p| p.ts).collect();
            let seq: Vec<i64> = data.recent.iter().map(|p| p.seq).collect();
            let values: Vec<f64> = data.recent.iter().map(|p| p.value).collect();
            aggregation.add_run(
                Run {
                    ts: &ts,
                    seq: &seq,
                    values: &values,
                },
                tag_value,
            );
        }
        Ok(groups
            .into_iter()
            .map(|(group, aggregation)| (group, aggregation.finish()))
            .collect())
    })
    .await
}

/// Runs an aggregation over series, one per group (`group_by` tag value).
pub async fn aggregate(
    state: &AppState,
    series: &[Series],
    statistics: &[Statistic],
    boundaries: &[i64],
    range: (i64, i64),
    group_by: Option<&str>,
) -> ApiResult<BTreeMap<Option<String>, Buckets>> {
    let distinct_key = statistics.iter().find_map(|s| match s {
        Statistic::CountDistinct(key) => Some(key.clone()),
        _ => None,
    });
    let inputs = series
        .iter()
        .map(|one| Input {
            group: group_by.and_then(|key| one.tags.get(key).cloned()),
            tag_value: distinct_key
                .as_ref()
                .and_then(|key| one.tags.get(key))
                .cloned(),
            series_id: one.series_id,
        })
        .collect();
    aggregate_groups(state, inputs, statistics, boundaries, range).await
}
