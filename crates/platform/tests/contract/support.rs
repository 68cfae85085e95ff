//! Shared pieces of the contract suites: bounded waits on subscriptions, sample events, and the
//! event-bus fixtures (an adapter plus whatever cleans up after it).

use std::sync::Arc;
use std::time::Duration;

use platform::bus::{
    DEFAULT_BROADCAST_CAPACITY, DEFAULT_DELIVERY_LIMIT, Delivery, Event, EventBus, InProcessBus, RabbitMqBus,
    Subscription,
};
use serde_json::json;
use test_support::TestRabbit;
use time::OffsetDateTime;
use uuid::Uuid;

/// The longest any single expected delivery may take: generous, since a loaded machine may hold
/// up a delivery for seconds (a minute, scaled by `TEST_PATIENCE`).
pub fn wait_limit() -> Duration {
    test_support::wait::default_limit()
}
/// How long to watch a subscription to conclude that nothing more arrives. Only a check that
/// nothing *extra* comes uses it, after the expected state was reached: a slow machine can make
/// it miss a late extra delivery, never fail a correct adapter.
pub const QUIET: Duration = Duration::from_millis(300);

/// Every consumer group the suites use; the RabbitMQ fixture deletes their queues at the end.
pub const GROUPS: &[&str] = &["audit", "notify", "relay"];

/// The next delivery, or a panic naming `what` after [`wait_limit`].
pub async fn next(sub: &mut dyn Subscription, what: &str) -> Delivery {
    let limit = wait_limit();
    match tokio::time::timeout(limit, sub.next()).await {
        Ok(Some(Ok(d))) => d,
        Ok(Some(Err(e))) => panic!("{what}: the subscription failed: {e}"),
        Ok(None) => panic!("{what}: the subscription ended"),
        Err(_) => panic!("{what}: nothing delivered within {limit:?}"),
    }
}

/// Panics if anything is delivered within [`QUIET`].
pub async fn assert_quiet(sub: &mut dyn Subscription, what: &str) {
    if let Ok(Some(d)) = tokio::time::timeout(QUIET, sub.next()).await {
        panic!("{what}: unexpected delivery {d:?}");
    }
}

/// `t` without its sub-microsecond part, the precision PostgreSQL keeps.
pub fn micros(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(t.nanosecond() / 1000 * 1000).unwrap()
}

/// An event with every field set, distinguishable by `n`.
pub fn event(n: u32) -> Event {
    Event::new(
        "task.created",
        Uuid::now_v7(),
        Some(Uuid::now_v7()),
        micros(OffsetDateTime::now_utc()),
        json!({ "n": n, "title": format!("task {n}"), "labels": ["a", "ü"], "nested": { "ok": true } }),
    )
}

/// The knobs of a bus under test; `Default` is what production uses.
#[derive(Clone, Copy)]
pub struct BusConfig {
    pub delivery_limit: u32,
    pub broadcast_capacity: usize,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self { delivery_limit: DEFAULT_DELIVERY_LIMIT, broadcast_capacity: DEFAULT_BROADCAST_CAPACITY }
    }
}

/// An event bus adapter ready for one test, cleaned up on drop.
pub trait BusFixture: Sized {
    async fn new() -> Self {
        Self::with(BusConfig::default()).await
    }
    async fn with(config: BusConfig) -> Self;
    fn bus(&self) -> Arc<dyn EventBus>;
    /// The events `group` dead-lettered so far, oldest first, left where they are.
    async fn dead_letters(&self, group: &str) -> Vec<Event>;
}

pub struct InProcess {
    bus: Arc<InProcessBus>,
}

impl BusFixture for InProcess {
    async fn with(config: BusConfig) -> Self {
        let bus = InProcessBus::new()
            .with_delivery_limit(config.delivery_limit)
            .with_broadcast_capacity(config.broadcast_capacity);
        Self { bus: Arc::new(bus) }
    }
    fn bus(&self) -> Arc<dyn EventBus> {
        self.bus.clone()
    }
    async fn dead_letters(&self, group: &str) -> Vec<Event> {
        self.bus.dead_letters(group)
    }
}

/// A `RabbitMqBus` in a namespace of its own; the queues of [`GROUPS`], the dead letters and the
/// exchanges are deleted on drop (fields drop in order: the bus's connection closes first).
pub struct Rabbit {
    bus: Arc<RabbitMqBus>,
    pub rabbit: TestRabbit,
}

/// A message read from `{ns}.dead`: its body and, from its `x-death` header, the queue it died
/// in and why (`delivery_limit`, `rejected`).
#[derive(Debug)]
pub struct DeadMessage {
    pub body: Vec<u8>,
    pub queue: String,
    pub reason: String,
}

impl Rabbit {
    /// Every message in `{ns}.dead`, read with a channel of its own and handed back (the channel
    /// closes unacknowledged), so the queue is unchanged.
    pub async fn dead_messages(&self) -> Vec<DeadMessage> {
        use lapin::options::BasicGetOptions;
        use lapin::types::AMQPValue;
        let conn = lapin::Connection::connect(&self.rabbit.url, lapin::ConnectionProperties::default()).await.unwrap();
        let ch = conn.create_channel().await.unwrap();
        let mut out = Vec::new();
        while let Some(m) = ch.basic_get(self.rabbit.dead().as_str().into(), BasicGetOptions::default()).await.unwrap()
        {
            let death = m.delivery.properties.headers().as_ref().and_then(|h| match h.inner().get("x-death") {
                Some(AMQPValue::FieldArray(a)) => match a.as_slice().first() {
                    Some(AMQPValue::FieldTable(t)) => Some(t.clone()),
                    _ => None,
                },
                _ => None,
            });
            let field = |name: &str| match death.as_ref().and_then(|t| t.inner().get(name)) {
                Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
                other => panic!("dead letter without x-death {name}: {other:?}"),
            };
            out.push(DeadMessage { queue: field("queue"), reason: field("reason"), body: m.delivery.data.clone() });
        }
        ch.close(200, "read".into()).await.unwrap();
        let _ = conn.close(200, "read".into()).await;
        out
    }
}

impl BusFixture for Rabbit {
    async fn with(config: BusConfig) -> Self {
        let rabbit = TestRabbit::new(GROUPS);
        let bus = rabbit
            .bus()
            .await
            .with_delivery_limit(config.delivery_limit)
            .with_broadcast_capacity(config.broadcast_capacity);
        Self { bus: Arc::new(bus), rabbit }
    }
    fn bus(&self) -> Arc<dyn EventBus> {
        self.bus.clone()
    }
    async fn dead_letters(&self, group: &str) -> Vec<Event> {
        let queue = self.rabbit.queue(group);
        self.dead_messages()
            .await
            .into_iter()
            .filter(|m| m.queue == queue)
            .map(|m| serde_json::from_slice(&m.body).unwrap())
            .collect()
    }
}

/// A database ready for one test (a fresh SQLite file or PostgreSQL database), removed on drop.
pub trait DbFixture: Sized {
    async fn new() -> Self;
    fn db(&self) -> &platform::db::Database;
}

impl DbFixture for test_support::TestSqlite {
    async fn new() -> Self {
        test_support::TestSqlite::new().await
    }
    fn db(&self) -> &platform::db::Database {
        &self.db
    }
}

impl DbFixture for test_support::TestPostgres {
    async fn new() -> Self {
        test_support::TestPostgres::new().await
    }
    fn db(&self) -> &platform::db::Database {
        &self.db
    }
}

/// A table for the suites' own rows, with a unique column and a foreign key.
pub const THINGS: platform::db::Migrations = platform::db::Migrations {
    service: "contract",
    sqlite: &[platform::db::Migration {
        version: 1,
        name: "things",
        sql: "CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
              CREATE TABLE parts (id INTEGER PRIMARY KEY, thing_id INTEGER NOT NULL REFERENCES things (id));",
    }],
    postgres: &[platform::db::Migration {
        version: 1,
        name: "things",
        sql: "CREATE TABLE things (id BIGINT PRIMARY KEY, name TEXT NOT NULL UNIQUE);
              CREATE TABLE parts (id BIGINT PRIMARY KEY, thing_id BIGINT NOT NULL REFERENCES things (id));",
    }],
};

/// Runs one statement with `i64` parameters on either backend, mapping errors at the seam.
pub async fn exec(
    db: &platform::db::Database,
    sqlite_sql: &'static str,
    pg_sql: &'static str,
    params: Vec<i64>,
) -> Result<u64, platform::db::StoreError> {
    use platform::db::{Database, postgres, sqlite};
    match db {
        Database::Sqlite(db) => {
            db.write(move |tx| {
                let n = tx.execute(sqlite_sql, rusqlite::params_from_iter(params)).map_err(sqlite::map_err)?;
                Ok(n as u64)
            })
            .await
        }
        Database::Postgres(db) => {
            let client = db.client().await?;
            let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                params.iter().map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync)).collect();
            client.execute(pg_sql, &params).await.map_err(postgres::map_err)
        }
    }
}

/// One `i64` from a query that must return exactly one row (`NotFound` otherwise).
pub async fn query_i64(
    db: &platform::db::Database,
    sqlite_sql: &'static str,
    pg_sql: &'static str,
    params: Vec<i64>,
) -> Result<i64, platform::db::StoreError> {
    use platform::db::{Database, postgres};
    match db {
        Database::Sqlite(db) => {
            db.read(move |c| c.query_row(sqlite_sql, rusqlite::params_from_iter(params), |r| r.get(0))).await
        }
        Database::Postgres(db) => {
            let client = db.client().await?;
            let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                params.iter().map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync)).collect();
            let row = client.query_one(pg_sql, &params).await.map_err(postgres::map_err)?;
            Ok(row.get(0))
        }
    }
}
