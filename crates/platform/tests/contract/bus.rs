//! The `EventBus` contract: every group gets every event, the consumers of one group share it,
//! unacknowledged events come back up to the delivery limit and then go to the dead letters,
//! broadcast subscribers get every event published while they exist (bounded, at most once), and
//! an event nobody can receive is refused as `Unroutable`. Run on `InProcessBus` and on
//! `RabbitMqBus` (a namespace per test, deleted afterwards).

use std::collections::HashSet;
use std::time::Duration;

use platform::bus::{BusError, DEFAULT_DELIVERY_LIMIT, Delivery, Event, Subscription};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use test_support::wait;

use crate::support::{BusConfig, BusFixture, InProcess, QUIET, Rabbit, assert_quiet, event, next, wait_limit};

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
        match tokio::time::timeout(wait_limit(), rx.recv()).await {
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

/// Polls `f`'s dead letters of `group` until there are `n` of them (they arrive asynchronously on
/// RabbitMQ), then checks that no more come.
async fn dead_letters_of<F: BusFixture>(f: &F, group: &str, n: usize) -> Vec<Event> {
    let dead = wait::until_some(&format!("{n} dead letters of {group}"), || async {
        let dead = f.dead_letters(group).await;
        (dead.len() >= n).then_some(dead)
    })
    .await;
    tokio::time::sleep(QUIET).await;
    let again = f.dead_letters(group).await;
    assert_eq!(again.len(), dead.len(), "dead letters of {group} still changing: {again:?}");
    dead
}

async fn an_always_nacked_event_is_delivered_limit_times_then_dead_lettered<F: BusFixture>() {
    let f = F::new().await;
    let bus = f.bus();
    let mut audit = bus.subscribe("audit").await.unwrap();
    let mut notify = bus.subscribe("notify").await.unwrap();
    let e = event(1);
    bus.publish(&e).await.unwrap();
    for delivery in 1..=DEFAULT_DELIVERY_LIMIT {
        let d = next(&mut *audit, &format!("delivery {delivery} of {DEFAULT_DELIVERY_LIMIT}")).await;
        assert_eq!(d.event, e);
        assert_eq!(d.redelivered, delivery > 1, "only the first delivery is not a redelivery");
        d.nack().await.unwrap();
    }
    // The last allowed delivery's nack sends the event to the dead letters; once it is there it
    // has left the group's queue, so nothing can deliver it again.
    assert_eq!(dead_letters_of(&f, "audit", 1).await, vec![e.clone()], "the event is in the dead letters");
    assert_quiet(&mut *audit, "after the last allowed delivery").await;
    // Another group is not affected: it gets the event once and dead-letters nothing.
    let d = next(&mut *notify, "the other group's delivery").await;
    assert_eq!(d.event, e);
    d.ack().await.unwrap();
    assert_quiet(&mut *notify, "after the other group's ack").await;
    assert!(f.dead_letters("notify").await.is_empty(), "the other group dead-lettered nothing");
}

async fn an_event_whose_consumers_keep_dying_is_dead_lettered_at_the_limit<F: BusFixture>() {
    let f = F::with(BusConfig { delivery_limit: 2, ..Default::default() }).await;
    let bus = f.bus();
    let mut sub = bus.subscribe("audit").await.unwrap();
    let e = event(1);
    bus.publish(&e).await.unwrap();
    // Each consumer dies holding the event: an unsettled delivery counts like a nack.
    for attempt in 1..=2 {
        let d = next(&mut *sub, &format!("delivery {attempt}")).await;
        assert_eq!(d.event, e);
        drop(d);
        drop(sub);
        sub = bus.subscribe("audit").await.unwrap();
    }
    assert_eq!(dead_letters_of(&f, "audit", 1).await, vec![e]);
    assert_quiet(&mut *sub, "after the last allowed delivery").await;
}

async fn a_poison_event_does_not_hold_up_the_others<F: BusFixture>() {
    let f = F::with(BusConfig { delivery_limit: 2, ..Default::default() }).await;
    let bus = f.bus();
    let mut sub = bus.subscribe("audit").await.unwrap();
    let poison = event(0);
    let good: Vec<Event> = (1..4).map(event).collect();
    bus.publish(&poison).await.unwrap();
    for e in &good {
        bus.publish(e).await.unwrap();
    }
    let (mut poisoned, mut handled) = (0, Vec::new());
    while poisoned < 2 || handled.len() < good.len() {
        let d = next(&mut *sub, &format!("poison seen {poisoned} times, handled {handled:?}")).await;
        if d.event == poison {
            poisoned += 1;
            d.nack().await.unwrap();
        } else {
            handled.push(d.event.id);
            d.ack().await.unwrap();
        }
    }
    assert_eq!(dead_letters_of(&f, "audit", 1).await, vec![poison], "only the poison event is dead");
    assert_quiet(&mut *sub, "the poison event after its second delivery").await;
    let mut expected: Vec<Uuid> = good.iter().map(|e| e.id).collect();
    handled.sort();
    expected.sort();
    assert_eq!(handled, expected, "every other event handled once");
}

/// The next `n` events of a broadcast subscription.
async fn broadcast_events(sub: &mut dyn Subscription, n: usize, what: &str) -> Vec<Event> {
    let mut out = Vec::new();
    for i in 0..n {
        let d: Delivery = next(sub, &format!("{what}: event {i}")).await;
        assert!(!d.redelivered);
        out.push(d.event);
    }
    out
}

async fn broadcast_subscribers_each_receive_every_event_in_order<F: BusFixture>() {
    let f = F::new().await;
    let bus = f.bus();
    let mut group = bus.subscribe("audit").await.unwrap();
    let before = event(0);
    bus.publish(&before).await.unwrap();
    let mut one = bus.subscribe_broadcast().await.unwrap();
    let mut two = bus.subscribe_broadcast().await.unwrap();
    let events: Vec<Event> = (1..21).map(event).collect();
    for e in &events[..10] {
        bus.publish(e).await.unwrap();
    }
    assert_eq!(bus.publish_batch(&events[10..]).await.0, 10);
    for (name, sub) in [("first", &mut one), ("second", &mut two)] {
        let got = broadcast_events(&mut **sub, events.len(), name).await;
        assert_eq!(got, events, "the {name} broadcast subscriber gets every later event, in order");
    }
    // At most once: a nack (or ack) settles nothing and brings nothing back.
    bus.publish(&event(21)).await.unwrap();
    next(&mut *one, "one more").await.nack().await.unwrap();
    next(&mut *two, "one more").await.ack().await.unwrap();
    assert_quiet(&mut *one, "a nacked broadcast delivery").await;
    assert_quiet(&mut *two, "after every event").await;
    // The group still gets everything, the event from before the broadcast subscriptions too.
    for i in 0..22 {
        let d = next(&mut *group, &format!("group event {i}")).await;
        assert_eq!(d.event.data["n"], i, "the group gets every event in order");
        d.ack().await.unwrap();
    }
    assert_quiet(&mut *group, "after the group's events").await;
}

async fn a_dropped_broadcast_subscriber_leaves_nothing_behind<F: BusFixture>() {
    let f = F::new().await;
    let bus = f.bus();
    let mut live = bus.subscribe_broadcast().await.unwrap();
    // Like a group, a broadcast subscriber makes an event routable (RabbitMQ's mandatory flag).
    let e = event(1);
    bus.publish(&e).await.unwrap();
    assert_eq!(next(&mut *live, "the live event").await.event, e);
    drop(live);
    // Once it is gone nothing can receive events: no queue or group was left behind. (RabbitMQ
    // deletes the queue when the dropped connection's close reaches it.)
    wait::until("publishing to be Unroutable once the broadcast subscriber went", || async {
        match bus.publish(&event(2)).await {
            Err(BusError::Unroutable(_)) => true,
            Ok(()) => false,
            Err(other) => panic!("publishing after the broadcast subscriber went must be Unroutable, got {other:?}"),
        }
    })
    .await;
    // And nothing was kept for it: a new broadcast subscriber starts from what follows.
    let mut again = bus.subscribe_broadcast().await.unwrap();
    let later = event(3);
    bus.publish(&later).await.unwrap();
    assert_eq!(next(&mut *again, "the next live event").await.event, later);
    assert_quiet(&mut *again, "after the next live event").await;
}

async fn a_lagging_broadcast_subscriber_loses_the_oldest_events_only<F: BusFixture>() {
    const CAPACITY: usize = 8;
    let f = F::with(BusConfig { broadcast_capacity: CAPACITY, ..Default::default() }).await;
    let bus = f.bus();
    let mut slow = bus.subscribe_broadcast().await.unwrap();
    let events: Vec<Event> = (0..64).map(event).collect();
    assert_eq!(bus.publish_batch(&events).await.0, events.len());
    // Read only now. What is kept is bounded (RabbitMQ: the prefetch already handed over plus
    // the queue's length), in order, and ends with the newest event: read up to it.
    let mut got = Vec::new();
    while got.last() != Some(&63) {
        let d = next(&mut *slow, &format!("the kept events up to the newest, after {got:?}")).await;
        got.push(d.event.data["n"].as_u64().unwrap());
        assert!(got.len() <= 2 * CAPACITY, "kept more than {} of 64: {got:?}", 2 * CAPACITY);
    }
    assert!(got.windows(2).all(|w| w[0] < w[1]), "in publish order: {got:?}");
    assert_eq!(got.last(), Some(&63), "the newest event is kept: {got:?}");
    // It keeps receiving once it reads again.
    let e = event(64);
    bus.publish(&e).await.unwrap();
    assert_eq!(next(&mut *slow, "an event after catching up").await.event, e);
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
                an_always_nacked_event_is_delivered_limit_times_then_dead_lettered,
                an_event_whose_consumers_keep_dying_is_dead_lettered_at_the_limit,
                a_poison_event_does_not_hold_up_the_others,
                broadcast_subscribers_each_receive_every_event_in_order,
                a_dropped_broadcast_subscriber_leaves_nothing_behind,
                a_lagging_broadcast_subscriber_loses_the_oldest_events_only,
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
    let (url, queue, exchange, dead) = {
        let f = Rabbit::new().await;
        let bus = f.bus();
        let sub = bus.subscribe("audit").await.unwrap();
        bus.publish(&event(1)).await.unwrap();
        drop(sub);
        (f.rabbit.url.clone(), f.rabbit.queue("audit"), f.rabbit.exchange(), f.rabbit.dead())
    };
    let conn = lapin::Connection::connect(&url, lapin::ConnectionProperties::default()).await.unwrap();
    // A passive declare of something missing closes the channel with 404: use one per check.
    for queue in [queue, dead.clone()] {
        let ch = conn.create_channel().await.unwrap();
        let q = ch
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions { passive: true, ..Default::default() },
                Default::default(),
            )
            .await;
        assert!(q.is_err(), "queue {queue} was left behind");
    }
    for exchange in [exchange, dead] {
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
    }
    let _ = conn.close(200, "done".into()).await;
}

/// RabbitMQ only: a message that is not an event is rejected without requeue and so lands in
/// `{ns}.dead` at once (x-death reason `rejected`), and the events after it keep flowing.
#[tokio::test]
async fn rabbitmq_a_malformed_message_is_dead_lettered_at_once() {
    use lapin::options::BasicPublishOptions;
    let f = Rabbit::new().await;
    let bus = f.bus();
    let mut sub = bus.subscribe("audit").await.unwrap();
    let conn = lapin::Connection::connect(&f.rabbit.url, lapin::ConnectionProperties::default()).await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.basic_publish(
        f.rabbit.exchange().as_str().into(),
        "task.created".into(),
        BasicPublishOptions::default(),
        b"not an event",
        lapin::BasicProperties::default(),
    )
    .await
    .unwrap();
    let _ = conn.close(200, "sent".into()).await;
    match tokio::time::timeout(wait_limit(), sub.next()).await {
        Ok(Some(Err(BusError::Malformed(_)))) => {}
        other => panic!("a message that is not an event must be reported Malformed, got {other:?}"),
    }
    let e = event(1);
    bus.publish(&e).await.unwrap();
    let d = next(&mut *sub, "the event after the malformed message").await;
    assert_eq!(d.event, e);
    d.ack().await.unwrap();
    assert_quiet(&mut *sub, "the malformed message must not come back").await;
    // Dead-lettering happens in the broker after the reject: wait for it.
    let dead = wait::until_some("the malformed message in the dead letters", || async {
        let dead = f.dead_messages().await;
        (!dead.is_empty()).then_some(dead)
    })
    .await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].body, b"not an event");
    assert_eq!((dead[0].queue.as_str(), dead[0].reason.as_str()), (f.rabbit.queue("audit").as_str(), "rejected"));
}

/// RabbitMQ only: a group queue declared by an older version (no delivery limit, no dead-letter
/// exchange) cannot be re-declared with those arguments; the bus logs it and consumes it as it is.
#[tokio::test]
async fn rabbitmq_a_group_queue_of_an_older_version_is_still_consumed() {
    use lapin::options::QueueDeclareOptions;
    use lapin::types::{AMQPValue, FieldTable};
    let f = Rabbit::new().await;
    let conn = lapin::Connection::connect(&f.rabbit.url, lapin::ConnectionProperties::default()).await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    ch.queue_declare(f.rabbit.queue("audit").as_str().into(), QueueDeclareOptions::durable(), args).await.unwrap();
    let _ = conn.close(200, "declared".into()).await;
    let bus = f.bus();
    let mut sub = bus.subscribe("audit").await.unwrap();
    let e = event(1);
    bus.publish(&e).await.unwrap();
    let d = next(&mut *sub, "an event through the old queue").await;
    assert_eq!(d.event, e);
    d.ack().await.unwrap();
    assert_quiet(&mut *sub, "after the ack").await;
}
