//! RabbitMQ event bus: a durable topic exchange, one durable quorum queue per consumer group,
//! persistent messages, publisher confirms and the mandatory flag, so an event counts as
//! published only when a queue holds it (SECURITY.md R2–R5).

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind, PublisherConfirm};
use tokio::sync::Mutex;

use super::{Acker, BusError, Delivery, Event, EventBus, Subscription};

fn unavailable(e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(e.to_string())
}

/// Publishes on one confirm-mode channel, reconnecting after a failure.
pub struct RabbitMqBus {
    url: String,
    exchange: String,
    queue_prefix: String,
    publisher: Mutex<Option<(Connection, Channel)>>,
}

impl RabbitMqBus {
    /// Connects to `url`; `namespace` prefixes the exchange and queue names (`trellis` in
    /// production, a unique name per test).
    pub async fn connect(url: &str, namespace: &str) -> anyhow::Result<Self> {
        let bus = Self {
            url: url.to_string(),
            exchange: format!("{namespace}.events"),
            queue_prefix: format!("{namespace}."),
            publisher: Mutex::new(None),
        };
        let (conn, channel) = bus.open().await?;
        *bus.publisher.lock().await = Some((conn, channel));
        Ok(bus)
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
        channel
            .exchange_declare(
                self.exchange.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions { durable: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)?;
        channel.confirm_select(ConfirmSelectOptions::default()).await.map_err(unavailable)?;
        Ok((conn, channel))
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
        // again later (consumers are idempotent).
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
        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
        channel
            .queue_declare(queue.as_str().into(), QueueDeclareOptions::durable(), args)
            .await
            .map_err(unavailable)?;
        channel
            .queue_bind(
                queue.as_str().into(),
                self.exchange.as_str().into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)?;
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
        Ok(Box::new(RabbitSubscription { _conn: conn, _channel: channel, consumer }))
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
}

struct RabbitAcker(lapin::Acker);

#[async_trait]
impl Acker for RabbitAcker {
    async fn ack(&self) -> Result<(), BusError> {
        self.0.ack(BasicAckOptions::default()).await.map(|_| ()).map_err(unavailable)
    }
    async fn nack(&self) -> Result<(), BusError> {
        self.0.nack(BasicNackOptions { requeue: true, ..Default::default() }).await.map(|_| ()).map_err(unavailable)
    }
}

#[async_trait]
impl Subscription for RabbitSubscription {
    async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        let delivery = match self.consumer.next().await? {
            Ok(d) => d,
            Err(e) => return Some(Err(unavailable(e))),
        };
        let acker = RabbitAcker(delivery.acker.clone());
        match serde_json::from_slice::<Event>(&delivery.data) {
            Ok(event) => Some(Ok(Delivery { event, redelivered: delivery.redelivered, acker: Box::new(acker) })),
            Err(e) => {
                // A message that is not an event can never be processed: drop it rather than
                // loop on it. (Dead-lettering comes with the worker's full design.)
                let _ = acker.0.nack(BasicNackOptions { requeue: false, ..Default::default() }).await;
                Some(Err(BusError::Malformed(e.to_string())))
            }
        }
    }
}
