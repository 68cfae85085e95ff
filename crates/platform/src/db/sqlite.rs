//! SQLite adapter: one writer connection and a few readers (WAL), used from blocking threads.

use std::path::{Path, PathBuf};
use std::time::Duration;

use deadpool::Runtime;
use deadpool::managed::{self, Metrics, Pool, RecycleError, RecycleResult, Timeouts};
use deadpool_sync::SyncWrapper;
use rusqlite::ErrorCode;

use super::StoreError;

/// Opens connections to one database file. Unlike deadpool-sqlite's manager it runs no query
/// when a connection is handed out: a connection to a local file cannot go stale, and that check
/// cost a second blocking-thread hop per read (`benches/db-drivers`: ×1.76 read throughput
/// without it). A connection is dropped only if a closure panicked while holding it.
struct Manager {
    path: PathBuf,
}

impl managed::Manager for Manager {
    type Type = SyncWrapper<rusqlite::Connection>;
    type Error = rusqlite::Error;

    async fn create(&self) -> Result<Self::Type, Self::Error> {
        let path = self.path.clone();
        SyncWrapper::new(Runtime::Tokio1, move || {
            let c = rusqlite::Connection::open(path)?;
            c.execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
            )?;
            Ok(c)
        })
        .await
    }

    async fn recycle(&self, conn: &mut Self::Type, _: &Metrics) -> RecycleResult<Self::Error> {
        if conn.is_mutex_poisoned() {
            return Err(RecycleError::message("a closure panicked while holding this connection"));
        }
        Ok(())
    }
}

/// An embedded SQLite database. Writes go through a single connection, so writers queue in the
/// pool instead of failing with `SQLITE_BUSY`; reads run in parallel under WAL.
#[derive(Clone)]
pub struct SqliteDb {
    writer: Pool<Manager>,
    readers: Pool<Manager>,
}

impl std::fmt::Debug for SqliteDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteDb")
    }
}

fn pool(path: &Path, size: usize) -> anyhow::Result<Pool<Manager>> {
    Ok(Pool::builder(Manager { path: path.to_path_buf() })
        .max_size(size)
        .timeouts(Timeouts { wait: Some(Duration::from_secs(5)), ..Timeouts::default() })
        .runtime(Runtime::Tokio1)
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
