//! The auth stores on PostgreSQL.

use async_trait::async_trait;
use platform::bus::Event;
use platform::db::postgres::map_err;
use platform::db::{PgDb, StoreError};
use platform::outbox;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ports::{
    CredentialStore, EmailTokenInfo, EmailTokenPurpose, EmailTokenStore, ErasedCounts, Erasure, ErasureEvent,
    FailureCounter, FailureInfo, Failures, LoginThrottleStore, MfaChallenge, MfaChallengeInfo, MfaStore, NewEmailToken,
    NewSession, PERSONAL_DATA_TABLES, PasswordReset, PersonalDataStore, PersonalRows, RefreshLookup, RefreshTokenInfo,
    RetentionStore, SessionRow, SessionStore, SigningKeyStore, StoredKey, SubjectKeys, TotpInfo, TotpRow,
};

const SESSION_COLUMNS: &str =
    "s.id, s.user_id, s.user_agent, s.ip, s.created_at, s.last_used_at, s.expires_at, s.revoked_at, s.amr";

/// Revokes, inside `tx`, the user's live sessions: only `only` if given, never `except`.
async fn revoke_in(
    tx: &deadpool_postgres::Transaction<'_>,
    user_id: Uuid,
    only: Option<Uuid>,
    except: Option<Uuid>,
    now: OffsetDateTime,
) -> Result<Vec<Uuid>, StoreError> {
    let rows = tx
        .query(
            "UPDATE auth_sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL \
             AND ($3::uuid IS NULL OR id = $3) AND ($4::uuid IS NULL OR id <> $4) RETURNING id",
            &[&now, &user_id, &only, &except],
        )
        .await
        .map_err(map_err)?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Inserts, inside `tx`, a session and its first refresh token.
async fn insert_session_in(tx: &deadpool_postgres::Transaction<'_>, s: &NewSession) -> Result<(), StoreError> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO auth_sessions (id, user_id, refresh_hash, user_agent, ip, created_at, last_used_at, \
             expires_at, amr) VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8)",
        )
        .await
        .map_err(map_err)?;
    let hash: &[u8] = &s.refresh_hash;
    let amr = s.amr.join(" ");
    tx.execute(&stmt, &[&s.id, &s.user_id, &hash, &s.user_agent, &s.ip, &s.created_at, &s.expires_at, &amr])
        .await
        .map_err(map_err)?;
    tx.execute(
        "INSERT INTO auth_refresh_tokens (token_hash, session_id, issued_at) VALUES ($1, $2, $3)",
        &[&hash, &s.id, &s.created_at],
    )
    .await
    .map_err(map_err)?;
    Ok(())
}

/// Spends, inside `tx`, every outstanding password-reset token of the user.
async fn spend_reset_tokens_in(
    tx: &deadpool_postgres::Transaction<'_>,
    user_id: Uuid,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE auth_email_tokens SET used_at = $1 WHERE user_id = $2 AND purpose = 'reset_password' \
         AND used_at IS NULL",
        &[&now, &user_id],
    )
    .await
    .map_err(map_err)?;
    Ok(())
}

fn session_row(r: &tokio_postgres::Row) -> SessionRow {
    SessionRow {
        id: r.get(0),
        user_id: r.get(1),
        user_agent: r.get(2),
        ip: r.get(3),
        created_at: r.get(4),
        last_used_at: r.get(5),
        expires_at: r.get(6),
        revoked_at: r.get(7),
        amr: crate::ports::parse_amr(r.get::<_, &str>(8)),
    }
}

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

    async fn change_password(
        &self,
        user_id: Uuid,
        hash: &str,
        keep: Uuid,
        at: OffsetDateTime,
        event: &Event,
    ) -> Result<Vec<Uuid>, StoreError> {
        let mut client = self.0.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let changed = tx
            .execute(
                "UPDATE auth_credentials SET password_hash = $1, updated_at = $2 WHERE user_id = $3",
                &[&hash, &at, &user_id],
            )
            .await
            .map_err(map_err)?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        let revoked = revoke_in(&tx, user_id, None, Some(keep), at).await?;
        spend_reset_tokens_in(&tx, user_id, at).await?;
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(revoked)
    }

    async fn replace_password_hash(
        &self,
        user_id: Uuid,
        old: &str,
        new: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let client = self.0.client().await?;
        client
            .execute(
                "UPDATE auth_credentials SET password_hash = $1, updated_at = $2 WHERE user_id = $3 AND password_hash = $4",
                &[&new, &at, &user_id, &old],
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
        insert_session_in(&tx, s).await?;
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn record_event(&self, event: &Event) -> Result<(), StoreError> {
        let mut client = self.0.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn find_refresh(&self, token_hash: [u8; 32]) -> Result<RefreshLookup, StoreError> {
        let client = self.0.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS}, t.used_at FROM auth_refresh_tokens t \
                 JOIN auth_sessions s ON s.id = t.session_id WHERE t.token_hash = $1"
            ))
            .await
            .map_err(map_err)?;
        let hash: &[u8] = &token_hash;
        let row = client.query_opt(&stmt, &[&hash]).await.map_err(map_err)?;
        Ok(match row {
            None => RefreshLookup::Unknown,
            Some(r) => match r.get::<_, Option<OffsetDateTime>>(9) {
                None => RefreshLookup::Current(session_row(&r)),
                Some(used) => RefreshLookup::Used(session_row(&r), used),
            },
        })
    }

    async fn rotate_refresh(
        &self,
        session_id: Uuid,
        old: [u8; 32],
        new: [u8; 32],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut client = self.0.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let (old, new): (&[u8], &[u8]) = (&old, &new);
        let won = tx
            .execute(
                "UPDATE auth_refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND session_id = $3 \
                 AND used_at IS NULL AND EXISTS (SELECT 1 FROM auth_sessions WHERE id = $3 AND revoked_at IS NULL)",
                &[&now, &old, &session_id],
            )
            .await
            .map_err(map_err)?;
        if won == 0 {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO auth_refresh_tokens (token_hash, session_id, issued_at) VALUES ($1, $2, $3)",
            &[&new, &session_id, &now],
        )
        .await
        .map_err(map_err)?;
        tx.execute("UPDATE auth_sessions SET last_used_at = $1 WHERE id = $2", &[&now, &session_id])
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn revoke_sessions(
        &self,
        user_id: Uuid,
        only: Option<Uuid>,
        now: OffsetDateTime,
        event: &Event,
    ) -> Result<Vec<Uuid>, StoreError> {
        let mut client = self.0.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let revoked = revoke_in(&tx, user_id, only, None, now).await?;
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(revoked)
    }

    async fn active_sessions(&self, user_id: Uuid, now: OffsetDateTime) -> Result<Vec<SessionRow>, StoreError> {
        let client = self.0.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {SESSION_COLUMNS} FROM auth_sessions s WHERE s.user_id = $1 AND s.revoked_at IS NULL \
                     AND s.expires_at > $2 ORDER BY s.last_used_at DESC"
                ),
                &[&user_id, &now],
            )
            .await
            .map_err(map_err)?;
        Ok(rows.iter().map(session_row).collect())
    }

    async fn session(&self, id: Uuid) -> Result<SessionRow, StoreError> {
        let client = self.0.client().await?;
        let stmt = client
            .prepare_cached(&format!("SELECT {SESSION_COLUMNS} FROM auth_sessions s WHERE s.id = $1"))
            .await
            .map_err(map_err)?;
        let row = client.query_opt(&stmt, &[&id]).await.map_err(map_err)?;
        row.as_ref().map(session_row).ok_or(StoreError::NotFound)
    }
}

const KEY_COLUMNS: &str = "kid, alg, private_key, public_jwk, created_at, active_from, retired_at";

/// A fixed key for `pg_advisory_xact_lock`: "trellis-keys", so that replicas rotate one at a time.
const KEY_ROTATION_LOCK: i64 = 0x7472_656c_6b65_7973;

fn key_row(r: &tokio_postgres::Row) -> StoredKey {
    StoredKey {
        kid: r.get(0),
        alg: r.get(1),
        private_key: r.get(2),
        public_jwk: r.get(3),
        created_at: r.get(4),
        active_from: r.get(5),
        retired_at: r.get(6),
    }
}

impl PgAuthStore {
    async fn keys(&self, only_active: bool) -> Result<Vec<StoredKey>, StoreError> {
        let client = self.0.client().await?;
        let filter = if only_active { "WHERE retired_at IS NULL" } else { "" };
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {KEY_COLUMNS} FROM auth_signing_keys {filter} ORDER BY created_at DESC, kid DESC"
            ))
            .await
            .map_err(map_err)?;
        Ok(client.query(&stmt, &[]).await.map_err(map_err)?.iter().map(key_row).collect())
    }

    /// One batch of a retention purge: `sql` deletes up to `$2` rows older than `$1`.
    async fn purge_where(&self, sql: &str, before: OffsetDateTime, limit: i64) -> Result<u64, StoreError> {
        let client = self.0.client().await?;
        self.0.execute(&client, sql, &[&before, &limit]).await
    }
}

#[async_trait]
impl SigningKeyStore for PgAuthStore {
    async fn active_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        self.keys(true).await
    }

    async fn all_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        self.keys(false).await
    }

    async fn insert_key(
        &self,
        key: &StoredKey,
        expected_newest: Option<&str>,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut client = self.0.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        // Two inserts of different rows do not conflict under READ COMMITTED: the lock makes the
        // check-then-insert of concurrent replicas take turns (released at commit).
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&KEY_ROTATION_LOCK]).await.map_err(map_err)?;
        let newest: Option<String> = tx
            .query_opt(
                "SELECT kid FROM auth_signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC, kid DESC LIMIT 1",
                &[],
            )
            .await
            .map_err(map_err)?
            .map(|r| r.get(0));
        if newest.as_deref() != expected_newest {
            return Ok(false);
        }
        tx.execute(
            &format!("INSERT INTO auth_signing_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, NULL)"),
            &[&key.kid, &key.alg, &key.private_key, &key.public_jwk, &key.created_at, &key.active_from],
        )
        .await
        .map_err(map_err)?;
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn retire_key(&self, kid: &str, at: OffsetDateTime, event: &Event) -> Result<bool, StoreError> {
        let mut client = self.0.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let changed = tx
            .execute("UPDATE auth_signing_keys SET retired_at = $1 WHERE kid = $2 AND retired_at IS NULL", &[&at, &kid])
            .await
            .map_err(map_err)?;
        if changed == 0 {
            return Ok(false);
        }
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }
}

#[async_trait]
impl LoginThrottleStore for PgAuthStore {
    async fn failures(&self, key: [u8; 32]) -> Result<Option<Failures>, StoreError> {
        let client = self.0.client().await?;
        let stmt = client
            .prepare_cached("SELECT consecutive, blocked_until FROM auth_login_failures WHERE account_key = $1")
            .await
            .map_err(map_err)?;
        let key: &[u8] = &key;
        Ok(client
            .query_opt(&stmt, &[&key])
            .await
            .map_err(map_err)?
            .map(|r| Failures { consecutive: u32::try_from(r.get::<_, i32>(0)).unwrap_or(0), blocked_until: r.get(1) }))
    }

    async fn record_failure(
        &self,
        key: [u8; 32],
        now: OffsetDateTime,
        block: fn(u32) -> time::Duration,
    ) -> Result<u32, StoreError> {
        let mut client = self.0.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let key: &[u8] = &key;
        let consecutive: i32 = tx
            .query_one(
                "INSERT INTO auth_login_failures (account_key, consecutive, blocked_until, last_failed_at) \
                 VALUES ($1, 1, $2, $2) ON CONFLICT (account_key) DO UPDATE \
                 SET consecutive = auth_login_failures.consecutive + 1, last_failed_at = $2 RETURNING consecutive",
                &[&key, &now],
            )
            .await
            .map_err(map_err)?
            .get(0);
        let consecutive = u32::try_from(consecutive).unwrap_or(u32::MAX);
        tx.execute(
            "UPDATE auth_login_failures SET blocked_until = $1 WHERE account_key = $2",
            &[&(now + block(consecutive)), &key],
        )
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(consecutive)
    }

    async fn clear_failures(&self, key: [u8; 32]) -> Result<(), StoreError> {
        let client = self.0.client().await?;
        let key: &[u8] = &key;
        client.execute("DELETE FROM auth_login_failures WHERE account_key = $1", &[&key]).await.map_err(map_err)?;
        Ok(())
    }
}

#[async_trait]
impl MfaStore for PgAuthStore {
    async fn put_pending_totp(&self, user_id: Uuid, sealed: &[u8], at: OffsetDateTime) -> Result<(), StoreError> {
        let client = self.0.client().await?;
        let changed = client
            .execute(
                "INSERT INTO auth_totp (user_id, secret, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at, \
                 last_step = NULL WHERE auth_totp.enabled_at IS NULL",
                &[&user_id, &sealed, &at],
            )
            .await
            .map_err(map_err)?;
        if changed == 0 { Err(StoreError::Conflict("TOTP is already enabled".into())) } else { Ok(()) }
    }

    async fn totp(&self, user_id: Uuid) -> Result<Option<TotpRow>, StoreError> {
        let client = self.0.client().await?;
        let stmt = client
            .prepare_cached("SELECT secret, enabled_at, last_step FROM auth_totp WHERE user_id = $1")
            .await
            .map_err(map_err)?;
        Ok(client.query_opt(&stmt, &[&user_id]).await.map_err(map_err)?.map(|r| TotpRow {
            secret: r.get(0),
            enabled_at: r.get(1),
            last_step: r.get(2),
        }))
    }

    async fn enable_totp(
        &self,
        user_id: Uuid,
        step: i64,
        recovery_hashes: &[[u8; 32]],
        at: OffsetDateTime,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut client = self.0.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let changed = tx
            .execute(
                "UPDATE auth_totp SET enabled_at = $1, last_step = $2 WHERE user_id = $3 AND enabled_at IS NULL",
                &[&at, &step, &user_id],
            )
            .await
            .map_err(map_err)?;
        if changed == 0 {
            return Ok(false);
        }
        put_recovery_codes(&tx, user_id, recovery_hashes).await?;
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn replace_recovery_codes(
        &self,
        user_id: Uuid,
        recovery_hashes: &[[u8; 32]],
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut client = self.0.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        // Locks the enrolment, so a concurrent removal waits for this to commit.
        let enabled = tx
            .query_opt("SELECT 1 FROM auth_totp WHERE user_id = $1 AND enabled_at IS NOT NULL FOR UPDATE", &[&user_id])
            .await
            .map_err(map_err)?;
        if enabled.is_none() {
            return Ok(false);
        }
        put_recovery_codes(&tx, user_id, recovery_hashes).await?;
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn disable_totp(&self, user_id: Uuid, event: &Event) -> Result<bool, StoreError> {
        let mut client = self.0.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let removed = tx.execute("DELETE FROM auth_totp WHERE user_id = $1", &[&user_id]).await.map_err(map_err)?;
        tx.execute("DELETE FROM auth_recovery_codes WHERE user_id = $1", &[&user_id]).await.map_err(map_err)?;
        if removed > 0 {
            outbox::insert_pg(&tx, event).await?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(removed > 0)
    }

    async fn accept_totp_step(&self, user_id: Uuid, step: i64) -> Result<bool, StoreError> {
        let client = self.0.client().await?;
        let changed = client
            .execute(
                "UPDATE auth_totp SET last_step = $1 WHERE user_id = $2 AND enabled_at IS NOT NULL \
                 AND (last_step IS NULL OR last_step < $1)",
                &[&step, &user_id],
            )
            .await
            .map_err(map_err)?;
        Ok(changed == 1)
    }

    async fn use_recovery_code(&self, user_id: Uuid, hash: [u8; 32], at: OffsetDateTime) -> Result<bool, StoreError> {
        let client = self.0.client().await?;
        let hash: &[u8] = &hash;
        let changed = client
            .execute(
                "UPDATE auth_recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
                &[&at, &user_id, &hash],
            )
            .await
            .map_err(map_err)?;
        Ok(changed == 1)
    }

    async fn unused_recovery_codes(&self, user_id: Uuid) -> Result<u32, StoreError> {
        let client = self.0.client().await?;
        let row = client
            .query_one("SELECT COUNT(*) FROM auth_recovery_codes WHERE user_id = $1 AND used_at IS NULL", &[&user_id])
            .await
            .map_err(map_err)?;
        Ok(u32::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    async fn create_mfa_challenge(&self, ch: &MfaChallenge) -> Result<(), StoreError> {
        let client = self.0.client().await?;
        client
            .execute("DELETE FROM auth_mfa_challenges WHERE expires_at < $1", &[&ch.created_at])
            .await
            .map_err(map_err)?;
        let hash: &[u8] = &ch.token_hash;
        client
            .execute(
                "INSERT INTO auth_mfa_challenges (token_hash, user_id, user_agent, ip, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&hash, &ch.user_id, &ch.user_agent, &ch.ip, &ch.created_at, &ch.expires_at],
            )
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn mfa_challenge(&self, token_hash: [u8; 32]) -> Result<Option<MfaChallenge>, StoreError> {
        let client = self.0.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT user_id, user_agent, ip, created_at, expires_at, attempts, used_at \
                 FROM auth_mfa_challenges WHERE token_hash = $1",
            )
            .await
            .map_err(map_err)?;
        let hash: &[u8] = &token_hash;
        Ok(client.query_opt(&stmt, &[&hash]).await.map_err(map_err)?.map(|r| MfaChallenge {
            token_hash,
            user_id: r.get(0),
            user_agent: r.get(1),
            ip: r.get(2),
            created_at: r.get(3),
            expires_at: r.get(4),
            attempts: u32::try_from(r.get::<_, i32>(5)).unwrap_or(u32::MAX),
            used_at: r.get(6),
        }))
    }

    async fn fail_mfa_challenge(&self, token_hash: [u8; 32]) -> Result<u32, StoreError> {
        let client = self.0.client().await?;
        let hash: &[u8] = &token_hash;
        let row = client
            .query_opt(
                "UPDATE auth_mfa_challenges SET attempts = attempts + 1 WHERE token_hash = $1 RETURNING attempts",
                &[&hash],
            )
            .await
            .map_err(map_err)?
            .ok_or(StoreError::NotFound)?;
        Ok(u32::try_from(row.get::<_, i32>(0)).unwrap_or(u32::MAX))
    }

    async fn complete_mfa_challenge(
        &self,
        token_hash: [u8; 32],
        session: &NewSession,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut client = self.0.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let hash: &[u8] = &token_hash;
        let changed = tx
            .execute(
                "UPDATE auth_mfa_challenges SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
                &[&session.created_at, &hash],
            )
            .await
            .map_err(map_err)?;
        if changed == 0 {
            return Ok(false);
        }
        insert_session_in(&tx, session).await?;
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }
}

/// Stores, inside `tx`, a mailed token unless `limit` of its purpose were created for the user
/// since `since`; returns whether it did. Concurrent calls for one user queue on a lock, so the
/// limit is exact.
async fn issue_in(
    tx: &deadpool_postgres::Transaction<'_>,
    token: &NewEmailToken,
    since: OffsetDateTime,
    limit: u32,
) -> Result<bool, StoreError> {
    tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1::uuid::text, 0))", &[&token.user_id])
        .await
        .map_err(map_err)?;
    let recent: i64 = tx
        .query_one(
            "SELECT count(*) FROM auth_email_tokens WHERE user_id = $1 AND purpose = $2 AND created_at >= $3",
            &[&token.user_id, &token.purpose.as_str(), &since],
        )
        .await
        .map_err(map_err)?
        .get(0);
    if recent >= i64::from(limit) {
        return Ok(false);
    }
    let hash: &[u8] = &token.token_hash;
    tx.execute(
        "INSERT INTO auth_email_tokens (token_hash, user_id, purpose, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
        &[&hash, &token.user_id, &token.purpose.as_str(), &token.created_at, &token.expires_at],
    )
    .await
    .map_err(map_err)?;
    Ok(true)
}

#[async_trait]
impl EmailTokenStore for PgAuthStore {
    async fn issue_email_token(
        &self,
        token: &NewEmailToken,
        since: OffsetDateTime,
        limit: u32,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut client = self.0.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        if !issue_in(&tx, token, since, limit).await? {
            return Ok(false);
        }
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn email_token_owner(
        &self,
        token_hash: [u8; 32],
        purpose: EmailTokenPurpose,
        now: OffsetDateTime,
    ) -> Result<Option<Uuid>, StoreError> {
        let client = self.0.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT user_id FROM auth_email_tokens WHERE token_hash = $1 AND purpose = $2 \
                 AND used_at IS NULL AND expires_at > $3",
            )
            .await
            .map_err(map_err)?;
        let hash: &[u8] = &token_hash;
        let row = client.query_opt(&stmt, &[&hash, &purpose.as_str(), &now]).await.map_err(map_err)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn spend_verify_token(
        &self,
        token_hash: [u8; 32],
        now: OffsetDateTime,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut client = self.0.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let hash: &[u8] = &token_hash;
        let won = tx
            .execute(
                "UPDATE auth_email_tokens SET used_at = $1 WHERE token_hash = $2 AND purpose = 'verify_email' \
                 AND used_at IS NULL AND expires_at > $1",
                &[&now, &hash],
            )
            .await
            .map_err(map_err)?;
        if won == 0 {
            return Ok(false);
        }
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn reset_password(&self, r: &PasswordReset, event: &Event) -> Result<Option<Vec<Uuid>>, StoreError> {
        let mut client = self.0.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let hash: &[u8] = &r.token_hash;
        let won = tx
            .execute(
                "UPDATE auth_email_tokens SET used_at = $1 WHERE token_hash = $2 AND user_id = $3 \
                 AND purpose = 'reset_password' AND used_at IS NULL AND expires_at > $1",
                &[&r.at, &hash, &r.user_id],
            )
            .await
            .map_err(map_err)?;
        if won == 0 {
            return Ok(None);
        }
        let changed = tx
            .execute(
                "UPDATE auth_credentials SET password_hash = $1, updated_at = $2 WHERE user_id = $3",
                &[&r.password_hash, &r.at, &r.user_id],
            )
            .await
            .map_err(map_err)?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        spend_reset_tokens_in(&tx, r.user_id, r.at).await?;
        let revoked = revoke_in(&tx, r.user_id, None, None, r.at).await?;
        let key: &[u8] = &r.account_key;
        tx.execute("DELETE FROM auth_login_failures WHERE account_key = $1", &[&key]).await.map_err(map_err)?;
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(Some(revoked))
    }

    async fn replace_verify_token(
        &self,
        token: &NewEmailToken,
        since: OffsetDateTime,
        limit: u32,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut client = self.0.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        tx.execute(
            "UPDATE auth_email_tokens SET used_at = $1 WHERE user_id = $2 AND purpose = 'verify_email' \
             AND used_at IS NULL",
            &[&token.created_at, &token.user_id],
        )
        .await
        .map_err(map_err)?;
        let issued = issue_in(&tx, token, since, limit).await?;
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(issued)
    }

    async fn issue_email_change(
        &self,
        token: &NewEmailToken,
        sealed_email: Option<&[u8]>,
        since: OffsetDateTime,
        limit: u32,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut client = self.0.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        if !issue_in(&tx, token, since, limit).await? {
            return Ok(false);
        }
        let hash: &[u8] = &token.token_hash;
        tx.execute("UPDATE auth_email_tokens SET email = $1 WHERE token_hash = $2", &[&sealed_email, &hash])
            .await
            .map_err(map_err)?;
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn email_change(
        &self,
        token_hash: [u8; 32],
        purpose: EmailTokenPurpose,
        now: OffsetDateTime,
    ) -> Result<Option<(Uuid, Vec<u8>)>, StoreError> {
        let client = self.0.client().await?;
        let hash: &[u8] = &token_hash;
        let row = client
            .query_opt(
                "SELECT user_id, email FROM auth_email_tokens WHERE token_hash = $1 AND purpose = $2 \
                 AND used_at IS NULL AND expires_at > $3 AND email IS NOT NULL",
                &[&hash, &purpose.as_str(), &now],
            )
            .await
            .map_err(map_err)?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    async fn complete_email_change(
        &self,
        token_hash: [u8; 32],
        undo: &NewEmailToken,
        sealed_old: &[u8],
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut client = self.0.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let hash: &[u8] = &token_hash;
        let now = undo.created_at;
        let won = tx
            .execute(
                "UPDATE auth_email_tokens SET used_at = $1 WHERE token_hash = $2 AND user_id = $3 \
                 AND purpose = 'change_email' AND used_at IS NULL AND expires_at > $1",
                &[&now, &hash, &undo.user_id],
            )
            .await
            .map_err(map_err)?;
        if won == 0 {
            return Ok(false);
        }
        tx.execute(
            "UPDATE auth_email_tokens SET used_at = $1 WHERE user_id = $2 \
             AND purpose IN ('change_email', 'verify_email') AND used_at IS NULL",
            &[&now, &undo.user_id],
        )
        .await
        .map_err(map_err)?;
        let undo_hash: &[u8] = &undo.token_hash;
        tx.execute(
            "INSERT INTO auth_email_tokens (token_hash, user_id, purpose, created_at, expires_at, email) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&undo_hash, &undo.user_id, &undo.purpose.as_str(), &undo.created_at, &undo.expires_at, &sealed_old],
        )
        .await
        .map_err(map_err)?;
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn undo_email_change(
        &self,
        token_hash: [u8; 32],
        now: OffsetDateTime,
        event: &Event,
    ) -> Result<Option<Vec<Uuid>>, StoreError> {
        let mut client = self.0.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let hash: &[u8] = &token_hash;
        let Some(row) = tx
            .query_opt(
                "UPDATE auth_email_tokens SET used_at = $1 WHERE token_hash = $2 \
                 AND purpose = 'undo_email_change' AND used_at IS NULL AND expires_at > $1 RETURNING user_id",
                &[&now, &hash],
            )
            .await
            .map_err(map_err)?
        else {
            return Ok(None);
        };
        let user_id: Uuid = row.get(0);
        tx.execute(
            "UPDATE auth_email_tokens SET used_at = $1 WHERE user_id = $2 \
             AND purpose IN ('change_email', 'undo_email_change', 'verify_email') AND used_at IS NULL",
            &[&now, &user_id],
        )
        .await
        .map_err(map_err)?;
        let revoked = revoke_in(&tx, user_id, None, None, now).await?;
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(Some(revoked))
    }
}

fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

#[async_trait]
impl PersonalDataStore for PgAuthStore {
    async fn personal_rows(&self, subject: SubjectKeys) -> Result<PersonalRows, StoreError> {
        let id = subject.user_id;
        let mut client = self.0.client().await?;
        // One snapshot of every table.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(map_err)?;
        let credential = tx
            .query_opt("SELECT created_at, updated_at FROM auth_credentials WHERE user_id = $1", &[&id])
            .await
            .map_err(map_err)?
            .map(|r| (r.get(0), r.get(1)));
        let sessions = tx
            .query(&format!("SELECT {SESSION_COLUMNS} FROM auth_sessions s WHERE s.user_id = $1 ORDER BY s.id"), &[&id])
            .await
            .map_err(map_err)?
            .iter()
            .map(session_row)
            .collect();
        let refresh_tokens = tx
            .query(
                "SELECT t.session_id, t.issued_at, t.used_at FROM auth_refresh_tokens t \
                 JOIN auth_sessions s ON s.id = t.session_id WHERE s.user_id = $1 ORDER BY t.session_id, t.issued_at",
                &[&id],
            )
            .await
            .map_err(map_err)?
            .iter()
            .map(|r| RefreshTokenInfo { session_id: r.get(0), issued_at: r.get(1), used_at: r.get(2) })
            .collect();
        let mut login_failures = Vec::new();
        let keys = subject.login_key.map(|k| (FailureCounter::Login, k)).into_iter();
        for (counter, key) in keys.chain([(FailureCounter::SecondFactor, subject.mfa_key)]) {
            let key: &[u8] = &key;
            let row = tx
                .query_opt(
                    "SELECT consecutive, blocked_until, last_failed_at FROM auth_login_failures WHERE account_key = $1",
                    &[&key],
                )
                .await
                .map_err(map_err)?;
            if let Some(r) = row {
                login_failures.push(FailureInfo {
                    counter,
                    consecutive: count(r.get(0)),
                    blocked_until: r.get(1),
                    last_failed_at: r.get(2),
                });
            }
        }
        let totp = tx
            .query_opt("SELECT created_at, enabled_at, last_step FROM auth_totp WHERE user_id = $1", &[&id])
            .await
            .map_err(map_err)?
            .map(|r| TotpInfo { created_at: r.get(0), enabled_at: r.get(1), last_step: r.get(2) });
        let recovery_codes = tx
            .query("SELECT used_at FROM auth_recovery_codes WHERE user_id = $1", &[&id])
            .await
            .map_err(map_err)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mfa_challenges = tx
            .query(
                "SELECT user_agent, ip, created_at, expires_at, attempts, used_at \
                 FROM auth_mfa_challenges WHERE user_id = $1 ORDER BY created_at",
                &[&id],
            )
            .await
            .map_err(map_err)?
            .iter()
            .map(|r| MfaChallengeInfo {
                user_agent: r.get(0),
                ip: r.get(1),
                created_at: r.get(2),
                expires_at: r.get(3),
                attempts: count(r.get(4)),
                used_at: r.get(5),
            })
            .collect();
        let email_tokens = tx
            .query(
                "SELECT purpose, created_at, expires_at, used_at FROM auth_email_tokens WHERE user_id = $1 \
                 ORDER BY created_at",
                &[&id],
            )
            .await
            .map_err(map_err)?
            .iter()
            .map(|r| EmailTokenInfo {
                purpose: r.get(0),
                created_at: r.get(1),
                expires_at: r.get(2),
                used_at: r.get(3),
            })
            .collect();
        tx.commit().await.map_err(map_err)?;
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
    }

    async fn erase_user(
        &self,
        subject: SubjectKeys,
        now: OffsetDateTime,
        event: ErasureEvent,
    ) -> Result<Erasure, StoreError> {
        let id = subject.user_id;
        let mut client = self.0.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let revoked = revoke_in(&tx, id, None, None, now).await?;
        let mut counts = ErasedCounts::new();
        // Refresh tokens first: they are found through the sessions.
        let n = tx
            .execute(
                "DELETE FROM auth_refresh_tokens WHERE session_id IN (SELECT id FROM auth_sessions WHERE user_id = $1)",
                &[&id],
            )
            .await
            .map_err(map_err)?;
        counts.insert("auth_refresh_tokens".into(), n);
        for table in [
            "auth_sessions",
            "auth_credentials",
            "auth_totp",
            "auth_recovery_codes",
            "auth_mfa_challenges",
            "auth_email_tokens",
        ] {
            let n = tx.execute(&format!("DELETE FROM {table} WHERE user_id = $1"), &[&id]).await.map_err(map_err)?;
            counts.insert(table.into(), n);
        }
        let keys: Vec<&[u8]> = subject.login_key.iter().chain([&subject.mfa_key]).map(|k| k.as_slice()).collect();
        let n = tx
            .execute("DELETE FROM auth_login_failures WHERE account_key = ANY($1)", &[&keys])
            .await
            .map_err(map_err)?;
        counts.insert("auth_login_failures".into(), n);
        debug_assert!(PERSONAL_DATA_TABLES.iter().all(|t| counts.contains_key(*t)));
        if let Some(ev) = event(&counts) {
            outbox::insert_pg(&tx, &ev).await?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(Erasure { revoked, counts })
    }
}

#[async_trait]
impl RetentionStore for PgAuthStore {
    async fn purge_sessions(
        &self,
        before: OffsetDateTime,
        idle_before: OffsetDateTime,
        limit: i64,
    ) -> Result<(u64, u64), StoreError> {
        let client = self.0.client().await?;
        let row = self
            .0
            .query_opt(
                &client,
                "WITH s AS (SELECT id FROM auth_sessions WHERE revoked_at < $1 OR expires_at < $1 OR last_used_at < $2 \
                 LIMIT $3 FOR UPDATE SKIP LOCKED), \
                 t AS (DELETE FROM auth_refresh_tokens WHERE session_id IN (SELECT id FROM s) RETURNING 1), \
                 d AS (DELETE FROM auth_sessions WHERE id IN (SELECT id FROM s) RETURNING 1) \
                 SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM t)",
                &[&before, &idle_before, &limit],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        let (s, t): (i64, i64) = (row.try_get(0).map_err(map_err)?, row.try_get(1).map_err(map_err)?);
        Ok((s as u64, t as u64))
    }

    async fn purge_email_tokens(&self, before: OffsetDateTime, limit: i64) -> Result<u64, StoreError> {
        self.purge_where(
            "DELETE FROM auth_email_tokens WHERE token_hash IN \
             (SELECT token_hash FROM auth_email_tokens WHERE expires_at < $1 LIMIT $2)",
            before,
            limit,
        )
        .await
    }

    async fn purge_mfa_challenges(&self, before: OffsetDateTime, limit: i64) -> Result<u64, StoreError> {
        self.purge_where(
            "DELETE FROM auth_mfa_challenges WHERE token_hash IN \
             (SELECT token_hash FROM auth_mfa_challenges WHERE expires_at < $1 LIMIT $2)",
            before,
            limit,
        )
        .await
    }

    async fn purge_login_failures(&self, before: OffsetDateTime, limit: i64) -> Result<u64, StoreError> {
        self.purge_where(
            "DELETE FROM auth_login_failures WHERE account_key IN (SELECT account_key FROM auth_login_failures \
             WHERE last_failed_at < $1 AND blocked_until < $1 LIMIT $2)",
            before,
            limit,
        )
        .await
    }
}

/// Replaces the user's recovery codes with `hashes`, inside the caller's transaction.
async fn put_recovery_codes(
    tx: &tokio_postgres::Transaction<'_>,
    user_id: Uuid,
    hashes: &[[u8; 32]],
) -> Result<(), StoreError> {
    tx.execute("DELETE FROM auth_recovery_codes WHERE user_id = $1", &[&user_id]).await.map_err(map_err)?;
    let hashes: Vec<&[u8]> = hashes.iter().map(|h| h.as_slice()).collect();
    tx.execute(
        "INSERT INTO auth_recovery_codes (user_id, code_hash) SELECT $1, h FROM unnest($2::bytea[]) AS h",
        &[&user_id, &hashes],
    )
    .await
    .map_err(map_err)?;
    Ok(())
}
