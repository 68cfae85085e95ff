//! The transactional outbox: a store writes its state change and the event in one transaction
//! (`insert_sqlite` / `insert_pg`), and the relay later publishes unsent rows to the bus in
//! order, marking them sent only after the bus confirmed them. A broker outage therefore never
//! fails a write and never loses an event. Several relays may run on PostgreSQL; a transaction-
//! scoped advisory lock lets one publish at a time, so order per aggregate holds.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use uuid::Uuid;

use crate::bus::{BusError, Event, EventBus};
use crate::db::{Database, Migration, Migrations, StoreError, postgres, sqlite};

pub const MIGRATIONS: Migrations = Migrations {
    service: "platform",
    sqlite: &[
        Migration {
            version: 1,
            name: "outbox",
            sql: "CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id BLOB NOT NULL UNIQUE,
            event_type TEXT NOT NULL,
            aggregate_id BLOB NOT NULL,
            occurred_at TEXT NOT NULL,
            actor_id BLOB,
            data TEXT NOT NULL,
            published_at TEXT
        );
        CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;",
        },
        SQLITE_STREAMS,
        SQLITE_NO_TEXT,
    ],
    postgres: &[
        Migration {
            version: 1,
            name: "outbox",
            sql: "CREATE TABLE outbox (
            seq BIGSERIAL PRIMARY KEY,
            id UUID NOT NULL UNIQUE,
            event_type TEXT NOT NULL,
            aggregate_id UUID NOT NULL,
            occurred_at TIMESTAMPTZ NOT NULL,
            actor_id UUID,
            data JSONB NOT NULL,
            published_at TIMESTAMPTZ
        );
        CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;",
        },
        POSTGRES_STREAMS,
        POSTGRES_NO_TEXT,
    ],
};

/// Streams: every event gets the next number of its stream (`Event::stream`) from
/// `outbox_streams`, in the transaction that writes it. Rows from before have no stream.
const SQLITE_STREAMS: Migration = Migration {
    version: 2,
    name: "outbox_streams",
    sql: "CREATE TABLE outbox_streams (stream_id BLOB PRIMARY KEY, last_seq INTEGER NOT NULL) WITHOUT ROWID;
        ALTER TABLE outbox ADD COLUMN stream_id BLOB;
        ALTER TABLE outbox ADD COLUMN stream_seq INTEGER;
        CREATE UNIQUE INDEX outbox_stream_seq ON outbox (stream_id, stream_seq);",
};

const POSTGRES_STREAMS: Migration = Migration {
    version: 2,
    name: "outbox_streams",
    sql: "CREATE TABLE outbox_streams (stream_id UUID PRIMARY KEY, last_seq BIGINT NOT NULL);
        ALTER TABLE outbox ADD COLUMN stream_id UUID, ADD COLUMN stream_seq BIGINT;
        CREATE UNIQUE INDEX outbox_stream_seq ON outbox (stream_id, stream_seq);",
};

/// Events carry no user-written text (ARCHITECTURE.md "What events may carry"); those written
/// before that rule did: a project's name and description, a task's title, description, labels
/// and due date, a comment's body, a file's name. This takes them out of the rows still kept, so
/// a live replay (`since`) or an export cannot show them, whoever wrote them and whatever became
/// of the text since. Only the projects service's events carried any.
const SQLITE_NO_TEXT: Migration = Migration {
    version: 3,
    name: "outbox_no_text",
    sql: "UPDATE outbox SET data = json_remove(data, '$.name', '$.description', '$.filename', '$.task.title', \
        '$.task.description', '$.task.labels', '$.task.due_date', '$.comment.body') \
        WHERE json_valid(data) AND (event_type LIKE 'project.%' OR event_type LIKE 'task.%' \
        OR event_type LIKE 'comment.%' OR event_type LIKE 'attachment.%');",
};

const POSTGRES_NO_TEXT: Migration = Migration {
    version: 3,
    name: "outbox_no_text",
    sql: "UPDATE outbox SET data = data - 'name' - 'description' - 'filename' #- '{task,title}' \
        #- '{task,description}' #- '{task,labels}' #- '{task,due_date}' #- '{comment,body}' \
        WHERE jsonb_typeof(data) = 'object' \
        AND split_part(event_type, '.', 1) IN ('project', 'task', 'comment', 'attachment');",
};

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Appends `event` inside the caller's SQLite transaction, as the next of its stream.
pub fn insert_sqlite(tx: &rusqlite::Transaction<'_>, event: &Event) -> Result<(), StoreError> {
    let stream = event.stream();
    let seq: i64 = tx
        .prepare_cached(
            "INSERT INTO outbox_streams (stream_id, last_seq) VALUES (?1, 1) \
             ON CONFLICT (stream_id) DO UPDATE SET last_seq = last_seq + 1 RETURNING last_seq",
        )
        .and_then(|mut stmt| stmt.query_row([stream], |r| r.get(0)))
        .map_err(sqlite::map_err)?;
    tx.prepare_cached(
        "INSERT INTO outbox (id, event_type, aggregate_id, occurred_at, actor_id, data, stream_id, stream_seq) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut stmt| {
        stmt.execute(rusqlite::params![
            event.id,
            event.event_type,
            event.aggregate_id,
            rfc3339(event.occurred_at),
            event.actor_id,
            event.data.to_string(),
            stream,
            seq
        ])
    })
    .map_err(sqlite::map_err)?;
    Ok(())
}

/// Appends `event` inside the caller's PostgreSQL transaction, as the next of its stream: one
/// statement. The stream's counter row stays locked to the commit, so a stream's numbers commit
/// in order (and its outbox rows are in that order too).
pub async fn insert_pg(tx: &deadpool_postgres::Transaction<'_>, event: &Event) -> Result<(), StoreError> {
    let stmt = tx
        .prepare_cached(
            "WITH s AS (INSERT INTO outbox_streams (stream_id, last_seq) VALUES ($7, 1) \
               ON CONFLICT (stream_id) DO UPDATE SET last_seq = outbox_streams.last_seq + 1 RETURNING last_seq) \
             INSERT INTO outbox (id, event_type, aggregate_id, occurred_at, actor_id, data, stream_id, stream_seq) \
             SELECT $1, $2, $3, $4, $5, $6, $7, last_seq FROM s",
        )
        .await
        .map_err(postgres::map_err)?;
    let stream = event.stream();
    tx.execute(
        &stmt,
        &[&event.id, &event.event_type, &event.aggregate_id, &event.occurred_at, &event.actor_id, &event.data, &stream],
    )
    .await
    .map_err(postgres::map_err)?;
    Ok(())
}

/// The columns every read of events selects, in the order the row mappers expect.
const EVENT_COLUMNS: &str = "seq, id, event_type, aggregate_id, occurred_at, actor_id, data, COALESCE(stream_seq, 0)";

fn sqlite_event(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, Event)> {
    let occurred: String = r.get(4)?;
    let data: String = r.get(6)?;
    Ok((
        r.get(0)?,
        Event {
            id: r.get(1)?,
            event_type: r.get(2)?,
            aggregate_id: r.get(3)?,
            occurred_at: time::OffsetDateTime::parse(&occurred, &time::format_description::well_known::Rfc3339)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
            actor_id: r.get(5)?,
            data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
            seq: r.get(7)?,
        },
    ))
}

fn pg_event(row: &tokio_postgres::Row) -> (i64, Event) {
    let event = Event {
        id: row.get(1),
        event_type: row.get(2),
        aggregate_id: row.get(3),
        occurred_at: row.get(4),
        actor_id: row.get(5),
        data: row.get(6),
        seq: row.get(7),
    };
    (row.get(0), event)
}

/// The events of `stream` numbered after `after`, in order, at most `limit` of them: what a live
/// client missed. Only what the outbox still holds (published rows are kept for a while, then
/// cleaned), so a caller must check the first number is `after + 1`.
pub async fn stream_events(db: &Database, stream: Uuid, after: i64, limit: i64) -> Result<Vec<Event>, StoreError> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM outbox WHERE stream_id = $1 AND stream_seq > $2 ORDER BY stream_seq LIMIT $3"
    );
    match db {
        Database::Sqlite(db) => {
            let sql = sql.replace('$', "?");
            db.read(move |c| {
                let mut stmt = c.prepare_cached(&sql)?;
                let rows = stmt.query_map(rusqlite::params![stream, after, limit], sqlite_event)?;
                rows.map(|r| r.map(|(_, e)| e)).collect()
            })
            .await
        }
        Database::Postgres(db) => {
            let client = db.client().await?;
            let rows = db.query(&client, &sql, &[&stream, &after, &limit]).await?;
            Ok(rows.iter().map(|r| pg_event(r).1).collect())
        }
    }
}

/// The number of the newest event of `stream` (0 before its first).
pub async fn stream_head(db: &Database, stream: Uuid) -> Result<i64, StoreError> {
    const SQL: &str = "SELECT last_seq FROM outbox_streams WHERE stream_id = $1";
    match db {
        Database::Sqlite(db) => db
            .read(move |c| {
                use rusqlite::OptionalExtension as _;
                c.prepare_cached(&SQL.replace('$', "?"))?.query_row([stream], |r| r.get(0)).optional()
            })
            .await
            .map(|n| n.unwrap_or(0)),
        Database::Postgres(db) => {
            let client = db.client().await?;
            Ok(db.query_opt(&client, SQL, &[&stream]).await?.map_or(0, |r| r.get(0)))
        }
    }
}

/// Deletes up to `limit` rows of `outbox` published before `before`, oldest first; returns how
/// many went (the `outbox` job). Unpublished rows are never touched; no other table is.
pub async fn purge_published(db: &Database, before: time::OffsetDateTime, limit: i64) -> Result<u64, StoreError> {
    match db {
        Database::Sqlite(db) => {
            // Stored as RFC 3339 text whose fractions vary in length: compared as time, not text.
            let before = before.unix_timestamp_nanos() as f64 / 1e9;
            db.write(move |tx| {
                tx.execute(
                    "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE published_at IS NOT NULL \
                     AND unixepoch(published_at, 'subsec') < ?1 ORDER BY seq LIMIT ?2)",
                    rusqlite::params![before, limit],
                )
                .map(|n| n as u64)
                .map_err(sqlite::map_err)
            })
            .await
        }
        Database::Postgres(db) => {
            let client = db.client().await?;
            db.execute(
                &client,
                "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE published_at < $1 ORDER BY seq LIMIT $2)",
                &[&before, &limit],
            )
            .await
        }
    }
}

/// The PostgreSQL advisory lock a relay holds while it publishes a batch (any fixed key; this
/// one is "outbox" in ASCII).
const RELAY_LOCK: i64 = 0x6f75_7462_6f78;

/// Publishes the outbox to the bus.
pub struct Relay {
    db: Database,
    bus: Arc<dyn EventBus>,
    wake: Arc<Notify>,
    batch: i64,
}

/// What one relay pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RelayPass {
    pub published: usize,
}

impl Relay {
    pub fn new(db: Database, bus: Arc<dyn EventBus>) -> Self {
        Self { db, bus, wake: Arc::new(Notify::new()), batch: 100 }
    }

    /// A handle that wakes the relay early (after a local write) instead of at its next poll.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Publishes `events` (rows `seqs`) as one batch; the seqs of the confirmed prefix.
    async fn publish(&self, seqs: &[i64], events: &[Event]) -> Vec<i64> {
        let (published, failure) = self.bus.publish_batch(events).await;
        if let (Some(e), Some(event)) = (failure, events.get(published)) {
            log_publish_failure(event.id, &e);
        }
        seqs[..published.min(seqs.len())].to_vec()
    }

    /// Publishes one batch of unsent events in order; stops at the first failure so order holds.
    pub async fn run_once(&self) -> Result<RelayPass, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                let batch = self.batch;
                let rows = db
                    .read(move |c| {
                        let sql = format!(
                            "SELECT {EVENT_COLUMNS} FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT ?1"
                        );
                        let mut stmt = c.prepare_cached(&sql)?;
                        let rows = stmt.query_map([batch], sqlite_event)?;
                        rows.collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .await?;
                let (seqs, events): (Vec<i64>, Vec<Event>) = rows.into_iter().unzip();
                let sent = self.publish(&seqs, &events).await;
                let n = sent.len();
                if n > 0 {
                    let now = rfc3339(time::OffsetDateTime::now_utc());
                    db.write(move |tx| {
                        let mut stmt = tx
                            .prepare_cached("UPDATE outbox SET published_at = ?1 WHERE seq = ?2")
                            .map_err(sqlite::map_err)?;
                        for seq in sent {
                            stmt.execute(rusqlite::params![now, seq]).map_err(sqlite::map_err)?;
                        }
                        Ok(())
                    })
                    .await?;
                }
                Ok(RelayPass { published: n })
            }
            Database::Postgres(db) => {
                let mut client = db.client().await?;
                let tx = client.transaction().await.map_err(postgres::map_err)?;
                // Several relays may run, but one publishes at a time: a second relay taking the
                // next rows while the first still publishes its batch would send later events of
                // an aggregate ahead of earlier ones. The others stand by (high availability).
                let leader: bool = tx
                    .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&RELAY_LOCK])
                    .await
                    .map_err(postgres::map_err)?
                    .get(0);
                if !leader {
                    tx.rollback().await.map_err(postgres::map_err)?;
                    return Ok(RelayPass { published: 0 });
                }
                let sql = format!(
                    "SELECT {EVENT_COLUMNS} FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1 \
                     FOR UPDATE SKIP LOCKED"
                );
                let rows = tx.query(&sql, &[&self.batch]).await.map_err(postgres::map_err)?;
                let (seqs, events): (Vec<i64>, Vec<Event>) = rows.iter().map(pg_event).unzip();
                let sent = self.publish(&seqs, &events).await;
                let n = sent.len();
                if n > 0 {
                    tx.execute("UPDATE outbox SET published_at = now() WHERE seq = ANY($1)", &[&sent])
                        .await
                        .map_err(postgres::map_err)?;
                }
                tx.commit().await.map_err(postgres::map_err)?;
                Ok(RelayPass { published: n })
            }
        }
    }

    /// Runs until `shutdown` fires: publishes whenever woken, and at least every `poll`.
    pub async fn run(self, poll: Duration, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let delay = match self.run_once().await {
                Ok(pass) if pass.published as i64 == self.batch => Duration::ZERO,
                Ok(_) => {
                    backoff = Duration::from_millis(100);
                    poll
                }
                Err(e) => {
                    tracing::warn!(error = %e, "outbox relay pass failed");
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    backoff
                }
            };
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }
}

fn log_publish_failure(id: Uuid, e: &BusError) {
    metrics::counter!("trellis_outbox_publish_failures_total").increment(1);
    tracing::warn!(event_id = %id, error = %e, "outbox publish failed; will retry");
}
