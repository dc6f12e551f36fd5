//! InfluxDB's HTTP API, so that Telegraf, InfluxDB client libraries and Grafana's InfluxDB
//! datasource work against MyMonit with its access rules in force: `/write` (1.x),
//! `/api/v2/write`, `/query` (InfluxQL), `/ping` and `/health`.
//!
//! The mapping is InfluxDB 2's: the database (bucket) is the experiment, the measurement is
//! the measure type, a field key is the tag `_field` (none for the field `value`).

mod catalogue;
mod credentials;
mod query;
mod select;
mod write;

use axum::{
    Json, Router,
    http::{HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use tower_http::set_header::SetResponseHeaderLayer;

pub use credentials::Credentials;

use crate::{error::ApiError, state::AppState};

/// The InfluxDB version MyMonit answers as (the API it follows).
pub const COMPATIBLE_VERSION: &str = "1.8.10";

/// An error in InfluxDB's shape: `{"error": …}` (1.x) or `{"code", "message"}` (2.x).
#[derive(Debug)]
pub enum InfluxError {
    /// A 1.x answer.
    V1(StatusCode, String),
    /// A 2.x answer with its code (`invalid`, `unauthorized`, `not found`, …).
    V2(StatusCode, &'static str, String),
}

impl InfluxError {
    /// The same problem in the API version `v2` says.
    fn of(v2: bool, status: StatusCode, message: impl Into<String>) -> Self {
        let message = message.into();
        if !v2 {
            return Self::V1(status, message);
        }
        let code = match status {
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not found",
            StatusCode::PAYLOAD_TOO_LARGE => "request too large",
            StatusCode::UNPROCESSABLE_ENTITY => "unprocessable entity",
            StatusCode::TOO_MANY_REQUESTS => "too many requests",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            status if status.is_server_error() => "internal error",
            _ => "invalid",
        };
        Self::V2(status, code, message)
    }

    /// A MyMonit error in InfluxDB's shape (a server failure keeps its details in the log).
    fn from_api(v2: bool, err: ApiError) -> Self {
        let status = err.status();
        let message = match &err {
            ApiError::Internal(inner) => {
                tracing::error!(error = %inner, "InfluxDB API request failed");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        Self::of(v2, status, message)
    }
}

impl IntoResponse for InfluxError {
    fn into_response(self) -> Response {
        let (status, body, message) = match self {
            Self::V1(status, message) => (
                status,
                serde_json::json!({ "error": message }),
                message.clone(),
            ),
            Self::V2(status, code, message) => (
                status,
                serde_json::json!({ "code": code, "message": message }),
                message.clone(),
            ),
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"MyMonit\""),
            );
        } else {
            let short: String = message.chars().take(1024).collect();
            if let Ok(value) = HeaderValue::from_str(&short.replace(['\r', '\n'], " ")) {
                headers.insert(HeaderName::from_static("x-influxdb-error"), value);
            }
        }
        response
    }
}

/// `GET`/`HEAD /ping`: 204 with the version, as InfluxDB answers; no credentials needed.
async fn ping() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// `GET /health`, for InfluxDB 2 clients: whether the database answers.
async fn health(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> (StatusCode, Json<serde_json::Value>) {
    let (status, text, message) = match state.meta.ping().await {
        Ok(()) => (StatusCode::OK, "pass", "ready for queries and writes"),
        Err(err) => {
            tracing::warn!(error = %err, "health: the database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "fail",
                "the database does not answer",
            )
        }
    };
    (
        status,
        Json(serde_json::json!({
            "name": "mymonit",
            "message": message,
            "status": text,
            "checks": [],
            "version": COMPATIBLE_VERSION,
        })),
    )
}

/// The InfluxDB-compatible routes, each answer marked with the version they follow.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ping", get(ping).head(ping))
        .route("/health", get(health))
        .route("/write", axum::routing::post(write::write_v1))
        .route("/api/v2/write", axum::routing::post(write::write_v2))
        .route("/query", get(query::query).post(query::query))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("x-influxdb-version"),
            HeaderValue::from_static(COMPATIBLE_VERSION),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("x-influxdb-build"),
            HeaderValue::from_static("MyMonit"),
        ))
}
