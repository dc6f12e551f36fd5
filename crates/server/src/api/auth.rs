//! Sign-in, sign-out, password change, the current user, and the public keys.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use mymonit_model::audit::Outcome;
use mymonit_model::{Redacted, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiJson;
use crate::{
    accounts,
    auth::{AuthUser, password},
    client::ClientIp,
    error::{ApiError, ApiResult},
    state::AppState,
};

/// Credentials for the built-in identity.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Username.
    #[schema(example = "phigg")]
    pub username: String,
    /// Password.
    #[schema(value_type = String)]
    pub password: Redacted<String>,
}

/// A bearer token.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// The JWT to send as `Authorization: Bearer …`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: u64,
}

/// A password change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChangeRequest {
    /// The password in use now.
    #[schema(value_type = String)]
    pub current_password: Redacted<String>,
    /// The new password; see the policy in the API description.
    #[schema(value_type = String)]
    pub new_password: Redacted<String>,
}

const BAD_CREDENTIALS: &str = "invalid username or password";

/// Checks a username and password (throttled, audited) and issues a token.
async fn sign_in(
    state: &AppState,
    client: std::net::IpAddr,
    request: LoginRequest,
    ttl_secs: u64,
) -> ApiResult<(User, crate::auth::tokens::IssuedToken)> {
    let sign_in = |actor: Option<&crate::audit::Actor>, outcome: Outcome, reason: &str| {
        state.metrics.login(outcome.as_str());
        let mut event = crate::audit::event("auth.login", actor, outcome);
        event.client = Some(client.to_string());
        event.detail = serde_json::json!({ "reason": reason });
        event
    };
    // A username no account can have costs no lookup, no hash and no throttle entry.
    if request.username.chars().count() > mymonit_model::validate::USERNAME_MAX_LEN {
        return Err(ApiError::BadRequest(format!(
            "username: at most {} characters",
            mymonit_model::validate::USERNAME_MAX_LEN
        )));
    }
    let admitted = match state.throttle.attempt(&request.username, client).await? {
        Ok(admitted) => admitted,
        Err(retry) => {
            state
                .audit
                .record(sign_in(None, Outcome::Failure, "throttled"))
                .await;
            return Err(ApiError::TooManyRequests(retry));
        }
    };
    let account = state.meta.account_by_username(&request.username).await?;
    // Named by id when the account exists; the username tried is never recorded.
    let actor = account.as_ref().map(|a| crate::audit::Actor {
        id: a.user.user_id.clone(),
        role: a.user.role.to_string(),
    });
    let hash = account.as_ref().and_then(|a| a.password_hash.clone());
    let valid = match password::verify(request.password, hash, &state.decoy_hash).await {
        Ok(valid) => valid,
        Err(busy) => {
            state
                .throttle
                .refund(&request.username, client, admitted)
                .await;
            return Err(busy.into());
        }
    };
    let Some(account) = account.filter(|_| valid) else {
        tracing::info!(client = %client, "sign-in failed");
        state
            .audit
            .record(sign_in(actor.as_ref(), Outcome::Failure, "bad credentials"))
            .await;
        return Err(ApiError::Unauthenticated(BAD_CREDENTIALS.into()));
    };
    state
        .throttle
        .succeeded(&request.username, client, admitted)
        .await;
    let issued =
        state
            .tokens
            .issue_for(&account.user.user_id, account.token_generation, ttl_secs)?;
    tracing::info!(user_id = %account.user.user_id, "signed in");
    state
        .audit
        .record(sign_in(actor.as_ref(), Outcome::Success, "password"))
        .await;
    Ok((account.user, issued))
}

/// Signs in with username and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 400, description = "A username longer than any account's", body = crate::error::Problem),
        (status = 401, description = "Wrong username or password (the same answer for both)", body = crate::error::Problem),
        (status = 429, description = "Too many attempts: see Retry-After", body = crate::error::Problem),
        (status = 503, description = "Too many password checks in progress: see Retry-After", body = crate::error::Problem)))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiJson(request): ApiJson<LoginRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let ttl = state.settings.auth.token_ttl_secs;
    let (_, issued) = sign_in(&state, client, request, ttl).await?;
    Ok(Json(TokenResponse {
        access_token: issued.token,
        token_type: "Bearer",
        expires_in: issued.expires_in,
    }))
}

/// The web UI's session: who is signed in, and the CSRF token to send back in
/// `X-CSRF-Token` on every state-changing call.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionResponse {
    /// The signed-in user.
    pub user: User,
    /// Send it back in `X-CSRF-Token` with POST, PUT, PATCH and DELETE.
    pub csrf_token: String,
    /// Seconds until the session ends.
    pub expires_in: u64,
}

/// `Set-Cookie` for the session: HttpOnly (page scripts never read it), SameSite=Strict
/// (other sites' pages never send it), Secure when served over TLS.
fn set_session_cookie(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    max_age: u64,
) -> HeaderValue {
    let behind_tls = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
    let secure = if state.settings.auth.secure_cookies || state.settings.tls.enabled() || behind_tls
    {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
        crate::auth::SESSION_COOKIE
    );
    // A JWT and the fixed attributes are visible ASCII, which header values accept.
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Signs in to the web UI: the token goes into an HttpOnly cookie, not to the page.
#[utoipa::path(post, path = "/api/v1/auth/session", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, body = SessionResponse, description = "Signed in; the session cookie is set"),
        (status = 401, description = "Wrong username or password (the same answer for both)", body = crate::error::Problem),
        (status = 429, description = "Too many failures: see Retry-After", body = crate::error::Problem)))]
pub async fn create_session(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    ApiJson(request): ApiJson<LoginRequest>,
) -> ApiResult<impl IntoResponse> {
    let ttl = state.settings.auth.session_ttl_secs;
    let (user, issued) = sign_in(&state, client, request, ttl).await?;
    let cookie = set_session_cookie(&state, &headers, &issued.token, issued.expires_in);
    Ok((
        [
            (header::SET_COOKIE, cookie),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Json(SessionResponse {
            user,
            csrf_token: crate::auth::csrf_token_for(&issued.token),
            expires_in: issued.expires_in,
        }),
    ))
}

/// The current web UI session (after a page reload, the page learns who is signed in and
/// its CSRF token here). 204 when the request carries no credentials at all: a signed-out
/// visitor is not an error.
#[utoipa::path(get, path = "/api/v1/auth/session", tag = "auth",
    responses((status = 200, body = SessionResponse), (status = 204, description = "No session"),
        (status = 401, description = "The session ended; the cookie is cleared", body = crate::error::Problem)))]
pub async fn get_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    user: Result<AuthUser, ApiError>,
) -> Response {
    match user {
        Ok(user) => {
            let expires_in =
                u64::try_from(user.expires_at - chrono::Utc::now().timestamp()).unwrap_or(0);
            (
                [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
                Json(SessionResponse {
                    user: user.user,
                    csrf_token: user.csrf_token,
                    expires_in,
                }),
            )
                .into_response()
        }
        Err(_)
            if !headers.contains_key(header::AUTHORIZATION)
                && crate::auth::session_cookie(&headers).is_none() =>
        {
            StatusCode::NO_CONTENT.into_response()
        }
        Err(err) => with_cleared_cookie(&state, &headers, err.into_response()),
    }
}

/// Adds a `Set-Cookie` that clears the session cookie, when the request carried one.
fn with_cleared_cookie(state: &AppState, headers: &HeaderMap, mut response: Response) -> Response {
    if crate::auth::session_cookie(headers).is_some() {
        response.headers_mut().insert(
            header::SET_COOKIE,
            set_session_cookie(state, headers, "", 0),
        );
    }
    response
}

/// Signs out of the web UI: the token is refused from now on and the cookie cleared.
#[utoipa::path(delete, path = "/api/v1/auth/session", tag = "auth",
    params(("X-CSRF-Token" = String, Header, description = "The session's CSRF token")),
    responses((status = 204, description = "Signed out"), (status = 401, body = crate::error::Problem),
        (status = 403, description = "Missing or wrong X-CSRF-Token", body = crate::error::Problem)))]
pub async fn delete_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    user: AuthUser,
) -> ApiResult<impl IntoResponse> {
    state
        .meta
        .revoke_token(&user.token_hash, user.expires_at)
        .await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            set_session_cookie(&state, &headers, "", 0),
        )],
    ))
}

/// Signs out: the token is refused from now on.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "Signed out"), (status = 401, body = crate::error::Problem)))]
pub async fn logout(State(state): State<AppState>, user: AuthUser) -> ApiResult<StatusCode> {
    state
        .meta
        .revoke_token(&user.token_hash, user.expires_at)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Changes one's own password; every token issued before is refused afterwards.
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", security(("bearer" = [])),
    request_body = PasswordChangeRequest,
    responses(
        (status = 204, description = "Changed: sign in again"),
        (status = 401, body = crate::error::Problem),
        (status = 403, description = "Current password is wrong", body = crate::error::Problem),
        (status = 422, description = "The new password breaks the policy", body = crate::error::Problem),
        (status = 429, description = "Too many wrong current passwords: see Retry-After", body = crate::error::Problem),
        (status = 503, description = "Too many password checks in progress: see Retry-After", body = crate::error::Problem)))]
pub async fn change_password(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    user: AuthUser,
    ApiJson(request): ApiJson<PasswordChangeRequest>,
) -> ApiResult<Response> {
    let account = state
        .meta
        .account_by_id(&user.user.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user {}", user.user.user_id)))?;
    if account.password_hash.is_none() {
        return Err(ApiError::Conflict(
            "this account signs in through an external identity provider: change the password there".into(),
        ));
    }
    // Guesses of the current password are braked like sign-ins, under a key of their own.
    let throttle_key = format!("password-change:{}", user.user.user_id);
    let admitted = match state.throttle.attempt(&throttle_key, client).await? {
        Ok(admitted) => admitted,
        Err(retry) => return Err(ApiError::TooManyRequests(retry)),
    };
    let valid = match password::verify(
        request.current_password,
        account.password_hash,
        &state.decoy_hash,
    )
    .await
    {
        Ok(valid) => valid,
        Err(busy) => {
            state.throttle.refund(&throttle_key, client, admitted).await;
            return Err(busy.into());
        }
    };
    if !valid {
        return Err(ApiError::Forbidden("current password is wrong".into()));
    }
    state
        .throttle
        .succeeded(&throttle_key, client, admitted)
        .await;
    accounts::set_password(state.meta.as_ref(), &user.user, request.new_password).await?;
    state
        .meta
        .revoke_token(&user.token_hash, user.expires_at)
        .await?;
    // A web UI session ends with the password it was opened with.
    Ok(with_cleared_cookie(
        &state,
        &headers,
        StatusCode::NO_CONTENT.into_response(),
    ))
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = crate::error::Problem)))]
pub async fn me(user: AuthUser) -> Json<User> {
    Json(user.user)
}

/// MyMonit's public token-signing keys (JWKS).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "JWKS document")))]
pub async fn jwks(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.tokens.jwks())
}
