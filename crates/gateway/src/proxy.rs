//! The HTTP proxy to remote service instances: round-robin, a 30 s upstream timeout, retries
//! with exponential backoff and jitter for idempotent requests that failed to connect, and
//! header hygiene (hop-by-hop and client-forged identity headers are dropped).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use platform::http::{DEFAULT_BODY_LIMIT, Problem, TRACEPARENT, X_REQUEST_ID, current_context, streams_body};

use crate::routes::ServiceName;

pub(crate) struct Proxy {
    http: reqwest::Client,
}

/// The instances of one remote service.
pub(crate) struct Upstream {
    name: ServiceName,
    bases: Vec<String>,
    next: AtomicUsize,
}

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Headers a client must never be able to set on an internal hop.
fn forged(name: &HeaderName) -> bool {
    let n = name.as_str();
    n == "host"
        || n == "forwarded"
        || n.starts_with("x-forwarded-")
        || n.starts_with("x-user-")
        || n == platform::client::INTERNAL_TOKEN_HEADER
        || HOP_BY_HOP.contains(&n)
}

impl Proxy {
    pub(crate) fn new(timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self { http })
    }

    pub(crate) fn upstream(&self, name: ServiceName, bases: Vec<String>) -> anyhow::Result<Arc<Upstream>> {
        anyhow::ensure!(!bases.is_empty(), "no upstream address configured for the {name} service");
        let bases = bases.into_iter().map(|b| b.trim_end_matches('/').to_string()).collect();
        Ok(Arc::new(Upstream { name, bases, next: AtomicUsize::new(0) }))
    }

    pub(crate) async fn forward(&self, upstream: &Upstream, req: Request) -> Response {
        let peer = req.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
        let (parts, body) = req.into_parts();
        // An upload streams through (its route bounds it); other bodies are buffered, so that
        // idempotent requests can be retried.
        let mut streamed = None;
        let body = if streams_body(&parts.method, parts.uri.path()) {
            streamed = Some(reqwest::Body::wrap_stream(body.into_data_stream()));
            axum::body::Bytes::new()
        } else {
            match axum::body::to_bytes(body, DEFAULT_BODY_LIMIT).await {
                Ok(b) => b,
                Err(_) => {
                    return Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
                }
            }
        };
        let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let mut headers = HeaderMap::new();
        for (k, v) in &parts.headers {
            if !forged(k) {
                headers.append(k.clone(), v.clone());
            }
        }
        if let Some(ip) = peer.and_then(|ip| HeaderValue::from_str(&ip.to_string()).ok()) {
            headers.insert("x-forwarded-for", ip);
        }
        if let Some(ctx) = current_context() {
            if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
                headers.insert(X_REQUEST_ID, v);
            }
            if let Ok(v) = HeaderValue::from_str(&ctx.traceparent()) {
                headers.insert(TRACEPARENT, v);
            }
        }
        let idempotent =
            matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE);
        let attempts = if idempotent && streamed.is_none() { 3 } else { 1 };
        let mut last_error = String::new();
        for attempt in 0..attempts {
            if attempt > 0 {
                // 50 ms, 100 ms… plus up to 50 % jitter.
                let base = 50u64 << (attempt - 1);
                let jitter = u64::from(platform::crypto::random_bytes::<1>()[0]) * base / 512;
                tokio::time::sleep(Duration::from_millis(base + jitter)).await;
            }
            let i = upstream.next.fetch_add(1, Ordering::Relaxed) % upstream.bases.len();
            let url = format!("{}{}", upstream.bases[i], path);
            let body = streamed.take().unwrap_or_else(|| reqwest::Body::from(body.clone()));
            let sent = self.http.request(parts.method.clone(), &url).headers(headers.clone()).body(body).send().await;
            match sent {
                Ok(res) => return relay_response(res),
                Err(e) if e.is_connect() => last_error = e.to_string(),
                Err(e) if e.is_timeout() => {
                    tracing::warn!(service = %upstream.name, error = %e, "upstream timed out");
                    return Problem::new(StatusCode::GATEWAY_TIMEOUT, "upstream timed out").into_response();
                }
                Err(e) => {
                    last_error = e.to_string();
                    break;
                }
            }
        }
        tracing::warn!(service = %upstream.name, error = %last_error, "upstream unreachable");
        let mut res = Problem::unavailable(5).into_response();
        *res.status_mut() = StatusCode::BAD_GATEWAY;
        res
    }
}

fn relay_response(res: reqwest::Response) -> Response {
    let status = res.status();
    let mut headers = HeaderMap::new();
    for (k, v) in res.headers() {
        if !HOP_BY_HOP.contains(&k.as_str()) && k.as_str() != "content-length" {
            headers.append(k.clone(), v.clone());
        }
    }
    let mut out = Response::new(Body::from_stream(res.bytes_stream()));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_hop_headers_are_dropped() {
        for h in ["x-user-id", "x-forwarded-for", "x-trellis-internal", "connection", "host", "forwarded"] {
            assert!(forged(&HeaderName::from_static(h)), "{h}");
        }
        for h in ["authorization", "content-type", "x-request-id", "idempotency-key", "if-match"] {
            assert!(!forged(&HeaderName::from_static(h)), "{h}");
        }
    }
}
