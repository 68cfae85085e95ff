//! The SQLite adapter of [`TaskStore`]: task writes run in the single writer's `BEGIN IMMEDIATE`
//! transaction, so the neighbours a move reads cannot change before it writes.

use api::projects::TaskStatus;
use async_trait::async_trait;
use platform::bus::Event;
use platform::db::{StoreError, sqlite::map_err};
use platform::outbox;
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Transaction, params, params_from_iter};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{SqliteStore, fmt_time, task_record};
use crate::ports::{NewTask, Placement, TaskChange, TaskEvent, TaskQuery, TaskRecord, TaskStore, TaskWrite};
use crate::rank::spread;
use crate::store::tasks::{
    Dialect, Gap, GapOrBadNeighbour, Param, TASK_COLUMNS, already_there, changed_record, list_sql, new_record, rank_in,
    reordered,
};
use crate::store::{priority_code, status_code};

type Tx<'a> = Transaction<'a>;

fn labels_json(labels: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(labels).map_err(|e| StoreError::Internal(e.to_string()))
}

fn project_exists(tx: &Tx<'_>, id: Uuid) -> Result<bool, StoreError> {
    tx.prepare_cached("SELECT EXISTS(SELECT 1 FROM projects WHERE id = ?1)")
        .and_then(|mut s| s.query_row([id], |r| r.get(0)))
        .map_err(map_err)
}

fn is_member(tx: &Tx<'_>, project: Uuid, user: Uuid) -> Result<bool, StoreError> {
    tx.prepare_cached("SELECT EXISTS(SELECT 1 FROM project_members WHERE project_id = ?1 AND user_id = ?2)")
        .and_then(|mut s| s.query_row(params![project, user], |r| r.get(0)))
        .map_err(map_err)
}

/// One position of the column `(project, status)` other than `task`'s: `sql` picks it.
fn position(tx: &Tx<'_>, sql: &str, p: &[&dyn rusqlite::ToSql]) -> Result<Option<String>, StoreError> {
    tx.prepare_cached(sql).and_then(|mut s| s.query_row(p, |r| r.get(0)).optional()).map_err(map_err)
}

const ANCHOR: &str = "SELECT position FROM tasks WHERE id = ?4 AND project_id = ?1 AND status = ?2 AND id <> ?3";
const LAST: &str = "SELECT position FROM tasks WHERE project_id = ?1 AND status = ?2 AND id <> ?3 \
                    ORDER BY position DESC LIMIT 1";
const BELOW: &str = "SELECT position FROM tasks WHERE project_id = ?1 AND status = ?2 AND id <> ?3 \
                     AND position < ?4 ORDER BY position DESC LIMIT 1";
const ABOVE: &str = "SELECT position FROM tasks WHERE project_id = ?1 AND status = ?2 AND id <> ?3 \
                     AND position > ?4 ORDER BY position LIMIT 1";

/// The gap `(lo, hi)` of the column where `placement` puts `task`, read without `task` itself;
/// `Err(field)` when a neighbour is not a task of the column (or the two are not adjacent).
fn gap(
    tx: &Tx<'_>,
    project: Uuid,
    status: TaskStatus,
    task: Uuid,
    placement: Placement,
) -> Result<GapOrBadNeighbour, StoreError> {
    let s = status_code(status);
    let anchor = |id: Uuid| position(tx, ANCHOR, &[&project, &s, &task, &id]);
    Ok(Ok(match (placement.after, placement.before) {
        (None, None) => (position(tx, LAST, &[&project, &s, &task])?, None),
        (None, Some(b)) => {
            let Some(hi) = anchor(b)? else { return Ok(Err("before_id")) };
            (position(tx, BELOW, &[&project, &s, &task, &hi])?, Some(hi))
        }
        (Some(a), None) => {
            let Some(lo) = anchor(a)? else { return Ok(Err("after_id")) };
            let hi = position(tx, ABOVE, &[&project, &s, &task, &lo])?;
            (Some(lo), hi)
        }
        (Some(a), Some(b)) => {
            let Some(lo) = anchor(a)? else { return Ok(Err("after_id")) };
            let Some(hi) = anchor(b)? else { return Ok(Err("before_id")) };
            if position(tx, ABOVE, &[&project, &s, &task, &lo])?.as_deref() != Some(hi.as_str()) {
                return Ok(Err("before_id"));
            }
            (Some(lo), Some(hi))
        }
    }))
}

/// Gives the column fresh, evenly spread ranks with `task` (already in it, at any position)
/// just after `lo`; the new `(id, position)`s in order.
fn rebalance(
    tx: &Tx<'_>,
    project: Uuid,
    status: TaskStatus,
    task: Uuid,
    lo: Option<&str>,
) -> Result<Vec<(Uuid, String)>, StoreError> {
    let s = status_code(status);
    let column: Vec<(Uuid, String)> = tx
        .prepare_cached(
            "SELECT id, position FROM tasks WHERE project_id = ?1 AND status = ?2 AND id <> ?3 ORDER BY position",
        )
        .and_then(|mut st| st.query_map(params![project, s, task], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .map_err(map_err)?;
    let ids = reordered(column, task, lo);
    // Out of the way first (unique ranks per column): '~' sorts after every rank digit.
    tx.prepare_cached("UPDATE tasks SET position = '~' || hex(id) WHERE project_id = ?1 AND status = ?2")
        .and_then(|mut st| st.execute(params![project, s]))
        .map_err(map_err)?;
    let ranks = spread(ids.len());
    let mut out = Vec::with_capacity(ids.len());
    let mut set = tx.prepare_cached("UPDATE tasks SET position = ?2 WHERE id = ?1").map_err(map_err)?;
    for (id, rank) in ids.into_iter().zip(ranks) {
        set.execute(params![id, rank]).map_err(map_err)?;
        out.push((id, rank));
    }
    Ok(out)
}

/// Writes `task`'s row (inserted or updated by `write`, given the position to store) where
/// `gap` says: a rank in the gap, or, when the gap is used up, a rebalanced column.
fn place(
    tx: &Tx<'_>,
    project: Uuid,
    status: TaskStatus,
    task: Uuid,
    gap: Gap,
    write: impl FnOnce(&str) -> Result<(), StoreError>,
) -> Result<(String, Vec<(Uuid, String)>), StoreError> {
    match rank_in(&gap) {
        Some(r) => {
            write(&r)?;
            Ok((r, Vec::new()))
        }
        None => {
            write(&format!("~{}", task.simple()))?;
            let column = rebalance(tx, project, status, task, gap.0.as_deref())?;
            let mine = column.iter().find(|(id, _)| *id == task).map(|(_, p)| p.clone()).unwrap_or_default();
            Ok((mine, column))
        }
    }
}

fn to_value(p: Param) -> Result<Value, StoreError> {
    Ok(match p {
        Param::Uuid(u) => Value::Blob(u.as_bytes().to_vec()),
        Param::Small(n) => Value::Integer(i64::from(n)),
        Param::Int(n) => Value::Integer(n),
        Param::Text(s) => Value::Text(s),
        Param::Date(d) => d.map_or(Value::Null, |d| Value::Text(d.to_string())),
        Param::Time(t) => Value::Text(fmt_time(t)?),
    })
}

#[async_trait]
impl TaskStore for SqliteStore {
    async fn create_task(&self, t: &NewTask, event: TaskEvent) -> Result<TaskWrite, StoreError> {
        let mut record = new_record(t, String::new());
        let (at, labels, placement) = (fmt_time(t.created_at)?, labels_json(&record.labels)?, t.placement);
        self.db
            .write(move |tx| {
                let r = &mut record;
                if !project_exists(tx, r.project_id)? {
                    return Err(StoreError::NotFound);
                }
                if let Some(a) = r.assignee_id
                    && !is_member(tx, r.project_id, a)?
                {
                    return Ok(TaskWrite::NotMember);
                }
                let gap = match gap(tx, r.project_id, r.status, r.id, placement)? {
                    Ok(gap) => gap,
                    Err(field) => return Ok(TaskWrite::BadNeighbour(field)),
                };
                let insert = |position: &str| {
                    tx.prepare_cached(&format!(
                        "INSERT INTO tasks ({TASK_COLUMNS}) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)"
                    ))
                    .and_then(|mut s| {
                        s.execute(params![
                            r.id,
                            r.project_id,
                            r.title,
                            r.description,
                            status_code(r.status),
                            priority_code(r.priority),
                            r.assignee_id,
                            r.due_date.map(|d| d.to_string()),
                            labels,
                            position,
                            r.created_by,
                            at,
                        ])
                    })
                    .map(|_| ())
                    .map_err(map_err)
                };
                let (position, column) = place(tx, r.project_id, r.status, r.id, gap, insert)?;
                r.position = position;
                outbox::insert_sqlite(tx, &event(r, &column))?;
                Ok(TaskWrite::Done(record))
            })
            .await
    }

    async fn get_task(&self, id: Uuid) -> Result<TaskRecord, StoreError> {
        self.db
            .read(move |c| {
                c.prepare_cached(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1"))?
                    .query_row([id], task_record)
            })
            .await
    }

    async fn update_task(&self, change: &TaskChange, event: TaskEvent) -> Result<TaskWrite, StoreError> {
        let c = change.clone();
        let (labels, read_at, at) = (labels_json(&c.labels)?, fmt_time(c.read_at)?, fmt_time(c.updated_at)?);
        self.db
            .write(move |tx| {
                let current = tx
                    .prepare_cached(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1"))
                    .and_then(|mut s| s.query_row([c.id], task_record).optional())
                    .map_err(map_err)?
                    .ok_or(StoreError::NotFound)?;
                if current.updated_at != c.read_at {
                    return Ok(TaskWrite::Stale);
                }
                if c.check_assignee
                    && let Some(a) = c.assignee_id
                    && !is_member(tx, current.project_id, a)?
                {
                    return Ok(TaskWrite::NotMember);
                }
                let mut next = changed_record(&c, &current);
                let write = |position: &str| {
                    let n = tx
                        .prepare_cached(
                            "UPDATE tasks SET title = ?2, description = ?3, status = ?4, priority = ?5, \
                             assignee_id = ?6, due_date = ?7, labels = ?8, position = ?9, updated_at = ?10 \
                             WHERE id = ?1 AND updated_at = ?11",
                        )
                        .and_then(|mut s| {
                            s.execute(params![
                                c.id,
                                c.title,
                                c.description,
                                status_code(c.status),
                                priority_code(c.priority),
                                c.assignee_id,
                                c.due_date.map(|d| d.to_string()),
                                labels,
                                position,
                                at,
                                read_at,
                            ])
                        })
                        .map_err(map_err)?;
                    if n == 1 { Ok(()) } else { Err(StoreError::Internal("the task changed under the writer".into())) }
                };
                let moved = c.placement.is_some() || c.status != current.status;
                let column = if moved {
                    let placement = c.placement.unwrap_or_default();
                    let gap = match gap(tx, current.project_id, c.status, c.id, placement)? {
                        Ok(gap) => gap,
                        Err(field) => return Ok(TaskWrite::BadNeighbour(field)),
                    };
                    if already_there(c.status == current.status, &current.position, &gap) {
                        write(&current.position)?;
                        Vec::new()
                    } else {
                        let (position, column) = place(tx, current.project_id, c.status, c.id, gap, write)?;
                        next.position = position;
                        column
                    }
                } else {
                    write(&current.position)?;
                    Vec::new()
                };
                outbox::insert_sqlite(tx, &event(&next, &column))?;
                Ok(TaskWrite::Done(next))
            })
            .await
    }

    async fn delete_task(&self, id: Uuid, read_at: OffsetDateTime, event: &Event) -> Result<bool, StoreError> {
        let (event, read_at) = (event.clone(), fmt_time(read_at)?);
        self.db
            .write(move |tx| {
                let n = tx
                    .prepare_cached("DELETE FROM tasks WHERE id = ?1 AND updated_at = ?2")
                    .and_then(|mut s| s.execute(params![id, read_at]))
                    .map_err(map_err)?;
                if n == 0 {
                    let exists: bool = tx
                        .prepare_cached("SELECT EXISTS(SELECT 1 FROM tasks WHERE id = ?1)")
                        .and_then(|mut s| s.query_row([id], |r| r.get(0)))
                        .map_err(map_err)?;
                    return if exists { Ok(false) } else { Err(StoreError::NotFound) };
                }
                outbox::insert_sqlite(tx, &event)?;
                Ok(true)
            })
            .await
    }

    async fn list_tasks(&self, query: &TaskQuery) -> Result<Vec<TaskRecord>, StoreError> {
        let (sql, params) = list_sql(query, Dialect::Sqlite);
        let values = params.into_iter().map(to_value).collect::<Result<Vec<_>, _>>()?;
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached(&sql)?;
                let rows = stmt.query_map(params_from_iter(values), task_record)?;
                rows.collect()
            })
            .await
    }
}
