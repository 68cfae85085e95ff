//! The SQLite adapter of [`AttachmentStore`].

use api::projects::{AttachmentScan, AttachmentStatus};
use async_trait::async_trait;
use platform::bus::Event;
use platform::db::{StoreError, sqlite::map_err};
use platform::outbox;
use rusqlite::types::Type;
use rusqlite::{Row, params, params_from_iter};
use uuid::Uuid;

use super::{SqliteStore, bad_column, fmt_time, time_at};
use crate::domain::quarantine::{parse_scan, parse_status, scan_str, status_str};
use crate::ports::{AttachmentRecord, AttachmentStore};

const COLUMNS: &str =
    "id, task_id, project_id, uploaded_by, filename, content_type, size, object_key, created_at, status, scan, threat";

fn record(row: &Row<'_>) -> rusqlite::Result<AttachmentRecord> {
    let size: i64 = row.get(6)?;
    let (status, scan): (String, String) = (row.get(9)?, row.get(10)?);
    Ok(AttachmentRecord {
        id: row.get(0)?,
        task_id: row.get(1)?,
        project_id: row.get(2)?,
        uploaded_by: row.get(3)?,
        filename: row.get(4)?,
        content_type: row.get(5)?,
        size: u64::try_from(size).map_err(|_| bad_column(6, Type::Integer, format!("size {size}")))?,
        object_key: row.get(7)?,
        created_at: time_at(row, 8)?,
        status: parse_status(&status).ok_or_else(|| bad_column(9, Type::Text, format!("status {status}")))?,
        scan: parse_scan(&scan).ok_or_else(|| bad_column(10, Type::Text, format!("scan {scan}")))?,
        threat: row.get(11)?,
    })
}

#[async_trait]
impl AttachmentStore for SqliteStore {
    async fn task_project(&self, task_id: Uuid) -> Result<Uuid, StoreError> {
        self.db.read(move |c| c.query_row("SELECT project_id FROM tasks WHERE id = ?1", [task_id], |r| r.get(0))).await
    }

    async fn create_attachment(&self, a: &AttachmentRecord, event: &Event) -> Result<(), StoreError> {
        let (a, event, at) = (a.clone(), event.clone(), fmt_time(a.created_at)?);
        let size = i64::try_from(a.size).map_err(|_| StoreError::Internal("attachment size out of range".into()))?;
        self.db
            .write(move |tx| {
                // The task and its project as one row, so a task deleted meanwhile is NotFound.
                let inserted = tx
                    .execute(
                        &format!(
                            "INSERT INTO attachments ({COLUMNS}) \
                             SELECT ?1, id, project_id, ?3, ?4, ?5, ?6, ?7, ?8, ?10, ?11, ?12 FROM tasks \
                             WHERE id = ?2 AND project_id = ?9"
                        ),
                        params![
                            a.id,
                            a.task_id,
                            a.uploaded_by,
                            a.filename,
                            a.content_type,
                            size,
                            a.object_key,
                            at,
                            a.project_id,
                            status_str(a.status),
                            scan_str(a.scan),
                            a.threat
                        ],
                    )
                    .map_err(map_err)?;
                if inserted == 0 {
                    return Err(StoreError::NotFound);
                }
                outbox::insert_sqlite(tx, &event)
            })
            .await
    }

    async fn get_attachment(&self, id: Uuid) -> Result<AttachmentRecord, StoreError> {
        self.db
            .read(move |c| {
                c.prepare_cached(&format!("SELECT {COLUMNS} FROM attachments WHERE id = ?1"))?.query_row([id], record)
            })
            .await
    }

    async fn list_attachments(
        &self,
        task_id: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<AttachmentRecord>, StoreError> {
        let after = after.unwrap_or(Uuid::nil());
        self.db
            .read(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM attachments WHERE task_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
                ))?
                .query_map(params![task_id, after, limit], record)?
                .collect()
            })
            .await
    }

    async fn delete_attachment(&self, id: Uuid, event: &Event) -> Result<(), StoreError> {
        let event = event.clone();
        self.db
            .write(move |tx| {
                if tx.execute("DELETE FROM attachments WHERE id = ?1", [id]).map_err(map_err)? == 0 {
                    return Err(StoreError::NotFound);
                }
                outbox::insert_sqlite(tx, &event)
            })
            .await
    }

    async fn existing_attachments(&self, ids: &[Uuid]) -> Result<Vec<Uuid>, StoreError> {
        let mut found = Vec::new();
        // Well below SQLite's limit of bound parameters per statement.
        for chunk in ids.chunks(500) {
            let chunk = chunk.to_vec();
            let marks = vec!["?"; chunk.len()].join(", ");
            let rows: Vec<Uuid> = self
                .db
                .read(move |c| {
                    c.prepare(&format!("SELECT id FROM attachments WHERE id IN ({marks}) AND status <> 'rejected'"))?
                        .query_map(params_from_iter(chunk.iter()), |r| r.get(0))?
                        .collect()
                })
                .await?;
            found.extend(rows);
        }
        Ok(found)
    }

    async fn quarantined_attachments(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<AttachmentRecord>, StoreError> {
        let after = after.unwrap_or(Uuid::nil());
        self.db
            .read(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM attachments WHERE status = 'quarantined' AND id > ?1 ORDER BY id LIMIT ?2"
                ))?
                .query_map(params![after, limit], record)?
                .collect()
            })
            .await
    }

    async fn finish_scan(
        &self,
        id: Uuid,
        status: AttachmentStatus,
        scan: AttachmentScan,
        threat: Option<&str>,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let (event, threat) = (event.clone(), threat.map(str::to_string));
        self.db
            .write(move |tx| {
                let changed = tx
                    .execute(
                        "UPDATE attachments SET status = ?2, scan = ?3, threat = ?4 \
                         WHERE id = ?1 AND status = 'quarantined'",
                        params![id, status_str(status), scan_str(scan), threat],
                    )
                    .map_err(map_err)?;
                if changed == 0 {
                    return Ok(false);
                }
                outbox::insert_sqlite(tx, &event)?;
                Ok(true)
            })
            .await
    }

    async fn attachments_uploaded_by(&self, user: Uuid) -> Result<Vec<AttachmentRecord>, StoreError> {
        self.db
            .read(move |c| {
                c.prepare_cached(&format!("SELECT {COLUMNS} FROM attachments WHERE uploaded_by = ?1 ORDER BY id"))?
                    .query_map([user], record)?
                    .collect()
            })
            .await
    }
}
