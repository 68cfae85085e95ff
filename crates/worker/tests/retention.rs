//! The `processed-events` job on SQLite and PostgreSQL: ids recorded before the dedupe window's
//! start go (a minute on either side), newer ones stay, in batches.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use platform::clock::ManualClock;
use platform::db::{Database, postgres, sqlite};
use platform::jobs::{JobRunner, RunOutcome};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use worker::retention::ProcessedEventsJob;

async fn processed(db: &Database, at: OffsetDateTime) -> Uuid {
    let id = Uuid::now_v7();
    match db {
        Database::Sqlite(db) => {
            let at = at.format(&time::format_description::well_known::Rfc3339).unwrap();
            db.write(move |tx| {
                tx.execute(
                    "INSERT INTO worker_processed_events (event_id, event_type, processed_at) VALUES (?1, 't', ?2)",
                    rusqlite::params![id, at],
                )
                .map_err(sqlite::map_err)
            })
            .await
            .unwrap();
        }
        Database::Postgres(db) => {
            let client = db.client().await.unwrap();
            client
                .execute(
                    "INSERT INTO worker_processed_events (event_id, event_type, processed_at) VALUES ($1, 't', $2)",
                    &[&id, &at],
                )
                .await
                .map_err(postgres::map_err)
                .unwrap();
        }
    }
    id
}

async fn count(db: &Database) -> i64 {
    const SQL: &str = "SELECT count(*) FROM worker_processed_events";
    match db {
        Database::Sqlite(db) => db.read(|c| c.query_row(SQL, [], |r| r.get(0))).await.unwrap(),
        Database::Postgres(db) => db.client().await.unwrap().query_one(SQL, &[]).await.unwrap().get(0),
    }
}

async fn old_processed_events_go(db: Database) {
    for m in [platform::outbox::MIGRATIONS, worker::MIGRATIONS, platform::jobs::MIGRATIONS] {
        db.migrate(&m).await.unwrap();
    }
    let run_at = OffsetDateTime::now_utc();
    let cutoff = run_at - Duration::days(30);
    for _ in 0..3 {
        processed(&db, cutoff - Duration::minutes(1)).await;
    }
    processed(&db, cutoff + Duration::minutes(1)).await;
    let job = ProcessedEventsJob::new(db.clone(), Duration::days(30));
    let runner = JobRunner::new(&db, Arc::new(ManualClock::new(run_at))).with_batch_size(2);
    let report = match runner.run(&job, tokio::sync::watch::channel(false).1).await.unwrap() {
        RunOutcome::Ran(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(report.get("processed_events"), 3, "{report:?}");
    assert_eq!(count(&db).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_processed_events_go_on_sqlite() {
    let t = test_support::TestSqlite::new().await;
    old_processed_events_go(t.db.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_processed_events_go_on_postgres() {
    let t = test_support::TestPostgres::new().await;
    old_processed_events_go(t.db.clone()).await;
}
