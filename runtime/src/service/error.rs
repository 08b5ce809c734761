//! How the service answers what it refuses: the right status, a short JSON body, and no detail
//! that would help an attacker (a bad token is `401` whatever was wrong with it).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::queue::QueueError;

/// An API request that was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No valid token (missing, malformed, unknown, expired, revoked, idle).
    #[error("unauthorized")]
    Unauthorized,
    /// Too many failed authentications from this address; try again later.
    #[error("too many failed attempts; try again later")]
    TooManyAttempts,
    /// The caller has used up a quota (jobs a day); the message says which.
    #[error("{0}")]
    Quota(String),
    /// A valid token, but not for this project or role.
    #[error("forbidden")]
    Forbidden,
    /// No such job or request.
    #[error("not found")]
    NotFound,
    /// The request itself is wrong; the message says how.
    #[error("{0}")]
    BadRequest(String),
    /// The request is valid but the resource's state does not allow it; the message says why.
    #[error("{0}")]
    Conflict(String),
    /// The host failed; the detail is logged, not sent.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status the refusal is answered with.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::TooManyAttempts | ApiError::Quota(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!("internal error: {detail}");
        }
        let body = axum::Json(serde_json::json!({ "error": self.to_string() }));
        let mut response = (self.status(), body).into_response();
        if matches!(self, ApiError::Unauthorized) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<QueueError> for ApiError {
    fn from(err: QueueError) -> ApiError {
        match err {
            QueueError::UnknownRequest(_) => ApiError::NotFound,
            QueueError::NotAllowed { .. } | QueueError::OwnRequest { .. } | QueueError::NotOwner { .. } => {
                ApiError::Forbidden
            }
            QueueError::IllegalTransition { .. }
            | QueueError::AlreadyApproved { .. }
            | QueueError::UnderReview { .. }
            | QueueError::TooManyJobs { .. } => ApiError::Conflict(err.to_string()),
            QueueError::DailyQuota { .. } | QueueError::UploadQuota { .. } | QueueError::QueueFull { .. } => {
                ApiError::Quota(err.to_string())
            }
            QueueError::OverrideWithoutReason { .. }
            | QueueError::ReasonRequired { .. }
            | QueueError::BadPublication { .. } => ApiError::BadRequest(err.to_string()),
            QueueError::Job(job) if job.is_bad_input() => ApiError::BadRequest(job.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}
