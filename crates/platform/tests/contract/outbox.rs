//! The outbox contract: events written in the same transaction as a state change are relayed to
//! the bus in order and marked published only once the bus took them; a rolled-back transaction
//! leaves no event; a bus failure leaves the events for a later pass. Run for each database
//! (SQLite, PostgreSQL) with each bus (in-process, RabbitMQ).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use platform::bus::{BusError, Event, EventBus, Subscription};
use platform::db::{Database, StoreError, postgres, sqlite};
use platform::outbox::{Relay, RelayPass, insert_pg, insert_sqlite};
use test_support::{TestPostgres, TestSqlite};
use uuid::Uuid;

use crate::support::{BusFixture, DbFixture, InProcess, Rabbit, THINGS, assert_quiet, event, next, query_i64};

/// Writes the row `things(id)` and `events` in one transaction, committed or rolled back.
async fn write(db: &Database, id: i64, events: Vec<Event>, commit: bool) -> Result<(), StoreError> {
    match db {
        Database::Sqlite(db) => {
            db.write(move |tx| {
                tx.execute("INSERT INTO things (id, name) VALUES (?1, ?2)", rusqlite::params![id, format!("t{id}")])
                    .map_err(sqlite::map_err)?;
                for e in &events {
                    insert_sqlite(tx, e)?;
                }
                if commit { Ok(()) } else { Err(StoreError::Internal("rolled back by the test".into())) }
            })
            .await
        }
        Database::Postgres(db) => {
            let mut client = db.client().await?;
            let tx = client.transaction().await.map_err(postgres::map_err)?;
            tx.execute("INSERT INTO things (id, name) VALUES ($1, $2)", &[&id, &format!("t{id}")])
                .await
                .map_err(postgres::map_err)?;
            for e in &events {
                insert_pg(&tx, e).await?;
            }
            if commit {
                tx.commit().await.map_err(postgres::map_err)
            } else {
                tx.rollback().await.map_err(postgres::map_err)?;
                Err(StoreError::Internal("rolled back by the test".into()))
            }
        }
    }
}

/// The outbox in order: (event id, published?).
async fn outbox(db: &Database) -> Vec<(Uuid, bool)> {
    let sql = "SELECT id, published_at IS NOT NULL FROM outbox ORDER BY seq";
    match db {
        Database::Sqlite(db) => db
            .read(move |c| {
                let mut stmt = c.prepare(sql)?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect()
            })
            .await
            .unwrap(),
        Database::Postgres(db) => {
            let rows = db.client().await.unwrap().query(sql, &[]).await.unwrap();
            rows.iter().map(|r| (r.get(0), r.get(1))).collect()
        }
    }
}

async fn migrated<D: DbFixture>() -> D {
    let d = D::new().await;
    d.db().migrate(&platform::outbox::MIGRATIONS).await.unwrap();
    d.db().migrate(&THINGS).await.unwrap();
    d
}

async fn receive_in_order(sub: &mut dyn Subscription, events: &[Event]) {
    for e in events {
        let d = next(sub, "a relayed event").await;
        assert_eq!(d.event.seq, 1, "each test event is the first of its own stream (its aggregate)");
        assert_eq!(&Event { seq: 0, ..d.event.clone() }, e, "events arrive intact and in outbox order");
        d.ack().await.unwrap();
    }
    assert_quiet(sub, "after the relayed events").await;
}

async fn relay_publishes_committed_events_in_order<D: DbFixture, B: BusFixture>() {
    let (d, b) = (migrated::<D>().await, B::new().await);
    let bus = b.bus();
    let mut sub = bus.subscribe("relay").await.unwrap();
    let events: Vec<Event> = (0..3).map(event).collect();
    write(d.db(), 1, events.clone(), true).await.unwrap();
    assert_eq!(outbox(d.db()).await, events.iter().map(|e| (e.id, false)).collect::<Vec<_>>());

    let relay = Relay::new(d.db().clone(), bus.clone());
    assert_eq!(relay.run_once().await.unwrap(), RelayPass { published: 3 });
    receive_in_order(&mut *sub, &events).await;
    assert_eq!(outbox(d.db()).await, events.iter().map(|e| (e.id, true)).collect::<Vec<_>>());
    // Nothing is published twice.
    assert_eq!(relay.run_once().await.unwrap(), RelayPass { published: 0 });
    assert_quiet(&mut *sub, "after a pass with nothing to do").await;
}

async fn rolled_back_transaction_leaves_no_event<D: DbFixture, B: BusFixture>() {
    let (d, b) = (migrated::<D>().await, B::new().await);
    let bus = b.bus();
    let mut sub = bus.subscribe("relay").await.unwrap();
    let err = write(d.db(), 1, (0..3).map(event).collect(), false).await.unwrap_err();
    assert!(matches!(err, StoreError::Internal(_)));
    assert!(outbox(d.db()).await.is_empty(), "a rolled-back transaction leaves no outbox row");
    let things = query_i64(d.db(), "SELECT count(*) FROM things", "SELECT count(*) FROM things", vec![]).await;
    assert_eq!(things.unwrap(), 0);
    // A failing state change (here a duplicate key) takes its events with it too.
    write(d.db(), 2, vec![event(9)], true).await.unwrap();
    let err = write(d.db(), 2, vec![event(10)], true).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(outbox(d.db()).await.len(), 1);

    let relay = Relay::new(d.db().clone(), bus.clone());
    assert_eq!(relay.run_once().await.unwrap(), RelayPass { published: 1 });
    assert_eq!(next(&mut *sub, "the committed event").await.event.data["n"], 9);
}

async fn unroutable_events_wait_for_a_later_pass<D: DbFixture, B: BusFixture>() {
    let (d, b) = (migrated::<D>().await, B::new().await);
    let bus = b.bus();
    let events: Vec<Event> = (0..3).map(event).collect();
    write(d.db(), 1, events.clone(), true).await.unwrap();
    // No group subscribed yet: the bus refuses the events as unroutable.
    let relay = Relay::new(d.db().clone(), bus.clone());
    assert_eq!(relay.run_once().await.unwrap(), RelayPass { published: 0 });
    assert!(outbox(d.db()).await.iter().all(|(_, published)| !published), "nothing marked published");

    let mut sub = bus.subscribe("relay").await.unwrap();
    assert_eq!(relay.run_once().await.unwrap(), RelayPass { published: 3 });
    receive_in_order(&mut *sub, &events).await;
    assert!(outbox(d.db()).await.iter().all(|(_, published)| *published));
}

/// An event inside project `p`.
fn in_project(p: Uuid, n: u32) -> Event {
    let mut e = event(n);
    e.data["project_id"] = serde_json::json!(p);
    e
}

async fn streams_number_events_in_commit_order<D: DbFixture, B: BusFixture>() {
    let (d, b) = (migrated::<D>().await, B::new().await);
    let bus = b.bus();
    let mut sub = bus.subscribe("relay").await.unwrap();
    let (p, q) = (Uuid::now_v7(), Uuid::now_v7());
    assert_eq!(in_project(p, 0).stream(), p, "an event inside a project is of the project's stream");
    assert_eq!(platform::outbox::stream_head(d.db(), p).await.unwrap(), 0);
    write(d.db(), 1, vec![in_project(p, 1), in_project(q, 2), in_project(p, 3)], true).await.unwrap();
    // A rolled-back transaction takes its numbers with it: no gap.
    write(d.db(), 2, vec![in_project(p, 99)], false).await.unwrap_err();
    write(d.db(), 3, vec![in_project(p, 4)], true).await.unwrap();
    assert_eq!(platform::outbox::stream_head(d.db(), p).await.unwrap(), 3);
    assert_eq!(platform::outbox::stream_head(d.db(), q).await.unwrap(), 1);

    let replay = platform::outbox::stream_events(d.db(), p, 1, 10).await.unwrap();
    let numbered: Vec<(i64, i64)> = replay.iter().map(|e| (e.seq, e.data["n"].as_i64().unwrap())).collect();
    assert_eq!(numbered, [(2, 3), (3, 4)], "what followed seq 1, in order");
    assert_eq!(platform::outbox::stream_events(d.db(), p, 0, 1).await.unwrap()[0].seq, 1, "limit holds");
    assert!(platform::outbox::stream_events(d.db(), p, 3, 10).await.unwrap().is_empty());

    let relay = Relay::new(d.db().clone(), bus.clone());
    assert_eq!(relay.run_once().await.unwrap(), RelayPass { published: 4 });
    let mut got = Vec::new();
    for _ in 0..4 {
        let d = next(&mut *sub, "a relayed event").await;
        got.push((d.event.stream(), d.event.seq));
        d.ack().await.unwrap();
    }
    assert_eq!(got, [(p, 1), (q, 1), (p, 2), (p, 3)], "published events carry their numbers");
}

/// A real bus whose `fail_at`-th publish (counting from 0) fails once, as a broker outage would.
struct FailOnce {
    inner: Arc<dyn EventBus>,
    calls: AtomicUsize,
    fail_at: usize,
}

#[async_trait]
impl EventBus for FailOnce {
    async fn publish(&self, event: &Event) -> Result<(), BusError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == self.fail_at {
            return Err(BusError::Unavailable("injected outage".into()));
        }
        self.inner.publish(event).await
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

async fn failure_mid_batch_keeps_order<D: DbFixture, B: BusFixture>() {
    let (d, b) = (migrated::<D>().await, B::new().await);
    let bus: Arc<dyn EventBus> = Arc::new(FailOnce { inner: b.bus(), calls: AtomicUsize::new(0), fail_at: 1 });
    let mut sub = bus.subscribe("relay").await.unwrap();
    let events: Vec<Event> = (0..3).map(event).collect();
    write(d.db(), 1, events.clone(), true).await.unwrap();
    let relay = Relay::new(d.db().clone(), bus.clone());
    // The second publish fails: the pass stops there, so the third is not sent ahead of it.
    assert_eq!(relay.run_once().await.unwrap(), RelayPass { published: 1 });
    assert_eq!(outbox(d.db()).await, vec![(events[0].id, true), (events[1].id, false), (events[2].id, false)]);
    assert_eq!(relay.run_once().await.unwrap(), RelayPass { published: 2 });
    receive_in_order(&mut *sub, &events).await;
    assert!(outbox(d.db()).await.iter().all(|(_, published)| *published));
}

macro_rules! outbox_contract {
    ($name:ident, $db:ty, $bus:ty) => {
        mod $name {
            use super::*;
            outbox_contract!(@tests $db, $bus;
                relay_publishes_committed_events_in_order,
                streams_number_events_in_commit_order,
                rolled_back_transaction_leaves_no_event,
                unroutable_events_wait_for_a_later_pass,
                failure_mid_batch_keeps_order,
            );
        }
    };
    (@tests $db:ty, $bus:ty; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                super::$check::<$db, $bus>().await;
            }
        )*
    };
}

outbox_contract!(sqlite_in_process, TestSqlite, InProcess);
outbox_contract!(sqlite_rabbitmq, TestSqlite, Rabbit);
outbox_contract!(postgres_in_process, TestPostgres, InProcess);
outbox_contract!(postgres_rabbitmq, TestPostgres, Rabbit);

/// Rows written before events lost their text (outbox migration 3) lose it on upgrade: a project's
/// name and description, a task's text, a comment's body, a file name; ids and what changed stay.
async fn text_written_before_the_rule_leaves_the_outbox<D: DbFixture>() {
    const CANARY: &str = "canary-old-outbox";
    let d = D::new().await;
    let old = platform::db::Migrations {
        service: platform::outbox::MIGRATIONS.service,
        sqlite: &platform::outbox::MIGRATIONS.sqlite[..2],
        postgres: &platform::outbox::MIGRATIONS.postgres[..2],
    };
    d.db().migrate(&old).await.unwrap();
    d.db().migrate(&THINGS).await.unwrap();
    let project = Uuid::now_v7();
    let at = time::OffsetDateTime::now_utc();
    let old_events = vec![
        Event::new(
            "project.updated",
            project,
            None,
            at,
            serde_json::json!({"project_id": project, "fields": ["name"], "name": CANARY, "description": CANARY}),
        ),
        Event::new(
            "task.updated",
            project,
            None,
            at,
            serde_json::json!({"project_id": project, "fields": ["title"], "task": {"id": project, "status": "done",
                "title": CANARY, "description": CANARY, "labels": [CANARY], "due_date": "2030-01-01"}}),
        ),
        Event::new(
            "comment.updated",
            project,
            None,
            at,
            serde_json::json!({"project_id": project, "comment_id": project, "comment": {"id": project, "body": CANARY}}),
        ),
        Event::new(
            "attachment.created",
            project,
            None,
            at,
            serde_json::json!({"project_id": project, "attachment_id": project, "filename": CANARY}),
        ),
    ];
    write(d.db(), 1, old_events, true).await.unwrap();
    d.db().migrate(&platform::outbox::MIGRATIONS).await.unwrap();
    let kept = platform::outbox::stream_events(d.db(), project, 0, 10).await.unwrap();
    assert_eq!(kept.len(), 4);
    for e in &kept {
        let wire = e.data.to_string();
        assert!(!wire.contains(CANARY), "{} kept its text: {wire}", e.event_type);
        assert_eq!(e.data["project_id"], project.to_string());
    }
    assert_eq!(kept[0].data["fields"], serde_json::json!(["name"]));
    assert_eq!(kept[1].data["task"]["status"], "done");
    assert_eq!(kept[2].data["comment"]["id"], project.to_string());
}

#[tokio::test]
async fn sqlite_text_written_before_the_rule_leaves_the_outbox() {
    text_written_before_the_rule_leaves_the_outbox::<TestSqlite>().await;
}

#[tokio::test]
async fn postgres_text_written_before_the_rule_leaves_the_outbox() {
    text_written_before_the_rule_leaves_the_outbox::<TestPostgres>().await;
}
