//! `POST /api/v1/ingest`: sources push measures with an ingest token. The answer comes once
//! the accepted records are durable.

use axum::{
    Json,
    extract::{FromRequestParts, State},
    http::{HeaderMap, header, request::Parts},
};
use mymonit_formats::TimeUnit;
use mymonit_model::ingest::IngestToken;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{ApiBytes, ApiQuery};
use crate::{
    auth::tokens::token_hash,
    error::{ApiError, ApiResult},
    ingest::{self, DecodeOptions, Format, IngestOutcome},
    state::AppState,
};

/// The source behind a request: a live ingest token.
#[derive(Debug, Clone)]
pub struct IngestSource(pub IngestToken);

impl FromRequestParts<AppState> for IngestSource {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let secret = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or_else(|| {
                ApiError::Unauthenticated("missing Authorization: Bearer <ingest token>".into())
            })?;
        let token = live_ingest_token(state, parts, secret)
            .await?
            .ok_or_else(|| ApiError::Unauthenticated("unknown or revoked ingest token".into()))?;
        Ok(IngestSource(token))
    }
}

/// The live ingest token with this secret, named as the request's actor for the audit trail;
/// `None` when there is none.
pub async fn live_ingest_token(
    state: &AppState,
    parts: &Parts,
    secret: &str,
) -> Result<Option<IngestToken>, ApiError> {
    let Some(token) = state.meta.ingest_token_by_hash(&token_hash(secret)).await? else {
        return Ok(None);
    };
    if let Some(slot) = parts.extensions.get::<crate::audit::ActorSlot>() {
        slot.set(crate::audit::Actor {
            id: format!("ingest-token:{}", token.token_id),
            role: "INGEST".into(),
        });
    }
    Ok(Some(token))
}

/// How to read the body, beyond its Content-Type.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IngestParams {
    /// Overrides the Content-Type: `json`, `ndjson`, `csv`, `xml`, `lp`, `txt`, `prometheus`
    /// or `openmetrics`.
    pub format: Option<String>,
    /// Unit of numeric timestamps: `s`, `ms`, `us` or `ns` (default: `ns` for line protocol,
    /// `s` otherwise).
    pub precision: Option<String>,
    /// Experiment of every record (txt, Prometheus and OpenMetrics pages; CSV without an
    /// `experiment` column).
    pub experiment: Option<String>,
    /// Measure type of every record (txt; CSV without a `measure` column).
    pub measure: Option<String>,
    /// CSV delimiter, one character (default `,`).
    pub delimiter: Option<String>,
}

fn options(headers: &HeaderMap, params: IngestParams) -> Result<DecodeOptions, ApiError> {
    let format = match &params.format {
        Some(name) => Format::from_name(name).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "format: unknown format {name:?}: use json, ndjson, csv, xml, lp, txt, prometheus or openmetrics"
            ))
        })?,
        None => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("");
            Format::from_content_type(content_type).ok_or_else(|| {
                ApiError::UnsupportedMediaType(format!(
                    "Content-Type {content_type:?} is not an ingest format: use application/json, \
                     application/x-ndjson, text/csv, application/xml, text/plain (line protocol), \
                     text/plain; version=0.0.4 (Prometheus) or application/openmetrics-text, \
                     or name the format with ?format="
                ))
            })?
        }
    };
    let unit = match &params.precision {
        Some(text) => text
            .parse::<TimeUnit>()
            .map_err(|err| ApiError::BadRequest(format!("precision: {err}")))?,
        None => format.default_unit(),
    };
    let delimiter = match params.delimiter.as_deref() {
        None => None,
        Some(text) if text.len() == 1 => text.bytes().next(),
        Some("\\t" | "tab") => Some(b'\t'),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "delimiter: {other:?} is not one ASCII character"
            )));
        }
    };
    Ok(DecodeOptions {
        format,
        unit,
        experiment: params.experiment,
        measure: params.measure,
        delimiter,
    })
}

/// Pushes measures (ingest token).
#[utoipa::path(post, path = "/api/v1/ingest", tag = "ingest", security(("bearer" = [])),
    params(IngestParams),
    request_body(content = String, description = "Measures as JSON, NDJSON, CSV, XML, line protocol, txt, or a Prometheus/OpenMetrics page (with `experiment`)",
        content_type = "application/json"),
    responses(
        (status = 200, body = IngestOutcome, description = "Accepted records are durable; rejected ones are listed with reasons"),
        (status = 401, body = crate::error::Problem), (status = 403, description = "A record names an experiment outside the token's scope", body = crate::error::Problem),
        (status = 413, body = crate::error::Problem), (status = 415, body = crate::error::Problem)))]
pub async fn push(
    State(state): State<AppState>,
    IngestSource(token): IngestSource,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<IngestParams>,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Json<IngestOutcome>> {
    let options = options(&headers, params)?;
    let exposition = matches!(options.format, Format::Prometheus | Format::OpenMetrics);
    let experiment = options.experiment.clone();
    // Checked before decoding, so that a bad header costs nothing.
    let idempotency_key = match headers.get("idempotency-key") {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .filter(|key| !key.is_empty() && key.len() <= 200)
                .ok_or_else(|| {
                    ApiError::BadRequest(
                        "Idempotency-Key: 1 to 200 visible ASCII characters".into(),
                    )
                })?
                .to_string(),
        ),
        None => None,
    };
    let body =
        ingest::decompressed(&headers, body, state.settings.max_ingest_bytes).map_err(|err| {
            match err {
                ingest::BodyError::TooLarge => ApiError::PayloadTooLarge,
                other => ApiError::BadRequest(other.to_string()),
            }
        })?;
    let decoded = tokio::task::spawn_blocking(move || ingest::decode_body(&body, &options))
        .await
        .map_err(|err| ApiError::Internal(anyhow::anyhow!("decoder task failed: {err}")))??;
    // Exporters' metric names are not registered beforehand: like InfluxDB writes, a page
    // creates its types when the experiment allows it.
    if exposition
        && let Some(name) = experiment
        && let Some(found) = state.meta.experiment_by_name(&name).await?
        && token.experiment_ids.contains(&found.experiment_id)
    {
        ingest::create_measure_types(&state, found.experiment_id, &decoded).await?;
    }
    let outcome = ingest::store(&state, &token, decoded, idempotency_key.as_deref()).await?;
    tracing::info!(
        token_id = %token.token_id,
        accepted = outcome.accepted,
        rejected = outcome.rejected_count,
        "measures ingested"
    );
    Ok(Json(outcome))
}
