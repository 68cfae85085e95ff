//! Storage adapters of the projects service, one per backend, and its migrations.
//!
//! Encodings shared by both backends: task status and priority are stored as small integers in
//! their natural order (status: 0 todo, 1 in progress, 2 done; priority: 0 low … 3 urgent), so
//! that `ORDER BY status` is board order and sorting by priority is a plain index scan; project
//! roles are stored as their API names. Task positions compare bytewise (SQLite's default,
//! PostgreSQL `COLLATE "C"`), as [`crate::rank`] requires.

mod postgres;
mod sqlite;
mod tasks;

use std::sync::Arc;

use api::projects::{Priority, ProjectRole, TaskStatus};
use platform::bus::Event;
use platform::db::{Database, Migration, Migrations};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::ProjectErasure;
use crate::ports::ProjectsStore;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// The projects service's schema, for `Database::migrate`.
pub const MIGRATIONS: Migrations = Migrations {
    service: "projects",
    sqlite: &[
        Migration { version: 1, name: "init", sql: include_str!("../../migrations/sqlite/0001_init.sql") },
        Migration { version: 2, name: "task_lists", sql: include_str!("../../migrations/sqlite/0002_task_lists.sql") },
        Migration {
            version: 3,
            name: "comments_search",
            sql: include_str!("../../migrations/sqlite/0003_comments_search.sql"),
        },
        Migration {
            version: 4,
            name: "attachments",
            sql: include_str!("../../migrations/sqlite/0004_attachments.sql"),
        },
        Migration {
            version: 6,
            name: "attachment_scans",
            sql: include_str!("../../migrations/sqlite/0006_attachment_scans.sql"),
        },
    ],
    postgres: &[
        Migration { version: 1, name: "init", sql: include_str!("../../migrations/postgres/0001_init.sql") },
        Migration {
            version: 2,
            name: "task_lists",
            sql: include_str!("../../migrations/postgres/0002_task_lists.sql"),
        },
        Migration {
            version: 3,
            name: "comments_search",
            sql: include_str!("../../migrations/postgres/0003_comments_search.sql"),
        },
        Migration {
            version: 4,
            name: "attachments",
            sql: include_str!("../../migrations/postgres/0004_attachments.sql"),
        },
        Migration {
            version: 6,
            name: "attachment_scans",
            sql: include_str!("../../migrations/postgres/0006_attachment_scans.sql"),
        },
    ],
};

/// The store adapter for `db`'s backend.
pub fn store(db: &Database) -> Arc<dyn ProjectsStore> {
    match db {
        Database::Sqlite(db) => Arc::new(SqliteStore::new(db.clone())),
        Database::Postgres(db) => Arc::new(PgStore::new(db.clone())),
    }
}

/// The event of erasing `user` from one project, ids only: `project.deleted` for a deleted
/// project, `member.changed` (`"change": "removed"`, and the new `owner_id` when it moved) for a
/// removed membership, nothing when no membership was removed. No actor: erasure is the system's
/// doing, and the event names the user only as the member removed.
pub fn erasure_event(user: Uuid, project_id: Uuid, plan: &ProjectErasure, at: OffsetDateTime) -> Option<Event> {
    match plan {
        ProjectErasure::Delete => Some(crate::events::project_deleted(None, project_id, at)),
        ProjectErasure::Leave { remove_membership: false, .. } => None,
        ProjectErasure::Leave { remove_membership: true, new_owner } => {
            Some(crate::events::member_removed(None, project_id, user, *new_owner, at))
        }
    }
}

/// The event of erasing a comment with its author (GDPR): `comment.deleted`, ids only, no actor.
pub fn comment_erased_event(comment: Uuid, task: Uuid, project: Uuid, at: OffsetDateTime) -> Event {
    crate::events::comment_deleted(None, comment, task, project, at)
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

pub(crate) fn priority_code(p: Priority) -> i16 {
    match p {
        Priority::Low => 0,
        Priority::Medium => 1,
        Priority::High => 2,
        Priority::Urgent => 3,
    }
}

pub(crate) fn priority_from_code(c: i64) -> Option<Priority> {
    match c {
        0 => Some(Priority::Low),
        1 => Some(Priority::Medium),
        2 => Some(Priority::High),
        3 => Some(Priority::Urgent),
        _ => None,
    }
}

pub(crate) fn role_str(r: ProjectRole) -> &'static str {
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
