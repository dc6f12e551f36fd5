//! `POST /write` (InfluxDB 1.x) and `POST /api/v2/write`: line protocol into an experiment,
//! with an ingest token. Good lines are stored even when others are refused; the answer then
//! lists the refused ones, as InfluxDB's partial writes do.

use std::collections::HashMap;

use axum::{
    extract::{Query, Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use mymonit_formats::{Decoded, line_protocol};
use mymonit_model::{ingest::IngestToken, time::now_ns};

use super::{InfluxError, credentials::Credentials};
use crate::{api::ingest::live_ingest_token, ingest, state::AppState};

/// Most refusals spelled out in one answer (the count is always complete).
const LISTED_REFUSALS: usize = 100;

/// `POST /write?db=…[&precision=…]`.
pub async fn write_v1(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
    request: Request,
) -> Response {
    respond(write(&state, &params, request, false).await)
}

/// `POST /api/v2/write?bucket=…[&org=…][&precision=…]`.
pub async fn write_v2(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
    request: Request,
) -> Response {
    respond(write(&state, &params, request, true).await)
}

fn respond(result: Result<(), InfluxError>) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => err.into_response(),
    }
}

/// The ingest token a request presents, or why it is refused.
pub async fn ingest_token(
    state: &AppState,
    parts: &axum::http::request::Parts,
    v2: bool,
) -> Result<IngestToken, InfluxError> {
    let unauthorized = |text: &str| InfluxError::of(v2, StatusCode::UNAUTHORIZED, text);
    let credentials = Credentials::read(parts).map_err(|reason| unauthorized(&reason))?;
    let secret = credentials.secret.ok_or_else(|| {
        unauthorized(
            "authorization failed: send an ingest token (Authorization: Token <token>, Basic with \
             the token as password, or the u and p parameters)",
        )
    })?;
    live_ingest_token(state, parts, &secret)
        .await
        .map_err(|err| InfluxError::from_api(v2, err))?
        .ok_or_else(|| unauthorized("authorization failed: unknown or revoked ingest token"))
}

/// Nanoseconds per unit of a `precision`; InfluxDB 2 has no minutes or hours.
fn precision(text: Option<&str>, v2: bool) -> Result<i64, InfluxError> {
    Ok(match text.unwrap_or("") {
        "" | "n" | "ns" => 1,
        "u" | "us" | "µ" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" if !v2 => 60_000_000_000,
        "h" if !v2 => 3_600_000_000_000,
        other if v2 => {
            return Err(InfluxError::of(
                true,
                StatusCode::BAD_REQUEST,
                format!("invalid precision {other:?}; valid precision units are ns, us, ms, and s"),
            ));
        }
        other => {
            return Err(InfluxError::of(
                false,
                StatusCode::BAD_REQUEST,
                format!("invalid precision {other:?} (use n, u, ms, s, m or h)"),
            ));
        }
    })
}

async fn write(
    state: &AppState,
    params: &HashMap<String, String>,
    request: Request,
    v2: bool,
) -> Result<(), InfluxError> {
    let (parts, body) = request.into_parts();
    let token = ingest_token(state, &parts, v2).await?;
    let database = if v2 {
        // `db/rp` (InfluxDB 1.8's form) names the database; MyMonit has one policy.
        let bucket = params.get("bucket").map(String::as_str).unwrap_or("");
        let database = bucket.split_once('/').map_or(bucket, |(db, _)| db);
        if database.is_empty() {
            return Err(InfluxError::of(
                true,
                StatusCode::NOT_FOUND,
                "bucket not found",
            ));
        }
        database.to_owned()
    } else {
        params
            .get("db")
            .filter(|db| !db.is_empty())
            .cloned()
            .ok_or_else(|| {
                InfluxError::of(false, StatusCode::BAD_REQUEST, "database is required")
            })?
    };
    let unit = precision(params.get("precision").map(String::as_str), v2)?;
    let experiment = state
        .meta
        .experiment_by_name(&database)
        .await
        .map_err(|err| InfluxError::from_api(v2, err.into()))?
        .ok_or_else(|| {
            let text = if v2 {
                format!("bucket {database:?} not found")
            } else {
                format!("database not found: {database:?}")
            };
            InfluxError::of(v2, StatusCode::NOT_FOUND, text)
        })?;
    if !token.experiment_ids.contains(&experiment.experiment_id) {
        return Err(InfluxError::of(
            v2,
            StatusCode::FORBIDDEN,
            format!("this ingest token may not write to database {database:?}"),
        ));
    }
    let limit = state.settings.max_ingest_bytes;
    let too_large = || {
        InfluxError::of(
            v2,
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request Entity Too Large: the body is over {limit} bytes (max_ingest_bytes)"),
        )
    };
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())?;
    let bytes = ingest::decompressed(&parts.headers, bytes, limit).map_err(|err| match err {
        ingest::BodyError::TooLarge => too_large(),
        other => InfluxError::of(v2, StatusCode::BAD_REQUEST, other.to_string()),
    })?;
    let name = experiment.name.clone();
    let decoded: Vec<Decoded> = tokio::task::spawn_blocking(move || {
        line_protocol::decode_influx_in(&bytes, unit, now_ns, name).collect()
    })
    .await
    .map_err(|err| {
        InfluxError::from_api(v2, anyhow::anyhow!("decoder task failed: {err}").into())
    })?;
    ingest::create_measure_types(state, experiment.experiment_id, &decoded)
        .await
        .map_err(|err| InfluxError::from_api(v2, err))?;
    let outcome = ingest::store(state, &token, decoded, None)
        .await
        .map_err(|err| InfluxError::from_api(v2, err))?;
    tracing::info!(
        token_id = %token.token_id,
        accepted = outcome.accepted,
        rejected = outcome.rejected_count,
        "measures ingested (InfluxDB API)"
    );
    if outcome.rejected_count == 0 {
        return Ok(());
    }
    let mut text: Vec<String> = outcome
        .rejected
        .iter()
        .take(LISTED_REFUSALS)
        .map(|rejection| {
            if rejection.error.starts_with("line ") {
                rejection.error.clone()
            } else {
                format!("point {}: {}", rejection.index, rejection.error)
            }
        })
        .collect();
    if outcome.rejected_count as usize > text.len() {
        text.push(format!(
            "… and {} more",
            outcome.rejected_count as usize - text.len()
        ));
    }
    let prefix = if outcome.accepted > 0 {
        "partial write: "
    } else {
        ""
    };
    Err(InfluxError::of(
        v2,
        StatusCode::BAD_REQUEST,
        format!(
            "{prefix}{} dropped={}",
            text.join("\n"),
            outcome.rejected_count
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precisions() {
        assert_eq!(precision(None, false).ok(), Some(1));
        assert_eq!(precision(Some("h"), false).ok(), Some(3_600_000_000_000));
        assert!(precision(Some("h"), true).is_err());
        assert_eq!(precision(Some("us"), true).ok(), Some(1_000));
        assert!(precision(Some("xx"), false).is_err());
    }
}
