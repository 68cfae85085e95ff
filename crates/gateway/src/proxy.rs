//! The HTTP proxy to remote service instances: round-robin, a 30 s upstream timeout, retries
//! with exponential backoff and jitter for idempotent requests that failed to connect, and
//! header hygiene (hop-by-hop and client-forged identity headers are dropped). A WebSocket
//! upgrade is tunnelled: the upstream's `101` is relayed and the two upgraded connections are
//! joined byte for byte until either side ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::header::{CONNECTION, UPGRADE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use platform::http::{DEFAULT_BODY_LIMIT, Problem, TRACEPARENT, X_REQUEST_ID, current_context, streams_body};

use crate::routes::ServiceName;

pub(crate) struct Proxy {
    http: reqwest::Client,
    /// For upgrades: HTTP/1.1, no overall timeout (the tunnel lives as long as its peers).
    upgrades: reqwest::Client,
    /// The gateway's service key: every proxied request carries a credential signed with it, so
    /// that a split service takes the forwarded client headers from the gateway only.
    credential: Option<Arc<platform::service_auth::ServiceKey>>,
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
        || n == platform::service_auth::SERVICE_TOKEN_HEADER
        || HOP_BY_HOP.contains(&n)
}

impl Proxy {
    pub(crate) fn new(timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            // Below the services' 10 s header-read timeout, which also ends idle connections:
            // a pooled connection is dropped here before the server would close it mid-reuse.
            .pool_idle_timeout(Duration::from_secs(5))
            .build()?;
        let upgrades = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .http1_only()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { http, upgrades, credential: None })
    }

    /// Signs every proxied request with the gateway's service key.
    pub(crate) fn with_credential(mut self, key: Option<Arc<platform::service_auth::ServiceKey>>) -> Self {
        self.credential = key;
        self
    }

    /// The gateway's credential for one request to `upstream` (`url` as it will be sent).
    fn credential(&self, upstream: &Upstream, method: &Method, url: &str) -> Option<HeaderValue> {
        let key = self.credential.as_ref()?;
        let path = reqwest::Url::parse(url).ok()?.path().to_string();
        HeaderValue::from_str(&key.sign(upstream.name.as_str(), method.as_str(), &path)).ok()
    }

    pub(crate) fn upstream(&self, name: ServiceName, bases: Vec<String>) -> anyhow::Result<Arc<Upstream>> {
        anyhow::ensure!(!bases.is_empty(), "no upstream address configured for the {name} service");
        let bases = bases.into_iter().map(|b| b.trim_end_matches('/').to_string()).collect();
        Ok(Arc::new(Upstream { name, bases, next: AtomicUsize::new(0) }))
    }

    pub(crate) async fn forward(&self, upstream: &Upstream, mut req: Request) -> Response {
        let peer = req.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
        if is_websocket_upgrade(&req) {
            let client = hyper::upgrade::on(&mut req);
            let headers = self.upstream_headers(req.headers(), peer, true);
            return self
                .tunnel(upstream, req.uri().path_and_query().map_or("/", |p| p.as_str()), headers, client)
                .await;
        }
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
        let headers = self.upstream_headers(&parts.headers, peer, false);
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
            let mut headers = headers.clone();
            if let Some(token) = self.credential(upstream, &parts.method, &url) {
                headers.insert(platform::service_auth::SERVICE_TOKEN_HEADER, token);
            }
            let sent = self.http.request(parts.method.clone(), &url).headers(headers).body(body).send().await;
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

impl Proxy {
    /// The client's headers as the upstream gets them: without forged and hop-by-hop ones (but
    /// an upgrade keeps `Connection: upgrade` and `Upgrade`), with the client's address and the
    /// trace context.
    fn upstream_headers(&self, from: &HeaderMap, peer: Option<std::net::IpAddr>, upgrade: bool) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (k, v) in from {
            if !forged(k) {
                headers.append(k.clone(), v.clone());
            }
        }
        if upgrade {
            headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        }
        if let Some(ip) = peer.and_then(|ip| HeaderValue::from_str(&ip.to_string()).ok()) {
            headers.insert("x-forwarded-for", ip);
        }
        // The host the client addressed, for the auth service's Origin check (browser cookies).
        if let Some(host) = from.get(axum::http::header::HOST) {
            headers.insert("x-forwarded-host", host.clone());
        }
        if let Some(ctx) = current_context() {
            if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
                headers.insert(X_REQUEST_ID, v);
            }
            if let Ok(v) = HeaderValue::from_str(&ctx.traceparent()) {
                headers.insert(TRACEPARENT, v);
            }
        }
        headers
    }

    /// Opens the upgrade upstream; on `101` answers the client with the upstream's handshake and
    /// joins the two connections in a task of their own.
    async fn tunnel(
        &self,
        upstream: &Upstream,
        path: &str,
        headers: HeaderMap,
        client: hyper::upgrade::OnUpgrade,
    ) -> Response {
        let i = upstream.next.fetch_add(1, Ordering::Relaxed) % upstream.bases.len();
        let url = format!("{}{}", upstream.bases[i], path);
        let mut headers = headers;
        if let Some(token) = self.credential(upstream, &Method::GET, &url) {
            headers.insert(platform::service_auth::SERVICE_TOKEN_HEADER, token);
        }
        let res = match self.upgrades.get(&url).headers(headers).send().await {
            Ok(res) => res,
            Err(e) => {
                tracing::warn!(service = %upstream.name, error = %e, "upstream unreachable for an upgrade");
                let mut res = Problem::unavailable(5).into_response();
                *res.status_mut() = StatusCode::BAD_GATEWAY;
                return res;
            }
        };
        if res.status() != StatusCode::SWITCHING_PROTOCOLS {
            return relay_response(res);
        }
        let mut answer = Response::new(Body::empty());
        *answer.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        *answer.headers_mut() = res.headers().clone();
        let service = upstream.name;
        let server = match res.upgrade().await {
            Ok(io) => io,
            Err(e) => {
                tracing::warn!(%service, error = %e, "upstream upgrade failed");
                return Problem::new(StatusCode::BAD_GATEWAY, "upstream upgrade failed").into_response();
            }
        };
        tokio::spawn(async move {
            let (mut server, client) = (server, client.await);
            match client {
                Ok(client) => {
                    let mut client = hyper_util::rt::TokioIo::new(client);
                    // Either side closing ends the tunnel; errors are the peers' business.
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
                Err(e) => tracing::debug!(%service, error = %e, "client upgrade failed"),
            }
        });
        answer
    }
}

/// A `GET` asking to become a WebSocket.
fn is_websocket_upgrade(req: &Request) -> bool {
    req.method() == Method::GET
        && req.headers().get(UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
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
        for h in ["x-user-id", "x-forwarded-for", "x-trellis-service", "connection", "host", "forwarded"] {
            assert!(forged(&HeaderName::from_static(h)), "{h}");
        }
        for h in ["authorization", "content-type", "x-request-id", "idempotency-key", "if-match"] {
            assert!(!forged(&HeaderName::from_static(h)), "{h}");
        }
    }
}
