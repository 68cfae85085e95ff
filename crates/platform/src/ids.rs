//! Identifiers: time-ordered UUIDv7 for every entity (docs/API.md). Not secrets: see [`crate::crypto`].

use uuid::Uuid;

/// A new time-ordered id.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}
