//! The worker: runs the outbox relay and consumes events. Each event is handled at most once in
//! effect: its id goes into `worker_processed_events` in the same transaction as the handler's
//! effect, so a redelivery (after a lost ack or a relay retry) changes nothing.
//!
//! The effects: the inbox row, a per-type counter, and the entry in the hash-chained audit log
//! (`audit`, served to admins by `http`), all in one transaction; notifications, cache
//! invalidation and live fan-out consume here in later work.

pub mod audit;
pub mod http;

use std::sync::Arc;
use std::time::Duration;

use platform::bus::{Delivery, Event, EventBus};
use platform::db::{Database, Migration, Migrations, StoreError, postgres, sqlite};
use platform::outbox::Relay;
use tokio::sync::{oneshot, watch};

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
    ],
    postgres: &[
        Migration {
            version: 1,
            name: "processed_events",
            sql: "CREATE TABLE worker_processed_events (
            event_id UUID PRIMARY KEY, event_type TEXT NOT NULL, processed_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        },
        audit::POSTGRES_MIGRATION,
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
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        self.consume(shutdown, None).await;
    }

    /// [`Worker::run`], telling `subscribed` once the group's first subscription stands.
    async fn consume(self, mut shutdown: watch::Receiver<bool>, mut subscribed: Option<oneshot::Sender<()>>) {
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
            if let Some(tx) = subscribed.take() {
                let _ = tx.send(());
            }
            loop {
                let next = tokio::select! { _ = shutdown.changed() => return, n = sub.next() => n };
                match next {
                    None => break,
                    Some(Err(e)) => tracing::warn!(error = %e, "bad delivery"),
                    Some(Ok(delivery)) => {
                        if !self.settle(delivery, &mut shutdown).await {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Handles `delivery` and acknowledges it. While the database is unavailable the delivery is
    /// held and retried with backoff rather than nacked: every nack counts toward the bus's
    /// delivery limit, and an outage must not send events to the dead letters. Any other failure
    /// is nacked (an event that always fails is dead-lettered at the limit). False on shutdown.
    async fn settle(&self, delivery: Delivery, shutdown: &mut watch::Receiver<bool>) -> bool {
        let mut backoff = Duration::from_millis(200);
        loop {
            match self.handle(&delivery.event).await {
                Ok(_) => {
                    if let Err(e) = delivery.ack().await {
                        tracing::warn!(error = %e, "ack failed; the event will be redelivered");
                    }
                    return true;
                }
                Err(StoreError::Unavailable(e)) => {
                    tracing::warn!(event_id = %delivery.event.id, error = %e, "database unavailable; retrying the event");
                    tokio::select! { _ = shutdown.changed() => return false, _ = tokio::time::sleep(backoff) => {} }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
                Err(e) => {
                    tracing::warn!(event_id = %delivery.event.id, error = %e, "event handling failed; requeued");
                    let _ = delivery.nack().await;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    return true;
                }
            }
        }
    }
}

/// Starts the relay and the consumer; both stop when `shutdown` fires. The relay starts once the
/// consumer has subscribed, so the worker's group exists before this process publishes anything
/// (a broadcast subscriber alone would make an event routable, and the group would miss it).
pub fn spawn(
    db: Database,
    bus: Arc<dyn EventBus>,
    relay: Relay,
    shutdown: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let worker = Worker::new(db, bus);
    let (subscribed, ready) = oneshot::channel();
    let mut stop = shutdown.clone();
    let relay = async move {
        tokio::select! {
            _ = stop.changed() => {}
            r = ready => if r.is_ok() { relay.run(Duration::from_millis(500), stop).await },
        }
    };
    vec![tokio::spawn(worker.consume(shutdown, Some(subscribed))), tokio::spawn(relay)]
}
