//! The hash-chained audit log: every auth and domain event the worker consumes is appended to
//! `audit_log`, each entry chained to the previous one, and the chain can be verified.
//!
//! Canonical entry (stable, documented): the JSON object
//! `{"action", "actor_id", "aggregate_id", "data", "event_id", "occurred_at", "seq"}` with the keys of
//! every object (the event's data included) sorted, no whitespace, ids as lowercase hyphenated
//! UUIDs (`actor_id` null when none), `occurred_at` as `YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC and `seq`
//! a number. `hash = SHA-256(canonical bytes || previous hash bytes)`, the first entry's previous hash
//! being 32 zero bytes; both are stored in hex. Appends are serialized (PostgreSQL: a table lock held
//! to the commit; SQLite: its single writer), so there is one chain with `seq` 1, 2, 3, ...
//!
//! The log stores ids, never names or emails, so an erased user appears only as their id. Events
//! carry no user names or emails (docs/SECURITY.md EN-5), but some carry user-written text (a task's
//! title and description, a comment's body, a project's name, a file name): the entry keeps only
//! an allowlisted projection of the event's data (`audit_data`): ids (`id`, `*_id`, `*_ids`) and
//! the [`DESCRIPTORS`] that name what changed, nested objects kept with the same rule.
//!
//! The table is append-only (triggers: an UPDATE always fails, a DELETE only inside the archive's
//! transaction). Old entries leave it only through [`AuditLog::archive`] (`archive`): whole stretches
//! of the chain, oldest first, as gzip JSON Lines in object storage recorded in `audit_archives`;
//! verification then starts from the newest archive's last seq and hash, and
//! [`AuditLog::verify_archives`] checks the archived stretches themselves.
//!
//! Keyed chain (docs/SECURITY.md LO-4): the hash chain alone proves nothing against someone who can
//! write the database, since they can rewrite an entry and recompute every hash after it. So each
//! entry also carries `mac = HMAC-SHA-256(key, "trellis-audit-mac:v1:{key_id}:{seq}:{hash}")`
//! (hex) and the `key_id` of the [`AuditKeys`] key that made it: the keys are settings
//! (`audit.keys`, generated into `data/secrets.toml` all-in-one), never in the database. The
//! newest key signs, every configured key verifies (rotation). With keys configured, an entry
//! without a MAC is broken (`unkeyed`) unless its seq is at most `audit.unkeyed_until_seq` (the
//! entries written before an upgrade), one with an unknown key id is `unknown_key` and a wrong MAC
//! is `mac_mismatch`.

mod archive;

pub use archive::{ARCHIVE_BATCH, ARCHIVE_PREFIX, ArchiveReport, RETENTION, archive_key};

use std::collections::BTreeMap;
use std::sync::Arc;

use api::audit::{AuditEntry, AuditVerification, BrokenEntry};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use platform::bus::Event;
use platform::db::{Database, Migration, StoreError, postgres, sqlite};
use platform::objects::ObjectStore;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;
use uuid::Uuid;

pub const SQLITE_MIGRATION: Migration = Migration {
    version: 2,
    name: "audit_log",
    sql: "CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY, event_id BLOB NOT NULL UNIQUE, action TEXT NOT NULL, actor_id BLOB,
        aggregate_id BLOB NOT NULL, occurred_at TEXT NOT NULL, data TEXT NOT NULL,
        prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
    CREATE INDEX audit_log_actor ON audit_log (actor_id, seq);
    CREATE INDEX audit_log_action ON audit_log (action, seq);",
};

pub const POSTGRES_MIGRATION: Migration = Migration {
    version: 2,
    name: "audit_log",
    sql: "CREATE TABLE audit_log (
        seq BIGINT PRIMARY KEY, event_id UUID NOT NULL UNIQUE, action TEXT NOT NULL, actor_id UUID,
        aggregate_id UUID NOT NULL, occurred_at TEXT NOT NULL, data TEXT NOT NULL,
        prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
    CREATE INDEX audit_log_actor ON audit_log (actor_id, seq);
    CREATE INDEX audit_log_action ON audit_log (action, seq);",
};

/// Archives, the occurred_at index of the statistics, and the append-only guard: an UPDATE of
/// `audit_log` always fails; a DELETE only inside [`AuditLog::archive`]'s transaction (which puts
/// a row in `audit_archive_guard` and takes it out again) and only of entries a recorded archive
/// covers. `audit_archives` is append-only too.
pub const SQLITE_ARCHIVE_MIGRATION: Migration = Migration {
    version: 4,
    name: "audit_archive",
    sql: "CREATE TABLE audit_archives (
        first_seq INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL UNIQUE, count INTEGER NOT NULL,
        first_prev_hash TEXT NOT NULL, last_hash TEXT NOT NULL, object_key TEXT NOT NULL, sha256 TEXT NOT NULL,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')));
    CREATE TABLE audit_archive_guard (archiving INTEGER PRIMARY KEY CHECK (archiving = 1));
    CREATE INDEX audit_log_occurred ON audit_log (occurred_at);
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
    CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        WHEN NOT EXISTS (SELECT 1 FROM audit_archive_guard)
          OR OLD.seq > (SELECT coalesce(max(last_seq), 0) FROM audit_archives)
        BEGIN SELECT RAISE(ABORT, 'audit_log entries leave only through the archive'); END;
    CREATE TRIGGER audit_archives_no_update BEFORE UPDATE ON audit_archives
        BEGIN SELECT RAISE(ABORT, 'audit_archives is append-only'); END;
    CREATE TRIGGER audit_archives_no_delete BEFORE DELETE ON audit_archives
        BEGIN SELECT RAISE(ABORT, 'audit_archives is append-only'); END;",
};

/// Like [`SQLITE_ARCHIVE_MIGRATION`]; the archive's transaction sets `trellis.audit_archive` to `on`
/// (`set_config(..., true)`: for that transaction only). TRUNCATE is refused too.
pub const POSTGRES_ARCHIVE_MIGRATION: Migration = Migration {
    version: 4,
    name: "audit_archive",
    sql: "CREATE TABLE audit_archives (
        first_seq BIGINT PRIMARY KEY, last_seq BIGINT NOT NULL UNIQUE, count BIGINT NOT NULL,
        first_prev_hash TEXT NOT NULL, last_hash TEXT NOT NULL, object_key TEXT NOT NULL, sha256 TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now());
    CREATE INDEX audit_log_occurred ON audit_log (occurred_at);
    CREATE FUNCTION audit_log_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' AND current_setting('trellis.audit_archive', true) = 'on'
           AND OLD.seq <= (SELECT coalesce(max(last_seq), 0) FROM audit_archives) THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
    END $$;
    CREATE FUNCTION audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
    END $$;
    CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION audit_log_guard();
    CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse();
    CREATE TRIGGER audit_archives_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_archives
        FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse();",
};

/// The keyed chain's columns (see the module docs): the MAC and the id of the key that made it;
/// both null on entries written before.
pub const SQLITE_MAC_MIGRATION: Migration = Migration {
    version: 5,
    name: "audit_mac",
    sql: "ALTER TABLE audit_log ADD COLUMN key_id INTEGER; ALTER TABLE audit_log ADD COLUMN mac TEXT;",
};

/// Like [`SQLITE_MAC_MIGRATION`].
pub const POSTGRES_MAC_MIGRATION: Migration = Migration {
    version: 5,
    name: "audit_mac",
    sql: "ALTER TABLE audit_log ADD COLUMN key_id BIGINT; ALTER TABLE audit_log ADD COLUMN mac TEXT;",
};

/// The keys of the audit chain's MAC (setting `audit.keys`: `id:base64,...`, each key 32 bytes),
/// held by the processes and never by the database. The highest id signs new entries.
#[derive(Clone)]
pub struct AuditKeys {
    keys: BTreeMap<i64, [u8; 32]>,
    /// Entries up to this seq may lack a MAC (written before the chain was keyed).
    unkeyed_until: i64,
}

impl std::fmt::Debug for AuditKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKeys")
            .field("ids", &self.keys.keys().collect::<Vec<_>>())
            .field("unkeyed_until", &self.unkeyed_until)
            .finish()
    }
}

impl AuditKeys {
    /// Parses `id:base64` pairs separated by commas; ids are positive and distinct.
    pub fn from_config(spec: &str, unkeyed_until: i64) -> Result<Self, String> {
        let mut keys = BTreeMap::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (id, key) = part.split_once(':').ok_or("audit.keys: expected id:base64 pairs separated by commas")?;
            let id: i64 = id.trim().parse().map_err(|_| "audit.keys: a key id must be a positive number")?;
            if id < 1 {
                return Err("audit.keys: a key id must be a positive number".into());
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(key.trim())
                .map_err(|_| "audit.keys: a key must be base64")?;
            let key: [u8; 32] = bytes.try_into().map_err(|_| "audit.keys: a key must hold exactly 32 bytes")?;
            if keys.insert(id, key).is_some() {
                return Err(format!("audit.keys: key id {id} is given twice"));
            }
        }
        if keys.is_empty() {
            return Err("audit.keys: at least one key is needed".into());
        }
        Ok(Self { keys, unkeyed_until })
    }

    /// One key, id 1.
    pub fn single(key: [u8; 32]) -> Self {
        Self { keys: BTreeMap::from([(1, key)]), unkeyed_until: 0 }
    }

    /// The key that signs new entries: the highest id (there is always one: the constructors
    /// refuse an empty set).
    fn current(&self) -> Option<(i64, &[u8; 32])> {
        self.keys.last_key_value().map(|(id, key)| (*id, key))
    }

    fn mac(key: &[u8; 32], key_id: i64, seq: i64, hash: &str) -> String {
        hex::encode(platform::crypto::hmac_sha256(
            key,
            format!("trellis-audit-mac:v1:{key_id}:{seq}:{hash}").as_bytes(),
        ))
    }

    /// Signs `row` with the current key.
    fn sign(&self, row: &mut Row) {
        let Some((id, key)) = self.current() else { return };
        row.key_id = Some(id);
        row.mac = Some(Self::mac(key, id, row.seq, &row.hash));
    }

    /// Why `row`'s MAC does not hold, if it does not.
    fn check(&self, row: &Row) -> Option<&'static str> {
        match (row.key_id, row.mac.as_deref()) {
            (Some(id), Some(mac)) => match self.keys.get(&id) {
                None => Some("unknown_key"),
                Some(key) => {
                    let want = Self::mac(key, id, row.seq, &row.hash);
                    (!platform::crypto::constant_time_eq(want.as_bytes(), mac.as_bytes())).then_some("mac_mismatch")
                }
            },
            _ if row.seq <= self.unkeyed_until => None,
            _ => Some("unkeyed"),
        }
    }
}

/// Keys of an event's data, besides ids, that the log keeps: they say what happened, never
/// user-written text.
pub const DESCRIPTORS: &[&str] = &[
    "change",
    "changed",
    "fields",
    "role",
    "from",
    "to",
    "status",
    "scan",
    "reason",
    "method",
    "second_factor",
    "consecutive_failures",
    "tables",
    "kid",
    "column",
    "priority",
];

/// The part of an event's data the log keeps (see the module docs).
pub fn audit_data(data: &Value) -> Value {
    match data {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter_map(|(k, v)| {
                    let id = k == "id" || k.ends_with("_id") || k.ends_with("_ids");
                    match v {
                        _ if id || DESCRIPTORS.contains(&k.as_str()) => Some((k.clone(), v.clone())),
                        Value::Object(_) => {
                            let inner = audit_data(v);
                            inner.as_object().is_some_and(|m| !m.is_empty()).then(|| (k.clone(), inner))
                        }
                        _ => None,
                    }
                })
                .collect(),
        ),
        _ => Value::Object(serde_json::Map::new()),
    }
}

const TIME: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
const GENESIS: [u8; 32] = [0; 32];
pub(crate) const COLUMNS: &str =
    "seq, event_id, action, actor_id, aggregate_id, occurred_at, data, prev_hash, hash, key_id, mac";

/// `occurred_at` as stored and hashed: UTC, microseconds, sortable as text.
pub fn format_time(t: OffsetDateTime) -> Result<String, StoreError> {
    t.to_offset(time::UtcOffset::UTC).format(TIME).map_err(|e| StoreError::Internal(e.to_string()))
}

/// An entry as stored (strings exactly as hashed).
#[derive(Debug, Clone)]
pub(crate) struct Row {
    seq: i64,
    event_id: Uuid,
    action: String,
    actor_id: Option<Uuid>,
    aggregate_id: Uuid,
    occurred_at: String,
    data: String,
    prev_hash: String,
    hash: String,
    key_id: Option<i64>,
    mac: Option<String>,
}

impl Row {
    fn canonical(&self) -> String {
        // Unparseable stored data still hashes (as a string), so tampering shows as a mismatch.
        let data = serde_json::from_str(&self.data).unwrap_or_else(|_| Value::String(self.data.clone()));
        canonical(self.seq, self.event_id, &self.action, self.actor_id, self.aggregate_id, &self.occurred_at, &data)
    }

    fn into_entry(self) -> Result<AuditEntry, StoreError> {
        let occurred_at = OffsetDateTime::parse(&self.occurred_at, &time::format_description::well_known::Rfc3339)
            .map_err(|e| StoreError::Internal(format!("audit entry {}: {e}", self.seq)))?;
        let data = serde_json::from_str(&self.data).unwrap_or(Value::String(self.data));
        Ok(AuditEntry {
            seq: self.seq,
            event_id: self.event_id,
            action: self.action,
            actor_id: self.actor_id,
            aggregate_id: self.aggregate_id,
            occurred_at,
            data,
            prev_hash: self.prev_hash,
            hash: self.hash,
            key_id: self.key_id,
            mac: self.mac,
        })
    }
}

/// The canonical serialization of an entry (see the module docs).
pub fn canonical(
    seq: i64,
    event_id: Uuid,
    action: &str,
    actor_id: Option<Uuid>,
    aggregate_id: Uuid,
    occurred_at: &str,
    data: &Value,
) -> String {
    let entry = serde_json::json!({
        "seq": seq,
        "event_id": event_id.to_string(),
        "action": action,
        "actor_id": actor_id.map(|a| a.to_string()),
        "aggregate_id": aggregate_id.to_string(),
        "occurred_at": occurred_at,
        "data": data,
    });
    let mut out = String::new();
    write_sorted(&entry, &mut out);
    out
}

fn write_sorted(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(k) {
                    write_sorted(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_sorted(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// `SHA-256(canonical || previous hash)`, hex.
pub fn chain_hash(canonical: &str, prev: &[u8; 32]) -> String {
    let mut buf = Vec::with_capacity(canonical.len() + 32);
    buf.extend_from_slice(canonical.as_bytes());
    buf.extend_from_slice(prev);
    hex::encode(platform::crypto::sha256(&buf))
}

fn decode_hash(h: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    if let Ok(bytes) = hex::decode(h)
        && bytes.len() == 32
    {
        out.copy_from_slice(&bytes);
    }
    out
}

/// Where a stretch of the chain starts: the seq and hash of the entry before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Anchor {
    pub(crate) seq: i64,
    pub(crate) hash: String,
}

impl Anchor {
    pub(crate) fn genesis() -> Self {
        Anchor { seq: 0, hash: hex::encode(GENESIS) }
    }
}

/// Checks entries one after another: each must have the next seq, link to the previous hash and
/// hash to what it says.
pub(crate) struct ChainCheck {
    pub(crate) expected_seq: i64,
    pub(crate) prev: String,
    pub(crate) checked: u64,
    /// When given, every entry's MAC is checked too.
    keys: Option<Arc<AuditKeys>>,
}

impl ChainCheck {
    pub(crate) fn new(anchor: Anchor, keys: Option<Arc<AuditKeys>>) -> Self {
        ChainCheck { expected_seq: anchor.seq + 1, prev: anchor.hash, checked: 0, keys }
    }

    /// The entry breaks the chain (and how), or it continues it and becomes the new end.
    pub(crate) fn step(&mut self, row: &Row) -> Option<BrokenEntry> {
        let broken = |seq, event_id, reason: &str| Some(BrokenEntry { seq, event_id, reason: reason.to_string() });
        if row.seq != self.expected_seq {
            return broken(self.expected_seq, None, "missing");
        }
        if row.prev_hash != self.prev {
            return broken(row.seq, Some(row.event_id), "prev_hash_mismatch");
        }
        if chain_hash(&row.canonical(), &decode_hash(&self.prev)) != row.hash {
            return broken(row.seq, Some(row.event_id), "hash_mismatch");
        }
        if let Some(reason) = self.keys.as_ref().and_then(|k| k.check(row)) {
            return broken(row.seq, Some(row.event_id), reason);
        }
        self.checked += 1;
        self.expected_seq += 1;
        self.prev.clone_from(&row.hash);
        None
    }

    pub(crate) fn verification(&self, broken: Option<BrokenEntry>) -> AuditVerification {
        AuditVerification {
            ok: broken.is_none(),
            checked: self.checked,
            first_bad_id: broken.as_ref().and_then(|b| b.event_id),
            first_broken: broken,
            archives_checked: 0,
            broken_archive: None,
            keyed: self.keys.is_some(),
        }
    }
}

/// The entry that follows `last` (seq, hash) for `event`.
fn next_row(event: &Event, last: Option<(i64, String)>, keys: Option<&AuditKeys>) -> Result<Row, StoreError> {
    let (seq, prev) = match last {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, hex::encode(GENESIS)),
    };
    let occurred_at = format_time(event.occurred_at)?;
    let mut data = String::new();
    write_sorted(&audit_data(&event.data), &mut data);
    let mut row = Row {
        seq,
        event_id: event.id,
        action: event.event_type.clone(),
        actor_id: event.actor_id,
        aggregate_id: event.aggregate_id,
        occurred_at,
        data,
        prev_hash: prev,
        hash: String::new(),
        key_id: None,
        mac: None,
    };
    row.hash = chain_hash(&row.canonical(), &decode_hash(&row.prev_hash));
    if let Some(keys) = keys {
        keys.sign(&mut row);
    }
    Ok(row)
}

/// Appends `event` inside the caller's SQLite transaction (the single writer serializes appends).
pub(crate) fn append_sqlite(
    tx: &rusqlite::Transaction<'_>,
    event: &Event,
    keys: Option<&AuditKeys>,
) -> Result<(), StoreError> {
    let last = tx
        .query_row("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .map(Some)
        .or_else(|e| if e == rusqlite::Error::QueryReturnedNoRows { Ok(None) } else { Err(e) })
        .map_err(sqlite::map_err)?;
    let r = next_row(event, last, keys)?;
    tx.execute(
        &format!(
            "INSERT INTO audit_log ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
             ON CONFLICT DO NOTHING"
        ),
        rusqlite::params![
            r.seq,
            r.event_id,
            r.action,
            r.actor_id,
            r.aggregate_id,
            r.occurred_at,
            r.data,
            r.prev_hash,
            r.hash,
            r.key_id,
            r.mac
        ],
    )
    .map_err(sqlite::map_err)?;
    Ok(())
}

/// Appends `event` inside the caller's PostgreSQL transaction, holding the table lock to the commit.
pub(crate) async fn append_postgres(
    tx: &deadpool_postgres::Transaction<'_>,
    event: &Event,
    keys: Option<&AuditKeys>,
) -> Result<(), StoreError> {
    // Readers are not blocked; concurrent appenders wait for our commit, so the chain is single.
    tx.batch_execute("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE").await.map_err(postgres::map_err)?;
    let last = tx
        .query_opt("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1", &[])
        .await
        .map_err(postgres::map_err)?
        .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)));
    let r = next_row(event, last, keys)?;
    tx.execute(
        &format!(
            "INSERT INTO audit_log ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT DO NOTHING"
        ),
        &[
            &r.seq,
            &r.event_id,
            &r.action,
            &r.actor_id,
            &r.aggregate_id,
            &r.occurred_at,
            &r.data,
            &r.prev_hash,
            &r.hash,
            &r.key_id,
            &r.mac,
        ],
    )
    .await
    .map_err(postgres::map_err)?;
    Ok(())
}

/// Filters and page of `list`.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor_id: Option<Uuid>,
    pub action: Option<String>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    /// Entries with a smaller `seq` only (from a cursor).
    pub before: Option<i64>,
    pub limit: u32,
}

/// The opaque cursor after `seq`.
pub fn encode_cursor(seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("audit:{seq}"))
}

/// The `seq` a cursor points after, if it is one of ours.
pub fn decode_cursor(cursor: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    String::from_utf8(bytes).ok()?.strip_prefix("audit:")?.parse().ok()
}

pub(crate) fn sqlite_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        seq: r.get(0)?,
        event_id: r.get(1)?,
        action: r.get(2)?,
        actor_id: r.get(3)?,
        aggregate_id: r.get(4)?,
        occurred_at: r.get(5)?,
        data: r.get(6)?,
        prev_hash: r.get(7)?,
        hash: r.get(8)?,
        key_id: r.get(9)?,
        mac: r.get(10)?,
    })
}

pub(crate) fn pg_row(r: &tokio_postgres::Row) -> Row {
    Row {
        seq: r.get(0),
        event_id: r.get(1),
        action: r.get(2),
        actor_id: r.get(3),
        aggregate_id: r.get(4),
        occurred_at: r.get(5),
        data: r.get(6),
        prev_hash: r.get(7),
        hash: r.get(8),
        key_id: r.get(9),
        mac: r.get(10),
    }
}

/// Reading and checking the audit log.
#[derive(Clone)]
pub struct AuditLog {
    pub(crate) db: Database,
    /// The MAC keys: given, verification checks every entry's MAC (see the module docs).
    pub(crate) keys: Option<Arc<AuditKeys>>,
}

impl AuditLog {
    /// Verifies the plain hash chain only (no keys).
    pub fn new(db: Database) -> Self {
        Self { db, keys: None }
    }

    /// Verifies the chain and every entry's MAC under `keys`.
    pub fn keyed(db: Database, keys: Arc<AuditKeys>) -> Self {
        Self { db, keys: Some(keys) }
    }

    /// A page of entries, newest first, and the cursor of the next page.
    pub async fn list(&self, q: AuditQuery) -> Result<(Vec<AuditEntry>, Option<String>), StoreError> {
        let from = q.from.map(format_time).transpose()?;
        let to = q.to.map(format_time).transpose()?;
        let limit = i64::from(q.limit.clamp(1, 100));
        let fetch = limit + 1;
        let mut rows = match &self.db {
            Database::Sqlite(db) => {
                let (actor, action, before) = (q.actor_id, q.action.clone(), q.before);
                db.read(move |c| {
                    let mut st = c.prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM audit_log WHERE (?1 IS NULL OR actor_id = ?1) \
                             AND (?2 IS NULL OR action = ?2) AND (?3 IS NULL OR occurred_at >= ?3) \
                             AND (?4 IS NULL OR occurred_at <= ?4) AND (?5 IS NULL OR seq < ?5) \
                             ORDER BY seq DESC LIMIT ?6"
                    ))?;
                    st.query_map(rusqlite::params![actor, action, from, to, before, fetch], sqlite_row)?
                        .collect::<Result<Vec<_>, _>>()
                })
                .await?
            }
            Database::Postgres(db) => {
                let client = db.client().await?;
                db.query(
                    &client,
                    &format!(
                        "SELECT {COLUMNS} FROM audit_log WHERE ($1::uuid IS NULL OR actor_id = $1) \
                         AND ($2::text IS NULL OR action = $2) AND ($3::text IS NULL OR occurred_at >= $3) \
                         AND ($4::text IS NULL OR occurred_at <= $4) AND ($5::bigint IS NULL OR seq < $5) \
                         ORDER BY seq DESC LIMIT $6"
                    ),
                    &[&q.actor_id, &q.action, &from, &to, &q.before, &fetch],
                )
                .await?
                .iter()
                .map(pg_row)
                .collect()
            }
        };
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next = if more { rows.last().map(|r| encode_cursor(r.seq)) } else { None };
        let items = rows.into_iter().map(Row::into_entry).collect::<Result<Vec<_>, _>>()?;
        Ok((items, next))
    }

    /// Walks the entries still in the table in order, from the newest archive's anchor (its last
    /// seq and hash; seq 0 and the genesis hash when nothing was archived), and reports the first
    /// entry that breaks the chain. The archives themselves are [`AuditLog::verify_archives`]'.
    pub async fn verify(&self) -> Result<AuditVerification, StoreError> {
        let mut attempts = 0;
        loop {
            let anchor = self.anchor().await?;
            let v = self.verify_from(anchor.clone()).await?;
            attempts += 1;
            // An archive run that committed meanwhile took entries from under us: start again from
            // its anchor.
            if v.ok || attempts == 3 || self.anchor().await? == anchor {
                return Ok(v);
            }
        }
    }

    async fn verify_from(&self, anchor: Anchor) -> Result<AuditVerification, StoreError> {
        let mut chain = ChainCheck::new(anchor, self.keys.clone());
        loop {
            let batch = self.batch(chain.expected_seq - 1).await?;
            if batch.is_empty() {
                return Ok(chain.verification(None));
            }
            for row in &batch {
                if let Some(broken) = chain.step(row) {
                    return Ok(chain.verification(Some(broken)));
                }
            }
        }
    }

    /// The archives (when `objects` is given) and then the table: one verification of the whole chain.
    pub async fn verify_all(&self, objects: Option<&dyn ObjectStore>) -> Result<AuditVerification, StoreError> {
        let archived = match objects {
            Some(objects) => self.verify_archives(objects).await?,
            None => ChainCheck::new(Anchor::genesis(), self.keys.clone()).verification(None),
        };
        if !archived.ok {
            return Ok(archived);
        }
        let mut table = self.verify().await?;
        table.checked += archived.checked;
        table.archives_checked = archived.archives_checked;
        Ok(table)
    }

    /// The newest archive's last entry (seq and hash), where the table's chain continues.
    pub(crate) async fn anchor(&self) -> Result<Anchor, StoreError> {
        const SQL: &str = "SELECT last_seq, last_hash FROM audit_archives ORDER BY last_seq DESC LIMIT 1";
        let found = match &self.db {
            Database::Sqlite(db) => {
                db.read(|c| {
                    let mut st = c.prepare_cached(SQL)?;
                    let mut rows = st.query_map([], |r| Ok(Anchor { seq: r.get(0)?, hash: r.get(1)? }))?;
                    rows.next().transpose()
                })
                .await?
            }
            Database::Postgres(db) => {
                let client = db.client().await?;
                db.query_opt(&client, SQL, &[]).await?.map(|r| Anchor { seq: r.get(0), hash: r.get(1) })
            }
        };
        Ok(found.unwrap_or_else(Anchor::genesis))
    }

    /// Up to 1,000 entries after `after`, in order.
    async fn batch(&self, after: i64) -> Result<Vec<Row>, StoreError> {
        match &self.db {
            Database::Sqlite(db) => {
                db.read(move |c| {
                    let mut st = c.prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT 1000"
                    ))?;
                    st.query_map([after], sqlite_row)?.collect::<Result<Vec<_>, _>>()
                })
                .await
            }
            Database::Postgres(db) => {
                let client = db.client().await?;
                let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT 1000");
                Ok(db.query(&client, &sql, &[&after]).await?.iter().map(pg_row).collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn event(n: u8) -> Event {
        Event::new(
            "task.created",
            Uuid::from_bytes([n; 16]),
            None,
            OffsetDateTime::UNIX_EPOCH,
            serde_json::json!({"id": Uuid::from_bytes([n; 16])}),
        )
    }

    /// Three entries chained and signed under `keys` (or plain).
    fn chain(keys: Option<&AuditKeys>) -> Vec<Row> {
        let mut rows: Vec<Row> = Vec::new();
        for n in 1..=3 {
            let last = rows.last().map(|r| (r.seq, r.hash.clone()));
            rows.push(next_row(&event(n), last, keys).unwrap());
        }
        rows
    }

    fn check(rows: &[Row], keys: Option<AuditKeys>) -> Option<BrokenEntry> {
        let mut chain = ChainCheck::new(Anchor::genesis(), keys.map(Arc::new));
        rows.iter().find_map(|r| chain.step(r))
    }

    /// What an attacker with write access to the database can do: change an entry and recompute
    /// the plain hash chain from there on, keeping the key ids and MACs they cannot make.
    fn rewrite(rows: &mut [Row], at: usize) {
        rows[at].data = r#"{"id":"00000000-0000-0000-0000-000000000000"}"#.to_string();
        for i in at..rows.len() {
            if i > 0 {
                rows[i].prev_hash = rows[i - 1].hash.clone();
            }
            rows[i].hash = chain_hash(&rows[i].canonical(), &decode_hash(&rows[i].prev_hash));
        }
    }

    #[test]
    fn keys_parse_and_the_highest_id_signs() {
        let b64 = |b: u8| base64::engine::general_purpose::STANDARD.encode([b; 32]);
        let keys = AuditKeys::from_config(&format!("1:{}, 2:{}", b64(1), b64(2)), 0).unwrap();
        assert_eq!(keys.current().map(|c| c.0), Some(2));
        assert!(!format!("{keys:?}").contains(&b64(1)), "keys never show in Debug");
        for bad in ["", "1", "x:AAAA", &format!("0:{}", b64(1)), "1:AAAA", &format!("1:{0},1:{0}", b64(1))] {
            assert!(AuditKeys::from_config(bad, 0).is_err(), "{bad:?} is refused");
        }
    }

    #[test]
    fn a_keyed_chain_verifies_under_its_keys_and_after_rotation() {
        let old = AuditKeys::single([1; 32]);
        let rows = chain(Some(&old));
        assert!(rows.iter().all(|r| r.key_id == Some(1) && r.mac.is_some()));
        assert_eq!(check(&rows, Some(old.clone())), None);
        let b64 = |b: u8| base64::engine::general_purpose::STANDARD.encode([b; 32]);
        let rotated = AuditKeys::from_config(&format!("1:{},2:{}", b64(1), b64(2)), 0).unwrap();
        assert_eq!(check(&rows, Some(rotated.clone())), None, "old entries verify under the old key");
        let newer = chain(Some(&rotated));
        assert!(newer.iter().all(|r| r.key_id == Some(2)));
        assert_eq!(check(&newer, Some(AuditKeys::from_config(&format!("2:{}", b64(2)), 0).unwrap())), None);
        assert_eq!(check(&rows, Some(AuditKeys::single([9; 32]))).unwrap().reason, "mac_mismatch");
        let only_two = AuditKeys::from_config(&format!("2:{}", b64(2)), 0).unwrap();
        assert_eq!(check(&rows, Some(only_two)).unwrap().reason, "unknown_key");
    }

    #[test]
    fn a_rewritten_entry_with_a_recomputed_chain_fails_only_the_keyed_check() {
        let keys = AuditKeys::single([7; 32]);
        let mut rows = chain(Some(&keys));
        rewrite(&mut rows, 1);
        assert_eq!(check(&rows, None), None, "the plain chain is fooled by a recomputed chain");
        let broken = check(&rows, Some(keys.clone())).expect("the keyed chain is not");
        assert_eq!((broken.seq, broken.reason.as_str()), (2, "mac_mismatch"));
        // Dropping the MACs does not help either.
        let mut stripped = chain(Some(&keys));
        for r in &mut stripped {
            (r.key_id, r.mac) = (None, None);
        }
        assert_eq!(check(&stripped, Some(keys.clone())).unwrap().reason, "unkeyed");
    }

    #[test]
    fn entries_from_before_the_keys_pass_only_up_to_the_configured_seq() {
        let plain = chain(None);
        let mut keys = AuditKeys::single([3; 32]);
        assert_eq!(check(&plain, Some(keys.clone())).unwrap().seq, 1);
        keys.unkeyed_until = 2;
        let broken = check(&plain, Some(keys.clone())).unwrap();
        assert_eq!((broken.seq, broken.reason.as_str()), (3, "unkeyed"));
        keys.unkeyed_until = 3;
        assert_eq!(check(&plain, Some(keys)), None);
    }
}
