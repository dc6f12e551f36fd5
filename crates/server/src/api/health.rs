//! Liveness and readiness.

use axum::{Json, extract::State};
use serde_json::{Value, json};

use crate::{error::ApiError, state::AppState};

/// Alive: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is alive")))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready to serve"), (status = 503, description = "The database is unreachable")))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.meta.ping().await.map_err(|err| {
        tracing::warn!(error = %err, "readiness check failed");
        ApiError::Unavailable("database unreachable".into())
    })?;
    let consumer = state
        .consumer
        .read()
        .map(|c| c.clone())
        .unwrap_or(crate::ingest::amqp::ConsumerState::Disabled);
    Ok(Json(
        json!({"status": "ready", "database": "ok", "amqp": consumer}),
    ))
}
