//! The worker: runs the outbox relay and consumes events. Each event is handled at most once in
//! effect: its id goes into `worker_processed_events` in the same transaction as the handler's
//! effect, so a redelivery (after a lost ack or a relay retry) changes nothing.
//!
//! The effects: the inbox row, a per-type counter, and the entry in the hash-chained audit log
//! (`audit`, served to admins by `http` with the usage statistics drawn from it, `stats`), all in
//! one transaction; old audit entries move to object storage (`AuditLog::archive`); notification mails (`notify`) are a consumer group of their own,
//! live fan-out (`live`) a broadcast listener.

pub mod audit;
/// Property checks of the parsers of untrusted input, for the proptest suites and the cargo-fuzz
/// targets in fuzz/ (built with `--cfg fuzzing`).
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzz;
pub mod http;
pub mod live;
pub mod notify;
pub mod retention;
pub mod stats;

use std::sync::Arc;
use std::time::Duration;

use platform::bus::{Event, EventBus};
use platform::db::{Database, Migration, Migrations, StoreError, postgres, sqlite};
use platform::outbox::Relay;
use tokio::sync::watch;

pub const MIGRATIONS: Migrations = Migrations {
    service: "worker",
    sqlite: &[
        Migration {
            version: 1,
            name: "processed_events",
            sql: "CREATE TABLE worker_processed_events (
            event_id BLOB PRIMARY KEY, event_type TEXT NOT NULL, processed_at TEXT NOT NULL)",
        },
        audit::SQLITE_MIGRATION,
        notify::SQLITE_MIGRATION,
        audit::SQLITE_ARCHIVE_MIGRATION,
        audit::SQLITE_MAC_MIGRATION,
    ],
    postgres: &[
        Migration {
            version: 1,
            name: "processed_events",
            sql: "CREATE TABLE worker_processed_events (
            event_id UUID PRIMARY KEY, event_type TEXT NOT NULL, processed_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        },
        audit::POSTGRES_MIGRATION,
        notify::POSTGRES_MIGRATION,
        audit::POSTGRES_ARCHIVE_MIGRATION,
        audit::POSTGRES_MAC_MIGRATION,
    ],
};

/// The consumer group of the worker on the bus.
pub const GROUP: &str = "worker";

pub struct Worker {
    db: Database,
    bus: Arc<dyn EventBus>,
    /// The audit chain's MAC keys (the binary always has them; see `audit`).
    keys: Option<Arc<audit::AuditKeys>>,
}

impl Worker {
    pub fn new(db: Database, bus: Arc<dyn EventBus>) -> Self {
        Self { db, bus, keys: None }
    }

    /// Signs every audit entry it appends with the current key of `keys`.
    pub fn with_audit_keys(mut self, keys: Option<Arc<audit::AuditKeys>>) -> Self {
        self.keys = keys;
        self
    }

    /// Handles one event; returns false when it had been handled before (a duplicate).
    pub async fn handle(&self, event: &Event) -> Result<bool, StoreError> {
        let (id, kind) = (event.id, event.event_type.clone());
        let fresh = match &self.db {
            Database::Sqlite(db) => {
                let event = event.clone();
                let keys = self.keys.clone();
                db.write(move |tx| {
                    let n = tx
                        .execute(
                            "INSERT INTO worker_processed_events (event_id, event_type, processed_at) \
                             VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%fZ','now')) ON CONFLICT DO NOTHING",
                            rusqlite::params![id, kind],
                        )
                        .map_err(sqlite::map_err)?;
                    if n == 1 {
                        audit::append_sqlite(tx, &event, keys.as_deref())?;
                    }
                    Ok(n == 1)
                })
                .await?
            }
            Database::Postgres(db) => {
                let mut client = db.client().await?;
                let tx = client.transaction().await.map_err(postgres::map_err)?;
                let n = tx
                    .execute(
                        "INSERT INTO worker_processed_events (event_id, event_type) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                        &[&id, &kind],
                    )
                    .await
                    .map_err(postgres::map_err)?;
                if n == 1 {
                    audit::append_postgres(&tx, event, self.keys.as_deref()).await?;
                }
                tx.commit().await.map_err(postgres::map_err)?;
                n == 1
            }
        };
        let outcome = if fresh { "processed" } else { "duplicate" };
        metrics::counter!("trellis_events_consumed_total", "type" => event.event_type.clone(), "outcome" => outcome)
            .increment(1);
        Ok(fresh)
    }

    /// Consumes as the worker group until `shutdown` fires (see [`platform::consumer::run`]).
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let bus = self.bus.clone();
        platform::consumer::run(bus, platform::consumer::Source::Group(GROUP.into()), Arc::new(self), shutdown, None)
            .await;
    }
}

#[async_trait::async_trait]
impl platform::consumer::Handler for Worker {
    async fn handle(&self, event: &Event) -> Result<(), platform::consumer::HandleError> {
        match Worker::handle(self, event).await {
            Ok(_) => Ok(()),
            Err(StoreError::Unavailable(e)) => Err(Box::new(platform::consumer::Transient(e))),
            Err(e) => Err(e.into()),
        }
    }
}

/// Starts the consumer and then the relay (so that the worker group exists before the first
/// event is relayed); both stop when `shutdown` fires.
pub async fn spawn(
    db: Database,
    bus: Arc<dyn EventBus>,
    relay: Relay,
    shutdown: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    spawn_keyed(Worker::new(db, bus.clone()), bus, relay, shutdown).await
}

/// Like [`spawn`], with a worker made by the caller (e.g. [`Worker::with_audit_keys`]).
pub async fn spawn_keyed(
    worker: Worker,
    bus: Arc<dyn EventBus>,
    relay: Relay,
    shutdown: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let worker = Arc::new(worker);
    let consumer =
        platform::consumer::spawn(bus, platform::consumer::Source::Group(GROUP.into()), worker, shutdown.clone()).await;
    vec![consumer, tokio::spawn(relay.run(Duration::from_millis(500), shutdown))]
}
