//! The gateway: the single public entry point. It routes each path to its service, in process
//! (`Backend::Local`, the service's own router) or over HTTP (`Backend::Remote`, load-balanced
//! instances), and applies the edge policies: unknown methods refused, trusted proxies, caller
//! verification, rate limits with `RateLimit-*` headers (invalid tokens counted too), security
//! headers, body limits, the request deadline, and the web app's static files.
//!
//! The routing table lives in [`routes`]; it is the one place that says which service owns a path.
//! Who may call a route is not decided here: each service enforces the role gate
//! (`api::policy`) itself, in whichever process it runs; the gateway only pre-verifies tokens.

mod edge;
mod proxy;
pub mod ratelimit;
pub mod routes;
mod web;

pub use routes::{Backend, Backends, ServiceName};
pub use web::openapi_routes;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use platform::http::net::TrustedProxies;
use platform::http::{
    DEFAULT_BODY_LIMIT, deadline, enforce_policy, observe, problems_for_errors, reject_oversized,
    reject_unknown_methods,
};
use platform::identity::TokenVerifier;

/// What the gateway needs besides the backends.
pub struct GatewayParts {
    pub verifier: Arc<TokenVerifier>,
    pub limiter: Arc<ratelimit::RateLimiter>,
    /// The OpenAPI document, served at `/api/openapi.json`.
    pub openapi_json: String,
    /// `/healthz`, `/readyz`, `/metrics` of this process.
    pub health: Router,
    /// Routes other services call (`/internal/*`, guarded by service credentials): outside the
    /// edge policies, since a service's calls are not a client's, but inside logging and metrics.
    pub internal: Option<Router>,
    pub upstream_timeout: std::time::Duration,
    /// The gateway's service key (`platform::service_auth`), signing what it proxies to split
    /// services; `None` when every service is in this process.
    pub service_credential: Option<Arc<platform::service_auth::ServiceKey>>,
    /// The per-request deadline (`http.request_timeout_secs`).
    pub request_timeout: std::time::Duration,
    /// Proxies whose `X-Forwarded-For` is believed (`gateway.trusted_proxies`).
    pub trusted_proxies: TrustedProxies,
}

/// The whole public router of a process that runs the gateway.
pub fn router(backends: Backends, parts: GatewayParts) -> anyhow::Result<Router> {
    let proxy = Arc::new(proxy::Proxy::new(parts.upstream_timeout)?.with_credential(parts.service_credential.clone()));
    let services = routes::assemble(backends, &proxy)?;
    let edge_state = Arc::new(edge::EdgeState {
        verifier: parts.verifier.clone(),
        limiter: parts.limiter,
        trusted: parts.trusted_proxies,
    });
    let api = services
        .merge(web::openapi_routes(parts.openapi_json).route_layer(from_fn(enforce_policy)))
        .layer(from_fn_with_state(edge_state, edge::edge))
        .layer(axum::Extension(parts.verifier));
    Ok(api
        .merge(parts.health)
        .merge(parts.internal.unwrap_or_default())
        .fallback(web::static_or_not_found)
        .layer(DefaultBodyLimit::max(DEFAULT_BODY_LIMIT))
        .layer(from_fn(edge::security_headers))
        .layer(from_fn_with_state(parts.request_timeout, deadline))
        .layer(from_fn_with_state(DEFAULT_BODY_LIMIT, reject_oversized))
        .layer(from_fn(reject_unknown_methods))
        .layer(from_fn(problems_for_errors))
        .layer(from_fn_with_state("gateway", observe)))
}
