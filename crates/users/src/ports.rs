//! The users service's storage port. The store sees personal data only as ciphertext, blind
//! indexes and tokens (`pii.rs`); sealing and opening happen in the service.

use api::users::{Role, UserStatus};
use async_trait::async_trait;
use platform::bus::Event;
use platform::db::StoreError;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::pii::SearchToken;

/// A row of the users table as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredUser {
    pub id: Uuid,
    /// `None` (like the other sealed fields and the data key) once the user is erased.
    pub email_index: Option<Vec<u8>>,
    pub email: Option<Vec<u8>>,
    pub name: Option<Vec<u8>>,
    pub preferences: Option<Vec<u8>>,
    pub data_key: Option<Vec<u8>>,
    pub key_version: u32,
    pub role: Role,
    pub status: UserStatus,
    pub email_verified: bool,
    pub mfa_enabled: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub erasure_started_at: Option<OffsetDateTime>,
    pub erased_at: Option<OffsetDateTime>,
}

/// What became of a conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOutcome {
    Updated,
    /// The stored row changed since it was read (its `updated_at` or key version differs);
    /// nothing was written.
    Stale,
    /// The update would leave no active administrator; nothing was written.
    LastAdmin,
}

/// A search over the users table: every token must be one of the user's (none: all users).
#[derive(Debug, Clone, Default)]
pub struct SearchFilter {
    pub tokens: Vec<SearchToken>,
    pub status: Option<UserStatus>,
    pub role: Option<Role>,
    /// Only these users (a non-admin's co-members); `None`: anyone.
    pub ids: Option<Vec<Uuid>>,
    /// Only users whose id is greater (keyset pagination by id, which is time-ordered).
    pub after: Option<Uuid>,
    pub limit: u32,
}

/// One event about a user from the outbox, for the export.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub id: Uuid,
    pub event_type: String,
    pub aggregate_id: Uuid,
    pub actor_id: Option<Uuid>,
    pub occurred_at: OffsetDateTime,
    pub data: serde_json::Value,
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts a user, their search tokens and the event in one transaction; `Conflict` when the
    /// email index is taken.
    async fn insert(&self, user: &StoredUser, tokens: &[SearchToken], event: &Event) -> Result<(), StoreError>;
    async fn get(&self, id: Uuid) -> Result<StoredUser, StoreError>;
    /// Looks a user up by the blind index of their email.
    async fn find_by_email_index(&self, index: &[u8]) -> Result<StoredUser, StoreError>;
    /// Writes the row's email (index and ciphertext), name, preferences, role, status,
    /// `email_verified` and `updated_at`, replacing the search tokens when `tokens` is given, with
    /// the events, in one transaction — if the stored row still has the `updated_at` and key
    /// version of `read` (optimistic concurrency: the ciphertexts were sealed with the key read).
    /// With `keep_an_admin`, it also makes sure another active administrator remains, holding
    /// the administrators' rows so that two concurrent demotions cannot both pass. `Conflict`
    /// when the new email index is taken.
    async fn update(
        &self,
        user: &StoredUser,
        read: &StoredUser,
        tokens: Option<&[SearchToken]>,
        keep_an_admin: bool,
        events: &[Event],
    ) -> Result<UpdateOutcome, StoreError>;
    /// How many users are active administrators.
    async fn active_admins(&self) -> Result<u64, StoreError>;
    /// Records whether the user has a confirmed second factor; `NotFound` for an unknown user.
    async fn set_mfa_enabled(&self, id: Uuid, enabled: bool, at: OffsetDateTime) -> Result<(), StoreError>;
    /// Deletes a user outright (only for a registration that could not complete).
    async fn delete(&self, id: Uuid) -> Result<(), StoreError>;
    /// Marks the email verified and records `event`, in one transaction, if it was not already;
    /// returns whether it changed. `NotFound` when there is no such user.
    async fn set_email_verified(&self, id: Uuid, at: OffsetDateTime, event: &Event) -> Result<bool, StoreError>;
    /// Users matching `filter`, in id order, at most `filter.limit`.
    async fn search(&self, filter: &SearchFilter) -> Result<Vec<StoredUser>, StoreError>;
    /// Up to `limit` users whose data key is wrapped by another version than `current`, in id
    /// order (erased users have no key and are skipped).
    async fn stale_keys(&self, current: u32, limit: u32) -> Result<Vec<StoredUser>, StoreError>;
    /// How many users still have a data key of another version than `current`.
    async fn count_stale_keys(&self, current: u32) -> Result<u64, StoreError>;
    /// Writes re-encrypted rows (new data key, key version and ciphertexts) in one transaction,
    /// each only if its stored key version and `updated_at` are still those of `read`; returns
    /// how many were written.
    async fn rekey(&self, rows: &[(StoredUser, StoredUser)]) -> Result<u64, StoreError>;
    /// Starts an erasure: status `deleted`, `erasure_started_at` set if it was not, the event
    /// written, in one transaction. Returns the row after the change. `Conflict` (nothing
    /// written) when the user is the last active administrator, decided inside the transaction
    /// with the administrators held, so that two concurrent erasures cannot both pass.
    async fn begin_erasure(&self, id: Uuid, at: OffsetDateTime, event: &Event) -> Result<StoredUser, StoreError>;
    /// Ends an erasure: the email index, every ciphertext and the data key destroyed, the search
    /// tokens deleted, `erased_at` set and the event written, in one transaction. Nothing
    /// happens (and `false` is returned) when the user was already erased.
    async fn finish_erasure(&self, id: Uuid, at: OffsetDateTime, event: &Event) -> Result<bool, StoreError>;
    /// Users whose erasure started and did not finish.
    async fn unfinished_erasures(&self) -> Result<Vec<Uuid>, StoreError>;
    /// Deletes up to `limit` rows of users whose erasure finished before `before` (they hold no
    /// personal data any more; nothing references them by foreign key but their search tokens,
    /// already gone); returns how many went (the `erased-users` job).
    async fn purge_erased(&self, before: OffsetDateTime, limit: i64) -> Result<u64, StoreError>;
    /// Writes an event alone (an admin's read of someone's personal data, an export).
    async fn record(&self, event: &Event) -> Result<(), StoreError>;
    /// How many search tokens the user has (for the export).
    async fn count_tokens(&self, id: Uuid) -> Result<u64, StoreError>;
    /// Outbox events about the user (aggregate) or by the user (actor), oldest first.
    async fn events_about(&self, id: Uuid) -> Result<Vec<EventRecord>, StoreError>;
    /// Encrypts the rows of the pre-encryption table `users_plaintext`, if there is one, into
    /// `users` with `seal`, and drops it, in one transaction; returns how many rows moved.
    async fn adopt_plaintext(&self, seal: &PlaintextSealer) -> Result<u64, StoreError>;
}

/// A plaintext row of `users_plaintext`: id, email, name, role, status, email_verified,
/// mfa_enabled, created_at, updated_at.
pub type PlaintextRow = (Uuid, String, String, Role, UserStatus, bool, bool, OffsetDateTime, OffsetDateTime);

/// Turns a plaintext row into an encrypted row and its tokens (the service's keys, lent to the
/// store for the one-time conversion).
pub type PlaintextSealer = dyn Fn(PlaintextRow) -> (StoredUser, Vec<SearchToken>) + Send + Sync;
