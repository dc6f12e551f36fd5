//! Experiments: admins see and manage all; scientists see those they are associated with.

use axum::{
    Json,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use mymonit_model::{Action, Experiment, permissions::Scope, validate};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{ApiJson, ApiPath};
use crate::{
    auth::AuthUser,
    error::{ApiError, ApiResult},
    state::AppState,
};

/// An experiment's name, to create or rename it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ExperimentRequest {
    /// Unique name, for example `device-vibrations`.
    #[schema(example = "device-vibrations")]
    pub name: String,
}

/// Lists the experiments the actor may see.
pub async fn list_experiments(state: &AppState, actor: &AuthUser) -> ApiResult<Vec<Experiment>> {
    Ok(match actor.require(Action::ListExperiments)? {
        Scope::All => state.meta.list_experiments().await?,
        Scope::Own => state.meta.list_experiments_of(&actor.user.user_id).await?,
    })
}

/// Creates an experiment (admins).
pub async fn create_experiment(
    state: &AppState,
    actor: &AuthUser,
    request: ExperimentRequest,
) -> ApiResult<Experiment> {
    actor.require(Action::ManageExperiments)?;
    validate::experiment_name(&request.name)?;
    let experiment = state.meta.create_experiment(&request.name).await?;
    tracing::info!(actor = %actor.user.user_id, experiment_id = experiment.experiment_id, "experiment created");
    Ok(experiment)
}

/// Renames an experiment (admins).
pub async fn rename_experiment(
    state: &AppState,
    actor: &AuthUser,
    experiment_id: i64,
    request: ExperimentRequest,
) -> ApiResult<Experiment> {
    actor.require(Action::ManageExperiments)?;
    validate::experiment_name(&request.name)?;
    let experiment = state
        .meta
        .rename_experiment(experiment_id, &request.name)
        .await?;
    tracing::info!(actor = %actor.user.user_id, experiment_id, "experiment renamed");
    Ok(experiment)
}

/// An experiment the actor may see: 404 when it does not exist, 403 when a scientist is not
/// associated with it.
pub async fn visible_experiment(
    state: &AppState,
    actor: &AuthUser,
    action: Action,
    experiment_id: i64,
) -> ApiResult<Experiment> {
    let scope = actor.require(action)?;
    let user_id = match scope {
        Scope::Own => Some(actor.user.user_id.as_str()),
        Scope::All => None,
    };
    let (experiment, associated) = state
        .meta
        .experiment_and_association(experiment_id, user_id)
        .await?;
    let experiment =
        experiment.ok_or_else(|| ApiError::not_found(format!("experiment {experiment_id}")))?;
    if !associated {
        return Err(ApiError::Forbidden(format!(
            "you are not associated with experiment {experiment_id}"
        )));
    }
    Ok(experiment)
}

/// Lists experiments.
#[utoipa::path(get, path = "/api/v1/experiments", tag = "experiments", security(("bearer" = [])),
    responses((status = 200, body = Vec<Experiment>, description = "Admins: all; scientists: their own"),
        (status = 403, body = crate::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    actor: AuthUser,
) -> ApiResult<Json<Vec<Experiment>>> {
    Ok(Json(list_experiments(&state, &actor).await?))
}

/// Creates an experiment (admins).
#[utoipa::path(post, path = "/api/v1/experiments", tag = "experiments", security(("bearer" = [])),
    request_body = ExperimentRequest,
    responses((status = 201, body = Experiment), (status = 403, body = crate::error::Problem),
        (status = 409, description = "Name taken", body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiJson(request): ApiJson<ExperimentRequest>,
) -> ApiResult<impl IntoResponse> {
    let experiment = create_experiment(&state, &actor, request).await?;
    let location = format!("/api/v1/experiments/{}", experiment.experiment_id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(experiment),
    ))
}

/// Reads an experiment.
#[utoipa::path(get, path = "/api/v1/experiments/{experiment_id}", tag = "experiments", security(("bearer" = [])),
    params(("experiment_id" = i64, Path)),
    responses((status = 200, body = Experiment), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)))]
pub async fn get(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiPath(experiment_id): ApiPath<i64>,
) -> ApiResult<Json<Experiment>> {
    Ok(Json(
        visible_experiment(&state, &actor, Action::ReadExperiment, experiment_id).await?,
    ))
}

/// Renames an experiment (admins).
#[utoipa::path(patch, path = "/api/v1/experiments/{experiment_id}", tag = "experiments", security(("bearer" = [])),
    params(("experiment_id" = i64, Path)), request_body = ExperimentRequest,
    responses((status = 200, body = Experiment), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn rename(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiPath(experiment_id): ApiPath<i64>,
    ApiJson(request): ApiJson<ExperimentRequest>,
) -> ApiResult<Json<Experiment>> {
    Ok(Json(
        rename_experiment(&state, &actor, experiment_id, request).await?,
    ))
}

/// How an experiment takes writes.
#[derive(Debug, Deserialize, serde::Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestSettings {
    /// Writes through the InfluxDB-compatible API (`/write`, `/api/v2/write`) may create the
    /// measure types they name (a Telegraf's `cpu`, `mem`, …); off, their lines are refused
    /// with the reason. Off by default.
    pub create_measure_types: bool,
}

/// How an experiment takes writes (admins).
#[utoipa::path(get, path = "/api/v1/experiments/{experiment_id}/ingest-settings", tag = "experiments",
    security(("bearer" = [])), params(("experiment_id" = i64, Path)),
    responses((status = 200, body = IngestSettings), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem)))]
pub async fn get_ingest_settings(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiPath(experiment_id): ApiPath<i64>,
) -> ApiResult<Json<IngestSettings>> {
    actor.require(Action::ManageExperiments)?;
    let create_measure_types = state.meta.creates_measure_types(experiment_id).await?;
    Ok(Json(IngestSettings {
        create_measure_types,
    }))
}

/// Changes how an experiment takes writes (admins).
#[utoipa::path(put, path = "/api/v1/experiments/{experiment_id}/ingest-settings", tag = "experiments",
    security(("bearer" = [])), params(("experiment_id" = i64, Path)), request_body = IngestSettings,
    responses((status = 200, body = IngestSettings), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn set_ingest_settings(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiPath(experiment_id): ApiPath<i64>,
    ApiJson(settings): ApiJson<IngestSettings>,
) -> ApiResult<Json<IngestSettings>> {
    actor.require(Action::ManageExperiments)?;
    state
        .meta
        .set_creates_measure_types(experiment_id, settings.create_measure_types)
        .await?;
    tracing::info!(actor = %actor.user.user_id, experiment_id,
        create_measure_types = settings.create_measure_types, "experiment ingest settings changed");
    Ok(Json(settings))
}
