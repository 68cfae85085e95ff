//! Guards of service-to-service trust (docs/SECURITY.md GW-6, AZ-5): which service is calling,
//! proven by its signed credential (`crate::service_auth`), and what that lets it do.
//!
//! - [`require_service`] guards `/internal/*` routes (a `route_layer`, outside the role gate): no
//!   credential, or an unknown, forged, expired, replayed or misdirected one, is 401; a valid one
//!   of a service `api::internal::INTERNAL_ROUTES` does not list for the route is 403. Both are
//!   problem+json and logged with the reason and route, never the token.
//! - [`trust_only_the_gateway`] wraps a service process that runs without the gateway: it
//!   verifies the credential of every request and removes what a client could forge about itself
//!   (`X-Forwarded-*`, `Forwarded`, `X-Real-IP`, `X-User-*`) unless the request comes from the
//!   gateway, so a client that reaches a split service directly cannot choose its address.

use std::sync::Arc;

use api::internal::{Service, internal_route};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Problem;
use super::policy::InternalCall;
use crate::service_auth::{Refusal, SERVICE_TOKEN_HEADER, ServiceCaller, ServiceVerifier};

/// The outcome of verifying a request's service credential, in request extensions once
/// [`trust_only_the_gateway`] (or [`require_service`]) looked at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceCredential(pub Result<ServiceCaller, Refusal>);

impl ServiceCredential {
    /// Whether the request comes from the gateway, proven by its credential.
    pub fn from_gateway(&self) -> bool {
        matches!(self.0, Ok(ServiceCaller { caller: Service::Gateway, .. }))
    }
}

/// The `code` of the 401 for a missing or invalid service credential.
pub const SERVICE_CREDENTIAL_REQUIRED: &str = "service_credential_required";
/// The `code` of the 403 for a service the route does not admit.
pub const SERVICE_NOT_ALLOWED: &str = "service_not_allowed";

fn verify(verifier: &ServiceVerifier, req: &mut Request) -> ServiceCredential {
    let token = req.headers_mut().remove(SERVICE_TOKEN_HEADER);
    let result = match token.as_ref().map(|t| t.to_str()) {
        None => Err(Refusal::Missing),
        Some(Err(_)) => Err(Refusal::Malformed),
        Some(Ok(t)) => verifier.verify(t, req.method().as_str(), req.uri().path()),
    };
    if let Err(reason) = result
        && reason != Refusal::Missing
    {
        tracing::warn!(reason = reason.as_str(), method = %req.method(), path = req.uri().path(), "service credential refused");
        metrics::counter!("trellis_service_credentials_refused_total", "reason" => reason.as_str()).increment(1);
    }
    ServiceCredential(result)
}

/// Whether a client could use `name` to pass itself off as someone (an address, a user).
pub fn forwarded_client_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "forwarded" || n == "x-real-ip" || n.starts_with("x-forwarded-") || n.starts_with("x-user-")
}

fn strip_forwarded(headers: &mut HeaderMap) {
    let names: Vec<_> = headers.keys().filter(|k| forwarded_client_header(k.as_str())).cloned().collect();
    for name in names {
        headers.remove(name);
    }
}

/// Every request of a service process without the gateway: its credential verified (the outcome
/// in a [`ServiceCredential`] extension) and forwarded-client headers dropped unless the gateway
/// sent it.
pub async fn trust_only_the_gateway(
    State(verifier): State<Arc<ServiceVerifier>>,
    mut req: Request,
    next: Next,
) -> Response {
    let credential = verify(&verifier, &mut req);
    if !credential.from_gateway() {
        strip_forwarded(req.headers_mut());
    }
    req.extensions_mut().insert(credential);
    next.run(req).await
}

/// Admits to an internal route only the services `api::internal` lists for it. Must be applied
/// with `Router::route_layer` (it needs `MatchedPath`), after the role gate's so it runs first.
pub async fn require_service(State(verifier): State<Arc<ServiceVerifier>>, mut req: Request, next: Next) -> Response {
    let credential = match req.extensions().get::<ServiceCredential>() {
        Some(c) => *c,
        None => verify(&verifier, &mut req),
    };
    let method = req.method().as_str().to_string();
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_default();
    let unauthorized = || {
        Problem::new(StatusCode::UNAUTHORIZED, "this route is for Trellis services with a valid credential")
            .with_code(SERVICE_CREDENTIAL_REQUIRED)
            .into_response()
    };
    let caller = match credential.0 {
        Ok(c) => c,
        Err(reason) => {
            tracing::warn!(reason = reason.as_str(), %method, %route, "internal route called without a valid service credential");
            return unauthorized();
        }
    };
    let Some(entry) = internal_route(&method, &route) else {
        tracing::error!(%method, %route, caller = %caller.caller, "internal route missing from api::internal; refused");
        return Problem::new(StatusCode::FORBIDDEN, "no service may call this route")
            .with_code(SERVICE_NOT_ALLOWED)
            .into_response();
    };
    if caller.audience != entry.owner {
        tracing::warn!(%method, %route, audience = %caller.audience, "service credential meant for another service");
        return unauthorized();
    }
    if !entry.callers.contains(&caller.caller) {
        tracing::warn!(%method, %route, caller = %caller.caller, "service may not call this internal route; refused");
        metrics::counter!("trellis_service_calls_refused_total", "caller" => caller.caller.as_str()).increment(1);
        return Problem::new(StatusCode::FORBIDDEN, format!("the {} service may not call this route", caller.caller))
            .with_code(SERVICE_NOT_ALLOWED)
            .into_response();
    }
    req.extensions_mut().insert(InternalCall);
    req.extensions_mut().insert(credential);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use axum::Router;
    use axum::body::Body;
    use axum::middleware::{from_fn, from_fn_with_state};
    use axum::routing::{get, post};
    use tower::ServiceExt as _;

    use super::*;
    use crate::service_auth::{ServiceKey, parse_public_key};

    struct Keys {
        gateway: ServiceKey,
        users: ServiceKey,
        worker: ServiceKey,
        verifier: Arc<ServiceVerifier>,
    }

    fn keys(audiences: &[Service]) -> Keys {
        let (gateway, users, worker) = (
            ServiceKey::generate(Service::Gateway).0,
            ServiceKey::generate(Service::Users).0,
            ServiceKey::generate(Service::Worker).0,
        );
        let mut map = BTreeMap::new();
        for k in [&gateway, &users, &worker] {
            map.insert(k.service(), vec![parse_public_key(k.service(), &k.public_key()).unwrap()]);
        }
        Keys { gateway, users, worker, verifier: Arc::new(ServiceVerifier::new(map, audiences.iter().copied())) }
    }

    /// The auth service's internal routes behind both guards, as the composition root mounts them.
    fn internal_app(verifier: Arc<ServiceVerifier>) -> Router {
        Router::new()
            .route("/internal/auth/password-check", post(|| async { "checked" }))
            .route("/internal/sessions/{id}", get(|| async { "active" }))
            .route_layer(from_fn(crate::http::enforce_policy))
            .route_layer(from_fn_with_state(verifier, require_service))
    }

    async fn call(app: &Router, method: &str, path: &str, token: Option<String>) -> (StatusCode, serde_json::Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(SERVICE_TOKEN_HEADER, t);
        }
        let res = app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    #[tokio::test]
    async fn internal_routes_admit_only_the_services_the_table_lists() {
        let k = keys(&[Service::Auth]);
        let app = internal_app(k.verifier.clone());
        let path = "/internal/auth/password-check";
        let (s, _) = call(&app, "POST", path, Some(k.users.sign("auth", "POST", path))).await;
        assert_eq!(s, StatusCode::OK, "users checks passwords");
        let (s, body) = call(&app, "POST", path, Some(k.worker.sign("auth", "POST", path))).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "the worker may not: {body}");
        assert_eq!(body["code"], SERVICE_NOT_ALLOWED);
        let (s, _) = call(&app, "POST", path, Some(k.gateway.sign("auth", "POST", path))).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "nor may the gateway");
        let session = "/internal/sessions/0192f7a0-0000-7000-8000-000000000000";
        let (s, _) = call(&app, "GET", session, Some(k.gateway.sign("auth", "GET", session))).await;
        assert_eq!(s, StatusCode::OK, "the gateway checks sessions");

        let (s, body) = call(&app, "POST", path, None).await;
        assert_eq!((s, body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some(SERVICE_CREDENTIAL_REQUIRED)));
        let (forger, _) = ServiceKey::generate(Service::Users);
        let (s, _) = call(&app, "POST", path, Some(forger.sign("auth", "POST", path))).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "forged");
        let old = k.users.sign_at("auth", "POST", path, 1_700_000_000, crate::service_auth::TOKEN_TTL);
        let (s, _) = call(&app, "POST", path, Some(old)).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "expired");
        let t = k.users.sign("auth", "POST", path);
        assert_eq!(call(&app, "POST", path, Some(t.clone())).await.0, StatusCode::OK);
        assert_eq!(call(&app, "POST", path, Some(t)).await.0, StatusCode::UNAUTHORIZED, "replayed");
        let (s, _) = call(&app, "POST", path, Some(k.users.sign("users", "POST", path))).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "meant for another service");
        let (s, _) = call(&app, "POST", path, Some("x-trellis-internal-token-of-old".into())).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "the old shared token is just malformed");
    }

    #[tokio::test]
    async fn a_split_service_takes_forwarded_headers_from_the_gateway_only() {
        let k = keys(&[Service::Users]);
        let echo = |req: Request| async move {
            let h = req.headers();
            let mut seen: Vec<String> = h.keys().map(|k| k.as_str().to_string()).collect();
            seen.sort();
            assert!(!h.contains_key(SERVICE_TOKEN_HEADER), "the credential goes no further");
            seen.join(",")
        };
        let app = Router::new()
            .route("/api/users/me", get(echo))
            .layer(from_fn_with_state(k.verifier.clone(), trust_only_the_gateway));
        let send = |token: Option<String>| {
            let app = app.clone();
            async move {
                let mut req = Request::builder()
                    .uri("/api/users/me")
                    .header("x-forwarded-for", "203.0.113.9")
                    .header("X-Real-IP", "203.0.113.9")
                    .header("forwarded", "for=203.0.113.9")
                    .header("x-forwarded-host", "evil.example")
                    .header("x-user-id", "admin")
                    .header("authorization", "Bearer t");
                if let Some(t) = token {
                    req = req.header(SERVICE_TOKEN_HEADER, t);
                }
                let res = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
                String::from_utf8(axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap().to_vec()).unwrap()
            }
        };
        assert_eq!(send(None).await, "authorization", "a client's claims about itself are dropped");
        let worker = k.worker.sign("users", "GET", "/api/users/me");
        assert_eq!(send(Some(worker)).await, "authorization", "another service is not the gateway");
        let (forger, _) = ServiceKey::generate(Service::Gateway);
        assert_eq!(send(Some(forger.sign("users", "GET", "/api/users/me"))).await, "authorization");
        let gateway = k.gateway.sign("users", "GET", "/api/users/me");
        assert_eq!(
            send(Some(gateway)).await,
            "authorization,forwarded,x-forwarded-for,x-forwarded-host,x-real-ip,x-user-id",
            "the gateway's headers are kept"
        );
    }
}
