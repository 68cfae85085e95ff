//! The platform's own data-lifecycle jobs: expired idempotency keys, old published outbox rows,
//! and temporary files.
//!
//! **Temporary files.** Anything written for a while only (an upload being assembled, an export
//! being built) goes under the [`TEMP_PREFIX`] of object storage or under `<data_dir>/tmp`
//! ([`TEMP_DIR`]); the `temp-files` job deletes what is older than its retention (30 days by
//! default) in both. Nothing else may be kept there.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use time::OffsetDateTime;

use super::{Job, JobContext, JobError, JobReport};
use crate::db::Database;
use crate::http::idempotency::Idempotency;
use crate::objects::{ObjectPath, ObjectStore, ObjectStoreExt};

/// The object-storage prefix of temporary objects.
pub const TEMP_PREFIX: &str = "tmp/";
/// The folder of temporary files under the data folder.
pub const TEMP_DIR: &str = "tmp";

/// `idempotency-keys`: deletes stored `Idempotency-Key` answers older than 24 hours.
pub struct IdempotencyKeysJob {
    idempotency: Arc<Idempotency>,
}

impl IdempotencyKeysJob {
    pub fn new(idempotency: Arc<Idempotency>) -> Self {
        Self { idempotency }
    }
}

#[async_trait]
impl Job for IdempotencyKeysJob {
    fn name(&self) -> &'static str {
        "idempotency-keys"
    }

    fn description(&self) -> &'static str {
        "delete stored Idempotency-Key answers past their 24 hours"
    }

    async fn run(&self, ctx: &JobContext) -> Result<JobReport, JobError> {
        let now = ctx.now();
        ctx.drain("idempotency_keys", |limit| self.idempotency.purge_batch(now, limit)).await?;
        Ok(ctx.report())
    }
}

/// `outbox`: deletes published outbox rows older than the retention.
pub struct OutboxJob {
    db: Database,
    retention: time::Duration,
}

impl OutboxJob {
    /// `retention` is at least a day: live updates replay recent outbox rows.
    pub fn new(db: Database, retention: time::Duration) -> Self {
        Self { db, retention: retention.max(time::Duration::days(1)) }
    }
}

#[async_trait]
impl Job for OutboxJob {
    fn name(&self) -> &'static str {
        "outbox"
    }

    fn description(&self) -> &'static str {
        "delete outbox rows published more than events.retention_days ago"
    }

    async fn run(&self, ctx: &JobContext) -> Result<JobReport, JobError> {
        let before = ctx.now() - self.retention;
        ctx.drain("outbox_events", |limit| crate::outbox::purge_published(&self.db, before, limit)).await?;
        Ok(ctx.report())
    }
}

/// `temp-files`: deletes temporary objects (under [`TEMP_PREFIX`]) and files (under
/// `<data_dir>/tmp`) older than the retention.
pub struct TempFilesJob {
    objects: Option<Arc<dyn ObjectStore>>,
    dir: Option<PathBuf>,
    retention: time::Duration,
}

impl TempFilesJob {
    /// `dir` is the data folder's `tmp` ([`TEMP_DIR`]); either part may be absent.
    pub fn new(objects: Option<Arc<dyn ObjectStore>>, dir: Option<PathBuf>, retention: time::Duration) -> Self {
        Self { objects, dir, retention }
    }

    async fn objects(&self, ctx: &JobContext, store: &dyn ObjectStore, cutoff: OffsetDateTime) -> Result<(), JobError> {
        let prefix = ObjectPath::from(TEMP_PREFIX);
        let chunk = usize::try_from(ctx.batch_size()).unwrap_or(1000);
        let mut pages = store.list(Some(&prefix)).try_chunks(chunk);
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| JobError::Objects(e.1.to_string()))?;
            let mut deleted = 0;
            for meta in page {
                if meta.last_modified.timestamp_micros() >= micros(cutoff) {
                    continue;
                }
                match store.delete(&meta.location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
                    Err(e) => return Err(JobError::Objects(e.to_string())),
                }
            }
            ctx.progress("objects", deleted).await?;
        }
        Ok(())
    }

    async fn files(&self, ctx: &JobContext, dir: &Path, cutoff: OffsetDateTime) -> Result<(), JobError> {
        let root = dir.to_path_buf();
        let cutoff = std::time::SystemTime::from(cutoff);
        let old = tokio::task::spawn_blocking(move || old_files(&root, cutoff))
            .await
            .map_err(|e| JobError::Files(e.to_string()))?
            .map_err(|e| JobError::Files(e.to_string()))?;
        let chunk = usize::try_from(ctx.batch_size()).unwrap_or(1000);
        for batch in old.chunks(chunk) {
            let batch = batch.to_vec();
            let deleted = tokio::task::spawn_blocking(move || {
                batch.iter().filter(|p| std::fs::remove_file(p).is_ok()).count() as u64
            })
            .await
            .map_err(|e| JobError::Files(e.to_string()))?;
            ctx.progress("files", deleted).await?;
        }
        Ok(())
    }
}

fn micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

/// Files (and symbolic links, never followed) under `root` last modified before `cutoff`; a
/// missing `root` has none.
fn old_files(root: &Path, cutoff: std::time::SystemTime) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let meta = std::fs::symlink_metadata(entry.path())?;
            if meta.is_dir() {
                dirs.push(entry.path());
            } else if meta.modified()? < cutoff {
                out.push(entry.path());
            }
        }
    }
    Ok(out)
}

#[async_trait]
impl Job for TempFilesJob {
    fn name(&self) -> &'static str {
        "temp-files"
    }

    fn description(&self) -> &'static str {
        "delete temporary objects (tmp/) and files (<data_dir>/tmp) older than jobs.temp_files_retention_days"
    }

    async fn run(&self, ctx: &JobContext) -> Result<JobReport, JobError> {
        let cutoff = ctx.now() - self.retention;
        if let Some(store) = &self.objects {
            self.objects(ctx, store.as_ref(), cutoff).await?;
        }
        if let Some(dir) = &self.dir {
            self.files(ctx, dir, cutoff).await?;
        }
        Ok(ctx.report())
    }
}
