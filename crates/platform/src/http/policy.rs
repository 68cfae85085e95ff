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

/// Put in request extensions by `require_service` once the caller proved it is a Trellis service
/// the route admits (`api::internal`); `Internal` routes need it.
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
            tracing::warn!(%method, %route, "internal route reached without the service guard; refused");
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
                admin_needs_mfa = caller.admin_needs_mfa,
                %method,
                %route,
                access = access.as_str(),
                "authorization denied"
            );
            metrics::counter!("trellis_authorization_denied_total", "route" => route).increment(1);
            if caller.admin_needs_mfa && access == Access::Admin {
                // An admin acting as a user for want of a second factor (`identity::acting_role`).
                return Problem::admin_mfa_required().into_response();
            }
            Problem::new(StatusCode::FORBIDDEN, ROLE_DENIED).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::middleware::from_fn;
    use axum::routing::get;
    use tower::ServiceExt as _;
    use uuid::Uuid;

    use super::*;
    use crate::http::Caller;
    use crate::identity::{Identity, acting_role};
    use api::users::Role;

    /// The caller the verifier makes of a token naming `role`, with or without a second factor.
    fn caller(role: Role, mfa: bool) -> Identity {
        let acting = acting_role(role, mfa, true);
        Identity {
            user_id: Uuid::now_v7(),
            role: acting,
            session_id: Uuid::now_v7(),
            token_id: "jti".into(),
            issued_at: 0,
            expires_at: i64::MAX,
            mfa,
            admin_needs_mfa: acting != role,
        }
    }

    async fn call(path: &str, who: Identity) -> (StatusCode, serde_json::Value) {
        let app = Router::new()
            .route("/api/admin/stats", get(|| async { "stats" }))
            .route("/api/users/me", get(|| async { "me" }))
            .route_layer(from_fn(enforce_policy));
        let mut req = axum::http::Request::builder().uri(path).body(Body::empty()).unwrap();
        req.extensions_mut().insert(Caller(who));
        let res = app.oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    #[tokio::test]
    async fn an_admin_without_a_second_factor_is_told_to_use_one() {
        let (s, body) = call("/api/admin/stats", caller(Role::Admin, false)).await;
        assert_eq!((s, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("admin_mfa_required")), "{body}");
        assert_eq!(call("/api/admin/stats", caller(Role::Admin, true)).await.0, StatusCode::OK);
        let (s, body) = call("/api/admin/stats", caller(Role::User, true)).await;
        assert_eq!((s, body["detail"].as_str(), body.get("code")), (StatusCode::FORBIDDEN, Some(ROLE_DENIED), None));
        assert_eq!(call("/api/users/me", caller(Role::Admin, false)).await.0, StatusCode::OK, "signed in all the same");
    }
}
