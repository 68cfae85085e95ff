//! The users service's HTTP routes: the public ones of API.md and the `/internal/*` ones other
//! services call through `HttpUsersClient`.

use std::sync::Arc;

use api::users::{EmailLookup, MfaFlag, NewUser, PublicUser, Role, UpdateUser, User, UsersApi};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use platform::http::{Authenticated, Json, JsonWithStatus, Problem};
use uuid::Uuid;

use crate::UsersService;
use crate::service::{Actor, UpdateError, etag};

type Svc = State<Arc<UsersService>>;

/// Public routes (API.md "Users").
pub fn router(svc: Arc<UsersService>) -> Router {
    routes().with_state(svc)
}

/// The public routes before their state: what `router` serves, listable without a service (the
/// role-gate table test walks it).
pub fn routes() -> Router<Arc<UsersService>> {
    Router::new().route("/api/users/me", get(me)).route("/api/users/{id}", get(get_user).patch(update_user))
}

/// Routes for other services; mount behind `platform::http::require_internal_token`.
pub fn internal_router(svc: Arc<UsersService>) -> Router {
    internal_routes().with_state(svc)
}

/// The internal routes before their state.
pub fn internal_routes() -> Router<Arc<UsersService>> {
    Router::new()
        .route("/internal/users", post(internal_create))
        .route("/internal/users/lookup", post(internal_lookup))
        .route("/internal/users/{id}", get(internal_get).delete(internal_discard))
        .route("/internal/users/{id}/mfa", put(internal_set_mfa))
        .route("/internal/users/{id}/email-verified", post(internal_email_verified))
}

/// The whole user, with its `ETag`.
fn full(user: &User) -> Response {
    let mut res = Json(user).into_response();
    if let Ok(v) = HeaderValue::from_str(&etag(user)) {
        res.headers_mut().insert(header::ETAG, v);
    }
    res
}

fn parse_id(raw: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(raw).map_err(|_| Problem::not_found())
}

#[utoipa::path(get, path = "/api/users/me", tag = "users",
    responses((status = 200, body = User), (status = 401, description = "not signed in")))]
pub async fn me(State(svc): Svc, Authenticated(caller): Authenticated) -> Result<Response, Problem> {
    Ok(full(&svc.get_user(caller.user_id).await?))
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
        Ok(full(&user))
    } else {
        Ok(Json(PublicUser { id: user.id, name: user.name }).into_response())
    }
}

/// Changes a user: `name` by the user themself or an admin, `role` and `status` by an admin.
#[utoipa::path(patch, path = "/api/users/{id}", tag = "users", request_body = UpdateUser,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "the user's `ETag`; 412 when stale")),
    responses((status = 200, body = User, description = "the changed user; a new role or status has ended every session of the user"),
              (status = 403, description = "not the user, or not an admin for role and status"),
              (status = 404, description = "no such user"),
              (status = 409, description = "the last active administrator cannot be demoted or deactivated"),
              (status = 412, description = "`If-Match` names an older version"),
              (status = 422, description = "invalid or unknown fields")))]
pub async fn update_user(
    State(svc): Svc,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(patch): Json<UpdateUser>,
) -> Result<Response, Problem> {
    let id = parse_id(&id)?;
    let if_match = match headers.get(header::IF_MATCH) {
        Some(v) => Some(v.to_str().map_err(|_| Problem::bad_request("malformed If-Match"))?),
        None => None,
    };
    let actor = Actor { user_id: caller.user_id, role: caller.role };
    match svc.update_user(actor, id, patch, if_match).await {
        Ok(user) => Ok(full(&user)),
        Err(UpdateError::PreconditionFailed) => {
            Err(Problem::new(StatusCode::PRECONDITION_FAILED, "the user changed since the version in If-Match"))
        }
        Err(UpdateError::Api(e)) => Err(e.into()),
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
