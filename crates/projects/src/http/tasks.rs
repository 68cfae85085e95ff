//! The task routes: `GET, POST /api/projects/{id}/tasks` and `GET, PATCH, DELETE
//! /api/tasks/{id}`. A list's query string is strict: a parameter named twice is 400, an unknown
//! one 422 naming it, a bad value 422 naming its parameter.

use std::collections::HashSet;

use api::FieldError;
use api::projects::{CreateTask, Page, Priority, Task, TaskStatus, UpdateTask};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use platform::http::{Authenticated, Json, Problem};
use uuid::Uuid;

use super::{Svc, created, if_match, path_id, task_status};
use crate::service::{Actor, PageRequest, TaskListQuery, TaskOrder, TaskSort, filter_date, task_etag};

/// The query parameters a task list understands.
const PARAMS: &[&str] =
    &["limit", "cursor", "sort", "status", "assignee_id", "priority", "label", "due_before", "due_after", "q"];

fn priority(s: &str) -> Option<Priority> {
    match s {
        "low" => Some(Priority::Low),
        "medium" => Some(Priority::Medium),
        "high" => Some(Priority::High),
        "urgent" => Some(Priority::Urgent),
        _ => None,
    }
}

fn sort(s: &str) -> Option<TaskOrder> {
    let (descending, name) = match s.strip_prefix('-') {
        Some(name) => (true, name),
        None => (false, s),
    };
    let sort = match name {
        "position" => TaskSort::Position,
        "due_date" => TaskSort::DueDate,
        "priority" => TaskSort::Priority,
        "created_at" => TaskSort::CreatedAt,
        "updated_at" => TaskSort::UpdatedAt,
        _ => return None,
    };
    Some(TaskOrder { sort, descending })
}

/// The list's filters, sort and page from the query string's pairs.
pub(crate) fn list_request(pairs: Vec<(String, String)>) -> Result<(TaskListQuery, PageRequest), Problem> {
    let mut seen = HashSet::new();
    if let Some((dup, _)) = pairs.iter().find(|(k, _)| !seen.insert(k.as_str())) {
        return Err(Problem::bad_request(format!("query parameter {dup:?} is given more than once")));
    }
    let unknown: Vec<FieldError> = pairs
        .iter()
        .filter(|(k, _)| !PARAMS.contains(&k.as_str()))
        .map(|(k, _)| FieldError::new(k.as_str(), "is not a parameter of this list"))
        .collect();
    if !unknown.is_empty() {
        return Err(Problem::invalid(unknown));
    }
    let mut errors = Vec::new();
    let (mut list, mut page) = (TaskListQuery::default(), PageRequest::default());
    let f = &mut list.filter;
    for (k, v) in pairs {
        let mut bad = |message: &str| errors.push(FieldError::new(k.as_str(), message));
        match k.as_str() {
            "limit" => match v.parse::<u32>() {
                Ok(l) => page.limit = Some(l),
                Err(_) => bad("must be an integer between 1 and 100"),
            },
            "cursor" => page.cursor = Some(v),
            "sort" => match sort(&v) {
                Some(o) => list.order = o,
                None => bad("must be position, due_date, priority, created_at or updated_at, - for descending"),
            },
            "status" => match task_status(&v) {
                Some(s) => f.status = Some(s),
                None => bad("must be todo, in_progress or done"),
            },
            "assignee_id" => match Uuid::parse_str(&v) {
                Ok(a) => f.assignee_id = Some(a),
                Err(_) => bad("must be a user id"),
            },
            "priority" => match priority(&v) {
                Some(p) => f.priority = Some(p),
                None => bad("must be low, medium, high or urgent"),
            },
            "label" if v.trim().is_empty() => bad("must not be empty"),
            "label" => f.label = Some(v.trim().to_string()),
            "due_before" | "due_after" => match filter_date(&k, &v) {
                Ok(d) if k == "due_before" => f.due_before = Some(d),
                Ok(d) => f.due_after = Some(d),
                Err(e) => errors.push(e),
            },
            "q" if v.chars().count() > 200 => bad("must be at most 200 characters"),
            "q" => f.q = Some(v),
            _ => {}
        }
    }
    if errors.is_empty() { Ok((list, page)) } else { Err(Problem::invalid(errors)) }
}

#[utoipa::path(get, path = "/api/projects/{id}/tasks", tag = "tasks",
    params(("id" = Uuid, Path), ("status" = Option<TaskStatus>, Query), ("assignee_id" = Option<Uuid>, Query),
           ("priority" = Option<Priority>, Query), ("label" = Option<String>, Query),
           ("due_before" = Option<String>, Query, description = "YYYY-MM-DD, exclusive"),
           ("due_after" = Option<String>, Query, description = "YYYY-MM-DD, exclusive"),
           ("q" = Option<String>, Query, description = "case-insensitive substring of title or description"),
           ("sort" = Option<String>, Query,
            description = "position (default), due_date, priority, created_at, updated_at; `-` for descending"),
           ("limit" = Option<u32>, Query, description = "1–100, default 20"), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<Task>), (status = 404, description = "no such project, or not a member"),
              (status = 422, description = "a bad or unknown parameter, or a cursor of another list")))]
pub(super) async fn list_tasks(
    State(svc): Svc,
    Authenticated(id): Authenticated,
    path: Result<Path<String>, PathRejection>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Page<Task>>, Problem> {
    let project_id = path_id(path)?;
    let Query(pairs) = q.map_err(|e| Problem::bad_request(format!("malformed query string: {}", e.body_text())))?;
    let (list, page) = list_request(pairs)?;
    Ok(Json(svc.list_tasks(Actor::from(&id), project_id, list, page).await?))
}

#[utoipa::path(post, path = "/api/projects/{id}/tasks", tag = "tasks", params(("id" = Uuid, Path)),
    request_body = CreateTask,
    responses((status = 201, body = Task), (status = 403, description = "viewers and guests cannot write"),
              (status = 404, description = "no such project, or not a member"),
              (status = 422, description = "invalid fields, every one named")))]
pub(super) async fn create_task(
    State(svc): Svc,
    Authenticated(id): Authenticated,
    path: Result<Path<String>, PathRejection>,
    Json(body): Json<CreateTask>,
) -> Result<Response, Problem> {
    let project_id = path_id(path)?;
    let task = svc.create_task(Actor::from(&id), project_id, body).await?;
    Ok(created(format!("/api/tasks/{}", task.id), task))
}

/// The task with its `ETag`.
fn with_etag(task: Task) -> Response {
    let tag = task_etag(task.updated_at);
    let mut res = Json(task).into_response();
    if let Ok(v) = HeaderValue::from_str(&tag) {
        res.headers_mut().insert(header::ETAG, v);
    }
    res
}

#[utoipa::path(get, path = "/api/tasks/{id}", tag = "tasks", params(("id" = Uuid, Path)),
    responses((status = 200, body = Task, headers(("ETag" = String))),
              (status = 404, description = "no such task, or not a member of its project")))]
pub(super) async fn get_task(
    State(svc): Svc,
    Authenticated(id): Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    let task_id = path_id(path)?;
    Ok(with_etag(svc.get_task(Actor::from(&id), task_id).await?))
}

#[utoipa::path(patch, path = "/api/tasks/{id}", tag = "tasks", request_body = UpdateTask,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "the task's `ETag`")),
    responses((status = 200, body = Task, headers(("ETag" = String))),
              (status = 403, description = "viewers and guests cannot change tasks"),
              (status = 404, description = "no such task, or not a member of its project"),
              (status = 409, description = "changed meanwhile, again and again (no `If-Match`)"),
              (status = 412, description = "`If-Match` names an older version"),
              (status = 422, description = "invalid fields, or a neighbour that is not in the target column")))]
pub(super) async fn update_task(
    State(svc): Svc,
    Authenticated(id): Authenticated,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    Json(body): Json<UpdateTask>,
) -> Result<Response, Problem> {
    let task_id = path_id(path)?;
    Ok(with_etag(svc.update_task(Actor::from(&id), task_id, body, if_match(&headers)?).await?))
}

#[utoipa::path(delete, path = "/api/tasks/{id}", tag = "tasks",
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "the task's `ETag`")),
    responses((status = 204, description = "deleted"), (status = 403, description = "viewers and guests cannot delete"),
              (status = 404, description = "no such task, or not a member of its project"),
              (status = 412, description = "`If-Match` names an older version")))]
pub(super) async fn delete_task(
    State(svc): Svc,
    Authenticated(id): Authenticated,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<StatusCode, Problem> {
    let task_id = path_id(path)?;
    svc.delete_task(Actor::from(&id), task_id, if_match(&headers)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The OpenAPI paths of the task routes.
pub(super) fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(list_tasks, create_task, get_task, update_task, delete_task))]
    struct Doc;
    <Doc as utoipa::OpenApi>::openapi()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::TaskFilter;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn every_parameter_is_understood() {
        let (list, page) = list_request(pairs(&[
            ("status", "done"),
            ("priority", "urgent"),
            ("label", " bug "),
            ("due_before", "2030-01-02"),
            ("due_after", "2029-01-02"),
            ("q", "Moon"),
            ("sort", "-due_date"),
            ("limit", "5"),
            ("cursor", "abc"),
        ]))
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(list.order, TaskOrder { sort: TaskSort::DueDate, descending: true });
        assert_eq!(list.filter.label.as_deref(), Some("bug"));
        assert_eq!(list.filter.due_before.map(|d| d.to_string()).as_deref(), Some("2030-01-02"));
        assert_eq!(list.filter.due_after.map(|d| d.to_string()).as_deref(), Some("2029-01-02"));
        assert_eq!((page.limit, page.cursor.as_deref()), (Some(5), Some("abc")));
        assert!(matches!(
            list.filter,
            TaskFilter { status: Some(TaskStatus::Done), priority: Some(Priority::Urgent), .. }
        ));
    }

    #[test]
    fn unknown_and_repeated_parameters_are_refused() {
        let e = list_request(pairs(&[("stauts", "done"), ("page", "2")])).err();
        let errors = e.map(|p| p.errors.iter().map(|f| f.field.clone()).collect::<Vec<_>>());
        assert_eq!(errors, Some(vec!["stauts".to_string(), "page".to_string()]));
        assert!(list_request(pairs(&[("sort", "position"), ("sort", "priority")])).is_err());
        let e = list_request(pairs(&[("sort", "title"), ("due_after", "soon"), ("label", " ")])).err();
        assert_eq!(e.map(|p| p.errors.len()), Some(3));
    }
}
