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

#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores the session and its login event in one transaction.
    async fn create_session(&self, session: &NewSession, event: &Event) -> Result<(), StoreError>;
    /// Records an event on its own (a failed login, say).
    async fn record_event(&self, event: &Event) -> Result<(), StoreError>;
}

/// A stored signing key; `private_key` is sealed with the key-encryption key.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub kid: String,
    pub private_key: Vec<u8>,
    pub created_at: OffsetDateTime,
}

#[async_trait]
pub trait SigningKeyStore: Send + Sync {
    /// Keys not retired, newest first.
    async fn active_keys(&self) -> Result<Vec<StoredKey>, StoreError>;
    async fn insert_key(&self, key: &StoredKey, n: &str, e: &str) -> Result<(), StoreError>;
}

/// Everything the auth service stores.
pub trait AuthStore: CredentialStore + SessionStore + SigningKeyStore {}
impl<T: CredentialStore + SessionStore + SigningKeyStore> AuthStore for T {}
