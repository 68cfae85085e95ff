//! The auth store on SQLite and PostgreSQL, and the migrations of both.

mod postgres;
mod sqlite;

use std::sync::Arc;

use platform::db::{Database, Migration, Migrations};

use crate::ports::AuthStore;

pub const MIGRATIONS: Migrations = Migrations {
    service: "auth",
    sqlite: &[
        Migration { version: 1, name: "auth", sql: include_str!("../../migrations/sqlite/0001_auth.sql") },
        Migration {
            version: 2,
            name: "refresh_tokens",
            sql: include_str!("../../migrations/sqlite/0002_refresh_tokens.sql"),
        },
        Migration {
            version: 3,
            name: "login_failures",
            sql: include_str!("../../migrations/sqlite/0003_login_failures.sql"),
        },
        Migration { version: 4, name: "mfa", sql: include_str!("../../migrations/sqlite/0004_mfa.sql") },
        Migration {
            version: 5,
            name: "email_tokens",
            sql: include_str!("../../migrations/sqlite/0005_email_tokens.sql"),
        },
        Migration {
            version: 6,
            name: "signing_keys",
            sql: include_str!("../../migrations/sqlite/0006_signing_keys.sql"),
        },
        Migration {
            version: 7,
            name: "email_change",
            sql: include_str!("../../migrations/sqlite/0007_email_change.sql"),
        },
        Migration {
            version: 8,
            name: "session_amr",
            sql: include_str!("../../migrations/sqlite/0008_session_amr.sql"),
        },
    ],
    postgres: &[
        Migration { version: 1, name: "auth", sql: include_str!("../../migrations/postgres/0001_auth.sql") },
        Migration {
            version: 2,
            name: "refresh_tokens",
            sql: include_str!("../../migrations/postgres/0002_refresh_tokens.sql"),
        },
        Migration {
            version: 3,
            name: "login_failures",
            sql: include_str!("../../migrations/postgres/0003_login_failures.sql"),
        },
        Migration { version: 4, name: "mfa", sql: include_str!("../../migrations/postgres/0004_mfa.sql") },
        Migration {
            version: 5,
            name: "email_tokens",
            sql: include_str!("../../migrations/postgres/0005_email_tokens.sql"),
        },
        Migration {
            version: 6,
            name: "signing_keys",
            sql: include_str!("../../migrations/postgres/0006_signing_keys.sql"),
        },
        Migration {
            version: 7,
            name: "email_change",
            sql: include_str!("../../migrations/postgres/0007_email_change.sql"),
        },
        Migration {
            version: 8,
            name: "session_amr",
            sql: include_str!("../../migrations/postgres/0008_session_amr.sql"),
        },
    ],
};

pub fn store(db: &Database) -> Arc<dyn AuthStore> {
    match db {
        Database::Sqlite(db) => Arc::new(sqlite::SqliteAuthStore(db.clone())),
        Database::Postgres(db) => Arc::new(postgres::PgAuthStore(db.clone())),
    }
}
