//! The auth store's session contract on SQLite and PostgreSQL: refresh rotation is a
//! compare-and-set (of concurrent exchanges of one token exactly one wins), spent tokens are
//! recognised, and revocation stops rotation and hides sessions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod end_sessions;

use std::sync::Arc;

use auth::ports::{AuthStore, NewSession, RefreshLookup};
use platform::bus::Event;
use platform::crypto::sha256;
use platform::db::Database;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

async fn ready(db: &Database) -> Arc<dyn AuthStore> {
    db.migrate(&platform::outbox::MIGRATIONS).await.unwrap();
    db.migrate(&auth::MIGRATIONS).await.unwrap();
    auth::store(db)
}

fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_microsecond(t.microsecond()).unwrap()
}

fn event(kind: &str, user: Uuid) -> Event {
    Event::new(kind, user, Some(user), now(), serde_json::json!({ "user_id": user }))
}

async fn new_session(store: &Arc<dyn AuthStore>, user: Uuid, token: &str) -> Uuid {
    let id = Uuid::now_v7();
    let at = now();
    let s = NewSession {
        id,
        user_id: user,
        refresh_hash: sha256(token.as_bytes()),
        user_agent: Some("test".into()),
        ip: None,
        created_at: at,
        expires_at: at + Duration::days(30),
    };
    store.create_session(&s, &event("auth.login_succeeded", user)).await.unwrap();
    id
}

async fn rotation_is_compare_and_set(db: Database) {
    let store = ready(&db).await;
    let user = Uuid::now_v7();
    let sid = new_session(&store, user, "t0").await;
    assert!(matches!(store.find_refresh(sha256(b"t0")).await.unwrap(), RefreshLookup::Current(s) if s.id == sid));

    let mut racers = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            store.rotate_refresh(sid, sha256(b"t0"), sha256(format!("t1-{i}").as_bytes()), now()).await.unwrap()
        }));
    }
    let mut winners = 0;
    for r in racers {
        winners += usize::from(r.await.unwrap());
    }
    assert_eq!(winners, 1, "exactly one exchange of a token wins");
    assert!(matches!(store.find_refresh(sha256(b"t0")).await.unwrap(), RefreshLookup::Used(s, _) if s.id == sid));
    let mut current = 0;
    for i in 0..8 {
        let found = store.find_refresh(sha256(format!("t1-{i}").as_bytes())).await.unwrap();
        current += usize::from(matches!(found, RefreshLookup::Current(_)));
    }
    assert_eq!(current, 1, "only the winner's token is current");
    assert_eq!(store.find_refresh(sha256(b"never issued")).await.unwrap(), RefreshLookup::Unknown);
}

async fn revocation_stops_rotation_and_hides_sessions(db: Database) {
    let store = ready(&db).await;
    let user = Uuid::now_v7();
    let a = new_session(&store, user, "a0").await;
    let b = new_session(&store, user, "b0").await;
    let other = new_session(&store, Uuid::now_v7(), "o0").await;
    assert_eq!(store.active_sessions(user, now()).await.unwrap().len(), 2);

    let revoked = store.revoke_sessions(user, Some(a), now(), &event("auth.logout", user)).await.unwrap();
    assert_eq!(revoked, vec![a]);
    assert!(
        !store.rotate_refresh(a, sha256(b"a0"), sha256(b"a1"), now()).await.unwrap(),
        "a revoked session cannot rotate"
    );
    let active: Vec<Uuid> = store.active_sessions(user, now()).await.unwrap().iter().map(|s| s.id).collect();
    assert_eq!(active, vec![b]);
    assert!(store.session(a).await.unwrap().revoked_at.is_some());

    let revoked = store.revoke_sessions(user, None, now(), &event("auth.logout_all", user)).await.unwrap();
    assert_eq!(revoked, vec![b], "logout-all revokes what is left, and only this user's");
    assert!(store.session(other).await.unwrap().revoked_at.is_none());
}

macro_rules! on_both_backends {
    ($($check:ident),*) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() { let db = test_support::TestSqlite::new().await; super::$check(db.db.clone()).await; })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() { let db = test_support::TestPostgres::new().await; super::$check(db.db.clone()).await; })*
        }
    };
}

on_both_backends!(
    rotation_is_compare_and_set,
    revocation_stops_rotation_and_hides_sessions,
    login_failures_count_block_and_clear
);

async fn login_failures_count_block_and_clear(db: Database) {
    let store = ready(&db).await;
    let key = sha256(b"an account key");
    let t0 = now();
    assert_eq!(store.blocked_until(key).await.unwrap(), None);
    for expected in 1..=6 {
        assert_eq!(store.record_failure(key, t0, auth::domain::login_delay).await.unwrap(), expected);
    }
    let until = store.blocked_until(key).await.unwrap().expect("blocked after six failures");
    assert_eq!(until - t0, auth::domain::login_delay(6));
    assert_eq!(store.blocked_until(sha256(b"another key")).await.unwrap(), None, "keys are independent");
    store.clear_failures(key).await.unwrap();
    assert_eq!(store.blocked_until(key).await.unwrap(), None);
    assert_eq!(store.record_failure(key, t0, auth::domain::login_delay).await.unwrap(), 1, "the count restarts");
}
