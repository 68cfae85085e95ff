//! Enforcement of the role gate (`api::policy`): a middleware every service router gets with
//! `route_layer`, so that it sees the matched route template and runs in the service itself,
//! whichever process the gateway is in (docs/SECURITY.md AZ-5).
//!
//! Deny by default: a matched route with no rule answers 403 and is logged. A refusal for a
//! caller's role is logged too (AZ-11) with the user id, role, method and route; never a token;
//! and so is a 403 the service behind the gate answers (an object-level refusal, `by: service`).

use axum::extract::{FromRequestParts, MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use api::policy::{self, Access, Decision};

use super::{Authenticated, Problem};

/// The `detail` of every 403 the role gate answers, so that tests and clients can tell it from an
/// object-level refusal of the service behind it.
pub const ROLE_DENIED: &str = "your role may not use this route";

/// Put in request extensions by `require_internal_token` once the caller proved it is a Trellis
/// service; `Internal` routes need it.
#[derive(Debug, Clone, Copy)]
pub struct InternalCall;

/// The role gate. Must be applied with `Router::route_layer` (it needs `MatchedPath`), inside the
/// `Arc<TokenVerifier>` extension.
pub async fn enforce_policy(req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_string();
    let Some(route) = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()) else {
        tracing::error!(%method, "role gate applied outside route_layer; refusing");
        return Problem::forbidden().into_response();
    };
    let Some(access) = policy::access(&method, &route) else {
        let allowed = policy::methods(&route);
        if allowed.is_empty() {
            tracing::error!(%method, %route, "route has no policy; refused (deny by default)");
            return Problem::new(StatusCode::FORBIDDEN, ROLE_DENIED).into_response();
        }
        // A method the table does not list on a listed path: the router's own answer would be
        // 405 as well, and a handler without a rule never runs.
        let mut res =
            Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this resource").into_response();
        if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
            res.headers_mut().insert(header::ALLOW, v);
        }
        return res;
    };
    match access {
        Access::Public => return next.run(req).await,
        Access::Internal => {
            if req.extensions().get::<InternalCall>().is_some() {
                return next.run(req).await;
            }
            tracing::warn!(%method, %route, "internal route called without the internal token; refused");
            return Problem::not_found().into_response();
        }
        Access::Authenticated | Access::Write | Access::Admin => {}
    }
    let (mut parts, body) = req.into_parts();
    let caller = match Authenticated::from_request_parts(&mut parts, &()).await {
        Ok(Authenticated(id)) => id,
        Err(problem) => return problem.into_response(),
    };
    match access.decide(Some(caller.role)) {
        Decision::Allow => {
            let res = next.run(Request::from_parts(parts, body)).await;
            if res.status() == StatusCode::FORBIDDEN {
                // The service's own, object-level refusal (a viewer changing a task): logged too.
                tracing::warn!(
                    user_id = %caller.user_id,
                    role = caller.role.as_str(),
                    %method,
                    %route,
                    by = "service",
                    "authorization denied"
                );
                metrics::counter!("trellis_authorization_denied_total", "route" => route).increment(1);
            }
            res
        }
        Decision::Unauthenticated => Problem::unauthorized().into_response(),
        Decision::Forbidden => {
            tracing::warn!(
                user_id = %caller.user_id,
                role = caller.role.as_str(),
                %method,
                %route,
                access = access.as_str(),
                "authorization denied"
            );
            metrics::counter!("trellis_authorization_denied_total", "route" => route).increment(1);
            Problem::new(StatusCode::FORBIDDEN, ROLE_DENIED).into_response()
        }
    }
}
