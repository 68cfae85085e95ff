//! The auth stores on SQLite.

use async_trait::async_trait;
use platform::bus::Event;
use platform::db::sqlite::map_err;
use platform::db::{SqliteDb, StoreError};
use platform::outbox;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::ports::{
    CredentialStore, LoginThrottleStore, NewSession, RefreshLookup, SessionRow, SessionStore, SigningKeyStore,
    StoredKey,
};

pub struct SqliteAuthStore(pub SqliteDb);

fn ts(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn parse_ts(col: usize, raw: &str) -> rusqlite::Result<OffsetDateTime> {
    OffsetDateTime::parse(raw, &Rfc3339)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, Box::new(e)))
}

const SESSION_COLUMNS: &str =
    "s.id, s.user_id, s.user_agent, s.ip, s.created_at, s.last_used_at, s.expires_at, s.revoked_at";

/// Revokes, inside `tx`, the user's live sessions: only `only` if given, never `except`.
fn revoke_in(
    tx: &rusqlite::Transaction<'_>,
    user_id: Uuid,
    only: Option<Uuid>,
    except: Option<Uuid>,
    now: OffsetDateTime,
) -> Result<Vec<Uuid>, StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "UPDATE auth_sessions SET revoked_at = ?1 WHERE user_id = ?2 AND revoked_at IS NULL \
             AND (?3 IS NULL OR id = ?3) AND (?4 IS NULL OR id <> ?4) RETURNING id",
        )
        .map_err(map_err)?;
    let ids = stmt
        .query_map(rusqlite::params![ts(now), user_id, only, except], |r| r.get::<_, Uuid>(0))
        .map_err(map_err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(map_err)?;
    Ok(ids)
}

fn session_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRow> {
    let revoked: Option<String> = r.get(7)?;
    Ok(SessionRow {
        id: r.get(0)?,
        user_id: r.get(1)?,
        user_agent: r.get(2)?,
        ip: r.get(3)?,
        created_at: parse_ts(4, &r.get::<_, String>(4)?)?,
        last_used_at: parse_ts(5, &r.get::<_, String>(5)?)?,
        expires_at: parse_ts(6, &r.get::<_, String>(6)?)?,
        revoked_at: revoked.map(|t| parse_ts(7, &t)).transpose()?,
    })
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

    async fn change_password(
        &self,
        user_id: Uuid,
        hash: &str,
        keep: Uuid,
        at: OffsetDateTime,
        event: &Event,
    ) -> Result<Vec<Uuid>, StoreError> {
        let (hash, ev) = (hash.to_string(), event.clone());
        self.0
            .write(move |tx| {
                let changed = tx
                    .execute(
                        "UPDATE auth_credentials SET password_hash = ?1, updated_at = ?2 WHERE user_id = ?3",
                        rusqlite::params![hash, ts(at), user_id],
                    )
                    .map_err(map_err)?;
                if changed == 0 {
                    return Err(StoreError::NotFound);
                }
                let ids = revoke_in(tx, user_id, None, Some(keep), at)?;
                outbox::insert_sqlite(tx, &ev)?;
                Ok(ids)
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
                tx.execute(
                    "INSERT INTO auth_refresh_tokens (token_hash, session_id, issued_at) VALUES (?1, ?2, ?3)",
                    rusqlite::params![s.refresh_hash.to_vec(), s.id, ts(s.created_at)],
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

    async fn find_refresh(&self, token_hash: [u8; 32]) -> Result<RefreshLookup, StoreError> {
        let found = self
            .0
            .read(move |c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {SESSION_COLUMNS}, t.used_at FROM auth_refresh_tokens t \
                     JOIN auth_sessions s ON s.id = t.session_id WHERE t.token_hash = ?1"
                ))?;
                stmt.query_row([token_hash.to_vec()], |r| {
                    let used: Option<String> = r.get(8)?;
                    Ok((session_row(r)?, used.map(|u| parse_ts(8, &u)).transpose()?))
                })
            })
            .await;
        Ok(match found {
            Ok((session, None)) => RefreshLookup::Current(session),
            Ok((session, Some(used))) => RefreshLookup::Used(session, used),
            Err(StoreError::NotFound) => RefreshLookup::Unknown,
            Err(e) => return Err(e),
        })
    }

    async fn rotate_refresh(
        &self,
        session_id: Uuid,
        old: [u8; 32],
        new: [u8; 32],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.0
            .write(move |tx| {
                let won = tx
                    .execute(
                        "UPDATE auth_refresh_tokens SET used_at = ?1 WHERE token_hash = ?2 AND session_id = ?3 \
                         AND used_at IS NULL AND EXISTS \
                         (SELECT 1 FROM auth_sessions WHERE id = ?3 AND revoked_at IS NULL)",
                        rusqlite::params![ts(now), old.to_vec(), session_id],
                    )
                    .map_err(map_err)?;
                if won == 0 {
                    return Ok(false);
                }
                tx.execute(
                    "INSERT INTO auth_refresh_tokens (token_hash, session_id, issued_at) VALUES (?1, ?2, ?3)",
                    rusqlite::params![new.to_vec(), session_id, ts(now)],
                )
                .map_err(map_err)?;
                tx.execute(
                    "UPDATE auth_sessions SET last_used_at = ?1 WHERE id = ?2",
                    rusqlite::params![ts(now), session_id],
                )
                .map_err(map_err)?;
                Ok(true)
            })
            .await
    }

    async fn revoke_sessions(
        &self,
        user_id: Uuid,
        only: Option<Uuid>,
        now: OffsetDateTime,
        event: &Event,
    ) -> Result<Vec<Uuid>, StoreError> {
        let ev = event.clone();
        self.0
            .write(move |tx| {
                let ids = revoke_in(tx, user_id, only, None, now)?;
                outbox::insert_sqlite(tx, &ev)?;
                Ok(ids)
            })
            .await
    }

    async fn active_sessions(&self, user_id: Uuid, now: OffsetDateTime) -> Result<Vec<SessionRow>, StoreError> {
        self.0
            .read(move |c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {SESSION_COLUMNS} FROM auth_sessions s WHERE s.user_id = ?1 AND s.revoked_at IS NULL \
                     ORDER BY s.last_used_at DESC"
                ))?;
                let rows = stmt.query_map([user_id], session_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows.into_iter().filter(|s| s.expires_at > now).collect())
            })
            .await
    }

    async fn session(&self, id: Uuid) -> Result<SessionRow, StoreError> {
        self.0
            .read(move |c| {
                c.prepare_cached(&format!("SELECT {SESSION_COLUMNS} FROM auth_sessions s WHERE s.id = ?1"))?
                    .query_row([id], session_row)
            })
            .await
    }
}

const KEY_COLUMNS: &str = "kid, alg, private_key, public_jwk, created_at, active_from, retired_at";

fn key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredKey> {
    let retired: Option<String> = r.get(6)?;
    Ok(StoredKey {
        kid: r.get(0)?,
        alg: r.get(1)?,
        private_key: r.get(2)?,
        public_jwk: r.get(3)?,
        created_at: parse_ts(4, &r.get::<_, String>(4)?)?,
        active_from: parse_ts(5, &r.get::<_, String>(5)?)?,
        retired_at: retired.map(|t| parse_ts(6, &t)).transpose()?,
    })
}

/// Keys newest first. Sorted here, not in SQL: RFC 3339 text with varying fraction digits does
/// not sort as time.
fn keys_in(c: &rusqlite::Connection, only_active: bool) -> rusqlite::Result<Vec<StoredKey>> {
    let filter = if only_active { "WHERE retired_at IS NULL" } else { "" };
    let mut stmt = c.prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM auth_signing_keys {filter}"))?;
    let mut keys = stmt.query_map([], key_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    keys.sort_by(|a, b| (b.created_at, &b.kid).cmp(&(a.created_at, &a.kid)));
    Ok(keys)
}

#[async_trait]
impl SigningKeyStore for SqliteAuthStore {
    async fn active_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        self.0.read(|c| keys_in(c, true)).await
    }

    async fn all_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        self.0.read(|c| keys_in(c, false)).await
    }

    async fn insert_key(
        &self,
        key: &StoredKey,
        expected_newest: Option<&str>,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let (k, expected, ev) = (key.clone(), expected_newest.map(str::to_string), event.clone());
        // The single writer connection serializes this check-then-insert.
        self.0
            .write(move |tx| {
                let newest = keys_in(tx, true).map_err(map_err)?.into_iter().next().map(|k| k.kid);
                if newest != expected {
                    return Ok(false);
                }
                tx.execute(
                    &format!("INSERT INTO auth_signing_keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL)"),
                    rusqlite::params![k.kid, k.alg, k.private_key, k.public_jwk, ts(k.created_at), ts(k.active_from)],
                )
                .map_err(map_err)?;
                outbox::insert_sqlite(tx, &ev)?;
                Ok(true)
            })
            .await
    }

    async fn retire_key(&self, kid: &str, at: OffsetDateTime, event: &Event) -> Result<bool, StoreError> {
        let (kid, ev) = (kid.to_string(), event.clone());
        self.0
            .write(move |tx| {
                let changed = tx
                    .execute(
                        "UPDATE auth_signing_keys SET retired_at = ?1 WHERE kid = ?2 AND retired_at IS NULL",
                        rusqlite::params![ts(at), kid],
                    )
                    .map_err(map_err)?;
                if changed == 0 {
                    return Ok(false);
                }
                outbox::insert_sqlite(tx, &ev)?;
                Ok(true)
            })
            .await
    }
}

#[async_trait]
impl LoginThrottleStore for SqliteAuthStore {
    async fn blocked_until(&self, key: [u8; 32]) -> Result<Option<OffsetDateTime>, StoreError> {
        let found = self
            .0
            .read(move |c| {
                c.prepare_cached("SELECT blocked_until FROM auth_login_failures WHERE account_key = ?1")?
                    .query_row([key.to_vec()], |r| parse_ts(0, &r.get::<_, String>(0)?))
            })
            .await;
        match found {
            Ok(t) => Ok(Some(t)),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn record_failure(
        &self,
        key: [u8; 32],
        now: OffsetDateTime,
        block: fn(u32) -> time::Duration,
    ) -> Result<u32, StoreError> {
        self.0
            .write(move |tx| {
                let consecutive: u32 = tx
                    .query_row(
                        "INSERT INTO auth_login_failures (account_key, consecutive, blocked_until, last_failed_at) \
                         VALUES (?1, 1, ?2, ?2) ON CONFLICT (account_key) DO UPDATE \
                         SET consecutive = consecutive + 1, last_failed_at = ?2 RETURNING consecutive",
                        rusqlite::params![key.to_vec(), ts(now)],
                        |r| r.get(0),
                    )
                    .map_err(map_err)?;
                tx.execute(
                    "UPDATE auth_login_failures SET blocked_until = ?1 WHERE account_key = ?2",
                    rusqlite::params![ts(now + block(consecutive)), key.to_vec()],
                )
                .map_err(map_err)?;
                Ok(consecutive)
            })
            .await
    }

    async fn clear_failures(&self, key: [u8; 32]) -> Result<(), StoreError> {
        self.0
            .write(move |tx| {
                tx.execute("DELETE FROM auth_login_failures WHERE account_key = ?1", [key.to_vec()])
                    .map_err(map_err)?;
                Ok(())
            })
            .await
    }
}
