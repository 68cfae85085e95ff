//! The HTTP API of the projects service (docs/API.md "Projects and tasks"): routes, request parsing
//! into use-case inputs, and answers; and the `/internal/projects/*` routes other services call.
//! Every failure is a problem+json answer: ids that are not UUIDs are 404 like any unknown id,
//! malformed query strings are 400, bad values 422. The task routes are in [`tasks`].

pub(crate) mod tasks;

mod comments;

mod attachments;

use std::sync::Arc;

use api::FieldError;
use api::personal::{DataSubject, ErasureReport, PersonalData, PersonalDataApi};
use api::projects::{
    AddMember, ChangeMember, CreateProject, InviteMember, Member, MemberInvited, Page, Project, TaskStatus,
    UpdateProject,
};
use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use platform::http::{Authenticated, Json, JsonWithStatus, Problem};
use serde::Deserialize;
use uuid::Uuid;

use crate::service::{Actor, ChangeError, PageRequest, ProjectsService, member_etag, project_etag};

type Svc = State<Arc<ProjectsService>>;

/// The routes of the projects service. Callers must be authenticated: the router expects the
/// gateway to have put a `Caller` in the request extensions, or an `Arc<TokenVerifier>`
/// extension so that [`Authenticated`] can verify the bearer token itself. Every POST honours
/// `Idempotency-Key` (`platform::http::idempotency`), which needs an `Arc<Idempotency>`
/// extension; the role gate, layered outside, runs first.
pub fn router(svc: Arc<ProjectsService>) -> Router {
    routes().route_layer(axum::middleware::from_fn(platform::http::idempotency::idempotent)).with_state(svc)
}

/// The routes before their state: what `router` serves, listable without a service (the
/// role-gate table test walks it).
pub fn routes() -> Router<Arc<ProjectsService>> {
    Router::new()
        .route("/api/projects", get(list_projects).post(create_project))
        .route("/api/projects/{id}", get(get_project).patch(update_project).delete(delete_project))
        .route("/api/projects/{id}/members", get(list_members).post(add_member))
        .route("/api/projects/{id}/members/{user_id}", get(get_member).patch(change_member).delete(remove_member))
        .route("/api/projects/{id}/tasks", get(tasks::list_tasks).post(tasks::create_task))
        .route("/api/tasks/{id}", get(tasks::get_task).patch(tasks::update_task).delete(tasks::delete_task))
        .merge(comments::routes())
        .merge(attachments::routes())
}

/// The OpenAPI paths of this service.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(
        list_projects,
        create_project,
        get_project,
        update_project,
        delete_project,
        list_members,
        add_member,
        get_member,
        change_member,
        remove_member
    ))]
    struct Doc;
    let mut doc = <Doc as utoipa::OpenApi>::openapi();
    doc.merge(tasks::openapi());
    doc.merge(comments::openapi());
    doc.merge(attachments::openapi());
    platform::http::idempotency::document(&mut doc);
    doc
}

/// A path id: anything that is not a UUID names nothing, hence 404.
fn path_id(path: Result<Path<String>, PathRejection>) -> Result<Uuid, Problem> {
    let Path(raw) = path.map_err(|_| Problem::not_found())?;
    Uuid::parse_str(&raw).map_err(|_| Problem::not_found())
}

/// The query string of a project list. Values are taken as text and parsed here so that each
/// bad value is a 422 naming its field.
#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

fn list_query(q: Result<Query<ListQuery>, QueryRejection>) -> Result<ListQuery, Problem> {
    q.map(|Query(q)| q).map_err(|e| Problem::bad_request(format!("malformed query string: {}", e.body_text())))
}

fn page_request(q: &ListQuery) -> Result<PageRequest, Problem> {
    let limit = q
        .limit
        .as_deref()
        .map(|l| l.parse::<u32>())
        .transpose()
        .map_err(|_| Problem::invalid(vec![FieldError::new("limit", "must be an integer between 1 and 100")]))?;
    Ok(PageRequest { limit, cursor: q.cursor.clone() })
}

fn task_status(s: &str) -> Option<TaskStatus> {
    match s {
        "todo" => Some(TaskStatus::Todo),
        "in_progress" => Some(TaskStatus::InProgress),
        "done" => Some(TaskStatus::Done),
        _ => None,
    }
}

/// 201 with the new resource and its `Location`.
fn created<T: serde::Serialize>(location: String, body: T) -> Response {
    let mut res = JsonWithStatus(StatusCode::CREATED, body).into_response();
    if res.status() == StatusCode::CREATED
        && let Ok(v) = HeaderValue::from_str(&location)
    {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

#[utoipa::path(get, path = "/api/projects", tag = "projects",
    params(("limit" = Option<u32>, Query, description = "1–100, default 20"), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<Project>), (status = 401, description = "not signed in")))]
async fn list_projects(
    State(svc): Svc,
    Authenticated(id): Authenticated,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Page<Project>>, Problem> {
    let q = list_query(q)?;
    Ok(Json(svc.list_projects(Actor::from(&id), page_request(&q)?).await?))
}

#[utoipa::path(post, path = "/api/projects", tag = "projects", request_body = CreateProject,
    responses((status = 201, body = Project), (status = 403, description = "guests cannot create"),
              (status = 422, description = "invalid fields")))]
async fn create_project(
    State(svc): Svc,
    Authenticated(id): Authenticated,
    Json(body): Json<CreateProject>,
) -> Result<Response, Problem> {
    let project = svc.create_project(Actor::from(&id), body).await?;
    Ok(created(format!("/api/projects/{}", project.id), project))
}

#[utoipa::path(get, path = "/api/projects/{id}", tag = "projects", params(("id" = Uuid, Path)),
    responses((status = 200, body = Project), (status = 404, description = "no such project, or not a member")))]
async fn get_project(
    State(svc): Svc,
    Authenticated(id): Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    let project_id = path_id(path)?;
    Ok(with_etag(svc.get_project(Actor::from(&id), project_id).await?))
}

/// The project with its `ETag`.
fn with_etag(project: Project) -> Response {
    let tag = project_etag(project.updated_at);
    tagged(Json(project).into_response(), &tag)
}

/// `res` with the `ETag` `tag`.
fn tagged(mut res: Response, tag: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(tag) {
        res.headers_mut().insert(header::ETAG, v);
    }
    res
}

fn if_match(headers: &HeaderMap) -> Result<Option<&str>, Problem> {
    headers
        .get(header::IF_MATCH)
        .map(|v| v.to_str().map_err(|_| Problem::bad_request("malformed If-Match")))
        .transpose()
}

impl From<ChangeError> for Problem {
    fn from(e: ChangeError) -> Self {
        match e {
            ChangeError::PreconditionFailed => {
                Problem::new(StatusCode::PRECONDITION_FAILED, "the resource changed since the version in If-Match")
            }
            ChangeError::Api(e) => e.into(),
        }
    }
}

#[utoipa::path(patch, path = "/api/projects/{id}", tag = "projects", request_body = UpdateProject,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "the project's `ETag`")),
    responses((status = 200, body = Project), (status = 403, description = "viewers and guests cannot change it"),
              (status = 404, description = "no such project, or not a member"),
              (status = 412, description = "`If-Match` names an older version"), (status = 422, description = "invalid fields")))]
async fn update_project(
    State(svc): Svc,
    Authenticated(id): Authenticated,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    Json(body): Json<UpdateProject>,
) -> Result<Response, Problem> {
    let project_id = path_id(path)?;
    Ok(with_etag(svc.update_project(Actor::from(&id), project_id, body, if_match(&headers)?).await?))
}

#[utoipa::path(delete, path = "/api/projects/{id}", tag = "projects",
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "the project's `ETag`")),
    responses((status = 204, description = "deleted with its members and tasks"),
              (status = 403, description = "only owners and admins delete"),
              (status = 404, description = "no such project, or not a member"),
              (status = 412, description = "`If-Match` names an older version")))]
async fn delete_project(
    State(svc): Svc,
    Authenticated(id): Authenticated,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<StatusCode, Problem> {
    let project_id = path_id(path)?;
    svc.delete_project(Actor::from(&id), project_id, if_match(&headers)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/projects/{id}/members", tag = "projects", params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<Member>), (status = 404, description = "no such project, or not a member")))]
async fn list_members(
    State(svc): Svc,
    Authenticated(id): Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Vec<Member>>, Problem> {
    let project_id = path_id(path)?;
    Ok(Json(svc.list_members(Actor::from(&id), project_id).await?))
}

/// Adds a member by `{user_id, role}` (201 with the member), or by exact address
/// `{email, role}` (202 `{email, role}`, the same whether or not the address has an account: an
/// active account is added, an unknown address is invited to register).
#[utoipa::path(post, path = "/api/projects/{id}/members", tag = "projects", params(("id" = Uuid, Path)),
    request_body(content = AddMember, description = "`{user_id, role}`, or `{email, role}` (`InviteMember`)"),
    responses((status = 201, body = Member, description = "added by `user_id`"),
              (status = 202, body = MemberInvited, description = "by `email`: the same answer for every address"),
              (status = 403, description = "only owners manage members"),
              (status = 404, description = "no such project, or not a member"),
              (status = 409, description = "already a member (by `user_id`)"),
              (status = 422, description = "not an active user, or a guest as more than a viewer (by `user_id`); a malformed address")))]
async fn add_member(
    State(svc): Svc,
    Authenticated(id): Authenticated,
    path: Result<Path<String>, PathRejection>,
    Json(raw): Json<serde_json::Value>,
) -> Result<Response, Problem> {
    let project_id = path_id(path)?;
    let by_email = raw.as_object().is_some_and(|o| o.contains_key("email"));
    if by_email {
        let body: InviteMember = serde_json::from_value(raw).map_err(|e| body_problem(&e))?;
        let answer = svc.invite_member(Actor::from(&id), project_id, body).await?;
        return Ok(JsonWithStatus(StatusCode::ACCEPTED, answer).into_response());
    }
    let body: AddMember = serde_json::from_value(raw).map_err(|e| body_problem(&e))?;
    let member = svc.add_member(Actor::from(&id), project_id, body).await?;
    let tag = member_etag(&member);
    Ok(tagged(created(format!("/api/projects/{project_id}/members/{}", member.user_id), member), &tag))
}

/// Both ids of a member's path; anything not a UUID is 404.
fn member_path(path: Result<Path<(String, String)>, PathRejection>) -> Result<(Uuid, Uuid), Problem> {
    let Path((project, user)) = path.map_err(|_| Problem::not_found())?;
    let parse = |s: &str| Uuid::parse_str(s).map_err(|_| Problem::not_found());
    Ok((parse(&project)?, parse(&user)?))
}

/// A member with its `ETag`.
fn member_answer(member: Member) -> Response {
    let tag = member_etag(&member);
    tagged(Json(member).into_response(), &tag)
}

#[utoipa::path(get, path = "/api/projects/{id}/members/{user_id}", tag = "projects",
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses((status = 200, body = Member, description = "the member, with its `ETag`"),
              (status = 404, description = "no such project or member")))]
async fn get_member(
    State(svc): Svc,
    Authenticated(id): Authenticated,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, Problem> {
    let (project_id, user_id) = member_path(path)?;
    Ok(member_answer(svc.get_member(Actor::from(&id), project_id, user_id).await?))
}

#[utoipa::path(patch, path = "/api/projects/{id}/members/{user_id}", tag = "projects",
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path),
           ("If-Match" = Option<String>, Header, description = "the member's `ETag`")),
    request_body = ChangeMember,
    responses((status = 200, body = Member), (status = 403, description = "only owners manage members"),
              (status = 404, description = "no such project or member"),
              (status = 409, description = "a project keeps at least one owner"),
              (status = 412, description = "`If-Match` names another version of the member")))]
async fn change_member(
    State(svc): Svc,
    Authenticated(id): Authenticated,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    Json(body): Json<ChangeMember>,
) -> Result<Response, Problem> {
    let (project_id, user_id) = member_path(path)?;
    let member = svc.change_member(Actor::from(&id), project_id, user_id, body, if_match(&headers)?).await?;
    Ok(member_answer(member))
}

#[utoipa::path(delete, path = "/api/projects/{id}/members/{user_id}", tag = "projects",
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path),
           ("If-Match" = Option<String>, Header, description = "the member's `ETag`")),
    responses((status = 204, description = "removed; their tasks are unassigned"),
              (status = 403, description = "only owners remove others"),
              (status = 404, description = "no such project or member"),
              (status = 409, description = "a project keeps at least one owner"),
              (status = 412, description = "`If-Match` names another version of the member")))]
async fn remove_member(
    State(svc): Svc,
    Authenticated(id): Authenticated,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<StatusCode, Problem> {
    let (project_id, user_id) = member_path(path)?;
    svc.remove_member(Actor::from(&id), project_id, user_id, if_match(&headers)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Routes for other services (the users service's GDPR export and erasure, through
/// `platform::client::PersonalDataClient`); mount behind `platform::http::require_service`.
pub fn internal_router(svc: Arc<ProjectsService>) -> Router {
    internal_routes().with_state(svc)
}

/// The internal routes before their state.
pub fn internal_routes() -> Router<Arc<ProjectsService>> {
    Router::new()
        .route("/internal/projects/personal-data/export", post(internal_export))
        .route("/internal/projects/personal-data/erase", post(internal_erase))
        .route("/internal/projects/access", post(internal_access))
        .route("/internal/projects/tasks/{id}", get(internal_task))
        .route("/internal/projects/comments/{id}", get(internal_comment))
        .route("/internal/projects/co-members", post(internal_co_members))
}

async fn internal_co_members(
    State(svc): Svc,
    Json(q): Json<api::projects::CoMembersQuery>,
) -> Result<Json<api::projects::CoMembersAnswer>, Problem> {
    use api::projects::ProjectPeople as _;
    Ok(Json(api::projects::CoMembersAnswer { user_ids: svc.co_members(q.user_id).await? }))
}

/// A body that is JSON but not one of the member bodies: 422 naming what is wrong.
fn body_problem(e: &serde_json::Error) -> Problem {
    Problem::invalid(vec![FieldError::new("body", e.to_string())])
}

/// The task as it is now, for the worker's mails (events carry no text); 404 when gone.
async fn internal_task(
    State(svc): Svc,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<api::projects::Task>, Problem> {
    use api::projects::ProjectAccess as _;
    svc.current_task(path_id(path)?).await?.map(Json).ok_or_else(|| api::ApiError::NotFound.into())
}

/// The comment as it is now, for the worker's mails; 404 when gone.
async fn internal_comment(
    State(svc): Svc,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<api::projects::Comment>, Problem> {
    use api::projects::ProjectAccess as _;
    svc.current_comment(path_id(path)?).await?.map(Json).ok_or_else(|| api::ApiError::NotFound.into())
}

async fn internal_access(
    State(svc): Svc,
    Json(q): Json<api::projects::AccessQuery>,
) -> Result<Json<api::projects::AccessAnswer>, Problem> {
    use api::projects::ProjectAccess as _;
    let role = svc.project_role(q.project_id, q.user_id, q.role).await?;
    Ok(Json(api::projects::AccessAnswer { role }))
}

async fn internal_export(State(svc): Svc, Json(subject): Json<DataSubject>) -> Result<Json<PersonalData>, Problem> {
    Ok(Json(svc.export(&subject).await?))
}

async fn internal_erase(State(svc): Svc, Json(subject): Json<DataSubject>) -> Result<Json<ErasureReport>, Problem> {
    Ok(Json(svc.erase(&subject).await?))
}
