//! Identifiers: time-ordered UUIDv7 for every entity (API.md). Not secrets: see [`crate::crypto`].

use uuid::Uuid;

/// A new time-ordered id.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}
