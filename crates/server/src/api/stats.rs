//! Statistics, boxplots, chart series, latest values and the live stream of an experiment.
//! The computation is `mymonit_tsdb`'s; this module checks access, reads the store's chunks
//! and recent points, and shapes the answers.

use std::{
    collections::{BTreeMap, HashMap},
    convert::Infallible,
    time::Duration,
};

use axum::{
    Json,
    extract::State,
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures::{StreamExt, stream};
use mymonit_model::{Action, measure::NewMeasure, time};
use mymonit_store::{Point, Series};
use mymonit_tsdb::{
    stats::{Figure, Statistic},
    timeslice::{self, Timeslice},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::{ApiJson, ApiPath, ApiQuery, experiments::visible_experiment};
use crate::query::{Buckets, GroupBy, aggregate, off_thread, range, read_series};
use crate::{
    auth::AuthUser,
    error::{ApiError, ApiResult},
    state::AppState,
};

/// Statistics when the request names none.
const DEFAULT_STATISTICS: &str = "count,mean,min,max";
/// Chart points when the request gives no `points`.
const DEFAULT_SERIES_POINTS: usize = 1000;

/// What an empty bucket shows.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Fill {
    /// Listed, with counts of 0 and other statistics null.
    Null,
    /// Listed, with every statistic 0.
    Zero,
}

/// Query parameters of the statistics endpoint.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// Measure type name, for example `volt` (required unless `group_by=measure`).
    pub measure: Option<String>,
    /// Comma-separated: count, sum, mean, min, max, stddev, first, last, pNN,
    /// count_distinct:tag:KEY. Default `count,mean,min,max`.
    pub statistics: Option<String>,
    /// Start, inclusive (RFC 3339 or epoch seconds); default: the first point.
    pub from: Option<String>,
    /// End, exclusive; default: now.
    pub to: Option<String>,
    /// minute, hour, day, week, month, year (calendar), or a duration such as 15m, 1h, 7d
    /// (with `timeslice_is_static=false`). Without it the range is one bucket.
    pub timeslice: Option<String>,
    /// `false`: slices of fixed length from `from`; `true` (default for units): calendar.
    pub timeslice_is_static: Option<bool>,
    /// `tag:KEY`: one set of buckets per value of the tag; `measure`: one per measure type
    /// (every type of the experiment, or only `measure`).
    pub group_by: Option<String>,
    /// Only series whose tags have one of the listed values, as a JSON object:
    /// `{"endpoint":["hello","world"]}` (keys are ANDed; a series without the tag is left out).
    pub tags: Option<String>,
    /// IANA time zone for calendar slices; default UTC.
    pub tz: Option<String>,
    /// `null` or `zero` to list empty buckets too.
    #[param(inline)]
    pub fill: Option<Fill>,
}

/// Query parameters of the boxplot endpoint.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BoxplotParams {
    /// Start, inclusive (RFC 3339 or epoch seconds); default: the first point.
    pub from: Option<String>,
    /// End, exclusive; default: now.
    pub to: Option<String>,
    /// Only this measure type (default: one box per type).
    pub measure: Option<String>,
    /// `tag:KEY`: one box per value of the tag (and type).
    pub group_by: Option<String>,
    /// Only series whose tags have one of the listed values, as a JSON object:
    /// `{"endpoint":["hello","world"]}` (keys are ANDed; a series without the tag is left out).
    pub tags: Option<String>,
}

/// Query parameters of the chart series endpoint.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SeriesParams {
    /// Measure type name (required).
    pub measure: Option<String>,
    /// Start, inclusive; default: the first point.
    pub from: Option<String>,
    /// End, exclusive; default: now.
    pub to: Option<String>,
    /// About how many points to return per series (default 1000).
    pub points: Option<usize>,
    /// Only series whose tags have one of the listed values, as a JSON object:
    /// `{"endpoint":["hello","world"]}` (keys are ANDed; a series without the tag is left out).
    pub tags: Option<String>,
}

/// The body of a retention change.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Points older than this many days are dropped; `null` keeps everything.
    pub days: Option<u32>,
}

/// The answer of `GET …/stats`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsAnswer {
    /// The measure type (`*` for every type, with `group_by=measure`).
    pub measure: String,
    /// Start of the range (RFC 3339); null when there is no point and no `from`.
    pub from: Option<String>,
    /// End of the range, exclusive.
    pub to: Option<String>,
    /// The timeslice asked for, if any.
    pub timeslice: Option<String>,
    /// The time zone of calendar slices.
    pub tz: String,
    /// The buckets in time order (groups in name order within a start). Written last: the
    /// answer streams them.
    pub buckets: Vec<StatsBucket>,
}

/// One bucket of `GET …/stats`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsBucket {
    /// Its start (RFC 3339).
    pub start: String,
    /// With `group_by`: the tag's value (null for series without the tag), or the measure
    /// type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<Option<String>>,
    /// One figure per statistic asked for, by its name (`count`, `mean`, `p99`…): counts are
    /// integers, figures not defined for the bucket null.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub figures: BTreeMap<String, Value>,
}

/// The answer of `GET …/boxplot`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BoxplotAnswer {
    /// Start of the range; null when the experiment has no point.
    pub from: Option<String>,
    /// End of the range, exclusive.
    pub to: Option<String>,
    /// One box per measure type with points in the range.
    pub boxes: Vec<Box>,
}

/// Min, quartiles and max of one measure type (of one tag value, with `group_by`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Box {
    /// The measure type.
    pub measure: String,
    /// With `group_by`: the tag's value (null for series without the tag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<Option<String>>,
    /// Points.
    pub count: u64,
    /// Smallest value.
    pub min: Option<f64>,
    /// First quartile.
    pub p25: Option<f64>,
    /// Median.
    pub p50: Option<f64>,
    /// Third quartile.
    pub p75: Option<f64>,
    /// Largest value.
    pub max: Option<f64>,
}

/// The answer of `GET …/series`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeriesAnswer {
    /// The measure type.
    pub measure: String,
    /// Start of the range; null when there is no point and no `from`.
    pub from: Option<String>,
    /// End of the range, exclusive.
    pub to: Option<String>,
    /// One line per series with points in the range.
    pub series: Vec<ChartSeries>,
}

/// One series, downsampled for a chart.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChartSeries {
    /// The series' tags.
    pub tags: BTreeMap<String, String>,
    /// Times, milliseconds since the epoch.
    pub timestamps_ms: Vec<i64>,
    /// Values, one per time.
    pub values: Vec<f64>,
}

/// The answer of `GET …/latest`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LatestAnswer {
    /// The experiment.
    pub experiment_id: i64,
    /// The latest point of every series that has one.
    pub latest: Vec<LatestPoint>,
}

/// The latest point of one series.
#[derive(Debug, Serialize, ToSchema)]
pub struct LatestPoint {
    /// The measure type.
    pub measure_type: String,
    /// The series' tags.
    pub tags: BTreeMap<String, String>,
    /// Its time (RFC 3339).
    pub timestamp: String,
    /// Its value.
    pub value: f64,
}

fn bad(text: impl Into<String>) -> ApiError {
    ApiError::BadRequest(text.into())
}

/// The series of a measure type in an experiment the caller may read.
async fn measure_series(
    state: &AppState,
    actor: &AuthUser,
    experiment_id: i64,
    measure: Option<&str>,
    tags: Option<&str>,
) -> ApiResult<(String, Vec<Series>)> {
    let filter = tag_filter(tags)?;
    visible_experiment(state, actor, Action::ReadMeasures, experiment_id).await?;
    let name =
        measure.ok_or_else(|| bad("measure: required (a measure type name such as volt)"))?;
    let measure_type = state
        .meta
        .measure_type_by_name(name)
        .await?
        .ok_or_else(|| bad(format!("measure: unknown measure type {name:?}")))?;
    let mut series = state
        .measures
        .series(experiment_id, Some(measure_type.measure_type_id))
        .await?;
    series.retain(|one| keeps(filter.as_ref(), one));
    Ok((name.to_owned(), series))
}

/// Tag values to keep, by key.
type TagFilter = BTreeMap<String, Vec<String>>;

/// Reads the `tags` parameter.
fn tag_filter(text: Option<&str>) -> ApiResult<Option<TagFilter>> {
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return Ok(None);
    };
    serde_json::from_str::<TagFilter>(text).map(Some).map_err(|_| {
        bad(format!(
            "tags: {text:?} is not a JSON object of lists of values, such as {{\"endpoint\":[\"hello\"]}}"
        ))
    })
}

/// Whether a series passes a tag filter.
fn keeps(filter: Option<&TagFilter>, series: &Series) -> bool {
    filter.is_none_or(|filter| {
        filter.iter().all(|(key, values)| {
            series
                .tags
                .get(key)
                .is_some_and(|value| values.iter().any(|v| v == value))
        })
    })
}

/// Reads the statistics' `group_by` parameter (`tag:KEY` or `measure`).
fn stats_grouping(text: Option<&str>) -> ApiResult<Option<GroupBy<'_>>> {
    match text {
        Some("measure") => Ok(Some(GroupBy::Measure)),
        Some(text) => match text.strip_prefix("tag:").filter(|key| !key.is_empty()) {
            Some(key) => Ok(Some(GroupBy::Tag(key))),
            None => Err(bad(format!(
                "group_by: {text:?} is neither tag:KEY nor measure"
            ))),
        },
        None => Ok(None),
    }
}

/// Reads a `group_by` parameter (`tag:KEY`).
fn group_key(text: Option<&str>) -> ApiResult<Option<&str>> {
    text.map(|text| {
        text.strip_prefix("tag:")
            .filter(|key| !key.is_empty())
            .ok_or_else(|| bad(format!("group_by: {text:?} is not tag:KEY")))
    })
    .transpose()
}

fn figure_json(figure: Figure) -> Value {
    match figure {
        Figure::Integer(n) => json!(n),
        Figure::Number(x) => json!(x),
        Figure::Missing => Value::Null,
    }
}

fn bucket_json(
    start: i64,
    figures: Option<Vec<Figure>>,
    statistics: &[Statistic],
    fill: Option<Fill>,
) -> Option<StatsBucket> {
    let mut object = BTreeMap::new();
    match figures {
        Some(figures) => {
            for (statistic, figure) in statistics.iter().zip(figures) {
                object.insert(statistic.to_string(), figure_json(figure));
            }
        }
        None => {
            let fill = fill?;
            for statistic in statistics {
                let counted = matches!(statistic, Statistic::Count | Statistic::CountDistinct(_));
                let value = match (fill, counted) {
                    (_, true) => json!(0),
                    (Fill::Zero, false) => json!(0.0),
                    (Fill::Null, false) => Value::Null,
                };
                object.insert(statistic.to_string(), value);
            }
        }
    }
    Some(StatsBucket {
        start: time::format_rfc3339(start),
        group: None,
        figures: object,
    })
}

/// The statistics named, each once, in the order first named; at most `max` of them.
fn parse_statistics(text: &str, max: usize) -> ApiResult<Vec<Statistic>> {
    let mut statistics: Vec<Statistic> = Vec::new();
    for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let statistic: Statistic = name
            .parse()
            .map_err(|err| bad(format!("statistics: {err}")))?;
        if !statistics.contains(&statistic) {
            if statistics.len() == max {
                return Err(bad(format!(
                    "statistics: at most {max} different ones per request (api.max_statistics)"
                )));
            }
            statistics.push(statistic);
        }
    }
    if statistics.is_empty() {
        return Err(bad("statistics: name at least one"));
    }
    Ok(statistics)
}

/// Statistics computations per user: at most `api.max_concurrent_stats_per_user` run at once
/// (the others wait their turn, as a dashboard's many charts do), and at most
/// [`MAX_WAITING_PER_USER`] wait; beyond, 429. One user's heavy requests so queue behind each
/// other instead of taking every blocking thread from everyone else.
#[derive(Debug, Default)]
pub struct InFlight(std::sync::Mutex<HashMap<String, std::sync::Arc<UserSlots>>>);

/// Requests of one user that may wait for a computation slot.
pub const MAX_WAITING_PER_USER: usize = 16;

#[derive(Debug)]
struct UserSlots {
    running: std::sync::Arc<tokio::sync::Semaphore>,
    waiting: std::sync::atomic::AtomicUsize,
}

/// A computation's slot; freed when dropped.
pub struct InFlightGuard {
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl InFlight {
    /// Waits for one of `user_id`'s `max` slots; refuses when too many already wait.
    pub async fn enter(&self, user_id: &str, max: usize) -> ApiResult<InFlightGuard> {
        let slots = {
            let mut users = self.0.lock().unwrap_or_else(|e| e.into_inner());
            users
                .entry(user_id.to_string())
                .or_insert_with(|| {
                    std::sync::Arc::new(UserSlots {
                        running: std::sync::Arc::new(tokio::sync::Semaphore::new(max.max(1))),
                        waiting: std::sync::atomic::AtomicUsize::new(0),
                    })
                })
                .clone()
        };
        use std::sync::atomic::Ordering;
        if slots.waiting.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING_PER_USER {
            slots.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(ApiError::RateLimited(
                format!(
                    "{MAX_WAITING_PER_USER} statistics requests of yours are waiting to be \
                     computed: try again when they are done (api.max_concurrent_stats_per_user \
                     run at once)"
                ),
                1,
            ));
        }
        let permit = slots.running.clone().acquire_owned().await;
        slots.waiting.fetch_sub(1, Ordering::SeqCst);
        permit
            .map(|permit| InFlightGuard { _permit: permit })
            .map_err(|_| ApiError::Internal(anyhow::anyhow!("statistics slots closed")))
    }
}

/// Waits for one of the actor's statistics slots.
pub(crate) async fn computing(state: &AppState, actor: &AuthUser) -> ApiResult<InFlightGuard> {
    state
        .stats_in_flight
        .enter(
            &actor.user.user_id,
            state.settings.api.max_concurrent_stats_per_user,
        )
        .await
}

/// Refuses an answer that would hold more than `api.max_stats_cells` figures.
fn check_cells(
    state: &AppState,
    buckets: usize,
    statistics: usize,
    groups: usize,
) -> ApiResult<()> {
    let max = state.settings.api.max_stats_cells;
    let cells = buckets
        .saturating_mul(statistics)
        .saturating_mul(groups.max(1));
    if cells > max {
        return Err(bad(format!(
            "the answer would hold {cells} figures ({buckets} buckets × {statistics} statistics × \
             {} groups), at most {max} (api.max_stats_cells): narrow the range, widen the \
             timeslice or name fewer statistics",
            groups.max(1)
        )));
    }
    Ok(())
}

/// Statistics of one measure type over a range, in time slices (associated scientists).
#[utoipa::path(get, path = "/api/v1/experiments/{experiment_id}/stats", tag = "measures",
    security(("bearer" = [])), params(("experiment_id" = i64, Path), StatsParams),
    responses(
        (status = 200, body = StatsAnswer),
        (status = 400, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem)))]
pub async fn stats(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiPath(experiment_id): ApiPath<i64>,
    ApiQuery(params): ApiQuery<StatsParams>,
) -> ApiResult<Response> {
    let group_by = stats_grouping(params.group_by.as_deref())?;
    let (measure, series) = match (group_by, params.measure.as_deref()) {
        (Some(GroupBy::Measure), None) => {
            visible_experiment(&state, &actor, Action::ReadMeasures, experiment_id).await?;
            let filter = tag_filter(params.tags.as_deref())?;
            let mut all = state.measures.series(experiment_id, None).await?;
            all.retain(|one| keeps(filter.as_ref(), one));
            ("*".to_owned(), all)
        }
        (_, measure) => {
            measure_series(
                &state,
                &actor,
                experiment_id,
                measure,
                params.tags.as_deref(),
            )
            .await?
        }
    };
    let statistics = parse_statistics(
        params.statistics.as_deref().unwrap_or(DEFAULT_STATISTICS),
        state.settings.api.max_statistics,
    )?;
    let _computing = computing(&state, &actor).await?;
    let timeslice = params
        .timeslice
        .as_deref()
        .map(|text| Timeslice::parse(text, params.timeslice_is_static))
        .transpose()
        .map_err(|err| bad(format!("timeslice: {err}")))?;
    if timeslice.is_none() && params.timeslice_is_static.is_some() {
        return Err(bad("timeslice_is_static: only meaningful with a timeslice"));
    }
    let zone_name = params.tz.as_deref().unwrap_or("UTC");
    let zone = timeslice::parse_zone(zone_name).map_err(|err| bad(format!("tz: {err}")))?;
    let range = range(
        &state,
        &series,
        params.from.as_deref(),
        params.to.as_deref(),
    )
    .await?;
    let mut answer = StatsAnswer {
        measure,
        from: None,
        to: None,
        timeslice: params.timeslice.clone(),
        tz: zone_name.to_owned(),
        buckets: Vec::new(),
    };
    let Some((from, to)) = range else {
        return Ok(Json(answer).into_response());
    };
    let max_buckets = state.settings.api.max_buckets;
    let boundaries = match timeslice {
        Some(slice) => slice
            .boundaries(from, to, zone, max_buckets)
            .map_err(|err| bad(format!("timeslice: {err}")))?,
        None => vec![from, to],
    };
    let group_count = match group_by {
        Some(GroupBy::Tag(key)) => series
            .iter()
            .map(|one| one.tags.get(key))
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        Some(GroupBy::Measure) => series
            .iter()
            .map(|one| &one.measure_type)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        None => 1,
    };
    check_cells(
        &state,
        boundaries.len().saturating_sub(1),
        statistics.len(),
        group_count,
    )?;
    let mut groups = aggregate(
        &state,
        &series,
        &statistics,
        &boundaries,
        (from, to),
        group_by,
    )
    .await?;
    if groups.is_empty() {
        // No series at all: the buckets are still there to fill.
        let empty = boundaries.iter().take(boundaries.len() - 1);
        groups.insert(None, empty.map(|&start| (start, None)).collect());
    }
    answer.from = Some(time::format_rfc3339(from));
    answer.to = Some(time::format_rfc3339(to));
    // The buckets are written as they are serialised, a slice at a time, so a large answer
    // never exists whole as JSON values in memory; the user's computation slot is held until
    // the last byte is out. They are the answer's last field: its text ends in `[]}`.
    let head = serde_json::to_string(&answer)
        .map_err(|err| ApiError::Internal(anyhow::anyhow!("cannot write the answer: {err}")))?;
    let head = head
        .strip_suffix("]}")
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("unexpected answer head {head}")))?
        .to_owned();
    let (names, groups): (Vec<Option<String>>, Vec<Buckets>) = groups.into_iter().unzip();
    let rows = BucketRows {
        groups,
        names,
        statistics,
        fill: params.fill,
        grouped: group_by.is_some(),
        next: 0,
        first: true,
    };
    let chunks = stream::once(async move { Ok::<_, Infallible>(head.into_bytes()) })
        .chain(stream::unfold(
            (rows, _computing),
            |(mut rows, guard)| async move {
                let chunk = rows.next_chunk()?;
                Some((Ok(chunk), (rows, guard)))
            },
        ))
        .chain(stream::once(async { Ok(b"]}".to_vec()) }));
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        axum::body::Body::from_stream(chunks),
    )
        .into_response())
}

/// Buckets of every group, in time order (groups in name order within a start), written as
/// JSON a slice at a time.
struct BucketRows {
    groups: Vec<Buckets>,
    names: Vec<Option<String>>,
    statistics: Vec<Statistic>,
    fill: Option<Fill>,
    grouped: bool,
    /// The next bucket index (the same in every group: they share their boundaries).
    next: usize,
    first: bool,
}

/// Buckets per written slice of the answer.
const BUCKETS_PER_CHUNK: usize = 1_000;

impl BucketRows {
    /// The next slice of the `buckets` array's text, or `None` when all are written.
    fn next_chunk(&mut self) -> Option<Vec<u8>> {
        let total = self.groups.first().map_or(0, Vec::len);
        if self.next >= total {
            return None;
        }
        let end = (self.next + BUCKETS_PER_CHUNK).min(total);
        let mut out = Vec::new();
        for index in self.next..end {
            for (group, name) in self.groups.iter_mut().zip(&self.names) {
                let Some((start, figures)) = group.get_mut(index).map(|b| (b.0, b.1.take())) else {
                    continue;
                };
                let Some(mut object) = bucket_json(start, figures, &self.statistics, self.fill)
                else {
                    continue;
                };
                if self.grouped {
                    object.group = Some(name.clone());
                }
                if !self.first {
                    out.push(b',');
                }
                self.first = false;
                // Writing a map of plain values into a vector cannot fail.
                let _ = serde_json::to_writer(&mut out, &object);
            }
        }
        self.next = end;
        Some(out)
    }
}

/// Min, quartiles and max of every measure type of an experiment over a range.
#[utoipa::path(get, path = "/api/v1/experiments/{experiment_id}/boxplot", tag = "measures",
    security(("bearer" = [])), params(("experiment_id" = i64, Path), BoxplotParams),
    responses(
        (status = 200, body = BoxplotAnswer),
        (status = 400, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem)))]
pub async fn boxplot(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiPath(experiment_id): ApiPath<i64>,
    ApiQuery(params): ApiQuery<BoxplotParams>,
) -> ApiResult<Json<BoxplotAnswer>> {
    let group_by = group_key(params.group_by.as_deref())?;
    let all = match params.measure.as_deref() {
        Some(measure) => {
            measure_series(
                &state,
                &actor,
                experiment_id,
                Some(measure),
                params.tags.as_deref(),
            )
            .await?
            .1
        }
        None => {
            visible_experiment(&state, &actor, Action::ReadMeasures, experiment_id).await?;
            let filter = tag_filter(params.tags.as_deref())?;
            let mut all = state.measures.series(experiment_id, None).await?;
            all.retain(|one| keeps(filter.as_ref(), one));
            all
        }
    };
    let _computing = computing(&state, &actor).await?;
    let Some((from, to)) =
        range(&state, &all, params.from.as_deref(), params.to.as_deref()).await?
    else {
        return Ok(Json(BoxplotAnswer {
            from: None,
            to: None,
            boxes: Vec::new(),
        }));
    };
    let statistics = parse_statistics("count,min,p25,p50,p75,max", 6)?;
    let mut by_type: BTreeMap<String, Vec<Series>> = BTreeMap::new();
    for one in all {
        by_type
            .entry(one.measure_type.clone())
            .or_default()
            .push(one);
    }
    let mut boxes = Vec::new();
    for (measure, series) in by_type {
        let groups = aggregate(
            &state,
            &series,
            &statistics,
            &[from, to],
            (from, to),
            group_by.map(GroupBy::Tag),
        )
        .await?;
        for (group, buckets) in groups {
            for (_, figures) in buckets {
                let Some(figures) = figures else { continue };
                let number = |index: usize| match figures.get(index) {
                    Some(Figure::Number(x)) => Some(*x),
                    _ => None,
                };
                let count = match figures.first() {
                    Some(Figure::Integer(n)) => *n,
                    _ => 0,
                };
                boxes.push(Box {
                    measure: measure.clone(),
                    group: group_by.map(|_| group.clone()),
                    count,
                    min: number(1),
                    p25: number(2),
                    p50: number(3),
                    p75: number(4),
                    max: number(5),
                });
            }
        }
    }
    Ok(Json(BoxplotAnswer {
        from: Some(time::format_rfc3339(from)),
        to: Some(time::format_rfc3339(to)),
        boxes,
    }))
}

/// A measure type's series downsampled for a chart: at most about `points` points per series
/// that draw the same line as all of them (first, last, min and max per pixel column).
#[utoipa::path(get, path = "/api/v1/experiments/{experiment_id}/series", tag = "measures",
    security(("bearer" = [])), params(("experiment_id" = i64, Path), SeriesParams),
    responses(
        (status = 200, body = SeriesAnswer),
        (status = 400, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem)))]
pub async fn series(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiPath(experiment_id): ApiPath<i64>,
    ApiQuery(params): ApiQuery<SeriesParams>,
) -> ApiResult<Json<SeriesAnswer>> {
    let (measure, all) = measure_series(
        &state,
        &actor,
        experiment_id,
        params.measure.as_deref(),
        params.tags.as_deref(),
    )
    .await?;
    let _computing = computing(&state, &actor).await?;
    let points = params.points.unwrap_or(DEFAULT_SERIES_POINTS);
    let max = state.settings.api.max_series_points;
    if points < 4 || points > max {
        return Err(bad(format!("points: between 4 and {max}")));
    }
    let Some((from, to)) =
        range(&state, &all, params.from.as_deref(), params.to.as_deref()).await?
    else {
        return Ok(Json(SeriesAnswer {
            measure,
            from: None,
            to: None,
            series: Vec::new(),
        }));
    };
    let mut inputs = Vec::with_capacity(all.len());
    for one in &all {
        inputs.push((
            one.tags.clone(),
            read_series(&state, one.series_id, from, to, None).await?,
        ));
    }
    let kept = off_thread(move || {
        let mut kept = Vec::new();
        for (tags, data) in inputs {
            kept.push((tags, data.downsample(from, to, points)?));
        }
        Ok(kept)
    })
    .await?;
    let mut out = Vec::new();
    for (tags, kept) in kept {
        if kept.is_empty() {
            continue;
        }
        out.push(ChartSeries {
            tags,
            timestamps_ms: kept.iter().map(|p| p.ts.div_euclid(1_000_000)).collect(),
            values: kept.iter().map(|p| p.value).collect(),
        });
    }
    Ok(Json(SeriesAnswer {
        measure,
        from: Some(time::format_rfc3339(from)),
        to: Some(time::format_rfc3339(to)),
        series: out,
    }))
}

/// The latest point of every series of an experiment.
#[utoipa::path(get, path = "/api/v1/experiments/{experiment_id}/latest", tag = "measures",
    security(("bearer" = [])), params(("experiment_id" = i64, Path)),
    responses(
        (status = 200, body = LatestAnswer),
        (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
pub async fn latest(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiPath(experiment_id): ApiPath<i64>,
) -> ApiResult<Json<LatestAnswer>> {
    // The read runs beside the access check (its answer is dropped unless access holds):
    // each is a read of its own.
    let (access, latest) = tokio::join!(
        visible_experiment(&state, &actor, Action::ReadMeasures, experiment_id),
        state.measures.latest_of_experiment(experiment_id)
    );
    access?;
    let latest: Vec<LatestPoint> = latest?
        .into_iter()
        .map(|(one, Point { ts, value, .. })| LatestPoint {
            measure_type: one.measure_type,
            tags: one.tags,
            timestamp: time::format_rfc3339(ts),
            value,
        })
        .collect();
    Ok(Json(LatestAnswer {
        experiment_id,
        latest,
    }))
}

/// How often an open live stream checks that its reader may still read (signed out, token
/// expired, password changed, account erased, association removed).
const STREAM_RECHECK: Duration = Duration::from_secs(2);

/// Who opened a live stream, to check again while it runs.
struct StreamAccess {
    actor: AuthUser,
    experiment_id: i64,
    /// The account's token generation when the stream opened (a password change moves it).
    generation: i64,
}

impl StreamAccess {
    /// Why the reader may no longer read, if so. A database error ends the stream too: it
    /// cannot be shown that access still holds.
    async fn ended(&self, state: &AppState) -> Option<String> {
        let user = &self.actor.user;
        if time::now_ns() / 1_000_000_000 >= self.actor.expires_at {
            return Some("the token expired: sign in again".into());
        }
        match state.meta.is_token_revoked(&self.actor.token_hash).await {
            Ok(false) => {}
            Ok(true) => return Some("the token was revoked (signed out)".into()),
            Err(err) => return Some(format!("access cannot be checked: {err}")),
        }
        let account = match state.meta.account_by_id(&user.user_id).await {
            Ok(Some(account)) => account,
            Ok(None) => return Some("the account no longer exists".into()),
            Err(err) => return Some(format!("access cannot be checked: {err}")),
        };
        if account.token_generation != self.generation {
            return Some("the password changed: sign in again".into());
        }
        let now = AuthUser {
            user: account.user,
            ..self.actor.clone()
        };
        match visible_experiment(state, &now, Action::ReadMeasures, self.experiment_id).await {
            Ok(_) => None,
            Err(err) => Some(err.to_string()),
        }
    }
}

/// What the live stream needs to name measures.
struct LiveContext {
    state: AppState,
    experiment_id: i64,
    experiment: String,
    measure_types: HashMap<i64, String>,
}

impl LiveContext {
    async fn events(&mut self, batch: &[NewMeasure]) -> Vec<Event> {
        let mut events = Vec::new();
        for measure in batch
            .iter()
            .filter(|m| m.experiment_id == self.experiment_id)
        {
            if !self.measure_types.contains_key(&measure.measure_type_id)
                && let Ok(types) = self.state.meta.list_measure_types().await
            {
                self.measure_types = types
                    .into_iter()
                    .map(|t| (t.measure_type_id, t.name))
                    .collect();
            }
            let measure_type = self
                .measure_types
                .get(&measure.measure_type_id)
                .cloned()
                .unwrap_or_default();
            let mut data = json!({
                "measure_type": measure_type,
                "timestamp": time::format_rfc3339(measure.timestamp_ns),
                "experiment": self.experiment,
                "value": measure.value,
            });
            if !measure.tags.is_empty() {
                data["tags"] = json!(measure.tags);
            }
            events.push(Event::default().event("measure").data(data.to_string()));
        }
        events
    }
}

/// Each new measure of the experiment, as Server-Sent Events (`event: measure`), once it is
/// committed. A client too slow to keep up gets `event: lagged` with how many batches it
/// missed, then the stream goes on.
#[utoipa::path(get, path = "/api/v1/experiments/{experiment_id}/stream", tag = "measures",
    security(("bearer" = [])), params(("experiment_id" = i64, Path)),
    responses(
        (status = 200, content_type = "text/event-stream", description = "`event: measure` with `{measure_type, timestamp, experiment, value, tags}`"),
        (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
pub async fn stream(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiPath(experiment_id): ApiPath<i64>,
) -> ApiResult<Response> {
    let experiment =
        visible_experiment(&state, &actor, Action::ReadMeasures, experiment_id).await?;
    let generation = state
        .meta
        .account_by_id(&actor.user.user_id)
        .await?
        .map(|account| account.token_generation)
        .unwrap_or_default();
    let receiver = state.measures.subscribe();
    let mut stopping = state.stopping.subscribe();
    let context = LiveContext {
        state: state.clone(),
        experiment_id,
        experiment: experiment.name,
        measure_types: HashMap::new(),
    };
    let mut recheck = tokio::time::interval(STREAM_RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let access = StreamAccess {
        actor,
        experiment_id,
        generation,
    };
    let events = stream::unfold(
        Some((receiver, context, recheck, access)),
        |running| async move {
            let (mut receiver, mut context, mut recheck, access) = running?;
            loop {
                let events = tokio::select! {
                    received = receiver.recv() => match received {
                        Ok(batch) => context.events(&batch).await,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                            vec![
                                Event::default()
                                    .event("lagged")
                                    .data(json!({"missed_batches": missed}).to_string()),
                            ]
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    },
                    _ = recheck.tick() => {
                        if let Some(reason) = access.ended(&context.state).await {
                            tracing::info!(user_id = %access.actor.user.user_id, experiment_id = access.experiment_id, reason = %reason, "live stream ended: access ended");
                            let end = Event::default()
                                .event("end")
                                .data(json!({"reason": reason}).to_string());
                            return Some((stream::iter(vec![end]), None));
                        }
                        Vec::new()
                    }
                };
                if !events.is_empty() {
                    return Some((
                        stream::iter(events),
                        Some((receiver, context, recheck, access)),
                    ));
                }
            }
        },
    )
    .flatten()
    .map(Ok::<Event, Infallible>);
    // Ends when the server stops, so that shutdown does not wait for open streams.
    let until_stop = events.take_until(async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    });
    // A first comment at once: the response headers go out with it, so the client knows the
    // stream is open instead of waiting for the first measure or keep-alive.
    let opened = stream::once(async { Ok(Event::default().comment("connected")) });
    Ok(Sse::new(opened.chain(until_stop))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// How many days of points an experiment keeps (admins).
#[utoipa::path(get, path = "/api/v1/experiments/{experiment_id}/retention", tag = "experiments",
    security(("bearer" = [])), params(("experiment_id" = i64, Path)),
    responses((status = 200, body = Retention), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem)))]
pub async fn get_retention(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiPath(experiment_id): ApiPath<i64>,
) -> ApiResult<Json<Retention>> {
    actor.require(Action::ManageExperiments)?;
    let days = state.meta.retention_days(experiment_id).await?;
    Ok(Json(Retention { days }))
}

/// Sets how many days of points an experiment keeps (admins); older points are dropped by
/// the hourly maintenance.
#[utoipa::path(put, path = "/api/v1/experiments/{experiment_id}/retention", tag = "experiments",
    security(("bearer" = [])), params(("experiment_id" = i64, Path)), request_body = Retention,
    responses((status = 200, body = Retention), (status = 400, body = crate::error::Problem),
        (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
pub async fn set_retention(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiPath(experiment_id): ApiPath<i64>,
    ApiJson(retention): ApiJson<Retention>,
) -> ApiResult<Json<Retention>> {
    actor.require(Action::ManageExperiments)?;
    if retention.days == Some(0) {
        return Err(ApiError::Invalid(
            "days: at least 1, or null to keep everything".into(),
            Some("days"),
        ));
    }
    state
        .meta
        .set_retention_days(experiment_id, retention.days)
        .await?;
    Ok(Json(retention))
}
