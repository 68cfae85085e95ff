//! Comments over real stores and through the router: who may write, change and delete them per
//! role, `If-Match` (412) checked by the store, events, and comments going with their task or
//! project.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use api::ApiError;
use api::projects::{ChangeMember, CreateComment, CreateProject, CreateTask, ProjectRole, UpdateComment};
use api::users::Role;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use platform::clock::SystemClock;
use platform::db::Database;
use platform::http::Caller;
use platform::identity::Identity;
use platform::ids::new_id;
use projects::ProjectsService;
use projects::service::{Actor, ChangeError, PageRequest, comment_etag};
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

use crate::Backend;

crate::backend_suite!(
    owners_and_editors_comment_viewers_guests_and_strangers_do_not,
    only_the_author_edits_and_authors_owners_admins_delete,
    stale_if_match_is_412_and_the_store_checks_it_atomically,
    comment_events_carry_what_a_live_client_needs,
    comments_go_with_their_task_and_project,
    comments_over_http,
);

pub fn service(b: &Backend) -> ProjectsService {
    ProjectsService::new(Arc::clone(&b.store), Arc::new(SystemClock), None)
}

pub fn user(role: Role) -> Actor {
    Actor { user_id: new_id(), role }
}

pub async fn project(svc: &ProjectsService, owner: Actor, name: &str, description: &str) -> Uuid {
    let input = CreateProject { name: name.into(), description: description.into() };
    svc.create_project(owner, input).await.unwrap().id
}

pub async fn task(svc: &ProjectsService, by: Actor, project_id: Uuid, title: &str, description: &str) -> Uuid {
    let input = CreateTask { title: title.into(), description: description.into(), ..Default::default() };
    svc.create_task(by, project_id, input).await.unwrap().id
}

pub fn say(body: &str) -> CreateComment {
    CreateComment { body: body.into() }
}

fn edit(body: &str) -> UpdateComment {
    UpdateComment { body: body.into() }
}

/// Runs one statement with one id parameter, straight on the database (task changes are another
/// branch's use cases).
pub async fn exec(b: &Backend, sqlite: &'static str, postgres: &'static str, id: Uuid) -> u64 {
    let n = match &b.db {
        Database::Sqlite(db) => {
            db.write(move |tx| tx.execute(sqlite, [id]).map_err(platform::db::sqlite::map_err)).await.map(|n| n as u64)
        }
        Database::Postgres(db) => {
            async {
                let client = db.client().await?;
                client.execute(postgres, &[&id]).await.map_err(platform::db::postgres::map_err)
            }
            .await
        }
    };
    n.unwrap_or_else(|e| panic!("{sqlite}: {e}"))
}

/// A project owned by `owner` with an editor, a viewer and a guest (an editor membership, which a
/// guest holds as a viewer), and one task.
struct Cast {
    owner: Actor,
    editor: Actor,
    viewer: Actor,
    guest: Actor,
    project: Uuid,
    task: Uuid,
}

async fn cast(b: &Backend, svc: &ProjectsService) -> Cast {
    let (owner, editor, viewer, guest) = (user(Role::User), user(Role::User), user(Role::User), user(Role::Guest));
    let project = project(svc, owner, "Garden", "").await;
    b.add_member(project, editor.user_id, ProjectRole::Editor).await;
    b.add_member(project, viewer.user_id, ProjectRole::Viewer).await;
    b.add_member(project, guest.user_id, ProjectRole::Editor).await;
    let task = task(svc, owner, project, "Dig", "").await;
    Cast { owner, editor, viewer, guest, project, task }
}

async fn owners_and_editors_comment_viewers_guests_and_strangers_do_not(b: &Backend) {
    let svc = service(b);
    let c = cast(b, &svc).await;
    let stranger = user(Role::User);
    let admin = user(Role::Admin);
    let first = svc.create_comment(c.owner, c.task, say("First")).await.unwrap();
    assert_eq!((first.task_id, first.project_id, first.author_id), (c.task, c.project, c.owner.user_id));
    svc.create_comment(c.editor, c.task, say("  - indented\n  Markdown\n")).await.unwrap();
    svc.create_comment(admin, c.task, say("An admin, no member")).await.unwrap();
    assert_eq!(svc.create_comment(c.viewer, c.task, say("x")).await.unwrap_err(), ApiError::Forbidden);
    assert_eq!(svc.create_comment(c.guest, c.task, say("x")).await.unwrap_err(), ApiError::Forbidden);
    assert_eq!(svc.create_comment(stranger, c.task, say("x")).await.unwrap_err(), ApiError::NotFound);
    assert_eq!(svc.create_comment(c.owner, new_id(), say("x")).await.unwrap_err(), ApiError::NotFound);
    for bad in ["", " \n ", &"a".repeat(10_001), "bell\u{7}"] {
        let Err(ApiError::Invalid(e)) = svc.create_comment(c.owner, c.task, say(bad)).await else { panic!("{bad:?}") };
        assert_eq!(e[0].field, "body");
    }
    assert_eq!(b.count("comments").await, 3);

    // Every member reads them, oldest first, page by page; strangers see nothing.
    for reader in [c.viewer, c.guest, admin] {
        let all = svc.list_comments(reader, c.task, PageRequest::default()).await.unwrap();
        let bodies: Vec<_> = all.items.iter().map(|c| c.body.as_str()).collect();
        assert_eq!(bodies, ["First", "  - indented\n  Markdown\n", "An admin, no member"]);
    }
    let page = svc.list_comments(c.viewer, c.task, PageRequest { limit: Some(2), cursor: None }).await.unwrap();
    assert_eq!(page.items.len(), 2);
    let rest = PageRequest { limit: Some(2), cursor: page.next_cursor.clone() };
    let page2 = svc.list_comments(c.viewer, c.task, rest).await.unwrap();
    assert_eq!((page2.items.len(), page2.next_cursor), (1, None));
    assert_eq!(svc.list_comments(stranger, c.task, PageRequest::default()).await.unwrap_err(), ApiError::NotFound);
    assert_eq!(svc.get_comment(stranger, first.id).await.unwrap_err(), ApiError::NotFound);
    assert_eq!(svc.get_comment(c.viewer, first.id).await.unwrap(), first);
    let bad = PageRequest { limit: None, cursor: Some("nope".into()) };
    assert!(matches!(svc.list_comments(c.viewer, c.task, bad).await, Err(ApiError::Invalid(_))));
}

async fn only_the_author_edits_and_authors_owners_admins_delete(b: &Backend) {
    let svc = service(b);
    let c = cast(b, &svc).await;
    let stranger = user(Role::User);
    let admin = user(Role::Admin);
    let mine = svc.create_comment(c.editor, c.task, say("Editor's")).await.unwrap();
    let owners = svc.create_comment(c.owner, c.task, say("Owner's")).await.unwrap();

    let edited = svc.update_comment(c.editor, mine.id, edit("Editor's, edited"), None).await.unwrap();
    assert_eq!(edited.body, "Editor's, edited");
    assert!(edited.updated_at > mine.updated_at);
    assert_eq!(edited.created_at, mine.created_at);
    for other in [c.owner, admin, c.viewer] {
        let e = svc.update_comment(other, mine.id, edit("not yours"), None).await.unwrap_err();
        assert_eq!(e, ChangeError::Api(ApiError::Forbidden), "{other:?}");
    }
    let e = svc.update_comment(stranger, mine.id, edit("x"), None).await.unwrap_err();
    assert_eq!(e, ChangeError::Api(ApiError::NotFound));
    let e = svc.update_comment(c.editor, mine.id, edit(""), None).await.unwrap_err();
    assert!(matches!(e, ChangeError::Api(ApiError::Invalid(_))));

    // Demoted to viewer, the author may no longer change their words, but may still take them back.
    svc.change_member(c.owner, c.project, c.editor.user_id, ChangeMember { role: ProjectRole::Viewer }, None)
        .await
        .unwrap();
    let e = svc.update_comment(c.editor, mine.id, edit("again"), None).await.unwrap_err();
    assert_eq!(e, ChangeError::Api(ApiError::Forbidden));
    let e = svc.delete_comment(c.editor, owners.id, None).await.unwrap_err();
    assert_eq!(e, ChangeError::Api(ApiError::Forbidden), "not someone else's");
    svc.delete_comment(c.editor, mine.id, None).await.unwrap();
    assert_eq!(svc.get_comment(c.owner, mine.id).await.unwrap_err(), ApiError::NotFound);
    assert_eq!(svc.delete_comment(c.owner, mine.id, None).await.unwrap_err(), ChangeError::Api(ApiError::NotFound));

    // Owners and admins delete anyone's; strangers get 404.
    let third = svc.create_comment(admin, c.task, say("Admin's")).await.unwrap();
    assert_eq!(svc.delete_comment(stranger, third.id, None).await.unwrap_err(), ChangeError::Api(ApiError::NotFound));
    svc.delete_comment(c.owner, third.id, None).await.unwrap();
    svc.delete_comment(admin, owners.id, None).await.unwrap();
    assert_eq!(b.count("comments").await, 0);
}

async fn stale_if_match_is_412_and_the_store_checks_it_atomically(b: &Backend) {
    let svc = service(b);
    let c = cast(b, &svc).await;
    let v1 = svc.create_comment(c.editor, c.task, say("v1")).await.unwrap();
    let tag1 = comment_etag(v1.updated_at);
    let v2 = svc.update_comment(c.editor, v1.id, edit("v2"), Some(&tag1)).await.unwrap();
    let e = svc.update_comment(c.editor, v1.id, edit("v3"), Some(&tag1)).await.unwrap_err();
    assert_eq!(e, ChangeError::PreconditionFailed);
    assert_eq!(svc.delete_comment(c.editor, v1.id, Some(&tag1)).await.unwrap_err(), ChangeError::PreconditionFailed);
    assert_eq!(svc.get_comment(c.editor, v1.id).await.unwrap().body, "v2");

    // A writer that read v1 and lost the race changes nothing, even past the service's check.
    let mut late = projects::ports::CommentRecord {
        id: v1.id,
        task_id: v1.task_id,
        project_id: v1.project_id,
        author_id: v1.author_id,
        body: "late".into(),
        created_at: v1.created_at,
        updated_at: crate::now(),
    };
    let event = platform::bus::Event::new("comment.updated", v1.id, None, late.updated_at, json!({}));
    assert!(!b.store.update_comment(&late, v1.updated_at, &event).await.unwrap());
    assert!(!b.store.delete_comment(v1.id, v1.updated_at, &event).await.unwrap());
    late.id = new_id();
    assert!(b.store.update_comment(&late, v1.updated_at, &event).await.is_err(), "gone is NotFound");
    assert_eq!(svc.get_comment(c.editor, v1.id).await.unwrap().body, "v2");
    assert_eq!(b.outbox().await.iter().filter(|e| e.event_type == "comment.updated").count(), 1);

    svc.delete_comment(c.editor, v1.id, Some(&format!("\"x\", {}", comment_etag(v2.updated_at)))).await.unwrap();
}

async fn comment_events_carry_what_a_live_client_needs(b: &Backend) {
    let svc = service(b);
    let c = cast(b, &svc).await;
    let before = b.outbox().await.len();
    let made = svc.create_comment(c.editor, c.task, say("Hello")).await.unwrap();
    let changed = svc.update_comment(c.editor, made.id, edit("Hello again"), None).await.unwrap();
    // The same body again changes nothing and writes nothing.
    svc.update_comment(c.editor, made.id, edit("Hello again"), None).await.unwrap();
    svc.delete_comment(c.owner, made.id, None).await.unwrap();
    let events = b.outbox().await.split_off(before);
    let ids = json!({ "comment_id": made.id, "task_id": c.task, "project_id": c.project });
    // The comment without its body (events carry no user-written text); an edit names `body`.
    let with = |comment: &api::projects::Comment, fields: Option<Value>| {
        let mut d = ids.clone();
        let mut shown = serde_json::to_value(comment).unwrap();
        shown.as_object_mut().unwrap().remove("body");
        d["comment"] = shown;
        if let Some(fields) = fields {
            d["fields"] = fields;
        }
        d
    };
    let got: Vec<_> =
        events.iter().map(|e| (e.event_type.as_str(), e.aggregate_id, e.actor_id, e.data.clone())).collect();
    assert_eq!(
        got,
        [
            ("comment.created", made.id, Some(c.editor.user_id), with(&made, None)),
            ("comment.updated", made.id, Some(c.editor.user_id), with(&changed, Some(json!(["body"])))),
            ("comment.deleted", made.id, Some(c.owner.user_id), ids.clone()),
        ]
    );
    assert!(events.iter().all(|e| !e.data.to_string().contains("Hello")), "no body in any event");
}

async fn comments_go_with_their_task_and_project(b: &Backend) {
    let svc = service(b);
    let c = cast(b, &svc).await;
    let other_task = task(&svc, c.owner, c.project, "Plant", "").await;
    svc.create_comment(c.owner, c.task, say("on Dig")).await.unwrap();
    let kept = svc.create_comment(c.owner, other_task, say("on Plant")).await.unwrap();
    assert_eq!(exec(b, "DELETE FROM tasks WHERE id = ?1", "DELETE FROM tasks WHERE id = $1", c.task).await, 1);
    assert_eq!(b.count("comments").await, 1, "Dig's comment went with it");
    assert_eq!(svc.get_comment(c.owner, kept.id).await.unwrap(), kept);
    assert_eq!(svc.list_comments(c.owner, c.task, PageRequest::default()).await.unwrap_err(), ApiError::NotFound);

    svc.delete_project(c.owner, c.project, None).await.unwrap();
    assert_eq!(b.count("comments").await, 0);
    assert_eq!(svc.get_comment(c.owner, kept.id).await.unwrap_err(), ApiError::NotFound);
}

struct Answer {
    status: StatusCode,
    content_type: String,
    etag: Option<String>,
    location: Option<String>,
    body: Value,
}

async fn call(
    router: &axum::Router,
    who: &Identity,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Answer {
    let mut req = Request::builder().method(method).uri(uri);
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut req = req.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).unwrap();
    req.extensions_mut().insert(Caller(who.clone()));
    let res = router.clone().oneshot(req).await.unwrap();
    let get = |h| res.headers().get(h).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (status, content_type, etag, location) =
        (res.status(), get(header::CONTENT_TYPE).unwrap_or_default(), get(header::ETAG), get(header::LOCATION));
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    Answer { status, content_type, etag, location, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
}

fn identity(a: Actor) -> Identity {
    Identity {
        user_id: a.user_id,
        role: a.role,
        session_id: new_id(),
        token_id: "jti".into(),
        issued_at: 0,
        expires_at: i64::MAX,
        mfa: false,
        admin_needs_mfa: false,
    }
}

fn assert_problem(a: &Answer, status: StatusCode) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.content_type, "application/problem+json");
}

async fn comments_over_http(b: &Backend) {
    let svc = Arc::new(service(b));
    let c = cast(b, &svc).await;
    let router = projects::router(Arc::clone(&svc));
    let (editor, viewer, stranger) = (identity(c.editor), identity(c.viewer), identity(user(Role::User)));
    let list_uri = format!("/api/tasks/{}/comments", c.task);

    let made = call(&router, &editor, Method::POST, &list_uri, &[], Some(json!({"body": "Hi"}))).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let id = made.body["id"].as_str().unwrap().to_string();
    assert_eq!(made.location, Some(format!("/api/comments/{id}")));
    let tag = made.etag.clone().unwrap();
    assert_eq!(made.body["task_id"], json!(c.task));
    let uri = format!("/api/comments/{id}");

    let got = call(&router, &viewer, Method::GET, &uri, &[], None).await;
    assert_eq!((got.status, got.etag.as_deref()), (StatusCode::OK, Some(tag.as_str())));
    assert_eq!(got.body, made.body);
    let list = call(&router, &viewer, Method::GET, &format!("{list_uri}?limit=5"), &[], None).await;
    assert_eq!(list.body, json!({"items": [made.body], "next_cursor": null}));

    assert_problem(
        &call(&router, &viewer, Method::POST, &list_uri, &[], Some(json!({"body": "x"}))).await,
        StatusCode::FORBIDDEN,
    );
    assert_problem(&call(&router, &stranger, Method::GET, &uri, &[], None).await, StatusCode::NOT_FOUND);
    assert_problem(&call(&router, &stranger, Method::GET, &list_uri, &[], None).await, StatusCode::NOT_FOUND);
    assert_problem(&call(&router, &editor, Method::GET, "/api/comments/nope", &[], None).await, StatusCode::NOT_FOUND);
    assert_problem(
        &call(&router, &editor, Method::GET, "/api/tasks/nope/comments", &[], None).await,
        StatusCode::NOT_FOUND,
    );
    let a = call(&router, &editor, Method::POST, &list_uri, &[], Some(json!({"body": ""}))).await;
    assert_problem(&a, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.body["errors"][0]["field"], "body");
    let a =
        call(&router, &editor, Method::POST, &list_uri, &[], Some(json!({"body": "x", "author_id": c.owner.user_id})))
            .await;
    assert_problem(&a, StatusCode::UNPROCESSABLE_ENTITY);
    assert_problem(
        &call(&router, &editor, Method::GET, &format!("{list_uri}?limit=0"), &[], None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );

    let changed =
        call(&router, &editor, Method::PATCH, &uri, &[("if-match", &tag)], Some(json!({"body": "Hi!"}))).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_ne!(changed.etag.as_deref(), Some(tag.as_str()));
    let stale = call(&router, &editor, Method::PATCH, &uri, &[("if-match", &tag)], Some(json!({"body": "Hi?"}))).await;
    assert_problem(&stale, StatusCode::PRECONDITION_FAILED);
    assert_problem(
        &call(&router, &editor, Method::DELETE, &uri, &[("if-match", &tag)], None).await,
        StatusCode::PRECONDITION_FAILED,
    );
    let new_tag = changed.etag.unwrap();
    let gone = call(&router, &editor, Method::DELETE, &uri, &[("if-match", &new_tag)], None).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    assert_problem(&call(&router, &editor, Method::GET, &uri, &[], None).await, StatusCode::NOT_FOUND);
}
