//! Errors that cross a service boundary, whether the call was in-process or over HTTP.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One invalid field of a request, as carried in a 422 problem's `errors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// What a call to another service can fail with. Each variant maps to one HTTP status, so an
/// HTTP client can rebuild the same error the in-process implementation would have returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("unauthorized")]
    Unauthorized,
    #[error("forbidden")]
    Forbidden,
    /// The change needs a fresh proof given with that very request (`current_password`, or a
    /// second-factor code for an account without a password) and none came: 403 with
    /// `code: "step_up_required"`.
    #[error("step-up required")]
    StepUpRequired,
    /// The fresh proof given was wrong: 401 with `code: "step_up_failed"` (counted like a failed
    /// login by the auth service).
    #[error("step-up failed")]
    StepUpFailed,
    /// Too many attempts; the caller may try again after this many seconds.
    #[error("rate limited")]
    RateLimited(u64),
    /// A dependency (database, another service) is down; callers should retry later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}
