//! The consume loop every event consumer shares: subscribe as a member of a group, hand each
//! delivery to a [`Handler`], acknowledge what it applied and hand back (nack) what failed,
//! subscribing again with backoff whenever the bus drops the subscription, until shutdown.
//!
//! Delivery is at least once, so a handler must be idempotent (the worker's inbox table, the
//! notifications' claims, or an effect that is harmless twice such as a cache tombstone).
//! Failures pause the loop (200 ms doubling to 10 s while they go on), so a dependency that is
//! down (an SMTP server, say) is retried at a calm pace rather than in a hot loop. A [`Transient`]
//! failure (the handler's own database unreachable) keeps the delivery and retries it in place:
//! a nack would count toward the bus's delivery limit and dead-letter events during an outage.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::bus::{Event, EventBus, Subscription};

/// Why a handler could not apply an event; it will be delivered again.
pub type HandleError = Box<dyn std::error::Error + Send + Sync>;

/// A failure that says nothing about the event (its database is unreachable, say): the loop keeps
/// the delivery and retries it in place with backoff rather than nack it, since every nack counts
/// toward the bus's delivery limit and an outage must not send events to the dead letters.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Transient(pub String);

/// What a consumer does with one event.
#[async_trait]
pub trait Handler: Send + Sync {
    /// Applies `event`; `Ok` acknowledges it, `Err` hands it back for another delivery.
    async fn handle(&self, event: &Event) -> Result<(), HandleError>;
}

/// Where a consumer's events come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A consumer group: every group receives every event, its members share them, and the bus
    /// keeps them while no member listens (at least once).
    Group(String),
    /// A broadcast listener, named for the logs: every event published while it listens, at most
    /// once, nothing kept after it stops (`EventBus::subscribe_broadcast`).
    Broadcast(String),
}

impl Source {
    fn name(&self) -> &str {
        match self {
            Source::Group(name) | Source::Broadcast(name) => name,
        }
    }

    async fn subscribe(&self, bus: &dyn EventBus) -> Result<Box<dyn Subscription>, crate::bus::BusError> {
        match self {
            Source::Group(name) => bus.subscribe(name).await,
            Source::Broadcast(_) => bus.subscribe_broadcast().await,
        }
    }
}

const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

fn next_backoff(d: Duration) -> Duration {
    (d * 2).min(MAX_BACKOFF)
}

/// Subscribes `handler` to `source` now (so that events relayed once this returns reach it; a
/// bus that refuses is retried by the loop) and spawns the consume loop, which stops when
/// `shutdown` fires.
pub async fn spawn(
    bus: Arc<dyn EventBus>,
    source: Source,
    handler: Arc<dyn Handler>,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let first = match source.subscribe(bus.as_ref()).await {
        Ok(sub) => Some(sub),
        Err(e) => {
            tracing::warn!(group = %source.name(), error = %e, "cannot subscribe yet; retrying in the background");
            None
        }
    };
    tokio::spawn(run(bus, source, handler, shutdown, first))
}

/// The consume loop; `first` is a subscription already made, if any.
pub async fn run(
    bus: Arc<dyn EventBus>,
    source: Source,
    handler: Arc<dyn Handler>,
    mut shutdown: watch::Receiver<bool>,
    mut first: Option<Box<dyn Subscription>>,
) {
    let group = source.name().to_string();
    let mut backoff = FIRST_BACKOFF;
    loop {
        let mut sub = match first.take() {
            Some(sub) => sub,
            None => tokio::select! {
                _ = shutdown.changed() => return,
                s = source.subscribe(bus.as_ref()) => match s {
                    Ok(s) => { backoff = FIRST_BACKOFF; s }
                    Err(e) => {
                        tracing::warn!(group = %group, error = %e, "cannot subscribe; retrying");
                        tokio::select! { _ = shutdown.changed() => return, _ = tokio::time::sleep(backoff) => {} }
                        backoff = next_backoff(backoff);
                        continue;
                    }
                },
            },
        };
        let mut pause = FIRST_BACKOFF;
        loop {
            let next = tokio::select! { _ = shutdown.changed() => return, n = sub.next() => n };
            match next {
                None => break,
                Some(Err(e)) => tracing::warn!(group = %group, error = %e, "bad delivery"),
                Some(Ok(delivery)) => loop {
                    match handler.handle(&delivery.event).await {
                        Ok(()) => {
                            pause = FIRST_BACKOFF;
                            if let Err(e) = delivery.ack().await {
                                tracing::warn!(group = %group, error = %e, "ack failed; the event will be redelivered");
                            }
                            break;
                        }
                        Err(e) if e.is::<Transient>() => {
                            tracing::warn!(
                                group = %group, event_id = %delivery.event.id, error = %e,
                                "cannot handle events now; retrying in place"
                            );
                            tokio::select! { _ = shutdown.changed() => return, _ = tokio::time::sleep(pause) => {} }
                            pause = next_backoff(pause);
                        }
                        Err(e) => {
                            tracing::warn!(
                                group = %group, event_id = %delivery.event.id, event_type = %delivery.event.event_type,
                                error = %e, "event handling failed; requeued"
                            );
                            let _ = delivery.nack().await;
                            tokio::select! { _ = shutdown.changed() => return, _ = tokio::time::sleep(pause) => {} }
                            pause = next_backoff(pause);
                            break;
                        }
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Mutex;

    use super::*;
    use crate::bus::InProcessBus;

    /// Fails the first `fail` attempts (transiently or not), then records the events it applied.
    struct Flaky {
        fail: Mutex<u32>,
        seen: Mutex<Vec<uuid::Uuid>>,
        transient: bool,
    }

    #[async_trait]
    impl Handler for Flaky {
        async fn handle(&self, event: &Event) -> Result<(), HandleError> {
            let mut fail = self.fail.lock().unwrap();
            if *fail > 0 {
                *fail -= 1;
                if self.transient {
                    return Err(Box::new(Transient("database unreachable".into())));
                }
                return Err("not yet".into());
            }
            self.seen.lock().unwrap().push(event.id);
            Ok(())
        }
    }

    #[tokio::test]
    async fn failed_events_come_back_and_the_loop_stops_on_shutdown() {
        let bus: Arc<dyn EventBus> = Arc::new(InProcessBus::new());
        let handler = Arc::new(Flaky { fail: Mutex::new(2), seen: Mutex::new(Vec::new()), transient: false });
        let (stop, stopped) = watch::channel(false);
        let task = spawn(bus.clone(), Source::Group("g".into()), handler.clone(), stopped).await;
        let event =
            Event::new("x.y", crate::ids::new_id(), None, time::OffsetDateTime::now_utc(), serde_json::json!({}));
        bus.publish(&event).await.unwrap();
        // Two failures mean two back-off pauses first: wait for the state, not a time.
        test_support::wait::until("the event applied", || async { !handler.seen.lock().unwrap().is_empty() }).await;
        assert_eq!(*handler.seen.lock().unwrap(), vec![event.id], "applied once, after two failures");
        stop.send(true).unwrap();
        tokio::time::timeout(test_support::wait::default_limit(), task)
            .await
            .unwrap_or_else(|_| panic!("the loop did not stop on shutdown"))
            .unwrap();
    }

    #[tokio::test]
    async fn transient_failures_are_retried_in_place_without_a_nack() {
        // With a delivery limit of 1, a single nack would dead-letter the event.
        let inner = Arc::new(InProcessBus::new().with_delivery_limit(1));
        let bus: Arc<dyn EventBus> = inner.clone();
        let handler = Arc::new(Flaky { fail: Mutex::new(3), seen: Mutex::new(Vec::new()), transient: true });
        let (stop, stopped) = watch::channel(false);
        let task = spawn(bus.clone(), Source::Group("g".into()), handler.clone(), stopped).await;
        let event =
            Event::new("x.y", crate::ids::new_id(), None, time::OffsetDateTime::now_utc(), serde_json::json!({}));
        bus.publish(&event).await.unwrap();
        // Three failures mean three back-off pauses first: wait for the state, not a time.
        test_support::wait::until("the event applied", || async { !handler.seen.lock().unwrap().is_empty() }).await;
        assert_eq!(*handler.seen.lock().unwrap(), vec![event.id], "applied after the outage");
        assert!(inner.dead_letters("g").is_empty(), "nothing dead-lettered");
        stop.send(true).unwrap();
        tokio::time::timeout(test_support::wait::default_limit(), task)
            .await
            .unwrap_or_else(|_| panic!("the loop did not stop on shutdown"))
            .unwrap();
    }
}
