//! Measure types: everyone signed in lists them; admins add more.

use axum::{Json, extract::State, http::StatusCode};
use mymonit_model::{Action, MeasureType, validate};
use serde::Deserialize;
use utoipa::ToSchema;

use super::ApiJson;
use crate::{auth::AuthUser, error::ApiResult, state::AppState};

/// A new measure type.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MeasureTypeRequest {
    /// Unique name used in messages, for example `kelvin`.
    pub name: String,
    /// Unit symbol, for example `K`.
    pub symbol: String,
    /// What it measures, for example `thermodynamic temperature`.
    pub quantity: String,
}

/// Lists measure types.
#[utoipa::path(get, path = "/api/v1/measure-types", tag = "measure types", security(("bearer" = [])),
    responses((status = 200, body = Vec<MeasureType>), (status = 401, body = crate::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    actor: AuthUser,
) -> ApiResult<Json<Vec<MeasureType>>> {
    actor.require(Action::ListMeasureTypes)?;
    Ok(Json(state.meta.list_measure_types().await?))
}

/// Creates a measure type (admins).
#[utoipa::path(post, path = "/api/v1/measure-types", tag = "measure types", security(("bearer" = [])),
    request_body = MeasureTypeRequest,
    responses((status = 201, body = MeasureType), (status = 403, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiJson(request): ApiJson<MeasureTypeRequest>,
) -> ApiResult<(StatusCode, Json<MeasureType>)> {
    actor.require(Action::ManageMeasureTypes)?;
    validate::measure_type_field("name", &request.name)?;
    validate::measure_type_field("symbol", &request.symbol)?;
    validate::measure_type_field("quantity", &request.quantity)?;
    let created = state
        .meta
        .create_measure_type(&request.name, &request.symbol, &request.quantity)
        .await?;
    tracing::info!(actor = %actor.user.user_id, measure_type = %created.name, "measure type created");
    Ok((StatusCode::CREATED, Json(created)))
}
