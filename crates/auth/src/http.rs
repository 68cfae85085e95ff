//! The auth service's HTTP routes (API.md "Auth").

use std::sync::Arc;

use api::auth::{Jwks, LoginRequest, RegisterRequest, RegisterResponse, TokenResponse};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use platform::http::{Json, JsonWithStatus, Problem};

use crate::service::{AuthError, AuthService, ClientInfo};

type Svc = State<Arc<AuthService>>;

pub fn router(svc: Arc<AuthService>) -> Router {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/.well-known/jwks.json", get(jwks))
        .with_state(svc)
}

impl From<AuthError> for Problem {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InvalidCredentials => Problem::new(StatusCode::UNAUTHORIZED, "invalid credentials"),
            AuthError::Busy => Problem::unavailable(2),
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
    let tokens = svc.login(req, client).await?;
    let mut res = Json(tokens).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth", responses((status = 200, body = Jwks)))]
pub async fn jwks(State(svc): Svc) -> Response {
    let mut res = Json(svc.public_keys()).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    res
}
