//! The users store's contract on SQLite and PostgreSQL: marking an email verified is idempotent,
//! carries its event in the same transaction only when something changed, and an unknown user is
//! `NotFound`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use api::users::{Role, User, UserStatus};
use platform::bus::Event;
use platform::db::{Database, StoreError};
use time::OffsetDateTime;
use users::ports::UserStore;
use uuid::Uuid;

async fn ready(db: &Database) -> Arc<dyn UserStore> {
    db.migrate(&platform::outbox::MIGRATIONS).await.unwrap();
    db.migrate(&users::MIGRATIONS).await.unwrap();
    users::store(db)
}

fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_microsecond(t.microsecond()).unwrap()
}

fn event(kind: &str, user: Uuid) -> Event {
    Event::new(kind, user, Some(user), now(), serde_json::json!({ "user_id": user }))
}

async fn email_verification_is_idempotent_with_its_event(db: Database) {
    let store = ready(&db).await;
    let id = Uuid::now_v7();
    let at = now();
    let user = User {
        id,
        email: format!("{id}@example.com"),
        name: "Ada".into(),
        role: Role::User,
        status: UserStatus::Active,
        email_verified: false,
        mfa_enabled: false,
        created_at: at,
        updated_at: at,
    };
    store.insert(&user, &event("user.created", id)).await.unwrap();
    assert!(!store.get(id).await.unwrap().email_verified);

    assert!(store.set_email_verified(id, now(), &event("user.updated", id)).await.unwrap(), "first time changes");
    assert!(store.get(id).await.unwrap().email_verified);
    assert!(!store.set_email_verified(id, now(), &event("user.updated", id)).await.unwrap(), "second time does not");
    assert_eq!(test_support::outbox_event_types(&db).await, ["user.created", "user.updated"], "one event per change");

    let unknown = Uuid::now_v7();
    let err = store.set_email_verified(unknown, now(), &event("user.updated", unknown)).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    assert_eq!(test_support::outbox_event_types(&db).await.len(), 2);
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

on_both_backends!(email_verification_is_idempotent_with_its_event);
