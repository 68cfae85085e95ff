//! The worker's data-lifecycle jobs: `processed-events` (run by `platform::jobs`): rows of
//! `worker_processed_events` older than the dedupe window (30 days by default) are deleted in
//! bounded batches. A redelivery older than the window would be handled again; the audit log
//! still refuses an event id it already holds.
//!
//! The audit log's archive, `audit-archive`, is the other job of this crate.

use async_trait::async_trait;
use platform::db::{Database, StoreError, postgres, sqlite};
use platform::jobs::{Job, JobContext, JobError, JobReport};
use time::OffsetDateTime;

/// Deletes up to `limit` processed-event ids recorded before `before`; returns how many went.
pub async fn purge_processed_events(db: &Database, before: OffsetDateTime, limit: i64) -> Result<u64, StoreError> {
    match db {
        Database::Sqlite(db) => {
            let before = before.unix_timestamp_nanos() as f64 / 1e9;
            db.write(move |tx| {
                tx.execute(
                    "DELETE FROM worker_processed_events WHERE event_id IN (SELECT event_id \
                     FROM worker_processed_events WHERE unixepoch(processed_at, 'subsec') < ?1 LIMIT ?2)",
                    rusqlite::params![before, limit],
                )
                .map(|n| n as u64)
                .map_err(sqlite::map_err)
            })
            .await
        }
        Database::Postgres(db) => {
            let client = db.client().await?;
            client
                .execute(
                    "DELETE FROM worker_processed_events WHERE event_id IN \
                     (SELECT event_id FROM worker_processed_events WHERE processed_at < $1 LIMIT $2)",
                    &[&before, &limit],
                )
                .await
                .map_err(postgres::map_err)
        }
    }
}

pub struct ProcessedEventsJob {
    db: Database,
    retention: time::Duration,
}

impl ProcessedEventsJob {
    pub fn new(db: Database, retention: time::Duration) -> Self {
        Self { db, retention }
    }
}

#[async_trait]
impl Job for ProcessedEventsJob {
    fn name(&self) -> &'static str {
        "processed-events"
    }

    fn description(&self) -> &'static str {
        "delete processed-event ids older than jobs.processed_events_retention_days (the dedupe window)"
    }

    async fn run(&self, ctx: &JobContext) -> Result<JobReport, JobError> {
        let before = ctx.now() - self.retention;
        ctx.drain("processed_events", |limit| purge_processed_events(&self.db, before, limit)).await?;
        Ok(ctx.report())
    }
}

/// `audit-archive`: audit entries older than the retention (a year) go to object storage as
/// compressed JSON Lines with their chain hashes, then leave the table (`AuditLog::archive`). Two
/// runs at once cannot archive twice: each archive commits only on the anchor it started from.
pub struct AuditArchiveJob {
    log: crate::audit::AuditLog,
    objects: std::sync::Arc<dyn object_store::ObjectStore>,
    retention: time::Duration,
}

impl AuditArchiveJob {
    pub fn new(
        log: crate::audit::AuditLog,
        objects: std::sync::Arc<dyn object_store::ObjectStore>,
        retention: time::Duration,
    ) -> Self {
        Self { log, objects, retention }
    }
}

#[async_trait]
impl Job for AuditArchiveJob {
    fn name(&self) -> &'static str {
        "audit-archive"
    }

    fn description(&self) -> &'static str {
        "move audit entries older than jobs.audit_retention_days to object storage (gzip JSON Lines, verifiable)"
    }

    async fn run(&self, ctx: &JobContext) -> Result<JobReport, JobError> {
        let cutoff = ctx.now() - self.retention;
        let done = self.log.archive(self.objects.as_ref(), cutoff, crate::audit::ARCHIVE_BATCH).await?;
        ctx.progress("audit_archives", done.archives).await?;
        ctx.progress("audit_entries", done.entries).await?;
        Ok(ctx.report())
    }
}
