//! Migrations: each service owns an ordered list per backend, embedded with `include_str!`, and
//! a `schema_migrations(service, version)` table records what ran.
//!
//! Written here rather than taken from refinery or sqlx because several service processes may
//! start against one PostgreSQL at once: the runner takes an advisory lock so exactly one applies
//! a migration, and each service's history is kept apart in one table.

use super::postgres::map_err as pg_err;
use super::sqlite::map_err as sqlite_err;
use super::{PgDb, SqliteDb, StoreError};

#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// One service's migrations for both backends.
#[derive(Debug, Clone, Copy)]
pub struct Migrations {
    pub service: &'static str,
    pub sqlite: &'static [Migration],
    pub postgres: &'static [Migration],
}

const SQLITE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    service TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL,
    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    PRIMARY KEY (service, version))";

const PG_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    service TEXT NOT NULL, version BIGINT NOT NULL, name TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (service, version))";

/// A fixed key for `pg_advisory_xact_lock`: "trellis-migrate".
const PG_LOCK_KEY: i64 = 0x0074_7265_6c6c_6973;

pub(super) async fn sqlite(db: &SqliteDb, m: &Migrations) -> anyhow::Result<()> {
    let m = *m;
    db.write(move |tx| {
        tx.execute_batch(SQLITE_TABLE).map_err(sqlite_err)?;
        for mig in m.sqlite {
            let done: bool = tx
                .query_row(
                    "SELECT EXISTS(SELECT 1 FROM schema_migrations WHERE service = ?1 AND version = ?2)",
                    rusqlite::params![m.service, mig.version],
                    |r| r.get(0),
                )
                .map_err(sqlite_err)?;
            if done {
                continue;
            }
            tx.execute_batch(mig.sql)
                .map_err(|e| StoreError::Internal(format!("migration {} {}: {e}", m.service, mig.name)))?;
            tx.execute(
                "INSERT INTO schema_migrations (service, version, name) VALUES (?1, ?2, ?3)",
                rusqlite::params![m.service, mig.version, mig.name],
            )
            .map_err(sqlite_err)?;
            tracing::info!(service = m.service, migration = mig.name, "applied migration");
        }
        Ok(())
    })
    .await?;
    Ok(())
}

pub(super) async fn postgres(db: &PgDb, m: &Migrations) -> anyhow::Result<()> {
    let mut client = db.client().await?;
    let tx = client.transaction().await.map_err(pg_err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PG_LOCK_KEY]).await.map_err(pg_err)?;
    tx.batch_execute(PG_TABLE).await.map_err(pg_err)?;
    for mig in m.postgres {
        let done: bool = tx
            .query_one(
                "SELECT EXISTS(SELECT 1 FROM schema_migrations WHERE service = $1 AND version = $2)",
                &[&m.service, &mig.version],
            )
            .await
            .map_err(pg_err)?
            .get(0);
        if done {
            continue;
        }
        tx.batch_execute(mig.sql).await.map_err(|e| anyhow::anyhow!("migration {} {}: {e}", m.service, mig.name))?;
        tx.execute(
            "INSERT INTO schema_migrations (service, version, name) VALUES ($1, $2, $3)",
            &[&m.service, &mig.version, &mig.name],
        )
        .await
        .map_err(pg_err)?;
        tracing::info!(service = m.service, migration = mig.name, "applied migration");
    }
    tx.commit().await.map_err(pg_err)?;
    Ok(())
}
