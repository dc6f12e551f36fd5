//! The one mapping from errors to HTTP: every 4xx/5xx body is an RFC 9457 problem document
//! (`application/problem+json` with `type`, `title`, `status`, `detail`). Internal errors are
//! logged once, here, and shown opaquely.

use axum::{
    Json,
    extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use mymonit_model::{ValidationError, password::PasswordPolicyError};
use mymonit_store::StoreError;
use serde::Serialize;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request cannot be understood (bad JSON, bad query parameter).
    #[error("{0}")]
    BadRequest(String),
    /// 401: no valid credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403: signed in, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such thing.
    #[error("{0}")]
    NotFound(String),
    /// 405: the path exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: a unique field is taken, or the change conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// 413: body larger than the configured limit.
    #[error("request body is larger than the server accepts (setting max_body_bytes)")]
    PayloadTooLarge,
    /// 415: wrong Content-Type.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed but invalid; names the field.
    #[error("{0}")]
    Invalid(String, Option<&'static str>),
    /// 429: too many failed attempts; retry after this many seconds.
    #[error("too many failed sign-in attempts: try again in {0} seconds")]
    TooManyRequests(u64),
    /// 429: too many requests of this kind in progress from this user; retry after this many
    /// seconds.
    #[error("{0}")]
    RateLimited(String, u64),
    /// 503: a dependency (the database) is unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// 503: too much costly work of this kind in progress; retry after this many seconds.
    #[error("{0}")]
    Busy(String, u64),
    /// 500: a bug or an unexpected failure; details are logged, never sent.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Result of handlers.
pub type ApiResult<T> = Result<T, ApiError>;

/// RFC 9457 problem details.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Problem type, a URN per kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What was wrong with this request.
    pub detail: String,
    /// The request field at fault, for validation problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
}

impl ApiError {
    /// Status code and short machine name of the problem.
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.status_and_kind().0
    }

    fn status_and_kind(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request"),
            ApiError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type")
            }
            ApiError::Invalid(..) => (StatusCode::UNPROCESSABLE_ENTITY, "validation"),
            ApiError::TooManyRequests(_) | ApiError::RateLimited(..) => {
                (StatusCode::TOO_MANY_REQUESTS, "too-many-requests")
            }
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Busy(..) => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// Shorthand for a 404 naming what was missing.
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        ApiError::NotFound(format!("{what} not found"))
    }

    /// The problem document for this error.
    pub fn problem(&self) -> Problem {
        let (status, kind) = self.status_and_kind();
        let detail = match self {
            ApiError::Internal(_) => {
                "an internal error occurred; it has been logged for the operators".to_string()
            }
            other => other.to_string(),
        };
        Problem {
            kind: format!("urn:mymonit:problem:{kind}"),
            title: status.canonical_reason().unwrap_or("error").to_string(),
            status: status.as_u16(),
            detail,
            field: match self {
                ApiError::Invalid(_, field) => *field,
                _ => None,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(err) = &self {
            tracing::error!(error = format!("{err:#}"), "internal error");
        }
        let problem = self.problem();
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match &self {
            ApiError::Unauthenticated(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"mymonit\""),
                );
            }
            ApiError::TooManyRequests(seconds)
            | ApiError::Busy(_, seconds)
            | ApiError::RateLimited(_, seconds) => {
                if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                    headers.insert(header::RETRY_AFTER, value);
                }
            }
            _ => {}
        }
        response
    }
}

impl From<crate::auth::password::Busy> for ApiError {
    fn from(busy: crate::auth::password::Busy) -> Self {
        ApiError::Busy(busy.to_string(), 1)
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(what) => ApiError::not_found(what),
            StoreError::Conflict(field) => ApiError::Conflict(format!("{field} is already taken")),
            StoreError::Invalid(reason) => ApiError::Internal(anyhow::anyhow!(reason)),
            limit @ StoreError::SeriesLimit { .. } => {
                ApiError::Invalid(format!("{limit} (ingest.max_series_per_experiment)"), None)
            }
            other => ApiError::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(err: ValidationError) -> Self {
        ApiError::Invalid(err.to_string(), Some(err.field))
    }
}

impl From<PasswordPolicyError> for ApiError {
    fn from(err: PasswordPolicyError) -> Self {
        ApiError::Invalid(err.to_string(), Some("password"))
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(err) => {
                ApiError::Invalid(format!("invalid request body: {}", err.body_text()), None)
            }
            JsonRejection::JsonSyntaxError(err) => {
                ApiError::BadRequest(format!("malformed JSON: {}", err.body_text()))
            }
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType(
                "expected a body with Content-Type: application/json".into(),
            ),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            other => ApiError::BadRequest(other.body_text()),
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest(format!(
                "cannot read the request body: {}",
                rejection.body_text()
            ))
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::BadRequest(format!("invalid path parameter: {}", rejection.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::BadRequest(format!(
            "invalid query parameter: {}",
            rejection.body_text()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_are_opaque() {
        let problem = ApiError::Internal(anyhow::anyhow!("disk /secret full")).problem();
        assert_eq!(problem.status, 500);
        assert!(!problem.detail.contains("secret"));
    }

    #[test]
    fn store_conflicts_name_the_field() {
        let problem = ApiError::from(StoreError::Conflict("email")).problem();
        assert_eq!(problem.status, 409);
        assert_eq!(problem.detail, "email is already taken");
        assert_eq!(problem.kind, "urn:mymonit:problem:conflict");
        assert_eq!(problem.title, "Conflict");
    }

    #[test]
    fn validation_names_the_field() {
        let problem = ApiError::from(ValidationError::new("email", "bad")).problem();
        assert_eq!((problem.status, problem.field), (422, Some("email")));
    }
}
