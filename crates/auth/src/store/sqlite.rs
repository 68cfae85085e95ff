//! The auth stores on SQLite.

use async_trait::async_trait;
use platform::bus::Event;
use platform::db::sqlite::map_err;
use platform::db::{SqliteDb, StoreError};
use platform::outbox;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::ports::{CredentialStore, NewSession, SessionStore, SigningKeyStore, StoredKey};

pub struct SqliteAuthStore(pub SqliteDb);

fn ts(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

#[async_trait]
impl CredentialStore for SqliteAuthStore {
    async fn insert_credential(&self, user_id: Uuid, hash: &str, at: OffsetDateTime) -> Result<(), StoreError> {
        let hash = hash.to_string();
        self.0
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO auth_credentials (user_id, password_hash, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
                    rusqlite::params![user_id, hash, ts(at)],
                )
                .map_err(map_err)?;
                Ok(())
            })
            .await
    }

    async fn password_hash(&self, user_id: Uuid) -> Result<String, StoreError> {
        self.0
            .read(move |c| {
                c.prepare_cached("SELECT password_hash FROM auth_credentials WHERE user_id = ?1")?
                    .query_row([user_id], |r| r.get(0))
            })
            .await
    }
}

#[async_trait]
impl SessionStore for SqliteAuthStore {
    async fn create_session(&self, s: &NewSession, event: &Event) -> Result<(), StoreError> {
        let (s, ev) = (s.clone(), event.clone());
        self.0
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO auth_sessions (id, user_id, refresh_hash, user_agent, ip, created_at, last_used_at, expires_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)",
                    rusqlite::params![s.id, s.user_id, s.refresh_hash.to_vec(), s.user_agent, s.ip, ts(s.created_at), ts(s.expires_at)],
                )
                .map_err(map_err)?;
                outbox::insert_sqlite(tx, &ev)
            })
            .await
    }

    async fn record_event(&self, event: &Event) -> Result<(), StoreError> {
        let ev = event.clone();
        self.0.write(move |tx| outbox::insert_sqlite(tx, &ev)).await
    }
}

#[async_trait]
impl SigningKeyStore for SqliteAuthStore {
    async fn active_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        self.0
            .read(|c| {
                let mut stmt = c.prepare_cached(
                    "SELECT kid, private_key, created_at FROM auth_signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC",
                )?;
                let rows = stmt.query_map([], |r| {
                    let created: String = r.get(2)?;
                    Ok(StoredKey {
                        kid: r.get(0)?,
                        private_key: r.get(1)?,
                        created_at: OffsetDateTime::parse(&created, &Rfc3339).unwrap_or(OffsetDateTime::UNIX_EPOCH),
                    })
                })?;
                rows.collect()
            })
            .await
    }

    async fn insert_key(&self, key: &StoredKey, n: &str, e: &str) -> Result<(), StoreError> {
        let (k, n, e) = (key.clone(), n.to_string(), e.to_string());
        self.0
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO auth_signing_keys (kid, alg, private_key, n, e, created_at) VALUES (?1, 'RS256', ?2, ?3, ?4, ?5)",
                    rusqlite::params![k.kid, k.private_key, n, e, ts(k.created_at)],
                )
                .map_err(map_err)?;
                Ok(())
            })
            .await
    }
}
