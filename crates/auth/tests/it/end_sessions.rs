//! `SessionsApi::end_all_sessions` on SQLite and PostgreSQL: every session of the user ends in
//! the database with one `auth.sessions_ended` event, and each revocation is published to the
//! shared cache so that verifiers refuse the user's access tokens at once.

use std::path::PathBuf;
use std::sync::Arc;

use api::auth::{LoginRequest, LoginResponse, RegisterRequest, SessionEndReason, SessionStatus, SessionsApi};
use auth::AuthService;
use auth::service::ClientInfo;
use platform::cache::{Cache, MemoryCache};
use platform::clock::{Clock, SystemClock};
use platform::db::Database;
use platform::identity::session_cache_key;
use uuid::Uuid;

pub(crate) async fn service(db: &Database, cache: Arc<dyn Cache>) -> Arc<AuthService> {
    service_on(db, cache, Arc::new(SystemClock)).await.0
}

/// The auth service on `clock` (and the users service it asks, on the same clock), and the folder
/// it mails into (the service's own, gone with it).
pub(crate) async fn service_on(
    db: &Database,
    cache: Arc<dyn Cache>,
    clock: Arc<dyn Clock>,
) -> (Arc<AuthService>, PathBuf) {
    let users = super::users_on(db, clock.clone()).await;
    let (settings, mail_dir) = super::service_settings(auth::service::KeySettings::default());
    let svc = AuthService::start(auth::store(db), users, settings, clock, None, cache).await.unwrap();
    (svc, mail_dir)
}

pub(crate) async fn account(svc: &AuthService) -> (Uuid, String) {
    let email = format!("{}@example.com", Uuid::now_v7().simple());
    let password = "canary correct horse battery staple".to_string();
    let user = svc
        .register(RegisterRequest { email: email.clone(), password: password.clone(), name: "Someone".into() }, None)
        .await
        .unwrap();
    (user.id, email)
}

async fn session(svc: &AuthService, email: &str) -> Uuid {
    let req = LoginRequest { email: email.into(), password: "canary correct horse battery staple".into() };
    let LoginResponse::Tokens(tokens) = svc.login(req, ClientInfo::default()).await.unwrap() else {
        panic!("no second factor here")
    };
    let claims = tokens.access_token.split('.').nth(1).unwrap();
    use base64::Engine as _;
    let claims: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
    claims["sid"].as_str().unwrap().parse().unwrap()
}

pub(crate) async fn events(db: &Database, kind: &'static str) -> Vec<serde_json::Value> {
    match db {
        Database::Sqlite(db) => db
            .read(move |c| {
                let mut stmt = c.prepare("SELECT data FROM outbox WHERE event_type = ?1 ORDER BY seq")?;
                let rows = stmt.query_map([kind], |r| r.get::<_, String>(0))?;
                rows.map(|r| r.map(|d| serde_json::from_str(&d).unwrap())).collect::<rusqlite::Result<Vec<_>>>()
            })
            .await
            .unwrap(),
        Database::Postgres(db) => {
            let client = db.client().await.unwrap();
            let rows =
                client.query("SELECT data FROM outbox WHERE event_type = $1 ORDER BY seq", &[&kind]).await.unwrap();
            rows.iter().map(|r| r.get(0)).collect()
        }
    }
}

async fn every_session_of_the_user_ends_and_is_published(db: Database) {
    let cache: Arc<dyn Cache> = Arc::new(MemoryCache::default());
    let svc = service(&db, cache.clone()).await;
    let (user, email) = account(&svc).await;
    let (_, bystander_email) = account(&svc).await;
    let sessions = [session(&svc, &email).await, session(&svc, &email).await];
    let bystander = session(&svc, &bystander_email).await;

    let api: Arc<dyn SessionsApi> = svc.clone();
    assert_eq!(api.end_all_sessions(user, SessionEndReason::RoleChanged).await.unwrap(), 2);
    for sid in sessions {
        assert!(!svc.session_active(sid).await.unwrap(), "ended in the database");
        let marker = cache.get(&session_cache_key(sid)).await.unwrap();
        assert_eq!(marker.as_deref(), Some(&b"0"[..]), "published to the shared cache");
    }
    assert!(svc.session_active(bystander).await.unwrap(), "another user's session lives on");
    let ended = events(&db, "auth.sessions_ended").await;
    assert_eq!(ended, vec![serde_json::json!({"user_id": user, "reason": "role_changed"})]);

    // Nothing left to end: no error, nothing ended.
    assert_eq!(api.end_all_sessions(user, SessionEndReason::StatusChanged).await.unwrap(), 0);
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_session_of_the_user_ends_and_is_published() {
        let db = test_support::TestSqlite::new().await;
        super::every_session_of_the_user_ends_and_is_published(db.db.clone()).await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_session_of_the_user_ends_and_is_published() {
        let db = test_support::TestPostgres::new().await;
        super::every_session_of_the_user_ends_and_is_published(db.db.clone()).await;
    }
}
