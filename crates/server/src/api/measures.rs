//! Reading measures: a page of JSON with a cursor, or the whole range streamed as CSV or
//! NDJSON. Streams read the store a page at a time, so a million points never sit in memory.

use std::{collections::BTreeMap, sync::Arc};

use axum::{
    Json,
    body::{Body, Bytes},
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use futures::{Stream, StreamExt, stream};
use mymonit_model::{Action, Experiment, measure::Measure, time};
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
    let experiment = visible_experiment(state, actor, Action::ReadMeasures, experiment_id).await?;
    let from_ns = parse_bound("from", params.from.as_deref())?;
    let to_ns = parse_bound("to", params.to.as_deref())?;
    if let (Some(from), Some(to)) = (from_ns, to_ns)
        && from >= to
    {
        return Err(ApiError::BadRequest("from must be before to".into()));
    }
    let measure_type_id = match &params.measure {
        Some(name) => Some(
            state
                .meta
                .measure_type_by_name(name)
                .await?
                .ok_or_else(|| {
                    ApiError::BadRequest(format!("measure: unknown measure type {name:?}"))
                })?
                .measure_type_id,
        ),
        None => None,
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
) -> impl Stream<Item = Result<Vec<Measure>, StoreError>> + Send {
    stream::unfold(
        (store, query, total.unwrap_or(u64::MAX), false),
        |(store, mut query, remaining, done)| async move {
            if done || remaining == 0 {
                return None;
            }
            query.limit = STREAM_PAGE.min(u32::try_from(remaining).unwrap_or(u32::MAX));
            match store.query(&query).await {
                Ok(page) if page.is_empty() => None,
                Ok(page) => {
                    let last = page.len() < query.limit as usize;
                    if let Some(tail) = page.last() {
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
    pages: impl Stream<Item = Result<Vec<Measure>, StoreError>> + Send + 'static,
    prefix: &'static str,
    suffix: &'static str,
    mut encode: F,
) -> Body
where
    F: FnMut(Vec<Measure>) -> Bytes + Send + 'static,
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

fn csv_page(page: Vec<Measure>) -> Bytes {
    let mut writer = csv::Writer::from_writer(Vec::with_capacity(page.len() * 64));
    for measure in page {
        let tags = if measure.tags.is_empty() {
            String::new()
        } else {
            serde_json::to_string(&measure.tags).unwrap_or_default()
        };
        let timestamp = time::format_rfc3339(measure.timestamp_ns);
        let value = measure.value.to_string();
        // Writing to a Vec cannot fail.
        let _ = writer.write_record([
            timestamp.as_str(),
            measure.experiment.as_str(),
            measure.measure_type.as_str(),
            value.as_str(),
            tags.as_str(),
        ]);
    }
    Bytes::from(writer.into_inner().unwrap_or_default())
}

fn ndjson_page(page: Vec<Measure>) -> Bytes {
    let mut out = Vec::with_capacity(page.len() * 96);
    for measure in page {
        if serde_json::to_writer(&mut out, &MeasureOut::from(measure)).is_ok() {
            out.push(b'\n');
        }
    }
    Bytes::from(out)
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
        let page = state.measures.query(&query).await?;
        let next_cursor = (page.len() == query.limit as usize)
            .then(|| page.last().map(|m| encode_cursor(m.timestamp_ns, m.seq)))
            .flatten();
        return Ok(Json(MeasuresPage {
            experiment_id,
            measures: page.into_iter().map(MeasureOut::from).collect(),
            next_cursor,
        })
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
            stream_body(pages, "", "", ndjson_page),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let page = vec![Measure {
            seq: 1,
            experiment_id: 1,
            experiment: "a,b".into(),
            measure_type: "hertz".into(),
            timestamp_ns: 0,
            value: 2.5,
            tags: BTreeMap::from([("host".into(), "x".into())]),
        }];
        let text = String::from_utf8(csv_page(page).to_vec()).unwrap();
        assert_eq!(
            text,
            "1970-01-01T00:00:00Z,\"a,b\",hertz,2.5,\"{\"\"host\"\":\"\"x\"\"}\"\n"
        );
    }
}
