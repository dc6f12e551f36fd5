//! Reading measures: a page of JSON with a cursor, or the whole range streamed as CSV or
//! NDJSON. Streams read the store a page at a time, so a million points never sit in memory.

use std::{collections::BTreeMap, sync::Arc};

use axum::{
    body::{Body, Bytes},
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use futures::{Stream, StreamExt, stream};
use mymonit_model::{
    Action, Experiment,
    measure::{Measure, MeasurePage},
    time,
};
use mymonit_store::{MeasureQuery, MeasureStore, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiPath, ApiQuery, experiments::visible_experiment};
use crate::{
    auth::AuthUser,
    error::{ApiError, ApiResult},
    state::AppState,
};

/// Rows read from the store per step of a streamed export.
const STREAM_PAGE: u32 = 5_000;

/// Output format.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One page of JSON with `next_cursor`.
    #[default]
    Json,
    /// The whole range as CSV, streamed.
    Csv,
    /// The whole range as newline-delimited JSON, streamed.
    Ndjson,
}

/// Query parameters of the measures listing.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MeasuresParams {
    /// Start, inclusive: RFC 3339 or epoch seconds.
    pub from: Option<String>,
    /// End, exclusive: RFC 3339 or epoch seconds.
    pub to: Option<String>,
    /// Only this measure type (by name, for example `hertz`).
    pub measure: Option<String>,
    /// Page size for JSON (default 1000); for CSV and NDJSON, the most rows to export.
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// `json` (default), `csv` or `ndjson`.
    #[param(inline)]
    pub format: Option<Format>,
}

/// A measure as `/api/v1` shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeasureOut {
    /// Measure type name.
    pub measure_type: String,
    /// RFC 3339, UTC.
    pub timestamp: String,
    /// Experiment name.
    pub experiment: String,
    /// The reading.
    pub value: f64,
    /// Tags, when there are any.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl From<Measure> for MeasureOut {
    fn from(measure: Measure) -> Self {
        Self {
            measure_type: measure.measure_type,
            timestamp: time::format_rfc3339(measure.timestamp_ns),
            experiment: measure.experiment,
            value: measure.value,
            tags: measure.tags,
        }
    }
}

/// One page of measures.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeasuresPage {
    /// The experiment.
    pub experiment_id: i64,
    /// Measures in time order.
    pub measures: Vec<MeasureOut>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Writes the measures of pages as JSON objects, byte for byte as serde writes
/// [`MeasureOut`], without allocations per measure: names and tags are escaped once per page
/// and series, dates once per day.
#[derive(Debug, Default)]
struct MeasureJson {
    timestamps: time::Rfc3339Writer,
}

impl MeasureJson {
    /// Appends the page's measures to `out`, `between` between two and `after` after each.
    fn write_page(&mut self, page: &MeasurePage, out: &mut Vec<u8>, between: &[u8], after: &[u8]) {
        // Writing JSON to a Vec cannot fail.
        let experiment = serde_json::to_vec(&page.experiment).unwrap_or_default();
        let series: Vec<(Vec<u8>, Vec<u8>)> = page
            .series
            .iter()
            .map(|(measure_type, tags)| {
                let tags = if tags.is_empty() {
                    Vec::new()
                } else {
                    serde_json::to_vec(tags).unwrap_or_default()
                };
                (serde_json::to_vec(measure_type).unwrap_or_default(), tags)
            })
            .collect();
        for (index, point) in page.points.iter().enumerate() {
            if index > 0 {
                out.extend_from_slice(between);
            }
            let (measure_type, tags) = &series[point.series];
            out.extend_from_slice(b"{\"measure_type\":");
            out.extend_from_slice(measure_type);
            out.extend_from_slice(b",\"timestamp\":\"");
            self.timestamps.write(point.timestamp_ns, out);
            out.extend_from_slice(b"\",\"experiment\":");
            out.extend_from_slice(&experiment);
            out.extend_from_slice(b",\"value\":");
            // As serde_json writes an f64 (`null` when it is not finite).
            let _ = serde_json::to_writer(&mut *out, &point.value);
            if !tags.is_empty() {
                out.extend_from_slice(b",\"tags\":");
                out.extend_from_slice(tags);
            }
            out.push(b'}');
            out.extend_from_slice(after);
        }
    }
}

/// A [`MeasuresPage`] as JSON, written directly (the page's type documents the shape).
fn json_page(page: &MeasurePage, next_cursor: Option<&str>) -> Bytes {
    let mut out = Vec::with_capacity(64 + page.len() * 96);
    out.extend_from_slice(b"{\"experiment_id\":");
    out.extend_from_slice(page.experiment_id.to_string().as_bytes());
    out.extend_from_slice(b",\"measures\":[");
    MeasureJson::default().write_page(page, &mut out, b",", b"");
    out.extend_from_slice(b"],\"next_cursor\":");
    let _ = serde_json::to_writer(&mut out, &next_cursor);
    out.push(b'}');
    Bytes::from(out)
}

fn encode_cursor(timestamp_ns: i64, seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{timestamp_ns}:{seq}"))
}

fn decode_cursor(cursor: &str) -> Result<(i64, i64), ApiError> {
    let invalid = || ApiError::BadRequest("cursor: not a cursor this API returned".into());
    let text = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(text).map_err(|_| invalid())?;
    let (ts, seq) = text.split_once(':').ok_or_else(invalid)?;
    Ok((
        ts.parse().map_err(|_| invalid())?,
        seq.parse().map_err(|_| invalid())?,
    ))
}

/// An optional `from`/`to` parameter (RFC 3339 or epoch seconds); a bad one is a 400 naming
/// the parameter.
pub fn parse_bound(name: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    value
        .map(|text| {
            time::parse_instant(text).map_err(|err| ApiError::BadRequest(format!("{name}: {err}")))
        })
        .transpose()
}

/// Checks access and turns the parameters into a store query.
pub async fn prepare(
    state: &AppState,
    actor: &AuthUser,
    experiment_id: i64,
    params: &MeasuresParams,
) -> ApiResult<(Experiment, MeasureQuery)> {
    // The access check and the type's lookup at once (each a read of its own); access
    // is judged first.
    let measure_type = async {
        match &params.measure {
            Some(name) => state.meta.measure_type_by_name(name).await,
            None => Ok(None),
        }
    };
    let (experiment, measure_type) = tokio::join!(
        visible_experiment(state, actor, Action::ReadMeasures, experiment_id),
        measure_type
    );
    let experiment = experiment?;
    let from_ns = parse_bound("from", params.from.as_deref())?;
    let to_ns = parse_bound("to", params.to.as_deref())?;
    if let (Some(from), Some(to)) = (from_ns, to_ns)
        && from >= to
    {
        return Err(ApiError::BadRequest("from must be before to".into()));
    }
    let measure_type_id = match (&params.measure, measure_type?) {
        (Some(_), Some(found)) => Some(found.measure_type_id),
        (Some(name), None) => {
            return Err(ApiError::BadRequest(format!(
                "measure: unknown measure type {name:?}"
            )));
        }
        (None, _) => None,
    };
    let max = state.settings.api.max_page_size;
    let limit = params.limit.unwrap_or(state.settings.api.default_page_size);
    if limit == 0 {
        return Err(ApiError::BadRequest("limit: must be at least 1".into()));
    }
    // Streamed exports may ask for more rows than a JSON page holds.
    if params.format.unwrap_or_default() == Format::Json && limit > max {
        return Err(ApiError::BadRequest(format!(
            "limit: at most {max} per page"
        )));
    }
    let after = params.cursor.as_deref().map(decode_cursor).transpose()?;
    let query = MeasureQuery {
        experiment_id,
        from_ns,
        to_ns,
        measure_type_id,
        after,
        limit,
    };
    Ok((experiment, query))
}

/// Pages of the query's measures, until the range (or `total`, if set) is exhausted.
pub fn pages(
    store: Arc<dyn MeasureStore>,
    query: MeasureQuery,
    total: Option<u64>,
) -> impl Stream<Item = Result<MeasurePage, StoreError>> + Send {
    stream::unfold(
        (store, query, total.unwrap_or(u64::MAX), false),
        |(store, mut query, remaining, done)| async move {
            if done || remaining == 0 {
                return None;
            }
            query.limit = STREAM_PAGE.min(u32::try_from(remaining).unwrap_or(u32::MAX));
            match store.query_page(&query).await {
                Ok(page) if page.is_empty() => None,
                Ok(page) => {
                    let last = page.len() < query.limit as usize;
                    if let Some(tail) = page.points.last() {
                        query.after = Some((tail.timestamp_ns, tail.seq));
                    }
                    let remaining = remaining - page.len() as u64;
                    Some((Ok(page), (store, query, remaining, last)))
                }
                Err(err) => Some((Err(err), (store, query, 0, true))),
            }
        },
    )
}

/// A streamed body from encoded pages; a store failure mid-stream is logged and cuts the
/// response short (the status line has already gone out).
pub fn stream_body<F>(
    pages: impl Stream<Item = Result<MeasurePage, StoreError>> + Send + 'static,
    prefix: &'static str,
    suffix: &'static str,
    mut encode: F,
) -> Body
where
    F: FnMut(MeasurePage) -> Bytes + Send + 'static,
{
    let body = pages.map(move |page| match page {
        Ok(page) => Ok(encode(page)),
        Err(err) => {
            tracing::error!(error = %err, "measure export failed mid-stream");
            Err(std::io::Error::other(err.to_string()))
        }
    });
    let prefix = stream::once(async move { Ok(Bytes::from_static(prefix.as_bytes())) });
    let suffix = stream::once(async move { Ok(Bytes::from_static(suffix.as_bytes())) });
    Body::from_stream(prefix.chain(body).chain(suffix))
}

fn csv_page(page: MeasurePage) -> Bytes {
    let mut writer = csv::Writer::from_writer(Vec::with_capacity(page.len() * 64));
    let tags: Vec<String> = page
        .series
        .iter()
        .map(|(_, tags)| {
            if tags.is_empty() {
                String::new()
            } else {
                serde_json::to_string(tags).unwrap_or_default()
            }
        })
        .collect();
    for point in &page.points {
        let timestamp = time::format_rfc3339(point.timestamp_ns);
        let value = point.value.to_string();
        // Writing to a Vec cannot fail.
        let _ = writer.write_record([
            timestamp.as_str(),
            page.experiment.as_str(),
            page.series[point.series].0.as_str(),
            value.as_str(),
            tags[point.series].as_str(),
        ]);
    }
    Bytes::from(writer.into_inner().unwrap_or_default())
}

/// An NDJSON encoder of pages (the day carries over from page to page).
fn ndjson_pages() -> impl FnMut(MeasurePage) -> Bytes + Send + 'static {
    let mut writer = MeasureJson::default();
    move |page| {
        let mut out = Vec::with_capacity(page.len() * 96);
        writer.write_page(&page, &mut out, b"", b"\n");
        Bytes::from(out)
    }
}

fn download(
    content_type: &'static str,
    experiment: &Experiment,
    extension: &str,
    body: Body,
) -> Response {
    let disposition = format!(
        "attachment; filename=\"experiment-{}-measures.{extension}\"",
        experiment.experiment_id
    );
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

/// The measures of an experiment (associated scientists only).
#[utoipa::path(get, path = "/api/v1/experiments/{experiment_id}/measures", tag = "measures",
    security(("bearer" = [])), params(("experiment_id" = i64, Path), MeasuresParams),
    responses(
        (status = 200, body = MeasuresPage, description = "JSON page; with format=csv or ndjson, the whole range streamed"),
        (status = 400, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiPath(experiment_id): ApiPath<i64>,
    ApiQuery(params): ApiQuery<MeasuresParams>,
) -> ApiResult<Response> {
    let (experiment, query) = prepare(&state, &actor, experiment_id, &params).await?;
    let format = params.format.unwrap_or_default();
    if format == Format::Json {
        let page = state.measures.query_page(&query).await?;
        let next_cursor = (page.len() == query.limit as usize)
            .then(|| {
                page.points
                    .last()
                    .map(|p| encode_cursor(p.timestamp_ns, p.seq))
            })
            .flatten();
        return Ok((
            [(header::CONTENT_TYPE, "application/json")],
            json_page(&page, next_cursor.as_deref()),
        )
            .into_response());
    }
    let total = params.limit.map(u64::from);
    let pages = pages(state.measures.clone(), query, total);
    Ok(match format {
        Format::Csv => download(
            "text/csv; charset=utf-8",
            &experiment,
            "csv",
            stream_body(
                pages,
                "timestamp,experiment,measure_type,value,tags\n",
                "",
                csv_page,
            ),
        ),
        _ => download(
            "application/x-ndjson",
            &experiment,
            "ndjson",
            stream_body(pages, "", "", ndjson_pages()),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mymonit_model::measure::PagePoint;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = encode_cursor(1_653_040_000_000_000_000, 42);
        assert_eq!(
            decode_cursor(&cursor).unwrap(),
            (1_653_040_000_000_000_000, 42)
        );
        assert!(decode_cursor("!!").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("12")).is_err());
    }

    type Tags<'a> = &'a [(&'a str, &'a str)];

    /// A page of one experiment from `(series, timestamp, value)` rows.
    fn page(
        experiment: &str,
        series: &[(&str, Tags<'_>)],
        rows: &[(usize, i64, f64)],
    ) -> MeasurePage {
        let mut page = MeasurePage::new(7, experiment.into());
        page.series = series
            .iter()
            .map(|(name, tags)| {
                let tags = tags
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect();
                ((*name).to_owned(), tags)
            })
            .collect();
        page.points = rows
            .iter()
            .enumerate()
            .map(|(seq, &(series, timestamp_ns, value))| PagePoint {
                series,
                timestamp_ns,
                seq: seq as i64,
                value,
            })
            .collect();
        page
    }

    /// What serde writes for a page: the reference the direct writer must equal.
    fn serde_page(page: &MeasurePage, next_cursor: Option<String>) -> String {
        serde_json::to_string(&MeasuresPage {
            experiment_id: page.experiment_id,
            measures: page
                .clone()
                .into_measures()
                .into_iter()
                .map(MeasureOut::from)
                .collect(),
            next_cursor,
        })
        .unwrap()
    }

    fn text(bytes: Bytes) -> String {
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn pages_are_written_as_serde_writes_them() {
        let series: &[(&str, Tags<'_>)] = &[
            ("hertz", &[]),
            ("volt", &[("host", "a\"b")]),
            ("v\u{e9}\nlt", &[("host", "c"), ("\u{e9}", "\u{1}")]),
        ];
        let rows = [
            (0, 1_704_844_800_000_000_000, 50.002),
            (0, 1_704_844_801_250_000_000, -0.0),
            (1, 1_704_931_200_000_001_000, 1e300),
            (1, 1_704_931_200_000_001_001, f64::NAN),
            (2, -1, 3.0),
            (2, 0, f64::INFINITY),
        ];
        for experiment in ["bench", "b\u{e9}\"nch"] {
            let page = page(experiment, series, &rows);
            for cursor in [None, Some("MTc6NDI".to_owned())] {
                assert_eq!(
                    text(json_page(&page, cursor.as_deref())),
                    serde_page(&page, cursor)
                );
            }
            let lines: Vec<String> = page
                .clone()
                .into_measures()
                .into_iter()
                .map(|m| serde_json::to_string(&MeasureOut::from(m)).unwrap() + "\n")
                .collect();
            // Two pages one after another, the second starting on another day.
            let mut encode = ndjson_pages();
            let mut ndjson = text(encode(self::page(experiment, series, &rows[..3])));
            ndjson.push_str(&text(encode(self::page(experiment, series, &rows[3..]))));
            assert_eq!(ndjson, lines.concat());
        }
        let empty = page("bench", series, &[]);
        assert_eq!(text(json_page(&empty, None)), serde_page(&empty, None));
    }

    proptest::proptest! {
        #[test]
        fn any_page_is_written_as_serde_writes_it(
            rows in proptest::collection::vec(
                (0usize..3, proptest::num::i64::ANY, proptest::num::f64::ANY),
                0..40,
            ),
            experiment in 0usize..3,
        ) {
            let names = ["bench", "a\"b\\c", "\u{7f}\u{e9}\t"];
            let series: &[(&str, Tags<'_>)] = &[
                (names[1], &[]),
                (names[2], &[("host", "x")]),
                (names[0], &[("host", "y"), ("ip", "\"")]),
            ];
            let page = page(names[experiment], series, &rows);
            proptest::prop_assert_eq!(text(json_page(&page, None)), serde_page(&page, None));
        }
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let page = page("a,b", &[("hertz", &[("host", "x")])], &[(0, 0, 2.5)]);
        assert_eq!(
            text(csv_page(page)),
            "1970-01-01T00:00:00Z,\"a,b\",hertz,2.5,\"{\"\"host\"\":\"\"x\"\"}\"\n"
        );
    }
}
