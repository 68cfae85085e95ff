//! Edge policies applied to every API request: caller verification and rate limiting, and the
//! security headers on every response.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use platform::http::{Caller, Problem, bearer};
use platform::identity::{TokenVerifier, VerifyError};

use crate::ratelimit::RateLimiter;

pub(crate) struct EdgeState {
    pub verifier: Arc<TokenVerifier>,
    pub limiter: Arc<RateLimiter>,
}

pub(crate) async fn edge(State(state): State<Arc<EdgeState>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let is_api = path.starts_with("/api/");
    let mut client = None;
    if let Some(token) = bearer(req.headers()) {
        match state.verifier.verify(token).await {
            Ok(id) => {
                client = Some(format!("user:{}", id.user_id));
                req.extensions_mut().insert(Caller(id));
            }
            Err(VerifyError::Unavailable) if is_api => return Problem::unavailable(5).into_response(),
            Err(_) if is_api => return Problem::unauthorized().into_response(),
            Err(_) => {}
        }
    }
    // The peer address only: X-Forwarded-For from a client is not trusted.
    let client = client.unwrap_or_else(|| {
        let ip = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
        format!("ip:{}", ip.unwrap_or_else(|| "unknown".into()))
    });
    let verdict = state.limiter.check(&client).await;
    let mut res =
        if verdict.allowed { next.run(req).await } else { Problem::too_many(verdict.reset_secs).into_response() };
    let h = res.headers_mut();
    h.insert("ratelimit-limit", HeaderValue::from(verdict.limit));
    h.insert("ratelimit-remaining", HeaderValue::from(verdict.remaining));
    h.insert("ratelimit-reset", HeaderValue::from(verdict.reset_secs));
    res
}

/// Headers every answer carries; HTML pages set their own Content-Security-Policy.
pub(crate) async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    res
}
