//! Test fixtures shared by every crate's tests: isolated real services (a fresh PostgreSQL
//! database, a Redis key prefix, a RabbitMQ namespace, an S3 bucket) that clean up after
//! themselves, and a fail-loudly rule: a required service that cannot be reached fails the test.
//!
//! Addresses come from `TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`),
//! `TEST_REDIS_URL` (default `redis://127.0.0.1:6379`), `TEST_AMQP_URL` (default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`) and `TEST_S3_ENDPOINT` (default
//! `http://127.0.0.1:5000`, a moto server that [`moto::ensure_s3_server`] starts when nothing
//! answers there).

pub mod moto;
pub mod services;

pub use moto::ensure_s3_server;
pub use services::{TestBucket, TestPostgres, TestRabbit, TestRedis, amqp_url, redis_url, s3_endpoint, unique_name};

use platform::db::{Database, SqliteDb};

/// A fresh SQLite database in a temporary folder, removed on drop.
pub struct TestSqlite {
    pub db: Database,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl TestSqlite {
    pub async fn new() -> TestSqlite {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
        let path = dir.path().join("test.db");
        let db = SqliteDb::open(&path).await.unwrap_or_else(|e| panic!("cannot open SQLite: {e}"));
        TestSqlite { db: Database::Sqlite(db), url: format!("sqlite://{}", path.display()), _dir: dir }
    }
}
