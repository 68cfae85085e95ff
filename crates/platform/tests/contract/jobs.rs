//! `platform::jobs` on SQLite and PostgreSQL: the lease (of two runners racing, exactly one runs;
//! an expired lease is taken over and the old holder stops at its next batch; a scheduled run
//! waits for its interval, a manual one does not), and the platform's jobs (`outbox`,
//! `idempotency-keys`, `temp-files` on a local folder and on S3) deleting exactly what is past
//! their cutoff, with rows a minute on either side. A manual clock: nothing sleeps.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use platform::clock::{Clock, ManualClock};
use platform::db::{Database, postgres, sqlite};
use platform::http::idempotency::{Idempotency, IdempotencyStore, PgIdempotencyStore, Reserve, SqliteIdempotencyStore};
use platform::jobs::builtin::{IdempotencyKeysJob, OutboxJob, TempFilesJob};
use platform::jobs::{Job, JobContext, JobError, JobReport, JobRunner, MIGRATIONS, RunOutcome};
use platform::objects::{ObjectPath, ObjectStoreExt, PutPayload};
use test_support::{TestPostgres, TestSqlite, wait};
use time::{Duration, OffsetDateTime};
use tokio::sync::{Notify, watch};
use uuid::Uuid;

use crate::objects::{Fixture, Local, S3};
use crate::support::{DbFixture, query_i64};

fn stop() -> watch::Receiver<bool> {
    watch::channel(false).1
}

/// A job that counts its runs and, when gated, reports one batch and waits to be released
/// before reporting a second.
#[derive(Default)]
struct Gated {
    runs: AtomicUsize,
    gate: bool,
    entered: Notify,
    release: Notify,
}

#[async_trait]
impl Job for Gated {
    fn name(&self) -> &'static str {
        "gated"
    }
    fn description(&self) -> &'static str {
        "a test job"
    }
    async fn run(&self, ctx: &JobContext) -> Result<JobReport, JobError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        ctx.progress("things", 1).await?;
        if self.gate {
            let released = self.release.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            self.entered.notify_one();
            released.await;
            ctx.progress("things", 1).await?;
        }
        Ok(ctx.report())
    }
}

async fn migrated<F: DbFixture>() -> F {
    let f = F::new().await;
    f.db().migrate(&MIGRATIONS).await.unwrap();
    f
}

async fn two_runners_race_and_exactly_one_runs<F: DbFixture>() {
    let f = migrated::<F>().await;
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let job = Arc::new(Gated { gate: true, ..Default::default() });
    let runners: Vec<Arc<JobRunner>> =
        (0..2).map(|_| Arc::new(JobRunner::new(f.db(), clock.clone()).with_batch_size(1))).collect();
    let tasks: Vec<_> = runners
        .iter()
        .map(|r| {
            let (r, job) = (r.clone(), job.clone());
            tokio::spawn(async move { r.run(job.as_ref(), stop()).await.unwrap() })
        })
        .collect();
    tokio::time::timeout(wait::default_limit(), job.entered.notified()).await.expect("no runner started the job");
    // The loser answers while the winner still holds the lease.
    wait::until("the losing runner's answer", || async { tasks.iter().any(|t| t.is_finished()) }).await;
    assert_eq!(tasks.iter().filter(|t| t.is_finished()).count(), 1, "the winner waits at its gate");
    job.release.notify_one();
    let mut outcomes = Vec::new();
    for t in tasks {
        let outcome = tokio::time::timeout(wait::default_limit(), t).await.expect("a runner never finished");
        outcomes.push(outcome.unwrap());
    }
    let ran = outcomes.iter().filter(|o| matches!(o, RunOutcome::Ran(r) if r.get("things") == 2)).count();
    let busy = outcomes.iter().filter(|o| matches!(o, RunOutcome::Busy { .. })).count();
    assert_eq!((ran, busy), (1, 1), "{outcomes:?}");
    assert_eq!(job.runs.load(Ordering::SeqCst), 1, "the job ran once");

    let status = runners[0].status().await.unwrap();
    assert_eq!(status.len(), 1);
    let s = &status[0];
    assert_eq!((s.name.as_str(), s.last_outcome.as_deref(), s.last_items.get("things")), ("gated", Some("ok"), 2));
    assert!(!s.running(clock.now()), "the lease was released");
    assert!(runners.iter().any(|r| r.holder() == s.holder));
}

async fn an_expired_lease_is_taken_over<F: DbFixture>() {
    let f = migrated::<F>().await;
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let lease = Duration::minutes(10);
    let stuck = Arc::new(Gated { gate: true, ..Default::default() });
    let a = Arc::new(JobRunner::new(f.db(), clock.clone()).with_lease(lease));
    let b = JobRunner::new(f.db(), clock.clone()).with_lease(lease);
    let first = {
        let (a, stuck) = (a.clone(), stuck.clone());
        tokio::spawn(async move { a.run(stuck.as_ref(), stop()).await })
    };
    tokio::time::timeout(wait::default_limit(), stuck.entered.notified()).await.expect("a never started the job");
    let quick = Gated::default();
    assert!(matches!(b.run(&quick, stop()).await.unwrap(), RunOutcome::Busy { .. }), "a holds the lease");
    let status = b.status().await.unwrap();
    assert!(status[0].running(clock.now()));

    clock.advance(lease - Duration::seconds(1));
    assert!(matches!(b.run(&quick, stop()).await.unwrap(), RunOutcome::Busy { .. }), "not yet expired");
    clock.advance(Duration::seconds(1));
    assert!(matches!(b.run(&quick, stop()).await.unwrap(), RunOutcome::Ran(_)), "expired: taken over");
    assert_eq!(quick.runs.load(Ordering::SeqCst), 1);

    // a wakes up, reports its next batch, finds its lease gone and stops.
    stuck.release.notify_one();
    let result = tokio::time::timeout(wait::default_limit(), first).await.expect("a never stopped").unwrap();
    assert!(matches!(result, Err(JobError::LeaseLost)), "{result:?}");
    let status = b.status().await.unwrap();
    assert_eq!((status[0].holder.as_str(), status[0].last_outcome.as_deref()), (b.holder(), Some("ok")));
}

async fn scheduled_runs_wait_for_their_interval<F: DbFixture>() {
    let f = migrated::<F>().await;
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let (a, b) = (JobRunner::new(f.db(), clock.clone()), JobRunner::new(f.db(), clock.clone()));
    let job = Gated::default();
    let day = StdDuration::from_secs(86_400);
    assert!(matches!(a.run_if_due(&job, day, stop()).await.unwrap(), RunOutcome::Ran(_)), "never ran: due");
    clock.advance(Duration::hours(23));
    assert!(matches!(b.run_if_due(&job, day, stop()).await.unwrap(), RunOutcome::NotDue), "another replica waits");
    assert!(matches!(b.run(&job, stop()).await.unwrap(), RunOutcome::Ran(_)), "by hand it runs at once");
    clock.advance(Duration::hours(24));
    assert!(matches!(a.run_if_due(&job, day, stop()).await.unwrap(), RunOutcome::Ran(_)), "a day after the last");
    assert_eq!(job.runs.load(Ordering::SeqCst), 3);
}

async fn a_job_stops_at_shutdown<F: DbFixture>() {
    let f = migrated::<F>().await;
    let runner = JobRunner::new(f.db(), Arc::new(ManualClock::new(OffsetDateTime::now_utc())));
    let (tx, rx) = watch::channel(true);
    let job = Gated::default();
    assert!(matches!(runner.run(&job, rx).await, Err(JobError::Stopped)));
    drop(tx);
    let status = runner.status().await.unwrap();
    assert_eq!(status[0].last_outcome.as_deref(), Some("stopped"));
    assert!(matches!(runner.run(&job, stop()).await.unwrap(), RunOutcome::Ran(_)), "the lease was released");
}

async fn run(db: &Database, job: &dyn Job, at: OffsetDateTime) -> JobReport {
    let runner = JobRunner::new(db, Arc::new(ManualClock::new(at))).with_batch_size(2);
    match runner.run(job, stop()).await.unwrap() {
        RunOutcome::Ran(r) => r,
        other => panic!("{other:?}"),
    }
}

/// An outbox row, published at `published` (or not at all).
async fn outbox_row(db: &Database, published: Option<OffsetDateTime>) {
    let (id, at) = (Uuid::now_v7(), OffsetDateTime::now_utc());
    match db {
        Database::Sqlite(db) => {
            let fmt = |t: OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap();
            let published = published.map(fmt);
            db.write(move |tx| {
                tx.execute(
                    "INSERT INTO outbox (id, event_type, aggregate_id, occurred_at, data, published_at) \
                     VALUES (?1, 't', ?1, ?2, '{}', ?3)",
                    rusqlite::params![id, fmt(at), published],
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
                    "INSERT INTO outbox (id, event_type, aggregate_id, occurred_at, data, published_at) \
                     VALUES ($1, 't', $1, $2, '{}', $3)",
                    &[&id, &at, &published],
                )
                .await
                .map_err(postgres::map_err)
                .unwrap();
        }
    }
}

async fn outbox_job_deletes_old_published_rows<F: DbFixture>() {
    let f = migrated::<F>().await;
    f.db().migrate(&platform::outbox::MIGRATIONS).await.unwrap();
    let run_at = OffsetDateTime::now_utc() + Duration::days(30);
    let cutoff = run_at - Duration::days(7);
    let min = Duration::minutes(1);
    for _ in 0..3 {
        outbox_row(f.db(), Some(cutoff - min)).await;
    }
    outbox_row(f.db(), Some(cutoff + min)).await;
    outbox_row(f.db(), None).await;
    let report = run(f.db(), &OutboxJob::new(f.db().clone(), Duration::days(7)), run_at).await;
    assert_eq!(report.get("outbox_events"), 3, "{report:?}");
    let left = query_i64(f.db(), "SELECT count(*) FROM outbox", "SELECT count(*) FROM outbox", vec![]).await.unwrap();
    let unpublished = query_i64(
        f.db(),
        "SELECT count(*) FROM outbox WHERE published_at IS NULL",
        "SELECT count(*) FROM outbox WHERE published_at IS NULL",
        vec![],
    )
    .await
    .unwrap();
    assert_eq!((left, unpublished), (2, 1), "the recent and the unpublished rows stay");

    // Never less than a day: with retention 0 the row of a week ago goes, one of an hour ago stays.
    outbox_row(f.db(), Some(run_at - Duration::hours(1))).await;
    let report = run(f.db(), &OutboxJob::new(f.db().clone(), Duration::ZERO), run_at).await;
    assert_eq!(report.get("outbox_events"), 1, "{report:?}");
    let left = query_i64(f.db(), "SELECT count(*) FROM outbox", "SELECT count(*) FROM outbox", vec![]).await.unwrap();
    assert_eq!(left, 2, "the row of an hour ago and the unpublished one");
}

async fn idempotency_job_deletes_expired_keys<F: DbFixture>() {
    let f = migrated::<F>().await;
    f.db().migrate(&platform::http::idempotency::MIGRATIONS).await.unwrap();
    let store: Arc<dyn IdempotencyStore> = match f.db() {
        Database::Sqlite(db) => Arc::new(SqliteIdempotencyStore::new(db.clone())),
        Database::Postgres(db) => Arc::new(PgIdempotencyStore::new(db.clone())),
    };
    let run_at = OffsetDateTime::now_utc();
    let expired = run_at - Duration::hours(24);
    let min = Duration::minutes(1);
    for (n, created) in [(1u8, expired - min), (2, expired - min), (3, expired - min), (4, expired + min)] {
        let r = Reserve {
            key: [n; 32],
            user_id: Uuid::now_v7(),
            fingerprint: [0; 32],
            token: Uuid::now_v7(),
            now: created,
            lease_until: created + Duration::seconds(60),
            expired_at_or_before: created - Duration::hours(24),
        };
        store.reserve(&r).await.unwrap();
    }
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(run_at));
    let job = IdempotencyKeysJob::new(Arc::new(Idempotency::new(f.db(), clock)));
    let report = run(f.db(), &job, run_at).await;
    assert_eq!(report.get("idempotency_keys"), 3, "{report:?}");
    let left =
        query_i64(f.db(), "SELECT count(*) FROM idempotency_keys", "SELECT count(*) FROM idempotency_keys", vec![])
            .await
            .unwrap();
    assert_eq!(left, 1);
}

/// Objects under `tmp/` older than the retention go, others and objects elsewhere stay; files
/// under the folder likewise, in subfolders too.
async fn temp_files_job_deletes_old_temporary_objects_and_files<O: Fixture>() {
    let f = migrated::<TestSqlite>().await;
    let objects = O::new().await;
    let store = objects.store();
    // The objects' times are the store's: bracketed by readings taken before and after the puts
    // (a second earlier for stores that keep whole seconds), however long the puts take.
    let before = OffsetDateTime::now_utc() - Duration::seconds(1);
    for key in ["tmp/a", "tmp/deep/b", "attachments/p/c"] {
        store.put(&ObjectPath::from(key), PutPayload::from_static(b"x")).await.unwrap();
    }
    let after = OffsetDateTime::now_utc();
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(tmp.join("sub")).unwrap();
    for (name, age) in [("old", Duration::days(1)), ("sub/old", Duration::days(1)), ("young", -Duration::days(1))] {
        let file = std::fs::File::create(tmp.join(name)).unwrap();
        file.set_modified((before - age).into()).unwrap();
    }
    let job = TempFilesJob::new(Some(store.clone()), Some(tmp.clone()), Duration::days(30));

    // A minute before the objects are 30 days old: only the two files a day older go.
    let report = run(f.db(), &job, before + Duration::days(30) - Duration::minutes(1)).await;
    assert_eq!((report.get("objects"), report.get("files")), (0, 2), "{report:?}");
    assert!(tmp.join("young").exists() && !tmp.join("old").exists() && !tmp.join("sub/old").exists());
    // A minute after: the temporary objects go, the attachment stays.
    let report = run(f.db(), &job, after + Duration::days(30) + Duration::minutes(1)).await;
    assert_eq!((report.get("objects"), report.get("files")), (2, 0), "{report:?}");
    for (key, there) in [("tmp/a", false), ("tmp/deep/b", false), ("attachments/p/c", true)] {
        assert_eq!(store.head(&ObjectPath::from(key)).await.is_ok(), there, "{key}");
    }
}

macro_rules! on_both_databases {
    ($($check:ident),*) => {
        mod sqlite_db {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() { super::$check::<super::TestSqlite>().await })*
        }
        mod postgres_db {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() { super::$check::<super::TestPostgres>().await })*
        }
    };
}

on_both_databases!(
    two_runners_race_and_exactly_one_runs,
    an_expired_lease_is_taken_over,
    scheduled_runs_wait_for_their_interval,
    a_job_stops_at_shutdown,
    outbox_job_deletes_old_published_rows,
    idempotency_job_deletes_expired_keys
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temp_files_on_a_local_folder() {
    temp_files_job_deletes_old_temporary_objects_and_files::<Local>().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temp_files_on_s3() {
    temp_files_job_deletes_old_temporary_objects_and_files::<S3>().await
}
