//! The task routes through `router()`: `GET, PATCH, DELETE /api/tasks/{id}` with `ETag` and
//! `If-Match`, the strict list query string, and problem+json for every bad input.

use api::projects::ProjectRole;
use api::users::Role;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use platform::http::Caller;
use platform::identity::Identity;
use platform::ids::new_id;
use serde_json::{Value, json};

use crate::Backend;
use crate::http::{Answer, App, assert_problem, id_of, identity};

crate::backend_suite!(
    read_change_and_delete_a_task_with_etags,
    task_ids_that_are_not_uuids_are_404,
    bad_task_bodies_are_problems,
    list_query_strings_are_strict,
    viewers_get_403_and_strangers_404_on_tasks,
);

async fn with_if_match(app: &App, who: &Identity, method: Method, uri: &str, tag: &str, body: Option<Value>) -> Answer {
    let mut req = Request::builder().method(method).uri(uri).header(header::IF_MATCH, tag);
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let mut req = req
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap_or_else(|e| panic!("request: {e}"));
    req.extensions_mut().insert(Caller(who.clone()));
    app.send(req).await
}

async fn project(app: &App, who: &Identity) -> String {
    let a = app.call(Some(who), Method::POST, "/api/projects", Some(json!({"name": "P"}))).await;
    format!("/api/projects/{}/tasks", id_of(&a))
}

async fn read_change_and_delete_a_task_with_etags(b: &Backend) {
    let app = App::new(b);
    let alice = identity(Role::User);
    let tasks = project(&app, &alice).await;
    let body = json!({"title": "One", "due_date": "2030-05-06", "labels": ["a", "a", "b"], "priority": "high"});
    let created = app.call(Some(&alice), Method::POST, &tasks, Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["labels"], json!(["a", "b"]));
    let uri = created.location.clone().unwrap_or_else(|| panic!("no location"));

    let got = app.call(Some(&alice), Method::GET, &uri, None).await;
    assert_eq!((got.status, &got.body), (StatusCode::OK, &created.body));
    let tag = got.etag.clone().unwrap_or_else(|| panic!("no ETag"));

    let patched =
        with_if_match(&app, &alice, Method::PATCH, &uri, &tag, Some(json!({"title": "Two", "due_date": null}))).await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!((&patched.body["title"], &patched.body["due_date"]), (&json!("Two"), &Value::Null));
    assert_eq!(patched.body["priority"], "high", "absent fields stay");
    let new_tag = patched.etag.clone().unwrap_or_else(|| panic!("no ETag on PATCH"));
    assert_ne!(new_tag, tag);

    let stale = with_if_match(&app, &alice, Method::PATCH, &uri, &tag, Some(json!({"title": "Three"}))).await;
    assert_problem(&stale, StatusCode::PRECONDITION_FAILED);
    let stale = with_if_match(&app, &alice, Method::DELETE, &uri, &tag, None).await;
    assert_problem(&stale, StatusCode::PRECONDITION_FAILED);

    // A move between columns through PATCH.
    let second = app.call(Some(&alice), Method::POST, &tasks, Some(json!({"title": "Other", "status": "done"}))).await;
    let moved =
        app.call(Some(&alice), Method::PATCH, &uri, Some(json!({"status": "done", "before_id": id_of(&second)}))).await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    let list = app.call(Some(&alice), Method::GET, &format!("{tasks}?status=done"), None).await;
    let titles: Vec<&Value> =
        list.body["items"].as_array().map(|a| a.iter().map(|t| &t["title"]).collect()).unwrap_or_default();
    assert_eq!(titles, [&json!("Two"), &json!("Other")]);

    let deleted = with_if_match(&app, &alice, Method::DELETE, &uri, &moved.etag.unwrap_or_default(), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_problem(&app.call(Some(&alice), Method::GET, &uri, None).await, StatusCode::NOT_FOUND);
}

async fn task_ids_that_are_not_uuids_are_404(b: &Backend) {
    let app = App::new(b);
    let alice = identity(Role::User);
    for method in [Method::GET, Method::DELETE] {
        assert_problem(&app.call(Some(&alice), method, "/api/tasks/not-a-uuid", None).await, StatusCode::NOT_FOUND);
    }
    let a = app.call(Some(&alice), Method::PATCH, "/api/tasks/123", Some(json!({"title": "x"}))).await;
    assert_problem(&a, StatusCode::NOT_FOUND);
    let a = app.call(Some(&alice), Method::GET, &format!("/api/tasks/{}", new_id()), None).await;
    assert_problem(&a, StatusCode::NOT_FOUND);
    assert_problem(
        &app.call(None, Method::GET, &format!("/api/tasks/{}", new_id()), None).await,
        StatusCode::UNAUTHORIZED,
    );
}

async fn bad_task_bodies_are_problems(b: &Backend) {
    let app = App::new(b);
    let alice = identity(Role::User);
    let tasks = project(&app, &alice).await;
    let bad = json!({"title": "", "due_date": "2030-13-01", "labels": ["x".repeat(51)]});
    let a = app.call(Some(&alice), Method::POST, &tasks, Some(bad)).await;
    assert_problem(&a, StatusCode::UNPROCESSABLE_ENTITY);
    let named: Vec<&Value> =
        a.body["errors"].as_array().map(|e| e.iter().map(|e| &e["field"]).collect()).unwrap_or_default();
    assert_eq!(named, [&json!("title"), &json!("due_date"), &json!("labels")]);
    let t = app.call(Some(&alice), Method::POST, &tasks, Some(json!({"title": "ok"}))).await;
    let uri = format!("/api/tasks/{}", id_of(&t));
    // Fields that are not writable are refused like any unknown field.
    for body in [json!({"position": "a"}), json!({"project_id": new_id()}), json!({"created_by": new_id()})] {
        assert_problem(
            &app.call(Some(&alice), Method::PATCH, &uri, Some(body)).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    let a = app.call(Some(&alice), Method::PATCH, &uri, Some(json!({"after_id": id_of(&t)}))).await;
    assert_problem(&a, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.body["errors"][0]["field"], "after_id");
    let mut req = Request::builder()
        .method(Method::PATCH)
        .uri(&uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{not json"))
        .unwrap_or_else(|e| panic!("{e}"));
    req.extensions_mut().insert(Caller(alice.clone()));
    assert_problem(&app.send(req).await, StatusCode::BAD_REQUEST);
    let got = app.call(Some(&alice), Method::GET, &uri, None).await;
    assert_eq!(got.body, t.body, "nothing changed");
}

async fn list_query_strings_are_strict(b: &Backend) {
    let app = App::new(b);
    let alice = identity(Role::User);
    let tasks = project(&app, &alice).await;
    for (query, field) in [
        ("stauts=done", "stauts"),
        ("sort=title", "sort"),
        ("sort=--priority", "sort"),
        ("priority=huge", "priority"),
        ("assignee_id=me", "assignee_id"),
        ("due_before=tomorrow", "due_before"),
        ("due_after=2030-02-30", "due_after"),
        ("limit=0", "limit"),
        ("limit=1000000", "limit"),
        ("cursor=abc", "cursor"),
    ] {
        let a = app.call(Some(&alice), Method::GET, &format!("{tasks}?{query}"), None).await;
        assert_problem(&a, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(a.body["errors"][0]["field"], field, "{query}");
    }
    let a = app.call(Some(&alice), Method::GET, &format!("{tasks}?sort=priority&sort=-priority"), None).await;
    assert_problem(&a, StatusCode::BAD_REQUEST);
    let ok = "?status=todo&priority=low&label=x&due_before=2030-01-01&due_after=2029-01-01&q=a&sort=-due_date&limit=5";
    let a = app.call(Some(&alice), Method::GET, &format!("{tasks}{ok}"), None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}

async fn viewers_get_403_and_strangers_404_on_tasks(b: &Backend) {
    let app = App::new(b);
    let alice = identity(Role::User);
    let tasks = project(&app, &alice).await;
    let t = app.call(Some(&alice), Method::POST, &tasks, Some(json!({"title": "t"}))).await;
    let uri = format!("/api/tasks/{}", id_of(&t));
    let pid = t.body["project_id"].as_str().and_then(|s| uuid::Uuid::parse_str(s).ok()).unwrap_or_default();
    let viewer = identity(Role::User);
    b.add_member(pid, viewer.user_id, ProjectRole::Viewer).await;
    assert_eq!(app.call(Some(&viewer), Method::GET, &uri, None).await.status, StatusCode::OK);
    let a = app.call(Some(&viewer), Method::PATCH, &uri, Some(json!({"title": "v"}))).await;
    assert_problem(&a, StatusCode::FORBIDDEN);
    assert_problem(&app.call(Some(&viewer), Method::DELETE, &uri, None).await, StatusCode::FORBIDDEN);
    let stranger = identity(Role::User);
    for (method, body) in [(Method::GET, None), (Method::PATCH, Some(json!({"title": "s"}))), (Method::DELETE, None)] {
        assert_problem(&app.call(Some(&stranger), method, &uri, body).await, StatusCode::NOT_FOUND);
    }
}
