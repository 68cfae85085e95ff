//! The comment and search routes: `GET, POST /api/tasks/{id}/comments`, `GET, PATCH, DELETE
//! /api/comments/{id}` (with `ETag` and `If-Match`) and `GET /api/search`.

use api::FieldError;
use api::projects::{Comment, CreateComment, Page, SearchResult, UpdateComment};
use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use platform::http::{Authenticated, Json, Problem};
use serde::Deserialize;
use std::sync::Arc;

use super::{ListQuery, Svc, created, if_match, list_query, page_request, path_id, tagged};
use crate::service::{Actor, ProjectsService, comment_etag};

/// The routes of comments and search, before their state.
pub(super) fn routes() -> Router<Arc<ProjectsService>> {
    Router::new()
        .route("/api/tasks/{id}/comments", get(list_comments).post(create_comment))
        .route("/api/comments/{id}", get(get_comment).patch(update_comment).delete(delete_comment))
        .route("/api/search", get(search))
}

/// The OpenAPI paths of comments and search.
pub(super) fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(list_comments, create_comment, get_comment, update_comment, delete_comment, search))]
    struct Doc;
    <Doc as utoipa::OpenApi>::openapi()
}

/// The comment with its `ETag`.
fn with_etag(comment: Comment) -> Response {
    let tag = comment_etag(comment.updated_at);
    tagged(Json(comment).into_response(), &tag)
}

#[utoipa::path(get, path = "/api/tasks/{id}/comments", tag = "comments",
    params(("id" = Uuid, Path), ("limit" = Option<u32>, Query, description = "1–100, default 20"),
           ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<Comment>, description = "oldest first"),
              (status = 404, description = "no such task, or not a member of its project")))]
async fn list_comments(
    State(svc): Svc,
    Authenticated(id): Authenticated,
    path: Result<Path<String>, PathRejection>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Page<Comment>>, Problem> {
    let task = path_id(path)?;
    let q = list_query(q)?;
    Ok(Json(svc.list_comments(Actor::from(&id), task, page_request(&q)?).await?))
}

#[utoipa::path(post, path = "/api/tasks/{id}/comments", tag = "comments", params(("id" = Uuid, Path)),
    request_body = CreateComment,
    responses((status = 201, body = Comment), (status = 403, description = "viewers and guests cannot comment"),
              (status = 404, description = "no such task, or not a member of its project"),
              (status = 422, description = "body empty, too long or with control characters")))]
async fn create_comment(
    State(svc): Svc,
    Authenticated(id): Authenticated,
    path: Result<Path<String>, PathRejection>,
    Json(body): Json<CreateComment>,
) -> Result<Response, Problem> {
    let task = path_id(path)?;
    let comment = svc.create_comment(Actor::from(&id), task, body).await?;
    let location = format!("/api/comments/{}", comment.id);
    Ok(tagged(created(location, &comment), &comment_etag(comment.updated_at)))
}

#[utoipa::path(get, path = "/api/comments/{id}", tag = "comments", params(("id" = Uuid, Path)),
    responses((status = 200, body = Comment), (status = 404, description = "no such comment, or not a member")))]
async fn get_comment(
    State(svc): Svc,
    Authenticated(id): Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    let comment_id = path_id(path)?;
    Ok(with_etag(svc.get_comment(Actor::from(&id), comment_id).await?))
}

#[utoipa::path(patch, path = "/api/comments/{id}", tag = "comments", request_body = UpdateComment,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "the comment's `ETag`")),
    responses((status = 200, body = Comment),
              (status = 403, description = "only the author, while still an owner or editor"),
              (status = 404, description = "no such comment, or not a member"),
              (status = 412, description = "`If-Match` names an older version"),
              (status = 422, description = "body empty, too long or with control characters")))]
async fn update_comment(
    State(svc): Svc,
    Authenticated(id): Authenticated,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    Json(body): Json<UpdateComment>,
) -> Result<Response, Problem> {
    let comment_id = path_id(path)?;
    Ok(with_etag(svc.update_comment(Actor::from(&id), comment_id, body, if_match(&headers)?).await?))
}

#[utoipa::path(delete, path = "/api/comments/{id}", tag = "comments",
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "the comment's `ETag`")),
    responses((status = 204, description = "deleted"),
              (status = 403, description = "only the author, project owners and admins"),
              (status = 404, description = "no such comment, or not a member"),
              (status = 412, description = "`If-Match` names an older version")))]
async fn delete_comment(
    State(svc): Svc,
    Authenticated(id): Authenticated,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<StatusCode, Problem> {
    let comment_id = path_id(path)?;
    svc.delete_comment(Actor::from(&id), comment_id, if_match(&headers)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The query string of a search; values as text so each bad one is a 422 naming its field.
#[derive(Debug, Default, Deserialize)]
struct SearchQuery {
    q: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/search", tag = "search",
    params(("q" = String, Query, description = "1–200 characters; every word must occur, the last one as a prefix"),
           ("limit" = Option<u32>, Query, description = "1–100, default 20"), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<SearchResult>,
               description = "projects, tasks and comments of the caller's projects (admins: all), best first"),
              (status = 422, description = "q empty or longer than 200 characters, bad limit or cursor")))]
async fn search(
    State(svc): Svc,
    Authenticated(id): Authenticated,
    q: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Json<Page<SearchResult>>, Problem> {
    let Query(q) = q.map_err(|e| Problem::bad_request(format!("malformed query string: {}", e.body_text())))?;
    let page = page_request(&ListQuery { limit: q.limit, cursor: q.cursor })?;
    let text = q.q.unwrap_or_default();
    if text.is_empty() {
        return Err(Problem::invalid(vec![FieldError::new("q", "must not be empty")]));
    }
    Ok(Json(svc.search(Actor::from(&id), &text, page).await?))
}
