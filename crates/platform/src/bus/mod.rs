//! The event bus port. Events are published by the outbox relay (never inline by a request) and
//! consumed by named groups: every group receives every event, and the consumers of one group
//! share its work. An event a group fails to handle [`DEFAULT_DELIVERY_LIMIT`] times goes to the
//! dead letters instead of blocking the group. Broadcast subscribers (live fan-out) receive every
//! event published while they exist, at most once. In-process all-in-one, RabbitMQ distributed.

mod inprocess;
mod rabbitmq;

pub use inprocess::InProcessBus;
pub use rabbitmq::RabbitMqBus;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// A domain or auth event. Carries ids, never personal data (docs/SECURITY.md EN-5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: Uuid,
    /// Dotted name such as `task.created`; also the routing key.
    #[serde(rename = "type")]
    pub event_type: String,
    pub aggregate_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub actor_id: Option<Uuid>,
    pub data: serde_json::Value,
    /// The event's number in its stream (see [`Event::stream`]): 1, 2, 3… in commit order, given
    /// by the outbox in the transaction that writes the event (0 until then). Consumers order and
    /// de-duplicate by it, and a gap tells them they missed something.
    #[serde(default)]
    pub seq: i64,
}

impl Event {
    pub fn new(
        event_type: &str,
        aggregate_id: Uuid,
        actor_id: Option<Uuid>,
        occurred_at: OffsetDateTime,
        data: serde_json::Value,
    ) -> Self {
        // Both databases keep microseconds; an event read back from the outbox equals the original.
        let micros = occurred_at.microsecond();
        let occurred_at = occurred_at.replace_microsecond(micros).unwrap_or(occurred_at);
        Self {
            id: crate::ids::new_id(),
            event_type: event_type.to_string(),
            aggregate_id,
            occurred_at,
            actor_id,
            data,
            seq: 0,
        }
    }

    /// The stream the event belongs to, in which `seq` counts: the project for everything that
    /// happens inside one (the aggregate root of its tasks, comments, members and attachments;
    /// `data.project_id`), else the aggregate itself. Order is kept per stream.
    pub fn stream(&self) -> Uuid {
        self.data
            .get("project_id")
            .and_then(|v| v.as_str())
            .and_then(|s| Uuid::parse_str(s).ok())
            .unwrap_or(self.aggregate_id)
    }
}

/// How many times an event is delivered to a group before it is dead-lettered (both adapters;
/// each has a knob, `with_delivery_limit`). A delivery that is nacked or dropped unsettled counts.
pub const DEFAULT_DELIVERY_LIMIT: u32 = 5;

/// How many events a broadcast subscriber that does not keep up may fall behind before the
/// oldest are dropped (both adapters; each has a knob, `with_broadcast_capacity`).
pub const DEFAULT_BROADCAST_CAPACITY: usize = 10_000;

/// Counts and logs an event a group gave up on: its id and type, never its data (EN-5).
fn record_dead_letter(group: &str, event_id: &str, event_type: &str, deliveries: u32) {
    tracing::error!(group, event_id, event_type, deliveries, "event dead-lettered after its last delivery failed");
    metrics::counter!("trellis_events_dead_lettered_total", "group" => group.to_string()).increment(1);
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("event bus unavailable: {0}")]
    Unavailable(String),
    /// The broker accepted the event but no queue was bound to receive it.
    #[error("event {0} was not routed to any queue")]
    Unroutable(String),
    #[error("malformed event: {0}")]
    Malformed(String),
}

#[async_trait]
pub trait EventBus: Send + Sync {
    /// Publishes one event and returns once the bus has durably taken it.
    async fn publish(&self, event: &Event) -> Result<(), BusError>;
    /// Publishes `events` in order and returns how many of them, from the first, the bus has
    /// durably taken, with the error that stopped the rest (if any). An adapter may have several
    /// in flight at once (RabbitMQ: publish all, then await every confirm), so a batch costs
    /// about one round trip rather than one per event.
    async fn publish_batch(&self, events: &[Event]) -> (usize, Option<BusError>) {
        for (i, event) in events.iter().enumerate() {
            if let Err(e) = self.publish(event).await {
                return (i, Some(e));
            }
        }
        (events.len(), None)
    }
    /// Starts consuming as a member of `group`. Events published after the group's first
    /// subscription are kept for it until acknowledged. An event delivered to the group as many
    /// times as the delivery limit without being acknowledged is moved to the dead letters.
    async fn subscribe(&self, group: &str) -> Result<Box<dyn Subscription>, BusError>;
    /// Starts a broadcast subscription: it receives every event published after this call, in
    /// publish order, and nothing is kept for it once it is dropped. At most once: `ack` and
    /// `nack` do nothing, and a subscriber that falls more than the broadcast capacity behind
    /// loses the oldest events (consumers find gaps by the events' own sequence numbers).
    ///
    /// Like a group, a broadcast subscriber makes a published event routable (RabbitMQ's
    /// mandatory flag counts any bound queue), so `publish` is `Unroutable` only when neither
    /// exists. Groups are durable and the worker subscribes before its relay starts.
    async fn subscribe_broadcast(&self) -> Result<Box<dyn Subscription>, BusError>;
    async fn ping(&self) -> Result<(), BusError>;
    fn kind(&self) -> &'static str;
}

#[async_trait]
pub trait Subscription: Send {
    /// The next delivery; `None` when the subscription ended (the caller may subscribe again).
    async fn next(&mut self) -> Option<Result<Delivery, BusError>>;
}

/// One received event; acknowledge it once its effect is committed, or it is delivered again.
pub struct Delivery {
    pub event: Event,
    pub redelivered: bool,
    acker: Box<dyn Acker>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery").field("event", &self.event).field("redelivered", &self.redelivered).finish()
    }
}

impl Delivery {
    pub async fn ack(self) -> Result<(), BusError> {
        self.acker.ack().await
    }

    /// Hands the event back for another delivery, or to the dead letters when this was its last
    /// allowed delivery. Does nothing on a broadcast subscription.
    pub async fn nack(self) -> Result<(), BusError> {
        self.acker.nack().await
    }
}

#[async_trait]
trait Acker: Send + Sync {
    async fn ack(&self) -> Result<(), BusError>;
    async fn nack(&self) -> Result<(), BusError>;
}

/// The acker of broadcast deliveries: there is nothing to settle.
struct NoAck;

#[async_trait]
impl Acker for NoAck {
    async fn ack(&self) -> Result<(), BusError> {
        Ok(())
    }
    async fn nack(&self) -> Result<(), BusError> {
        Ok(())
    }
}
