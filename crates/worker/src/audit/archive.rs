//! Archiving old audit entries to object storage, and verifying the archives.
//!
//! An archive is one object `audit/archive/{first_seq:020}-{last_seq:020}.jsonl.gz`: gzip of one
//! JSON line per entry in seq order, each the whole entry as stored (`seq`, `event_id`, `action`,
//! `actor_id`, `aggregate_id`, `occurred_at`, `data`, `prev_hash`, `hash`), so the chain can be
//! recomputed from the object alone. Its record in `audit_archives` (first and last seq, count, the
//! hash it continues, its last hash, the key and the SHA-256 of the object) is written in the same
//! transaction that deletes those entries from the table. The object is written before that
//! transaction: a crash in between leaves an object without a record, which the next run writes
//! again under the same key; the records alone say what is archived, so there is never a hole.
//! The newest entry always stays in the table: appends chain to it.

use std::io::{Read, Write};
use std::time::Duration;

use api::audit::{AuditVerification, BrokenArchive, BrokenEntry};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use platform::db::{Database, StoreError, postgres, sqlite};
use platform::objects::{ObjectPath, ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Anchor, AuditLog, COLUMNS, ChainCheck, Row, format_time, pg_row, sqlite_row, write_sorted};

/// How long entries stay in the table before they are archived (docs/OPERATIONS.md: a year).
pub const RETENTION: Duration = Duration::from_secs(365 * 24 * 3600);
/// The most entries one archive object holds.
pub const ARCHIVE_BATCH: u32 = 10_000;
/// Where the archives are in object storage.
pub const ARCHIVE_PREFIX: &str = "audit/archive/";
/// The most bytes an archive may unpack to: a bound against a tampered object, far above what
/// 10,000 entries take.
const MAX_UNPACKED: u64 = 256 << 20;

/// The object key of the archive of entries `first_seq..=last_seq`.
pub fn archive_key(first_seq: i64, last_seq: i64) -> String {
    format!("{ARCHIVE_PREFIX}{first_seq:020}-{last_seq:020}.jsonl.gz")
}

/// What one [`AuditLog::archive`] run moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveReport {
    /// Archive objects written and recorded.
    pub archives: u64,
    /// Entries moved out of the table.
    pub entries: u64,
    pub object_keys: Vec<String>,
}

/// One line of an archive: an entry as stored, `data` as JSON.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    seq: i64,
    event_id: Uuid,
    action: String,
    actor_id: Option<Uuid>,
    aggregate_id: Uuid,
    occurred_at: String,
    data: Value,
    prev_hash: String,
    hash: String,
    /// The keyed chain's key id and MAC (absent on entries written before it was keyed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mac: Option<String>,
}

impl From<&Row> for Line {
    fn from(r: &Row) -> Self {
        Line {
            seq: r.seq,
            event_id: r.event_id,
            action: r.action.clone(),
            actor_id: r.actor_id,
            aggregate_id: r.aggregate_id,
            occurred_at: r.occurred_at.clone(),
            // As `Row::canonical` reads it, so the archived entry hashes the same.
            data: serde_json::from_str(&r.data).unwrap_or_else(|_| Value::String(r.data.clone())),
            prev_hash: r.prev_hash.clone(),
            hash: r.hash.clone(),
            key_id: r.key_id,
            mac: r.mac.clone(),
        }
    }
}

impl From<Line> for Row {
    fn from(l: Line) -> Self {
        let mut data = String::new();
        write_sorted(&l.data, &mut data);
        Row {
            seq: l.seq,
            event_id: l.event_id,
            action: l.action,
            actor_id: l.actor_id,
            aggregate_id: l.aggregate_id,
            occurred_at: l.occurred_at,
            data,
            prev_hash: l.prev_hash,
            hash: l.hash,
            key_id: l.key_id,
            mac: l.mac,
        }
    }
}

/// A row of `audit_archives`.
#[derive(Debug, Clone)]
struct Record {
    first_seq: i64,
    last_seq: i64,
    count: i64,
    first_prev_hash: String,
    last_hash: String,
    object_key: String,
    sha256: String,
}

const RECORD_COLUMNS: &str = "first_seq, last_seq, count, first_prev_hash, last_hash, object_key, sha256";

fn object_err(e: object_store::Error) -> StoreError {
    StoreError::Unavailable(format!("object storage: {e}"))
}

/// The entries of `r` were not all there to delete (the transaction rolls back).
fn lost(r: &Record, n: u64) -> StoreError {
    StoreError::Internal(format!(
        "archiving seq {}..={}: {n} entries deleted, {} expected",
        r.first_seq, r.last_seq, r.count
    ))
}

/// The entries as gzip JSON Lines.
fn pack(rows: &[Row]) -> Result<Vec<u8>, StoreError> {
    let internal = |e: std::io::Error| StoreError::Internal(format!("packing an audit archive: {e}"));
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    for row in rows {
        serde_json::to_writer(&mut gz, &Line::from(row)).map_err(|e| StoreError::Internal(e.to_string()))?;
        gz.write_all(b"\n").map_err(internal)?;
    }
    gz.finish().map_err(internal)
}

/// The entries of an archive object, or why it cannot be read.
fn unpack(bytes: &[u8]) -> Result<Vec<Row>, String> {
    let mut text = String::new();
    GzDecoder::new(bytes).take(MAX_UNPACKED).read_to_string(&mut text).map_err(|e| e.to_string())?;
    text.lines().map(|l| serde_json::from_str::<Line>(l).map(Row::from).map_err(|e| e.to_string())).collect()
}

impl AuditLog {
    /// Moves the entries that occurred before `cutoff` out of the table into object storage, oldest
    /// first, at most `batch` (1 to [`ARCHIVE_BATCH`]) per object, and stops at the first entry
    /// that is not older than `cutoff` (only a whole stretch of the chain leaves) and before the
    /// newest entry (appends chain to it). Each stretch is checked against the chain before it is
    /// written: a broken chain is an error and nothing from the break on is archived.
    pub async fn archive(
        &self,
        objects: &dyn ObjectStore,
        cutoff: OffsetDateTime,
        batch: u32,
    ) -> Result<ArchiveReport, StoreError> {
        let batch = batch.clamp(1, ARCHIVE_BATCH);
        let cutoff = format_time(cutoff)?;
        let mut report = ArchiveReport::default();
        loop {
            let anchor = self.anchor().await?;
            let rows: Vec<Row> =
                self.archivable(anchor.seq, batch).await?.into_iter().take_while(|r| r.occurred_at < cutoff).collect();
            let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
                return Ok(report);
            };
            let mut chain = ChainCheck::new(anchor.clone(), self.keys.clone());
            if let Some(b) = rows.iter().find_map(|r| chain.step(r)) {
                return Err(StoreError::Conflict(format!(
                    "the audit chain is broken at seq {} ({}); nothing from there on is archived",
                    b.seq, b.reason
                )));
            }
            let bytes = pack(&rows)?;
            let record = Record {
                first_seq: first.seq,
                last_seq: last.seq,
                count: rows.len() as i64,
                first_prev_hash: anchor.hash.clone(),
                last_hash: last.hash.clone(),
                object_key: archive_key(first.seq, last.seq),
                sha256: hex::encode(platform::crypto::sha256(&bytes)),
            };
            objects
                .put(&ObjectPath::from(record.object_key.as_str()), PutPayload::from(bytes))
                .await
                .map_err(object_err)?;
            self.commit_archive(anchor.seq, &record).await?;
            tracing::info!(first_seq = record.first_seq, last_seq = record.last_seq, key = %record.object_key,
                "audit entries archived");
            report.archives += 1;
            report.entries += rows.len() as u64;
            report.object_keys.push(record.object_key);
        }
    }

    /// Up to `limit` entries after `after`, in order, never the newest.
    async fn archivable(&self, after: i64, limit: u32) -> Result<Vec<Row>, StoreError> {
        let limit = i64::from(limit);
        match &self.db {
            Database::Sqlite(db) => {
                db.read(move |c| {
                    let mut st = c.prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM audit_log WHERE seq > ?1 \
                         AND seq < (SELECT max(seq) FROM audit_log) ORDER BY seq LIMIT ?2"
                    ))?;
                    st.query_map([after, limit], sqlite_row)?.collect::<Result<Vec<_>, _>>()
                })
                .await
            }
            Database::Postgres(db) => {
                let client = db.client().await?;
                let sql = format!(
                    "SELECT {COLUMNS} FROM audit_log WHERE seq > $1 \
                     AND seq < (SELECT max(seq) FROM audit_log) ORDER BY seq LIMIT $2"
                );
                Ok(db.query(&client, &sql, &[&after, &limit]).await?.iter().map(pg_row).collect())
            }
        }
    }

    /// Records the archive and deletes its entries in one transaction, provided no other run
    /// archived since `anchor_seq` was read.
    async fn commit_archive(&self, anchor_seq: i64, r: &Record) -> Result<(), StoreError> {
        let moved = || StoreError::Conflict("another archive run moved the audit log's anchor".into());
        let insert = format!("INSERT INTO audit_archives ({RECORD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)");
        match &self.db {
            Database::Sqlite(db) => {
                let (r, insert) = (r.clone(), insert.replace('$', "?"));
                db.write(move |tx| {
                    let current: i64 = tx
                        .query_row("SELECT coalesce(max(last_seq), 0) FROM audit_archives", [], |row| row.get(0))
                        .map_err(sqlite::map_err)?;
                    if current != anchor_seq {
                        return Err(moved());
                    }
                    tx.execute(
                        &insert,
                        rusqlite::params![
                            r.first_seq,
                            r.last_seq,
                            r.count,
                            r.first_prev_hash,
                            r.last_hash,
                            r.object_key,
                            r.sha256
                        ],
                    )
                    .map_err(sqlite::map_err)?;
                    // The delete trigger lets rows go only while the guard row exists: inside this
                    // closure's savepoint, never seen by another write.
                    tx.execute("INSERT INTO audit_archive_guard (archiving) VALUES (1)", [])
                        .map_err(sqlite::map_err)?;
                    let n = tx
                        .execute("DELETE FROM audit_log WHERE seq BETWEEN ?1 AND ?2", [r.first_seq, r.last_seq])
                        .map_err(sqlite::map_err)?;
                    tx.execute("DELETE FROM audit_archive_guard", []).map_err(sqlite::map_err)?;
                    if n as i64 != r.count {
                        return Err(lost(&r, n as u64));
                    }
                    Ok(())
                })
                .await
            }
            Database::Postgres(db) => {
                let mut client = db.client().await?;
                let tx = client.transaction().await.map_err(postgres::map_err)?;
                // The delete trigger lets rows go only with this setting on, for this transaction.
                tx.batch_execute(
                    "SELECT set_config('trellis.audit_archive', 'on', true); \
                     LOCK TABLE audit_archives IN SHARE ROW EXCLUSIVE MODE",
                )
                .await
                .map_err(postgres::map_err)?;
                let current: i64 = tx
                    .query_one("SELECT coalesce(max(last_seq), 0) FROM audit_archives", &[])
                    .await
                    .map_err(postgres::map_err)?
                    .get(0);
                if current != anchor_seq {
                    return Err(moved());
                }
                tx.execute(
                    &insert,
                    &[&r.first_seq, &r.last_seq, &r.count, &r.first_prev_hash, &r.last_hash, &r.object_key, &r.sha256],
                )
                .await
                .map_err(postgres::map_err)?;
                let n = tx
                    .execute("DELETE FROM audit_log WHERE seq BETWEEN $1 AND $2", &[&r.first_seq, &r.last_seq])
                    .await
                    .map_err(postgres::map_err)?;
                if n as i64 != r.count {
                    return Err(lost(r, n));
                }
                tx.commit().await.map_err(postgres::map_err)
            }
        }
    }

    /// Every archive record, oldest first.
    async fn records(&self) -> Result<Vec<Record>, StoreError> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM audit_archives ORDER BY first_seq");
        match &self.db {
            Database::Sqlite(db) => {
                db.read(move |c| {
                    let mut st = c.prepare_cached(&sql)?;
                    st.query_map([], |r| {
                        Ok(Record {
                            first_seq: r.get(0)?,
                            last_seq: r.get(1)?,
                            count: r.get(2)?,
                            first_prev_hash: r.get(3)?,
                            last_hash: r.get(4)?,
                            object_key: r.get(5)?,
                            sha256: r.get(6)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()
                })
                .await
            }
            Database::Postgres(db) => {
                let client = db.client().await?;
                Ok(db
                    .query(&client, &sql, &[])
                    .await?
                    .iter()
                    .map(|r| Record {
                        first_seq: r.get(0),
                        last_seq: r.get(1),
                        count: r.get(2),
                        first_prev_hash: r.get(3),
                        last_hash: r.get(4),
                        object_key: r.get(5),
                        sha256: r.get(6),
                    })
                    .collect())
            }
        }
    }

    /// Downloads every archive in order and checks it: its SHA-256 against its record, its
    /// entries' chain recomputed, that it starts where the previous one ended and links to its
    /// last hash, and that it ends on its record's last hash (where the table's chain continues:
    /// [`AuditLog::verify`]). Names the first archive that fails.
    pub async fn verify_archives(&self, objects: &dyn ObjectStore) -> Result<AuditVerification, StoreError> {
        let mut chain = ChainCheck::new(Anchor::genesis(), self.keys.clone());
        let mut archives_checked = 0;
        for rec in self.records().await? {
            let fail = |chain: &ChainCheck, reason: &str, entry: Option<BrokenEntry>| {
                let mut v = chain.verification(entry);
                v.ok = false;
                v.archives_checked = archives_checked;
                v.broken_archive = Some(BrokenArchive {
                    object_key: rec.object_key.clone(),
                    first_seq: rec.first_seq,
                    last_seq: rec.last_seq,
                    reason: reason.to_string(),
                });
                Ok(v)
            };
            if rec.first_seq != chain.expected_seq {
                return fail(&chain, "gap", None);
            }
            if rec.first_prev_hash != chain.prev {
                return fail(&chain, "prev_hash_mismatch", None);
            }
            let got = objects.get(&ObjectPath::from(rec.object_key.as_str())).await;
            let bytes = match got {
                Ok(got) => got.bytes().await,
                Err(e) => Err(e),
            };
            let bytes = match bytes {
                Ok(b) => b,
                Err(object_store::Error::NotFound { .. }) => return fail(&chain, "object_missing", None),
                Err(e) => return Err(object_err(e)),
            };
            if hex::encode(platform::crypto::sha256(&bytes)) != rec.sha256 {
                return fail(&chain, "sha256_mismatch", None);
            }
            let Ok(rows) = unpack(&bytes) else {
                return fail(&chain, "unreadable", None);
            };
            let before = chain.checked;
            if let Some(b) = rows.iter().find_map(|r| chain.step(r)) {
                return fail(&chain, "entry_broken", Some(b));
            }
            if chain.checked - before != rec.count as u64 || chain.expected_seq != rec.last_seq + 1 {
                return fail(&chain, "count_mismatch", None);
            }
            if chain.prev != rec.last_hash {
                return fail(&chain, "last_hash_mismatch", None);
            }
            archives_checked += 1;
        }
        let mut v = chain.verification(None);
        v.archives_checked = archives_checked;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_sort_by_seq() {
        assert_eq!(super::archive_key(1, 10_000), "audit/archive/00000000000000000001-00000000000000010000.jsonl.gz");
        assert!(super::archive_key(9, 10) < super::archive_key(11, 12));
    }
}
