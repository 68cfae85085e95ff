//! Guard for `/internal/*` routes: only callers holding the shared internal token get through;
//! anyone else sees a plain 404, as if the route did not exist.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};

use super::Problem;
use crate::client::INTERNAL_TOKEN_HEADER;

pub async fn require_internal_token(State(token): State<Arc<SecretString>>, req: Request, next: Next) -> Response {
    let given = req.headers().get(INTERNAL_TOKEN_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
    if crate::crypto::constant_time_eq(given, token.expose_secret().as_bytes()) {
        next.run(req).await
    } else {
        Problem::not_found().into_response()
    }
}
