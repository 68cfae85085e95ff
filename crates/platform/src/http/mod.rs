//! HTTP plumbing shared by every service: one error shape (`application/problem+json`), our JSON
//! extractor, the caller's identity, the role gate, and middleware for request ids, W3C trace
//! context, metrics and health; and `Idempotency-Key` on POST ([`idempotency`]).

mod auth;
mod client;
mod health;
pub mod idempotency;
mod internal;
mod json;
mod middleware;
mod policy;
mod problem;

pub use auth::{Authenticated, Caller, bearer};
pub use client::{ClientAddress, ClientIp};
pub use health::{Check, CheckFn, Readiness, health_routes};
pub use internal::require_internal_token;
pub use json::{Json, JsonWithStatus, OptionalJson};
pub use middleware::{
    RequestContext, TRACEPARENT, X_REQUEST_ID, current_context, observe, problem_fallback, problems_for_errors,
    reject_oversized, streams_body,
};
pub use policy::{InternalCall, ROLE_DENIED, enforce_policy};
pub use problem::Problem;

/// The largest JSON body accepted anywhere unless a route says otherwise.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;
