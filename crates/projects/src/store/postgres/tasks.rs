//! The PostgreSQL adapter of [`TaskStore`]: every task write locks its project row first
//! (`FOR NO KEY UPDATE`, which does not block other writers' foreign-key checks), so writes to one
//! project's tasks queue and the neighbours a move reads cannot change before it writes. Lists and
//! reads go through the counting helpers of [`platform::db::PgDb`].

use api::projects::TaskStatus;
use async_trait::async_trait;
use deadpool_postgres::Transaction;
use platform::bus::Event;
use platform::db::{PgDb, StoreError, postgres::map_err};
use platform::outbox;
use time::OffsetDateTime;
use tokio_postgres::types::{Json, ToSql};
use uuid::Uuid;

use super::{PgStore, task_record};
use crate::ports::{NewTask, Placement, TaskChange, TaskEvent, TaskQuery, TaskRecord, TaskStore, TaskWrite};
use crate::rank::spread;
use crate::store::tasks::{
    Dialect, GapOrBadNeighbour, Param, TASK_COLUMNS, already_there, changed_record, list_sql, new_record, rank_in,
    reordered,
};
use crate::store::{priority_code, status_code};

/// Locks the project's row; `false` when there is no such project.
async fn lock_project(db: &PgDb, tx: &Transaction<'_>, id: Uuid) -> Result<bool, StoreError> {
    Ok(db.query_opt(tx, "SELECT 1 FROM projects WHERE id = $1 FOR NO KEY UPDATE", &[&id]).await?.is_some())
}

/// Whether `user` is a member, holding their membership row (`FOR SHARE`) until commit so that
/// a concurrent removal waits (and then unassigns the task it finds).
async fn is_member(db: &PgDb, tx: &Transaction<'_>, project: Uuid, user: Uuid) -> Result<bool, StoreError> {
    let sql = "SELECT 1 FROM project_members WHERE project_id = $1 AND user_id = $2 FOR SHARE";
    Ok(db.query_opt(tx, sql, &[&project, &user]).await?.is_some())
}

const ANCHOR: &str = "SELECT position FROM tasks WHERE id = $4 AND project_id = $1 AND status = $2 AND id <> $3";
const LAST: &str = "SELECT position FROM tasks WHERE project_id = $1 AND status = $2 AND id <> $3 \
                    ORDER BY position DESC LIMIT 1";
const BELOW: &str = "SELECT position FROM tasks WHERE project_id = $1 AND status = $2 AND id <> $3 \
                     AND position < $4 ORDER BY position DESC LIMIT 1";
const ABOVE: &str = "SELECT position FROM tasks WHERE project_id = $1 AND status = $2 AND id <> $3 \
                     AND position > $4 ORDER BY position LIMIT 1";

async fn position(
    db: &PgDb,
    tx: &Transaction<'_>,
    sql: &str,
    p: &[&(dyn ToSql + Sync)],
) -> Result<Option<String>, StoreError> {
    db.query_opt(tx, sql, p).await?.map(|r| r.try_get(0).map_err(map_err)).transpose()
}

/// The gap `(lo, hi)` of the column where `placement` puts `task`, read without `task` itself;
/// `Err(field)` when a neighbour is not a task of the column (or the two are not adjacent).
async fn gap(
    db: &PgDb,
    tx: &Transaction<'_>,
    (project, status, task): (Uuid, TaskStatus, Uuid),
    placement: Placement,
) -> Result<GapOrBadNeighbour, StoreError> {
    let s = status_code(status);
    Ok(Ok(match (placement.after, placement.before) {
        (None, None) => (position(db, tx, LAST, &[&project, &s, &task]).await?, None),
        (None, Some(b)) => {
            let Some(hi) = position(db, tx, ANCHOR, &[&project, &s, &task, &b]).await? else {
                return Ok(Err("before_id"));
            };
            (position(db, tx, BELOW, &[&project, &s, &task, &hi]).await?, Some(hi))
        }
        (Some(a), None) => {
            let Some(lo) = position(db, tx, ANCHOR, &[&project, &s, &task, &a]).await? else {
                return Ok(Err("after_id"));
            };
            let hi = position(db, tx, ABOVE, &[&project, &s, &task, &lo]).await?;
            (Some(lo), hi)
        }
        (Some(a), Some(b)) => {
            let Some(lo) = position(db, tx, ANCHOR, &[&project, &s, &task, &a]).await? else {
                return Ok(Err("after_id"));
            };
            let Some(hi) = position(db, tx, ANCHOR, &[&project, &s, &task, &b]).await? else {
                return Ok(Err("before_id"));
            };
            if position(db, tx, ABOVE, &[&project, &s, &task, &lo]).await?.as_deref() != Some(hi.as_str()) {
                return Ok(Err("before_id"));
            }
            (Some(lo), Some(hi))
        }
    }))
}

/// Gives the column fresh, evenly spread ranks with `task` (already in it, at any position)
/// just after `lo`; the new `(id, position)`s in order.
async fn rebalance(
    db: &PgDb,
    tx: &Transaction<'_>,
    (project, status, task): (Uuid, TaskStatus, Uuid),
    lo: Option<&str>,
) -> Result<Vec<(Uuid, String)>, StoreError> {
    let s = status_code(status);
    let sql = "SELECT id, position FROM tasks WHERE project_id = $1 AND status = $2 AND id <> $3 ORDER BY position";
    let column = db
        .query(tx, sql, &[&project, &s, &task])
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0).map_err(map_err)?, r.try_get(1).map_err(map_err)?)))
        .collect::<Result<Vec<(Uuid, String)>, StoreError>>()?;
    let ids = reordered(column, task, lo);
    // Out of the way first (unique ranks per column): '~' sorts after every rank digit.
    let aside = "UPDATE tasks SET position = '~' || id::text WHERE project_id = $1 AND status = $2";
    db.execute(tx, aside, &[&project, &s]).await?;
    let ranks = spread(ids.len());
    let mut out = Vec::with_capacity(ids.len());
    for (id, rank) in ids.into_iter().zip(ranks) {
        db.execute(tx, "UPDATE tasks SET position = $2 WHERE id = $1", &[&id, &rank]).await?;
        out.push((id, rank));
    }
    Ok(out)
}

/// Rebalances the column after `task` was written with a placeholder position; its new rank.
async fn settle(
    db: &PgDb,
    tx: &Transaction<'_>,
    key: (Uuid, TaskStatus, Uuid),
    lo: Option<&str>,
) -> Result<(String, Vec<(Uuid, String)>), StoreError> {
    let column = rebalance(db, tx, key, lo).await?;
    let mine = column.iter().find(|(id, _)| *id == key.2).map(|(_, p)| p.clone()).unwrap_or_default();
    Ok((mine, column))
}

const INSERT: &str = "INSERT INTO tasks (id, project_id, title, description, status, priority, assignee_id, \
                      due_date, labels, position, created_by, created_at, updated_at) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)";

const UPDATE: &str = "UPDATE tasks SET title = $2, description = $3, status = $4, priority = $5, assignee_id = $6, \
                      due_date = $7, labels = $8, position = $9, updated_at = $10 WHERE id = $1 AND updated_at = $11";

#[async_trait]
impl TaskStore for PgStore {
    async fn create_task(&self, t: &NewTask, event: TaskEvent) -> Result<TaskWrite, StoreError> {
        let db = &self.db;
        let mut client = db.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        if !lock_project(db, &tx, t.project_id).await? {
            return Err(StoreError::NotFound);
        }
        if let Some(a) = t.assignee_id
            && !is_member(db, &tx, t.project_id, a).await?
        {
            return Ok(TaskWrite::NotMember);
        }
        let key = (t.project_id, t.status, t.id);
        let gap = match gap(db, &tx, key, t.placement).await? {
            Ok(gap) => gap,
            Err(field) => return Ok(TaskWrite::BadNeighbour(field)),
        };
        let rank = rank_in(&gap);
        let mut record = new_record(t, rank.clone().unwrap_or_else(|| format!("~{}", t.id)));
        let r = &record;
        db.execute(
            &tx,
            INSERT,
            &[
                &r.id,
                &r.project_id,
                &r.title,
                &r.description,
                &status_code(r.status),
                &priority_code(r.priority),
                &r.assignee_id,
                &r.due_date,
                &Json(&r.labels),
                &r.position,
                &r.created_by,
                &r.created_at,
            ],
        )
        .await?;
        let mut column = Vec::new();
        if rank.is_none() {
            (record.position, column) = settle(db, &tx, key, gap.0.as_deref()).await?;
        }
        outbox::insert_pg(&tx, &event(&record, &column)).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(TaskWrite::Done(record))
    }

    async fn get_task(&self, id: Uuid) -> Result<TaskRecord, StoreError> {
        let client = self.db.client().await?;
        let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1");
        let row = self.db.query_opt(&client, &sql, &[&id]).await?.ok_or(StoreError::NotFound)?;
        task_record(&row)
    }

    async fn update_task(&self, c: &TaskChange, event: TaskEvent) -> Result<TaskWrite, StoreError> {
        let db = &self.db;
        let mut client = db.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        if !lock_project(db, &tx, c.project_id).await? {
            return Err(StoreError::NotFound);
        }
        let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1");
        let current = match db.query_opt(&tx, &sql, &[&c.id]).await? {
            Some(row) => task_record(&row)?,
            None => return Err(StoreError::NotFound),
        };
        if current.updated_at != c.read_at {
            return Ok(TaskWrite::Stale);
        }
        if c.check_assignee
            && let Some(a) = c.assignee_id
            && !is_member(db, &tx, current.project_id, a).await?
        {
            return Ok(TaskWrite::NotMember);
        }
        let key = (current.project_id, c.status, c.id);
        let mut next = changed_record(c, &current);
        let mut rebalance_after = None;
        if c.placement.is_some() || c.status != current.status {
            let placement = c.placement.unwrap_or_default();
            let gap = match gap(db, &tx, key, placement).await? {
                Ok(gap) => gap,
                Err(field) => return Ok(TaskWrite::BadNeighbour(field)),
            };
            if !already_there(c.status == current.status, &current.position, &gap) {
                match rank_in(&gap) {
                    Some(r) => next.position = r,
                    None => {
                        next.position = format!("~{}", c.id);
                        rebalance_after = Some(gap.0);
                    }
                }
            }
        }
        let n = db
            .execute(
                &tx,
                UPDATE,
                &[
                    &c.id,
                    &next.title,
                    &next.description,
                    &status_code(next.status),
                    &priority_code(next.priority),
                    &next.assignee_id,
                    &next.due_date,
                    &Json(&next.labels),
                    &next.position,
                    &next.updated_at,
                    &c.read_at,
                ],
            )
            .await?;
        if n == 0 {
            // Changed by a write that does not lock the project (a member's removal or erasure
            // unassigning it) after our read.
            return Ok(TaskWrite::Stale);
        }
        let mut column = Vec::new();
        if let Some(lo) = rebalance_after {
            (next.position, column) = settle(db, &tx, key, lo.as_deref()).await?;
        }
        outbox::insert_pg(&tx, &event(&next, &column)).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(TaskWrite::Done(next))
    }

    async fn delete_task(&self, id: Uuid, read_at: OffsetDateTime, event: &Event) -> Result<bool, StoreError> {
        let db = &self.db;
        let mut client = db.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let n = db.execute(&tx, "DELETE FROM tasks WHERE id = $1 AND updated_at = $2", &[&id, &read_at]).await?;
        if n == 0 {
            let exists = db.query_opt(&tx, "SELECT 1 FROM tasks WHERE id = $1", &[&id]).await?.is_some();
            return if exists { Ok(false) } else { Err(StoreError::NotFound) };
        }
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn list_tasks(&self, query: &TaskQuery) -> Result<Vec<TaskRecord>, StoreError> {
        let (sql, params) = list_sql(query, Dialect::Postgres);
        let values: Vec<Box<dyn ToSql + Sync + Send>> = params
            .into_iter()
            .map(|p| -> Box<dyn ToSql + Sync + Send> {
                match p {
                    Param::Uuid(u) => Box::new(u),
                    Param::Small(n) => Box::new(n),
                    Param::Int(n) => Box::new(n),
                    Param::Text(s) => Box::new(s),
                    Param::Date(d) => Box::new(d),
                    Param::Time(t) => Box::new(t),
                }
            })
            .collect();
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| &**v as &(dyn ToSql + Sync)).collect();
        let client = self.db.client().await?;
        let rows = self.db.query(&client, &sql, &refs).await?;
        rows.iter().map(task_record).collect()
    }
}
