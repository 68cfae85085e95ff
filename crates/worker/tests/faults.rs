//! Fault tests of the event pipeline (issue 6, "must show"): the outbox relay and the worker on
//! real PostgreSQL/SQLite and RabbitMQ, with the broker cut away mid-run ([`TcpProxy`]), a relay
//! killed mid-batch, and two relays at once. Each checks that every written event reaches the
//! consumers and has its effect exactly once (duplicates on the wire are allowed, counted and
//! reported), and that order per aggregate holds.

// Tests may unwrap: a failure is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use platform::bus::{BusError, Event, EventBus, InProcessBus, RabbitMqBus, Subscription};
use platform::db::{Database, StoreError, postgres};
use platform::outbox::{Relay, insert_pg, insert_sqlite};
use test_support::{TcpProxy, TestPostgres, TestRabbit, TestSqlite};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The group that counts raw deliveries, next to the worker's own group.
const TALLY: &str = "tally";
/// The longest a test waits for the pipeline to drain.
const DRAIN: Duration = Duration::from_secs(20);

async fn migrated(db: &Database) {
    db.migrate(&platform::outbox::MIGRATIONS).await.unwrap();
    db.migrate(&worker::MIGRATIONS).await.unwrap();
}

fn task_event(aggregate: Uuid, n: usize) -> Event {
    Event::new("task.created", aggregate, None, time::OffsetDateTime::now_utc(), serde_json::json!({ "n": n }))
}

/// Commits each event in a transaction of its own, as the task store does, waking the relay
/// after each and pausing in between.
async fn write_each(db: Database, events: Vec<Event>, wake: Arc<Notify>, pause: Duration) -> Result<(), StoreError> {
    for event in events {
        match &db {
            Database::Sqlite(db) => db.write(move |tx| insert_sqlite(tx, &event)).await?,
            Database::Postgres(db) => {
                let mut client = db.client().await?;
                let tx = client.transaction().await.map_err(postgres::map_err)?;
                insert_pg(&tx, &event).await?;
                tx.commit().await.map_err(postgres::map_err)?;
            }
        }
        wake.notify_one();
        tokio::time::sleep(pause).await;
    }
    Ok(())
}

async fn ids(db: &Database, sql: &'static str) -> Vec<Uuid> {
    match db {
        Database::Sqlite(db) => {
            db.read(move |c| c.prepare(sql)?.query_map([], |r| r.get::<_, Uuid>(0))?.collect()).await.unwrap()
        }
        Database::Postgres(db) => {
            let rows = db.client().await.unwrap().query(sql, &[]).await.unwrap();
            rows.iter().map(|r| r.get(0)).collect()
        }
    }
}

/// The ids of the events the worker has processed (its effect).
async fn processed(db: &Database) -> Vec<Uuid> {
    ids(db, "SELECT event_id FROM worker_processed_events").await
}

async fn unpublished(db: &Database) -> usize {
    ids(db, "SELECT id FROM outbox WHERE published_at IS NULL").await.len()
}

/// Waits until `done` holds, panicking with `what` after [`DRAIN`].
async fn eventually<F: Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    let start = Instant::now();
    while !done().await {
        assert!(start.elapsed() < DRAIN, "{what}: not reached within {DRAIN:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Deliveries per event id seen by one group.
type Seen = Arc<Mutex<HashMap<Uuid, usize>>>;

/// Subscribes `group` now (so its queue exists before anything is published), then counts every
/// delivery per event id and acknowledges it, subscribing again whenever the bus drops it.
async fn tally(bus: Arc<dyn EventBus>, group: &'static str) -> (Seen, JoinHandle<()>) {
    let seen = Seen::default();
    let mut sub = bus.subscribe(group).await.unwrap();
    let task = tokio::spawn({
        let seen = seen.clone();
        async move {
            loop {
                match sub.next().await {
                    Some(Ok(d)) => {
                        *seen.lock().unwrap().entry(d.event.id).or_default() += 1;
                        let _ = d.ack().await;
                    }
                    _ => loop {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        if let Ok(s) = bus.subscribe(group).await {
                            sub = s;
                            break;
                        }
                    },
                }
            }
        }
    });
    (seen, task)
}

/// Checks that every written event was delivered and processed exactly once in effect, and
/// describes the duplicates seen on the wire.
async fn assert_exactly_once(db: &Database, written: &BTreeSet<Uuid>, seen: &Seen) -> String {
    let n = written.len();
    eventually("every event processed", || async { processed(db).await.len() >= n }).await;
    eventually("every event delivered", || async { seen.lock().unwrap().len() >= n }).await;
    let done = processed(db).await;
    assert_eq!(done.len(), n, "each event has its effect exactly once");
    assert_eq!(&done.into_iter().collect::<BTreeSet<_>>(), written, "the processed events are the written ones");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(&seen.keys().copied().collect::<BTreeSet<_>>(), written, "the delivered events are the written ones");
    let duplicates: usize = seen.values().map(|c| c - 1).sum();
    format!("{n} events, {duplicates} duplicate deliveries on the wire")
}

fn proxied(url: &str, proxy: &TcpProxy) -> String {
    let (credentials, rest) = url.split_once('@').unwrap();
    let (_, path) = rest.split_once('/').unwrap();
    format!("{credentials}@{}/{path}", proxy.addr())
}

/// `host:port` of a server URL (`amqp://…@host:port/…`, `postgres://…@host:port/…`).
fn rabbit_host(url: &str) -> String {
    let rest = url.split_once('@').map_or(url, |(_, r)| r);
    rest.split_once('/').map_or(rest, |(h, _)| h).to_string()
}

/// RabbitMQ is cut away while writers commit tasks and a relay and the worker run; writes keep
/// succeeding, the outbox grows, and once RabbitMQ is back every event arrives and has its
/// effect exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rabbitmq_cut_while_tasks_are_created_delivers_every_event_once_in_effect() {
    let pg = TestPostgres::new().await;
    let db = pg.db.clone();
    migrated(&db).await;
    let rabbit = TestRabbit::new(&[worker::GROUP, TALLY]);
    let proxy = TcpProxy::start(&rabbit_host(&rabbit.url)).await;
    let bus: Arc<dyn EventBus> =
        Arc::new(RabbitMqBus::connect(&proxied(&rabbit.url, &proxy), &rabbit.namespace).await.unwrap());
    // The worker's queue exists before anything is published (RabbitMQ keeps events only for
    // groups that subscribed once).
    drop(rabbit.bus().await.subscribe(worker::GROUP).await.unwrap());
    let (seen, tally) = tally(bus.clone(), TALLY).await;
    let (stop, shutdown) = watch::channel(false);
    let relay = Relay::new(db.clone(), bus.clone());
    let wake = relay.waker();
    let pipeline = worker::spawn(db.clone(), bus.clone(), relay, shutdown).await;

    let batches: Vec<Vec<Event>> = (0..4)
        .map(|_| {
            let aggregate = Uuid::now_v7();
            (0..50).map(|n| task_event(aggregate, n)).collect()
        })
        .collect();
    let written: BTreeSet<Uuid> = batches.iter().flatten().map(|e| e.id).collect();
    let writers: Vec<_> = batches
        .into_iter()
        .map(|b| tokio::spawn(write_each(db.clone(), b, wake.clone(), Duration::from_millis(20))))
        .collect();

    eventually("the first events processed", || async { !processed(&db).await.is_empty() }).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    proxy.cut();
    let before_cut = processed(&db).await.len();
    for w in writers {
        w.await.unwrap().expect("writes keep succeeding while RabbitMQ is unreachable");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waiting = unpublished(&db).await;
    assert!(waiting > 0, "events written during the outage wait in the outbox");
    assert!(processed(&db).await.len() < written.len(), "nothing reaches the worker during the outage");
    proxy.restore();

    let report = assert_exactly_once(&db, &written, &seen).await;
    eventually("the outbox drained", || async { unpublished(&db).await == 0 }).await;
    eprintln!("broker cut: {before_cut} events processed before the cut, {waiting} waited in the outbox; {report}");
    stop.send(true).unwrap();
    for task in pipeline {
        task.await.unwrap();
    }
    tally.abort();
}

/// A real bus that publishes the first `keep` events of each batch, says so, and holds the rest
/// until the gate opens: a relay that is slow, or (the gate never opening) a relay process that
/// dies after the broker took part of a batch but before it marked any row sent.
struct Held {
    inner: Arc<dyn EventBus>,
    keep: usize,
    reached: Arc<Notify>,
    gate: watch::Receiver<bool>,
}

#[async_trait]
impl EventBus for Held {
    async fn publish(&self, event: &Event) -> Result<(), BusError> {
        self.inner.publish(event).await
    }
    async fn publish_batch(&self, events: &[Event]) -> (usize, Option<BusError>) {
        let (head, tail) = events.split_at(self.keep.min(events.len()));
        let (published, failure) = self.inner.publish_batch(head).await;
        if failure.is_some() {
            return (published, failure);
        }
        self.reached.notify_one();
        let _ = self.gate.clone().wait_for(|open| *open).await;
        let (more, failure) = self.inner.publish_batch(tail).await;
        (published + more, failure)
    }
    async fn subscribe(&self, group: &str) -> Result<Box<dyn Subscription>, BusError> {
        self.inner.subscribe(group).await
    }
    async fn subscribe_broadcast(&self) -> Result<Box<dyn Subscription>, BusError> {
        self.inner.subscribe_broadcast().await
    }
    async fn ping(&self) -> Result<(), BusError> {
        self.inner.ping().await
    }
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}

async fn relay_killed_mid_batch(db: Database, bus: Arc<dyn EventBus>) {
    migrated(&db).await;
    let (seen, tally) = tally(bus.clone(), TALLY).await;
    drop(bus.subscribe(worker::GROUP).await.unwrap());
    let aggregate = Uuid::now_v7();
    let events: Vec<Event> = (0..30).map(|n| task_event(aggregate, n)).collect();
    let written: BTreeSet<Uuid> = events.iter().map(|e| e.id).collect();
    write_each(db.clone(), events, Arc::default(), Duration::ZERO).await.unwrap();

    let reached = Arc::new(Notify::new());
    let (_never, gate) = watch::channel(false);
    let dying: Arc<dyn EventBus> = Arc::new(Held { inner: bus.clone(), keep: 12, reached: reached.clone(), gate });
    let doomed = Relay::new(db.clone(), dying);
    let (_stop_doomed, doomed_shutdown) = watch::channel(false);
    let doomed = tokio::spawn(doomed.run(Duration::from_millis(50), doomed_shutdown));
    tokio::time::timeout(DRAIN, reached.notified()).await.expect("the relay published part of its batch");
    doomed.abort();
    assert!(doomed.await.unwrap_err().is_cancelled());
    assert_eq!(unpublished(&db).await, 30, "the killed relay marked nothing sent");
    eventually("the killed relay's part delivered", || async { seen.lock().unwrap().len() == 12 }).await;

    let (stop, shutdown) = watch::channel(false);
    let pipeline = worker::spawn(db.clone(), bus.clone(), Relay::new(db.clone(), bus.clone()), shutdown).await;
    let report = assert_exactly_once(&db, &written, &seen).await;
    eventually("the outbox drained", || async { unpublished(&db).await == 0 }).await;
    let duplicates: usize = seen.lock().unwrap().values().map(|c| c - 1).sum();
    assert_eq!(duplicates, 12, "exactly the part the killed relay sent came twice ({report})");
    eprintln!("relay killed mid-batch: {report}");
    stop.send(true).unwrap();
    for task in pipeline {
        task.await.unwrap();
    }
    tally.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relay_killed_mid_batch_on_postgres_and_rabbitmq_delivers_every_event_once_in_effect() {
    let pg = TestPostgres::new().await;
    let rabbit = TestRabbit::new(&[worker::GROUP, TALLY]);
    let bus: Arc<dyn EventBus> = Arc::new(rabbit.bus().await);
    relay_killed_mid_batch(pg.db.clone(), bus).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relay_killed_mid_batch_on_sqlite_in_process_delivers_every_event_once_in_effect() {
    let lite = TestSqlite::new().await;
    relay_killed_mid_batch(lite.db.clone(), Arc::new(InProcessBus::new())).await;
}

/// Two relays on one PostgreSQL outbox: while one is slow publishing its batch, the other must
/// not publish later events of the same aggregate ahead of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_relays_on_postgres_keep_order_per_aggregate() {
    let pg = TestPostgres::new().await;
    let db = pg.db.clone();
    migrated(&db).await;
    let rabbit = TestRabbit::new(&[TALLY]);
    let bus: Arc<dyn EventBus> = Arc::new(rabbit.bus().await);
    let mut sub = bus.subscribe(TALLY).await.unwrap();
    let aggregate = Uuid::now_v7();
    // More than one relay batch (100), so a second relay could take the rest.
    let events: Vec<Event> = (0..150).map(|n| task_event(aggregate, n)).collect();
    write_each(db.clone(), events.clone(), Arc::default(), Duration::ZERO).await.unwrap();

    let (open, gate) = watch::channel(false);
    let waiting = Arc::new(Notify::new());
    let slow = Relay::new(db.clone(), Arc::new(Held { inner: bus.clone(), keep: 0, reached: waiting.clone(), gate }));
    let slow = tokio::spawn(async move { slow.run_once().await.unwrap().published });
    tokio::time::timeout(DRAIN, waiting.notified()).await.expect("the slow relay holds a batch");
    let fast = Relay::new(db.clone(), bus.clone());
    let overtaking = fast.run_once().await.unwrap().published;
    open.send(true).unwrap();
    let first = slow.await.unwrap();
    assert_eq!(first, 100, "the slow relay published its batch");
    let mut rest = 0;
    while rest + first + overtaking < events.len() {
        let published = fast.run_once().await.unwrap().published;
        assert!(published > 0, "the second relay publishes what is left");
        rest += published;
    }

    let mut received = Vec::new();
    while received.len() < events.len() {
        let d = tokio::time::timeout(DRAIN, sub.next()).await.expect("every event arrives").unwrap().unwrap();
        received.push(d.event.data["n"].as_u64().unwrap());
        d.ack().await.unwrap();
    }
    let expected: Vec<u64> = (0..150).collect();
    assert_eq!(
        received, expected,
        "events of one aggregate arrive in outbox order (the second relay published {overtaking} while the first held its batch)"
    );
    assert_eq!(unpublished(&db).await, 0);
}

/// PostgreSQL cut away while the worker consumes: it holds each event and retries rather than
/// nack it, so an outage lasting many times the delivery limit's worth of attempts dead-letters
/// nothing, and every event has its effect once the database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_outage_sends_no_event_to_the_dead_letters() {
    let pg = TestPostgres::new().await;
    migrated(&pg.db).await;
    let proxy = TcpProxy::start(&rabbit_host(&pg.url)).await;
    let db = Database::connect(&proxied(&pg.url, &proxy)).await.unwrap();
    let bus = Arc::new(InProcessBus::new().with_delivery_limit(2));
    drop(bus.subscribe(worker::GROUP).await.unwrap());
    let (stop, shutdown) = watch::channel(false);
    let consumer = tokio::spawn(worker::Worker::new(db, bus.clone()).run(shutdown));
    proxy.cut();
    let events: Vec<Event> = (0..3).map(|n| task_event(Uuid::now_v7(), n)).collect();
    for e in &events {
        bus.publish(e).await.unwrap();
    }
    // A nacking consumer would have spent its two deliveries per event many times over by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.restore();
    let written: BTreeSet<Uuid> = events.iter().map(|e| e.id).collect();
    eventually("every event processed after the outage", || async { processed(&pg.db).await.len() >= 3 }).await;
    assert_eq!(processed(&pg.db).await.into_iter().collect::<BTreeSet<_>>(), written);
    assert!(
        bus.dead_letters(worker::GROUP).is_empty(),
        "an outage dead-lettered {:?}",
        bus.dead_letters(worker::GROUP)
    );
    stop.send(true).unwrap();
    consumer.await.unwrap();
}

/// A broadcast subscriber alone makes an event routable, so the relay must not publish before the
/// worker's group exists: `worker::spawn` starts it once the consumer has subscribed, and every
/// event already in the outbox reaches the group (a fresh namespace: no group queue yet).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_relay_starts_after_the_workers_group_exists() {
    let lite = TestSqlite::new().await;
    let db = lite.db.clone();
    migrated(&db).await;
    let rabbit = TestRabbit::new(&[worker::GROUP]);
    let bus: Arc<dyn EventBus> = Arc::new(rabbit.bus().await);
    let mut live = bus.subscribe_broadcast().await.unwrap();
    let events: Vec<Event> = (0..20).map(|n| task_event(Uuid::now_v7(), n)).collect();
    write_each(db.clone(), events.clone(), Arc::default(), Duration::ZERO).await.unwrap();
    let (stop, shutdown) = watch::channel(false);
    let pipeline = worker::spawn(db.clone(), bus.clone(), Relay::new(db.clone(), bus.clone()), shutdown).await;
    let written: BTreeSet<Uuid> = events.iter().map(|e| e.id).collect();
    eventually("every event processed by the worker", || async { processed(&db).await.len() >= written.len() }).await;
    assert_eq!(processed(&db).await.into_iter().collect::<BTreeSet<_>>(), written);
    // The broadcast subscriber saw them too.
    for e in &events {
        let d = tokio::time::timeout(DRAIN, live.next()).await.expect("a live event").unwrap().unwrap();
        assert_eq!(d.event.seq, 1, "each the first of its own stream");
        assert_eq!(&Event { seq: 0, ..d.event }, e);
    }
    stop.send(true).unwrap();
    for task in pipeline {
        task.await.unwrap();
    }
}
