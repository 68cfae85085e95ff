//! `UserStore` on SQLite.

use api::users::{Role, UserStatus};
use async_trait::async_trait;
use platform::bus::Event;
use platform::db::sqlite::map_err;
use platform::db::{SqliteDb, StoreError};
use platform::outbox;
use rusqlite::{OptionalExtension as _, Transaction, params};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::pii::SearchToken;
use crate::ports::{EventRecord, PlaintextSealer, SearchFilter, StoredUser, UpdateOutcome, UserStore};

/// The `Conflict` of `begin_erasure` for the last active administrator.
const LAST_ADMIN: &str = "the last active administrator cannot be erased";

pub struct SqliteUserStore(pub SqliteDb);

const COLUMNS: &str = "id, email_index, email, name, preferences, data_key, key_version, role, status, \
                       email_verified, mfa_enabled, created_at, updated_at, erasure_started_at, erased_at";

fn ts(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn bad(col: usize, msg: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, msg.to_string().into())
}

fn time_at(r: &rusqlite::Row<'_>, col: usize) -> rusqlite::Result<OffsetDateTime> {
    let s: String = r.get(col)?;
    OffsetDateTime::parse(&s, &Rfc3339).map_err(|_| bad(col, "time"))
}

fn opt_time_at(r: &rusqlite::Row<'_>, col: usize) -> rusqlite::Result<Option<OffsetDateTime>> {
    let s: Option<String> = r.get(col)?;
    s.map(|s| OffsetDateTime::parse(&s, &Rfc3339).map_err(|_| bad(col, "time"))).transpose()
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredUser> {
    let role: String = r.get(7)?;
    let status: String = r.get(8)?;
    Ok(StoredUser {
        id: r.get(0)?,
        email_index: r.get(1)?,
        email: r.get(2)?,
        name: r.get(3)?,
        preferences: r.get(4)?,
        data_key: r.get(5)?,
        key_version: r.get(6)?,
        role: Role::parse(&role).ok_or_else(|| bad(7, "role"))?,
        status: UserStatus::parse(&status).ok_or_else(|| bad(8, "status"))?,
        email_verified: r.get(9)?,
        mfa_enabled: r.get(10)?,
        created_at: time_at(r, 11)?,
        updated_at: time_at(r, 12)?,
        erasure_started_at: opt_time_at(r, 13)?,
        erased_at: opt_time_at(r, 14)?,
    })
}

fn replace_tokens(tx: &Transaction<'_>, id: Uuid, tokens: &[SearchToken]) -> Result<(), StoreError> {
    tx.execute("DELETE FROM user_search_tokens WHERE user_id = ?1", [id]).map_err(map_err)?;
    let mut stmt =
        tx.prepare_cached("INSERT INTO user_search_tokens (token, user_id) VALUES (?1, ?2)").map_err(map_err)?;
    for t in tokens {
        stmt.execute(params![t.as_slice(), id]).map_err(map_err)?;
    }
    Ok(())
}

fn insert_row(tx: &Transaction<'_>, u: &StoredUser) -> Result<(), StoreError> {
    tx.execute(
        &format!(
            "INSERT INTO users ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
        ),
        params![
            u.id,
            u.email_index,
            u.email,
            u.name,
            u.preferences,
            u.data_key,
            u.key_version,
            u.role.as_str(),
            u.status.as_str(),
            u.email_verified,
            u.mfa_enabled,
            ts(u.created_at),
            ts(u.updated_at),
            u.erasure_started_at.map(ts),
            u.erased_at.map(ts),
        ],
    )
    .map_err(map_err)?;
    Ok(())
}

fn get_row(c: &rusqlite::Connection, id: Uuid) -> Result<StoredUser, StoreError> {
    c.prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE id = ?1"))
        .and_then(|mut s| s.query_row([id], row))
        .map_err(map_err)
}

#[async_trait]
impl UserStore for SqliteUserStore {
    async fn insert(&self, user: &StoredUser, tokens: &[SearchToken], event: &Event) -> Result<(), StoreError> {
        let (u, tokens, ev) = (user.clone(), tokens.to_vec(), event.clone());
        self.0
            .write(move |tx| {
                insert_row(tx, &u)?;
                replace_tokens(tx, u.id, &tokens)?;
                outbox::insert_sqlite(tx, &ev)
            })
            .await
    }

    async fn get(&self, id: Uuid) -> Result<StoredUser, StoreError> {
        self.0
            .read(move |c| {
                c.prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE id = ?1"))?.query_row([id], row)
            })
            .await
    }

    async fn find_by_email_index(&self, index: &[u8]) -> Result<StoredUser, StoreError> {
        let index = index.to_vec();
        self.0
            .read(move |c| {
                c.prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE email_index = ?1"))?
                    .query_row([index], row)
            })
            .await
    }

    async fn set_mfa_enabled(&self, id: Uuid, enabled: bool, at: OffsetDateTime) -> Result<(), StoreError> {
        self.0
            .write(move |tx| {
                let changed = tx
                    .execute(
                        "UPDATE users SET mfa_enabled = ?1, updated_at = ?2 WHERE id = ?3",
                        params![enabled, ts(at), id],
                    )
                    .map_err(map_err)?;
                if changed == 0 { Err(StoreError::NotFound) } else { Ok(()) }
            })
            .await
    }

    async fn update(
        &self,
        user: &StoredUser,
        read: &StoredUser,
        tokens: Option<&[SearchToken]>,
        keep_an_admin: bool,
        events: &[Event],
    ) -> Result<UpdateOutcome, StoreError> {
        let (u, read_at, read_version) = (user.clone(), read.updated_at, read.key_version);
        let (tokens, evs) = (tokens.map(<[SearchToken]>::to_vec), events.to_vec());
        // One writer: the whole check-and-write is serialized with every other write.
        self.0
            .write(move |tx| {
                let stored: Option<(String, u32)> = tx
                    .query_row("SELECT updated_at, key_version FROM users WHERE id = ?1", [u.id], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()
                    .map_err(map_err)?;
                let Some((stored_at, stored_version)) = stored else { return Err(StoreError::NotFound) };
                if stored_at != ts(read_at) || stored_version != read_version {
                    return Ok(UpdateOutcome::Stale);
                }
                if keep_an_admin {
                    let others: i64 = tx
                        .query_row(
                            "SELECT count(*) FROM users WHERE role = 'admin' AND status = 'active' AND id <> ?1",
                            [u.id],
                            |r| r.get(0),
                        )
                        .map_err(map_err)?;
                    if others == 0 {
                        return Ok(UpdateOutcome::LastAdmin);
                    }
                }
                tx.execute(
                    "UPDATE users SET email_index = ?2, email = ?3, name = ?4, preferences = ?5, role = ?6, \
                     status = ?7, email_verified = ?8, updated_at = ?9 WHERE id = ?1",
                    params![
                        u.id,
                        u.email_index,
                        u.email,
                        u.name,
                        u.preferences,
                        u.role.as_str(),
                        u.status.as_str(),
                        u.email_verified,
                        ts(u.updated_at)
                    ],
                )
                .map_err(map_err)?;
                if let Some(tokens) = &tokens {
                    replace_tokens(tx, u.id, tokens)?;
                }
                for ev in &evs {
                    outbox::insert_sqlite(tx, ev)?;
                }
                Ok(UpdateOutcome::Updated)
            })
            .await
    }

    async fn active_admins(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .0
            .read(|c| {
                c.query_row("SELECT count(*) FROM users WHERE role = 'admin' AND status = 'active'", [], |r| r.get(0))
            })
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn delete(&self, id: Uuid) -> Result<(), StoreError> {
        self.0
            .write(move |tx| {
                tx.execute("DELETE FROM users WHERE id = ?1", [id]).map_err(map_err)?;
                Ok(())
            })
            .await
    }

    async fn set_email_verified(&self, id: Uuid, at: OffsetDateTime, event: &Event) -> Result<bool, StoreError> {
        let ev = event.clone();
        self.0
            .write(move |tx| {
                let changed = tx
                    .execute(
                        "UPDATE users SET email_verified = 1, updated_at = ?1 WHERE id = ?2 AND email_verified = 0",
                        params![ts(at), id],
                    )
                    .map_err(map_err)?;
                if changed == 0 {
                    let exists: bool = tx
                        .query_row("SELECT EXISTS(SELECT 1 FROM users WHERE id = ?1)", [id], |r| r.get(0))
                        .map_err(map_err)?;
                    return if exists { Ok(false) } else { Err(StoreError::NotFound) };
                }
                outbox::insert_sqlite(tx, &ev)?;
                Ok(true)
            })
            .await
    }

    async fn search(&self, f: &SearchFilter) -> Result<Vec<StoredUser>, StoreError> {
        let f = f.clone();
        self.0
            .read(move |c| {
                // Tokens as a JSON array of hex strings: one statement whatever their number.
                let tokens = serde_json::to_string(&f.tokens.iter().map(hex::encode).collect::<Vec<_>>())
                    .unwrap_or_else(|_| "[]".into());
                let ids = f.ids.as_ref().map(|ids| {
                    serde_json::to_string(&ids.iter().map(|id| id.simple().to_string()).collect::<Vec<_>>())
                        .unwrap_or_else(|_| "[]".into())
                });
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM users u \
                     WHERE (?1 IS NULL OR u.id > ?1) \
                       AND (?2 IS NULL OR u.status = ?2) AND (?3 IS NULL OR u.role = ?3) \
                       AND (?5 = 0 OR u.id IN (SELECT user_id FROM user_search_tokens \
                                               WHERE token IN (SELECT unhex(value) FROM json_each(?4)) \
                                               GROUP BY user_id HAVING count(*) = ?5)) \
                       AND (?7 IS NULL OR u.id IN (SELECT unhex(value) FROM json_each(?7))) \
                     ORDER BY u.id LIMIT ?6"
                ))?;
                let rows = stmt.query_map(
                    params![
                        f.after,
                        f.status.map(UserStatus::as_str),
                        f.role.map(Role::as_str),
                        tokens,
                        f.tokens.len() as i64,
                        f.limit,
                        ids
                    ],
                    row,
                )?;
                rows.collect()
            })
            .await
    }

    async fn stale_keys(&self, current: u32, limit: u32) -> Result<Vec<StoredUser>, StoreError> {
        self.0
            .read(move |c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM users WHERE key_version <> ?1 AND data_key IS NOT NULL ORDER BY id LIMIT ?2"
                ))?;
                let rows = stmt.query_map(params![current, limit], row)?;
                rows.collect()
            })
            .await
    }

    async fn count_stale_keys(&self, current: u32) -> Result<u64, StoreError> {
        let n: i64 = self
            .0
            .read(move |c| {
                c.query_row(
                    "SELECT count(*) FROM users WHERE key_version <> ?1 AND data_key IS NOT NULL",
                    [current],
                    |r| r.get(0),
                )
            })
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn rekey(&self, rows: &[(StoredUser, StoredUser)]) -> Result<u64, StoreError> {
        let rows = rows.to_vec();
        self.0
            .write(move |tx| {
                let mut stmt = tx
                    .prepare_cached(
                        "UPDATE users SET email = ?2, name = ?3, preferences = ?4, data_key = ?5, key_version = ?6 \
                         WHERE id = ?1 AND key_version = ?7 AND updated_at = ?8",
                    )
                    .map_err(map_err)?;
                let mut written = 0u64;
                for (new, read) in &rows {
                    written += stmt
                        .execute(params![
                            new.id,
                            new.email,
                            new.name,
                            new.preferences,
                            new.data_key,
                            new.key_version,
                            read.key_version,
                            ts(read.updated_at)
                        ])
                        .map_err(map_err)? as u64;
                }
                Ok(written)
            })
            .await
    }

    async fn begin_erasure(&self, id: Uuid, at: OffsetDateTime, event: &Event) -> Result<StoredUser, StoreError> {
        let ev = event.clone();
        self.0
            .write(move |tx| {
                // The last-admin rule, decided under the single writer.
                let admins: Vec<Uuid> = {
                    let mut stmt = tx
                        .prepare_cached("SELECT id FROM users WHERE role = 'admin' AND status = 'active'")
                        .map_err(map_err)?;
                    let rows = stmt.query_map([], |r| r.get(0)).map_err(map_err)?;
                    rows.collect::<rusqlite::Result<_>>().map_err(map_err)?
                };
                if admins == [id] {
                    return Err(StoreError::Conflict(LAST_ADMIN.into()));
                }
                let changed = tx
                    .execute(
                        "UPDATE users SET status = 'deleted', erasure_started_at = ?2, updated_at = ?2 \
                         WHERE id = ?1 AND erasure_started_at IS NULL",
                        params![id, ts(at)],
                    )
                    .map_err(map_err)?;
                if changed > 0 {
                    outbox::insert_sqlite(tx, &ev)?;
                }
                get_row(tx, id)
            })
            .await
    }

    async fn finish_erasure(&self, id: Uuid, at: OffsetDateTime, event: &Event) -> Result<bool, StoreError> {
        let ev = event.clone();
        self.0
            .write(move |tx| {
                let changed = tx
                    .execute(
                        "UPDATE users SET email_index = NULL, email = NULL, name = NULL, preferences = NULL, \
                         data_key = NULL, erased_at = ?2, updated_at = ?2 WHERE id = ?1 AND erased_at IS NULL",
                        params![id, ts(at)],
                    )
                    .map_err(map_err)?;
                if changed == 0 {
                    return Ok(false);
                }
                tx.execute("DELETE FROM user_search_tokens WHERE user_id = ?1", [id]).map_err(map_err)?;
                outbox::insert_sqlite(tx, &ev)?;
                Ok(true)
            })
            .await
    }

    async fn unfinished_erasures(&self) -> Result<Vec<Uuid>, StoreError> {
        self.0
            .read(|c| {
                let mut stmt = c.prepare_cached(
                    "SELECT id FROM users WHERE erasure_started_at IS NOT NULL AND erased_at IS NULL ORDER BY id",
                )?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                rows.collect()
            })
            .await
    }

    async fn purge_erased(&self, before: OffsetDateTime, limit: i64) -> Result<u64, StoreError> {
        // `erased_at` is RFC 3339 text whose fractions vary in length: compared as time.
        let before = before.unix_timestamp_nanos() as f64 / 1e9;
        self.0
            .write(move |tx| {
                tx.execute(
                    "DELETE FROM users WHERE id IN (SELECT id FROM users WHERE status = 'deleted' \
                     AND unixepoch(erased_at, 'subsec') < ?1 LIMIT ?2)",
                    params![before, limit],
                )
                .map(|n| n as u64)
                .map_err(map_err)
            })
            .await
    }

    async fn record(&self, event: &Event) -> Result<(), StoreError> {
        let ev = event.clone();
        self.0.write(move |tx| outbox::insert_sqlite(tx, &ev)).await
    }

    async fn count_tokens(&self, id: Uuid) -> Result<u64, StoreError> {
        let n: i64 = self
            .0
            .read(move |c| {
                c.query_row("SELECT count(*) FROM user_search_tokens WHERE user_id = ?1", [id], |r| r.get(0))
            })
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn events_about(&self, id: Uuid) -> Result<Vec<EventRecord>, StoreError> {
        self.0
            .read(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT id, event_type, aggregate_id, actor_id, occurred_at, data FROM outbox \
                     WHERE aggregate_id = ?1 OR actor_id = ?1 ORDER BY seq",
                )?;
                let rows = stmt.query_map([id], |r| {
                    let data: String = r.get(5)?;
                    Ok(EventRecord {
                        id: r.get(0)?,
                        event_type: r.get(1)?,
                        aggregate_id: r.get(2)?,
                        actor_id: r.get(3)?,
                        occurred_at: time_at(r, 4)?,
                        data: serde_json::from_str(&data).map_err(|_| bad(5, "json"))?,
                    })
                })?;
                rows.collect()
            })
            .await
    }

    async fn adopt_plaintext(&self, seal: &PlaintextSealer) -> Result<u64, StoreError> {
        let exists: bool = self
            .0
            .read(|c| {
                c.query_row(
                    "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'users_plaintext')",
                    [],
                    |r| r.get(0),
                )
            })
            .await?;
        if !exists {
            return Ok(0);
        }
        let plain: Vec<crate::ports::PlaintextRow> = self
            .0
            .read(|c| {
                let mut stmt = c.prepare(
                    "SELECT id, email, name, role, status, email_verified, mfa_enabled, created_at, updated_at \
                     FROM users_plaintext",
                )?;
                let rows = stmt.query_map([], |r| {
                    let (role, status): (String, String) = (r.get(3)?, r.get(4)?);
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        Role::parse(&role).ok_or_else(|| bad(3, "role"))?,
                        UserStatus::parse(&status).ok_or_else(|| bad(4, "status"))?,
                        r.get(5)?,
                        r.get(6)?,
                        time_at(r, 7)?,
                        time_at(r, 8)?,
                    ))
                })?;
                rows.collect()
            })
            .await?;
        let sealed: Vec<(StoredUser, Vec<SearchToken>)> = plain.into_iter().map(seal).collect();
        self.0
            .write(move |tx| {
                // Re-checked inside the one writer: a concurrent start may have moved them.
                let still: bool = tx
                    .query_row(
                        "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'users_plaintext')",
                        [],
                        |r| r.get(0),
                    )
                    .map_err(map_err)?;
                if !still {
                    return Ok(0);
                }
                for (user, tokens) in &sealed {
                    insert_row(tx, user)?;
                    replace_tokens(tx, user.id, tokens)?;
                }
                tx.execute("DROP TABLE users_plaintext", []).map_err(map_err)?;
                Ok(sealed.len() as u64)
            })
            .await
    }
}
