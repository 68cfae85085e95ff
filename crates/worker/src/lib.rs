//! The worker: runs the outbox relay and consumes events. Each event is handled at most once in
//! effect: its id goes into `worker_processed_events` in the same transaction as the handler's
//! effect, so a redelivery (after a lost ack or a relay retry) changes nothing.
//!
//! The effects: the inbox row, a per-type counter, and the entry in the hash-chained audit log
//! (`audit`, served to admins by `http` with the usage statistics drawn from it, `stats`), all in
//! one transaction; old audit entries move to object storage (`AuditLog::archive`); notifications, cache
//! invalidation and live fan-out consume here in later work.

pub mod audit;
pub mod http;
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
        audit::SQLITE_ARCHIVE_MIGRATION,
    ],
    postgres: &[
        Migration {
            version: 1,
            name: "processed_events",
            sql: "CREATE TABLE worker_processed_events (
            event_id UUID PRIMARY KEY, event_type TEXT NOT NULL, processed_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        },
        audit::POSTGRES_MIGRATION,
        audit::POSTGRES_ARCHIVE_MIGRATION,
    ],
};

/// The consumer group of the worker on the bus.
pub const GROUP: &str = "worker";

pub struct Worker {
    db: Database,
    bus: Arc<dyn EventBus>,
}

impl Worker {
    pub fn new(db: Database, bus: Arc<dyn EventBus>) -> Self {
        Self { db, bus }
    }

    /// Handles one event; returns false when it had been handled before (a duplicate).
    pub async fn handle(&self, event: &Event) -> Result<bool, StoreError> {
        let (id, kind) = (event.id, event.event_type.clone());
        let fresh = match &self.db {
            Database::Sqlite(db) => {
                let event = event.clone();
                db.write(move |tx| {
                    let n = tx
                        .execute(
                            "INSERT INTO worker_processed_events (event_id, event_type, processed_at) \
                             VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%fZ','now')) ON CONFLICT DO NOTHING",
                            rusqlite::params![id, kind],
                        )
                        .map_err(sqlite::map_err)?;
                    if n == 1 {
                        audit::append_sqlite(tx, &event)?;
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
                    audit::append_postgres(&tx, event).await?;
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

    /// Consumes until `shutdown` fires, subscribing again (with backoff) when the bus drops us.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(200);
        loop {
            let mut sub = tokio::select! {
                _ = shutdown.changed() => return,
                s = self.bus.subscribe(GROUP) => match s {
                    Ok(s) => { backoff = Duration::from_millis(200); s }
                    Err(e) => {
                        tracing::warn!(error = %e, "worker cannot subscribe; retrying");
                        tokio::select! { _ = shutdown.changed() => return, _ = tokio::time::sleep(backoff) => {} }
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                        continue;
                    }
                },
            };
            loop {
                let next = tokio::select! { _ = shutdown.changed() => return, n = sub.next() => n };
                match next {
                    None => break,
                    Some(Err(e)) => tracing::warn!(error = %e, "bad delivery"),
                    Some(Ok(delivery)) => match self.handle(&delivery.event).await {
                        Ok(_) => {
                            if let Err(e) = delivery.ack().await {
                                tracing::warn!(error = %e, "ack failed; the event will be redelivered");
                            }
                        }
                        Err(e) => {
                            tracing::warn!(event_id = %delivery.event.id, error = %e, "event handling failed; requeued");
                            let _ = delivery.nack().await;
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    },
                }
            }
        }
    }
}

/// Starts the relay and the consumer; both stop when `shutdown` fires.
pub fn spawn(
    db: Database,
    bus: Arc<dyn EventBus>,
    relay: Relay,
    shutdown: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let worker = Worker::new(db, bus);
    vec![tokio::spawn(worker.run(shutdown.clone())), tokio::spawn(relay.run(Duration::from_millis(500), shutdown))]
}
