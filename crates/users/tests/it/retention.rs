//! The `erased-users` job on SQLite and PostgreSQL: rows of users whose erasure finished before
//! the cutoff go (a minute on either side), unfinished erasures and other users stay.

use std::sync::Arc;

use api::users::Role;
use platform::bus::Event;
use platform::clock::ManualClock;
use platform::db::StoreError;
use platform::jobs::{JobRunner, RunOutcome};
use time::{Duration, OffsetDateTime};
use users::jobs::ErasedUsersJob;
use uuid::Uuid;

use super::Backend;

fn event(user: Uuid) -> Event {
    Event::new("user.erased", user, None, OffsetDateTime::now_utc(), serde_json::json!({ "user_id": user }))
}

pub(crate) async fn erased_users_are_purged_after_their_delay(b: Backend) {
    b.db.migrate(&platform::jobs::MIGRATIONS).await.unwrap();
    let store = users::store(&b.db);
    let run_at = OffsetDateTime::now_utc() + Duration::days(60);
    let cutoff = run_at - Duration::days(30);
    let min = Duration::minutes(1);
    let (old, recent, unfinished, active) =
        (b.user(Role::User).await, b.user(Role::User).await, b.user(Role::User).await, b.user(Role::Admin).await);
    for (u, at) in [(&old, cutoff - min), (&recent, cutoff + min)] {
        store.begin_erasure(u.id, at - Duration::hours(1), &event(u.id)).await.unwrap();
        assert!(store.finish_erasure(u.id, at, &event(u.id)).await.unwrap());
    }
    store.begin_erasure(unfinished.id, cutoff - Duration::days(10), &event(unfinished.id)).await.unwrap();

    let job = ErasedUsersJob::new(store.clone(), Duration::days(30));
    let runner = JobRunner::new(&b.db, Arc::new(ManualClock::new(run_at)));
    let report = match runner.run(&job, tokio::sync::watch::channel(false).1).await.unwrap() {
        RunOutcome::Ran(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(report.get("users"), 1, "{report:?}");
    assert!(matches!(store.get(old.id).await, Err(StoreError::NotFound)));
    for u in [&recent, &unfinished, &active] {
        store.get(u.id).await.unwrap_or_else(|e| panic!("{} should stay: {e}", u.id));
    }
    assert_eq!(store.unfinished_erasures().await.unwrap(), vec![unfinished.id], "resumable erasures are kept");
}
