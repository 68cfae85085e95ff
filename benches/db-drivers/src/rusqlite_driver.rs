//! rusqlite behind deadpool-sqlite, the way Trellis reads (`platform::db::sqlite`).
//!
//! Shared as source by both programs: `..` compiles it against rusqlite 0.40 / deadpool-sqlite
//! 0.14 (what Trellis ships), `../sqlx` against rusqlite 0.32 / deadpool-sqlite 0.9, which use the
//! same libsqlite3-sys (SQLite 3.46) as sqlx 0.8 — the control that separates driver from SQLite.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use deadpool_sqlite::{Config, Hook, HookError, Pool, PoolConfig, Runtime};
use rusqlite::types::Type;
use uuid::Uuid;

use crate::harness::{self, BoxError, Measurement, Plan, SQLITE_SELECT, Task};

/// The same pragmas as Trellis's SQLite pool.
pub const PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                           PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;";

pub fn pool(path: &Path, size: usize) -> Result<Pool, BoxError> {
    let mut cfg = Config::new(path);
    let mut pc = PoolConfig::new(size);
    pc.timeouts.wait = Some(Duration::from_secs(5));
    cfg.pool = Some(pc);
    Ok(cfg
        .builder(Runtime::Tokio1)?
        .post_create(Hook::async_fn(|conn, _| {
            Box::pin(async move {
                conn.interact(|c| c.execute_batch(PRAGMAS))
                    .await
                    .map_err(|e| HookError::message(e.to_string()))?
                    .map_err(|e| HookError::message(e.to_string()))
            })
        }))
        .build()?)
}

/// The hot read on one connection: cached statement, one row, decoded.
pub fn read_task(c: &rusqlite::Connection, id: Uuid) -> rusqlite::Result<Task> {
    let mut stmt = c.prepare_cached(SQLITE_SELECT)?;
    stmt.query_row(rusqlite::params![id], |r| {
        let created: String = r.get(5)?;
        let created_at =
            harness::parse_time(&created).map_err(|e| rusqlite::Error::FromSqlConversionFailure(5, Type::Text, e))?;
        Ok(Task {
            id: r.get(0)?,
            project_id: r.get(1)?,
            title: r.get(2)?,
            status: r.get(3)?,
            position: r.get(4)?,
            created_at,
        })
    })
}

/// All primary keys, in table order.
pub fn load_ids(path: &Path) -> Result<Vec<Uuid>, BoxError> {
    let c = rusqlite::Connection::open(path)?;
    let mut stmt = c.prepare("SELECT id FROM bench_tasks")?;
    let ids = stmt.query_map([], |r| r.get::<_, Uuid>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(ids)
}

/// Opens a fresh pool of `size`, fills it, and measures one round.
pub async fn run(
    name: &str,
    round: u32,
    path: &Path,
    size: usize,
    ids: Arc<Vec<Uuid>>,
    plan: Plan,
) -> Result<Measurement, BoxError> {
    let pool = pool(path, size)?;
    // Open every connection before timing starts.
    let mut held = Vec::with_capacity(size);
    for _ in 0..size {
        held.push(pool.get().await?);
    }
    drop(held);
    let p = pool.clone();
    let m = harness::measure(name, round, ids, plan, move |id| {
        let pool = p.clone();
        async move {
            let conn = pool.get().await?;
            let task = conn.interact(move |c| read_task(c, id)).await.map_err(|e| e.to_string())??;
            Ok::<Task, BoxError>(task)
        }
    })
    .await?;
    pool.close();
    Ok(m)
}
