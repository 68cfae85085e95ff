//! The HTTP API through `router()` with `oneshot`: routes and status codes of docs/API.md, problem+json
//! for every failure, 404 for ids that are not UUIDs.

use std::sync::Arc;

use api::users::Role;
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use platform::clock::SystemClock;
use platform::http::Caller;
use platform::identity::Identity;
use platform::ids::new_id;
use projects::ProjectsService;
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

use crate::Backend;

crate::backend_suite!(
    create_then_read_projects_and_tasks,
    ids_that_are_not_uuids_are_404_problems,
    guests_get_403_and_strangers_404,
    bad_query_strings_are_problems,
    bad_bodies_are_problems,
    requests_without_a_caller_are_401,
);

pub(crate) struct App {
    router: Router,
}

pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) content_type: String,
    pub(crate) location: Option<String>,
    pub(crate) etag: Option<String>,
    pub(crate) body: Value,
}

pub(crate) fn identity(role: Role) -> Identity {
    Identity {
        user_id: new_id(),
        role,
        session_id: new_id(),
        token_id: "jti".into(),
        issued_at: 0,
        expires_at: i64::MAX,
        mfa: false,
        admin_needs_mfa: false,
    }
}

impl App {
    pub(crate) fn new(b: &Backend) -> App {
        let svc = Arc::new(ProjectsService::new(Arc::clone(&b.store), Arc::new(SystemClock), None));
        App { router: projects::router(svc) }
    }

    pub(crate) async fn call(&self, who: Option<&Identity>, method: Method, uri: &str, body: Option<Value>) -> Answer {
        let mut req = Request::builder().method(method).uri(uri);
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let mut req = req
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .unwrap_or_else(|e| panic!("request: {e}"));
        if let Some(who) = who {
            // What the gateway does once it verified the token.
            req.extensions_mut().insert(Caller(who.clone()));
        }
        self.send(req).await
    }

    pub(crate) async fn send(&self, req: Request<Body>) -> Answer {
        let res = self.router.clone().oneshot(req).await.unwrap_or_else(|e| match e {});
        let status = res.status();
        let header = |h| res.headers().get(h).and_then(|v| v.to_str().ok()).map(str::to_string);
        let content_type = header(header::CONTENT_TYPE).unwrap_or_default();
        let location = header(header::LOCATION);
        let etag = header(header::ETAG);
        let bytes = res.into_body().collect().await.unwrap_or_else(|e| panic!("body: {e}")).to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer { status, content_type, location, etag, body }
    }
}

pub(crate) fn assert_problem(a: &Answer, status: StatusCode) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.content_type, "application/problem+json");
    assert_eq!(a.body["status"], json!(status.as_u16()));
}

pub(crate) fn id_of(a: &Answer) -> Uuid {
    a.body["id"].as_str().and_then(|s| Uuid::parse_str(s).ok()).unwrap_or_else(|| panic!("no id in {}", a.body))
}

async fn create_then_read_projects_and_tasks(b: &Backend) {
    let app = App::new(b);
    let alice = identity(Role::User);
    let created = app
        .call(Some(&alice), Method::POST, "/api/projects", Some(json!({"name": "Apollo", "description": "Moon"})))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.content_type, "application/json");
    let pid = id_of(&created);
    assert_eq!(created.location.as_deref(), Some(format!("/api/projects/{pid}").as_str()));
    assert_eq!(created.body["role"], "owner");
    assert_eq!(created.body["owner_id"], json!(alice.user_id));

    let got = app.call(Some(&alice), Method::GET, &format!("/api/projects/{pid}"), None).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, created.body);

    let list = app.call(Some(&alice), Method::GET, "/api/projects?limit=10", None).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body, json!({"items": [created.body], "next_cursor": null}));

    let tasks_uri = format!("/api/projects/{pid}/tasks");
    let t1 = app.call(Some(&alice), Method::POST, &tasks_uri, Some(json!({"title": "One"}))).await;
    assert_eq!(t1.status, StatusCode::CREATED, "{}", t1.body);
    assert_eq!(t1.location, Some(format!("/api/tasks/{}", id_of(&t1))));
    assert_eq!(
        (&t1.body["status"], &t1.body["priority"], &t1.body["labels"]),
        (&json!("todo"), &json!("medium"), &json!([]))
    );
    let t2 = app
        .call(
            Some(&alice),
            Method::POST,
            &tasks_uri,
            Some(json!({"title": "Two", "status": "in_progress", "priority": "high"})),
        )
        .await;
    assert_eq!(t2.status, StatusCode::CREATED, "{}", t2.body);

    let page1 = app.call(Some(&alice), Method::GET, &format!("{tasks_uri}?limit=1"), None).await;
    assert_eq!(page1.body["items"], json!([t1.body]));
    let cursor = page1.body["next_cursor"].as_str().unwrap_or_else(|| panic!("no cursor: {}", page1.body)).to_string();
    let page2 = app.call(Some(&alice), Method::GET, &format!("{tasks_uri}?limit=1&cursor={cursor}"), None).await;
    assert_eq!(page2.body, json!({"items": [t2.body], "next_cursor": null}));
    let filtered = app.call(Some(&alice), Method::GET, &format!("{tasks_uri}?status=in_progress"), None).await;
    assert_eq!(filtered.body["items"], json!([t2.body]));
}

async fn ids_that_are_not_uuids_are_404_problems(b: &Backend) {
    let app = App::new(b);
    let alice = identity(Role::User);
    for (method, uri) in [
        (Method::GET, "/api/projects/not-a-uuid"),
        (Method::GET, "/api/projects/123/tasks"),
        (Method::GET, "/api/projects/%FF%FE"),
    ] {
        let a = app.call(Some(&alice), method, uri, None).await;
        assert_problem(&a, StatusCode::NOT_FOUND);
    }
    let a = app.call(Some(&alice), Method::POST, "/api/projects/nope/tasks", Some(json!({"title": "x"}))).await;
    assert_problem(&a, StatusCode::NOT_FOUND);
    let a = app.call(Some(&alice), Method::GET, &format!("/api/projects/{}", new_id()), None).await;
    assert_problem(&a, StatusCode::NOT_FOUND);
}

async fn guests_get_403_and_strangers_404(b: &Backend) {
    let app = App::new(b);
    let alice = identity(Role::User);
    let pid = id_of(&app.call(Some(&alice), Method::POST, "/api/projects", Some(json!({"name": "P"}))).await);
    let guest = identity(Role::Guest);
    b.add_member(pid, guest.user_id, api::projects::ProjectRole::Editor).await;
    let tasks_uri = format!("/api/projects/{pid}/tasks");

    let a = app.call(Some(&guest), Method::POST, &tasks_uri, Some(json!({"title": "x"}))).await;
    assert_problem(&a, StatusCode::FORBIDDEN);
    let a = app.call(Some(&guest), Method::POST, "/api/projects", Some(json!({"name": "x"}))).await;
    assert_problem(&a, StatusCode::FORBIDDEN);
    let a = app.call(Some(&guest), Method::GET, &tasks_uri, None).await;
    assert_eq!(a.status, StatusCode::OK);

    let stranger = identity(Role::User);
    let a = app.call(Some(&stranger), Method::POST, &tasks_uri, Some(json!({"title": "x"}))).await;
    assert_problem(&a, StatusCode::NOT_FOUND);
    let a = app.call(Some(&stranger), Method::GET, &format!("/api/projects/{pid}"), None).await;
    assert_problem(&a, StatusCode::NOT_FOUND);

    let root = identity(Role::Admin);
    let a = app.call(Some(&root), Method::GET, &format!("/api/projects/{pid}"), None).await;
    assert_eq!((a.status, &a.body["role"]), (StatusCode::OK, &json!("owner")));
}

async fn bad_query_strings_are_problems(b: &Backend) {
    let app = App::new(b);
    let alice = identity(Role::User);
    let pid = id_of(&app.call(Some(&alice), Method::POST, "/api/projects", Some(json!({"name": "P"}))).await);
    for uri in [
        "/api/projects?limit=abc".to_string(),
        "/api/projects?limit=0".to_string(),
        "/api/projects?limit=101".to_string(),
        "/api/projects?limit=-1".to_string(),
        "/api/projects?cursor=%21%21".to_string(),
        format!("/api/projects/{pid}/tasks?status=doing"),
        format!("/api/projects/{pid}/tasks?cursor=abc"),
    ] {
        let a = app.call(Some(&alice), Method::GET, &uri, None).await;
        assert_problem(&a, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(a.body["errors"][0]["field"].is_string(), "{uri}: {}", a.body);
    }
    let a = app.call(Some(&alice), Method::GET, "/api/projects?limit=1&limit=2", None).await;
    assert_problem(&a, StatusCode::BAD_REQUEST);
}

async fn bad_bodies_are_problems(b: &Backend) {
    let app = App::new(b);
    let alice = identity(Role::User);
    let a = app.call(Some(&alice), Method::POST, "/api/projects", Some(json!({"name": ""}))).await;
    assert_problem(&a, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.body["errors"][0]["field"], "name");
    let a = app.call(Some(&alice), Method::POST, "/api/projects", Some(json!({"name": "x", "owner_id": "me"}))).await;
    assert_problem(&a, StatusCode::UNPROCESSABLE_ENTITY);
    let a = app.call(Some(&alice), Method::POST, "/api/projects", Some(json!({"title": "no name"}))).await;
    assert_problem(&a, StatusCode::UNPROCESSABLE_ENTITY);

    let mut req = Request::builder()
        .method(Method::POST)
        .uri("/api/projects")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{not json"))
        .unwrap_or_else(|e| panic!("{e}"));
    req.extensions_mut().insert(Caller(alice.clone()));
    assert_problem(&app.send(req).await, StatusCode::BAD_REQUEST);
    assert_eq!(b.count("projects").await, 0);
}

async fn requests_without_a_caller_are_401(b: &Backend) {
    let app = App::new(b);
    for (method, uri) in [(Method::GET, "/api/projects"), (Method::POST, "/api/projects")] {
        let a = app.call(None, method, uri, Some(json!({"name": "x"}))).await;
        assert_problem(&a, StatusCode::UNAUTHORIZED);
    }
    let a = app.call(None, Method::GET, &format!("/api/projects/{}", new_id()), None).await;
    assert_problem(&a, StatusCode::UNAUTHORIZED);
    assert_eq!(b.count("projects").await, 0);
}
