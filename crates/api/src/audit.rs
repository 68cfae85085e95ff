//! DTOs of the admin audit-log API (`GET /api/admin/audit-log`, `GET /api/admin/audit-log/verify`).

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
    /// `missing`, `hash_mismatch` or `prev_hash_mismatch`.
    pub reason: String,
}

/// The result of checking the whole chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditVerification {
    pub ok: bool,
    /// How many entries were checked.
    pub checked: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_broken: Option<BrokenEntry>,
    /// API.md's name for `first_broken.event_id`.
    pub first_bad_id: Option<Uuid>,
}
