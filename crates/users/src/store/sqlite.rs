//! `UserStore` on SQLite.

use api::users::{Role, User, UserStatus};
use async_trait::async_trait;
use platform::bus::Event;
use platform::db::sqlite::map_err;
use platform::db::{SqliteDb, StoreError};
use platform::outbox;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::ports::{UpdateOutcome, UserStore};

pub struct SqliteUserStore(pub SqliteDb);

const COLUMNS: &str = "id, email, name, role, status, email_verified, created_at, updated_at, mfa_enabled";

fn ts(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn bad(col: usize, msg: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, msg.to_string().into())
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    let role: String = r.get(3)?;
    let status: String = r.get(4)?;
    let created: String = r.get(6)?;
    let updated: String = r.get(7)?;
    Ok(User {
        id: r.get(0)?,
        email: r.get(1)?,
        name: r.get(2)?,
        role: Role::parse(&role).ok_or_else(|| bad(3, "role"))?,
        status: UserStatus::parse(&status).ok_or_else(|| bad(4, "status"))?,
        email_verified: r.get(5)?,
        mfa_enabled: r.get(8)?,
        created_at: OffsetDateTime::parse(&created, &Rfc3339).map_err(|_| bad(6, "time"))?,
        updated_at: OffsetDateTime::parse(&updated, &Rfc3339).map_err(|_| bad(7, "time"))?,
    })
}

#[async_trait]
impl UserStore for SqliteUserStore {
    async fn insert(&self, user: &User, event: &Event) -> Result<(), StoreError> {
        let (u, ev) = (user.clone(), event.clone());
        self.0
            .write(move |tx| {
                tx.execute(
                    &format!("INSERT INTO users ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                    rusqlite::params![
                        u.id,
                        u.email,
                        u.name,
                        u.role.as_str(),
                        u.status.as_str(),
                        u.email_verified,
                        ts(u.created_at),
                        ts(u.updated_at),
                        u.mfa_enabled
                    ],
                )
                .map_err(map_err)?;
                outbox::insert_sqlite(tx, &ev)
            })
            .await
    }

    async fn get(&self, id: Uuid) -> Result<User, StoreError> {
        self.0
            .read(move |c| {
                c.prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE id = ?1"))?.query_row([id], row)
            })
            .await
    }

    async fn find_by_email(&self, email: &str) -> Result<User, StoreError> {
        let email = email.to_string();
        self.0
            .read(move |c| {
                c.prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE email = ?1"))?.query_row([email], row)
            })
            .await
    }

    async fn set_mfa_enabled(&self, id: Uuid, enabled: bool, at: OffsetDateTime) -> Result<(), StoreError> {
        self.0
            .write(move |tx| {
                let changed = tx
                    .execute(
                        "UPDATE users SET mfa_enabled = ?1, updated_at = ?2 WHERE id = ?3",
                        rusqlite::params![enabled, ts(at), id],
                    )
                    .map_err(map_err)?;
                if changed == 0 { Err(StoreError::NotFound) } else { Ok(()) }
            })
            .await
    }

    async fn update(
        &self,
        user: &User,
        read_at: OffsetDateTime,
        keep_an_admin: bool,
        events: &[Event],
    ) -> Result<UpdateOutcome, StoreError> {
        let (u, evs) = (user.clone(), events.to_vec());
        // One writer: the whole check-and-write is serialized with every other write.
        self.0
            .write(move |tx| {
                let stored: String = tx
                    .query_row("SELECT updated_at FROM users WHERE id = ?1", [u.id], |r| r.get(0))
                    .map_err(map_err)?;
                if stored != ts(read_at) {
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
                    "UPDATE users SET name = ?2, role = ?3, status = ?4, updated_at = ?5 WHERE id = ?1",
                    rusqlite::params![u.id, u.name, u.role.as_str(), u.status.as_str(), ts(u.updated_at)],
                )
                .map_err(map_err)?;
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
                        rusqlite::params![ts(at), id],
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
}
