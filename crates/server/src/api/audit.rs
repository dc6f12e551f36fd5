//! The audit trail for auditors: records with filters and a cursor, an NDJSON export, and the
//! chain's verification.

use axum::{
    Json,
    body::{Body, Bytes},
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use futures::stream;
use mymonit_model::{Action, audit::AuditRecord};
use mymonit_store::AuditFilter;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiQuery, measures::parse_bound};
use crate::{
    audit::Verification,
    auth::AuthUser,
    error::{ApiError, ApiResult},
    state::AppState,
};

/// Query parameters of the audit listing.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Start, inclusive (RFC 3339 or epoch seconds).
    pub from: Option<String>,
    /// End, exclusive.
    pub to: Option<String>,
    /// Only this actor (a user id, or `ingest-token:ID`).
    pub actor: Option<String>,
    /// Only this action, for example `auth.login` or `DELETE /api/v1/users/{user_id}`.
    pub action: Option<String>,
    /// `success`, `failure` or `denied`.
    pub outcome: Option<String>,
    /// Page size (default 1000, at most 10000); for NDJSON, the most records to export.
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// `json` (default) or `ndjson` (every matching record, streamed).
    pub format: Option<String>,
    /// `asc` (default: oldest first) or `desc` (newest first).
    pub order: Option<String>,
}

/// A page of the trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Records by position (in the order asked for).
    pub records: Vec<AuditRecord>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

fn bad(text: String) -> ApiError {
    ApiError::BadRequest(text)
}

fn filter(params: &AuditParams) -> ApiResult<AuditFilter> {
    let limit = params.limit.unwrap_or(1000);
    if limit == 0 {
        return Err(bad("limit: must be at least 1".into()));
    }
    Ok(AuditFilter {
        from_ns: parse_bound("from", params.from.as_deref())?,
        to_ns: parse_bound("to", params.to.as_deref())?,
        actor_id: params.actor.clone(),
        action: params.action.clone(),
        outcome: params
            .outcome
            .as_deref()
            .map(|o| {
                o.parse()
                    .map_err(|err: String| bad(format!("outcome: {err}")))
            })
            .transpose()?,
        after_seq: params
            .cursor
            .as_deref()
            .map(|c| {
                c.parse()
                    .map_err(|_| bad("cursor: not a cursor this API returned".into()))
            })
            .transpose()?,
        newest_first: match params.order.as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => return Err(bad(format!("order: {other:?} is not asc or desc"))),
        },
        limit,
    })
}

/// Records of the audit trail (auditors).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", security(("bearer" = [])),
    params(AuditParams),
    responses((status = 200, body = AuditPage, description = "JSON page; with format=ndjson every matching record, streamed"),
        (status = 400, body = crate::error::Problem), (status = 403, body = crate::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> ApiResult<Response> {
    actor.require(Action::ReadAudit)?;
    let mut filter = filter(&params)?;
    match params.format.as_deref() {
        None | Some("json") => {
            if filter.limit > 10_000 {
                return Err(bad("limit: at most 10000 per page".into()));
            }
            let records = state.audit_trail.audit_records(&filter).await?;
            let next_cursor = (records.len() == filter.limit as usize)
                .then(|| records.last().map(|r| r.seq.to_string()))
                .flatten();
            Ok(Json(AuditPage {
                records,
                next_cursor,
            })
            .into_response())
        }
        Some("ndjson") => {
            let total = params.limit.map(u64::from);
            filter.limit = 5000;
            let trail = state.audit_trail.clone();
            let pages = stream::unfold((filter, 0u64, false), move |(mut filter, sent, done)| {
                let trail = trail.clone();
                async move {
                    if done || total.is_some_and(|t| sent >= t) {
                        return None;
                    }
                    let mut records = match trail.audit_records(&filter).await {
                        Ok(records) => records,
                        Err(err) => {
                            tracing::error!(error = %err, "audit export failed");
                            return Some((
                                Err(std::io::Error::other("audit export failed")),
                                (filter, sent, true),
                            ));
                        }
                    };
                    if let Some(total) = total {
                        records.truncate((total - sent) as usize);
                    }
                    let last = records.last().map(|r| r.seq)?;
                    let finished = records.len() < filter.limit as usize;
                    filter.after_seq = Some(last);
                    let mut text = String::new();
                    for record in &records {
                        text.push_str(&serde_json::to_string(record).unwrap_or_default());
                        text.push('\n');
                    }
                    let sent = sent + records.len() as u64;
                    Some((
                        Ok::<Bytes, std::io::Error>(Bytes::from(text)),
                        (filter, sent, finished),
                    ))
                }
            });
            Ok((
                [
                    (header::CONTENT_TYPE, "application/x-ndjson"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"audit.ndjson\"",
                    ),
                ],
                Body::from_stream(pages),
            )
                .into_response())
        }
        Some(other) => Err(bad(format!("format: {other:?} is not json or ndjson"))),
    }
}

/// Verifies the whole chain (auditors): intact, or the first record that does not fit.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = Verification), (status = 403, body = crate::error::Problem)))]
pub async fn verify(
    State(state): State<AppState>,
    actor: AuthUser,
) -> ApiResult<Json<Verification>> {
    actor.require(Action::ReadAudit)?;
    Ok(Json(
        crate::audit::verify(state.audit_trail.as_ref()).await?,
    ))
}
