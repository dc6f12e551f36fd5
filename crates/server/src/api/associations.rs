//! Scientist ↔ experiment associations (admins).

use axum::{Json, extract::State, http::StatusCode};
use mymonit_model::{Action, Experiment, Role, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiJson, ApiPath};
use crate::{
    auth::AuthUser,
    error::{ApiError, ApiResult},
    state::AppState,
};

/// One association.
#[derive(Debug, Serialize, ToSchema)]
pub struct Association {
    /// The experiment.
    pub experiment: Experiment,
    /// The scientist.
    pub user: User,
}

/// An association to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssociationRequest {
    /// The experiment.
    pub experiment_id: i64,
    /// The scientist's user id.
    pub user_id: String,
}

/// All associations (admins).
pub async fn list_associations(
    state: &AppState,
    actor: &AuthUser,
) -> ApiResult<Vec<(Experiment, User)>> {
    actor.require(Action::ListAssociations)?;
    Ok(state.meta.list_associations().await?)
}

/// Associates a scientist with an experiment (admins); `Ok(true)` when it is new.
pub async fn associate(
    state: &AppState,
    actor: &AuthUser,
    experiment_id: i64,
    user_id: &str,
) -> ApiResult<bool> {
    actor.require(Action::ManageAssociations)?;
    state
        .meta
        .get_experiment(experiment_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("experiment {experiment_id}")))?;
    let user = state
        .meta
        .get_user(user_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user {user_id}")))?;
    if user.role != Role::Scientist {
        return Err(ApiError::Invalid(
            format!(
                "user {user_id} is {}, only scientists can be associated with experiments",
                user.role
            ),
            Some("user_id"),
        ));
    }
    if state.meta.password_set_by(user_id).await?.as_deref() == Some(actor.user.user_id.as_str()) {
        let about = serde_json::json!({"user_id": user_id, "experiment_id": experiment_id});
        crate::audit::flag_duty_event(
            state,
            &actor.user.user_id,
            crate::audit::DutyEvent::AssociatedOwnProvisionedAccount,
            about,
        )
        .await;
    }
    let created = state.meta.associate(experiment_id, user_id).await?;
    tracing::info!(actor = %actor.user.user_id, experiment_id, user_id, "scientist associated");
    Ok(created)
}

/// Lists associations (admins).
#[utoipa::path(get, path = "/api/v1/associations", tag = "associations", security(("bearer" = [])),
    responses((status = 200, body = Vec<Association>), (status = 403, body = crate::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    actor: AuthUser,
) -> ApiResult<Json<Vec<Association>>> {
    let associations = list_associations(&state, &actor).await?;
    Ok(Json(
        associations
            .into_iter()
            .map(|(experiment, user)| Association { experiment, user })
            .collect(),
    ))
}

/// Associates a scientist with an experiment (admins).
#[utoipa::path(post, path = "/api/v1/associations", tag = "associations", security(("bearer" = [])),
    request_body = AssociationRequest,
    responses((status = 201, description = "Associated"), (status = 200, description = "Was already associated"),
        (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
        (status = 422, description = "The user is not a scientist", body = crate::error::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiJson(request): ApiJson<AssociationRequest>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let created = associate(&state, &actor, request.experiment_id, &request.user_id).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(
            serde_json::json!({"experiment_id": request.experiment_id, "user_id": request.user_id}),
        ),
    ))
}

/// Removes an association (admins).
#[utoipa::path(delete, path = "/api/v1/associations/{experiment_id}/{user_id}", tag = "associations",
    security(("bearer" = [])), params(("experiment_id" = i64, Path), ("user_id" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 403, body = crate::error::Problem),
        (status = 404, description = "No such association", body = crate::error::Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiPath((experiment_id, user_id)): ApiPath<(i64, String)>,
) -> ApiResult<StatusCode> {
    actor.require(Action::ManageAssociations)?;
    if !state.meta.dissociate(experiment_id, &user_id).await? {
        return Err(ApiError::not_found(format!(
            "association of {user_id} with experiment {experiment_id}"
        )));
    }
    tracing::info!(actor = %actor.user.user_id, experiment_id, user_id, "scientist dissociated");
    Ok(StatusCode::NO_CONTENT)
}
