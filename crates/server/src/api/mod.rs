//! The REST API under `/api/v1`, plus the extractors that give malformed input the same
//! problem-document answers as every other error.

pub mod alert_rules;
pub mod associations;
pub mod audit;
pub mod auth;
pub mod experiments;
pub mod health;
pub mod ingest;
pub mod ingest_tokens;
pub mod measure_types;
pub mod measures;
pub mod personal_tokens;
pub mod sources;
pub mod stats;
pub mod users;

use axum::extract::FromRequest;
use axum::extract::FromRequestParts;

use crate::error::ApiError;

/// `Json` whose rejections (syntax 400, wrong types or missing fields 422, too large 413,
/// wrong content type 415) are problem documents.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// The raw body, whose rejections (too large: 413) are problem documents.
pub struct ApiBytes(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        Ok(Self(axum::body::Bytes::from_request(request, state).await?))
    }
}

/// `Path` whose rejections are problem documents.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// `Query` whose rejections are problem documents.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// Route parameters are strings in the original API (`/experiments/<experiment>`); a
/// non-numeric experiment id is a 404 (no such experiment), as it was there.
pub fn parse_experiment_id(text: &str) -> Result<i64, ApiError> {
    text.parse()
        .map_err(|_| ApiError::not_found(format!("experiment {text:?}")))
}
