//! The users service's HTTP routes: the public ones of API.md and the `/internal/*` ones other
//! services call through `HttpUsersClient`.

use std::sync::Arc;

use api::users::{EmailLookup, MfaFlag, NewUser, PublicUser, Role, User, UsersApi};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use platform::http::{Authenticated, Json, JsonWithStatus, Problem};
use uuid::Uuid;

use crate::UsersService;

type Svc = State<Arc<UsersService>>;

/// Public routes (API.md "Users").
pub fn router(svc: Arc<UsersService>) -> Router {
    Router::new().route("/api/users/me", get(me)).route("/api/users/{id}", get(get_user)).with_state(svc)
}

/// Routes for other services; mount behind `platform::http::require_internal_token`.
pub fn internal_router(svc: Arc<UsersService>) -> Router {
    Router::new()
        .route("/internal/users", post(internal_create))
        .route("/internal/users/lookup", post(internal_lookup))
        .route("/internal/users/{id}", get(internal_get).delete(internal_discard))
        .route("/internal/users/{id}/mfa", put(internal_set_mfa))
        .route("/internal/users/{id}/email-verified", post(internal_email_verified))
        .with_state(svc)
}

fn parse_id(raw: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(raw).map_err(|_| Problem::not_found())
}

#[utoipa::path(get, path = "/api/users/me", tag = "users",
    responses((status = 200, body = User), (status = 401, description = "not signed in")))]
pub async fn me(State(svc): Svc, Authenticated(caller): Authenticated) -> Result<Json<User>, Problem> {
    Ok(Json(svc.get_user(caller.user_id).await?))
}

/// The user themself and admins see the whole user; others see `{id, name}`.
#[utoipa::path(get, path = "/api/users/{id}", tag = "users",
    responses((status = 200, body = User), (status = 404, description = "no such user")))]
pub async fn get_user(
    State(svc): Svc,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let id = parse_id(&id)?;
    let user = svc.get_user(id).await?;
    if caller.user_id == id || caller.role == Role::Admin {
        Ok(Json(user).into_response())
    } else {
        Ok(Json(PublicUser { id: user.id, name: user.name }).into_response())
    }
}

async fn internal_create(State(svc): Svc, Json(new): Json<NewUser>) -> Result<JsonWithStatus<User>, Problem> {
    Ok(JsonWithStatus(StatusCode::CREATED, svc.create_user(new).await?))
}

async fn internal_lookup(State(svc): Svc, Json(q): Json<EmailLookup>) -> Result<Json<User>, Problem> {
    Ok(Json(svc.find_by_email(&q.email).await?))
}

async fn internal_get(State(svc): Svc, Path(id): Path<String>) -> Result<Json<User>, Problem> {
    Ok(Json(svc.get_user(parse_id(&id)?).await?))
}

async fn internal_set_mfa(
    State(svc): Svc,
    Path(id): Path<String>,
    Json(flag): Json<MfaFlag>,
) -> Result<StatusCode, Problem> {
    svc.set_mfa_enabled(parse_id(&id)?, flag.enabled).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn internal_email_verified(State(svc): Svc, Path(id): Path<String>) -> Result<StatusCode, Problem> {
    svc.set_email_verified(parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn internal_discard(State(svc): Svc, Path(id): Path<String>) -> Result<StatusCode, Problem> {
    svc.discard_new_user(parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
