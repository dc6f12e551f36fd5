//! The original MyMonit REST routes, kept for existing clients: same paths, same JSON shapes,
//! the role rules of DESIGN.md. A thin layer over the `/api/v1` services; errors are the
//! richer problem documents, and the original's bugs are not reproduced (an admin sees every
//! experiment, a non-admin gets a refusal rather than an empty list).

use std::collections::BTreeMap;

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use mymonit_model::{Experiment, User, UserPatch, time};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    api::{
        ApiJson, ApiPath, associations, experiments, measures, parse_experiment_id,
        users::{self, CreateUserRequest},
    },
    auth::AuthUser,
    error::ApiResult,
    state::AppState,
};

/// The original's `PUT /users/{user_id}` body: name, email, username. Other fields the
/// original ignored (`user_id`, `role`) are ignored here too.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CompatUserUpdate {
    /// New display name.
    pub name: Option<String>,
    /// New email.
    pub email: Option<String>,
    /// New username (admins only).
    pub username: Option<String>,
}

/// A measure in the original shape. `timestamp` is an HTTP date, as the original (Flask)
/// serialised its stored datetimes.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompatMeasure {
    /// Measure type name.
    pub measure_type: String,
    /// `Wed, 06 Apr 2022 07:00:00 GMT`.
    pub timestamp: String,
    /// Experiment name.
    pub experiment: String,
    /// The reading.
    pub value: f64,
}

/// The users of one experiment, in the original associations shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompatAssociation {
    /// Scientists associated with the experiment.
    pub users: Vec<User>,
}

/// Lists users.
#[utoipa::path(get, path = "/users/", tag = "original API", security(("bearer" = [])),
    responses((status = 200, body = Vec<User>), (status = 403, body = crate::error::Problem)))]
pub async fn list_users(
    State(state): State<AppState>,
    actor: AuthUser,
) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(users::list_users(&state, &actor).await?))
}

/// Creates a user (admins). The original body `{user_id,name,username,email,role}`.
#[utoipa::path(post, path = "/users/", tag = "original API", security(("bearer" = [])),
    request_body = CreateUserRequest,
    responses((status = 201, body = User), (status = 403, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn create_user(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiJson(request): ApiJson<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<User>)> {
    Ok((
        StatusCode::CREATED,
        Json(users::create_user(&state, &actor, request).await?),
    ))
}

/// Updates a user: admins anyone, scientists their own name and email.
#[utoipa::path(put, path = "/users/{user_id}", tag = "original API", security(("bearer" = [])),
    params(("user_id" = String, Path)), request_body = CompatUserUpdate,
    responses((status = 200, body = User), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn update_user(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiPath(user_id): ApiPath<String>,
    ApiJson(request): ApiJson<CompatUserUpdate>,
) -> ApiResult<Json<User>> {
    let patch = UserPatch {
        name: request.name,
        username: request.username,
        email: request.email,
        role: None,
    };
    Ok(Json(
        users::update_user(&state, &actor, &user_id, patch).await?,
    ))
}

/// Lists experiments: admins all, scientists their own.
#[utoipa::path(get, path = "/experiments/", tag = "original API", security(("bearer" = [])),
    responses((status = 200, body = Vec<Experiment>), (status = 403, body = crate::error::Problem)))]
pub async fn list_experiments(
    State(state): State<AppState>,
    actor: AuthUser,
) -> ApiResult<Json<Vec<Experiment>>> {
    Ok(Json(experiments::list_experiments(&state, &actor).await?))
}

/// Creates an experiment (admins). Body `{"name"}`.
#[utoipa::path(post, path = "/experiments/", tag = "original API", security(("bearer" = [])),
    request_body = experiments::ExperimentRequest,
    responses((status = 201, body = Experiment), (status = 403, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn create_experiment(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiJson(request): ApiJson<experiments::ExperimentRequest>,
) -> ApiResult<(StatusCode, Json<Experiment>)> {
    Ok((
        StatusCode::CREATED,
        Json(experiments::create_experiment(&state, &actor, request).await?),
    ))
}

/// Renames an experiment (admins). Body `{"name"}`.
#[utoipa::path(put, path = "/experiments/{experiment_id}", tag = "original API", security(("bearer" = [])),
    params(("experiment_id" = i64, Path)), request_body = experiments::ExperimentRequest,
    responses((status = 200, body = Experiment), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn update_experiment(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiPath(experiment_id): ApiPath<String>,
    ApiJson(request): ApiJson<experiments::ExperimentRequest>,
) -> ApiResult<Json<Experiment>> {
    let experiment_id = parse_experiment_id(&experiment_id)?;
    Ok(Json(
        experiments::rename_experiment(&state, &actor, experiment_id, request).await?,
    ))
}

/// All measures of an experiment (associated scientists), as a JSON array streamed in time
/// order.
#[utoipa::path(get, path = "/measures/{experiment_id}", tag = "original API", security(("bearer" = [])),
    params(("experiment_id" = i64, Path)),
    responses((status = 200, body = Vec<CompatMeasure>), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem)))]
pub async fn list_measures(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiPath(experiment_id): ApiPath<String>,
) -> ApiResult<Response> {
    let experiment_id = parse_experiment_id(&experiment_id)?;
    let params = measures::MeasuresParams::default();
    let (_, query) = measures::prepare(&state, &actor, experiment_id, &params).await?;
    let mut first = true;
    let body = measures::stream_body(
        measures::pages(state.measures.clone(), query, None),
        "[",
        "]",
        move |page| {
            let mut out = Vec::with_capacity(page.len() * 100);
            for measure in page.iter() {
                if !first {
                    out.push(b',');
                }
                first = false;
                let item = CompatMeasure {
                    measure_type: measure.measure_type.to_owned(),
                    timestamp: time::format_http_date(measure.timestamp_ns),
                    experiment: measure.experiment.to_owned(),
                    value: measure.value,
                };
                let _ = serde_json::to_writer(&mut out, &item);
            }
            Bytes::from(out)
        },
    );
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Associations by experiment id: `{"<experiment_id>": {"users": [user…]}}` (admins).
#[utoipa::path(get, path = "/scientists-experiments/", tag = "original API", security(("bearer" = [])),
    responses((status = 200, body = BTreeMap<String, CompatAssociation>), (status = 403, body = crate::error::Problem)))]
pub async fn list_associations(
    State(state): State<AppState>,
    actor: AuthUser,
) -> ApiResult<Json<BTreeMap<String, CompatAssociation>>> {
    let mut indexed: BTreeMap<String, CompatAssociation> = BTreeMap::new();
    for (experiment, user) in associations::list_associations(&state, &actor).await? {
        indexed
            .entry(experiment.experiment_id.to_string())
            .or_insert_with(|| CompatAssociation { users: Vec::new() })
            .users
            .push(user);
    }
    Ok(Json(indexed))
}

/// Associates a scientist with an experiment (admins).
#[utoipa::path(post, path = "/scientists-experiments/{experiment_id}/{scientist_id}", tag = "original API",
    security(("bearer" = [])), params(("experiment_id" = i64, Path), ("scientist_id" = String, Path)),
    responses((status = 201, description = "Associated"), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem), (status = 422, description = "Not a scientist", body = crate::error::Problem)))]
pub async fn associate(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiPath((experiment_id, scientist_id)): ApiPath<(String, String)>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let experiment_id = parse_experiment_id(&experiment_id)?;
    associations::associate(&state, &actor, experiment_id, &scientist_id).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"experiment_id": experiment_id, "user_id": scientist_id})),
    ))
}
