//! The PostgreSQL adapter of [`AttachmentStore`].

use api::projects::{AttachmentScan, AttachmentStatus};
use async_trait::async_trait;
use platform::bus::Event;
use platform::db::{StoreError, postgres::map_err};
use platform::outbox;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{PgStore, corrupt};
use crate::domain::quarantine::{parse_scan, parse_status, scan_str, status_str};
use crate::ports::{AttachmentRecord, AttachmentStore};

const COLUMNS: &str =
    "id, task_id, project_id, uploaded_by, filename, content_type, size, object_key, created_at, status, scan, threat";

fn record(row: &Row) -> Result<AttachmentRecord, StoreError> {
    let size: i64 = row.try_get(6).map_err(map_err)?;
    let status: &str = row.try_get(9).map_err(map_err)?;
    let scan: &str = row.try_get(10).map_err(map_err)?;
    Ok(AttachmentRecord {
        id: row.try_get(0).map_err(map_err)?,
        task_id: row.try_get(1).map_err(map_err)?,
        project_id: row.try_get(2).map_err(map_err)?,
        uploaded_by: row.try_get(3).map_err(map_err)?,
        filename: row.try_get(4).map_err(map_err)?,
        content_type: row.try_get(5).map_err(map_err)?,
        size: u64::try_from(size).map_err(|_| corrupt(format!("attachment size {size}")))?,
        object_key: row.try_get(7).map_err(map_err)?,
        created_at: row.try_get(8).map_err(map_err)?,
        status: parse_status(status).ok_or_else(|| corrupt(format!("attachment status {status}")))?,
        scan: parse_scan(scan).ok_or_else(|| corrupt(format!("attachment scan {scan}")))?,
        threat: row.try_get(11).map_err(map_err)?,
    })
}

#[async_trait]
impl AttachmentStore for PgStore {
    async fn task_project(&self, task_id: Uuid) -> Result<Uuid, StoreError> {
        let client = self.db.client().await?;
        let stmt = client.prepare_cached("SELECT project_id FROM tasks WHERE id = $1").await.map_err(map_err)?;
        let row = client.query_opt(&stmt, &[&task_id]).await.map_err(map_err)?.ok_or(StoreError::NotFound)?;
        row.try_get(0).map_err(map_err)
    }

    async fn create_attachment(&self, a: &AttachmentRecord, event: &Event) -> Result<(), StoreError> {
        let size = i64::try_from(a.size).map_err(|_| StoreError::Internal("attachment size out of range".into()))?;
        let mut client = self.db.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        // The task and its project as one row, locked against a concurrent delete, so a task
        // deleted meanwhile is NotFound rather than a foreign-key error.
        let task = tx
            .prepare_cached("SELECT 1 FROM tasks WHERE id = $1 AND project_id = $2 FOR SHARE")
            .await
            .map_err(map_err)?;
        if tx.query_opt(&task, &[&a.task_id, &a.project_id]).await.map_err(map_err)?.is_none() {
            return Err(StoreError::NotFound);
        }
        let insert = tx
            .prepare_cached(&format!(
                "INSERT INTO attachments ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            ))
            .await
            .map_err(map_err)?;
        tx.execute(
            &insert,
            &[
                &a.id,
                &a.task_id,
                &a.project_id,
                &a.uploaded_by,
                &a.filename,
                &a.content_type,
                &size,
                &a.object_key,
                &a.created_at,
                &status_str(a.status),
                &scan_str(a.scan),
                &a.threat,
            ],
        )
        .await
        .map_err(map_err)?;
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn get_attachment(&self, id: Uuid) -> Result<AttachmentRecord, StoreError> {
        let client = self.db.client().await?;
        let stmt = client
            .prepare_cached(&format!("SELECT {COLUMNS} FROM attachments WHERE id = $1"))
            .await
            .map_err(map_err)?;
        let row = client.query_opt(&stmt, &[&id]).await.map_err(map_err)?.ok_or(StoreError::NotFound)?;
        record(&row)
    }

    async fn list_attachments(
        &self,
        task_id: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<AttachmentRecord>, StoreError> {
        let after = after.unwrap_or(Uuid::nil());
        let client = self.db.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM attachments WHERE task_id = $1 AND id > $2 ORDER BY id LIMIT $3"
            ))
            .await
            .map_err(map_err)?;
        let rows = client.query(&stmt, &[&task_id, &after, &i64::from(limit)]).await.map_err(map_err)?;
        rows.iter().map(record).collect()
    }

    async fn delete_attachment(&self, id: Uuid, event: &Event) -> Result<(), StoreError> {
        let mut client = self.db.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        if tx.execute("DELETE FROM attachments WHERE id = $1", &[&id]).await.map_err(map_err)? == 0 {
            return Err(StoreError::NotFound);
        }
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn existing_attachments(&self, ids: &[Uuid]) -> Result<Vec<Uuid>, StoreError> {
        let client = self.db.client().await?;
        let stmt = client
            .prepare_cached("SELECT id FROM attachments WHERE id = ANY($1) AND status <> 'rejected'")
            .await
            .map_err(map_err)?;
        let rows = client.query(&stmt, &[&ids]).await.map_err(map_err)?;
        rows.iter().map(|r| r.try_get(0).map_err(map_err)).collect()
    }

    async fn quarantined_attachments(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<AttachmentRecord>, StoreError> {
        let after = after.unwrap_or(Uuid::nil());
        let client = self.db.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM attachments WHERE status = 'quarantined' AND id > $1 ORDER BY id LIMIT $2"
            ))
            .await
            .map_err(map_err)?;
        let rows = client.query(&stmt, &[&after, &i64::from(limit)]).await.map_err(map_err)?;
        rows.iter().map(record).collect()
    }

    async fn finish_scan(
        &self,
        id: Uuid,
        status: AttachmentStatus,
        scan: AttachmentScan,
        threat: Option<&str>,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut client = self.db.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let changed = tx
            .execute(
                "UPDATE attachments SET status = $2, scan = $3, threat = $4 WHERE id = $1 AND status = 'quarantined'",
                &[&id, &status_str(status), &scan_str(scan), &threat],
            )
            .await
            .map_err(map_err)?;
        if changed == 0 {
            return Ok(false);
        }
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn attachments_uploaded_by(&self, user: Uuid) -> Result<Vec<AttachmentRecord>, StoreError> {
        let client = self.db.client().await?;
        let stmt = client
            .prepare_cached(&format!("SELECT {COLUMNS} FROM attachments WHERE uploaded_by = $1 ORDER BY id"))
            .await
            .map_err(map_err)?;
        let rows = client.query(&stmt, &[&user]).await.map_err(map_err)?;
        rows.iter().map(record).collect()
    }
}
