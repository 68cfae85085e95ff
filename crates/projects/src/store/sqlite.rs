//! The SQLite adapter of the projects stores (all-in-one mode).
//!
//! Writes run in the single-writer `BEGIN IMMEDIATE` transaction of [`SqliteDb::write`], so
//! reading a column's last position and appending after it cannot race with another append.
//! The task store is in [`tasks`]; comments and search live in [`comments`] and [`search`].

mod attachments;
mod comments;
mod search;

mod tasks;

use api::projects::ProjectRole;
use async_trait::async_trait;
use platform::bus::Event;
use platform::db::{SqliteDb, StoreError, sqlite::map_err};
use platform::outbox;
use rusqlite::types::Type;
use rusqlite::{OptionalExtension, Row, params};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::tasks::TASK_COLUMNS;
use super::{erasure_event, parse_role, priority_from_code, role_str, status_from_code};
use crate::domain::{Involvement, ProjectErasure, plan_erasure};
use crate::ports::{
    ErasureCounts, MemberChange, MemberRecord, MemberStore, MemberUpdate, NewProject, PersonalDataStore, ProjectRecord,
    ProjectScope, ProjectStore, ProjectView, TaskRecord, UserRows,
};

/// Projects and tasks in an embedded SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    db: SqliteDb,
}

impl SqliteStore {
    pub fn new(db: SqliteDb) -> Self {
        Self { db }
    }
}

/// RFC 3339 in UTC with exactly nine fractional digits, so that text order is time order
/// (migration 0002 rewrote older rows alike).
fn fmt_time(t: OffsetDateTime) -> Result<String, StoreError> {
    t.to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z"
        ))
        .map_err(|e| StoreError::Internal(format!("cannot format time: {e}")))
}

/// A column that holds something the schema should have prevented.
fn bad_column(idx: usize, ty: Type, what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, ty, what.into())
}

fn time_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<OffsetDateTime> {
    let s: String = row.get(idx)?;
    OffsetDateTime::parse(&s, &Rfc3339).map_err(|e| bad_column(idx, Type::Text, format!("bad time {s:?}: {e}")))
}

const PROJECT_COLUMNS: &str = "p.id, p.name, p.description, p.owner_id, p.created_at, p.updated_at, m.role";

/// The project of columns 0–5 of [`PROJECT_COLUMNS`].
fn project_record(row: &Row<'_>) -> rusqlite::Result<ProjectRecord> {
    Ok(ProjectRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        description: row.get(2)?,
        owner_id: row.get(3)?,
        created_at: time_at(row, 4)?,
        updated_at: time_at(row, 5)?,
    })
}

fn role_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<ProjectRole>> {
    let role: Option<String> = row.get(idx)?;
    role.map(|r| parse_role(&r).ok_or_else(|| bad_column(idx, Type::Text, format!("unknown role {r:?}")))).transpose()
}

fn project_view(row: &Row<'_>) -> rusqlite::Result<ProjectView> {
    Ok(ProjectView { project: project_record(row)?, member_role: role_at(row, 6)? })
}

const MEMBER_COLUMNS: &str = "project_id, user_id, role, created_at";

fn member_record(row: &Row<'_>) -> rusqlite::Result<MemberRecord> {
    Ok(MemberRecord {
        project_id: row.get(0)?,
        user_id: row.get(1)?,
        role: role_at(row, 2)?.ok_or_else(|| bad_column(2, Type::Null, "no role".into()))?,
        created_at: time_at(row, 3)?,
    })
}

fn task_record(row: &Row<'_>) -> rusqlite::Result<TaskRecord> {
    let status: i64 = row.get(4)?;
    let priority: i64 = row.get(5)?;
    let due_date: Option<String> = row.get(7)?;
    let labels: String = row.get(8)?;
    Ok(TaskRecord {
        id: row.get(0)?,
        project_id: row.get(1)?,
        title: row.get(2)?,
        description: row.get(3)?,
        status: status_from_code(status).ok_or_else(|| bad_column(4, Type::Integer, format!("status {status}")))?,
        priority: priority_from_code(priority)
            .ok_or_else(|| bad_column(5, Type::Integer, format!("priority {priority}")))?,
        assignee_id: row.get(6)?,
        due_date: due_date
            .map(|d| {
                Date::parse(&d, time::macros::format_description!("[year]-[month]-[day]"))
                    .map_err(|e| bad_column(7, Type::Text, format!("bad date {d:?}: {e}")))
            })
            .transpose()?,
        labels: serde_json::from_str(&labels).map_err(|e| bad_column(8, Type::Text, format!("bad labels: {e}")))?,
        position: row.get(9)?,
        created_by: row.get(10)?,
        created_at: time_at(row, 11)?,
        updated_at: time_at(row, 12)?,
    })
}

#[async_trait]
impl ProjectStore for SqliteStore {
    async fn create_project(&self, p: &NewProject, event: &Event) -> Result<ProjectRecord, StoreError> {
        let record = ProjectRecord {
            id: p.id,
            name: p.name.as_str().to_string(),
            description: p.description.as_str().to_string(),
            owner_id: p.owner_id,
            created_at: p.created_at,
            updated_at: p.created_at,
        };
        let at = fmt_time(p.created_at)?;
        let (r, event) = (record.clone(), event.clone());
        self.db
            .write(move |tx| {
                tx.prepare_cached(
                    "INSERT INTO projects (id, name, description, owner_id, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                )
                .and_then(|mut s| s.execute(params![r.id, r.name, r.description, r.owner_id, at]))
                .map_err(map_err)?;
                tx.prepare_cached(
                    "INSERT INTO project_members (project_id, user_id, role, created_at) VALUES (?1, ?2, ?3, ?4)",
                )
                .and_then(|mut s| s.execute(params![r.id, r.owner_id, role_str(ProjectRole::Owner), at]))
                .map_err(map_err)?;
                outbox::insert_sqlite(tx, &event)
            })
            .await?;
        Ok(record)
    }

    async fn get_project(&self, id: Uuid, user: Uuid) -> Result<ProjectView, StoreError> {
        self.db
            .read(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {PROJECT_COLUMNS} FROM projects p \
                     LEFT JOIN project_members m ON m.project_id = p.id AND m.user_id = ?2 \
                     WHERE p.id = ?1"
                ))?
                .query_row(params![id, user], project_view)
            })
            .await
    }

    async fn list_projects(
        &self,
        scope: ProjectScope,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<ProjectView>, StoreError> {
        // The nil UUID sorts before every real (v7) id, so "no cursor" needs no second query.
        let after = after.unwrap_or(Uuid::nil());
        self.db
            .read(move |c| {
                let (sql, user) = match scope {
                    ProjectScope::MemberOf(user) => (
                        format!(
                            "SELECT {PROJECT_COLUMNS} FROM project_members m \
                             JOIN projects p ON p.id = m.project_id \
                             WHERE m.user_id = ?1 AND m.project_id > ?2 ORDER BY m.project_id LIMIT ?3"
                        ),
                        user,
                    ),
                    ProjectScope::All { viewer } => (
                        format!(
                            "SELECT {PROJECT_COLUMNS} FROM projects p \
                             LEFT JOIN project_members m ON m.project_id = p.id AND m.user_id = ?1 \
                             WHERE p.id > ?2 ORDER BY p.id LIMIT ?3"
                        ),
                        viewer,
                    ),
                };
                let mut stmt = c.prepare_cached(&sql)?;
                let rows = stmt.query_map(params![user, after, limit], project_view)?;
                rows.collect()
            })
            .await
    }
}

/// Rows a statement changed, as a count.
fn changed(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[async_trait]
impl PersonalDataStore for SqliteStore {
    async fn export_user(&self, user: Uuid) -> Result<UserRows, StoreError> {
        self.db
            .read(move |c| {
                // One read transaction: the three lists come from one snapshot.
                let tx = c.unchecked_transaction()?;
                let projects = tx
                    .prepare_cached(
                        "SELECT id, name, description, owner_id, created_at, updated_at FROM projects p \
                         WHERE owner_id = ?1 \
                            OR EXISTS (SELECT 1 FROM project_members m WHERE m.project_id = p.id AND m.user_id = ?1) \
                         ORDER BY id",
                    )?
                    .query_map(params![user], project_record)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let memberships = tx
                    .prepare_cached(&format!(
                        "SELECT {MEMBER_COLUMNS} FROM project_members WHERE user_id = ?1 ORDER BY project_id"
                    ))?
                    .query_map(params![user], member_record)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let tasks = tx
                    .prepare_cached(&format!(
                        "SELECT {TASK_COLUMNS} FROM tasks WHERE created_by = ?1 OR assignee_id = ?1 ORDER BY id"
                    ))?
                    .query_map(params![user], task_record)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let comments = comments::comments_by(&tx, user)?;
                Ok(UserRows { projects, memberships, tasks, comments })
            })
            .await
    }

    async fn erase_user(&self, user: Uuid, at: OffsetDateTime) -> Result<ErasureCounts, StoreError> {
        let now = fmt_time(at)?;
        self.db
            .write(move |tx| {
                let involved: Vec<(Uuid, Uuid, Option<ProjectRole>)> = tx
                    .prepare_cached(
                        "SELECT p.id, p.owner_id, m.role FROM projects p \
                         LEFT JOIN project_members m ON m.project_id = p.id AND m.user_id = ?1 \
                         WHERE p.owner_id = ?1 OR m.user_id = ?1 ORDER BY p.id",
                    )
                    .and_then(|mut s| {
                        s.query_map(params![user], |r| Ok((r.get(0)?, r.get(1)?, role_at(r, 2)?)))?.collect()
                    })
                    .map_err(map_err)?;
                let mut counts =
                    ErasureCounts { comments: comments::erase_comments_by(tx, user, at)?, ..Default::default() };
                for (project_id, owner_id, role) in involved {
                    let other_owners = tx
                        .prepare_cached(
                            "SELECT user_id, created_at FROM project_members \
                             WHERE project_id = ?1 AND role = 'owner' AND user_id <> ?2",
                        )
                        .and_then(|mut s| {
                            s.query_map(params![project_id, user], |r| Ok((r.get(0)?, time_at(r, 1)?)))?.collect()
                        })
                        .map_err(map_err)?;
                    let plan = plan_erasure(user, &Involvement { project_id, owner_id, role, other_owners });
                    let exec = |sql: &str, p: &[&dyn rusqlite::ToSql]| {
                        tx.prepare_cached(sql).and_then(|mut s| s.execute(p)).map(changed).map_err(map_err)
                    };
                    match &plan {
                        ProjectErasure::Delete => {
                            counts.comments += exec("DELETE FROM comments WHERE project_id = ?1", &[&project_id])?;
                            counts.tasks += exec("DELETE FROM tasks WHERE project_id = ?1", &[&project_id])?;
                            counts.project_members +=
                                exec("DELETE FROM project_members WHERE project_id = ?1", &[&project_id])?;
                            counts.projects += exec("DELETE FROM projects WHERE id = ?1", &[&project_id])?;
                        }
                        ProjectErasure::Leave { remove_membership, new_owner } => {
                            if *remove_membership {
                                counts.project_members += exec(
                                    "DELETE FROM project_members WHERE project_id = ?1 AND user_id = ?2",
                                    &[&project_id, &user],
                                )?;
                            }
                            if let Some(heir) = new_owner {
                                counts.projects += exec(
                                    "UPDATE projects SET owner_id = ?2, updated_at = ?3 WHERE id = ?1",
                                    &[&project_id, heir, &now],
                                )?;
                            }
                        }
                    }
                    if let Some(event) = erasure_event(user, project_id, &plan, at) {
                        outbox::insert_sqlite(tx, &event)?;
                    }
                }
                counts.tasks += tx
                    .prepare_cached("UPDATE tasks SET assignee_id = NULL, updated_at = ?2 WHERE assignee_id = ?1")
                    .and_then(|mut s| s.execute(params![user, now]))
                    .map(changed)
                    .map_err(map_err)?;
                Ok(counts)
            })
            .await
    }
}

/// Whether the project exists (inside a write, to tell a stale write from a missing project).
fn project_exists(tx: &rusqlite::Transaction<'_>, id: Uuid) -> Result<bool, StoreError> {
    tx.query_row("SELECT EXISTS(SELECT 1 FROM projects WHERE id = ?1)", [id], |r| r.get(0)).map_err(map_err)
}

#[async_trait]
impl MemberStore for SqliteStore {
    async fn update_project(
        &self,
        p: &ProjectRecord,
        read_at: OffsetDateTime,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let (p, event, read_at, at) = (p.clone(), event.clone(), fmt_time(read_at)?, fmt_time(p.updated_at)?);
        self.db
            .write(move |tx| {
                let changed = tx
                    .execute(
                        "UPDATE projects SET name = ?2, description = ?3, updated_at = ?4 \
                         WHERE id = ?1 AND updated_at = ?5",
                        params![p.id, p.name, p.description, at, read_at],
                    )
                    .map_err(map_err)?;
                if changed == 0 {
                    return if project_exists(tx, p.id)? { Ok(false) } else { Err(StoreError::NotFound) };
                }
                outbox::insert_sqlite(tx, &event)?;
                Ok(true)
            })
            .await
    }

    async fn delete_project(&self, id: Uuid, read_at: OffsetDateTime, event: &Event) -> Result<bool, StoreError> {
        let (event, read_at) = (event.clone(), fmt_time(read_at)?);
        self.db
            .write(move |tx| {
                // Members and tasks go with it (ON DELETE CASCADE).
                let changed = tx
                    .execute("DELETE FROM projects WHERE id = ?1 AND updated_at = ?2", params![id, read_at])
                    .map_err(map_err)?;
                if changed == 0 {
                    return if project_exists(tx, id)? { Ok(false) } else { Err(StoreError::NotFound) };
                }
                outbox::insert_sqlite(tx, &event)?;
                Ok(true)
            })
            .await
    }

    async fn list_members(&self, project: Uuid) -> Result<Vec<MemberRecord>, StoreError> {
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {MEMBER_COLUMNS} FROM project_members WHERE project_id = ?1 ORDER BY created_at, user_id"
                ))?;
                let rows = stmt.query_map([project], member_record)?;
                rows.collect()
            })
            .await
    }

    async fn co_members(&self, user: Uuid) -> Result<Vec<Uuid>, StoreError> {
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT DISTINCT o.user_id FROM project_members m \
                     JOIN project_members o ON o.project_id = m.project_id WHERE m.user_id = ?1",
                )?;
                let rows = stmt.query_map([user], |r| r.get(0))?;
                rows.collect()
            })
            .await
    }

    async fn add_member(&self, m: &MemberRecord, event: &Event) -> Result<(), StoreError> {
        let (m, event, at) = (m.clone(), event.clone(), fmt_time(m.created_at)?);
        self.db
            .write(move |tx| {
                if !project_exists(tx, m.project_id)? {
                    return Err(StoreError::NotFound);
                }
                tx.execute(
                    "INSERT INTO project_members (project_id, user_id, role, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![m.project_id, m.user_id, role_str(m.role), at],
                )
                .map_err(map_err)?;
                outbox::insert_sqlite(tx, &event)
            })
            .await
    }

    async fn change_member(
        &self,
        project: Uuid,
        user: Uuid,
        change: MemberUpdate,
        event: &Event,
    ) -> Result<MemberChange, StoreError> {
        let MemberUpdate { role, at, expected } = change;
        let (event, at) = (event.clone(), fmt_time(at)?);
        // One writer: the owner count cannot change under us.
        self.db
            .write(move |tx| {
                let current: Option<String> = tx
                    .query_row(
                        "SELECT role FROM project_members WHERE project_id = ?1 AND user_id = ?2",
                        params![project, user],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(map_err)?;
                let Some(current) = current.as_deref().and_then(parse_role) else {
                    return Ok(MemberChange::NotMember);
                };
                if expected.is_some_and(|e| e != current) {
                    return Ok(MemberChange::Stale);
                }
                let stays_owner = role == Some(ProjectRole::Owner);
                if current == ProjectRole::Owner && !stays_owner {
                    let owners: i64 = tx
                        .query_row(
                            "SELECT count(*) FROM project_members WHERE project_id = ?1 AND role = 'owner'",
                            [project],
                            |r| r.get(0),
                        )
                        .map_err(map_err)?;
                    if owners <= 1 {
                        return Ok(MemberChange::LastOwner);
                    }
                }
                match role {
                    Some(role) => tx.execute(
                        "UPDATE project_members SET role = ?3 WHERE project_id = ?1 AND user_id = ?2",
                        params![project, user, role_str(role)],
                    ),
                    None => tx.execute(
                        "DELETE FROM project_members WHERE project_id = ?1 AND user_id = ?2",
                        params![project, user],
                    ),
                }
                .map_err(map_err)?;
                let mut unassigned = Vec::new();
                if role.is_none() {
                    let mut stmt = tx
                        .prepare_cached(
                            "UPDATE tasks SET assignee_id = NULL, updated_at = ?3 \
                             WHERE project_id = ?1 AND assignee_id = ?2 RETURNING id",
                        )
                        .map_err(map_err)?;
                    let ids = stmt.query_map(params![project, user, at], |r| r.get(0)).map_err(map_err)?;
                    unassigned = ids.collect::<rusqlite::Result<Vec<Uuid>>>().map_err(map_err)?;
                }
                if !stays_owner {
                    tx.execute(
                        "UPDATE projects SET owner_id = (SELECT user_id FROM project_members \
                             WHERE project_id = ?1 AND role = 'owner' ORDER BY created_at, user_id LIMIT 1) \
                         WHERE id = ?1 AND owner_id = ?2",
                        params![project, user],
                    )
                    .map_err(map_err)?;
                }
                outbox::insert_sqlite(tx, &event)?;
                Ok(MemberChange::Done { unassigned })
            })
            .await
    }
}
