//! Test fixtures shared by every crate's tests: isolated real services (a fresh PostgreSQL
//! database, a Redis key prefix, a RabbitMQ namespace, an S3 bucket) that clean up after
//! themselves, and a fail-loudly rule: a required service that cannot be reached fails the test.
//! [`TestClamd`] is a real clamd per test with a signature database of the test's own files.
//!
//! Addresses come from `TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`),
//! `TEST_REDIS_URL` (default `redis://127.0.0.1:6379`), `TEST_AMQP_URL` (default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`) and `TEST_S3_ENDPOINT` (default
//! `http://127.0.0.1:5000`, a moto server that [`moto::ensure_s3_server`] starts when nothing
//! answers there). [`TestSmtp`] is a real SMTP server (aiosmtpd, installed if missing) per test.
//!
//! Two rules keep the suite green on a busy machine: ports for child processes come from
//! [`reserve_port`] (never bound-and-released), and waits are for a state ([`wait`]), never for a
//! fixed time.

pub mod clamd;
pub mod moto;
pub mod ports;
pub mod proxy;
pub mod s3rver;
pub mod services;
pub mod smtp;
pub mod wait;

pub use clamd::TestClamd;
pub use moto::ensure_s3_server;
pub use ports::reserve_port;
pub use proxy::TcpProxy;
pub use s3rver::TestS3rver;
pub use services::{TestBucket, TestPostgres, TestRabbit, TestRedis, amqp_url, redis_url, s3_endpoint, unique_name};
pub use smtp::{ReceivedMail, TestSmtp, read_mail_dir, wait_for_mail};

use platform::db::{Database, SqliteDb};

/// One test per function and database: `mod sqlite` and `mod postgres`, each calling
/// `super::NAME(&super::Backend::sqlite().await)` (or `…postgres()`), so a contract suite runs
/// against both adapters. The invoking module provides `Backend` with those two constructors.
#[macro_export]
macro_rules! backend_suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(&super::Backend::sqlite().await).await; }
        )* }
        mod postgres { $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(&super::Backend::postgres().await).await; }
        )* }
    };
}

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

/// The types of the events in the outbox, oldest first, on either backend: what a store test
/// checks to prove that a change and its event were committed together.
pub async fn outbox_event_types(db: &Database) -> Vec<String> {
    const SQL: &str = "SELECT event_type FROM outbox ORDER BY seq";
    match db {
        Database::Sqlite(db) => db
            .read(|c| c.prepare(SQL)?.query_map([], |r| r.get::<_, String>(0))?.collect())
            .await
            .unwrap_or_else(|e| panic!("cannot read the outbox: {e}")),
        Database::Postgres(db) => {
            let client = db.client().await.unwrap_or_else(|e| panic!("cannot reach PostgreSQL: {e}"));
            let rows = client.query(SQL, &[]).await.unwrap_or_else(|e| panic!("cannot read the outbox: {e}"));
            rows.iter().map(|r| r.get(0)).collect()
        }
    }
}
