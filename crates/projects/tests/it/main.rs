//! Integration tests of the projects service, one binary (matklad's layout). Every test is written
//! once, as an async fn over a [`Backend`], and run against SQLite and a real PostgreSQL by
//! [`backend_suite!`], which generates one `#[tokio::test]` per backend.

mod attachment_scans;
mod attachments;
mod cache;
mod comments;
mod http;
mod idempotency;
mod members;
mod people;
mod personal;
mod search;
mod service;
mod store_contract;
mod tasks;
mod tasks_http;

use std::any::Any;
use std::collections::BTreeSet;
use std::sync::Arc;

use api::projects::ProjectRole;
use platform::db::{Database, StoreError};
use projects::ProjectsStore;
use time::OffsetDateTime;
use uuid::Uuid;

/// A migrated database of one backend, the projects store over it, and the guard that drops the
/// database when the test ends.
pub struct Backend {
    pub db: Database,
    pub store: Arc<dyn ProjectsStore>,
    _guard: Box<dyn Any + Send>,
}

impl Backend {
    async fn with(db: Database, guard: Box<dyn Any + Send>) -> Backend {
        db.migrate(&platform::outbox::MIGRATIONS).await.unwrap_or_else(|e| panic!("outbox migrations: {e:#}"));
        db.migrate(&projects::MIGRATIONS).await.unwrap_or_else(|e| panic!("projects migrations: {e:#}"));
        // Migrating twice is a no-op.
        db.migrate(&projects::MIGRATIONS).await.unwrap_or_else(|e| panic!("projects migrations again: {e:#}"));
        Backend { store: projects::store(&db), db, _guard: guard }
    }

    pub async fn sqlite() -> Backend {
        let t = test_support::TestSqlite::new().await;
        Backend::with(t.db.clone(), Box::new(t)).await
    }

    pub async fn postgres() -> Backend {
        let t = test_support::TestPostgres::new().await;
        Backend::with(t.db.clone(), Box::new(t)).await
    }

    /// The outbox rows, in order: (type, aggregate id, actor id, data).
    pub async fn outbox(&self) -> Vec<OutboxRow> {
        let rows = match &self.db {
            Database::Sqlite(db) => {
                db.read(|c| {
                    let mut stmt =
                        c.prepare("SELECT event_type, aggregate_id, actor_id, data FROM outbox ORDER BY seq")?;
                    let rows = stmt.query_map([], |r| {
                        let data: String = r.get(3)?;
                        Ok(OutboxRow {
                            event_type: r.get(0)?,
                            aggregate_id: r.get(1)?,
                            actor_id: r.get(2)?,
                            data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
                        })
                    })?;
                    rows.collect::<rusqlite::Result<Vec<_>>>()
                })
                .await
            }
            Database::Postgres(db) => {
                async {
                    let client = db.client().await?;
                    let rows = client
                        .query("SELECT event_type, aggregate_id, actor_id, data FROM outbox ORDER BY seq", &[])
                        .await
                        .map_err(platform::db::postgres::map_err)?;
                    Ok::<_, StoreError>(
                        rows.iter()
                            .map(|r| OutboxRow {
                                event_type: r.get(0),
                                aggregate_id: r.get(1),
                                actor_id: r.get(2),
                                data: r.get(3),
                            })
                            .collect(),
                    )
                }
                .await
            }
        };
        rows.unwrap_or_else(|e| panic!("cannot read the outbox: {e}"))
    }

    /// How many rows `table` holds.
    pub async fn count(&self, table: &'static str) -> i64 {
        let sql = format!("SELECT count(*) FROM {table}");
        let n = match &self.db {
            Database::Sqlite(db) => db.read(move |c| c.query_row(&sql, [], |r| r.get(0))).await,
            Database::Postgres(db) => {
                async {
                    let client = db.client().await?;
                    let row = client.query_one(&sql, &[]).await.map_err(platform::db::postgres::map_err)?;
                    Ok(row.get(0))
                }
                .await
            }
        };
        n.unwrap_or_else(|e| panic!("cannot count {table}: {e}"))
    }

    /// Adds a membership directly (the members use cases come later).
    pub async fn add_member(&self, project_id: Uuid, user_id: Uuid, role: ProjectRole) {
        let role = match role {
            ProjectRole::Owner => "owner",
            ProjectRole::Editor => "editor",
            ProjectRole::Viewer => "viewer",
        };
        let at = now();
        let res = match &self.db {
            Database::Sqlite(db) => {
                let at = at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
                db.write(move |tx| {
                    tx.execute(
                        "INSERT INTO project_members (project_id, user_id, role, created_at) VALUES (?1, ?2, ?3, ?4)",
                        rusqlite::params![project_id, user_id, role, at],
                    )
                    .map_err(platform::db::sqlite::map_err)?;
                    Ok(())
                })
                .await
            }
            Database::Postgres(db) => {
                async {
                    let client = db.client().await?;
                    client
                    .execute(
                        "INSERT INTO project_members (project_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
                        &[&project_id, &user_id, &role, &at],
                    )
                    .await
                    .map_err(platform::db::postgres::map_err)?;
                    Ok(())
                }
                .await
            }
        };
        res.unwrap_or_else(|e| panic!("cannot add member: {e}"));
    }

    /// Assigns a task directly (the task update use case comes later).
    pub async fn assign(&self, task_id: Uuid, user_id: Uuid) {
        let res = match &self.db {
            Database::Sqlite(db) => {
                db.write(move |tx| {
                    tx.execute("UPDATE tasks SET assignee_id = ?2 WHERE id = ?1", rusqlite::params![task_id, user_id])
                        .map_err(platform::db::sqlite::map_err)
                })
                .await
            }
            Database::Postgres(db) => {
                async {
                    let client = db.client().await?;
                    client
                        .execute("UPDATE tasks SET assignee_id = $2 WHERE id = $1", &[&task_id, &user_id])
                        .await
                        .map_err(platform::db::postgres::map_err)
                        .map(|n| n as usize)
                }
                .await
            }
        };
        assert_eq!(res.unwrap_or_else(|e| panic!("cannot assign: {e}")), 1, "no task {task_id}");
    }

    /// The tables of the database, from its catalog: ordinary tables only (not the search index's
    /// FTS5 virtual table and its shadow tables, which hold an index of other tables' text).
    pub async fn tables(&self) -> BTreeSet<String> {
        self.strings(
            "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' \
             AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            None,
        )
        .await
    }

    /// The columns of `table`, from the database's catalog, less generated ones (PostgreSQL's
    /// `search` tsvectors: an index of the other columns, not data of its own).
    pub async fn columns(&self, table: &str) -> BTreeSet<String> {
        self.strings(
            "SELECT name FROM pragma_table_info(?1)",
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 AND is_generated = 'NEVER'",
            Some(table.to_string()),
        )
        .await
    }

    /// The first column of a catalog query's rows, with one optional text parameter.
    async fn strings(&self, sqlite: &'static str, postgres: &'static str, arg: Option<String>) -> BTreeSet<String> {
        let rows = match &self.db {
            Database::Sqlite(db) => {
                db.read(move |c| {
                    let mut stmt = c.prepare(sqlite)?;
                    let params: Vec<&dyn rusqlite::ToSql> = arg.iter().map(|a| a as &dyn rusqlite::ToSql).collect();
                    let rows = stmt.query_map(params.as_slice(), |r| r.get(0))?;
                    rows.collect::<rusqlite::Result<BTreeSet<String>>>()
                })
                .await
            }
            Database::Postgres(db) => {
                async {
                    let client = db.client().await?;
                    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                        arg.iter().map(|a| a as &(dyn tokio_postgres::types::ToSql + Sync)).collect();
                    let rows =
                        client.query(postgres, params.as_slice()).await.map_err(platform::db::postgres::map_err)?;
                    Ok(rows.iter().map(|r| r.get(0)).collect())
                }
                .await
            }
        };
        rows.unwrap_or_else(|e| panic!("cannot read the catalog: {e}"))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub event_type: String,
    pub aggregate_id: Uuid,
    pub actor_id: Option<Uuid>,
    pub data: serde_json::Value,
}

/// Now to the microsecond, as both backends store it.
pub fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_microsecond(t.microsecond()).unwrap_or(t)
}

/// Generates, for each named `async fn(&Backend)` in the calling module, one `#[tokio::test]` per
/// backend: `sqlite::<name>` and `postgres::<name>`.
#[macro_export]
macro_rules! backend_suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let backend = $crate::Backend::sqlite().await;
                    super::$name(&backend).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let backend = $crate::Backend::postgres().await;
                    super::$name(&backend).await;
                }
            )*
        }
    };
}
