//! Authentication: passwords, sign-in throttling, tokens (MyMonit's own and external
//! issuers'), and the [`AuthUser`] extractor every protected handler takes.

pub mod oidc;
pub mod password;
pub mod throttle;
pub mod tokens;

use axum::{extract::FromRequestParts, http::request::Parts};
use mymonit_model::{Action, Role, User, permissions::Scope};

use crate::{error::ApiError, state::AppState};
use tokens::{Subject, token_hash};

/// The signed-in user behind a request, with the role from MyMonit's own user table.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// The account, as it is now in the database.
    pub user: User,
    /// SHA-256 of the bearer token (for logout).
    pub token_hash: String,
    /// When the token expires, epoch seconds.
    pub expires_at: i64,
    /// The CSRF token that goes with this credential (the web UI sends it back in
    /// `X-CSRF-Token` on every state-changing call made with the session cookie).
    pub csrf_token: String,
}

impl AuthUser {
    /// The user's role.
    pub fn role(&self) -> Role {
        self.user.role
    }

    /// The scope of `action` for this user, or 403 naming what was refused.
    pub fn require(&self, action: Action) -> Result<Scope, ApiError> {
        self.role().may(action).ok_or_else(|| {
            ApiError::Forbidden(format!("role {} may not {}", self.role(), describe(action)))
        })
    }
}

fn describe(action: Action) -> &'static str {
    match action {
        Action::ListUsers => "list users",
        Action::ReadUser => "read user accounts",
        Action::CreateUser => "create users",
        Action::UpdateUser => "change user accounts",
        Action::EraseUser => "erase users",
        Action::ListExperiments => "list experiments",
        Action::ReadExperiment => "read experiments",
        Action::ManageExperiments => "create or rename experiments",
        Action::ListMeasureTypes => "list measure types",
        Action::ManageMeasureTypes => "create measure types",
        Action::ManageIngestTokens => "manage ingest tokens",
        Action::ListAssociations => "list associations",
        Action::ManageAssociations => "associate or dissociate scientists",
        Action::ReadMeasures => "read measures",
        Action::ReadAudit => "read the audit trail",
        Action::ManageSources => "create, change or delete sources",
        Action::ListSources => "list sources",
    }
}

/// Name of the web UI's session cookie (HttpOnly, SameSite=Strict: page scripts never see
/// the token inside).
pub const SESSION_COOKIE: &str = "mymonit_session";

/// Header in which the web UI returns its CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How a request presented its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presented {
    Bearer,
    Cookie,
}

/// The token from `Authorization: Bearer …`, or else from the session cookie.
fn presented_token(parts: &Parts) -> Result<(&str, Presented), ApiError> {
    let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
        return session_cookie(&parts.headers)
            .map(|token| (token, Presented::Cookie))
            .ok_or_else(|| {
                ApiError::Unauthenticated(
                    "missing Authorization: Bearer token (or web UI session cookie)".into(),
                )
            });
    };
    let value = header
        .to_str()
        .map_err(|_| ApiError::Unauthenticated("malformed Authorization header".into()))?;
    let (scheme, token) = value.split_once(' ').ok_or_else(|| {
        ApiError::Unauthenticated("expected Authorization: Bearer <token>".into())
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::Unauthenticated(
            "expected Authorization: Bearer <token>".into(),
        ));
    }
    Ok((token.trim(), Presented::Bearer))
}

/// The value of the session cookie, if the request carries one.
pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == SESSION_COOKIE && !value.is_empty())
        .map(|(_, value)| value)
}

/// The CSRF token bound to a session token: only someone who can read the session (the
/// page that signed in, never another site) knows it, and it dies with the session.
pub fn csrf_token_for(token: &str) -> String {
    token_hash(&format!("mymonit-csrf:{token}"))
}

/// A call made with the session cookie that changes something must carry the session's
/// CSRF token: a cookie alone proves only that the browser, not the page, sent it.
fn check_csrf(parts: &Parts, expected: &str) -> Result<(), ApiError> {
    if matches!(
        parts.method,
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    ) {
        return Ok(());
    }
    let sent = parts
        .headers
        .get(CSRF_HEADER)
        .map(|value| value.as_bytes())
        .unwrap_or_default();
    aws_lc_rs::constant_time::verify_slices_are_equal(sent, expected.as_bytes()).map_err(|_| {
        ApiError::Forbidden(
            "missing or wrong X-CSRF-Token header (required with the session cookie)".into(),
        )
    })
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (token, presented) = presented_token(parts)?;
        let user = authenticate(state, token).await?;
        if presented == Presented::Cookie {
            check_csrf(parts, &user.csrf_token)?;
        }
        note_actor(parts, &user.user);
        Ok(user)
    }
}

/// Names the actor of a request for the audit trail.
pub fn note_actor(parts: &Parts, user: &User) {
    if let Some(slot) = parts.extensions.get::<crate::audit::ActorSlot>() {
        slot.set(crate::audit::Actor {
            id: user.user_id.clone(),
            role: user.role.to_string(),
        });
    }
}

/// The user behind one of MyMonit's access tokens (or an external issuer's): checks the
/// signature, the account, its token generation and the revocation list.
pub async fn authenticate(state: &AppState, token: &str) -> Result<AuthUser, ApiError> {
    let verified = state.tokens.verify(token).await.map_err(|err| {
        tracing::info!(reason = %err, "token refused");
        ApiError::Unauthenticated(err.to_string())
    })?;
    let token_hash = token_hash(token);
    // The account and the revocation list are read together: on a database server each
    // read is a round trip, on SQLite both share one read transaction.
    let (account, revoked) = match &verified.subject {
        Subject::UserId { user_id, .. } => {
            state
                .meta
                .account_and_revocation(user_id, &token_hash)
                .await?
        }
        Subject::Username(username) => {
            let (account, revoked) = tokio::join!(
                state.meta.account_by_username(username),
                state.meta.is_token_revoked(&token_hash)
            );
            (account?, revoked?)
        }
    };
    let account = account.ok_or_else(|| {
        ApiError::Unauthenticated("the token's user has no MyMonit account".into())
    })?;
    if let Subject::UserId { generation, .. } = verified.subject
        && generation != account.token_generation
    {
        return Err(ApiError::Unauthenticated(
            "token was issued before the password changed: sign in again".into(),
        ));
    }
    if revoked {
        return Err(ApiError::Unauthenticated(
            "token was revoked (signed out)".into(),
        ));
    }
    let csrf_token = csrf_token_for(token);
    Ok(AuthUser {
        user: account.user,
        token_hash,
        expires_at: verified.expires_at,
        csrf_token,
    })
}

/// The user behind a personal access token: live (not revoked, not expired), of an account
/// that still exists; `username`, when the client sends one (HTTP Basic), must be its
/// owner's.
pub async fn authenticate_personal(
    state: &AppState,
    secret: &str,
    username: Option<&str>,
) -> Result<AuthUser, ApiError> {
    let token_hash = token_hash(secret);
    let token = state
        .meta
        .personal_token_by_hash(&token_hash)
        .await?
        .ok_or_else(|| {
            ApiError::Unauthenticated("unknown or revoked personal access token".into())
        })?;
    if token.expires_at <= tokens::epoch_seconds() {
        return Err(ApiError::Unauthenticated(format!(
            "personal access token {:?} expired: make a new one under Settings",
            token.name
        )));
    }
    let account = state
        .meta
        .account_by_id(&token.user_id)
        .await?
        .ok_or_else(|| ApiError::Unauthenticated("the token's user has no account".into()))?;
    if let Some(username) = username.filter(|name| !name.is_empty())
        && account.user.username.expose() != username
    {
        return Err(ApiError::Unauthenticated(
            "this personal access token belongs to another user".into(),
        ));
    }
    Ok(AuthUser {
        user: account.user,
        token_hash,
        expires_at: token.expires_at,
        csrf_token: String::new(),
    })
}
