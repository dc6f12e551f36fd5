//! Personal access tokens under `/api/v1/auth/tokens`: each user makes, lists and revokes
//! their own. They are read-only credentials for tools that cannot sign in (Grafana's
//! InfluxDB datasource, scripts): the InfluxDB-compatible `/query` accepts them, the rest of
//! the API does not.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use mymonit_model::personal_token::{PERSONAL_TOKEN_PREFIX, PersonalToken, READ_SCOPE};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiJson, ApiPath};
use crate::{
    auth::{
        AuthUser,
        tokens::{epoch_seconds, token_hash},
    },
    error::{ApiError, ApiResult},
    state::AppState,
};

/// Days a token lives when the request does not say.
pub const DEFAULT_DAYS: u32 = 90;
/// The longest life a token may have, in days.
pub const MAX_DAYS: u32 = 366;
/// Most live tokens per user.
pub const MAX_LIVE_TOKENS: usize = 50;

/// What to make.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPersonalToken {
    /// What it is for (`grafana-lab`), 1 to 100 characters.
    #[schema(example = "grafana-lab")]
    pub name: String,
    /// Days until it expires, 1 to 366 (default 90).
    pub expires_in_days: Option<u32>,
    /// `read` (the only scope, and the default).
    pub scope: Option<String>,
}

/// A new token with its secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedPersonalToken {
    /// The token.
    #[serde(flatten)]
    pub token: PersonalToken,
    /// The secret: the password of Grafana's InfluxDB datasource (user: your username).
    pub secret: String,
}

/// Makes a personal access token for the caller.
#[utoipa::path(post, path = "/api/v1/auth/tokens", tag = "auth", security(("bearer" = [])),
    request_body = NewPersonalToken,
    responses((status = 201, body = CreatedPersonalToken, description = "The secret is shown this once"),
        (status = 401, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiJson(request): ApiJson<NewPersonalToken>,
) -> ApiResult<impl IntoResponse> {
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::Invalid(
            "1 to 100 printable characters".into(),
            Some("name"),
        ));
    }
    let days = request.expires_in_days.unwrap_or(DEFAULT_DAYS);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(ApiError::Invalid(
            format!("1 to {MAX_DAYS} days"),
            Some("expires_in_days"),
        ));
    }
    if let Some(scope) = request.scope.as_deref()
        && scope != READ_SCOPE
    {
        return Err(ApiError::Invalid(
            format!("{scope:?}: the only scope is {READ_SCOPE:?}"),
            Some("scope"),
        ));
    }
    let user_id = &actor.user.user_id;
    let now = epoch_seconds();
    let live = state
        .meta
        .list_personal_tokens(user_id)
        .await?
        .into_iter()
        .filter(|token| !token.revoked && token.expires_at > now)
        .count();
    if live >= MAX_LIVE_TOKENS {
        return Err(ApiError::Conflict(format!(
            "you have {live} live personal access tokens, the most allowed: revoke one first"
        )));
    }
    let mut secret_bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut secret_bytes);
    let secret = format!(
        "{PERSONAL_TOKEN_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(secret_bytes)
    );
    let token = PersonalToken {
        token_id: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
        user_id: user_id.clone(),
        name: name.to_owned(),
        scope: READ_SCOPE.to_owned(),
        created_at: now,
        expires_at: now + i64::from(days) * 86_400,
        revoked: false,
    };
    state
        .meta
        .create_personal_token(&token, &token_hash(&secret))
        .await?;
    tracing::info!(actor = %user_id, token_id = %token.token_id, "personal access token created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedPersonalToken { token, secret }),
    ))
}

/// Lists the caller's personal access tokens, newest first (never their secrets).
#[utoipa::path(get, path = "/api/v1/auth/tokens", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Vec<PersonalToken>), (status = 401, body = crate::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    actor: AuthUser,
) -> ApiResult<Json<Vec<PersonalToken>>> {
    Ok(Json(
        state.meta.list_personal_tokens(&actor.user.user_id).await?,
    ))
}

/// Revokes one of the caller's personal access tokens.
#[utoipa::path(delete, path = "/api/v1/auth/tokens/{token_id}", tag = "auth", security(("bearer" = [])),
    params(("token_id" = String, Path)),
    responses((status = 204, description = "Revoked"), (status = 401, body = crate::error::Problem),
        (status = 404, description = "No such live token of yours", body = crate::error::Problem)))]
pub async fn revoke(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiPath(token_id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    if state
        .meta
        .revoke_personal_token(&actor.user.user_id, &token_id)
        .await?
    {
        tracing::info!(actor = %actor.user.user_id, token_id = %token_id, "personal access token revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "live personal access token {token_id:?} of yours"
        )))
    }
}
