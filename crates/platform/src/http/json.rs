//! Our `Json` extractor and responder: every way a JSON body can be wrong becomes a problem
//! (400 malformed, 413 too large, 415 wrong media type, 422 wrong shape), never a plain-text
//! rejection.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Problem;

/// A JSON body (request) or answer (response, 200).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rejection) => Err(rejection_to_problem(rejection)),
        }
    }
}

/// A JSON body that may be absent (no `Content-Type` and no content): `None` then, otherwise
/// exactly what `Json` accepts or refuses.
#[derive(Debug, Clone, Default)]
pub struct OptionalJson<T>(pub Option<T>);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let headers = req.headers();
        let empty = !headers.contains_key(axum::http::header::CONTENT_TYPE)
            && headers
                .get(axum::http::header::CONTENT_LENGTH)
                .is_none_or(|v| v.to_str().ok().and_then(|v| v.parse::<u64>().ok()) == Some(0));
        if empty {
            return Ok(OptionalJson(None));
        }
        Ok(OptionalJson(Some(Json::<T>::from_request(req, state).await?.0)))
    }
}

fn rejection_to_problem(r: JsonRejection) -> Problem {
    match r {
        JsonRejection::MissingJsonContentType(_) => {
            Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "expected Content-Type: application/json")
        }
        JsonRejection::JsonSyntaxError(e) => Problem::bad_request(format!("malformed JSON: {}", e.body_text())),
        JsonRejection::JsonDataError(e) => {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, format!("invalid JSON body: {}", e.body_text()))
        }
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
        }
        other => Problem::bad_request(other.body_text()),
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(bytes) => ([(axum::http::header::CONTENT_TYPE, "application/json")], bytes).into_response(),
            Err(e) => Problem::internal(e).into_response(),
        }
    }
}

/// A JSON answer with a status other than 200 (e.g. 201 Created).
pub struct JsonWithStatus<T>(pub StatusCode, pub T);

impl<T: Serialize> IntoResponse for JsonWithStatus<T> {
    fn into_response(self) -> Response {
        let mut res = Json(self.1).into_response();
        if res.status() == StatusCode::OK {
            *res.status_mut() = self.0;
        }
        res
    }
}
