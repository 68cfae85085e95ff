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
    /// A uniqueness or foreign-key constraint refused the write; names the constraint (for the
    /// log only: [`CONFLICT_DETAIL`] is all a client is told).
    #[error("conflict on {0}")]
    Conflict(String),
    /// The database cannot be reached, is overloaded, or its disk is full (SQLite `SQLITE_FULL`,
    /// PostgreSQL 53100 `disk_full`); the caller should answer 503 and nothing was written.

    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Internal(String),
}

/// What a client is told about a write a constraint refused: never the table, constraint or
/// column (docs/SECURITY.md GW-2), which stay in the log. Services that know what the conflict
/// means (an email already registered, an existing member) say so themselves.
pub const CONFLICT_DETAIL: &str = "the request conflicts with the current state of the resource";

impl From<StoreError> for api::ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => api::ApiError::NotFound,
            StoreError::Conflict(constraint) => {
                tracing::info!(%constraint, "a constraint refused a write");
                api::ApiError::Conflict(CONFLICT_DETAIL.into())
            }
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

    /// Checks, without changing anything, that every migration of `migrations` was applied (for a
    /// server whose role may not change the schema: `migrate_on_start = false`); the error names
    /// the first one missing.
    pub async fn ensure_migrated(&self, migrations: &Migrations) -> anyhow::Result<()> {
        let (service, list) = match self {
            Database::Sqlite(_) => (migrations.service, migrations.sqlite),
            Database::Postgres(_) => (migrations.service, migrations.postgres),
        };
        let applied: Vec<i64> = match self {
            Database::Sqlite(db) => {
                db.read(move |c| {
                    let mut st = c.prepare("SELECT version FROM schema_migrations WHERE service = ?1")?;
                    st.query_map([service], |r| r.get(0))?.collect()
                })
                .await
            }
            Database::Postgres(db) => {
                let client = db.client().await?;
                db.query(&client, "SELECT version FROM schema_migrations WHERE service = $1", &[&service])
                    .await
                    .map(|rows| rows.iter().map(|r| r.get(0)).collect())
            }
        }
        .map_err(|e| anyhow::anyhow!("cannot read the schema's migrations (run `trellis migrate` first): {e}"))?;
        if let Some(m) = list.iter().find(|m| !applied.contains(&m.version)) {
            anyhow::bail!(
                "migration {service} {} ({}) has not been applied: run `trellis migrate` with the schema owner's \
                 DATABASE_URL first",
                m.version,
                m.name
            );
        }
        Ok(())
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
    fn a_conflict_names_no_table_constraint_or_column() {
        for constraint in ["UNIQUE constraint failed: users.email_index", "project_members_pkey"] {
            let api = api::ApiError::from(super::StoreError::Conflict(constraint.into()));
            let api::ApiError::Conflict(detail) = api else { panic!("still a conflict: {api:?}") };
            for leak in ["users", "email_index", "project_members", "pkey", "constraint"] {
                assert!(!detail.contains(leak), "{detail:?} names {leak:?}");
            }
        }
    }

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(redact_url("postgres://u:pw@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redact_url("amqp://guest:guest@localhost/%2f"), "amqp://guest:***@localhost/%2f");
    }
}
