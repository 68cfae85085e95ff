//! SQLite adapter: one writer connection and a few readers (WAL), used from blocking threads.

use std::path::Path;
use std::time::Duration;

use deadpool_sqlite::{Config, Hook, HookError, Pool, PoolConfig, Runtime};
use rusqlite::ErrorCode;

use super::StoreError;

/// An embedded SQLite database. Writes go through a single connection, so writers queue in the
/// pool instead of failing with `SQLITE_BUSY`; reads run in parallel under WAL.
#[derive(Clone)]
pub struct SqliteDb {
    writer: Pool,
    readers: Pool,
}

impl std::fmt::Debug for SqliteDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteDb")
    }
}

fn pool(path: &Path, size: usize) -> anyhow::Result<Pool> {
    let mut cfg = Config::new(path);
    let mut pc = PoolConfig::new(size);
    pc.timeouts.wait = Some(Duration::from_secs(5));
    cfg.pool = Some(pc);
    Ok(cfg
        .builder(Runtime::Tokio1)?
        .post_create(Hook::async_fn(|conn, _| {
            Box::pin(async move {
                conn.interact(|c| {
                    c.execute_batch(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                    )
                })
                .await
                .map_err(|e| HookError::message(e.to_string()))?
                .map_err(|e| HookError::message(e.to_string()))
            })
        }))
        .build()?)
}

impl SqliteDb {
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let db = Self { writer: pool(path, 1)?, readers: pool(path, 4)? };
        // Open the writer first so the file and WAL mode exist before readers connect.
        db.write(|_| Ok(())).await?;
        Ok(db)
    }

    /// Runs `f` on a reader connection on a blocking thread.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let conn = self.readers.get().await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
        conn.interact(move |c| f(c)).await.map_err(|e| StoreError::Internal(e.to_string()))?.map_err(map_err)
    }

    /// Runs `f` inside one `BEGIN IMMEDIATE` transaction on the writer; commits if it returns Ok.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let conn = self.writer.get().await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
        conn.interact(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(map_err)?;
            let out = f(&tx)?;
            tx.commit().map_err(map_err)?;
            Ok(out)
        })
        .await
        .map_err(|e| StoreError::Internal(e.to_string()))?
    }
}

/// Maps driver errors to typed store errors at the seam.
pub fn map_err(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
        rusqlite::Error::SqliteFailure(f, msg) => match f.code {
            ErrorCode::ConstraintViolation => StoreError::Conflict(msg.clone().unwrap_or_else(|| "constraint".into())),
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StoreError::Unavailable(e.to_string()),
            _ => StoreError::Internal(e.to_string()),
        },
        _ => StoreError::Internal(e.to_string()),
    }
}
