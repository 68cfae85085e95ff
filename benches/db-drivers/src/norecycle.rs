//! Diagnostic driver `rusqlite-0.40-norecycle`: the rusqlite leg with deadpool-sqlite's recycle
//! check removed, to show what that check costs.
//!
//! deadpool-sqlite 0.14 runs `SELECT $1` through `interact` (a second blocking-thread hop) every
//! time a pooled connection is handed out. This pool is the same deadpool + `SyncWrapper` with a
//! no-op `recycle`; the read itself is `rusqlite_driver::read_task`, unchanged. Not run by default.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use deadpool::Runtime;
use deadpool::managed::{self, Metrics, Pool, RecycleResult};
use deadpool_sync::SyncWrapper;
use uuid::Uuid;

use crate::harness::{self, BoxError, Measurement, Plan, Task};
use crate::rusqlite_driver::{PRAGMAS, read_task};

pub const NAME: &str = "rusqlite-0.40-norecycle";

struct NoRecycle {
    path: PathBuf,
}

impl managed::Manager for NoRecycle {
    type Type = SyncWrapper<rusqlite::Connection>;
    type Error = rusqlite::Error;

    async fn create(&self) -> Result<Self::Type, Self::Error> {
        let path = self.path.clone();
        SyncWrapper::new(Runtime::Tokio1, move || {
            let c = rusqlite::Connection::open(path)?;
            c.execute_batch(PRAGMAS)?;
            Ok(c)
        })
        .await
    }

    async fn recycle(&self, _: &mut Self::Type, _: &Metrics) -> RecycleResult<Self::Error> {
        Ok(())
    }
}

pub async fn run(
    round: u32,
    path: &Path,
    size: usize,
    ids: Arc<Vec<Uuid>>,
    plan: Plan,
) -> Result<Measurement, BoxError> {
    let pool: Pool<NoRecycle> =
        Pool::builder(NoRecycle { path: path.to_path_buf() }).max_size(size).runtime(Runtime::Tokio1).build()?;
    let mut held = Vec::with_capacity(size);
    for _ in 0..size {
        held.push(pool.get().await?);
    }
    drop(held);
    let p = pool.clone();
    let m = harness::measure(NAME, round, ids, plan, move |id| {
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
