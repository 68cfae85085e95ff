//! The hash-chained audit log on SQLite (with a local folder for objects) and PostgreSQL (with an
//! S3 bucket on moto): appends through the worker's consumer, verification naming exactly the
//! tampered or deleted entry, the append-only guard, idempotent redelivery, the admin routes behind
//! the role gate; archiving (`archive`), the keyed chain and the PostgreSQL role split (`keyed`) and
//! the usage statistics (`stats`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use api::users::Role;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use platform::bus::{Event, InProcessBus};
use platform::db::Database;
use platform::http::{Caller, enforce_policy};
use platform::identity::Identity;
use platform::ids::new_id;
use platform::objects::ObjectStore;
use serde_json::{Value, json};
use std::sync::Arc;
use time::OffsetDateTime;
use tower::ServiceExt;
use uuid::Uuid;
use worker::Worker;
use worker::audit::{AuditLog, AuditQuery};

enum Keep {
    Sqlite(#[allow(dead_code)] test_support::TestSqlite, #[allow(dead_code)] tempfile::TempDir),
    Postgres(#[allow(dead_code)] test_support::TestPostgres, #[allow(dead_code)] test_support::TestBucket),
}

struct Backend {
    db: Database,
    /// Where archives go: a local folder with SQLite (all-in-one), an S3 bucket with PostgreSQL.
    objects: Arc<dyn ObjectStore>,
    _keep: Keep,
}

impl Backend {
    async fn sqlite() -> Backend {
        let t = test_support::TestSqlite::new().await;
        let dir = tempfile::tempdir().unwrap();
        let objects = platform::objects::local(dir.path()).unwrap();
        Self::ready(t.db.clone(), objects, Keep::Sqlite(t, dir)).await
    }
    async fn postgres() -> Backend {
        let t = test_support::services::TestPostgres::new().await;
        let bucket = test_support::TestBucket::new().await;
        let objects = platform::objects::s3(&bucket.location()).unwrap();
        Self::ready(t.db.clone(), objects, Keep::Postgres(t, bucket)).await
    }
    async fn ready(db: Database, objects: Arc<dyn ObjectStore>, keep: Keep) -> Backend {
        db.migrate(&worker::MIGRATIONS).await.unwrap();
        Backend { db, objects, _keep: keep }
    }
    fn worker(&self) -> Worker {
        Worker::new(self.db.clone(), Arc::new(InProcessBus::new()))
    }
    fn log(&self) -> AuditLog {
        AuditLog::new(self.db.clone())
    }
    /// Runs `sql` as the application would; the database's error if it refuses.
    async fn try_exec(&self, sql: &str) -> Result<(), String> {
        match &self.db {
            Database::Sqlite(db) => {
                let sql = sql.to_string();
                db.write(move |tx| tx.execute_batch(&sql).map_err(platform::db::sqlite::map_err))
                    .await
                    .map_err(|e| e.to_string())
            }
            Database::Postgres(db) => db.client().await.unwrap().batch_execute(sql).await.map_err(|e| format!("{e:?}")),
        }
    }
    /// Runs `sql` with the append-only triggers out of the way: the tampering of an attacker with
    /// the database's owner or superuser rights (PostgreSQL: triggers disabled for the statement;
    /// SQLite, which cannot disable them: dropped).
    async fn exec(&self, sql: &str) {
        let sql = match &self.db {
            Database::Sqlite(_) => format!(
                "DROP TRIGGER IF EXISTS audit_log_no_update; DROP TRIGGER IF EXISTS audit_log_no_delete; \
                 DROP TRIGGER IF EXISTS audit_archives_no_update; DROP TRIGGER IF EXISTS audit_archives_no_delete; {sql}"
            ),
            Database::Postgres(_) => format!(
                "BEGIN; ALTER TABLE audit_log DISABLE TRIGGER USER; ALTER TABLE audit_archives DISABLE TRIGGER USER; \
                 {sql}; ALTER TABLE audit_log ENABLE TRIGGER USER; ALTER TABLE audit_archives ENABLE TRIGGER USER; COMMIT"
            ),
        };
        self.try_exec(&sql).await.unwrap();
    }
}

test_support::backend_suite!(
    appends_chain_and_verify,
    updates_and_deletes_are_refused,
    erased_user_appears_as_id_only,
    filters_and_keyset_pages,
    altered_data_is_named,
    altered_hash_is_named,
    deleted_row_is_named,
    redelivery_appends_nothing,
    routes_are_for_admins_only,
    text_is_not_logged,
);

mod archive;
mod keyed;
mod stats;

pub(crate) fn event(kind: &str, actor: Option<Uuid>, data: Value) -> Event {
    Event::new(kind, new_id(), actor, OffsetDateTime::now_utc(), data)
}

/// Three events through the consumer; returns them in order.
async fn three(b: &Backend) -> Vec<Event> {
    let w = b.worker();
    let alice = new_id();
    let events = vec![
        event("user.registered", Some(alice), json!({"user_id": alice, "role": "user"})),
        event("project.created", Some(alice), json!({"project_id": new_id(), "fields": ["b", "a"], "role": null})),
        event("task.created", None, json!({"project_id": new_id()})),
    ];
    for e in &events {
        assert!(w.handle(e).await.unwrap());
    }
    events
}

pub(crate) fn all() -> AuditQuery {
    AuditQuery { limit: 100, ..AuditQuery::default() }
}

async fn appends_chain_and_verify(b: &Backend) {
    let events = three(b).await;
    let (items, next) = b.log().list(all()).await.unwrap();
    assert_eq!(next, None);
    assert_eq!(items.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 2, 1], "newest first");
    assert_eq!(items[2].event_id, events[0].id);
    assert_eq!(items[1].action, "project.created");
    assert_eq!(items[1].data, events[1].data);
    assert_eq!(items[2].prev_hash, "0".repeat(64));
    assert_eq!(items[1].prev_hash, items[2].hash);
    assert_eq!(items[0].prev_hash, items[1].hash);
    let v = b.log().verify().await.unwrap();
    assert!(v.ok, "{v:?}");
    assert_eq!(v.checked, 3);
    assert_eq!(v.first_broken, None);
}

/// User-written text never reaches the log: only ids and allowlisted descriptors.
async fn text_is_not_logged(b: &Backend) {
    let (task, actor) = (new_id(), new_id());
    let data = json!({
        "task": {"id": task, "title": "Call Jane Doe", "description": "jane@example.com", "status": "todo",
                 "assignee_id": actor},
        "fields": ["title"],
        "name": "Jane's project",
        "body": "hello",
    });
    assert!(b.worker().handle(&event("task.updated", Some(actor), data)).await.unwrap());
    let (items, _) = b.log().list(all()).await.unwrap();
    assert_eq!(
        items[0].data,
        json!({"task": {"id": task, "status": "todo", "assignee_id": actor}, "fields": ["title"]})
    );
    assert!(b.log().verify().await.unwrap().ok);
}

async fn filters_and_keyset_pages(b: &Backend) {
    let events = three(b).await;
    let actor = events[0].actor_id;
    let (mine, _) = b.log().list(AuditQuery { actor_id: actor, ..all() }).await.unwrap();
    assert_eq!(mine.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 1]);
    let (tasks, _) = b.log().list(AuditQuery { action: Some("task.created".into()), ..all() }).await.unwrap();
    assert_eq!(tasks.iter().map(|e| e.event_id).collect::<Vec<_>>(), [events[2].id]);
    let future = OffsetDateTime::now_utc() + time::Duration::hours(1);
    let (none, _) = b.log().list(AuditQuery { from: Some(future), ..all() }).await.unwrap();
    assert!(none.is_empty());
    let (before, _) = b.log().list(AuditQuery { to: Some(future), ..all() }).await.unwrap();
    assert_eq!(before.len(), 3);
    let (first, next) = b.log().list(AuditQuery { limit: 2, ..all() }).await.unwrap();
    assert_eq!(first.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 2]);
    let cursor = worker::audit::decode_cursor(&next.unwrap());
    let (rest, next) = b.log().list(AuditQuery { limit: 2, before: cursor, ..all() }).await.unwrap();
    assert_eq!(rest.iter().map(|e| e.seq).collect::<Vec<_>>(), [1]);
    assert_eq!(next, None);
}

/// The table is append-only (docs/SECURITY.md LO-4): the application's own connection cannot change or
/// remove an entry, nor an archive record; only the archive's transaction deletes (see `archive`).
async fn updates_and_deletes_are_refused(b: &Backend) {
    three(b).await;
    for sql in [
        "UPDATE audit_log SET action = 'project.deleted' WHERE seq = 2",
        "DELETE FROM audit_log WHERE seq = 1",
        "DELETE FROM audit_log",
        "INSERT INTO audit_archives (first_seq, last_seq, count, first_prev_hash, last_hash, object_key, sha256) \
         VALUES (1, 2, 2, 'x', 'y', 'k', 's'); DELETE FROM audit_log WHERE seq = 1",
    ] {
        let err = b.try_exec(sql).await.expect_err(sql);
        assert!(err.contains("append-only") || err.contains("only through the archive"), "{sql}: {err}");
    }
    if let Database::Postgres(_) = b.db {
        let err = b.try_exec("TRUNCATE audit_log").await.unwrap_err();
        assert!(err.contains("append-only"), "{err}");
    }
    let (items, _) = b.log().list(all()).await.unwrap();
    assert_eq!(items.len(), 3);
    assert!(b.log().verify().await.unwrap().ok);
}

/// An erased user stays in the log only as their id: the log keeps ids and descriptors, so neither
/// the email nor the name reaches it, even from an event that (wrongly) carried them.
async fn erased_user_appears_as_id_only(b: &Backend) {
    let (user, admin) = (new_id(), new_id());
    let (email, name) = ("jane.canary@example.com", "Jane Canary");
    let w = b.worker();
    for e in [
        event("user.created", Some(user), json!({"user_id": user, "email": email, "name": name})),
        event("auth.login_succeeded", Some(user), json!({"user_id": user, "session_id": new_id()})),
        event("users.profile_updated", Some(user), json!({"user_id": user, "fields": ["name"], "name": name})),
        event("users.erasure_started", Some(admin), json!({"user_id": user})),
        event("auth.user_erased", None, json!({"user_id": user, "tables": {"auth_sessions": 1}})),
        event("user.erased", Some(admin), json!({"user_id": user, "user": {"id": user, "email": email}})),
    ] {
        assert!(w.handle(&e).await.unwrap());
    }
    let (items, _) = b.log().list(all()).await.unwrap();
    assert_eq!(items.len(), 6);
    let text = serde_json::to_string(&items).unwrap().to_lowercase();
    assert!(!text.contains("canary"), "the log holds a name or email: {text}");
    assert!(items.iter().all(|e| e.data["user_id"] == json!(user)), "each entry names the user by id");
    let (mine, _) = b.log().list(AuditQuery { actor_id: Some(user), ..all() }).await.unwrap();
    assert_eq!(mine.len(), 3);
    assert_eq!(items[0].data, json!({"user_id": user, "user": {"id": user}}));
}

async fn altered_data_is_named(b: &Backend) {
    let events = three(b).await;
    b.exec(r#"UPDATE audit_log SET data = '{"fields":["b","a","name"],"project_id":null,"role":null}' WHERE seq = 2"#)
        .await;
    let v = b.log().verify().await.unwrap();
    assert!(!v.ok);
    assert_eq!(v.checked, 1);
    let broken = v.first_broken.unwrap();
    assert_eq!((broken.seq, broken.event_id, broken.reason.as_str()), (2, Some(events[1].id), "hash_mismatch"));
    assert_eq!(v.first_bad_id, Some(events[1].id));
}

async fn altered_hash_is_named(b: &Backend) {
    let events = three(b).await;
    b.exec(&format!("UPDATE audit_log SET hash = '{}' WHERE seq = 2", "ab".repeat(32))).await;
    let broken = b.log().verify().await.unwrap().first_broken.unwrap();
    assert_eq!((broken.seq, broken.event_id, broken.reason.as_str()), (2, Some(events[1].id), "hash_mismatch"));
}

async fn deleted_row_is_named(b: &Backend) {
    three(b).await;
    b.exec("DELETE FROM audit_log WHERE seq = 2").await;
    let v = b.log().verify().await.unwrap();
    assert!(!v.ok);
    assert_eq!(v.checked, 1);
    let broken = v.first_broken.unwrap();
    assert_eq!((broken.seq, broken.event_id, broken.reason.as_str()), (2, None, "missing"));
}

async fn redelivery_appends_nothing(b: &Backend) {
    let events = three(b).await;
    let w = b.worker();
    assert!(!w.handle(&events[1]).await.unwrap(), "a redelivery is a duplicate");
    let (items, _) = b.log().list(all()).await.unwrap();
    assert_eq!(items.len(), 3);
    assert!(b.log().verify().await.unwrap().ok);
    // Concurrent first deliveries still make one chain.
    let more: Vec<Event> = (0..8).map(|i| event("task.updated", None, json!({"i": i}))).collect();
    let handles: Vec<_> = more
        .iter()
        .cloned()
        .map(|e| {
            let w = b.worker();
            tokio::spawn(async move { w.handle(&e).await.unwrap() })
        })
        .collect();
    for h in handles {
        assert!(h.await.unwrap());
    }
    let v = b.log().verify().await.unwrap();
    assert!(v.ok && v.checked == 11, "{v:?}");
}

fn identity(role: Role) -> Identity {
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

pub(crate) async fn get(b: &Backend, who: Option<Role>, uri: &str) -> (StatusCode, Value) {
    let router =
        worker::http::router(b.log(), b.objects.clone()).route_layer(axum::middleware::from_fn(enforce_policy));
    let mut req = Request::get(uri).body(Body::empty()).unwrap();
    if let Some(role) = who {
        req.extensions_mut().insert(Caller(identity(role)));
    }
    let res = router.oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn routes_are_for_admins_only(b: &Backend) {
    let events = three(b).await;
    let (status, page) = get(b, Some(Role::Admin), "/api/admin/audit-log?limit=2").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let (_, rest) = get(b, Some(Role::Admin), &format!("/api/admin/audit-log?cursor={cursor}")).await;
    assert_eq!(rest["items"][0]["event_id"], json!(events[0].id));
    let actor = events[0].actor_id.unwrap();
    let (_, mine) =
        get(b, Some(Role::Admin), &format!("/api/admin/audit-log?actor_id={actor}&action=user.registered")).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    let (status, v) = get(b, Some(Role::Admin), "/api/admin/audit-log/verify").await;
    assert_eq!((status, v["ok"].clone(), v["checked"].clone()), (StatusCode::OK, json!(true), json!(3)));
    for (uri, field) in [
        ("/api/admin/audit-log?limit=0", "limit"),
        ("/api/admin/audit-log?actor_id=x", "actor_id"),
        ("/api/admin/audit-log?from=yesterday", "from"),
        ("/api/admin/audit-log?cursor=zzz", "cursor"),
    ] {
        let (status, p) = get(b, Some(Role::Admin), uri).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{uri}: {p}");
        assert!(p.to_string().contains(field), "{uri}: {p}");
    }
    assert_eq!(get(b, Some(Role::Admin), "/api/admin/audit-log?bogus=1").await.0, StatusCode::BAD_REQUEST);
    for uri in ["/api/admin/audit-log", "/api/admin/audit-log/verify"] {
        assert_eq!(get(b, Some(Role::User), uri).await.0, StatusCode::FORBIDDEN);
        assert_eq!(get(b, Some(Role::Guest), uri).await.0, StatusCode::FORBIDDEN);
        assert_eq!(get(b, None, uri).await.0, StatusCode::UNAUTHORIZED);
    }
}
