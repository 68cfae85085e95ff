//! The database port: one `Database` chosen once from `DATABASE_URL` (SQLite embedded, or
//! PostgreSQL), typed errors at the seam, and per-service migrations.
//!
//! Stores are written per backend (`store/sqlite.rs`, `store/postgres.rs` in each service) with
//! plain SQL: the dialects differ too much (types, upserts, full-text search) for one query text.

mod migrate;
pub mod postgres;
pub mod sqlite;

pub use migrate::{Migration, Migrations};
pub use postgres::PgDb;
pub use sqlite::SqliteDb;

use std::path::Path;

/// What a store operation can fail with, whatever the backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness or foreign-key constraint refused the write; names the constraint.
    #[error("conflict on {0}")]
    Conflict(String),
    /// The database cannot be reached or is overloaded; the caller should answer 503.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Internal(String),
}

impl From<StoreError> for api::ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => api::ApiError::NotFound,
            StoreError::Conflict(c) => api::ApiError::Conflict(c),
            StoreError::Unavailable(m) => api::ApiError::Unavailable(m),
            StoreError::Internal(m) => api::ApiError::Internal(m),
        }
    }
}

/// The database, chosen by URL scheme at start-up.
#[derive(Clone, Debug)]
pub enum Database {
    Sqlite(SqliteDb),
    Postgres(PgDb),
}

impl Database {
    /// Connects to `sqlite://path` (created if missing) or `postgres://…`.
    pub async fn connect(url: &str) -> anyhow::Result<Database> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            let path = path.split('?').next().unwrap_or(path);
            Ok(Database::Sqlite(SqliteDb::open(Path::new(path)).await?))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Database::Postgres(PgDb::connect(url).await?))
        } else {
            anyhow::bail!("unsupported DATABASE_URL scheme in {:?}: expected sqlite:// or postgres://", redact_url(url))
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "sqlite",
            Database::Postgres(_) => "postgres",
        }
    }

    /// Applies the migrations not yet applied; safe to run from several processes at once.
    pub async fn migrate(&self, migrations: &Migrations) -> anyhow::Result<()> {
        match self {
            Database::Sqlite(db) => migrate::sqlite(db, migrations).await,
            Database::Postgres(db) => migrate::postgres(db, migrations).await,
        }
    }

    /// How many statements this database has run (see [`SqliteDb::statements`] and
    /// [`PgDb::statements`] for what each counts).
    pub fn statements(&self) -> u64 {
        match self {
            Database::Sqlite(db) => db.statements(),
            Database::Postgres(db) => db.statements(),
        }
    }

    /// A cheap round trip, for readiness.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Database::Sqlite(db) => db.read(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await,
            Database::Postgres(db) => {
                let client = db.client().await?;
                client.simple_query("SELECT 1").await.map_err(postgres::map_err)?;
                Ok(())
            }
        }
    }
}

/// A URL with any password replaced, safe to log.
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split(':').next().unwrap_or("");
                format!("{scheme}://{user}:***@{host}")
            }
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(redact_url("postgres://u:pw@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redact_url("amqp://guest:guest@localhost/%2f"), "amqp://guest:***@localhost/%2f");
    }
}
