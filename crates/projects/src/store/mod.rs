//! Storage adapters of the projects service, one per backend, and its migrations.
//!
//! Encodings shared by both backends: task status and priority are stored as small integers in
//! their natural order (status: 0 todo, 1 in progress, 2 done; priority: 0 low … 3 urgent), so
//! that `ORDER BY status` is board order and sorting by priority is a plain index scan; project
//! roles are stored as their API names. Task positions compare bytewise (SQLite's default,
//! PostgreSQL `COLLATE "C"`), as [`crate::rank`] requires.

mod postgres;
mod sqlite;

use std::sync::Arc;

use api::projects::{Priority, ProjectRole, TaskStatus};
use platform::db::{Database, Migration, Migrations};

use crate::ports::ProjectsStore;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// The projects service's schema, for `Database::migrate`.
pub const MIGRATIONS: Migrations = Migrations {
    service: "projects",
    sqlite: &[Migration { version: 1, name: "init", sql: include_str!("../../migrations/sqlite/0001_init.sql") }],
    postgres: &[Migration { version: 1, name: "init", sql: include_str!("../../migrations/postgres/0001_init.sql") }],
};

/// The store adapter for `db`'s backend.
pub fn store(db: &Database) -> Arc<dyn ProjectsStore> {
    match db {
        Database::Sqlite(db) => Arc::new(SqliteStore::new(db.clone())),
        Database::Postgres(db) => Arc::new(PgStore::new(db.clone())),
    }
}

pub(crate) fn status_code(s: TaskStatus) -> i16 {
    match s {
        TaskStatus::Todo => 0,
        TaskStatus::InProgress => 1,
        TaskStatus::Done => 2,
    }
}

pub(crate) fn status_from_code(c: i64) -> Option<TaskStatus> {
    match c {
        0 => Some(TaskStatus::Todo),
        1 => Some(TaskStatus::InProgress),
        2 => Some(TaskStatus::Done),
        _ => None,
    }
}

/// The smallest and largest status code a listing covers.
fn status_range(s: Option<TaskStatus>) -> (i16, i16) {
    match s {
        Some(s) => (status_code(s), status_code(s)),
        None => (status_code(TaskStatus::Todo), status_code(TaskStatus::Done)),
    }
}

fn priority_code(p: Priority) -> i16 {
    match p {
        Priority::Low => 0,
        Priority::Medium => 1,
        Priority::High => 2,
        Priority::Urgent => 3,
    }
}

fn priority_from_code(c: i64) -> Option<Priority> {
    match c {
        0 => Some(Priority::Low),
        1 => Some(Priority::Medium),
        2 => Some(Priority::High),
        3 => Some(Priority::Urgent),
        _ => None,
    }
}

fn role_str(r: ProjectRole) -> &'static str {
    match r {
        ProjectRole::Owner => "owner",
        ProjectRole::Editor => "editor",
        ProjectRole::Viewer => "viewer",
    }
}

fn parse_role(s: &str) -> Option<ProjectRole> {
    match s {
        "owner" => Some(ProjectRole::Owner),
        "editor" => Some(ProjectRole::Editor),
        "viewer" => Some(ProjectRole::Viewer),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_keep_natural_order() {
        let statuses = [TaskStatus::Todo, TaskStatus::InProgress, TaskStatus::Done];
        for s in statuses {
            assert_eq!(status_from_code(i64::from(status_code(s))), Some(s));
        }
        assert!(statuses.windows(2).all(|w| status_code(w[0]) < status_code(w[1])));
        let priorities = [Priority::Low, Priority::Medium, Priority::High, Priority::Urgent];
        for p in priorities {
            assert_eq!(priority_from_code(i64::from(priority_code(p))), Some(p));
        }
        assert!(priorities.windows(2).all(|w| priority_code(w[0]) < priority_code(w[1])));
        for r in [ProjectRole::Owner, ProjectRole::Editor, ProjectRole::Viewer] {
            assert_eq!(parse_role(role_str(r)), Some(r));
        }
        assert_eq!(status_from_code(3), None);
        assert_eq!(priority_from_code(-1), None);
        assert_eq!(parse_role("admin"), None);
    }
}
