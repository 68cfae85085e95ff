//! PostgreSQL adapter: tokio-postgres behind a deadpool pool with prepared-statement caching.
//!
//! Chosen over sqlx for hot reads (see ARCHITECTURE.md, "Storage"). Pool waits are bounded so an
//! overloaded or absent database turns into `StoreError::Unavailable` (503) quickly.
//!
//! [`PgDb::query`], [`PgDb::query_opt`] and [`PgDb::execute`] run a cached prepared statement
//! and bump the database's statement counter ([`PgDb::statements`]); tests read it to prove that
//! a request runs a constant number of statements (no N+1). tokio-postgres has no hook of its
//! own, so only statements run through these helpers are counted: code whose statement count is
//! asserted uses nothing else.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod, Timeouts};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use super::StoreError;

#[derive(Clone)]
pub struct PgDb {
    pool: Pool,
    statements: Arc<AtomicU64>,
}

impl std::fmt::Debug for PgDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgDb")
    }
}

impl PgDb {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let mut config: tokio_postgres::Config = url.parse()?;
        config.connect_timeout(Duration::from_secs(2));
        if config.get_application_name().is_none() {
            config.application_name("trellis");
        }
        // Fail fast instead of hanging on locks or slow statements (docs/SECURITY.md R8).
        config.options("-c statement_timeout=10000 -c lock_timeout=5000 -c client_min_messages=warning");
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(16)
            .timeouts(Timeouts {
                wait: Some(Duration::from_secs(2)),
                create: Some(Duration::from_secs(2)),
                recycle: Some(Duration::from_secs(2)),
            })
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()?;
        let db = Self { pool, statements: Arc::default() };
        // Prove the URL works now rather than on the first request.
        drop(db.client().await.map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL: {e}"))?);
        Ok(db)
    }

    pub async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    /// How many statements ran through the counting helpers below since the pool was made.
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// Runs `sql` (prepared once per connection, then cached) on `client`, a connection or a
    /// transaction, and returns its rows; counted.
    pub async fn query<C: GenericClient>(
        &self,
        client: &C,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let stmt = client.prepare_cached(sql).await.map_err(map_err)?;
        self.statements.fetch_add(1, Ordering::Relaxed);
        client.query(&stmt, params).await.map_err(map_err)
    }

    /// Like [`PgDb::query`], for at most one row.
    pub async fn query_opt<C: GenericClient>(
        &self,
        client: &C,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let stmt = client.prepare_cached(sql).await.map_err(map_err)?;
        self.statements.fetch_add(1, Ordering::Relaxed);
        client.query_opt(&stmt, params).await.map_err(map_err)
    }

    /// Like [`PgDb::query`], for a statement without rows; the number of rows it changed.
    pub async fn execute<C: GenericClient>(
        &self,
        client: &C,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let stmt = client.prepare_cached(sql).await.map_err(map_err)?;
        self.statements.fetch_add(1, Ordering::Relaxed);
        client.execute(&stmt, params).await.map_err(map_err)
    }
}

/// What tokio-postgres says when `query_one` returns no row (or, misused, more than one).
const ROW_COUNT_MESSAGE: &str = "query returned an unexpected number of rows";

/// Maps driver errors to typed store errors at the seam.
pub fn map_err(e: tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        if *code == SqlState::UNIQUE_VIOLATION || *code == SqlState::FOREIGN_KEY_VIOLATION {
            return StoreError::Conflict(db.constraint().unwrap_or("constraint").to_string());
        }
        if *code == SqlState::QUERY_CANCELED
            || *code == SqlState::LOCK_NOT_AVAILABLE
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
            || *code == SqlState::READ_ONLY_SQL_TRANSACTION
            || *code == SqlState::TOO_MANY_CONNECTIONS
            // Class 53, insufficient resources: the disk (53100) or memory is full; the
            // transaction is rolled back, so nothing is half-written.
            || *code == SqlState::DISK_FULL
            || *code == SqlState::INSUFFICIENT_RESOURCES
            || *code == SqlState::OUT_OF_MEMORY
        {
            return StoreError::Unavailable(db.message().to_string());
        }
        return StoreError::Internal(format!("{}: {}", code.code(), db.message()));
    }
    // `query_one` found no row. tokio-postgres exposes no kind for this, only the message; it
    // is the same error SQLite reports as `QueryReturnedNoRows`, so both backends say NotFound.
    if e.as_db_error().is_none() && e.to_string() == ROW_COUNT_MESSAGE {
        return StoreError::NotFound;
    }
    if e.is_closed() || e.to_string().contains("connection") {
        return StoreError::Unavailable(e.to_string());
    }
    StoreError::Internal(e.to_string())
}
