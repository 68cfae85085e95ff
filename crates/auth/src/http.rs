//! The auth service's HTTP routes (API.md "Auth").

use std::sync::Arc;

use api::auth::{
    ChangePasswordRequest, EndSessionsRequest, EndSessionsResponse, IntrospectRequest, Introspection, Jwks,
    LoginRequest, RefreshRequest, RegisterRequest, RegisterResponse, SessionInfo, SessionStatus, TokenResponse,
};
use api::projects::Page;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use platform::http::{Authenticated, Json, JsonWithStatus, Problem};
use platform::identity::{TokenVerifier, VerifyError};
use serde::Serialize;
use uuid::Uuid;

use crate::service::{AuthError, AuthService, ClientInfo};

type Svc = State<Arc<AuthService>>;

pub fn router(svc: Arc<AuthService>) -> Router {
    routes().with_state(svc)
}

/// The public routes before their state: what `router` serves, listable without a service (the
/// role-gate table test walks it).
pub fn routes() -> Router<Arc<AuthService>> {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/auth/refresh", post(refresh))
        .route("/auth/verify", post(introspect))
        .route("/auth/logout", post(logout))
        .route("/auth/logout-all", post(logout_all))
        .route("/auth/password/change", post(change_password))
        .route("/auth/sessions", get(sessions))
        .route("/auth/sessions/{id}", delete(revoke_session))
        .route("/.well-known/jwks.json", get(jwks))
}

/// Routes for other services; mount behind `platform::http::require_internal_token`.
pub fn internal_router(svc: Arc<AuthService>) -> Router {
    internal_routes().with_state(svc)
}

/// The internal routes before their state.
pub fn internal_routes() -> Router<Arc<AuthService>> {
    Router::new()
        .route("/internal/sessions/{id}", get(internal_session_status))
        .route("/internal/sessions/end-all", post(internal_end_sessions))
}

/// Token answers are never cached (RFC 6749 §5.1).
fn no_store(body: TokenResponse) -> Response {
    let mut res = Json(body).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

impl From<AuthError> for Problem {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InvalidCredentials => Problem::new(StatusCode::UNAUTHORIZED, "invalid credentials"),
            AuthError::Busy => Problem::unavailable(2),
            AuthError::Throttled(secs) => Problem::too_many(secs),
            AuthError::Api(api::ApiError::Conflict(_)) => Problem::conflict("email already registered"),
            AuthError::Api(e) => e.into(),
        }
    }
}

#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = RegisterResponse), (status = 409, description = "email taken"),
              (status = 422, description = "invalid fields or weak password")))]
pub async fn register(
    State(svc): Svc,
    Json(req): Json<RegisterRequest>,
) -> Result<JsonWithStatus<RegisterResponse>, Problem> {
    let user = svc.register(req).await?;
    Ok(JsonWithStatus(StatusCode::CREATED, RegisterResponse { user }))
}

#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, description = "invalid credentials")))]
pub async fn login(State(svc): Svc, headers: HeaderMap, Json(req): Json<LoginRequest>) -> Result<Response, Problem> {
    let client = ClientInfo {
        user_agent: headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_string),
        ip: None,
    };
    Ok(no_store(svc.login(req, client).await?))
}

#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse),
              (status = 401, description = "unknown, expired or revoked refresh token; reuse of a rotated one also ends its session")))]
pub async fn refresh(State(svc): Svc, Json(req): Json<RefreshRequest>) -> Result<Response, Problem> {
    Ok(no_store(svc.refresh(&req.refresh_token).await?))
}

/// Token introspection (RFC 7662 shape): the same checks every service applies, session included.
#[utoipa::path(post, path = "/auth/verify", tag = "auth", request_body = IntrospectRequest,
    responses((status = 200, body = Introspection, description = "`{active: false}` for a bad, expired or revoked token")))]
pub async fn introspect(
    axum::Extension(verifier): axum::Extension<Arc<TokenVerifier>>,
    Json(req): Json<IntrospectRequest>,
) -> Result<Response, Problem> {
    let answer = match verifier.verify(&req.token).await {
        Ok(id) => Introspection {
            active: true,
            sub: Some(id.user_id),
            role: Some(id.role),
            sid: Some(id.session_id),
            exp: Some(id.expires_at),
            iat: Some(id.issued_at),
        },
        Err(VerifyError::Invalid) => {
            Introspection { active: false, sub: None, role: None, sid: None, exp: None, iat: None }
        }
        Err(VerifyError::Unavailable) => return Err(Problem::unavailable(5)),
    };
    let mut res = Json(answer).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    responses((status = 204, description = "the session's refresh and access tokens stop working at once")))]
pub async fn logout(State(svc): Svc, Authenticated(caller): Authenticated) -> Result<StatusCode, Problem> {
    svc.logout(&caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/auth/logout-all", tag = "auth",
    responses((status = 204, description = "every session of the caller ends")))]
pub async fn logout_all(State(svc): Svc, Authenticated(caller): Authenticated) -> Result<StatusCode, Problem> {
    svc.logout_all(&caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/auth/password/change", tag = "auth", request_body = ChangePasswordRequest,
    responses((status = 204, description = "changed; the caller's other sessions ended"),
              (status = 422, description = "wrong current password, or a new password the policy refuses")))]
pub async fn change_password(
    State(svc): Svc,
    Authenticated(caller): Authenticated,
    Json(req): Json<ChangePasswordRequest>,
) -> Result<StatusCode, Problem> {
    svc.change_password(&caller, &req.current_password, &req.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/auth/sessions", tag = "auth", responses((status = 200, body = Page<SessionInfo>)))]
pub async fn sessions(
    State(svc): Svc,
    Authenticated(caller): Authenticated,
) -> Result<Json<Page<SessionInfo>>, Problem> {
    Ok(Json(Page { items: svc.sessions(&caller).await?, next_cursor: None }))
}

#[utoipa::path(delete, path = "/auth/sessions/{id}", tag = "auth", params(("id" = Uuid, Path)),
    responses((status = 204, description = "the session ended"), (status = 404, description = "no such session of the caller")))]
pub async fn revoke_session(
    State(svc): Svc,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let id = Uuid::parse_str(&id).map_err(|_| Problem::not_found())?;
    svc.revoke_session(&caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, serde::Deserialize)]
pub struct SessionActive {
    pub active: bool,
}

async fn internal_session_status(State(svc): Svc, Path(id): Path<String>) -> Result<Json<SessionActive>, Problem> {
    let id = Uuid::parse_str(&id).map_err(|_| Problem::not_found())?;
    Ok(Json(SessionActive { active: svc.session_active(id).await? }))
}

async fn internal_end_sessions(
    State(svc): Svc,
    Json(req): Json<EndSessionsRequest>,
) -> Result<Json<EndSessionsResponse>, Problem> {
    Ok(Json(EndSessionsResponse { ended: svc.end_all_sessions(req.user_id, req.reason).await? }))
}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth", responses((status = 200, body = Jwks)))]
pub async fn jwks(State(svc): Svc) -> Response {
    let mut res = Json(svc.public_keys()).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    res
}
