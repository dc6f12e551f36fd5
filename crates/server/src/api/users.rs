//! User accounts. Admins manage everyone; a scientist reads and changes only their own name
//! and email; auditors have no business here.

use axum::{
    Json,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use mymonit_model::{Action, Redacted, Role, User, UserPatch, permissions::Scope};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::{ApiJson, ApiPath};
use crate::{
    accounts,
    audit::{DutyEvent, flag_duty_event},
    auth::AuthUser,
    error::{ApiError, ApiResult},
    state::AppState,
};

/// A new account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// Staff id, for example `S003`.
    pub user_id: String,
    /// Display name.
    #[schema(value_type = String)]
    pub name: mymonit_model::Personal<String>,
    /// Login name, or the external identity provider's subject (a Firebase uid).
    #[schema(value_type = String)]
    pub username: mymonit_model::Personal<String>,
    /// Email address.
    #[schema(value_type = String)]
    pub email: mymonit_model::Personal<String>,
    /// `ADMIN`, `SCIENTIST` or `AUDITOR`.
    pub role: Role,
    /// Optional password for the built-in sign-in (policy enforced). Without one the user
    /// signs in only through an external identity provider.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    pub password: Option<Redacted<String>>,
}

/// A change to an account; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    /// New display name.
    pub name: Option<String>,
    /// New username (admins only).
    pub username: Option<String>,
    /// New email.
    pub email: Option<String>,
    /// New role (admins only, not their own).
    pub role: Option<Role>,
}

/// Lists accounts (a scientist sees only their own).
pub async fn list_users(state: &AppState, actor: &AuthUser) -> ApiResult<Vec<User>> {
    match actor.require(Action::ListUsers)? {
        Scope::All => Ok(state.meta.list_users().await?),
        Scope::Own => Ok(vec![actor.user.clone()]),
    }
}

/// Creates an account (admins).
pub async fn create_user(
    state: &AppState,
    actor: &AuthUser,
    request: CreateUserRequest,
) -> ApiResult<User> {
    actor.require(Action::CreateUser)?;
    let user = User {
        user_id: request.user_id,
        name: request.name,
        username: request.username,
        email: request.email,
        role: request.role,
    };
    let with_password = request.password.is_some();
    accounts::create(state.meta.as_ref(), &user, request.password).await?;
    tracing::info!(actor = %actor.user.user_id, user_id = %user.user_id, role = %user.role, "user created");
    let admin_id = &actor.user.user_id;
    if with_password {
        state
            .meta
            .set_password_set_by(&user.user_id, admin_id)
            .await?;
        let about = json!({"user_id": user.user_id, "role": user.role});
        flag_duty_event(state, admin_id, DutyEvent::PasswordSetByAdmin, about).await;
    }
    if user.role != Role::Scientist {
        let about = json!({"user_id": user.user_id, "role": user.role});
        flag_duty_event(state, admin_id, DutyEvent::RoleGranted, about).await;
    }
    Ok(user)
}

/// Changes an account, enforcing who may change what.
pub async fn update_user(
    state: &AppState,
    actor: &AuthUser,
    user_id: &str,
    patch: UserPatch,
) -> ApiResult<User> {
    let scope = actor.require(Action::UpdateUser)?;
    if scope == Scope::Own && user_id != actor.user.user_id {
        return Err(ApiError::Forbidden(
            "scientists may change only their own account".into(),
        ));
    }
    patch.validate()?;
    let current = state
        .meta
        .get_user(user_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user {user_id}")))?;
    if scope == Scope::Own && !patch.only_name_and_email(&current) {
        return Err(ApiError::Forbidden(
            "scientists may change only their own name and email".into(),
        ));
    }
    // Answering "email is already taken" to anyone but an admin would tell whether an address
    // has an account: scientists ask an admin to change their email.
    if scope == Scope::Own
        && patch
            .email
            .as_ref()
            .is_some_and(|email| email != current.email.expose())
    {
        return Err(ApiError::Forbidden(
            "an email address is changed by an admin (ask one); you may change your name".into(),
        ));
    }
    if user_id == actor.user.user_id && patch.role.is_some_and(|role| role != current.role) {
        return Err(ApiError::Conflict(
            "you cannot change your own role: ask another admin".into(),
        ));
    }
    let updated = state.meta.update_user(user_id, &patch).await?;
    tracing::info!(actor = %actor.user.user_id, user_id = %user_id, "user updated");
    if updated.role != current.role && updated.role != Role::Scientist {
        let about = json!({"user_id": user_id, "role": updated.role, "was": current.role});
        flag_duty_event(state, &actor.user.user_id, DutyEvent::RoleGranted, about).await;
    }
    Ok(updated)
}

/// Lists accounts.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = Vec<User>, description = "Admins: everyone; scientists: themselves"),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)))]
pub async fn list(State(state): State<AppState>, actor: AuthUser) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(list_users(&state, &actor).await?))
}

/// Creates an account (admins).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", security(("bearer" = [])),
    request_body = CreateUserRequest,
    responses((status = 201, body = User), (status = 403, body = crate::error::Problem),
        (status = 409, description = "user_id, username or email taken", body = crate::error::Problem),
        (status = 422, body = crate::error::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiJson(request): ApiJson<CreateUserRequest>,
) -> ApiResult<impl IntoResponse> {
    let user = create_user(&state, &actor, request).await?;
    let location = format!("/api/v1/users/{}", user.user_id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(user),
    ))
}

/// Reads an account (scientists: their own).
#[utoipa::path(get, path = "/api/v1/users/{user_id}", tag = "users", security(("bearer" = [])),
    params(("user_id" = String, Path)),
    responses((status = 200, body = User), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
pub async fn get(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiPath(user_id): ApiPath<String>,
) -> ApiResult<Json<User>> {
    if actor.require(Action::ReadUser)? == Scope::Own && user_id != actor.user.user_id {
        return Err(ApiError::Forbidden(
            "scientists may read only their own account".into(),
        ));
    }
    let user = state
        .meta
        .get_user(&user_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user {user_id}")))?;
    Ok(Json(user))
}

/// Changes an account: admins any field of anyone (not their own role), scientists their
/// own name and email.
#[utoipa::path(patch, path = "/api/v1/users/{user_id}", tag = "users", security(("bearer" = [])),
    params(("user_id" = String, Path)), request_body = UpdateUserRequest,
    responses((status = 200, body = User), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem)))]
pub async fn update(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiPath(user_id): ApiPath<String>,
    ApiJson(request): ApiJson<UpdateUserRequest>,
) -> ApiResult<Json<User>> {
    let patch = UserPatch {
        name: request.name,
        username: request.username,
        email: request.email,
        role: request.role,
    };
    Ok(Json(update_user(&state, &actor, &user_id, patch).await?))
}

/// Erases an account (GDPR): personal data and credentials are removed, the id is kept as a
/// pseudonym so the audit trail still holds together.
#[utoipa::path(delete, path = "/api/v1/users/{user_id}", tag = "users", security(("bearer" = [])),
    params(("user_id" = String, Path)),
    responses((status = 204, description = "Erased"), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn erase(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiPath(user_id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    actor.require(Action::EraseUser)?;
    if user_id == actor.user.user_id {
        return Err(ApiError::Conflict(
            "you cannot erase the account you are signed in with".into(),
        ));
    }
    state.meta.erase_user(&user_id).await?;
    tracing::info!(actor = %actor.user.user_id, user_id = %user_id, "user erased");
    Ok(StatusCode::NO_CONTENT)
}
