//! Where idempotency keys live: the `idempotency_keys` table of the service's database (its own
//! migration set, [`MIGRATIONS`]), one adapter per backend with the same semantics.
//!
//! A reservation is one upsert: it inserts the row, or takes over a row that expired (created
//! 24 h ago or more) or whose request's lease ended without an answer; otherwise it changes
//! nothing and the row that holds the key is read. The primary key makes concurrent reservations
//! of one key serialize, so exactly one wins. SQLite stores times as Unix microseconds (integers
//! compare in time order), PostgreSQL as `timestamptz`.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Reservation, Reserve, StoredAnswer};
use crate::db::{Migration, Migrations, PgDb, SqliteDb, StoreError, postgres, sqlite};

/// The idempotency table, for `Database::migrate` (a history of its own, `idempotency`). Its
/// first version is 5, the number issue 5's migrations were given, so it never meets another.
pub const MIGRATIONS: Migrations = Migrations {
    service: "idempotency",
    sqlite: &[Migration {
        version: 5,
        name: "idempotency_keys",
        sql: "CREATE TABLE idempotency_keys (
            key_hash BLOB PRIMARY KEY,
            user_id BLOB NOT NULL,
            fingerprint BLOB NOT NULL,
            token BLOB NOT NULL,
            created_at INTEGER NOT NULL,
            lease_until INTEGER,
            status INTEGER,
            headers TEXT,
            body BLOB
        );
        CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);",
    }],
    postgres: &[Migration {
        version: 5,
        name: "idempotency_keys",
        sql: "CREATE TABLE idempotency_keys (
            key_hash BYTEA PRIMARY KEY,
            user_id UUID NOT NULL,
            fingerprint BYTEA NOT NULL,
            token UUID NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            lease_until TIMESTAMPTZ,
            status INTEGER,
            headers TEXT,
            body BYTEA
        );
        CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);",
    }],
};

/// The storage port of [`super::Idempotency`].
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Reserves `r.key` for this request, or reports the live row that holds it.
    async fn reserve(&self, r: &Reserve) -> Result<Reservation, StoreError>;
    /// Keeps the answer of the reservation `token`; false when the reservation is no longer ours.
    async fn complete(&self, key: &[u8; 32], token: Uuid, answer: &StoredAnswer) -> Result<bool, StoreError>;
    /// Deletes the unanswered reservation `token`, so that the key can be used again at once.
    async fn release(&self, key: &[u8; 32], token: Uuid) -> Result<(), StoreError>;
    /// Deletes up to `limit` rows created at or before `expired`; returns how many.
    async fn purge(&self, expired: OffsetDateTime, limit: i64) -> Result<u64, StoreError>;
    /// The rows of `user` (GDPR export): when each was made, and its stored answer if any.
    async fn rows_of(&self, user: Uuid) -> Result<Vec<UserRow>, StoreError>;
    /// Deletes every row of `user` (GDPR erasure); returns how many went.
    async fn forget_user(&self, user: Uuid) -> Result<u64, StoreError>;
}

/// One stored key of a user, as the GDPR export shows it (the key itself is only a hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub created_at: OffsetDateTime,
    pub status: Option<u16>,
    pub body: Option<Vec<u8>>,
}

fn from_micros(m: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(m) * 1000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

const UPSERT_SET: &str = "ON CONFLICT (key_hash) DO UPDATE SET user_id = excluded.user_id, \
     fingerprint = excluded.fingerprint, token = excluded.token, created_at = excluded.created_at, \
     lease_until = excluded.lease_until, status = NULL, headers = NULL, body = NULL";

fn encode_headers(headers: &[(String, String)]) -> String {
    serde_json::to_string(headers).unwrap_or_else(|_| "[]".into())
}

fn held(fingerprint: Vec<u8>, status: Option<i64>, headers: Option<String>, body: Option<Vec<u8>>) -> Reservation {
    let mut fp = [0u8; 32];
    if fingerprint.len() == 32 {
        fp.copy_from_slice(&fingerprint);
    }
    let answer = status.and_then(|s| u16::try_from(s).ok()).map(|status| StoredAnswer {
        status,
        headers: headers.and_then(|h| serde_json::from_str(&h).ok()).unwrap_or_default(),
        body: body.unwrap_or_default(),
    });
    Reservation::Held { fingerprint: fp, answer }
}

fn micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

/// The SQLite adapter (the single writer serializes reservations).
#[derive(Debug, Clone)]
pub struct SqliteIdempotencyStore {
    db: SqliteDb,
}

impl SqliteIdempotencyStore {
    pub fn new(db: SqliteDb) -> Self {
        Self { db }
    }
}

#[async_trait]
impl IdempotencyStore for SqliteIdempotencyStore {
    async fn reserve(&self, r: &Reserve) -> Result<Reservation, StoreError> {
        let r = r.clone();
        self.db
            .write(move |tx| {
                let sql = format!(
                    "INSERT INTO idempotency_keys (key_hash, user_id, fingerprint, token, created_at, lease_until) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) {UPSERT_SET} \
                     WHERE idempotency_keys.created_at <= ?7 \
                     OR (idempotency_keys.status IS NULL AND idempotency_keys.lease_until <= ?5)"
                );
                let changed = tx
                    .prepare_cached(&sql)
                    .and_then(|mut stmt| {
                        stmt.execute(rusqlite::params![
                            &r.key[..],
                            r.user_id,
                            &r.fingerprint[..],
                            r.token,
                            micros(r.now),
                            micros(r.lease_until),
                            micros(r.expired_at_or_before),
                        ])
                    })
                    .map_err(sqlite::map_err)?;
                if changed == 1 {
                    return Ok(Reservation::Reserved);
                }
                tx.query_row(
                    "SELECT fingerprint, status, headers, body FROM idempotency_keys WHERE key_hash = ?1",
                    [&r.key[..]],
                    |row| Ok(held(row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
                )
                .map_err(sqlite::map_err)
            })
            .await
    }

    async fn complete(&self, key: &[u8; 32], token: Uuid, answer: &StoredAnswer) -> Result<bool, StoreError> {
        let (key, answer) = (*key, answer.clone());
        self.db
            .write(move |tx| {
                tx.execute(
                    "UPDATE idempotency_keys SET status = ?3, headers = ?4, body = ?5, lease_until = NULL \
                     WHERE key_hash = ?1 AND token = ?2 AND status IS NULL",
                    rusqlite::params![&key[..], token, answer.status, encode_headers(&answer.headers), answer.body],
                )
                .map(|n| n == 1)
                .map_err(sqlite::map_err)
            })
            .await
    }

    async fn release(&self, key: &[u8; 32], token: Uuid) -> Result<(), StoreError> {
        let key = *key;
        self.db
            .write(move |tx| {
                tx.execute(
                    "DELETE FROM idempotency_keys WHERE key_hash = ?1 AND token = ?2 AND status IS NULL",
                    rusqlite::params![&key[..], token],
                )
                .map_err(sqlite::map_err)?;
                Ok(())
            })
            .await
    }

    async fn purge(&self, expired: OffsetDateTime, limit: i64) -> Result<u64, StoreError> {
        self.db
            .write(move |tx| {
                tx.execute(
                    "DELETE FROM idempotency_keys WHERE key_hash IN \
                     (SELECT key_hash FROM idempotency_keys WHERE created_at <= ?1 LIMIT ?2)",
                    rusqlite::params![micros(expired), limit],
                )
                .map(|n| n as u64)
                .map_err(sqlite::map_err)
            })
            .await
    }

    async fn rows_of(&self, user: Uuid) -> Result<Vec<UserRow>, StoreError> {
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT created_at, status, body FROM idempotency_keys WHERE user_id = ?1 ORDER BY created_at",
                )?;
                let rows = stmt.query_map([user], |r| {
                    let status: Option<i64> = r.get(1)?;
                    Ok(UserRow {
                        created_at: from_micros(r.get(0)?),
                        status: status.and_then(|s| u16::try_from(s).ok()),
                        body: r.get(2)?,
                    })
                })?;
                rows.collect()
            })
            .await
    }

    async fn forget_user(&self, user: Uuid) -> Result<u64, StoreError> {
        self.db
            .write(move |tx| {
                tx.execute("DELETE FROM idempotency_keys WHERE user_id = ?1", [user])
                    .map(|n| n as u64)
                    .map_err(sqlite::map_err)
            })
            .await
    }
}

/// The PostgreSQL adapter: `INSERT … ON CONFLICT DO UPDATE … WHERE` makes a second reservation
/// of one key wait for the first to commit, then see its row.
#[derive(Debug, Clone)]
pub struct PgIdempotencyStore {
    db: PgDb,
}

impl PgIdempotencyStore {
    pub fn new(db: PgDb) -> Self {
        Self { db }
    }
}

#[async_trait]
impl IdempotencyStore for PgIdempotencyStore {
    async fn reserve(&self, r: &Reserve) -> Result<Reservation, StoreError> {
        let client = self.db.client().await?;
        let sql = format!(
            "INSERT INTO idempotency_keys (key_hash, user_id, fingerprint, token, created_at, lease_until) \
             VALUES ($1, $2, $3, $4, $5, $6) {UPSERT_SET} \
             WHERE idempotency_keys.created_at <= $7 \
             OR (idempotency_keys.status IS NULL AND idempotency_keys.lease_until <= $5)"
        );
        let upsert = client.prepare_cached(&sql).await.map_err(postgres::map_err)?;
        let select = client
            .prepare_cached("SELECT fingerprint, status, headers, body FROM idempotency_keys WHERE key_hash = $1")
            .await
            .map_err(postgres::map_err)?;
        let (key, fingerprint) = (&r.key[..], &r.fingerprint[..]);
        // The holding row may be released or purged between the two statements: then try again.
        for _ in 0..3 {
            let changed = client
                .execute(
                    &upsert,
                    &[&key, &r.user_id, &fingerprint, &r.token, &r.now, &r.lease_until, &r.expired_at_or_before],
                )
                .await
                .map_err(postgres::map_err)?;
            if changed == 1 {
                return Ok(Reservation::Reserved);
            }
            if let Some(row) = client.query_opt(&select, &[&key]).await.map_err(postgres::map_err)? {
                let status: Option<i32> = row.get(1);
                return Ok(held(row.get(0), status.map(i64::from), row.get(2), row.get(3)));
            }
        }
        Err(StoreError::Unavailable("idempotency key contended".into()))
    }

    async fn complete(&self, key: &[u8; 32], token: Uuid, answer: &StoredAnswer) -> Result<bool, StoreError> {
        let client = self.db.client().await?;
        let n = client
            .execute(
                "UPDATE idempotency_keys SET status = $3, headers = $4, body = $5, lease_until = NULL \
                 WHERE key_hash = $1 AND token = $2 AND status IS NULL",
                &[&&key[..], &token, &i32::from(answer.status), &encode_headers(&answer.headers), &answer.body],
            )
            .await
            .map_err(postgres::map_err)?;
        Ok(n == 1)
    }

    async fn release(&self, key: &[u8; 32], token: Uuid) -> Result<(), StoreError> {
        let client = self.db.client().await?;
        client
            .execute(
                "DELETE FROM idempotency_keys WHERE key_hash = $1 AND token = $2 AND status IS NULL",
                &[&&key[..], &token],
            )
            .await
            .map_err(postgres::map_err)?;
        Ok(())
    }

    async fn purge(&self, expired: OffsetDateTime, limit: i64) -> Result<u64, StoreError> {
        let client = self.db.client().await?;
        client
            .execute(
                "DELETE FROM idempotency_keys WHERE key_hash IN \
                 (SELECT key_hash FROM idempotency_keys WHERE created_at <= $1 LIMIT $2)",
                &[&expired, &limit],
            )
            .await
            .map_err(postgres::map_err)
    }

    async fn rows_of(&self, user: Uuid) -> Result<Vec<UserRow>, StoreError> {
        let client = self.db.client().await?;
        let rows = client
            .query(
                "SELECT created_at, status, body FROM idempotency_keys WHERE user_id = $1 ORDER BY created_at",
                &[&user],
            )
            .await
            .map_err(postgres::map_err)?;
        rows.iter()
            .map(|r| {
                let status: Option<i32> = r.try_get(1).map_err(postgres::map_err)?;
                Ok(UserRow {
                    created_at: r.try_get(0).map_err(postgres::map_err)?,
                    status: status.and_then(|s| u16::try_from(s).ok()),
                    body: r.try_get(2).map_err(postgres::map_err)?,
                })
            })
            .collect()
    }

    async fn forget_user(&self, user: Uuid) -> Result<u64, StoreError> {
        let client = self.db.client().await?;
        client.execute("DELETE FROM idempotency_keys WHERE user_id = $1", &[&user]).await.map_err(postgres::map_err)
    }
}
