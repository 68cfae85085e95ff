//! `Idempotency-Key` on the projects router (`projects::router` layers it on every route), over
//! HTTP with `oneshot`: a replayed POST writes once (one row, one outbox event), another body is
//! 422, a duplicate while the first runs is 409 and never a second write, keys are per user, a
//! day-old key is forgotten, a 5xx is not kept, and requests without the header are unchanged.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use api::ApiError;
use api::users::{NewUser, Role, User, UserStatus, UsersApi};
use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use platform::clock::{ManualClock, SystemClock};
use platform::http::Caller;
use platform::http::idempotency::{IDEMPOTENCY_KEY, Idempotency};
use platform::identity::Identity;
use platform::ids::new_id;
use projects::ProjectsService;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use tokio::sync::Notify;
use tower::ServiceExt;
use uuid::Uuid;

use crate::Backend;

crate::backend_suite!(
    a_replayed_create_writes_once,
    another_body_is_422_and_users_do_not_share_keys,
    a_duplicate_while_the_first_runs_never_writes_twice,
    a_day_old_key_is_forgotten,
    a_server_error_is_not_kept,
    requests_without_the_header_are_unchanged,
    stored_answers_are_exported_and_erased_with_the_user,
);

/// The users service's side: every user exists and is active; while `hold` is set, lookups wait
/// for `release` (a slow dependency), and while `down` is set they fail (503).
#[derive(Default)]
struct Users {
    hold: AtomicBool,
    down: AtomicBool,
    entered: Notify,
    release: Notify,
}

#[async_trait]
impl UsersApi for Users {
    async fn create_user(&self, _: NewUser) -> Result<User, ApiError> {
        Err(ApiError::Forbidden)
    }
    async fn get_user(&self, id: Uuid) -> Result<User, ApiError> {
        if self.hold.load(Ordering::SeqCst) {
            self.entered.notify_one();
            self.release.notified().await;
        }
        if self.down.load(Ordering::SeqCst) {
            return Err(ApiError::Unavailable("users service down".into()));
        }
        let now = OffsetDateTime::now_utc();
        Ok(User {
            id,
            email: format!("{}@example.com", id.simple()),
            name: "Someone".into(),
            role: Role::User,
            status: UserStatus::Active,
            email_verified: true,
            mfa_enabled: false,
            created_at: now,
            updated_at: now,
        })
    }
    async fn find_by_email(&self, _: &str) -> Result<User, ApiError> {
        Err(ApiError::NotFound)
    }
    async fn set_mfa_enabled(&self, _: Uuid, _: bool) -> Result<(), ApiError> {
        Ok(())
    }
    async fn discard_new_user(&self, _: Uuid) -> Result<(), ApiError> {
        Ok(())
    }
    async fn set_email_verified(&self, _: Uuid) -> Result<(), ApiError> {
        Ok(())
    }
    async fn notification_settings(&self, _: Uuid) -> Result<api::users::NotificationSettings, ApiError> {
        Ok(api::users::NotificationSettings { task_assigned: true, mentioned: true, comments: true })
    }
}

struct App {
    router: Router,
    svc: Arc<ProjectsService>,
    users: Arc<Users>,
    clock: Arc<ManualClock>,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn replayed(&self) -> bool {
        self.headers.get("idempotent-replayed").is_some_and(|v| v == "true")
    }
}

fn identity() -> Identity {
    Identity {
        user_id: new_id(),
        role: Role::User,
        session_id: new_id(),
        token_id: "jti".into(),
        issued_at: 0,
        expires_at: i64::MAX,
        mfa: false,
        admin_needs_mfa: false,
    }
}

fn request(who: &Identity, uri: &str, key: Option<&str>, body: &Value) -> Request<Body> {
    let mut req = Request::builder().method(Method::POST).uri(uri).header(header::CONTENT_TYPE, "application/json");
    if let Some(key) = key {
        req = req.header(IDEMPOTENCY_KEY, key);
    }
    let mut req = req.body(Body::from(body.to_string())).unwrap();
    req.extensions_mut().insert(Caller(who.clone()));
    req
}

impl App {
    async fn new(b: &Backend) -> App {
        b.db.migrate(&platform::http::idempotency::MIGRATIONS).await.unwrap();
        let svc = Arc::new(ProjectsService::new(Arc::clone(&b.store), Arc::new(SystemClock), None));
        let users = Arc::new(Users::default());
        svc.connect_users(users.clone());
        let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
        let idem = Arc::new(Idempotency::new(&b.db, clock.clone()));
        svc.connect_idempotency(idem.clone());
        App { router: projects::router(svc.clone()).layer(axum::Extension(idem)), svc, users, clock }
    }

    async fn send(&self, req: Request<Body>) -> Answer {
        let res = self.router.clone().oneshot(req).await.unwrap_or_else(|e| match e {});
        let (status, headers) = (res.status(), res.headers().clone());
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        Answer { status, headers, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
    }

    async fn post(&self, who: &Identity, uri: &str, key: Option<&str>, body: Value) -> Answer {
        self.send(request(who, uri, key, &body)).await
    }

    async fn project(&self, owner: &Identity) -> Uuid {
        let a = self.post(owner, "/api/projects", None, json!({"name": "Garden"})).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        Uuid::parse_str(a.body["id"].as_str().unwrap()).unwrap()
    }
}

async fn events(b: &Backend, event_type: &str) -> usize {
    b.outbox().await.iter().filter(|e| e.event_type == event_type).count()
}

async fn a_replayed_create_writes_once(b: &Backend) {
    let app = App::new(b).await;
    let alice = identity();
    let body = json!({"name": "Apollo", "description": "Moon"});
    let first = app.post(&alice, "/api/projects", Some("create-apollo"), body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let again = app.post(&alice, "/api/projects", Some("create-apollo"), body).await;
    assert_eq!((again.status, &again.body), (StatusCode::CREATED, &first.body), "the identical answer");
    assert_eq!(again.headers.get(header::LOCATION), first.headers.get(header::LOCATION));
    assert_eq!(again.headers[header::CONTENT_TYPE], "application/json");
    assert!(again.replayed() && !first.replayed());
    assert_eq!(b.count("projects").await, 1, "one project");
    assert_eq!(events(b, "project.created").await, 1, "one event");

    // Tasks too: every POST route of the router is covered.
    let pid = first.body["id"].as_str().unwrap();
    let uri = format!("/api/projects/{pid}/tasks");
    let t1 = app.post(&alice, &uri, Some("task-1"), json!({"title": "One"})).await;
    let t2 = app.post(&alice, &uri, Some("task-1"), json!({"title": "One"})).await;
    assert_eq!((t1.status, &t1.body), (t2.status, &t2.body));
    assert!(t2.replayed());
    assert_eq!(b.count("tasks").await, 1);
    assert_eq!(events(b, "task.created").await, 1);
}

async fn another_body_is_422_and_users_do_not_share_keys(b: &Backend) {
    let app = App::new(b).await;
    let (alice, bob) = (identity(), identity());
    let first = app.post(&alice, "/api/projects", Some("k"), json!({"name": "A"})).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let other = app.post(&alice, "/api/projects", Some("k"), json!({"name": "B"})).await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(other.headers[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(other.body["errors"][0]["field"], "Idempotency-Key");
    // Bob's "k" is his own: his request runs and his project is his.
    let bobs = app.post(&bob, "/api/projects", Some("k"), json!({"name": "A"})).await;
    assert_eq!(bobs.status, StatusCode::CREATED);
    assert!(!bobs.replayed());
    assert_eq!(bobs.body["owner_id"], json!(bob.user_id));
    assert_eq!(b.count("projects").await, 2);
    // A bad key is a 400 problem and writes nothing.
    let bad = app.post(&alice, "/api/projects", Some(&"x".repeat(256)), json!({"name": "C"})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(b.count("projects").await, 2);
}

async fn a_duplicate_while_the_first_runs_never_writes_twice(b: &Backend) {
    let app = App::new(b).await;
    let alice = identity();
    let pid = app.project(&alice).await;
    let uri = format!("/api/projects/{pid}/members");
    let body = json!({"user_id": new_id(), "role": "editor"});
    app.users.hold.store(true, Ordering::SeqCst);
    let first = tokio::spawn(app.router.clone().oneshot(request(&alice, &uri, Some("add-1"), &body)));
    app.users.entered.notified().await;
    let second = app.post(&alice, &uri, Some("add-1"), body.clone()).await;
    assert_eq!(second.status, StatusCode::CONFLICT, "{}", second.body);
    assert_eq!(second.headers[header::RETRY_AFTER], "1");
    app.users.hold.store(false, Ordering::SeqCst);
    app.users.release.notify_one();
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let third = app.post(&alice, &uri, Some("add-1"), body).await;
    assert_eq!(third.status, StatusCode::CREATED);
    assert!(third.replayed());
    assert_eq!(b.count("project_members").await, 2, "the owner and one new member");
    assert_eq!(events(b, "member.changed").await, 1, "one write, one event");

    // Many at once, nothing held: each answer is the write or a 409, and there is one write.
    let body = json!({"name": "Raced"});
    let sends: Vec<_> = (0..6)
        .map(|_| tokio::spawn(app.router.clone().oneshot(request(&alice, "/api/projects", Some("race"), &body))))
        .collect();
    for send in sends {
        let status = send.await.unwrap().unwrap().status();
        assert!(status == StatusCode::CREATED || status == StatusCode::CONFLICT, "{status}");
    }
    assert_eq!(b.count("projects").await, 2, "Garden and one Raced");
}

async fn a_day_old_key_is_forgotten(b: &Backend) {
    let app = App::new(b).await;
    let alice = identity();
    let body = json!({"name": "Daily"});
    app.post(&alice, "/api/projects", Some("daily"), body.clone()).await;
    app.clock.advance(Duration::hours(24) - Duration::seconds(1));
    assert!(app.post(&alice, "/api/projects", Some("daily"), body.clone()).await.replayed());
    app.clock.advance(Duration::seconds(1));
    let later = app.post(&alice, "/api/projects", Some("daily"), body).await;
    assert_eq!(later.status, StatusCode::CREATED);
    assert!(!later.replayed(), "after 24 hours the key is new again");
    assert_eq!(b.count("projects").await, 2);
}

async fn a_server_error_is_not_kept(b: &Backend) {
    let app = App::new(b).await;
    let alice = identity();
    let pid = app.project(&alice).await;
    let uri = format!("/api/projects/{pid}/members");
    let body = json!({"user_id": new_id(), "role": "viewer"});
    app.users.down.store(true, Ordering::SeqCst);
    let failed = app.post(&alice, &uri, Some("retry-me"), body.clone()).await;
    assert_eq!(failed.status, StatusCode::SERVICE_UNAVAILABLE, "{}", failed.body);
    app.users.down.store(false, Ordering::SeqCst);
    let retried = app.post(&alice, &uri, Some("retry-me"), body).await;
    assert_eq!(retried.status, StatusCode::CREATED, "the retry ran: {}", retried.body);
    assert!(!retried.replayed());
    assert_eq!(events(b, "member.changed").await, 1);
}

async fn requests_without_the_header_are_unchanged(b: &Backend) {
    let app = App::new(b).await;
    let alice = identity();
    let body = json!({"name": "Twice"});
    let a = app.post(&alice, "/api/projects", None, body.clone()).await;
    let c = app.post(&alice, "/api/projects", None, body).await;
    assert_eq!((a.status, c.status), (StatusCode::CREATED, StatusCode::CREATED));
    assert!(!a.replayed() && !c.replayed());
    assert_ne!(a.body["id"], c.body["id"]);
    assert_eq!(b.count("projects").await, 2);
    assert_eq!(b.count("idempotency_keys").await, 0);
    // Other methods ignore the header.
    let pid = a.body["id"].as_str().unwrap();
    let mut get =
        Request::get(format!("/api/projects/{pid}")).header(IDEMPOTENCY_KEY, "k").body(Body::empty()).unwrap();
    get.extensions_mut().insert(Caller(alice.clone()));
    assert_eq!(app.send(get).await.status, StatusCode::OK);
    assert_eq!(b.count("idempotency_keys").await, 0);
}

/// The stored answers hold personal data for a day: they are in the user's GDPR export, and an
/// erasure deletes them at once (the key then runs afresh).
async fn stored_answers_are_exported_and_erased_with_the_user(b: &Backend) {
    use api::personal::{DataSubject, PersonalDataApi};
    let app = App::new(b).await;
    let (alice, bob) = (identity(), identity());
    let body = json!({"name": "Alice's secret garden"});
    let first = app.post(&alice, "/api/projects", Some("k"), body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED);
    app.post(&bob, "/api/projects", Some("k"), json!({"name": "Bob's"})).await;

    let subject = |who: &Identity| DataSubject { user_id: who.user_id, email: None };
    let export = app.svc.export(&subject(&alice)).await.unwrap();
    let rows = &export.tables["idempotency_keys"];
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["status"], 201);
    assert!(rows[0]["body"].as_str().is_some_and(|t| t.contains("Alice's secret garden")), "{rows:?}");
    assert!(!serde_json::to_string(&export).unwrap().contains("Bob's"), "only Alice's rows");

    let report = app.svc.erase(&subject(&alice)).await.unwrap();
    assert_eq!(report.tables["idempotency_keys"], 1);
    assert!(app.svc.export(&subject(&alice)).await.unwrap().tables["idempotency_keys"].is_empty());
    let again = app.post(&alice, "/api/projects", Some("k"), body).await;
    assert!(!again.replayed(), "the erased answer is not replayed");
    assert_eq!(app.svc.export(&subject(&bob)).await.unwrap().tables["idempotency_keys"].len(), 1, "Bob's stays");
}
