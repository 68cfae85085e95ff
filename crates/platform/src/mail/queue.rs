//! The durable mail queue: mail (security notices first of all) stored in the sending service's
//! database and delivered by a background task, retried with backoff until delivered or a long
//! deadline, across restarts.
//!
//! [`MailQueue`] is itself a [`Mailer`]: `send` stores the message (sealed: recipient, subject and
//! body are personal data and may carry a single-use link) in `mail_queue` and wakes the
//! dispatcher ([`MailQueue::run`]), so a service hands it out where it handed out its transport
//! and every mail it sends becomes durable. `Ok` means stored, not delivered. The dispatcher takes
//! each due message with a compare-and-set on `due_at` (a lease of [`LEASE`], so of several
//! processes on one database one sends it), opens it, hands it to the transport, deletes it once
//! accepted, and otherwise puts it back with a delay doubling from one second to
//! [`QueueSettings::max_backoff`]; after [`QueueSettings::deadline`] (three days by default) it
//! gives up, logs an error and counts `trellis_mail_given_up_total`. A message the transport
//! refuses as invalid is dropped at once (retrying cannot help). Delivered mail is not kept. A
//! crash between the server's acceptance and the delete sends it again after the lease: at least
//! once, like any mail queue.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::{Notify, watch};
use uuid::Uuid;

use super::{Mail, MailError, Mailer};
use crate::crypto::SealingKey;
use crate::db::{Database, Migration, Migrations, StoreError, sqlite};

/// `mail_queue`, in the database of every service that sends mail (its own migration history).
pub const MIGRATIONS: Migrations = Migrations {
    service: "mail_queue",
    sqlite: &[Migration {
        version: 1,
        name: "mail_queue",
        sql: "CREATE TABLE mail_queue (
            id BLOB PRIMARY KEY, sealed BLOB NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
            due_at INTEGER NOT NULL, deadline_at INTEGER NOT NULL, created_at INTEGER NOT NULL);
        CREATE INDEX mail_queue_due ON mail_queue (due_at);",
    }],
    postgres: &[Migration {
        version: 1,
        name: "mail_queue",
        sql: "CREATE TABLE mail_queue (
            id UUID PRIMARY KEY, sealed BYTEA NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
            due_at BIGINT NOT NULL, deadline_at BIGINT NOT NULL, created_at BIGINT NOT NULL);
        CREATE INDEX mail_queue_due ON mail_queue (due_at);",
    }],
};

/// How long a dispatcher holds a message it is sending before another may take it.
pub const LEASE: Duration = Duration::from_secs(60);

/// How long the queue keeps trying, and how far apart at most.
#[derive(Debug, Clone, Copy)]
pub struct QueueSettings {
    /// After this long undelivered, a message is given up (logged at error level).
    pub deadline: Duration,
    /// The longest wait between two attempts (the wait doubles from one second).
    pub max_backoff: Duration,
    /// How often the dispatcher looks for due messages when nobody wakes it.
    pub poll: Duration,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(3 * 24 * 3600),
            max_backoff: Duration::from_secs(600),
            poll: Duration::from_secs(1),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    to: String,
    subject: String,
    text: String,
}

/// A stored message, still sealed.
struct Queued {
    id: Uuid,
    sealed: Vec<u8>,
    attempts: i32,
    due_at: i64,
    deadline_at: i64,
}

/// The durable queue in front of a transport (see the module docs).
pub struct MailQueue {
    db: Database,
    transport: Arc<dyn Mailer>,
    key: SealingKey,
    settings: QueueSettings,
    wake: Notify,
}

fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn now_ms() -> i64 {
    millis(OffsetDateTime::now_utc())
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn aad(id: Uuid) -> Vec<u8> {
    format!("mail_queue:{id}").into_bytes()
}

/// The wait before attempt `attempts + 1`: 1 s, 2 s, 4 s, ... at most `max`.
pub fn backoff(attempts: i32, max: Duration) -> Duration {
    let exp = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    Duration::from_secs(1u64 << exp).min(max)
}

impl MailQueue {
    /// A queue in `db` (migrated with [`MIGRATIONS`] by the caller) in front of `transport`; `key`
    /// (32 bytes) seals every stored message.
    pub fn new(
        db: Database,
        transport: Arc<dyn Mailer>,
        key: &[u8; 32],
        settings: QueueSettings,
    ) -> Result<Self, MailError> {
        let key = SealingKey::new(key).map_err(|e| MailError::Invalid(e.to_string()))?;
        Ok(Self { db, transport, key, settings, wake: Notify::new() })
    }

    /// Stores `mail` for delivery and wakes the dispatcher.
    pub async fn enqueue(&self, mail: &Mail) -> Result<Uuid, StoreError> {
        let id = crate::ids::new_id();
        let plain =
            serde_json::to_vec(&Sealed { to: mail.to.clone(), subject: mail.subject.clone(), text: mail.text.clone() })
                .map_err(|e| StoreError::Internal(e.to_string()))?;
        let sealed = self.key.seal(&plain, &aad(id));
        let now = now_ms();
        let deadline = now.saturating_add(ms(self.settings.deadline));
        const SQLITE: &str =
            "INSERT INTO mail_queue (id, sealed, due_at, deadline_at, created_at) VALUES (?1, ?2, ?3, ?4, ?3)";
        const PG: &str =
            "INSERT INTO mail_queue (id, sealed, due_at, deadline_at, created_at) VALUES ($1, $2, $3, $4, $3)";
        match &self.db {
            Database::Sqlite(db) => {
                db.write(move |tx| {
                    tx.execute(SQLITE, rusqlite::params![id, sealed, now, deadline]).map_err(sqlite::map_err)
                })
                .await?;
            }
            Database::Postgres(db) => {
                let client = db.client().await?;
                db.execute(&client, PG, &[&id, &sealed, &now, &deadline]).await?;
            }
        }
        metrics::counter!("trellis_mail_queued_total").increment(1);
        self.wake.notify_one();
        Ok(id)
    }

    /// How many messages wait (for tests and metrics).
    pub async fn pending(&self) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT count(*) FROM mail_queue";
        match &self.db {
            Database::Sqlite(db) => db.read(|c| c.query_row(SQL, [], |r| r.get(0))).await,
            Database::Postgres(db) => {
                let client = db.client().await?;
                let row = db.query_opt(&client, SQL, &[]).await?;
                Ok(row.map_or(0, |r| r.get(0)))
            }
        }
    }

    /// Up to 16 messages due now, oldest due first.
    async fn due(&self, now: i64) -> Result<Vec<Queued>, StoreError> {
        const SQLITE: &str = "SELECT id, sealed, attempts, due_at, deadline_at FROM mail_queue \
                              WHERE due_at <= ?1 ORDER BY due_at LIMIT 16";
        const PG: &str = "SELECT id, sealed, attempts, due_at, deadline_at FROM mail_queue \
                          WHERE due_at <= $1 ORDER BY due_at LIMIT 16";
        match &self.db {
            Database::Sqlite(db) => {
                db.read(move |c| {
                    let mut st = c.prepare_cached(SQLITE)?;
                    st.query_map([now], |r| {
                        Ok(Queued {
                            id: r.get(0)?,
                            sealed: r.get(1)?,
                            attempts: r.get(2)?,
                            due_at: r.get(3)?,
                            deadline_at: r.get(4)?,
                        })
                    })?
                    .collect()
                })
                .await
            }
            Database::Postgres(db) => {
                let client = db.client().await?;
                Ok(db
                    .query(&client, PG, &[&now])
                    .await?
                    .iter()
                    .map(|r| Queued {
                        id: r.get(0),
                        sealed: r.get(1),
                        attempts: r.get(2),
                        due_at: r.get(3),
                        deadline_at: r.get(4),
                    })
                    .collect())
            }
        }
    }

    /// Moves `id` from `from` (its `due_at` as read) to `to`, counting an attempt when `failed`;
    /// false when another dispatcher moved it first.
    async fn reschedule(&self, id: Uuid, from: i64, to: i64, failed: bool) -> Result<bool, StoreError> {
        let add = i32::from(failed);
        const SQLITE: &str =
            "UPDATE mail_queue SET due_at = ?3, attempts = attempts + ?4 WHERE id = ?1 AND due_at = ?2";
        const PG: &str = "UPDATE mail_queue SET due_at = $3, attempts = attempts + $4 WHERE id = $1 AND due_at = $2";
        let n = match &self.db {
            Database::Sqlite(db) => {
                db.write(move |tx| tx.execute(SQLITE, rusqlite::params![id, from, to, add]).map_err(sqlite::map_err))
                    .await?
            }
            Database::Postgres(db) => {
                let client = db.client().await?;
                usize::try_from(db.execute(&client, PG, &[&id, &from, &to, &add]).await?).unwrap_or(0)
            }
        };
        Ok(n == 1)
    }

    async fn delete(&self, id: Uuid) -> Result<(), StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                db.write(move |tx| tx.execute("DELETE FROM mail_queue WHERE id = ?1", [id]).map_err(sqlite::map_err))
                    .await?;
            }
            Database::Postgres(db) => {
                let client = db.client().await?;
                db.execute(&client, "DELETE FROM mail_queue WHERE id = $1", &[&id]).await?;
            }
        }
        Ok(())
    }

    /// One pass: sends every message due now. Returns how many were delivered.
    pub async fn deliver_due(&self) -> Result<usize, StoreError> {
        let mut delivered = 0;
        let now = now_ms();
        for q in self.due(now).await? {
            // Take it: whoever moves its due time first sends it.
            let leased = now.saturating_add(ms(LEASE));
            if !self.reschedule(q.id, q.due_at, leased, false).await? {
                continue;
            }
            let mail =
                match self.key.open(&q.sealed, &aad(q.id)).ok().and_then(|p| serde_json::from_slice::<Sealed>(&p).ok())
                {
                    Some(s) => Mail { to: s.to, subject: s.subject, text: s.text },
                    None => {
                        metrics::counter!("trellis_mail_given_up_total", "reason" => "unreadable").increment(1);
                        tracing::error!(mail_id = %q.id, "a queued mail cannot be opened (another key?); dropped");
                        self.delete(q.id).await?;
                        continue;
                    }
                };
            match self.transport.send(&mail).await {
                Ok(()) => {
                    self.delete(q.id).await?;
                    delivered += 1;
                    tracing::info!(mail_id = %q.id, attempts = q.attempts + 1, "queued mail delivered");
                }
                Err(e @ MailError::Invalid(_)) => {
                    metrics::counter!("trellis_mail_given_up_total", "reason" => "invalid").increment(1);
                    tracing::error!(mail_id = %q.id, error = %e, "queued mail refused as invalid; dropped");
                    self.delete(q.id).await?;
                }
                Err(e) => {
                    let now = now_ms();
                    if now >= q.deadline_at {
                        metrics::counter!("trellis_mail_given_up_total", "reason" => "deadline").increment(1);
                        tracing::error!(mail_id = %q.id, attempts = q.attempts + 1, error = %e,
                            "queued mail not delivered before its deadline; giving up");
                        self.delete(q.id).await?;
                    } else {
                        let wait = backoff(q.attempts, self.settings.max_backoff);
                        let next = now.saturating_add(ms(wait)).min(q.deadline_at);
                        tracing::warn!(mail_id = %q.id, attempts = q.attempts + 1, retry_in_ms = ms(wait), error = %e,
                            "queued mail not delivered; will retry");
                        self.reschedule(q.id, leased, next, true).await?;
                    }
                }
            }
        }
        Ok(delivered)
    }

    /// Delivers until `shutdown` fires: at once when a message is queued here, else every
    /// [`QueueSettings::poll`] (messages queued by other processes, retries that fell due).
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            if let Err(e) = self.deliver_due().await {
                tracing::warn!(error = %e, "the mail queue cannot be read; retrying");
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.settings.poll) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

#[async_trait]
impl Mailer for MailQueue {
    /// Stores the message (see [`MailQueue::enqueue`]): `Ok` once it is durable.
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        // A message the transport could never build is refused now rather than queued.
        super::parse_mailbox(&mail.to)?;
        self.enqueue(mail).await.map(|_| ()).map_err(|e| MailError::Unavailable(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let max = Duration::from_secs(600);
        let waits: Vec<u64> = (0..12).map(|a| backoff(a, max).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]);
        assert_eq!(backoff(i32::MAX, max), max);
        assert_eq!(backoff(-1, max).as_secs(), 1);
    }
}
