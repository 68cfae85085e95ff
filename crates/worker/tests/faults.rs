//! Fault tests of the event pipeline (issue 6, "must show"): the outbox relay and the worker on
//! real PostgreSQL/SQLite and RabbitMQ, with the broker cut away mid-run ([`TcpProxy`]), a relay
//! killed mid-batch, and two relays at once. Each checks that every written event reaches the
//! consumers and has its effect exactly once (duplicates on the wire are allowed, counted and
//! reported), and that order per aggregate holds.

// Tests may unwrap: a failure is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt as _;
use platform::bus::{BusError, Event, EventBus, InProcessBus, RabbitMqBus, Subscription};
use platform::consumer::{HandleError, Handler, Source};
use platform::db::{Database, StoreError, postgres};
use platform::outbox::{Relay, insert_pg, insert_sqlite};
use test_support::wait;
use test_support::{TcpProxy, TestPostgres, TestRabbit, TestSqlite};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The group that counts raw deliveries, next to the worker's own group.
const TALLY: &str = "tally";
/// How long the pipeline may go without visible progress before a test calls it stuck: more than
/// its longest legitimate pause. After an outage the relay may sleep in its error back-off (at
/// most 10 s, `Relay::run`) and then spend a RabbitMQ connect (3 s timeout) and a publisher
/// confirm (5 s timeout) on a failing pass; the consumer may sleep in its back-off (at most 10 s,
/// `platform::consumer`) before it subscribes again (another connect). That is 18 s at worst;
/// 45 s leaves room for a loaded machine (and `TEST_PATIENCE` scales it).
const STALL: Duration = Duration::from_secs(45);

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

async fn published(db: &Database) -> usize {
    ids(db, "SELECT id FROM outbox WHERE published_at IS NOT NULL").await.len()
}

/// The text of a panic caught from a helper.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload.downcast_ref::<String>().cloned();
    text.or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_string())).unwrap_or_default()
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
                TALLY_STATE.lock().unwrap().clone_from(&"waiting for a delivery".to_string());
                match sub.next().await {
                    Some(Ok(d)) => {
                        *seen.lock().unwrap().entry(d.event.id).or_default() += 1;
                        TALLY_STATE.lock().unwrap().clone_from(&"acknowledging".to_string());
                        let _ = d.ack().await;
                    }
                    other => {
                        let why = match other {
                            Some(Err(e)) => format!("the subscription failed ({e})"),
                            _ => "the subscription ended".to_string(),
                        };
                        let mut attempts = 0;
                        loop {
                            attempts += 1;
                            *TALLY_STATE.lock().unwrap() = format!("{why}; resubscribing, attempt {attempts}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            if let Ok(s) = bus.subscribe(group).await {
                                sub = s;
                                break;
                            }
                        }
                    }
                }
            }
        }
    });
    (seen, task)
}

/// What the tally's consumer is doing now, for the failure message.
static TALLY_STATE: Mutex<String> = Mutex::new(String::new());

/// Waits until the relay has published all `n` events of the outbox, the worker has processed
/// them and the tally group has received them. Any of the three moving counts as progress: it
/// fails only when none has moved for [`STALL`], saying where each stood.
async fn drained(db: &Database, seen: &Seen, n: usize) {
    let last = Mutex::new((0, 0, 0));
    let last = &last;
    let progress =
        wait::until_count("the pipeline drained (published + processed + delivered)", 3 * n, STALL, || async move {
            let sent = published(db).await;
            let done = processed(db).await.len();
            let delivered = seen.lock().unwrap().len();
            *last.lock().unwrap() = (sent, done, delivered);
            sent + done + delivered
        });
    if let Err(panic) = AssertUnwindSafe(progress).catch_unwind().await {
        let (sent, done, delivered) = *last.lock().unwrap();
        panic!(
            "{}; of {n} events {sent} published, {done} processed, {delivered} delivered to {TALLY} \
             (its consumer: {})",
            panic_text(panic.as_ref()),
            TALLY_STATE.lock().unwrap()
        );
    }
}

/// Checks that every written event was delivered and processed exactly once in effect, and
/// describes the duplicates seen on the wire.
async fn assert_exactly_once(db: &Database, written: &BTreeSet<Uuid>, seen: &Seen) -> String {
    let n = written.len();
    drained(db, seen, n).await;
    assert_eq!(unpublished(db).await, 0, "the outbox holds nothing but the written events, all published");
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
///
/// Each writer commits its first events, then waits until the cut has taken effect (the bus's
/// publisher connection is down and cannot be opened again) before it commits the rest: those
/// are written during the outage by construction, however slow the machine, so they must all
/// wait in the outbox and none may have reached the worker before RabbitMQ is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rabbitmq_cut_while_tasks_are_created_delivers_every_event_once_in_effect() {
    /// Events each writer commits before the cut.
    const BEFORE_CUT: usize = 10;
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
    let during_cut: BTreeSet<Uuid> = batches.iter().flat_map(|b| &b[BEFORE_CUT..]).map(|e| e.id).collect();
    let (cut_done, cut_seen) = watch::channel(false);
    let writers: Vec<_> = batches
        .into_iter()
        .map(|mut before| {
            let (db, wake, mut cut_seen) = (db.clone(), wake.clone(), cut_seen.clone());
            tokio::spawn(async move {
                let after = before.split_off(BEFORE_CUT);
                write_each(db.clone(), before, wake.clone(), Duration::from_millis(20)).await?;
                // Only a test that already failed drops the sender.
                let _ = cut_seen.wait_for(|cut| *cut).await;
                write_each(db, after, wake, Duration::from_millis(20)).await
            })
        })
        .collect();

    wait::until("the first events processed", || async { !processed(&db).await.is_empty() }).await;
    proxy.cut();
    // `ping` answers from a live publisher connection without I/O, and otherwise opens one: it
    // fails once the old connection is seen dead and the proxy refuses a new one. From then on
    // the relay cannot publish until the proxy lets traffic through again.
    wait::until("the bus to see RabbitMQ cut away", || async { bus.ping().await.is_err() }).await;
    cut_done.send(true).unwrap();
    let before_cut = processed(&db).await.len();
    for w in writers {
        w.await.unwrap().expect("writes keep succeeding while RabbitMQ is unreachable");
    }
    let waiting = unpublished(&db).await;
    assert!(
        waiting >= during_cut.len(),
        "the {} events written during the outage wait in the outbox (unpublished: {waiting})",
        during_cut.len()
    );
    let reached: Vec<Uuid> = processed(&db).await.into_iter().filter(|id| during_cut.contains(id)).collect();
    assert!(reached.is_empty(), "nothing written during the outage reaches the worker before it ends: {reached:?}");
    proxy.restore();

    let report = assert_exactly_once(&db, &written, &seen).await;
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
    tokio::time::timeout(wait::default_limit(), reached.notified())
        .await
        .expect("the relay never published part of its batch");
    doomed.abort();
    assert!(doomed.await.unwrap_err().is_cancelled());
    assert_eq!(unpublished(&db).await, 30, "the killed relay marked nothing sent");
    let delivered =
        wait::until_count("the killed relay's part delivered", 12, STALL, || async { seen.lock().unwrap().len() })
            .await;
    assert_eq!(delivered, 12, "the killed relay published its first 12 events and no more");

    let (stop, shutdown) = watch::channel(false);
    let pipeline = worker::spawn(db.clone(), bus.clone(), Relay::new(db.clone(), bus.clone()), shutdown).await;
    let report = assert_exactly_once(&db, &written, &seen).await;
    // The second relay published all 30 in order after the first relay's 12 (one queue, one
    // publisher channel), so once every event was seen, every second copy was seen too.
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
    tokio::time::timeout(wait::default_limit(), waiting.notified())
        .await
        .expect("the slow relay never started publishing its batch");
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
        let d = tokio::time::timeout(wait::default_limit(), sub.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {} events arrived: {received:?}", received.len(), events.len()))
            .unwrap()
            .unwrap();
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

/// The worker as its consume loop runs it (`Worker::run`: `platform::consumer` with the worker as
/// the handler), counting the attempts that failed.
struct CountingFailures {
    worker: worker::Worker,
    failures: AtomicUsize,
}

#[async_trait]
impl Handler for CountingFailures {
    async fn handle(&self, event: &Event) -> Result<(), HandleError> {
        let result = Handler::handle(&self.worker, event).await;
        if result.is_err() {
            self.failures.fetch_add(1, Ordering::SeqCst);
        }
        result
    }
}

/// PostgreSQL cut away while the worker consumes: it holds each event and retries rather than
/// nack it, so an outage lasting more failed attempts than the delivery limit allows for all the
/// events together dead-letters nothing, and every event has its effect once the database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_outage_sends_no_event_to_the_dead_letters() {
    const LIMIT: u32 = 2;
    let pg = TestPostgres::new().await;
    migrated(&pg.db).await;
    let proxy = TcpProxy::start(&rabbit_host(&pg.url)).await;
    let db = Database::connect(&proxied(&pg.url, &proxy)).await.unwrap();
    let bus = Arc::new(InProcessBus::new().with_delivery_limit(LIMIT));
    let handler =
        Arc::new(CountingFailures { worker: worker::Worker::new(db, bus.clone()), failures: AtomicUsize::new(0) });
    let (stop, shutdown) = watch::channel(false);
    let consumer =
        platform::consumer::spawn(bus.clone(), Source::Group(worker::GROUP.into()), handler.clone(), shutdown).await;
    proxy.cut();
    let events: Vec<Event> = (0..3).map(|n| task_event(Uuid::now_v7(), n)).collect();
    for e in &events {
        bus.publish(e).await.unwrap();
    }
    // Each failed attempt of a nacking consumer would spend one delivery: after LIMIT failures per
    // event, in whatever order, every event would be in the dead letters.
    let attempts = LIMIT as usize * events.len();
    wait::until(&format!("{attempts} failed attempts during the database outage"), || async {
        handler.failures.load(Ordering::SeqCst) >= attempts
    })
    .await;
    proxy.restore();
    let written: BTreeSet<Uuid> = events.iter().map(|e| e.id).collect();
    wait::until_count("every event processed after the outage", written.len(), STALL, || async {
        processed(&pg.db).await.len()
    })
    .await;
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
    wait::until_count("every event processed by the worker", written.len(), STALL, || async {
        processed(&db).await.len()
    })
    .await;
    assert_eq!(processed(&db).await.into_iter().collect::<BTreeSet<_>>(), written);
    // The broadcast subscriber saw them too.
    for e in &events {
        let d = tokio::time::timeout(wait::default_limit(), live.next())
            .await
            .unwrap_or_else(|_| panic!("event {} never reached the broadcast subscriber", e.data["n"]))
            .unwrap()
            .unwrap();
        assert_eq!(d.event.seq, 1, "each the first of its own stream");
        assert_eq!(&Event { seq: 0, ..d.event }, e);
    }
    stop.send(true).unwrap();
    for task in pipeline {
        task.await.unwrap();
    }
}
