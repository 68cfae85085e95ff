//! DTOs of the admin audit-log API (`GET /api/admin/audit-log`, `GET /api/admin/audit-log/verify`) and of
//! the usage statistics drawn from it (`GET /api/admin/stats`).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// One entry of the hash-chained audit log. Ids only: an erased user appears as their id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub seq: i64,
    pub event_id: Uuid,
    /// The event type, e.g. `project.created`.
    pub action: String,
    pub actor_id: Option<Uuid>,
    pub aggregate_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub data: serde_json::Value,
    /// Hex SHA-256 of the previous entry (64 zeros for the first).
    pub prev_hash: String,
    /// Hex SHA-256 over the canonical entry and `prev_hash`.
    pub hash: String,
    /// The id of the `audit.keys` key whose MAC the entry carries (null on entries written before
    /// the chain was keyed).
    #[serde(default)]
    pub key_id: Option<i64>,
    /// Hex HMAC-SHA-256 under that key of `trellis-audit-mac:v1:{key_id}:{seq}:{hash}`.
    #[serde(default)]
    pub mac: Option<String>,
}

/// A page of the audit log, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    pub next_cursor: Option<String>,
}

/// The first entry at which the chain breaks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BrokenEntry {
    pub seq: i64,
    /// Null when the entry is missing altogether.
    pub event_id: Option<Uuid>,
    /// `missing`, `hash_mismatch`, `prev_hash_mismatch`, or for the keyed chain `mac_mismatch`,
    /// `unknown_key` and `unkeyed` (an entry without a MAC).
    pub reason: String,
}

/// The first archive (an object of entries moved out of the table) that fails its check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BrokenArchive {
    /// The object's key in object storage, e.g. `audit/archive/00000000000000000001-00000000000000010000.jsonl.gz`.
    pub object_key: String,
    pub first_seq: i64,
    pub last_seq: i64,
    /// `object_missing`, `sha256_mismatch`, `unreadable`, `gap` (it does not start where the previous
    /// one ended), `prev_hash_mismatch` (it does not link to the previous one), `entry_broken` (an entry
    /// inside breaks the chain: see `first_broken`), `count_mismatch` or `last_hash_mismatch`.
    pub reason: String,
}

/// The result of checking the whole chain: the archives in object storage, oldest first, then the
/// entries still in the table, which must continue the newest archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditVerification {
    pub ok: bool,
    /// How many entries were checked (archived and in the table).
    pub checked: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_broken: Option<BrokenEntry>,
    /// docs/API.md's name for `first_broken.event_id`.
    pub first_bad_id: Option<Uuid>,
    /// How many archive objects were checked (0 when there are none, or they were skipped).
    #[serde(default)]
    pub archives_checked: u64,
    /// The archive that fails its check, if one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broken_archive: Option<BrokenArchive>,
    /// Whether every entry's MAC was checked under the configured `audit.keys` (always in the
    /// binary), not only the hash chain.
    #[serde(default)]
    pub keyed: bool,
}

/// The length of a statistics bucket: a UTC day, or an ISO week (Monday to Sunday, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StatsPeriod {
    Day,
    Week,
}

/// The counts of one period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatsBucket {
    /// The first day of the period (`YYYY-MM-DD`, UTC).
    #[schema(format = Date)]
    pub start: String,
    /// Accounts created (`user.created`: registrations, administrators' and the bootstrap's).
    pub signups: u64,
    /// Distinct users who caused at least one audited event in the period (logins, writes...).
    pub active_users: u64,
    pub projects_created: u64,
    pub tasks_created: u64,
    /// Task changes whose status became `done`.
    pub tasks_completed: u64,
}

/// The counts of the whole range: sums, except `active_users`, which counts distinct users over it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatsTotals {
    pub signups: u64,
    pub active_users: u64,
    pub projects_created: u64,
    pub tasks_created: u64,
    pub tasks_completed: u64,
}

/// Usage per period, counted from the audit log. Entries already archived to object storage
/// (older than the retention, a year by default) are no longer in the table and count as nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AdminStats {
    pub period: StatsPeriod,
    /// The first day of the first bucket (`YYYY-MM-DD`, UTC).
    #[schema(format = Date)]
    pub from: String,
    /// The last day of the last bucket, inclusive (`YYYY-MM-DD`, UTC).
    #[schema(format = Date)]
    pub to: String,
    pub buckets: Vec<StatsBucket>,
    pub totals: StatsTotals,
}
