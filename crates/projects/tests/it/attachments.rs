//! Attachments through the HTTP router, on both database backends with a local-folder object
//! store, and on PostgreSQL with a real S3-compatible server (moto): streaming upload with type
//! sniffing and the size limit, download headers and bytes, access rules, delete, the sweep
//! after a project delete, the export, and the bucket's ACL.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use api::projects::ProjectRole;
use api::users::Role;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode, header};
use futures::{StreamExt, TryStreamExt};
use http_body_util::BodyExt;
use platform::clock::SystemClock;
use platform::http::Caller;
use platform::identity::Identity;
use platform::ids::new_id;
use platform::objects::{ObjectPath, ObjectStore, ObjectStoreExt};
use projects::ProjectsService;
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

use crate::Backend;
use crate::http::identity;

/// Generates one test per (database, object store): SQLite and PostgreSQL over a local folder,
/// PostgreSQL over an S3 bucket on moto.
macro_rules! attachment_suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite_local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let b = crate::Backend::sqlite().await;
                    super::$name(&super::Env::local(b)).await;
                }
            )*
        }
        mod postgres_local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let b = crate::Backend::postgres().await;
                    super::$name(&super::Env::local(b)).await;
                }
            )*
        }
        mod postgres_s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let b = crate::Backend::postgres().await;
                    super::$name(&super::Env::s3(b).await).await;
                }
            )*
        }
    };
}

attachment_suite!(
    upload_download_list_delete,
    uploads_past_the_limit_stop_at_once,
    types_are_sniffed_and_refused,
    only_members_see_and_only_writers_change,
    a_deleted_project_leaves_no_object,
    a_failed_commit_leaves_no_object,
    the_export_lists_what_the_user_uploaded,
);

/// The size limit of these tests: small, so that passing it is cheap.
pub(crate) const LIMIT: u64 = 256 * 1024;

/// A database, an object store, and the service and router over both.
pub(crate) struct Env {
    pub(crate) b: Backend,
    pub(crate) objects: Arc<dyn ObjectStore>,
    pub(crate) svc: Arc<ProjectsService>,
    pub(crate) router: Router,
    pub(crate) bucket: Option<test_support::TestBucket>,
    pub(crate) _dir: Option<tempfile::TempDir>,
}

impl Env {
    fn with(
        b: Backend,
        objects: Arc<dyn ObjectStore>,
    ) -> (Backend, Arc<dyn ObjectStore>, Arc<ProjectsService>, Router) {
        let svc = Arc::new(ProjectsService::new(Arc::clone(&b.store), Arc::new(SystemClock), None));
        svc.connect_objects(objects.clone(), LIMIT);
        let router = projects::router(svc.clone());
        (b, objects, svc, router)
    }

    pub(crate) fn local(b: Backend) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let (b, objects, svc, router) = Env::with(b, platform::objects::local(dir.path()).unwrap());
        Env { b, objects, svc, router, bucket: None, _dir: Some(dir) }
    }

    pub(crate) async fn s3(b: Backend) -> Env {
        let bucket = test_support::TestBucket::new().await;
        let (b, objects, svc, router) = Env::with(b, platform::objects::s3(&bucket.location()).unwrap());
        Env { b, objects, svc, router, bucket: Some(bucket), _dir: None }
    }

    pub(crate) async fn send(&self, who: Option<&Identity>, mut req: Request<Body>) -> Answer {
        if let Some(who) = who {
            req.extensions_mut().insert(Caller(who.clone()));
        }
        let res = self.router.clone().oneshot(req).await.unwrap_or_else(|e| match e {});
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        Answer { status, json: serde_json::from_slice(&bytes).unwrap_or(Value::Null), bytes, headers }
    }

    pub(crate) async fn call(&self, who: &Identity, method: Method, uri: &str, json: Option<Value>) -> Answer {
        let mut req = Request::builder().method(method).uri(uri);
        if json.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req.body(json.map_or_else(Body::empty, |j| Body::from(j.to_string()))).unwrap();
        self.send(Some(who), req).await
    }

    pub(crate) async fn upload(&self, who: &Identity, task: Uuid, filename: &str, content: &[u8]) -> Answer {
        let body = multipart(filename, content);
        let req = Request::builder()
            .method(Method::POST)
            .uri(format!("/api/tasks/{task}/attachments"))
            .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={BOUNDARY}"))
            .header(header::CONTENT_LENGTH, body.len())
            .body(Body::from(body))
            .unwrap();
        self.send(Some(who), req).await
    }

    /// A project owned by `owner` with one task: (project, task).
    pub(crate) async fn task(&self, owner: &Identity) -> (Uuid, Uuid) {
        let p = self.call(owner, Method::POST, "/api/projects", Some(json!({"name": "P"}))).await;
        let pid = id_of(&p);
        let t =
            self.call(owner, Method::POST, &format!("/api/projects/{pid}/tasks"), Some(json!({"title": "T"}))).await;
        (pid, id_of(&t))
    }

    /// Every object key in the store.
    pub(crate) async fn keys(&self) -> Vec<String> {
        let metas: Vec<_> = self.objects.list(None).try_collect().await.unwrap();
        metas.into_iter().map(|m| m.location.to_string()).collect()
    }
}

pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) json: Value,
    pub(crate) bytes: Bytes,
    pub(crate) headers: axum::http::HeaderMap,
}

impl Answer {
    pub(crate) fn header(&self, name: header::HeaderName) -> &str {
        self.headers.get(&name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    pub(crate) fn problem(&self, status: StatusCode) {
        assert_eq!(self.status, status, "{}", self.json);
        assert_eq!(self.header(header::CONTENT_TYPE), "application/problem+json");
    }
}

pub(crate) fn id_of(a: &Answer) -> Uuid {
    assert!(a.status.is_success(), "{} {}", a.status, a.json);
    Uuid::parse_str(a.json["id"].as_str().unwrap()).unwrap()
}

const BOUNDARY: &str = "XyZzY-boundary";

fn preamble(filename: &str) -> String {
    format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
}

fn multipart(filename: &str, content: &[u8]) -> Vec<u8> {
    let mut body = preamble(filename).into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// A 1×1 PNG, padded to `len` bytes with a private chunk's worth of data (the type is sniffed
/// from the signature).
pub(crate) fn png(len: usize) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89".to_vec();
    let mut i = 0u32;
    while v.len() < len {
        v.push((i.wrapping_mul(2_654_435_761) >> 24) as u8);
        i += 1;
    }
    v
}

pub(crate) fn event_types(rows: &[crate::OutboxRow]) -> Vec<&str> {
    rows.iter().map(|r| r.event_type.as_str()).collect()
}

async fn upload_download_list_delete(env: &Env) {
    let alice = identity(Role::User);
    let (pid, tid) = env.task(&alice).await;
    let content = png(300 * 1000 / 2);
    let up = env.upload(&alice, tid, "../../etc/r\u{e9}sum\u{e9} v2;.png", &content).await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.json);
    let id = id_of(&up);
    assert_eq!(up.header(header::LOCATION), format!("/api/attachments/{id}"));
    assert_eq!(
        up.json,
        json!({
            "id": id, "task_id": tid, "project_id": pid, "filename": "r\u{e9}sum\u{e9} v2;.png",
            "content_type": "image/png", "size": content.len(), "uploaded_by": alice.user_id,
            "created_at": up.json["created_at"], "status": "available", "scan": "none",
        })
    );
    // The key is the server's, whatever the name.
    assert_eq!(env.keys().await, vec![format!("attachments/{pid}/{id}")]);
    let created = env.b.outbox().await.into_iter().find(|r| r.event_type == "attachment.created").unwrap();
    assert_eq!((created.aggregate_id, created.actor_id), (id, Some(alice.user_id)));
    assert_eq!(created.data["task_id"], json!(tid));
    assert_eq!(created.data["size"], json!(content.len()));
    assert!(created.data.get("filename").is_none(), "no file name in events: {}", created.data);

    let down = env.call(&alice, Method::GET, &format!("/api/attachments/{id}"), None).await;
    assert_eq!(down.status, StatusCode::OK);
    assert_eq!(down.bytes.as_ref(), content.as_slice());
    assert_eq!(down.header(header::CONTENT_TYPE), "image/png");
    assert_eq!(
        down.header(header::CONTENT_DISPOSITION),
        "attachment; filename=\"r_sum_ v2_.png\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20v2%3B.png"
    );
    assert_eq!(down.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    assert_eq!(down.header(header::CACHE_CONTROL), "private, no-store");
    assert!(down.header(header::CONTENT_SECURITY_POLICY).starts_with("sandbox"));

    let list = env.call(&alice, Method::GET, &format!("/api/tasks/{tid}/attachments"), None).await;
    assert_eq!(list.json, json!({"items": [up.json], "next_cursor": null}));

    // Without presigning (a local folder, or S3 streamed through), there is no other URL: the
    // bytes come from the download route itself.
    let link = env.call(&alice, Method::GET, &format!("/api/attachments/{id}/link"), None).await;
    assert_eq!(link.status, StatusCode::OK);
    assert_eq!(link.json, json!({"url": null}));

    let del = env.call(&alice, Method::DELETE, &format!("/api/attachments/{id}"), None).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    let path = ObjectPath::from(format!("attachments/{pid}/{id}"));
    assert!(matches!(env.objects.head(&path).await, Err(object_store::Error::NotFound { .. })));
    env.call(&alice, Method::GET, &format!("/api/attachments/{id}"), None).await.problem(StatusCode::NOT_FOUND);
    let types = event_types(&env.b.outbox().await).into_iter().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(types[types.len() - 2..], ["attachment.created", "attachment.deleted"]);
    assert_eq!(env.b.count("attachments").await, 0);
}

async fn uploads_past_the_limit_stop_at_once(env: &Env) {
    let alice = identity(Role::User);
    let (_, tid) = env.task(&alice).await;
    let uri = format!("/api/tasks/{tid}/attachments");

    // A declared length above the limit: refused before one byte is read.
    let pulled = Arc::new(AtomicU64::new(0));
    let counted = {
        let pulled = pulled.clone();
        futures::stream::iter(0..).map(move |_| {
            pulled.fetch_add(16 * 1024, Ordering::SeqCst);
            Ok::<_, std::io::Error>(Bytes::from(vec![b'a'; 16 * 1024]))
        })
    };
    let req = Request::builder()
        .method(Method::POST)
        .uri(&uri)
        .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={BOUNDARY}"))
        .header(header::CONTENT_LENGTH, 10 * LIMIT)
        .body(Body::from_stream(counted))
        .unwrap();
    env.send(Some(&alice), req).await.problem(StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(pulled.load(Ordering::SeqCst), 0);

    // No declared length and an endless file: cut off just past the limit.
    let pulled = Arc::new(AtomicU64::new(0));
    let endless = {
        let pulled = pulled.clone();
        let head = Bytes::from([preamble("big.png").into_bytes(), png(1024)].concat());
        futures::stream::once(async move { Ok::<_, std::io::Error>(head) }).chain(futures::stream::iter(0..).map(
            move |_| {
                pulled.fetch_add(16 * 1024, Ordering::SeqCst);
                Ok(Bytes::from(vec![7u8; 16 * 1024]))
            },
        ))
    };
    let req = Request::builder()
        .method(Method::POST)
        .uri(&uri)
        .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(Body::from_stream(endless))
        .unwrap();
    let a = env.send(Some(&alice), req).await;
    a.problem(StatusCode::PAYLOAD_TOO_LARGE);
    let read = pulled.load(Ordering::SeqCst);
    assert!((LIMIT - 1024..=LIMIT + 64 * 1024).contains(&read), "read {read} bytes for a limit of {LIMIT}");

    // Exactly the limit passes; one byte more does not.
    let up = env.upload(&alice, tid, "max.png", &png(LIMIT as usize)).await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.json);
    env.upload(&alice, tid, "max.png", &png(LIMIT as usize + 1)).await.problem(StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(env.keys().await.len(), 1, "only the accepted file is stored");
    assert_eq!(env.b.count("attachments").await, 1);
}

async fn types_are_sniffed_and_refused(env: &Env) {
    let alice = identity(Role::User);
    let (_, tid) = env.task(&alice).await;
    let zip = b"PK\x03\x04\x14\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0".to_vec();
    let mut late_binary = "plain words\n".repeat(3000).into_bytes();
    late_binary.extend_from_slice(b"\0\x01\x02");
    for (name, content) in [
        ("image.png", zip.clone()),
        ("tool.exe", b"MZ\x90\0\x03\0\0\0".to_vec()),
        ("page.html", b"<html><script>alert(1)</script>".to_vec()),
        ("doc.pdf", vec![0x42; 100]),
        ("notes.txt", png(100)),
        ("notes.txt", late_binary),
        ("noext", b"hello".to_vec()),
    ] {
        let a = env.upload(&alice, tid, name, &content).await;
        a.problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    assert!(env.keys().await.is_empty(), "refused files leave nothing: {:?}", env.keys().await);
    assert_eq!(env.b.count("attachments").await, 0);

    // The client's Content-Type is not trusted: a text file is served as text.
    let up = env.upload(&alice, tid, "notes.md", "# Title\n\n* é\n".as_bytes()).await;
    assert_eq!(up.json["content_type"], "text/markdown; charset=utf-8");
    let up = env.upload(&alice, tid, "a.zip", &zip).await;
    assert_eq!(up.json["content_type"], "application/zip");

    // Not a multipart form, no file part, a bad file name.
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("/api/tasks/{tid}/attachments"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap();
    env.send(Some(&alice), req).await.problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let empty = format!("--{BOUNDARY}--\r\n");
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("/api/tasks/{tid}/attachments"))
        .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(Body::from(empty))
        .unwrap();
    env.send(Some(&alice), req).await.problem(StatusCode::UNPROCESSABLE_ENTITY);
    let a = env.upload(&alice, tid, "..", b"x").await;
    a.problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.json["errors"][0]["field"], "file");
}

async fn only_members_see_and_only_writers_change(env: &Env) {
    let alice = identity(Role::User);
    let (pid, tid) = env.task(&alice).await;
    let (editor, viewer, stranger, root) =
        (identity(Role::User), identity(Role::User), identity(Role::User), identity(Role::Admin));
    env.b.add_member(pid, editor.user_id, ProjectRole::Editor).await;
    env.b.add_member(pid, viewer.user_id, ProjectRole::Viewer).await;
    let by_alice = id_of(&env.upload(&alice, tid, "a.png", &png(100)).await);
    let by_editor = id_of(&env.upload(&editor, tid, "e.png", &png(100)).await);

    env.upload(&viewer, tid, "v.png", &png(100)).await.problem(StatusCode::FORBIDDEN);
    let a = env.call(&viewer, Method::GET, &format!("/api/attachments/{by_alice}"), None).await;
    assert_eq!(a.status, StatusCode::OK);
    let a = env.call(&viewer, Method::GET, &format!("/api/tasks/{tid}/attachments"), None).await;
    assert_eq!(a.json["items"].as_array().map(Vec::len), Some(2));

    // Strangers: everything is 404, as if nothing existed.
    env.upload(&stranger, tid, "s.png", &png(100)).await.problem(StatusCode::NOT_FOUND);
    for (method, uri) in [
        (Method::GET, format!("/api/attachments/{by_alice}")),
        (Method::DELETE, format!("/api/attachments/{by_alice}")),
        (Method::GET, format!("/api/tasks/{tid}/attachments")),
        (Method::GET, format!("/api/attachments/{}", new_id())),
        (Method::GET, "/api/attachments/not-a-uuid".to_string()),
    ] {
        env.call(&stranger, method, &uri, None).await.problem(StatusCode::NOT_FOUND);
    }
    env.upload(&alice, new_id(), "x.png", &png(100)).await.problem(StatusCode::NOT_FOUND);

    // A viewer deletes nothing; the uploader their own, owners and admins any.
    let a = env.call(&viewer, Method::DELETE, &format!("/api/attachments/{by_alice}"), None).await;
    a.problem(StatusCode::FORBIDDEN);
    env.b.add_member(pid, stranger.user_id, ProjectRole::Viewer).await;
    let a = env.call(&editor, Method::DELETE, &format!("/api/attachments/{by_editor}"), None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let a = env.call(&root, Method::DELETE, &format!("/api/attachments/{by_alice}"), None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert!(env.keys().await.is_empty());
}

async fn a_deleted_project_leaves_no_object(env: &Env) {
    let alice = identity(Role::User);
    let (pid, tid) = env.task(&alice).await;
    let (other, other_task) = env.task(&alice).await;
    for n in 0..3 {
        id_of(&env.upload(&alice, tid, &format!("{n}.png"), &png(2000)).await);
    }
    let kept = id_of(&env.upload(&alice, other_task, "kept.png", &png(2000)).await);
    assert_eq!(env.keys().await.len(), 4);
    let a = env.call(&alice, Method::DELETE, &format!("/api/projects/{pid}"), None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.json);
    assert_eq!(env.keys().await, vec![format!("attachments/{other}/{kept}")]);
    assert_eq!(env.b.count("attachments").await, 1);

    // An object whose row is gone is swept at once when its project is gone, and left alone
    // while young when the project exists (an upload writes its object before its row).
    let ghost = |p: Uuid| ObjectPath::from(format!("attachments/{p}/{}", new_id()));
    env.objects.put(&ghost(pid), Bytes::from_static(b"x").into()).await.unwrap();
    let young = ghost(other);
    env.objects.put(&young, Bytes::from_static(b"x").into()).await.unwrap();
    assert_eq!(env.svc.sweep_attachments(None).await, Ok(1));
    assert!(env.objects.head(&young).await.is_ok());
    assert_eq!(env.keys().await.len(), 2);
}

async fn a_failed_commit_leaves_no_object(env: &Env) {
    let alice = identity(Role::User);
    let (_, tid) = env.task(&alice).await;
    // The task is deleted while the file is still arriving: the object was written, the row
    // cannot be, so the object goes.
    let db = env.b.db.clone();
    let head = [preamble("late.png").into_bytes(), png(5000)].concat();
    let body =
        futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(head))]).chain(futures::stream::once(async move {
            delete_task(&db, tid).await;
            Ok(Bytes::from(format!("\r\n--{BOUNDARY}--\r\n")))
        }));
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("/api/tasks/{tid}/attachments"))
        .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(Body::from_stream(body))
        .unwrap();
    env.send(Some(&alice), req).await.problem(StatusCode::NOT_FOUND);
    assert!(env.keys().await.is_empty(), "{:?}", env.keys().await);
    assert_eq!(env.b.count("attachments").await, 0);
}

async fn delete_task(db: &platform::db::Database, id: Uuid) {
    let n = match db {
        platform::db::Database::Sqlite(db) => db
            .write(move |tx| tx.execute("DELETE FROM tasks WHERE id = ?1", [id]).map_err(platform::db::sqlite::map_err))
            .await
            .unwrap() as u64,
        platform::db::Database::Postgres(db) => {
            db.client().await.unwrap().execute("DELETE FROM tasks WHERE id = $1", &[&id]).await.unwrap()
        }
    };
    assert_eq!(n, 1);
}

async fn the_export_lists_what_the_user_uploaded(env: &Env) {
    use api::personal::{DataSubject, PersonalDataApi};
    let alice = identity(Role::User);
    let bob = identity(Role::User);
    let (pid, tid) = env.task(&alice).await;
    env.b.add_member(pid, bob.user_id, ProjectRole::Editor).await;
    let mine = id_of(&env.upload(&alice, tid, "mine.png", &png(100)).await);
    id_of(&env.upload(&bob, tid, "bobs.png", &png(100)).await);
    let data = env.svc.export(&DataSubject { user_id: alice.user_id, email: None }).await.unwrap();
    let rows = &data.tables["attachments"];
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["id"], json!(mine));
    assert_eq!(rows[0]["filename"], "mine.png");
    assert_eq!(rows[0]["object_key"], json!(format!("attachments/{pid}/{mine}")));

    // The bucket is private (docs/SECURITY.md UP-4): its ACL grants nothing to the public groups.
    // (moto without its auth mode answers anonymous GETs whatever the ACL, so the 403 itself
    // cannot be observed here.)
    if let Some(bucket) = &env.bucket {
        let acl = reqwest::get(format!("{}/{}?acl", bucket.endpoint, bucket.bucket)).await.unwrap();
        let acl = acl.text().await.unwrap();
        assert!(acl.contains("AccessControlPolicy"), "{acl}");
        assert!(!acl.contains("AllUsers") && !acl.contains("AuthenticatedUsers"), "public grant in {acl}");
    }
}
