//! Guard for `/internal/*` routes: only callers holding the shared internal token get through;
//! anyone else sees a plain 404, as if the route did not exist.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};

use super::Problem;
use super::policy::InternalCall;
use crate::client::INTERNAL_TOKEN_HEADER;

/// Marks the request as an [`InternalCall`] for the role gate when the token matches.
pub async fn require_internal_token(State(token): State<Arc<SecretString>>, mut req: Request, next: Next) -> Response {
    let given = req.headers().get(INTERNAL_TOKEN_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
    if crate::crypto::constant_time_eq(given, token.expose_secret().as_bytes()) {
        req.extensions_mut().insert(InternalCall);
        next.run(req).await
    } else {
        Problem::not_found().into_response()
    }
}
