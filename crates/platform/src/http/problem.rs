//! `application/problem+json` (RFC 9457) answers: the only error shape Trellis sends.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use api::{ApiError, FieldError};

use super::middleware::current_context;

/// An error answer. 5xx problems never carry internal detail; that goes to the log instead.
#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub retry_after: Option<u64>,
    /// A stable, machine-readable reason beside the status (`step_up_required`, ...), sent as
    /// the `code` member when set.
    pub code: Option<&'static str>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    type_: &'a str,
    title: &'a str,
    status: u16,
    detail: &'a str,
    request_id: String,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    errors: &'a [FieldError],
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self { status, detail: detail.into(), errors: Vec::new(), retry_after: None, code: None }
    }

    /// The same problem with a `code` member.
    pub fn with_code(self, code: &'static str) -> Self {
        Self { code: Some(code), ..self }
    }
    /// 403 `step_up_required`: a sensitive change came without its fresh proof.
    pub fn step_up_required() -> Self {
        Self::new(StatusCode::FORBIDDEN, "this change needs your current password (current_password) with the request")
            .with_code("step_up_required")
    }
    /// 403 `admin_mfa_required`: an admin-only route called by an admin whose session did not
    /// use a second factor while `auth.admin_requires_mfa` is on.
    pub fn admin_mfa_required() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "administrators need a second factor: enable two-factor authentication and sign in with it",
        )
        .with_code("admin_mfa_required")
    }
    /// 401 `step_up_failed`: the fresh proof given with a sensitive change was wrong.
    pub fn step_up_failed() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "the current password given is not right").with_code("step_up_failed")
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "authentication required")
    }
    pub fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, "not allowed")
    }
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not found")
    }
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        Self { errors, ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "the request has invalid fields") }
    }
    pub fn unavailable(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "a dependency is unavailable; retry later")
        }
    }
    pub fn too_many(retry_after: u64) -> Self {
        Self { retry_after: Some(retry_after), ..Self::new(StatusCode::TOO_MANY_REQUESTS, "too many requests") }
    }
    /// A 500 that logs `cause` (with the request id) and tells the client nothing more.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }

    /// The `type` URI: a stable, documented name per status.
    fn type_uri(&self) -> String {
        format!("https://trellis.dev/problems/{}", self.status.as_u16())
    }
}

impl From<ApiError> for Problem {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::NotFound => Problem::not_found(),
            ApiError::Conflict(d) => Problem::conflict(d),
            ApiError::Invalid(errors) => Problem::invalid(errors),
            ApiError::Unauthorized => Problem::unauthorized(),
            ApiError::Forbidden => Problem::forbidden(),
            ApiError::StepUpRequired => Problem::step_up_required(),
            ApiError::StepUpFailed => Problem::step_up_failed(),
            ApiError::RateLimited(secs) => Problem::too_many(secs),
            ApiError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "dependency unavailable");
                Problem::unavailable(5)
            }
            ApiError::Internal(cause) => Problem::internal(cause),
        }
    }
}

impl From<crate::db::StoreError> for Problem {
    fn from(e: crate::db::StoreError) -> Self {
        Problem::from(ApiError::from(e))
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("error");
        let request_id = current_context().map(|c| c.request_id).unwrap_or_default();
        let type_uri = self.type_uri();
        let body = Body {
            type_: &type_uri,
            title,
            status: self.status.as_u16(),
            detail: &self.detail,
            request_id,
            errors: &self.errors,
            code: self.code,
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut res = (self.status, bytes).into_response();
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}
