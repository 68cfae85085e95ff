//! RabbitMQ event bus: a durable topic exchange, one durable quorum queue per consumer group,
//! persistent messages, publisher confirms and the mandatory flag, so an event counts as
//! published only when a queue holds it (docs/SECURITY.md R2–R5). Each group queue has a delivery
//! limit and dead-letters (at least once) to `{ns}.dead`, a fanout exchange with one durable
//! quorum queue of the same name that keeps dead letters for operators. A broadcast subscriber
//! has a server-named exclusive, auto-delete classic queue of bounded length (drop-head).

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind, PublisherConfirm};
use tokio::sync::Mutex;
use uuid::Uuid;

use super::{
    Acker, BusError, DEFAULT_BROADCAST_CAPACITY, DEFAULT_DELIVERY_LIMIT, Delivery, Event, EventBus, NoAck,
    Subscription, record_dead_letter,
};

fn unavailable(e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(e.to_string())
}

/// Whether `e` is the broker refusing a declaration that differs from the existing entity.
fn is_precondition_failed(e: &lapin::Error) -> bool {
    matches!(e.kind(), lapin::ErrorKind::ProtocolError(amqp)
        if *amqp.kind() == AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED))
}

/// An integer header (RabbitMQ picks the width), 0 when absent.
fn header_count(props: &BasicProperties, name: &str) -> u32 {
    let value = props.headers().as_ref().and_then(|h| h.inner().get(name).cloned());
    let n: i64 = match value {
        Some(AMQPValue::ShortShortInt(n)) => n.into(),
        Some(AMQPValue::ShortShortUInt(n)) => n.into(),
        Some(AMQPValue::ShortInt(n)) => n.into(),
        Some(AMQPValue::ShortUInt(n)) => n.into(),
        Some(AMQPValue::LongInt(n)) => n.into(),
        Some(AMQPValue::LongUInt(n)) => n.into(),
        Some(AMQPValue::LongLongInt(n)) => n,
        _ => 0,
    };
    u32::try_from(n).unwrap_or(0)
}

/// Declares the durable exchange `name`.
async fn declare_exchange(channel: &Channel, name: &str, kind: ExchangeKind) -> Result<(), BusError> {
    let options = ExchangeDeclareOptions { durable: true, ..Default::default() };
    channel.exchange_declare(name.into(), kind, options, FieldTable::default()).await.map_err(unavailable)
}

/// Publishes on one confirm-mode channel, reconnecting after a failure.
pub struct RabbitMqBus {
    url: String,
    exchange: String,
    /// The dead-letter exchange and its queue (same name).
    dead: String,
    queue_prefix: String,
    delivery_limit: u32,
    broadcast_capacity: usize,
    publisher: Mutex<Option<(Connection, Channel)>>,
}

impl RabbitMqBus {
    /// Connects to `url`; `namespace` prefixes the exchange and queue names (`trellis` in
    /// production, a unique name per test). Delivery limit and broadcast capacity are the
    /// defaults ([`DEFAULT_DELIVERY_LIMIT`], [`DEFAULT_BROADCAST_CAPACITY`]).
    pub async fn connect(url: &str, namespace: &str) -> anyhow::Result<Self> {
        let bus = Self {
            url: url.to_string(),
            exchange: format!("{namespace}.events"),
            dead: format!("{namespace}.dead"),
            queue_prefix: format!("{namespace}."),
            delivery_limit: DEFAULT_DELIVERY_LIMIT,
            broadcast_capacity: DEFAULT_BROADCAST_CAPACITY,
            publisher: Mutex::new(None),
        };
        let (conn, channel) = bus.open().await?;
        *bus.publisher.lock().await = Some((conn, channel));
        Ok(bus)
    }

    /// Delivers an event at most `limit` times (at least once) to a group before dead-lettering
    /// it. Set before the group's queue is first declared: it is a queue argument
    /// (`x-delivery-limit` = `limit - 1`, the returns RabbitMQ allows), fixed for the queue's life.
    pub fn with_delivery_limit(mut self, limit: u32) -> Self {
        self.delivery_limit = limit.max(1);
        self
    }

    /// Keeps at most `capacity` events for a broadcast subscriber that lags (the oldest are dropped).
    pub fn with_broadcast_capacity(mut self, capacity: usize) -> Self {
        self.broadcast_capacity = capacity.clamp(1, i32::MAX as usize);
        self
    }

    async fn open(&self) -> Result<(Connection, Channel), BusError> {
        let conn = tokio::time::timeout(
            Duration::from_secs(3),
            Connection::connect(&self.url, ConnectionProperties::default()),
        )
        .await
        .map_err(|_| unavailable("timed out connecting to RabbitMQ"))?
        .map_err(unavailable)?;
        let channel = conn.create_channel().await.map_err(unavailable)?;
        declare_exchange(&channel, &self.exchange, ExchangeKind::Topic).await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await.map_err(unavailable)?;
        Ok((conn, channel))
    }

    /// Declares the dead-letter exchange and queue, then `queue` for a group with its delivery
    /// limit and dead-letter arguments. Returns the channel to consume on and whether the limit is
    /// in force: a queue declared by an older version without these arguments is used as it is,
    /// with an error logged saying what the operator must do (ARCHITECTURE.md, "Event bus").
    async fn declare_group(
        &self,
        conn: &Connection,
        channel: Channel,
        queue: &str,
    ) -> Result<(Channel, bool), BusError> {
        declare_exchange(&channel, &self.dead, ExchangeKind::Fanout).await?;
        let mut quorum = FieldTable::default();
        quorum.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
        channel
            .queue_declare(self.dead.as_str().into(), QueueDeclareOptions::durable(), quorum.clone())
            .await
            .map_err(unavailable)?;
        channel
            .queue_bind(
                self.dead.as_str().into(),
                self.dead.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)?;
        let mut args = quorum;
        // RabbitMQ dead-letters a message once it has been returned more than x-delivery-limit times.
        let returns = i64::from(self.delivery_limit) - 1;
        args.insert("x-delivery-limit".into(), AMQPValue::LongLongInt(returns));
        args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(self.dead.as_str().into()));
        // At least once: a dead letter leaves the group's queue only when `{ns}.dead` confirmed it
        // (RabbitMQ requires reject-publish overflow for that; the queue has no length limit).
        args.insert("x-dead-letter-strategy".into(), AMQPValue::LongString("at-least-once".into()));
        args.insert("x-overflow".into(), AMQPValue::LongString("reject-publish".into()));
        match channel.queue_declare(queue.into(), QueueDeclareOptions::durable(), args).await {
            Ok(_) => Ok((channel, true)),
            Err(e) if is_precondition_failed(&e) => {
                tracing::error!(
                    queue,
                    error = %e,
                    "the group's queue exists with other arguments (declared before delivery limits and \
                     dead-lettering): consuming it as it is, so failing events are redelivered without limit; \
                     re-create the queue to put them in force (ARCHITECTURE.md, Event bus)"
                );
                // The refusal closed the channel.
                let channel = conn.create_channel().await.map_err(unavailable)?;
                channel
                    .queue_declare(queue.into(), QueueDeclareOptions::durable().passive(), FieldTable::default())
                    .await
                    .map_err(unavailable)?;
                Ok((channel, false))
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Binds `queue` to every event of the exchange.
    async fn bind_all(&self, channel: &Channel, queue: &str) -> Result<(), BusError> {
        channel
            .queue_bind(
                queue.into(),
                self.exchange.as_str().into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)
    }

    /// Sends `event` and returns the confirm to await.
    async fn send_on(&self, channel: &Channel, event: &Event) -> Result<PublisherConfirm, BusError> {
        let payload = serde_json::to_vec(event).map_err(|e| BusError::Malformed(e.to_string()))?;
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_message_id(event.id.to_string().as_str().into());
        channel
            .basic_publish(
                self.exchange.as_str().into(),
                event.event_type.as_str().into(),
                BasicPublishOptions { mandatory: true, ..Default::default() },
                &payload,
                props,
            )
            .await
            .map_err(unavailable)
    }

    async fn publish_on(&self, channel: &Channel, event: &Event) -> Result<(), BusError> {
        let confirm = self.send_on(channel, event).await?;
        Self::confirmed(event, confirm).await
    }

    /// Waits for `confirm`: an ack with the message routed to a queue.
    async fn confirmed(event: &Event, confirm: PublisherConfirm) -> Result<(), BusError> {
        let confirmation = tokio::time::timeout(Duration::from_secs(5), confirm)
            .await
            .map_err(|_| unavailable("timed out waiting for the publisher confirm"))?
            .map_err(unavailable)?;
        if !confirmation.is_ack() {
            return Err(unavailable("broker refused the event (nack)"));
        }
        if confirmation.take_message().is_some() {
            return Err(BusError::Unroutable(event.id.to_string()));
        }
        Ok(())
    }
}

#[async_trait]
impl EventBus for RabbitMqBus {
    async fn publish(&self, event: &Event) -> Result<(), BusError> {
        let mut guard = self.publisher.lock().await;
        if guard.as_ref().is_none_or(|(c, ch)| !c.status().connected() || !ch.status().connected()) {
            *guard = Some(self.open().await?);
        }
        let Some((_, channel)) = guard.as_ref() else {
            return Err(unavailable("no channel"));
        };
        let result = self.publish_on(channel, event).await;
        if matches!(result, Err(BusError::Unavailable(_))) {
            // Start from a fresh connection next time.
            *guard = None;
        }
        result
    }

    async fn publish_batch(&self, events: &[Event]) -> (usize, Option<BusError>) {
        let mut guard = self.publisher.lock().await;
        if guard.as_ref().is_none_or(|(c, ch)| !c.status().connected() || !ch.status().connected()) {
            match self.open().await {
                Ok(opened) => *guard = Some(opened),
                Err(e) => return (0, Some(e)),
            }
        }
        let Some((_, channel)) = guard.as_ref() else {
            return (0, Some(unavailable("no channel")));
        };
        // Everything in flight first, then the confirms in order: a batch costs about one round
        // trip. Only the confirmed prefix counts as published; what follows a failure is sent
        // again later (consumers are idempotent). A broker nack of one event with a later one
        // acked lets the later one arrive first: consumers order by the events' own sequence.
        let mut sent = Vec::with_capacity(events.len());
        let mut failure = None;
        for event in events {
            match self.send_on(channel, event).await {
                Ok(confirm) => sent.push((event, confirm)),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let mut published = 0;
        for (event, confirm) in sent {
            if failure.is_some() {
                break;
            }
            match Self::confirmed(event, confirm).await {
                Ok(()) => published += 1,
                Err(e) => failure = Some(e),
            }
        }
        if matches!(failure, Some(BusError::Unavailable(_))) {
            *guard = None;
        }
        (published, failure)
    }

    async fn subscribe(&self, group: &str) -> Result<Box<dyn Subscription>, BusError> {
        let (conn, channel) = self.open().await?;
        let queue = format!("{}{}", self.queue_prefix, group);
        let (channel, limited) = self.declare_group(&conn, channel, &queue).await?;
        self.bind_all(&channel, &queue).await?;
        channel.basic_qos(64, BasicQosOptions::default()).await.map_err(unavailable)?;
        let consumer = channel
            .basic_consume(
                queue.as_str().into(),
                format!("{group}-{}", crate::ids::new_id()).as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)?;
        let limit = limited.then_some(self.delivery_limit);
        Ok(Box::new(RabbitSubscription { _conn: conn, _channel: channel, consumer, group: group.to_string(), limit }))
    }

    async fn subscribe_broadcast(&self) -> Result<Box<dyn Subscription>, BusError> {
        let (conn, channel) = self.open().await?;
        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), AMQPValue::LongString("classic".into()));
        let capacity = i64::try_from(self.broadcast_capacity).unwrap_or(i64::MAX);
        args.insert("x-max-length".into(), AMQPValue::LongLongInt(capacity));
        args.insert("x-overflow".into(), AMQPValue::LongString("drop-head".into()));
        // Server-named; gone with this connection (exclusive) or its consumer (auto-delete).
        let queue = channel
            .queue_declare("".into(), QueueDeclareOptions::exclusive().auto_delete(), args)
            .await
            .map_err(unavailable)?;
        let queue = queue.name().as_str().to_string();
        self.bind_all(&channel, &queue).await?;
        // Acknowledged on receipt rather than consumed with no-ack, so that the broker hands over
        // a bounded prefetch and keeps the rest in the bounded queue: a consumer that stops
        // reading grows neither the broker nor this process.
        let prefetch = u16::try_from(self.broadcast_capacity.min(256)).unwrap_or(256);
        channel.basic_qos(prefetch, BasicQosOptions::default()).await.map_err(unavailable)?;
        let consumer = channel
            .basic_consume(
                queue.as_str().into(),
                format!("broadcast-{}", crate::ids::new_id()).as_str().into(),
                BasicConsumeOptions { exclusive: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)?;
        Ok(Box::new(BroadcastSubscription { _conn: conn, _channel: channel, consumer }))
    }

    async fn ping(&self) -> Result<(), BusError> {
        let mut guard = self.publisher.lock().await;
        match guard.as_ref() {
            Some((c, ch)) if c.status().connected() && ch.status().connected() => Ok(()),
            _ => {
                *guard = Some(self.open().await?);
                Ok(())
            }
        }
    }

    fn kind(&self) -> &'static str {
        "rabbitmq"
    }
}

struct RabbitSubscription {
    _conn: Connection,
    _channel: Channel,
    consumer: lapin::Consumer,
    group: String,
    /// The delivery limit, when the group's queue has it (not a queue of an older version).
    limit: Option<u32>,
}

/// Settles a group delivery. A nack of the last allowed delivery is where the broker
/// dead-letters the event: it is counted and logged here, the one place a consumer sees it.
struct RabbitAcker {
    acker: lapin::Acker,
    group: String,
    event_id: String,
    event_type: String,
    /// This delivery's number: 1 + the returns RabbitMQ counted (`x-delivery-count`).
    delivery: u32,
    limit: Option<u32>,
}

/// The longest an ack or a nack may take. Settling is a frame written to the connection; when the
/// broker is cut away, lapin can leave that write's promise pending forever, and a consumer
/// awaiting it would never notice the outage, never resubscribe, and stop consuming for good (the
/// broker-cut fault test caught this). Past the limit the settle fails as unavailable: the
/// subscription is then found dead and the message, unsettled, is delivered again (consumers are
/// idempotent).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// `settle` bounded by [`SETTLE_TIMEOUT`].
async fn settled<T>(settle: impl Future<Output = lapin::Result<T>>) -> Result<T, BusError> {
    tokio::time::timeout(SETTLE_TIMEOUT, settle)
        .await
        .map_err(|_| unavailable("timed out settling a delivery (connection lost?)"))?
        .map_err(unavailable)
}

#[async_trait]
impl Acker for RabbitAcker {
    async fn ack(&self) -> Result<(), BusError> {
        settled(self.acker.ack(BasicAckOptions::default())).await.map(|_| ())
    }
    async fn nack(&self) -> Result<(), BusError> {
        settled(self.acker.nack(BasicNackOptions { requeue: true, ..Default::default() })).await?;
        if self.limit.is_some_and(|limit| self.delivery >= limit) {
            record_dead_letter(&self.group, &self.event_id, &self.event_type, self.delivery);
        }
        Ok(())
    }
}

#[async_trait]
impl Subscription for RabbitSubscription {
    async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        let delivery = match self.consumer.next().await? {
            Ok(d) => d,
            Err(e) => return Some(Err(unavailable(e))),
        };
        match serde_json::from_slice::<Event>(&delivery.data) {
            Ok(event) => {
                let acker = RabbitAcker {
                    acker: delivery.acker.clone(),
                    group: self.group.clone(),
                    event_id: event.id.to_string(),
                    event_type: event.event_type.clone(),
                    delivery: header_count(&delivery.properties, "x-delivery-count").saturating_add(1),
                    limit: self.limit,
                };
                Some(Ok(Delivery { event, redelivered: delivery.redelivered, acker: Box::new(acker) }))
            }
            Err(e) => {
                // A message that is not an event can never be processed: rejected without requeue,
                // so it goes straight to the dead letters rather than loop.
                let id = delivery.properties.message_id().as_ref().map(|m| m.as_str().to_string());
                let id = id.unwrap_or_else(|| Uuid::nil().to_string());
                let rejected =
                    settled(delivery.acker.nack(BasicNackOptions { requeue: false, ..Default::default() })).await;
                let (group, routing_key) = (self.group.as_str(), delivery.routing_key.as_str());
                match (rejected, self.limit) {
                    (Ok(_), Some(_)) => record_dead_letter(group, &id, routing_key, 1),
                    (Ok(_), None) => {
                        tracing::error!(group, message_id = %id, "malformed message dropped (no dead-letter exchange)");
                    }
                    (Err(e), _) => {
                        tracing::warn!(group, message_id = %id, error = %e, "cannot reject a malformed message")
                    }
                }
                Some(Err(BusError::Malformed(e.to_string())))
            }
        }
    }
}

/// A broadcast subscription: its queue and connection go away when it is dropped.
struct BroadcastSubscription {
    _conn: Connection,
    _channel: Channel,
    consumer: lapin::Consumer,
}

#[async_trait]
impl Subscription for BroadcastSubscription {
    async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        let delivery = match self.consumer.next().await? {
            Ok(d) => d,
            Err(e) => return Some(Err(unavailable(e))),
        };
        // At most once: settled on receipt, before the caller sees it.
        if let Err(e) = settled(delivery.acker.ack(BasicAckOptions::default())).await {
            return Some(Err(e));
        }
        match serde_json::from_slice::<Event>(&delivery.data) {
            Ok(event) => Some(Ok(Delivery { event, redelivered: false, acker: Box::new(NoAck) })),
            Err(e) => Some(Err(BusError::Malformed(e.to_string()))),
        }
    }
}
