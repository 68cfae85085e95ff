//! The auth service's storage ports, one per aggregate.

use async_trait::async_trait;
use platform::bus::Event;
use platform::db::StoreError;
use time::OffsetDateTime;
use uuid::Uuid;

#[async_trait]
pub trait CredentialStore: Send + Sync {
    async fn insert_credential(&self, user_id: Uuid, password_hash: &str, at: OffsetDateTime)
    -> Result<(), StoreError>;
    async fn password_hash(&self, user_id: Uuid) -> Result<String, StoreError>;
    /// Replaces the password hash, revokes every session of the user but `keep`, and records
    /// `event`, in one transaction; returns the revoked session ids.
    async fn change_password(
        &self,
        user_id: Uuid,
        password_hash: &str,
        keep: Uuid,
        at: OffsetDateTime,
        event: &Event,
    ) -> Result<Vec<Uuid>, StoreError>;
}

/// A login session: one refresh-token family.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: Uuid,
    pub user_id: Uuid,
    pub refresh_hash: [u8; 32],
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: OffsetDateTime,
    pub last_used_at: OffsetDateTime,
    /// The absolute end of the session, however often it is refreshed.
    pub expires_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

/// What a presented refresh token turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshLookup {
    /// The session's current token.
    Current(SessionRow),
    /// A token of this session that was already exchanged, at `used_at`.
    Used(SessionRow, OffsetDateTime),
    Unknown,
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores the session, its first refresh token and its login event in one transaction.
    async fn create_session(&self, session: &NewSession, event: &Event) -> Result<(), StoreError>;
    /// Records an event on its own (a failed login, say).
    async fn record_event(&self, event: &Event) -> Result<(), StoreError>;
    async fn find_refresh(&self, token_hash: [u8; 32]) -> Result<RefreshLookup, StoreError>;
    /// Exchanges `old` for `new` if `old` is still unused (compare-and-set) and the session is not
    /// revoked; returns false when another exchange won.
    async fn rotate_refresh(
        &self,
        session_id: Uuid,
        old: [u8; 32],
        new: [u8; 32],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// Revokes the sessions given (all of the user's when `only` is None) with `event`; returns
    /// the ids it revoked.
    async fn revoke_sessions(
        &self,
        user_id: Uuid,
        only: Option<Uuid>,
        now: OffsetDateTime,
        event: &Event,
    ) -> Result<Vec<Uuid>, StoreError>;
    /// The user's sessions that are neither revoked nor past their absolute end.
    async fn active_sessions(&self, user_id: Uuid, now: OffsetDateTime) -> Result<Vec<SessionRow>, StoreError>;
    async fn session(&self, id: Uuid) -> Result<SessionRow, StoreError>;
}

/// A stored signing key; `private_key` is PKCS#8 sealed with the key-encryption key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub kid: String,
    /// The one JOSE algorithm the key signs with.
    pub alg: String,
    pub private_key: Vec<u8>,
    /// The public JWK as JSON (public parameters only), for inspection.
    pub public_jwk: String,
    /// When it was made and published in the JWKS.
    pub created_at: OffsetDateTime,
    /// When it starts signing: later than `created_at` after a rotation, so that every replica
    /// and verifier has seen it in the JWKS first.
    pub active_from: OffsetDateTime,
    pub retired_at: Option<OffsetDateTime>,
}

#[async_trait]
pub trait SigningKeyStore: Send + Sync {
    /// Keys not retired, newest first.
    async fn active_keys(&self) -> Result<Vec<StoredKey>, StoreError>;
    /// Every key, retired ones too, newest first.
    async fn all_keys(&self) -> Result<Vec<StoredKey>, StoreError>;
    /// Inserts `key` and `event` in one transaction, but only if the newest key not retired is
    /// still `expected_newest` (None: there is none); returns false, changing nothing, when
    /// another rotation got there first. Concurrent calls are serialized, so of several replicas
    /// deciding to rotate at once exactly one does.
    async fn insert_key(
        &self,
        key: &StoredKey,
        expected_newest: Option<&str>,
        event: &Event,
    ) -> Result<bool, StoreError>;
    /// Marks the key retired at `at`, with `event`, unless it already is; returns whether it did.
    async fn retire_key(&self, kid: &str, at: OffsetDateTime, event: &Event) -> Result<bool, StoreError>;
}

/// Consecutive failed logins per account key; the database is the truth, so a cache outage never
/// lifts the limit.
#[async_trait]
pub trait LoginThrottleStore: Send + Sync {
    /// Until when the key is blocked, if it is.
    async fn blocked_until(&self, key: [u8; 32]) -> Result<Option<OffsetDateTime>, StoreError>;
    /// Counts one more failure and returns the new consecutive count; `block` maps that count to
    /// the end of the block.
    async fn record_failure(
        &self,
        key: [u8; 32],
        now: OffsetDateTime,
        block: fn(u32) -> time::Duration,
    ) -> Result<u32, StoreError>;
    /// Forgets the failures after a successful login.
    async fn clear_failures(&self, key: [u8; 32]) -> Result<(), StoreError>;
}

/// Everything the auth service stores.
pub trait AuthStore: CredentialStore + SessionStore + SigningKeyStore + LoginThrottleStore {}
impl<T: CredentialStore + SessionStore + SigningKeyStore + LoginThrottleStore> AuthStore for T {}
