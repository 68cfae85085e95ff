//! `UserStore` on PostgreSQL.

use api::users::{Role, UserStatus};
use async_trait::async_trait;
use deadpool_postgres::Transaction;
use platform::bus::Event;
use platform::db::postgres::map_err;
use platform::db::{PgDb, StoreError};
use platform::outbox;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::pii::SearchToken;
use crate::ports::{EventRecord, PlaintextSealer, SearchFilter, StoredUser, UpdateOutcome, UserStore};

/// The `Conflict` of `begin_erasure` for the last active administrator.
const LAST_ADMIN: &str = "the last active administrator cannot be erased";

pub struct PgUserStore(pub PgDb);

const COLUMNS: &str = "id, email_index, email, name, preferences, data_key, key_version, role, status, \
                       email_verified, mfa_enabled, created_at, updated_at, erasure_started_at, erased_at";

fn row(r: &tokio_postgres::Row) -> Result<StoredUser, StoreError> {
    let role: String = r.get(7);
    let status: String = r.get(8);
    let version: i32 = r.get(6);
    Ok(StoredUser {
        id: r.get(0),
        email_index: r.get(1),
        email: r.get(2),
        name: r.get(3),
        preferences: r.get(4),
        data_key: r.get(5),
        key_version: u32::try_from(version).map_err(|_| StoreError::Internal(format!("bad key version {version}")))?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Internal(format!("bad role {role}")))?,
        status: UserStatus::parse(&status).ok_or_else(|| StoreError::Internal(format!("bad status {status}")))?,
        email_verified: r.get(9),
        mfa_enabled: r.get(10),
        created_at: r.get(11),
        updated_at: r.get(12),
        erasure_started_at: r.get(13),
        erased_at: r.get(14),
    })
}

fn version(u: &StoredUser) -> i32 {
    i32::try_from(u.key_version).unwrap_or(i32::MAX)
}

async fn replace_tokens(tx: &Transaction<'_>, id: Uuid, tokens: &[SearchToken]) -> Result<(), StoreError> {
    tx.execute("DELETE FROM user_search_tokens WHERE user_id = $1", &[&id]).await.map_err(map_err)?;
    if !tokens.is_empty() {
        let all: Vec<&[u8]> = tokens.iter().map(|t| t.as_slice()).collect();
        let stmt = tx
            .prepare_cached("INSERT INTO user_search_tokens (token, user_id) SELECT unnest($1::bytea[]), $2")
            .await
            .map_err(map_err)?;
        tx.execute(&stmt, &[&all, &id]).await.map_err(map_err)?;
    }
    Ok(())
}

async fn insert_row(tx: &Transaction<'_>, u: &StoredUser) -> Result<(), StoreError> {
    let stmt = tx
        .prepare_cached(&format!(
            "INSERT INTO users ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ))
        .await
        .map_err(map_err)?;
    tx.execute(
        &stmt,
        &[
            &u.id,
            &u.email_index,
            &u.email,
            &u.name,
            &u.preferences,
            &u.data_key,
            &version(u),
            &u.role.as_str(),
            &u.status.as_str(),
            &u.email_verified,
            &u.mfa_enabled,
            &u.created_at,
            &u.updated_at,
            &u.erasure_started_at,
            &u.erased_at,
        ],
    )
    .await
    .map_err(map_err)?;
    Ok(())
}

impl PgUserStore {
    async fn one(
        &self,
        sql: &str,
        param: &(dyn tokio_postgres::types::ToSql + Sync),
    ) -> Result<StoredUser, StoreError> {
        let client = self.0.client().await?;
        let stmt = client.prepare_cached(sql).await.map_err(map_err)?;
        let found = client.query_opt(&stmt, &[param]).await.map_err(map_err)?;
        found.as_ref().map(row).unwrap_or(Err(StoreError::NotFound))
    }
}

#[async_trait]
impl UserStore for PgUserStore {
    async fn insert(&self, u: &StoredUser, tokens: &[SearchToken], event: &Event) -> Result<(), StoreError> {
        let mut client = self.0.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        insert_row(&tx, u).await?;
        replace_tokens(&tx, u.id, tokens).await?;
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn get(&self, id: Uuid) -> Result<StoredUser, StoreError> {
        self.one(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"), &id).await
    }

    async fn find_by_email_index(&self, index: &[u8]) -> Result<StoredUser, StoreError> {
        self.one(&format!("SELECT {COLUMNS} FROM users WHERE email_index = $1"), &index).await
    }

    async fn set_mfa_enabled(&self, id: Uuid, enabled: bool, at: OffsetDateTime) -> Result<(), StoreError> {
        let client = self.0.client().await?;
        let changed = client
            .execute("UPDATE users SET mfa_enabled = $1, updated_at = $2 WHERE id = $3", &[&enabled, &at, &id])
            .await
            .map_err(map_err)?;
        if changed == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn update(
        &self,
        u: &StoredUser,
        read: &StoredUser,
        tokens: Option<&[SearchToken]>,
        keep_an_admin: bool,
        events: &[Event],
    ) -> Result<UpdateOutcome, StoreError> {
        let mut client = self.0.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        if keep_an_admin {
            // Lock every active administrator (in id order, so concurrent demotions queue instead
            // of deadlocking); a demotion that committed meanwhile no longer matches and drops out.
            let stmt = tx
                .prepare_cached(
                    "SELECT id FROM users WHERE role = 'admin' AND status = 'active' ORDER BY id FOR UPDATE",
                )
                .await
                .map_err(map_err)?;
            let admins = tx.query(&stmt, &[]).await.map_err(map_err)?;
            if admins.iter().all(|r| r.get::<_, Uuid>(0) == u.id) {
                return Ok(UpdateOutcome::LastAdmin);
            }
        }
        let stmt = tx
            .prepare_cached(
                "UPDATE users SET email_index = $2, email = $3, name = $4, preferences = $5, role = $6, \
                 status = $7, email_verified = $8, updated_at = $9 \
                 WHERE id = $1 AND updated_at = $10 AND key_version = $11",
            )
            .await
            .map_err(map_err)?;
        let changed = tx
            .execute(
                &stmt,
                &[
                    &u.id,
                    &u.email_index,
                    &u.email,
                    &u.name,
                    &u.preferences,
                    &u.role.as_str(),
                    &u.status.as_str(),
                    &u.email_verified,
                    &u.updated_at,
                    &read.updated_at,
                    &version(read),
                ],
            )
            .await
            .map_err(map_err)?;
        if changed == 0 {
            let exists: bool = tx
                .query_one("SELECT EXISTS(SELECT 1 FROM users WHERE id = $1)", &[&u.id])
                .await
                .map_err(map_err)?
                .get(0);
            return if exists { Ok(UpdateOutcome::Stale) } else { Err(StoreError::NotFound) };
        }
        if let Some(tokens) = tokens {
            replace_tokens(&tx, u.id, tokens).await?;
        }
        for ev in events {
            outbox::insert_pg(&tx, ev).await?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(UpdateOutcome::Updated)
    }

    async fn active_admins(&self) -> Result<u64, StoreError> {
        let client = self.0.client().await?;
        let stmt = client
            .prepare_cached("SELECT count(*) FROM users WHERE role = 'admin' AND status = 'active'")
            .await
            .map_err(map_err)?;
        let n: i64 = client.query_one(&stmt, &[]).await.map_err(map_err)?.get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn delete(&self, id: Uuid) -> Result<(), StoreError> {
        let client = self.0.client().await?;
        client.execute("DELETE FROM users WHERE id = $1", &[&id]).await.map_err(map_err)?;
        Ok(())
    }

    async fn set_email_verified(&self, id: Uuid, at: OffsetDateTime, event: &Event) -> Result<bool, StoreError> {
        let mut client = self.0.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let changed = tx
            .execute(
                "UPDATE users SET email_verified = true, updated_at = $1 WHERE id = $2 AND NOT email_verified",
                &[&at, &id],
            )
            .await
            .map_err(map_err)?;
        if changed == 0 {
            let exists: bool =
                tx.query_one("SELECT EXISTS(SELECT 1 FROM users WHERE id = $1)", &[&id]).await.map_err(map_err)?.get(0);
            return if exists { Ok(false) } else { Err(StoreError::NotFound) };
        }
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn search(&self, f: &SearchFilter) -> Result<Vec<StoredUser>, StoreError> {
        let client = self.0.client().await?;
        let tokens: Vec<&[u8]> = f.tokens.iter().map(|t| t.as_slice()).collect();
        let n_tokens = i64::try_from(tokens.len()).unwrap_or(i64::MAX);
        let role = f.role.map(Role::as_str);
        let status = f.status.map(UserStatus::as_str);
        let limit = i64::from(f.limit);
        // With tokens, the users holding all of them; the planner starts from the token index.
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM users u \
                 WHERE ($1::uuid IS NULL OR u.id > $1) \
                   AND ($2::text IS NULL OR u.status = $2) AND ($3::text IS NULL OR u.role = $3) \
                   AND ($5::bigint = 0 OR u.id IN (SELECT user_id FROM user_search_tokens WHERE token = ANY($4) \
                                           GROUP BY user_id HAVING count(*) = $5)) \
                   AND ($7::uuid[] IS NULL OR u.id = ANY($7)) \
                 ORDER BY u.id LIMIT $6"
            ))
            .await
            .map_err(map_err)?;
        let rows = client
            .query(&stmt, &[&f.after, &status, &role, &tokens, &n_tokens, &limit, &f.ids])
            .await
            .map_err(map_err)?;
        rows.iter().map(row).collect()
    }

    async fn stale_keys(&self, current: u32, limit: u32) -> Result<Vec<StoredUser>, StoreError> {
        let client = self.0.client().await?;
        let current = i32::try_from(current).unwrap_or(i32::MAX);
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM users WHERE key_version <> $1 AND data_key IS NOT NULL ORDER BY id LIMIT $2"
            ))
            .await
            .map_err(map_err)?;
        let rows = client.query(&stmt, &[&current, &i64::from(limit)]).await.map_err(map_err)?;
        rows.iter().map(row).collect()
    }

    async fn count_stale_keys(&self, current: u32) -> Result<u64, StoreError> {
        let client = self.0.client().await?;
        let current = i32::try_from(current).unwrap_or(i32::MAX);
        let n: i64 = client
            .query_one("SELECT count(*) FROM users WHERE key_version <> $1 AND data_key IS NOT NULL", &[&current])
            .await
            .map_err(map_err)?
            .get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn rekey(&self, rows: &[(StoredUser, StoredUser)]) -> Result<u64, StoreError> {
        let mut client = self.0.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let stmt = tx
            .prepare_cached(
                "UPDATE users SET email = $2, name = $3, preferences = $4, data_key = $5, key_version = $6 \
                 WHERE id = $1 AND key_version = $7 AND updated_at = $8",
            )
            .await
            .map_err(map_err)?;
        let mut written = 0;
        for (new, read) in rows {
            written += tx
                .execute(
                    &stmt,
                    &[
                        &new.id,
                        &new.email,
                        &new.name,
                        &new.preferences,
                        &new.data_key,
                        &version(new),
                        &version(read),
                        &read.updated_at,
                    ],
                )
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(written)
    }

    async fn begin_erasure(&self, id: Uuid, at: OffsetDateTime, event: &Event) -> Result<StoredUser, StoreError> {
        let mut client = self.0.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        // The last-admin rule, decided here: every active administrator locked in id order (the
        // order `update` takes them in, so the two queue instead of deadlocking); one erased or
        // demoted meanwhile no longer matches once its transaction commits.
        let stmt = tx
            .prepare_cached("SELECT id FROM users WHERE role = 'admin' AND status = 'active' ORDER BY id FOR UPDATE")
            .await
            .map_err(map_err)?;
        let admins: Vec<Uuid> = tx.query(&stmt, &[]).await.map_err(map_err)?.iter().map(|r| r.get(0)).collect();
        if admins == [id] {
            return Err(StoreError::Conflict(LAST_ADMIN.into()));
        }
        let changed = tx
            .execute(
                "UPDATE users SET status = 'deleted', erasure_started_at = $2, updated_at = $2 \
                 WHERE id = $1 AND erasure_started_at IS NULL",
                &[&id, &at],
            )
            .await
            .map_err(map_err)?;
        if changed > 0 {
            outbox::insert_pg(&tx, event).await?;
        }
        let found =
            tx.query_opt(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"), &[&id]).await.map_err(map_err)?;
        let user = found.as_ref().map(row).unwrap_or(Err(StoreError::NotFound))?;
        tx.commit().await.map_err(map_err)?;
        Ok(user)
    }

    async fn finish_erasure(&self, id: Uuid, at: OffsetDateTime, event: &Event) -> Result<bool, StoreError> {
        let mut client = self.0.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let changed = tx
            .execute(
                "UPDATE users SET email_index = NULL, email = NULL, name = NULL, preferences = NULL, \
                 data_key = NULL, erased_at = $2, updated_at = $2 WHERE id = $1 AND erased_at IS NULL",
                &[&id, &at],
            )
            .await
            .map_err(map_err)?;
        if changed == 0 {
            return Ok(false);
        }
        tx.execute("DELETE FROM user_search_tokens WHERE user_id = $1", &[&id]).await.map_err(map_err)?;
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn unfinished_erasures(&self) -> Result<Vec<Uuid>, StoreError> {
        let client = self.0.client().await?;
        let rows = client
            .query("SELECT id FROM users WHERE erasure_started_at IS NOT NULL AND erased_at IS NULL ORDER BY id", &[])
            .await
            .map_err(map_err)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn purge_erased(&self, before: OffsetDateTime, limit: i64) -> Result<u64, StoreError> {
        let client = self.0.client().await?;
        self.0
            .execute(
                &client,
                "DELETE FROM users WHERE id IN \
                 (SELECT id FROM users WHERE status = 'deleted' AND erased_at < $1 LIMIT $2)",
                &[&before, &limit],
            )
            .await
    }

    async fn record(&self, event: &Event) -> Result<(), StoreError> {
        let mut client = self.0.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn count_tokens(&self, id: Uuid) -> Result<u64, StoreError> {
        let client = self.0.client().await?;
        let n: i64 = client
            .query_one("SELECT count(*) FROM user_search_tokens WHERE user_id = $1", &[&id])
            .await
            .map_err(map_err)?
            .get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn events_about(&self, id: Uuid) -> Result<Vec<EventRecord>, StoreError> {
        let client = self.0.client().await?;
        let rows = client
            .query(
                "SELECT id, event_type, aggregate_id, actor_id, occurred_at, data FROM outbox \
                 WHERE aggregate_id = $1 OR actor_id = $1 ORDER BY seq",
                &[&id],
            )
            .await
            .map_err(map_err)?;
        Ok(rows
            .iter()
            .map(|r| EventRecord {
                id: r.get(0),
                event_type: r.get(1),
                aggregate_id: r.get(2),
                actor_id: r.get(3),
                occurred_at: r.get(4),
                data: r.get(5),
            })
            .collect())
    }

    async fn adopt_plaintext(&self, seal: &PlaintextSealer) -> Result<u64, StoreError> {
        let mut client = self.0.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let exists: bool =
            tx.query_one("SELECT to_regclass('users_plaintext') IS NOT NULL", &[]).await.map_err(map_err)?.get(0);
        if !exists {
            return Ok(0);
        }
        let rows = tx
            .query(
                "SELECT id, email, name, role, status, email_verified, mfa_enabled, created_at, updated_at \
                 FROM users_plaintext FOR UPDATE",
                &[],
            )
            .await
            .map_err(map_err)?;
        let mut moved = 0;
        for r in &rows {
            let (role, status): (String, String) = (r.get(3), r.get(4));
            let plain = (
                r.get(0),
                r.get(1),
                r.get(2),
                Role::parse(&role).ok_or_else(|| StoreError::Internal(format!("bad role {role}")))?,
                UserStatus::parse(&status).ok_or_else(|| StoreError::Internal(format!("bad status {status}")))?,
                r.get(5),
                r.get(6),
                r.get(7),
                r.get(8),
            );
            let (user, tokens) = seal(plain);
            insert_row(&tx, &user).await?;
            replace_tokens(&tx, user.id, &tokens).await?;
            moved += 1;
        }
        // A runtime role without DDL (docs/OPERATIONS.md, "PostgreSQL: an owner role for
        // migrations") cannot drop the table: it empties it, and the owner may drop it later.
        let owner: bool = tx
            .query_one(
                "SELECT pg_has_role(current_user, tableowner, 'MEMBER') FROM pg_tables \
                 WHERE schemaname = current_schema() AND tablename = 'users_plaintext'",
                &[],
            )
            .await
            .map_err(map_err)?
            .get(0);
        let drop = if owner { "DROP TABLE users_plaintext" } else { "DELETE FROM users_plaintext" };
        tx.execute(drop, &[]).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(moved)
    }
}
