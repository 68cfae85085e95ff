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
    CredentialStore, EmailTokenInfo, EmailTokenPurpose, EmailTokenStore, Erasure, ErasureEvent, FailureCounter,
    FailureInfo, Failures, LoginThrottleStore, MfaChallenge, MfaChallengeInfo, MfaStore, NewEmailToken, NewSession,
    PERSONAL_DATA_TABLES, PasswordReset, PersonalDataStore, PersonalRows, RefreshLookup, RefreshTokenInfo,
    RetentionStore, SessionRow, SessionStore, SigningKeyStore, StoredKey, SubjectKeys, TotpInfo, TotpRow,
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
    "s.id, s.user_id, s.user_agent, s.ip, s.created_at, s.last_used_at, s.expires_at, s.revoked_at, s.amr";

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

/// Inserts, inside `tx`, a session and its first refresh token.
fn insert_session_in(tx: &rusqlite::Transaction<'_>, s: &NewSession) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO auth_sessions (id, user_id, refresh_hash, user_agent, ip, created_at, last_used_at, expires_at, \
         amr) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8)",
        rusqlite::params![
            s.id,
            s.user_id,
            s.refresh_hash.to_vec(),
            s.user_agent,
            s.ip,
            ts(s.created_at),
            ts(s.expires_at),
            s.amr.join(" ")
        ],
    )
    .map_err(map_err)?;
    tx.execute(
        "INSERT INTO auth_refresh_tokens (token_hash, session_id, issued_at) VALUES (?1, ?2, ?3)",
        rusqlite::params![s.refresh_hash.to_vec(), s.id, ts(s.created_at)],
    )
    .map_err(map_err)?;
    Ok(())
}

/// Spends, inside `tx`, every outstanding password-reset token of the user.
fn spend_reset_tokens_in(tx: &rusqlite::Transaction<'_>, user_id: Uuid, now: OffsetDateTime) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE auth_email_tokens SET used_at = ?1 WHERE user_id = ?2 AND purpose = 'reset_password' \
         AND used_at IS NULL",
    )
    .and_then(|mut stmt| stmt.execute(rusqlite::params![ts(now), user_id]))
    .map_err(map_err)?;
    Ok(())
}

/// The owner of a token of `purpose` that is unused and unexpired at `now`. Times are compared
/// here rather than in SQL: RFC 3339 text does not sort by time when fractions differ in length.
fn token_owner_in(
    c: &rusqlite::Connection,
    token_hash: [u8; 32],
    purpose: EmailTokenPurpose,
    now: OffsetDateTime,
) -> rusqlite::Result<Option<Uuid>> {
    let mut stmt = c.prepare_cached(
        "SELECT user_id, expires_at, used_at FROM auth_email_tokens WHERE token_hash = ?1 AND purpose = ?2",
    )?;
    let found = stmt.query_row(rusqlite::params![token_hash.to_vec(), purpose.as_str()], |r| {
        Ok((r.get::<_, Uuid>(0)?, parse_ts(1, &r.get::<_, String>(1)?)?, r.get::<_, Option<String>>(2)?))
    });
    match found {
        Ok((user_id, expires_at, None)) if expires_at > now => Ok(Some(user_id)),
        Ok(_) | Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
        Err(e) => Err(e),
    }
}

fn tokens_since_in(
    c: &rusqlite::Connection,
    user_id: Uuid,
    purpose: EmailTokenPurpose,
    since: OffsetDateTime,
) -> rusqlite::Result<u32> {
    let mut stmt = c.prepare_cached("SELECT created_at FROM auth_email_tokens WHERE user_id = ?1 AND purpose = ?2")?;
    let mut count = 0;
    for created in
        stmt.query_map(rusqlite::params![user_id, purpose.as_str()], |r| parse_ts(0, &r.get::<_, String>(0)?))?
    {
        if created? >= since {
            count += 1;
        }
    }
    Ok(count)
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
        amr: crate::ports::parse_amr(&r.get::<_, String>(8)?),
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
                spend_reset_tokens_in(tx, user_id, at)?;
                outbox::insert_sqlite(tx, &ev)?;
                Ok(ids)
            })
            .await
    }

    async fn replace_password_hash(
        &self,
        user_id: Uuid,
        old: &str,
        new: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let (old, new) = (old.to_string(), new.to_string());
        self.0
            .write(move |tx| {
                tx.execute(
                    "UPDATE auth_credentials SET password_hash = ?1, updated_at = ?2 WHERE user_id = ?3 AND password_hash = ?4",
                    rusqlite::params![new, ts(at), user_id, old],
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
                insert_session_in(tx, &s)?;
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
                    let used: Option<String> = r.get(9)?;
                    Ok((session_row(r)?, used.map(|u| parse_ts(9, &u)).transpose()?))
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
    async fn failures(&self, key: [u8; 32]) -> Result<Option<Failures>, StoreError> {
        let found = self
            .0
            .read(move |c| {
                c.prepare_cached("SELECT consecutive, blocked_until FROM auth_login_failures WHERE account_key = ?1")?
                    .query_row([key.to_vec()], |r| {
                        Ok(Failures { consecutive: r.get(0)?, blocked_until: parse_ts(1, &r.get::<_, String>(1)?)? })
                    })
            })
            .await;
        match found {
            Ok(f) => Ok(Some(f)),
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

fn opt_ts(col: usize, raw: Option<String>) -> rusqlite::Result<Option<OffsetDateTime>> {
    raw.map(|t| parse_ts(col, &t)).transpose()
}

#[async_trait]
impl MfaStore for SqliteAuthStore {
    async fn put_pending_totp(&self, user_id: Uuid, sealed: &[u8], at: OffsetDateTime) -> Result<(), StoreError> {
        let sealed = sealed.to_vec();
        self.0
            .write(move |tx| {
                let changed = tx
                    .execute(
                        "INSERT INTO auth_totp (user_id, secret, created_at) VALUES (?1, ?2, ?3) \
                         ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at, \
                         last_step = NULL WHERE auth_totp.enabled_at IS NULL",
                        rusqlite::params![user_id, sealed, ts(at)],
                    )
                    .map_err(map_err)?;
                if changed == 0 { Err(StoreError::Conflict("TOTP is already enabled".into())) } else { Ok(()) }
            })
            .await
    }

    async fn totp(&self, user_id: Uuid) -> Result<Option<TotpRow>, StoreError> {
        let found = self
            .0
            .read(move |c| {
                c.prepare_cached("SELECT secret, enabled_at, last_step FROM auth_totp WHERE user_id = ?1")?
                    .query_row([user_id], |r| {
                        Ok(TotpRow { secret: r.get(0)?, enabled_at: opt_ts(1, r.get(1)?)?, last_step: r.get(2)? })
                    })
            })
            .await;
        match found {
            Ok(row) => Ok(Some(row)),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn enable_totp(
        &self,
        user_id: Uuid,
        step: i64,
        recovery_hashes: &[[u8; 32]],
        at: OffsetDateTime,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let (hashes, ev) = (recovery_hashes.to_vec(), event.clone());
        self.0
            .write(move |tx| {
                let changed = tx
                    .execute(
                        "UPDATE auth_totp SET enabled_at = ?1, last_step = ?2 WHERE user_id = ?3 AND enabled_at IS NULL",
                        rusqlite::params![ts(at), step, user_id],
                    )
                    .map_err(map_err)?;
                if changed == 0 {
                    return Ok(false);
                }
                put_recovery_codes(tx, user_id, &hashes)?;
                outbox::insert_sqlite(tx, &ev)?;
                Ok(true)
            })
            .await
    }

    async fn disable_totp(&self, user_id: Uuid, event: &Event) -> Result<bool, StoreError> {
        let ev = event.clone();
        self.0
            .write(move |tx| {
                let removed = tx.execute("DELETE FROM auth_totp WHERE user_id = ?1", [user_id]).map_err(map_err)?;
                tx.execute("DELETE FROM auth_recovery_codes WHERE user_id = ?1", [user_id]).map_err(map_err)?;
                if removed > 0 {
                    outbox::insert_sqlite(tx, &ev)?;
                }
                Ok(removed > 0)
            })
            .await
    }

    async fn replace_recovery_codes(
        &self,
        user_id: Uuid,
        recovery_hashes: &[[u8; 32]],
        event: &Event,
    ) -> Result<bool, StoreError> {
        let (hashes, ev) = (recovery_hashes.to_vec(), event.clone());
        self.0
            .write(move |tx| {
                let enabled: Option<Option<String>> = tx
                    .query_row("SELECT enabled_at FROM auth_totp WHERE user_id = ?1", [user_id], |r| r.get(0))
                    .map(Some)
                    .or_else(|e| if e == rusqlite::Error::QueryReturnedNoRows { Ok(None) } else { Err(e) })
                    .map_err(map_err)?;
                if !matches!(enabled, Some(Some(_))) {
                    return Ok(false);
                }
                put_recovery_codes(tx, user_id, &hashes)?;
                outbox::insert_sqlite(tx, &ev)?;
                Ok(true)
            })
            .await
    }

    async fn accept_totp_step(&self, user_id: Uuid, step: i64) -> Result<bool, StoreError> {
        self.0
            .write(move |tx| {
                let changed = tx
                    .execute(
                        "UPDATE auth_totp SET last_step = ?1 WHERE user_id = ?2 AND enabled_at IS NOT NULL \
                         AND (last_step IS NULL OR last_step < ?1)",
                        rusqlite::params![step, user_id],
                    )
                    .map_err(map_err)?;
                Ok(changed == 1)
            })
            .await
    }

    async fn use_recovery_code(&self, user_id: Uuid, hash: [u8; 32], at: OffsetDateTime) -> Result<bool, StoreError> {
        self.0
            .write(move |tx| {
                let changed = tx
                    .execute(
                        "UPDATE auth_recovery_codes SET used_at = ?1 WHERE user_id = ?2 AND code_hash = ?3 AND used_at IS NULL",
                        rusqlite::params![ts(at), user_id, hash.to_vec()],
                    )
                    .map_err(map_err)?;
                Ok(changed == 1)
            })
            .await
    }

    async fn unused_recovery_codes(&self, user_id: Uuid) -> Result<u32, StoreError> {
        self.0
            .read(move |c| {
                c.prepare_cached("SELECT COUNT(*) FROM auth_recovery_codes WHERE user_id = ?1 AND used_at IS NULL")?
                    .query_row([user_id], |r| r.get(0))
            })
            .await
    }

    async fn create_mfa_challenge(&self, ch: &MfaChallenge) -> Result<(), StoreError> {
        let ch = ch.clone();
        self.0
            .write(move |tx| {
                tx.execute("DELETE FROM auth_mfa_challenges WHERE expires_at < ?1", [ts(ch.created_at)])
                    .map_err(map_err)?;
                tx.execute(
                    "INSERT INTO auth_mfa_challenges (token_hash, user_id, user_agent, ip, created_at, expires_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    rusqlite::params![
                        ch.token_hash.to_vec(),
                        ch.user_id,
                        ch.user_agent,
                        ch.ip,
                        ts(ch.created_at),
                        ts(ch.expires_at)
                    ],
                )
                .map_err(map_err)?;
                Ok(())
            })
            .await
    }

    async fn mfa_challenge(&self, token_hash: [u8; 32]) -> Result<Option<MfaChallenge>, StoreError> {
        let found = self
            .0
            .read(move |c| {
                c.prepare_cached(
                    "SELECT user_id, user_agent, ip, created_at, expires_at, attempts, used_at \
                     FROM auth_mfa_challenges WHERE token_hash = ?1",
                )?
                .query_row([token_hash.to_vec()], |r| {
                    Ok(MfaChallenge {
                        token_hash,
                        user_id: r.get(0)?,
                        user_agent: r.get(1)?,
                        ip: r.get(2)?,
                        created_at: parse_ts(3, &r.get::<_, String>(3)?)?,
                        expires_at: parse_ts(4, &r.get::<_, String>(4)?)?,
                        attempts: r.get(5)?,
                        used_at: opt_ts(6, r.get(6)?)?,
                    })
                })
            })
            .await;
        match found {
            Ok(ch) => Ok(Some(ch)),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn fail_mfa_challenge(&self, token_hash: [u8; 32]) -> Result<u32, StoreError> {
        self.0
            .write(move |tx| {
                tx.query_row(
                    "UPDATE auth_mfa_challenges SET attempts = attempts + 1 WHERE token_hash = ?1 RETURNING attempts",
                    [token_hash.to_vec()],
                    |r| r.get(0),
                )
                .map_err(map_err)
            })
            .await
    }

    async fn complete_mfa_challenge(
        &self,
        token_hash: [u8; 32],
        session: &NewSession,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let (s, ev) = (session.clone(), event.clone());
        self.0
            .write(move |tx| {
                let changed = tx
                    .execute(
                        "UPDATE auth_mfa_challenges SET used_at = ?1 WHERE token_hash = ?2 AND used_at IS NULL",
                        rusqlite::params![ts(s.created_at), token_hash.to_vec()],
                    )
                    .map_err(map_err)?;
                if changed == 0 {
                    return Ok(false);
                }
                insert_session_in(tx, &s)?;
                outbox::insert_sqlite(tx, &ev)?;
                Ok(true)
            })
            .await
    }
}

/// Stores, inside `tx`, a mailed token unless `limit` of its purpose were created for the user
/// since `since`; returns whether it did.
fn issue_in(
    tx: &rusqlite::Transaction<'_>,
    t: &NewEmailToken,
    since: OffsetDateTime,
    limit: u32,
) -> Result<bool, StoreError> {
    if tokens_since_in(tx, t.user_id, t.purpose, since).map_err(map_err)? >= limit {
        return Ok(false);
    }
    tx.execute(
        "INSERT INTO auth_email_tokens (token_hash, user_id, purpose, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        rusqlite::params![t.token_hash.to_vec(), t.user_id, t.purpose.as_str(), ts(t.created_at), ts(t.expires_at)],
    )
    .map_err(map_err)?;
    Ok(true)
}

#[async_trait]
impl EmailTokenStore for SqliteAuthStore {
    async fn issue_email_token(
        &self,
        token: &NewEmailToken,
        since: OffsetDateTime,
        limit: u32,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let (t, ev) = (token.clone(), event.clone());
        self.0
            .write(move |tx| {
                if !issue_in(tx, &t, since, limit)? {
                    return Ok(false);
                }
                outbox::insert_sqlite(tx, &ev)?;
                Ok(true)
            })
            .await
    }

    async fn email_token_owner(
        &self,
        token_hash: [u8; 32],
        purpose: EmailTokenPurpose,
        now: OffsetDateTime,
    ) -> Result<Option<Uuid>, StoreError> {
        self.0.read(move |c| token_owner_in(c, token_hash, purpose, now)).await
    }

    async fn spend_verify_token(
        &self,
        token_hash: [u8; 32],
        now: OffsetDateTime,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let ev = event.clone();
        self.0
            .write(move |tx| {
                // The writer is single and the transaction immediate: check-then-set is atomic.
                if token_owner_in(tx, token_hash, EmailTokenPurpose::VerifyEmail, now).map_err(map_err)?.is_none() {
                    return Ok(false);
                }
                tx.execute(
                    "UPDATE auth_email_tokens SET used_at = ?1 WHERE token_hash = ?2 AND used_at IS NULL",
                    rusqlite::params![ts(now), token_hash.to_vec()],
                )
                .map_err(map_err)?;
                outbox::insert_sqlite(tx, &ev)?;
                Ok(true)
            })
            .await
    }

    async fn reset_password(&self, reset: &PasswordReset, event: &Event) -> Result<Option<Vec<Uuid>>, StoreError> {
        let (r, ev) = (reset.clone(), event.clone());
        self.0
            .write(move |tx| {
                let owner =
                    token_owner_in(tx, r.token_hash, EmailTokenPurpose::ResetPassword, r.at).map_err(map_err)?;
                if owner != Some(r.user_id) {
                    return Ok(None);
                }
                let changed = tx
                    .execute(
                        "UPDATE auth_credentials SET password_hash = ?1, updated_at = ?2 WHERE user_id = ?3",
                        rusqlite::params![r.password_hash, ts(r.at), r.user_id],
                    )
                    .map_err(map_err)?;
                if changed == 0 {
                    return Err(StoreError::NotFound);
                }
                // The presented token is among the outstanding ones.
                spend_reset_tokens_in(tx, r.user_id, r.at)?;
                let revoked = revoke_in(tx, r.user_id, None, None, r.at)?;
                tx.execute("DELETE FROM auth_login_failures WHERE account_key = ?1", [r.account_key.to_vec()])
                    .map_err(map_err)?;
                outbox::insert_sqlite(tx, &ev)?;
                Ok(Some(revoked))
            })
            .await
    }

    async fn replace_verify_token(
        &self,
        token: &NewEmailToken,
        since: OffsetDateTime,
        limit: u32,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let (t, ev) = (token.clone(), event.clone());
        self.0
            .write(move |tx| {
                tx.execute(
                    "UPDATE auth_email_tokens SET used_at = ?1 WHERE user_id = ?2 AND purpose = 'verify_email' \
                     AND used_at IS NULL",
                    rusqlite::params![ts(t.created_at), t.user_id],
                )
                .map_err(map_err)?;
                let issued = issue_in(tx, &t, since, limit)?;
                outbox::insert_sqlite(tx, &ev)?;
                Ok(issued)
            })
            .await
    }

    async fn issue_email_change(
        &self,
        token: &NewEmailToken,
        sealed_email: Option<&[u8]>,
        since: OffsetDateTime,
        limit: u32,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let (t, sealed, ev) = (token.clone(), sealed_email.map(<[u8]>::to_vec), event.clone());
        self.0
            .write(move |tx| {
                if !issue_in(tx, &t, since, limit)? {
                    return Ok(false);
                }
                tx.execute(
                    "UPDATE auth_email_tokens SET email = ?1 WHERE token_hash = ?2",
                    rusqlite::params![sealed, t.token_hash.to_vec()],
                )
                .map_err(map_err)?;
                outbox::insert_sqlite(tx, &ev)?;
                Ok(true)
            })
            .await
    }

    async fn email_change(
        &self,
        token_hash: [u8; 32],
        purpose: EmailTokenPurpose,
        now: OffsetDateTime,
    ) -> Result<Option<(Uuid, Vec<u8>)>, StoreError> {
        self.0
            .read(move |c| {
                let Some(owner) = token_owner_in(c, token_hash, purpose, now)? else { return Ok(None) };
                let sealed: Option<Vec<u8>> = c.query_row(
                    "SELECT email FROM auth_email_tokens WHERE token_hash = ?1",
                    [token_hash.to_vec()],
                    |r| r.get(0),
                )?;
                Ok(sealed.map(|e| (owner, e)))
            })
            .await
    }

    async fn complete_email_change(
        &self,
        token_hash: [u8; 32],
        undo: &NewEmailToken,
        sealed_old: &[u8],
        event: &Event,
    ) -> Result<bool, StoreError> {
        let (u, sealed, ev) = (undo.clone(), sealed_old.to_vec(), event.clone());
        self.0
            .write(move |tx| {
                let now = u.created_at;
                let owner = token_owner_in(tx, token_hash, EmailTokenPurpose::ChangeEmail, now).map_err(map_err)?;
                if owner != Some(u.user_id) {
                    return Ok(false);
                }
                tx.execute(
                    "UPDATE auth_email_tokens SET used_at = ?1 WHERE user_id = ?2 \
                     AND purpose IN ('change_email', 'verify_email') AND used_at IS NULL",
                    rusqlite::params![ts(now), u.user_id],
                )
                .map_err(map_err)?;
                tx.execute(
                    "INSERT INTO auth_email_tokens (token_hash, user_id, purpose, created_at, expires_at, email) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    rusqlite::params![
                        u.token_hash.to_vec(),
                        u.user_id,
                        u.purpose.as_str(),
                        ts(u.created_at),
                        ts(u.expires_at),
                        sealed
                    ],
                )
                .map_err(map_err)?;
                outbox::insert_sqlite(tx, &ev)?;
                Ok(true)
            })
            .await
    }

    async fn undo_email_change(
        &self,
        token_hash: [u8; 32],
        now: OffsetDateTime,
        event: &Event,
    ) -> Result<Option<Vec<Uuid>>, StoreError> {
        let ev = event.clone();
        self.0
            .write(move |tx| {
                let Some(user_id) =
                    token_owner_in(tx, token_hash, EmailTokenPurpose::UndoEmailChange, now).map_err(map_err)?
                else {
                    return Ok(None);
                };
                tx.execute(
                    "UPDATE auth_email_tokens SET used_at = ?1 WHERE user_id = ?2 \
                     AND purpose IN ('change_email', 'undo_email_change', 'verify_email') AND used_at IS NULL",
                    rusqlite::params![ts(now), user_id],
                )
                .map_err(map_err)?;
                let revoked = revoke_in(tx, user_id, None, None, now)?;
                outbox::insert_sqlite(tx, &ev)?;
                Ok(Some(revoked))
            })
            .await
    }
}

/// The failure counters of the subject that exist, in `c`.
fn failures_of(c: &rusqlite::Connection, subject: &SubjectKeys) -> rusqlite::Result<Vec<FailureInfo>> {
    let mut stmt = c.prepare_cached(
        "SELECT consecutive, blocked_until, last_failed_at FROM auth_login_failures WHERE account_key = ?1",
    )?;
    let keys = subject.login_key.map(|k| (FailureCounter::Login, k)).into_iter();
    let mut out = Vec::new();
    for (counter, key) in keys.chain([(FailureCounter::SecondFactor, subject.mfa_key)]) {
        let mut rows = stmt.query_map([key.to_vec()], |r| {
            Ok(FailureInfo {
                counter,
                consecutive: r.get(0)?,
                blocked_until: parse_ts(1, &r.get::<_, String>(1)?)?,
                last_failed_at: parse_ts(2, &r.get::<_, String>(2)?)?,
            })
        })?;
        if let Some(row) = rows.next() {
            out.push(row?);
        }
    }
    Ok(out)
}

#[async_trait]
impl PersonalDataStore for SqliteAuthStore {
    async fn personal_rows(&self, subject: SubjectKeys) -> Result<PersonalRows, StoreError> {
        let id = subject.user_id;
        self.0
            .read(move |c| {
                // One read transaction: a consistent snapshot of every table.
                let tx = c.unchecked_transaction()?;
                let credential = match tx
                    .prepare_cached("SELECT created_at, updated_at FROM auth_credentials WHERE user_id = ?1")?
                    .query_row([id], |r| {
                        Ok((parse_ts(0, &r.get::<_, String>(0)?)?, parse_ts(1, &r.get::<_, String>(1)?)?))
                    }) {
                    Ok(times) => Some(times),
                    Err(rusqlite::Error::QueryReturnedNoRows) => None,
                    Err(e) => return Err(e),
                };
                let sessions = tx
                    .prepare_cached(&format!(
                        "SELECT {SESSION_COLUMNS} FROM auth_sessions s WHERE s.user_id = ?1 ORDER BY s.id"
                    ))?
                    .query_map([id], session_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let refresh_tokens = tx
                    .prepare_cached(
                        "SELECT t.session_id, t.issued_at, t.used_at FROM auth_refresh_tokens t \
                         JOIN auth_sessions s ON s.id = t.session_id WHERE s.user_id = ?1 ORDER BY t.session_id",
                    )?
                    .query_map([id], |r| {
                        Ok(RefreshTokenInfo {
                            session_id: r.get(0)?,
                            issued_at: parse_ts(1, &r.get::<_, String>(1)?)?,
                            used_at: opt_ts(2, r.get(2)?)?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let login_failures = failures_of(&tx, &subject)?;
                let totp = match tx
                    .prepare_cached("SELECT created_at, enabled_at, last_step FROM auth_totp WHERE user_id = ?1")?
                    .query_row([id], |r| {
                        Ok(TotpInfo {
                            created_at: parse_ts(0, &r.get::<_, String>(0)?)?,
                            enabled_at: opt_ts(1, r.get(1)?)?,
                            last_step: r.get(2)?,
                        })
                    }) {
                    Ok(t) => Some(t),
                    Err(rusqlite::Error::QueryReturnedNoRows) => None,
                    Err(e) => return Err(e),
                };
                let recovery_codes = tx
                    .prepare_cached("SELECT used_at FROM auth_recovery_codes WHERE user_id = ?1")?
                    .query_map([id], |r| opt_ts(0, r.get(0)?))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let mfa_challenges = tx
                    .prepare_cached(
                        "SELECT user_agent, ip, created_at, expires_at, attempts, used_at \
                         FROM auth_mfa_challenges WHERE user_id = ?1",
                    )?
                    .query_map([id], |r| {
                        Ok(MfaChallengeInfo {
                            user_agent: r.get(0)?,
                            ip: r.get(1)?,
                            created_at: parse_ts(2, &r.get::<_, String>(2)?)?,
                            expires_at: parse_ts(3, &r.get::<_, String>(3)?)?,
                            attempts: r.get(4)?,
                            used_at: opt_ts(5, r.get(5)?)?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let email_tokens = tx
                    .prepare_cached(
                        "SELECT purpose, created_at, expires_at, used_at FROM auth_email_tokens WHERE user_id = ?1",
                    )?
                    .query_map([id], |r| {
                        Ok(EmailTokenInfo {
                            purpose: r.get(0)?,
                            created_at: parse_ts(1, &r.get::<_, String>(1)?)?,
                            expires_at: parse_ts(2, &r.get::<_, String>(2)?)?,
                            used_at: opt_ts(3, r.get(3)?)?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                tx.finish()?;
                Ok(PersonalRows {
                    credential,
                    sessions,
                    refresh_tokens,
                    login_failures,
                    totp,
                    recovery_codes,
                    mfa_challenges,
                    email_tokens,
                })
            })
            .await
    }

    async fn erase_user(
        &self,
        subject: SubjectKeys,
        now: OffsetDateTime,
        event: ErasureEvent,
    ) -> Result<Erasure, StoreError> {
        let id = subject.user_id;
        self.0
            .write(move |tx| {
                let revoked = revoke_in(tx, id, None, None, now)?;
                let deleted = |table: &str, sql: &str, key: &dyn rusqlite::ToSql| -> Result<u64, StoreError> {
                    let n = tx.execute(sql, [key]).map_err(map_err)?;
                    tracing::debug!(table, rows = n, "erased");
                    Ok(u64::try_from(n).unwrap_or(u64::MAX))
                };
                let mut counts = crate::ports::ErasedCounts::new();
                // Refresh tokens first: they are found through the sessions.
                counts.insert(
                    "auth_refresh_tokens".into(),
                    deleted(
                        "auth_refresh_tokens",
                        "DELETE FROM auth_refresh_tokens WHERE session_id IN \
                         (SELECT id FROM auth_sessions WHERE user_id = ?1)",
                        &id,
                    )?,
                );
                for table in [
                    "auth_sessions",
                    "auth_credentials",
                    "auth_totp",
                    "auth_recovery_codes",
                    "auth_mfa_challenges",
                    "auth_email_tokens",
                ] {
                    let n = deleted(table, &format!("DELETE FROM {table} WHERE user_id = ?1"), &id)?;
                    counts.insert(table.into(), n);
                }
                let mut failures = 0;
                for key in subject.login_key.into_iter().chain([subject.mfa_key]) {
                    failures += deleted(
                        "auth_login_failures",
                        "DELETE FROM auth_login_failures WHERE account_key = ?1",
                        &key.to_vec(),
                    )?;
                }
                counts.insert("auth_login_failures".into(), failures);
                debug_assert!(PERSONAL_DATA_TABLES.iter().all(|t| counts.contains_key(*t)));
                if let Some(ev) = event(&counts) {
                    outbox::insert_sqlite(tx, &ev)?;
                }
                Ok(Erasure { revoked, counts })
            })
            .await
    }
}

/// Unix seconds with their fraction, to compare with `unixepoch(column, 'subsec')`: the columns
/// hold RFC 3339 text whose fractions vary in length, which does not sort as text.
fn secs(t: OffsetDateTime) -> f64 {
    t.unix_timestamp_nanos() as f64 / 1e9
}

impl SqliteAuthStore {
    /// Runs one bounded `DELETE` whose parameters are a time and the limit.
    async fn purge_where(&self, sql: &'static str, before: OffsetDateTime, limit: i64) -> Result<u64, StoreError> {
        self.0
            .write(move |tx| {
                tx.prepare_cached(sql)
                    .and_then(|mut stmt| stmt.execute(rusqlite::params![secs(before), limit]))
                    .map(|n| n as u64)
                    .map_err(map_err)
            })
            .await
    }
}

#[async_trait]
impl RetentionStore for SqliteAuthStore {
    async fn purge_sessions(
        &self,
        before: OffsetDateTime,
        idle_before: OffsetDateTime,
        limit: i64,
    ) -> Result<(u64, u64), StoreError> {
        self.0
            .write(move |tx| {
                let ids = tx
                    .prepare_cached(
                        "SELECT id FROM auth_sessions WHERE unixepoch(revoked_at, 'subsec') < ?1 \
                         OR unixepoch(expires_at, 'subsec') < ?1 OR unixepoch(last_used_at, 'subsec') < ?2 LIMIT ?3",
                    )
                    .and_then(|mut stmt| {
                        stmt.query_map(rusqlite::params![secs(before), secs(idle_before), limit], |r| {
                            r.get::<_, Uuid>(0)
                        })?
                        .collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .map_err(map_err)?;
                let mut tokens =
                    tx.prepare_cached("DELETE FROM auth_refresh_tokens WHERE session_id = ?1").map_err(map_err)?;
                let mut sessions = tx.prepare_cached("DELETE FROM auth_sessions WHERE id = ?1").map_err(map_err)?;
                let (mut s, mut t) = (0, 0);
                for id in ids {
                    t += tokens.execute([id]).map_err(map_err)? as u64;
                    s += sessions.execute([id]).map_err(map_err)? as u64;
                }
                Ok((s, t))
            })
            .await
    }

    async fn purge_email_tokens(&self, before: OffsetDateTime, limit: i64) -> Result<u64, StoreError> {
        self.purge_where(
            "DELETE FROM auth_email_tokens WHERE token_hash IN (SELECT token_hash FROM auth_email_tokens \
             WHERE unixepoch(expires_at, 'subsec') < ?1 LIMIT ?2)",
            before,
            limit,
        )
        .await
    }

    async fn purge_mfa_challenges(&self, before: OffsetDateTime, limit: i64) -> Result<u64, StoreError> {
        self.purge_where(
            "DELETE FROM auth_mfa_challenges WHERE token_hash IN (SELECT token_hash FROM auth_mfa_challenges \
             WHERE unixepoch(expires_at, 'subsec') < ?1 LIMIT ?2)",
            before,
            limit,
        )
        .await
    }

    async fn purge_login_failures(&self, before: OffsetDateTime, limit: i64) -> Result<u64, StoreError> {
        self.purge_where(
            "DELETE FROM auth_login_failures WHERE account_key IN (SELECT account_key FROM auth_login_failures \
             WHERE unixepoch(last_failed_at, 'subsec') < ?1 AND unixepoch(blocked_until, 'subsec') < ?1 LIMIT ?2)",
            before,
            limit,
        )
        .await
    }
}

/// Replaces the user's recovery codes with `hashes`, inside the caller's transaction.
fn put_recovery_codes(tx: &rusqlite::Connection, user_id: Uuid, hashes: &[[u8; 32]]) -> Result<(), StoreError> {
    tx.execute("DELETE FROM auth_recovery_codes WHERE user_id = ?1", [user_id]).map_err(map_err)?;
    for h in hashes {
        tx.execute(
            "INSERT INTO auth_recovery_codes (user_id, code_hash) VALUES (?1, ?2)",
            rusqlite::params![user_id, h.to_vec()],
        )
        .map_err(map_err)?;
    }
    Ok(())
}
