//! The users service's HTTP routes: the public ones of docs/API.md and the `/internal/*` ones other
//! services call through `HttpUsersClient`.

use std::collections::BTreeMap;
use std::sync::Arc;

use api::FieldError;
use api::users::{
    EmailLookup, EraseUser, ExportRequest, MfaFlag, NewUser, Role, UpdateUser, User, UserListItem, UserPage,
    UserStatus, UsersApi,
};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use platform::http::{Authenticated, ClientIp, Json, JsonWithStatus, OptionalJson, Problem};
use uuid::Uuid;

use crate::UsersService;
use crate::preferences::Preferences;
use crate::service::{Actor, ExportDocument, SearchQuery, UpdateError, etag};

type Svc = State<Arc<UsersService>>;

/// Public routes (docs/API.md "Users").
pub fn router(svc: Arc<UsersService>) -> Router {
    routes().with_state(svc)
}

/// The public routes before their state: what `router` serves, listable without a service (the
/// role-gate table test walks it).
pub fn routes() -> Router<Arc<UsersService>> {
    Router::new()
        .route("/api/users", get(search))
        .route("/api/users/me", get(me))
        .route("/api/users/{id}", get(get_user).patch(update_user).delete(erase_user))
        .route("/api/users/{id}/preferences", get(get_preferences).put(put_preferences))
        .route("/api/users/{id}/export", get(export_without_proof).post(export))
}

/// Routes for other services; mount behind `platform::http::require_service` (callers: `api::internal`).
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
        .route("/internal/users/{id}/email", put(internal_apply_email_change))
        .route("/internal/users/{id}/notifications", get(internal_notifications))
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

fn actor(caller: &platform::identity::Identity) -> Actor {
    Actor { user_id: caller.user_id, role: caller.role, client_ip: None }
}

/// The actor of a request that may need a step-up proof: its failures count against the
/// client's address too.
fn actor_at(caller: &platform::identity::Identity, ip: Option<std::net::IpAddr>) -> Actor {
    Actor { client_ip: ip, ..actor(caller) }
}

/// Personal data is never stored by a cache on the way.
fn private<T: serde::Serialize>(body: &T) -> Response {
    let mut res = Json(body).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    res
}

#[utoipa::path(get, path = "/api/users/me", tag = "users",
    responses((status = 200, body = User), (status = 401, description = "not signed in")))]
pub async fn me(State(svc): Svc, Authenticated(caller): Authenticated) -> Result<Response, Problem> {
    Ok(full(&svc.get_user(caller.user_id).await?))
}

/// The user themself and admins see the whole user (an admin's read is recorded); others see
/// `{id, name}`.
#[utoipa::path(get, path = "/api/users/{id}", tag = "users",
    responses((status = 200, body = UserListItem), (status = 404, description = "no such user")))]
pub async fn get_user(
    State(svc): Svc,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    match svc.view_user(actor(&caller), parse_id(&id)?).await? {
        UserListItem::Full(user) => Ok(full(&user)),
        public @ UserListItem::Public(_) => Ok(Json(public).into_response()),
    }
}

/// Changes a user: `name` and `email` by the user themself or an admin, `role` and `status` by an
/// admin.
#[utoipa::path(patch, path = "/api/users/{id}", tag = "users", request_body = UpdateUser,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "the user's `ETag`; 412 when stale")),
    responses((status = 200, body = User, description = "the changed user; a new role or status has ended every session of the user"),
              (status = 202, body = User, description = "a new `email` is pending: a link was mailed to the new address and the change applies once it is followed (the body is the user as it is now; the same answer whether or not the address is taken)"),
              (status = 401, description = "`code: step_up_failed`: wrong current_password (or current_code)"),
              (status = 403, description = "not the user, or not an admin for role and status; or `code: step_up_required`: an email, role or status change without current_password"),
              (status = 404, description = "no such user"),
              (status = 409, description = "the last active administrator cannot be demoted or deactivated"),
              (status = 412, description = "`If-Match` names an older version"),
              (status = 422, description = "invalid or unknown fields"),
              (status = 429, description = "too many failed proofs; see Retry-After")))]
pub async fn update_user(
    State(svc): Svc,
    Authenticated(caller): Authenticated,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(patch): Json<UpdateUser>,
) -> Result<Response, Problem> {
    let id = parse_id(&id)?;
    let if_match = match headers.get(header::IF_MATCH) {
        Some(v) => Some(v.to_str().map_err(|_| Problem::bad_request("malformed If-Match"))?),
        None => None,
    };
    // A new address is only requested here: 202 says it waits for its link.
    let requested = patch.email.as_deref().and_then(|e| crate::domain::Email::parse(e).ok());
    match svc.update_user(actor_at(&caller, ip), id, patch, if_match).await {
        Ok(user) if requested.as_ref().is_some_and(|e| e.as_str() != user.email) => {
            let mut res = full(&user);
            *res.status_mut() = StatusCode::ACCEPTED;
            Ok(res)
        }
        Ok(user) => Ok(full(&user)),
        Err(UpdateError::PreconditionFailed) => {
            Err(Problem::new(StatusCode::PRECONDITION_FAILED, "the user changed since the version in If-Match"))
        }
        Err(UpdateError::Api(e)) => Err(e.into()),
    }
}

/// Erases a user (GDPR Art. 17): sessions ended, credentials and personal data deleted, the
/// user's data key destroyed, memberships removed, projects they alone owned deleted; what they
/// wrote in shared projects stays, attributed to "Deleted user". Idempotent.
#[utoipa::path(delete, path = "/api/users/{id}", tag = "users", request_body(content = Option<EraseUser>, description = "`{password}`: required when erasing one's own account"),
    params(("id" = Uuid, Path)),
    responses((status = 204, description = "erased (or already erased)"),
              (status = 401, description = "`code: step_up_failed`: wrong current password"),
              (status = 403, description = "`code: step_up_required`: no current password given; or neither the user nor an admin"),
              (status = 404, description = "no such user"),
              (status = 409, description = "the last active administrator cannot be erased"),
              (status = 429, description = "too many wrong passwords")))]
pub async fn erase_user(
    State(svc): Svc,
    Authenticated(caller): Authenticated,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<EraseUser>,
) -> Result<StatusCode, Problem> {
    let proof = body.and_then(|b| b.current_password.or(b.password));
    svc.erase(actor_at(&caller, ip), parse_id(&id)?, proof.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Finds users by the beginnings of the words of their name (admins: or email). Non-admins find
/// only active users who share a project with them; admins' pages are audited.
#[utoipa::path(get, path = "/api/users", tag = "users",
    params(("q" = Option<String>, Query, description = "words; each must begin a word of the name (admins: or email) (2+ characters)"),
           ("status" = Option<UserStatus>, Query, description = "admins only"),
           ("role" = Option<Role>, Query, description = "admins only"),
           ("cursor" = Option<String>, Query), ("limit" = Option<u32>, Query, description = "1-100, default 20")),
    responses((status = 200, body = UserPage, description = "admins get whole users (the page is audited), others the `{id, name}` of active users who share a project with them"),
              (status = 403, description = "status or role filter by a non-admin"),
              (status = 422, description = "invalid parameters")))]
pub async fn search(
    State(svc): Svc,
    Authenticated(caller): Authenticated,
    Query(params): Query<BTreeMap<String, String>>,
) -> Result<Response, Problem> {
    let mut query = SearchQuery::default();
    let mut errors = Vec::new();
    for (key, value) in params {
        match key.as_str() {
            "q" => query.q = Some(value),
            "cursor" => query.cursor = Some(value),
            "limit" => match value.parse() {
                Ok(n) => query.limit = Some(n),
                Err(_) => errors.push(FieldError::new("limit", "must be between 1 and 100")),
            },
            "status" => match UserStatus::parse(&value) {
                Some(s) => query.status = Some(s),
                None => errors.push(FieldError::new("status", "must be one of active, inactive, deleted")),
            },
            "role" => match Role::parse(&value) {
                Some(r) => query.role = Some(r),
                None => errors.push(FieldError::new("role", "must be one of admin, user, guest")),
            },
            _ => errors.push(FieldError::new(key, "unknown parameter")),
        }
    }
    if !errors.is_empty() {
        return Err(Problem::invalid(errors));
    }
    Ok(private(&svc.search(actor(&caller), query).await?))
}

#[utoipa::path(get, path = "/api/users/{id}/preferences", tag = "users",
    responses((status = 200, body = Preferences), (status = 403, description = "not the user nor an admin")))]
pub async fn get_preferences(
    State(svc): Svc,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    Ok(private(&svc.preferences(actor(&caller), parse_id(&id)?).await?))
}

/// Replaces the preferences; absent keys take their defaults.
#[utoipa::path(put, path = "/api/users/{id}/preferences", tag = "users", request_body = Preferences,
    responses((status = 200, body = Preferences), (status = 403, description = "not the user nor an admin"),
              (status = 422, description = "every invalid or unknown field, each named")))]
pub async fn put_preferences(
    State(svc): Svc,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    Json(body): Json<serde_json::Value>,
) -> Result<Response, Problem> {
    Ok(private(&svc.set_preferences(actor(&caller), parse_id(&id)?, &body).await?))
}

/// The first version's download: a GET cannot carry the fresh proof an export needs, so it
/// answers 403 `step_up_required` to everyone; `POST` is the way.
#[utoipa::path(get, path = "/api/users/{id}/export", tag = "users",
    responses((status = 403, description = "`code: step_up_required` always: download with `POST` and `current_password`")))]
pub async fn export_without_proof(Authenticated(_caller): Authenticated) -> Problem {
    Problem::step_up_required()
}

/// Every piece of personal data Trellis holds about the user, from every service, as one JSON
/// document (GDPR Art. 15 and 20), for the caller's own current password.
#[utoipa::path(post, path = "/api/users/{id}/export", tag = "users", request_body = ExportRequest,
    responses((status = 200, body = ExportDocument, description = "a download (`Content-Disposition: attachment`)"),
              (status = 401, description = "`code: step_up_failed`: wrong current password"),
              (status = 403, description = "`code: step_up_required`: no current password; or not the user nor an admin"),
              (status = 429, description = "too many wrong passwords"),
              (status = 503, description = "a service holding data could not answer; nothing partial is sent")))]
pub async fn export(
    State(svc): Svc,
    Authenticated(caller): Authenticated,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<ExportRequest>,
) -> Result<Response, Problem> {
    let id = parse_id(&id)?;
    let proof = body.and_then(|b| b.current_password);
    let doc = svc.export(actor_at(&caller, ip), id, proof.as_deref()).await?;
    let mut res = private(&doc);
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"trellis-export-{id}.json\"")) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
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

async fn internal_apply_email_change(
    State(svc): Svc,
    Path(id): Path<String>,
    Json(body): Json<api::users::ApplyEmailChange>,
) -> Result<StatusCode, Problem> {
    svc.apply_email_change(parse_id(&id)?, &body.email).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn internal_notifications(
    State(svc): Svc,
    Path(id): Path<String>,
) -> Result<Json<api::users::NotificationSettings>, Problem> {
    Ok(Json(svc.notification_settings(parse_id(&id)?).await?))
}

async fn internal_discard(State(svc): Svc, Path(id): Path<String>) -> Result<StatusCode, Problem> {
    svc.discard_new_user(parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
