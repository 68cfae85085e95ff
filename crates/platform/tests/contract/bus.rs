//! The `EventBus` contract: every group gets every event, the consumers of one group share it,
//! unacknowledged events come back, and an event nobody can receive is refused as `Unroutable`.
//! Run on `InProcessBus` and on `RabbitMqBus` (a namespace per test, deleted afterwards).

use std::collections::HashSet;
use std::time::Duration;

use platform::bus::{BusError, Event};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::support::{BusFixture, InProcess, Rabbit, WAIT, assert_quiet, event, next};

async fn publish_then_receive<F: BusFixture>() {
    let f = F::new().await;
    let bus = f.bus();
    let mut sub = bus.subscribe("audit").await.unwrap();
    // Every field set, nanosecond time, nested data; then the optional fields empty.
    let full = Event::new(
        "project.member_added",
        Uuid::now_v7(),
        Some(Uuid::now_v7()),
        OffsetDateTime::now_utc(),
        json!({ "role": "editor", "ids": [1, 2, 3], "deep": { "x": null, "y": 1.5 }, "text": "ä\"\n" }),
    );
    let sparse = Event::new("user.erased", Uuid::now_v7(), None, OffsetDateTime::UNIX_EPOCH, json!(null));
    bus.publish(&full).await.unwrap();
    bus.publish(&sparse).await.unwrap();
    let d = next(&mut *sub, "first event").await;
    assert_eq!(d.event, full, "the event must round-trip intact");
    assert!(!d.redelivered, "a first delivery is not a redelivery");
    d.ack().await.unwrap();
    let d = next(&mut *sub, "second event").await;
    assert_eq!(d.event, sparse);
    d.ack().await.unwrap();
    assert_quiet(&mut *sub, "after both events").await;
}

async fn every_group_gets_every_event<F: BusFixture>() {
    let f = F::new().await;
    let bus = f.bus();
    let mut audit = bus.subscribe("audit").await.unwrap();
    let mut notify = bus.subscribe("notify").await.unwrap();
    let events: Vec<Event> = (0..3).map(event).collect();
    for e in &events {
        bus.publish(e).await.unwrap();
    }
    for sub in [&mut audit, &mut notify] {
        for e in &events {
            let d = next(&mut **sub, "an event for each group").await;
            assert_eq!(&d.event, e, "each group receives every event, in order");
            d.ack().await.unwrap();
        }
        assert_quiet(&mut **sub, "after the group's events").await;
    }
}

async fn consumers_of_a_group_share_its_events<F: BusFixture>() {
    let f = F::new().await;
    let bus = f.bus();
    let subs = [bus.subscribe("audit").await.unwrap(), bus.subscribe("audit").await.unwrap()];
    let events: Vec<Event> = (0..10).map(event).collect();
    for e in &events {
        bus.publish(e).await.unwrap();
    }
    // Each consumer acknowledges what it receives and reports (consumer, id).
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for (i, mut sub) in subs.into_iter().enumerate() {
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(Ok(d)) = sub.next().await {
                let id = d.event.id;
                d.ack().await.unwrap();
                if tx.send((i, id)).is_err() {
                    break;
                }
                // Let the other consumer take its turn, as separate processes would.
                tokio::task::yield_now().await;
            }
        }));
    }
    let mut seen = Vec::new();
    while seen.len() < events.len() {
        match tokio::time::timeout(WAIT, rx.recv()).await {
            Ok(Some(got)) => seen.push(got),
            _ => panic!("only {} of {} events delivered to the group: {seen:?}", seen.len(), events.len()),
        }
    }
    // Nothing more may come: each event goes to exactly one consumer of the group.
    if let Ok(Some(extra)) = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
        panic!("event delivered twice within one group: {extra:?} after {seen:?}");
    }
    for t in &tasks {
        t.abort();
    }
    let ids: HashSet<Uuid> = seen.iter().map(|(_, id)| *id).collect();
    let expected: HashSet<Uuid> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids, expected, "every event delivered once to the group");
    for consumer in 0..2 {
        assert!(seen.iter().any(|(i, _)| *i == consumer), "consumer {consumer} got no share: {seen:?}");
    }
}

async fn nack_redelivers<F: BusFixture>() {
    let f = F::new().await;
    let bus = f.bus();
    let mut sub = bus.subscribe("audit").await.unwrap();
    let e = event(1);
    bus.publish(&e).await.unwrap();
    let d = next(&mut *sub, "first delivery").await;
    assert!(!d.redelivered);
    d.nack().await.unwrap();
    let d = next(&mut *sub, "redelivery after nack").await;
    assert_eq!(d.event, e);
    assert!(d.redelivered, "a nacked event comes back flagged as redelivered");
    d.ack().await.unwrap();
    assert_quiet(&mut *sub, "after the ack").await;
}

async fn unacked_event_is_redelivered_to_the_next_consumer<F: BusFixture>() {
    let f = F::new().await;
    let bus = f.bus();
    let mut sub = bus.subscribe("audit").await.unwrap();
    let e = event(1);
    bus.publish(&e).await.unwrap();
    let d = next(&mut *sub, "first delivery").await;
    assert_eq!(d.event, e);
    // The consumer dies before acknowledging.
    drop(d);
    drop(sub);
    let mut sub = bus.subscribe("audit").await.unwrap();
    let d = next(&mut *sub, "redelivery of an unacknowledged event").await;
    assert_eq!(d.event, e);
    assert!(d.redelivered);
    d.ack().await.unwrap();
    assert_quiet(&mut *sub, "after the ack").await;
}

async fn group_keeps_events_while_no_consumer_runs<F: BusFixture>() {
    let f = F::new().await;
    let bus = f.bus();
    drop(bus.subscribe("audit").await.unwrap());
    let events: Vec<Event> = (0..3).map(event).collect();
    for e in &events {
        bus.publish(e).await.unwrap();
    }
    let mut sub = bus.subscribe("audit").await.unwrap();
    // Order is not compared: on RabbitMQ the dropped consumer may still have been handed some
    // events before the broker saw it go, and those come back requeued.
    let mut got = HashSet::new();
    for _ in &events {
        let d = next(&mut *sub, "an event kept for the group").await;
        assert!(events.contains(&d.event), "unexpected event {:?}", d.event);
        got.insert(d.event.id);
        d.ack().await.unwrap();
    }
    assert_eq!(got.len(), events.len(), "every kept event delivered once");
    assert_quiet(&mut *sub, "after the kept events").await;
}

async fn publish_without_a_group_is_unroutable<F: BusFixture>() {
    let f = F::new().await;
    let bus = f.bus();
    let e = event(1);
    match bus.publish(&e).await {
        Err(BusError::Unroutable(id)) => assert_eq!(id, e.id.to_string()),
        other => panic!("publishing with no group bound must be Unroutable, got {other:?}"),
    }
    // Once a group exists the same event goes through, and only then is it delivered.
    let mut sub = bus.subscribe("audit").await.unwrap();
    bus.publish(&e).await.unwrap();
    let d = next(&mut *sub, "the event after a group appeared").await;
    assert_eq!(d.event, e);
    d.ack().await.unwrap();
    assert_quiet(&mut *sub, "the refused publish must not be delivered").await;
}

async fn a_batch_is_published_whole_and_in_order<F: BusFixture>() {
    let f = F::new().await;
    let bus = f.bus();
    let batch: Vec<Event> = (0..50).map(event).collect();
    // No group yet: nothing of the batch is taken, and the first event is named.
    match bus.publish_batch(&batch).await {
        (0, Some(BusError::Unroutable(id))) => assert_eq!(id, batch[0].id.to_string()),
        (n, e) => panic!("a batch with no group bound must stop at once as Unroutable, got {n} and {e:?}"),
    }
    let mut sub = bus.subscribe("audit").await.unwrap();
    let (published, failure) = bus.publish_batch(&batch).await;
    assert_eq!((published, failure.map(|e| e.to_string())), (50, None));
    for (i, expected) in batch.iter().enumerate() {
        let d = next(&mut *sub, &format!("event {i} of the batch")).await;
        assert_eq!(&d.event, expected, "in order");
        d.ack().await.unwrap();
    }
    assert_quiet(&mut *sub, "after the batch").await;
    assert_eq!(bus.publish_batch(&[]).await.0, 0, "an empty batch is nothing");
}

async fn ping_answers<F: BusFixture>() {
    let f = F::new().await;
    let bus = f.bus();
    bus.ping().await.unwrap();
    assert!(["in-process", "rabbitmq"].contains(&bus.kind()));
}

macro_rules! bus_contract {
    ($adapter:ident, $fixture:ty) => {
        mod $adapter {
            use super::*;
            bus_contract!(@tests $fixture;
                publish_then_receive,
                every_group_gets_every_event,
                consumers_of_a_group_share_its_events,
                nack_redelivers,
                unacked_event_is_redelivered_to_the_next_consumer,
                group_keeps_events_while_no_consumer_runs,
                publish_without_a_group_is_unroutable,
                a_batch_is_published_whole_and_in_order,
                ping_answers,
            );
        }
    };
    (@tests $fixture:ty; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                super::$check::<$fixture>().await;
            }
        )*
    };
}

bus_contract!(in_process, InProcess);
bus_contract!(rabbitmq, Rabbit);

/// RabbitMQ only: the fixture really deletes what the bus declared, so tests leave nothing behind.
#[tokio::test]
async fn rabbitmq_namespace_is_deleted_after_the_test() {
    use lapin::options::{ExchangeDeclareOptions, QueueDeclareOptions};
    let (url, queue, exchange) = {
        let f = Rabbit::new().await;
        let bus = f.bus();
        let sub = bus.subscribe("audit").await.unwrap();
        bus.publish(&event(1)).await.unwrap();
        drop(sub);
        (f.rabbit.url.clone(), f.rabbit.queue("audit"), f.rabbit.exchange())
    };
    let conn = lapin::Connection::connect(&url, lapin::ConnectionProperties::default()).await.unwrap();
    // A passive declare of something missing closes the channel with 404: use one per check.
    let ch = conn.create_channel().await.unwrap();
    let q = ch
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions { passive: true, ..Default::default() },
            Default::default(),
        )
        .await;
    assert!(q.is_err(), "queue {queue} was left behind");
    let ch = conn.create_channel().await.unwrap();
    let x = ch
        .exchange_declare(
            exchange.as_str().into(),
            lapin::ExchangeKind::Topic,
            ExchangeDeclareOptions { passive: true, ..Default::default() },
            Default::default(),
        )
        .await;
    assert!(x.is_err(), "exchange {exchange} was left behind");
    let _ = conn.close(200, "done".into()).await;
}
