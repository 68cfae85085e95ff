//! `UserStore` on PostgreSQL.

use api::users::{Role, User, UserStatus};
use async_trait::async_trait;
use platform::bus::Event;
use platform::db::postgres::map_err;
use platform::db::{PgDb, StoreError};
use platform::outbox;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ports::{UpdateOutcome, UserStore};

pub struct PgUserStore(pub PgDb);

const COLUMNS: &str = "id, email, name, role, status, email_verified, created_at, updated_at, mfa_enabled";

fn row(r: &tokio_postgres::Row) -> Result<User, StoreError> {
    let role: String = r.get(3);
    let status: String = r.get(4);
    Ok(User {
        id: r.get(0),
        email: r.get(1),
        name: r.get(2),
        role: Role::parse(&role).ok_or_else(|| StoreError::Internal(format!("bad role {role}")))?,
        status: UserStatus::parse(&status).ok_or_else(|| StoreError::Internal(format!("bad status {status}")))?,
        email_verified: r.get(5),
        mfa_enabled: r.get(8),
        created_at: r.get(6),
        updated_at: r.get(7),
    })
}

impl PgUserStore {
    async fn one(&self, sql: &str, param: &(dyn tokio_postgres::types::ToSql + Sync)) -> Result<User, StoreError> {
        let client = self.0.client().await?;
        let stmt = client.prepare_cached(sql).await.map_err(map_err)?;
        let found = client.query_opt(&stmt, &[param]).await.map_err(map_err)?;
        found.as_ref().map(row).unwrap_or(Err(StoreError::NotFound))
    }
}

#[async_trait]
impl UserStore for PgUserStore {
    async fn insert(&self, u: &User, event: &Event) -> Result<(), StoreError> {
        let mut client = self.0.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let stmt = tx
            .prepare_cached(&format!("INSERT INTO users ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"))
            .await
            .map_err(map_err)?;
        tx.execute(
            &stmt,
            &[
                &u.id,
                &u.email,
                &u.name,
                &u.role.as_str(),
                &u.status.as_str(),
                &u.email_verified,
                &u.created_at,
                &u.updated_at,
                &u.mfa_enabled,
            ],
        )
        .await
        .map_err(map_err)?;
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn get(&self, id: Uuid) -> Result<User, StoreError> {
        self.one(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"), &id).await
    }

    async fn find_by_email(&self, email: &str) -> Result<User, StoreError> {
        self.one(&format!("SELECT {COLUMNS} FROM users WHERE email = $1"), &email).await
    }

    async fn set_mfa_enabled(&self, id: Uuid, enabled: bool, at: time::OffsetDateTime) -> Result<(), StoreError> {
        let client = self.0.client().await?;
        let changed = client
            .execute("UPDATE users SET mfa_enabled = $1, updated_at = $2 WHERE id = $3", &[&enabled, &at, &id])
            .await
            .map_err(map_err)?;
        if changed == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn update(
        &self,
        u: &User,
        read_at: OffsetDateTime,
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
        let stmt = tx.prepare_cached("SELECT updated_at FROM users WHERE id = $1 FOR UPDATE").await.map_err(map_err)?;
        let stored: OffsetDateTime =
            tx.query_opt(&stmt, &[&u.id]).await.map_err(map_err)?.ok_or(StoreError::NotFound)?.get(0);
        if stored != read_at {
            return Ok(UpdateOutcome::Stale);
        }
        let stmt = tx
            .prepare_cached("UPDATE users SET name = $2, role = $3, status = $4, updated_at = $5 WHERE id = $1")
            .await
            .map_err(map_err)?;
        tx.execute(&stmt, &[&u.id, &u.name, &u.role.as_str(), &u.status.as_str(), &u.updated_at])
            .await
            .map_err(map_err)?;
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
}
