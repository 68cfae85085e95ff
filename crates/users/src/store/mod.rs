//! The users store on SQLite and PostgreSQL, and the migrations of both.

mod postgres;
mod sqlite;

use std::sync::Arc;

use platform::db::{Database, Migration, Migrations};

use crate::ports::UserStore;

pub const MIGRATIONS: Migrations = Migrations {
    service: "users",
    sqlite: &[
        Migration { version: 1, name: "users", sql: include_str!("../../migrations/sqlite/0001_users.sql") },
        Migration {
            version: 2,
            name: "mfa_enabled",
            sql: include_str!("../../migrations/sqlite/0002_mfa_enabled.sql"),
        },
        Migration { version: 3, name: "pii", sql: include_str!("../../migrations/sqlite/0003_pii.sql") },
    ],
    postgres: &[
        Migration { version: 1, name: "users", sql: include_str!("../../migrations/postgres/0001_users.sql") },
        Migration {
            version: 2,
            name: "mfa_enabled",
            sql: include_str!("../../migrations/postgres/0002_mfa_enabled.sql"),
        },
        Migration { version: 3, name: "pii", sql: include_str!("../../migrations/postgres/0003_pii.sql") },
    ],
};

/// The adapter for the configured database.
pub fn store(db: &Database) -> Arc<dyn UserStore> {
    match db {
        Database::Sqlite(db) => Arc::new(sqlite::SqliteUserStore(db.clone())),
        Database::Postgres(db) => Arc::new(postgres::PgUserStore(db.clone())),
    }
}
