//! Edge policies applied to every API request: who the client is (trusted proxies), caller
//! verification and rate limiting, and the security headers on every response.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use platform::http::net::{TrustedProxies, UNKNOWN_PEER, address_key};
use platform::http::{Caller, Problem, bearer};
use platform::identity::{TokenVerifier, VerifyError};

use crate::ratelimit::{Client, RateLimiter};

pub(crate) struct EdgeState {
    pub verifier: Arc<TokenVerifier>,
    pub limiter: Arc<RateLimiter>,
    pub trusted: TrustedProxies,
}

/// Resolves the client, verifies its token and counts the request.
///
/// The client's address is the TCP peer, or behind a trusted proxy the right-most untrusted
/// `X-Forwarded-For` hop ([`TrustedProxies::client`]); the request's `ConnectInfo` is replaced
/// by it, so that everything after the edge (the auth service's per-address throttle, the
/// sessions it records, the proxy's own `X-Forwarded-For` to split services) sees the client and
/// never the proxy. A request whose token does not verify is counted against its address before
/// it is answered 401: a flood of forged or expired tokens runs into 429 like any other.
pub(crate) async fn edge(State(state): State<Arc<EdgeState>>, mut req: Request, next: Next) -> Response {
    let is_api = req.uri().path().starts_with("/api/");
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let ip = state.trusted.client(peer.map_or(UNKNOWN_PEER, |p| p.ip()), req.headers());
    if let Some(peer) = peer
        && peer.ip() != ip
    {
        req.extensions_mut().insert(ConnectInfo(SocketAddr::new(ip, peer.port())));
    }
    let mut client = Client::Address(address_key(ip));
    let mut refusal = None;
    if let Some(token) = bearer(req.headers()) {
        match state.verifier.verify(token).await {
            Ok(id) => {
                client = Client::User(id.user_id);
                req.extensions_mut().insert(Caller(id));
            }
            Err(VerifyError::Unavailable) if is_api => return Problem::unavailable(5).into_response(),
            Err(_) if is_api => {
                metrics::counter!("trellis_invalid_tokens_total").increment(1);
                refusal = Some(Problem::unauthorized());
            }
            Err(_) => {}
        }
    }
    let verdict = state.limiter.check(&client).await;
    let mut res = if !verdict.allowed {
        metrics::counter!(
            "trellis_rate_limited_total",
            "caller" => if matches!(client, Client::User(_)) { "user" } else { "address" }
        )
        .increment(1);
        Problem::too_many(verdict.reset_secs).into_response()
    } else if let Some(problem) = refusal {
        problem.into_response()
    } else {
        next.run(req).await
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use api::ApiError;
    use api::auth::{Jwks, KeySource, SessionStatus};
    use axum::Router;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::middleware::from_fn_with_state;
    use axum::routing::get;
    use platform::cache::MemoryCache;
    use tower::ServiceExt as _;

    /// No keys: every token is invalid.
    struct NoKeys;
    #[async_trait::async_trait]
    impl KeySource for NoKeys {
        async fn jwks(&self) -> Result<Jwks, ApiError> {
            Ok(Jwks::default())
        }
    }
    #[async_trait::async_trait]
    impl SessionStatus for NoKeys {
        async fn session_active(&self, _: uuid::Uuid) -> Result<bool, ApiError> {
            Ok(true)
        }
    }

    /// `/api/x` behind the edge, answering with the client address it was handed.
    fn app(limit: u64, trusted: &[&str]) -> Router {
        let cache: Arc<dyn platform::cache::Cache> = Arc::new(MemoryCache::default());
        let verifier = Arc::new(TokenVerifier::new(Arc::new(NoKeys), Arc::new(NoKeys), cache.clone(), "t", "t"));
        let limiter = Arc::new(RateLimiter::new(cache, limit, limit * 6, Duration::from_secs(24 * 3600)));
        let state = Arc::new(EdgeState { verifier, limiter, trusted: TrustedProxies::parse(trusted).unwrap() });
        Router::new()
            .route("/api/x", get(|ConnectInfo(c): ConnectInfo<SocketAddr>| async move { c.ip().to_string() }))
            .layer(from_fn_with_state(state, edge))
    }

    async fn call(app: &Router, peer: &str, xff: Option<&str>, token: Option<&str>) -> (StatusCode, String) {
        let mut req = axum::http::Request::get("/api/x");
        if let Some(x) = xff {
            req = req.header("x-forwarded-for", x);
        }
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let mut req = req.body(Body::empty()).unwrap();
        req.extensions_mut().insert(ConnectInfo(SocketAddr::new(peer.parse().unwrap(), 4000)));
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let body = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn invalid_tokens_are_counted_against_the_address() {
        let app = app(3, &[]);
        for _ in 0..3 {
            assert_eq!(call(&app, "192.0.2.1", None, Some("forged")).await.0, StatusCode::UNAUTHORIZED);
        }
        assert_eq!(call(&app, "192.0.2.1", None, Some("forged")).await.0, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(call(&app, "192.0.2.1", None, None).await.0, StatusCode::TOO_MANY_REQUESTS, "the address is spent");
        assert_eq!(call(&app, "192.0.2.2", None, None).await.0, StatusCode::OK, "another address is not");
    }

    #[tokio::test]
    async fn forwarded_for_counts_only_from_a_trusted_proxy_and_reaches_the_services() {
        let app = app(1, &["10.0.0.0/8"]);
        // An untrusted peer: its header is ignored, so rotating it does not help.
        assert_eq!(call(&app, "192.0.2.1", Some("203.0.113.1"), None).await, (StatusCode::OK, "192.0.2.1".into()));
        assert_eq!(call(&app, "192.0.2.1", Some("203.0.113.2"), None).await.0, StatusCode::TOO_MANY_REQUESTS);
        // A trusted proxy: each client it names has its own budget, and the service sees the client.
        assert_eq!(call(&app, "10.0.0.5", Some("203.0.113.1"), None).await, (StatusCode::OK, "203.0.113.1".into()));
        assert_eq!(call(&app, "10.0.0.5", Some("203.0.113.2"), None).await, (StatusCode::OK, "203.0.113.2".into()));
        assert_eq!(call(&app, "10.0.0.6", Some("6.6.6.6, 203.0.113.1"), None).await.0, StatusCode::TOO_MANY_REQUESTS);
        // IPv6 clients by /64.
        assert_eq!(call(&app, "10.0.0.5", Some("2001:db8:1:2::1"), None).await.0, StatusCode::OK);
        assert_eq!(call(&app, "10.0.0.5", Some("2001:db8:1:2::ff"), None).await.0, StatusCode::TOO_MANY_REQUESTS);
    }
}
