//! The auth stores on PostgreSQL.

use async_trait::async_trait;
use platform::bus::Event;
use platform::db::postgres::map_err;
use platform::db::{PgDb, StoreError};
use platform::outbox;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ports::{CredentialStore, NewSession, SessionStore, SigningKeyStore, StoredKey};

pub struct PgAuthStore(pub PgDb);

#[async_trait]
impl CredentialStore for PgAuthStore {
    async fn insert_credential(&self, user_id: Uuid, hash: &str, at: OffsetDateTime) -> Result<(), StoreError> {
        let client = self.0.client().await?;
        client
            .execute(
                "INSERT INTO auth_credentials (user_id, password_hash, created_at, updated_at) VALUES ($1, $2, $3, $3)",
                &[&user_id, &hash, &at],
            )
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn password_hash(&self, user_id: Uuid) -> Result<String, StoreError> {
        let client = self.0.client().await?;
        let stmt = client
            .prepare_cached("SELECT password_hash FROM auth_credentials WHERE user_id = $1")
            .await
            .map_err(map_err)?;
        let row = client.query_opt(&stmt, &[&user_id]).await.map_err(map_err)?;
        row.map(|r| r.get(0)).ok_or(StoreError::NotFound)
    }
}

#[async_trait]
impl SessionStore for PgAuthStore {
    async fn create_session(&self, s: &NewSession, event: &Event) -> Result<(), StoreError> {
        let mut client = self.0.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let stmt = tx
            .prepare_cached(
                "INSERT INTO auth_sessions (id, user_id, refresh_hash, user_agent, ip, created_at, last_used_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6, $7)",
            )
            .await
            .map_err(map_err)?;
        let hash: &[u8] = &s.refresh_hash;
        tx.execute(&stmt, &[&s.id, &s.user_id, &hash, &s.user_agent, &s.ip, &s.created_at, &s.expires_at])
            .await
            .map_err(map_err)?;
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn record_event(&self, event: &Event) -> Result<(), StoreError> {
        let mut client = self.0.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)
    }
}

#[async_trait]
impl SigningKeyStore for PgAuthStore {
    async fn active_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let client = self.0.client().await?;
        let rows = client
            .query(
                "SELECT kid, private_key, created_at FROM auth_signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC",
                &[],
            )
            .await
            .map_err(map_err)?;
        Ok(rows.iter().map(|r| StoredKey { kid: r.get(0), private_key: r.get(1), created_at: r.get(2) }).collect())
    }

    async fn insert_key(&self, key: &StoredKey, n: &str, e: &str) -> Result<(), StoreError> {
        let client = self.0.client().await?;
        client
            .execute(
                "INSERT INTO auth_signing_keys (kid, alg, private_key, n, e, created_at) VALUES ($1, 'RS256', $2, $3, $4, $5)",
                &[&key.kid, &key.private_key, &n, &e, &key.created_at],
            )
            .await
            .map_err(map_err)?;
        Ok(())
    }
}
