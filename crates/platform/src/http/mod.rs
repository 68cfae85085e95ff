//! HTTP plumbing shared by every service: one error shape (`application/problem+json`), our JSON
//! extractor, the caller's identity, the role gate, and middleware for request ids, W3C trace
//! context, metrics and health; and `Idempotency-Key` on POST ([`idempotency`]); the server loop
//! with its connection bounds ([`server`]) and who the client is behind proxies ([`net`]).

mod auth;
mod client;
mod health;
pub mod idempotency;
mod internal;
mod json;
mod middleware;
pub mod net;
mod policy;
mod problem;
pub mod server;

pub use auth::{Authenticated, Caller, bearer};
pub use client::{ClientAddress, ClientIp};
pub use health::{Check, CheckFn, Readiness, health_routes, public_health_routes};
pub use internal::{
    SERVICE_CREDENTIAL_REQUIRED, SERVICE_NOT_ALLOWED, ServiceCredential, forwarded_client_header, require_service,
    trust_only_the_gateway,
};
pub use json::{Json, JsonWithStatus, OptionalJson};
pub use middleware::{
    KNOWN_METHODS, RequestContext, TRACEPARENT, X_REQUEST_ID, current_context, deadline, observe, problem_fallback,
    problems_for_errors, reject_oversized, reject_unknown_methods, streams_body,
};
pub use policy::{InternalCall, ROLE_DENIED, enforce_policy};
pub use problem::Problem;

/// The largest JSON body accepted anywhere unless a route says otherwise.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;
