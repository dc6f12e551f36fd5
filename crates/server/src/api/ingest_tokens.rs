//! Ingest tokens (admins): create (the secret is shown once), list, revoke.

use axum::{Json, extract::State, http::StatusCode};
use mymonit_model::{Action, ingest::IngestToken};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiJson, ApiPath};
use crate::{
    auth::AuthUser,
    error::{ApiError, ApiResult},
    ingest::tokens,
    state::AppState,
};

/// A token to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIngestTokenRequest {
    /// Names of the experiments it may write to.
    pub experiments: Vec<String>,
    /// What it is for.
    #[serde(default)]
    pub description: String,
}

/// A new token with its secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedIngestToken {
    /// The token as listed from now on.
    #[serde(flatten)]
    pub token: IngestToken,
    /// The secret to send as `Authorization: Bearer …`; MyMonit keeps only a hash of it.
    #[serde(rename = "token")]
    pub secret: String,
}

/// Creates an ingest token (admins).
#[utoipa::path(post, path = "/api/v1/ingest-tokens", tag = "ingest", security(("bearer" = [])),
    request_body = CreateIngestTokenRequest,
    responses((status = 201, body = CreatedIngestToken), (status = 403, body = crate::error::Problem),
        (status = 404, description = "Unknown experiment", body = crate::error::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiJson(request): ApiJson<CreateIngestTokenRequest>,
) -> ApiResult<(StatusCode, Json<CreatedIngestToken>)> {
    actor.require(Action::ManageIngestTokens)?;
    let (token, secret) = tokens::create(
        state.meta.as_ref(),
        &request.experiments,
        &request.description,
        Some(&actor.user.user_id),
    )
    .await?;
    tracing::info!(actor = %actor.user.user_id, token_id = %token.token_id, "ingest token created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedIngestToken {
            token,
            secret: secret.into_inner(),
        }),
    ))
}

/// Lists ingest tokens, without their secrets (admins).
#[utoipa::path(get, path = "/api/v1/ingest-tokens", tag = "ingest", security(("bearer" = [])),
    responses((status = 200, body = Vec<IngestToken>), (status = 403, body = crate::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    actor: AuthUser,
) -> ApiResult<Json<Vec<IngestToken>>> {
    actor.require(Action::ManageIngestTokens)?;
    Ok(Json(state.meta.list_ingest_tokens().await?))
}

/// Revokes an ingest token (admins).
#[utoipa::path(delete, path = "/api/v1/ingest-tokens/{token_id}", tag = "ingest", security(("bearer" = [])),
    params(("token_id" = String, Path)),
    responses((status = 204, description = "Revoked"), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem)))]
pub async fn revoke(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiPath(token_id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    actor.require(Action::ManageIngestTokens)?;
    if !state.meta.revoke_ingest_token(&token_id).await? {
        return Err(ApiError::not_found(format!("ingest token {token_id}")));
    }
    tracing::info!(actor = %actor.user.user_id, token_id = %token_id, "ingest token revoked");
    Ok(StatusCode::NO_CONTENT)
}
