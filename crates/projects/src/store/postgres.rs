//! The PostgreSQL adapter of the projects stores (distributed mode).
//!
//! Appending a task locks its project row (`FOR NO KEY UPDATE`, which does not block foreign-key
//! checks of other writers) so that concurrent appends to one project read the column's last
//! position one after the other; the unique (project, status, position) index backs this up.
//! The task store is in [`tasks`]; comments and search live in [`comments`] and [`search`].

mod attachments;
mod comments;
mod search;

mod tasks;

use api::projects::ProjectRole;
use async_trait::async_trait;
use platform::bus::Event;
use platform::db::{PgDb, StoreError, postgres::map_err};
use platform::outbox;
use time::OffsetDateTime;
use tokio_postgres::types::Json;
use tokio_postgres::{IsolationLevel, Row};
use uuid::Uuid;

use super::tasks::TASK_COLUMNS;
use super::{erasure_event, parse_role, priority_from_code, role_str, status_from_code};
use crate::domain::{Involvement, ProjectErasure, plan_erasure};
use crate::ports::{
    ErasureCounts, MemberChange, MemberRecord, MemberStore, MemberUpdate, NewProject, PersonalDataStore, ProjectRecord,
    ProjectScope, ProjectStore, ProjectView, TaskRecord, UserRows,
};

/// Projects and tasks in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgStore {
    db: PgDb,
}

impl PgStore {
    pub fn new(db: PgDb) -> Self {
        Self { db }
    }
}

fn corrupt(what: String) -> StoreError {
    StoreError::Internal(format!("unexpected stored value: {what}"))
}

const PROJECT_COLUMNS: &str = "p.id, p.name, p.description, p.owner_id, p.created_at, p.updated_at, m.role";

/// The project of columns 0–5 of [`PROJECT_COLUMNS`].
fn project_record(row: &Row) -> Result<ProjectRecord, StoreError> {
    Ok(ProjectRecord {
        id: row.try_get(0).map_err(map_err)?,
        name: row.try_get(1).map_err(map_err)?,
        description: row.try_get(2).map_err(map_err)?,
        owner_id: row.try_get(3).map_err(map_err)?,
        created_at: row.try_get(4).map_err(map_err)?,
        updated_at: row.try_get(5).map_err(map_err)?,
    })
}

fn role_at(row: &Row, idx: usize) -> Result<Option<ProjectRole>, StoreError> {
    let role: Option<&str> = row.try_get(idx).map_err(map_err)?;
    role.map(|r| parse_role(r).ok_or_else(|| corrupt(format!("role {r:?}")))).transpose()
}

fn project_view(row: &Row) -> Result<ProjectView, StoreError> {
    Ok(ProjectView { project: project_record(row)?, member_role: role_at(row, 6)? })
}

const MEMBER_COLUMNS: &str = "project_id, user_id, role, created_at";

fn member_record(row: &Row) -> Result<MemberRecord, StoreError> {
    Ok(MemberRecord {
        project_id: row.try_get(0).map_err(map_err)?,
        user_id: row.try_get(1).map_err(map_err)?,
        role: role_at(row, 2)?.ok_or_else(|| corrupt("membership without a role".into()))?,
        created_at: row.try_get(3).map_err(map_err)?,
    })
}

fn task_record(row: &Row) -> Result<TaskRecord, StoreError> {
    let status: i16 = row.try_get(4).map_err(map_err)?;
    let priority: i16 = row.try_get(5).map_err(map_err)?;
    let Json(labels): Json<Vec<String>> = row.try_get(8).map_err(map_err)?;
    Ok(TaskRecord {
        id: row.try_get(0).map_err(map_err)?,
        project_id: row.try_get(1).map_err(map_err)?,
        title: row.try_get(2).map_err(map_err)?,
        description: row.try_get(3).map_err(map_err)?,
        status: status_from_code(i64::from(status)).ok_or_else(|| corrupt(format!("status {status}")))?,
        priority: priority_from_code(i64::from(priority)).ok_or_else(|| corrupt(format!("priority {priority}")))?,
        assignee_id: row.try_get(6).map_err(map_err)?,
        due_date: row.try_get(7).map_err(map_err)?,
        labels,
        position: row.try_get(9).map_err(map_err)?,
        created_by: row.try_get(10).map_err(map_err)?,
        created_at: row.try_get(11).map_err(map_err)?,
        updated_at: row.try_get(12).map_err(map_err)?,
    })
}

#[async_trait]
impl ProjectStore for PgStore {
    async fn create_project(&self, p: &NewProject, event: &Event) -> Result<ProjectRecord, StoreError> {
        let mut client = self.db.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let insert = tx
            .prepare_cached(
                "INSERT INTO projects (id, name, description, owner_id, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5)",
            )
            .await
            .map_err(map_err)?;
        tx.execute(&insert, &[&p.id, &p.name.as_str(), &p.description.as_str(), &p.owner_id, &p.created_at])
            .await
            .map_err(map_err)?;
        let member = tx
            .prepare_cached(
                "INSERT INTO project_members (project_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
            )
            .await
            .map_err(map_err)?;
        tx.execute(&member, &[&p.id, &p.owner_id, &role_str(ProjectRole::Owner), &p.created_at])
            .await
            .map_err(map_err)?;
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(ProjectRecord {
            id: p.id,
            name: p.name.as_str().to_string(),
            description: p.description.as_str().to_string(),
            owner_id: p.owner_id,
            created_at: p.created_at,
            updated_at: p.created_at,
        })
    }

    async fn get_project(&self, id: Uuid, user: Uuid) -> Result<ProjectView, StoreError> {
        let client = self.db.client().await?;
        let sql = format!(
            "SELECT {PROJECT_COLUMNS} FROM projects p \
             LEFT JOIN project_members m ON m.project_id = p.id AND m.user_id = $2 \
             WHERE p.id = $1"
        );
        // Counted: every task request reads the project first (see `PgDb::statements`).
        let row = self.db.query_opt(&client, &sql, &[&id, &user]).await?.ok_or(StoreError::NotFound)?;
        project_view(&row)
    }

    async fn list_projects(
        &self,
        scope: ProjectScope,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<ProjectView>, StoreError> {
        // The nil UUID sorts before every real (v7) id, so "no cursor" needs no second query.
        let after = after.unwrap_or(Uuid::nil());
        let limit = i64::from(limit);
        let (sql, user) = match scope {
            ProjectScope::MemberOf(user) => (
                format!(
                    "SELECT {PROJECT_COLUMNS} FROM project_members m \
                     JOIN projects p ON p.id = m.project_id \
                     WHERE m.user_id = $1 AND m.project_id > $2 ORDER BY m.project_id LIMIT $3"
                ),
                user,
            ),
            ProjectScope::All { viewer } => (
                format!(
                    "SELECT {PROJECT_COLUMNS} FROM projects p \
                     LEFT JOIN project_members m ON m.project_id = p.id AND m.user_id = $1 \
                     WHERE p.id > $2 ORDER BY p.id LIMIT $3"
                ),
                viewer,
            ),
        };
        let client = self.db.client().await?;
        let stmt = client.prepare_cached(&sql).await.map_err(map_err)?;
        let rows = client.query(&stmt, &[&user, &after, &limit]).await.map_err(map_err)?;
        rows.iter().map(project_view).collect()
    }
}

/// Runs one statement in transaction `$tx` and evaluates to the rows it changed; `?` on error.
macro_rules! exec {
    ($tx:expr, $sql:expr, $params:expr $(,)?) => {{
        let stmt = $tx.prepare_cached($sql).await.map_err(map_err)?;
        $tx.execute(&stmt, $params).await.map_err(map_err)?
    }};
}

#[async_trait]
impl PersonalDataStore for PgStore {
    async fn export_user(&self, user: Uuid) -> Result<UserRows, StoreError> {
        let mut client = self.db.client().await?;
        // One snapshot for the three lists.
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(map_err)?;
        let stmt = tx
            .prepare_cached(
                "SELECT id, name, description, owner_id, created_at, updated_at FROM projects p \
                 WHERE owner_id = $1 \
                    OR EXISTS (SELECT 1 FROM project_members m WHERE m.project_id = p.id AND m.user_id = $1) \
                 ORDER BY id",
            )
            .await
            .map_err(map_err)?;
        let projects = tx
            .query(&stmt, &[&user])
            .await
            .map_err(map_err)?
            .iter()
            .map(project_record)
            .collect::<Result<Vec<_>, _>>()?;
        let stmt = tx
            .prepare_cached(&format!(
                "SELECT {MEMBER_COLUMNS} FROM project_members WHERE user_id = $1 ORDER BY project_id"
            ))
            .await
            .map_err(map_err)?;
        let memberships = tx
            .query(&stmt, &[&user])
            .await
            .map_err(map_err)?
            .iter()
            .map(member_record)
            .collect::<Result<Vec<_>, _>>()?;
        let stmt = tx
            .prepare_cached(&format!(
                "SELECT {TASK_COLUMNS} FROM tasks WHERE created_by = $1 OR assignee_id = $1 ORDER BY id"
            ))
            .await
            .map_err(map_err)?;
        let tasks =
            tx.query(&stmt, &[&user]).await.map_err(map_err)?.iter().map(task_record).collect::<Result<Vec<_>, _>>()?;
        let stmt = tx
            .prepare_cached(&format!(
                "SELECT {} FROM comments c WHERE c.author_id = $1 ORDER BY c.id",
                comments::COMMENT_COLUMNS
            ))
            .await
            .map_err(map_err)?;
        let comments = tx
            .query(&stmt, &[&user])
            .await
            .map_err(map_err)?
            .iter()
            .map(comments::comment_record)
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit().await.map_err(map_err)?;
        Ok(UserRows { projects, memberships, tasks, comments })
    }

    async fn erase_user(&self, user: Uuid, at: OffsetDateTime) -> Result<ErasureCounts, StoreError> {
        let mut client = self.db.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        // Lock the projects involved, in id order (so two erasures cannot deadlock): a membership
        // added meanwhile waits for its foreign-key check, and the owners read below stay true.
        let stmt = tx
            .prepare_cached(
                "SELECT p.id, p.owner_id, m.role FROM projects p \
                 LEFT JOIN project_members m ON m.project_id = p.id AND m.user_id = $1 \
                 WHERE p.owner_id = $1 OR m.user_id = $1 ORDER BY p.id FOR UPDATE OF p",
            )
            .await
            .map_err(map_err)?;
        let involved = tx
            .query(&stmt, &[&user])
            .await
            .map_err(map_err)?
            .iter()
            .map(|r| Ok((r.try_get(0).map_err(map_err)?, r.try_get(1).map_err(map_err)?, role_at(r, 2)?)))
            .collect::<Result<Vec<(Uuid, Uuid, Option<ProjectRole>)>, StoreError>>()?;
        let owners = tx
            .prepare_cached(
                "SELECT user_id, created_at FROM project_members \
                 WHERE project_id = $1 AND role = 'owner' AND user_id <> $2",
            )
            .await
            .map_err(map_err)?;
        let erased = comments::erase_comments_by(&tx, user, at).await?;
        for event in &erased {
            outbox::insert_pg(&tx, event).await?;
        }
        let mut counts = ErasureCounts { comments: erased.len() as u64, ..Default::default() };
        for (project_id, owner_id, role) in involved {
            let other_owners = tx
                .query(&owners, &[&project_id, &user])
                .await
                .map_err(map_err)?
                .iter()
                .map(|r| Ok((r.try_get(0).map_err(map_err)?, r.try_get(1).map_err(map_err)?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            let plan = plan_erasure(user, &Involvement { project_id, owner_id, role, other_owners });
            match &plan {
                ProjectErasure::Delete => {
                    counts.comments += exec!(tx, "DELETE FROM comments WHERE project_id = $1", &[&project_id]);
                    counts.tasks += exec!(tx, "DELETE FROM tasks WHERE project_id = $1", &[&project_id]);
                    counts.project_members +=
                        exec!(tx, "DELETE FROM project_members WHERE project_id = $1", &[&project_id]);
                    counts.projects += exec!(tx, "DELETE FROM projects WHERE id = $1", &[&project_id]);
                }
                ProjectErasure::Leave { remove_membership, new_owner } => {
                    if *remove_membership {
                        counts.project_members += exec!(
                            tx,
                            "DELETE FROM project_members WHERE project_id = $1 AND user_id = $2",
                            &[&project_id, &user],
                        );
                    }
                    if let Some(heir) = new_owner {
                        counts.projects += exec!(
                            tx,
                            "UPDATE projects SET owner_id = $2, updated_at = $3 WHERE id = $1",
                            &[&project_id, heir, &at],
                        );
                    }
                }
            }
            if let Some(event) = erasure_event(user, project_id, &plan, at) {
                outbox::insert_pg(&tx, &event).await?;
            }
        }
        counts.tasks +=
            exec!(tx, "UPDATE tasks SET assignee_id = NULL, updated_at = $2 WHERE assignee_id = $1", &[&user, &at]);
        tx.commit().await.map_err(map_err)?;
        Ok(counts)
    }
}

impl PgStore {
    /// A write conditional on the row's version (`sql`, whose parameters are `params`): when it
    /// changed a row, stores `event` and commits, `Ok(true)`; when it matched nothing, `Ok(false)`
    /// if row `id` of `table` still exists (stale) and `NotFound` if it does not.
    pub(super) async fn conditional_write(
        &self,
        table: &'static str,
        id: Uuid,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut client = self.db.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        if tx.execute(sql, params).await.map_err(map_err)? == 0 {
            let exists = format!("SELECT EXISTS(SELECT 1 FROM {table} WHERE id = $1)");
            let exists: bool = tx.query_one(&exists, &[&id]).await.map_err(map_err)?.get(0);
            return if exists { Ok(false) } else { Err(StoreError::NotFound) };
        }
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }
}

#[async_trait]
impl MemberStore for PgStore {
    async fn update_project(
        &self,
        p: &ProjectRecord,
        read_at: OffsetDateTime,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE projects SET name = $2, description = $3, updated_at = $4 WHERE id = $1 AND updated_at = $5";
        self.conditional_write("projects", p.id, sql, &[&p.id, &p.name, &p.description, &p.updated_at, &read_at], event)
            .await
    }

    async fn delete_project(&self, id: Uuid, read_at: OffsetDateTime, event: &Event) -> Result<bool, StoreError> {
        // Members and tasks go with it (ON DELETE CASCADE).
        let sql = "DELETE FROM projects WHERE id = $1 AND updated_at = $2";
        self.conditional_write("projects", id, sql, &[&id, &read_at], event).await
    }

    async fn list_members(&self, project: Uuid) -> Result<Vec<MemberRecord>, StoreError> {
        let client = self.db.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {MEMBER_COLUMNS} FROM project_members WHERE project_id = $1 ORDER BY created_at, user_id"
            ))
            .await
            .map_err(map_err)?;
        let rows = client.query(&stmt, &[&project]).await.map_err(map_err)?;
        rows.iter().map(member_record).collect()
    }

    async fn co_members(&self, user: Uuid) -> Result<Vec<Uuid>, StoreError> {
        let client = self.db.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT DISTINCT o.user_id FROM project_members m \
                 JOIN project_members o ON o.project_id = m.project_id WHERE m.user_id = $1",
            )
            .await
            .map_err(map_err)?;
        let rows = client.query(&stmt, &[&user]).await.map_err(map_err)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn add_member(&self, m: &MemberRecord, event: &Event) -> Result<(), StoreError> {
        let mut client = self.db.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        // The project row is locked so that a concurrent delete cannot leave an orphan (the FK
        // would refuse it anyway) and the answer is NotFound rather than a constraint error.
        let exists = tx
            .query_opt("SELECT 1 FROM projects WHERE id = $1 FOR SHARE", &[&m.project_id])
            .await
            .map_err(map_err)?
            .is_some();
        if !exists {
            return Err(StoreError::NotFound);
        }
        tx.execute(
            "INSERT INTO project_members (project_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
            &[&m.project_id, &m.user_id, &role_str(m.role), &m.created_at],
        )
        .await
        .map_err(map_err)?;
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn change_member(
        &self,
        project: Uuid,
        user: Uuid,
        change: MemberUpdate,
        event: &Event,
    ) -> Result<MemberChange, StoreError> {
        let MemberUpdate { role, at, expected } = change;
        let mut client = self.db.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        // Every member row of the project locked, in one order, so that two owners demoting each
        // other queue and the second sees that it would leave no owner.
        let members = tx
            .query(
                "SELECT user_id, role FROM project_members WHERE project_id = $1 ORDER BY user_id FOR UPDATE",
                &[&project],
            )
            .await
            .map_err(map_err)?;
        let role_of = |r: &Row| role_at(r, 1);
        let mut current = None;
        let mut owners = 0;
        for r in &members {
            let member_role = role_of(r)?;
            if member_role == Some(ProjectRole::Owner) {
                owners += 1;
            }
            if r.get::<_, Uuid>(0) == user {
                current = member_role;
            }
        }
        let Some(current) = current else { return Ok(MemberChange::NotMember) };
        if expected.is_some_and(|e| e != current) {
            return Ok(MemberChange::Stale);
        }
        let stays_owner = role == Some(ProjectRole::Owner);
        if current == ProjectRole::Owner && !stays_owner && owners <= 1 {
            return Ok(MemberChange::LastOwner);
        }
        match role {
            Some(role) => {
                tx.execute(
                    "UPDATE project_members SET role = $3 WHERE project_id = $1 AND user_id = $2",
                    &[&project, &user, &role_str(role)],
                )
                .await
            }
            None => {
                tx.execute("DELETE FROM project_members WHERE project_id = $1 AND user_id = $2", &[&project, &user])
                    .await
            }
        }
        .map_err(map_err)?;
        let mut unassigned = Vec::new();
        if role.is_none() {
            let rows = tx
                .query(
                    "UPDATE tasks SET assignee_id = NULL, updated_at = $3 \
                     WHERE project_id = $1 AND assignee_id = $2 RETURNING id",
                    &[&project, &user, &at],
                )
                .await
                .map_err(map_err)?;
            unassigned = rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>().map_err(map_err)?;
        }
        if !stays_owner {
            tx.execute(
                "UPDATE projects SET owner_id = (SELECT user_id FROM project_members \
                     WHERE project_id = $1 AND role = 'owner' ORDER BY created_at, user_id LIMIT 1) \
                 WHERE id = $1 AND owner_id = $2",
                &[&project, &user],
            )
            .await
            .map_err(map_err)?;
        }
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(MemberChange::Done { unassigned })
    }
}
