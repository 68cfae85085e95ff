//! Comments in PostgreSQL: the task's project for access checks, and conditional writes (the
//! stored `updated_at` must still be the one read) that store their event in the same
//! transaction.

use async_trait::async_trait;
use platform::bus::Event;
use platform::db::{StoreError, postgres::map_err};
use platform::outbox;
use time::OffsetDateTime;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{PgStore, role_at};
use crate::ports::{CommentRecord, CommentStore, CommentView};
use crate::store::comment_erased_event;

pub(super) const COMMENT_COLUMNS: &str =
    "c.id, c.task_id, c.project_id, c.author_id, c.body, c.created_at, c.updated_at";

/// The comment of columns 0–6 of [`COMMENT_COLUMNS`].
pub(super) fn comment_record(row: &Row) -> Result<CommentRecord, StoreError> {
    Ok(CommentRecord {
        id: row.try_get(0).map_err(map_err)?,
        task_id: row.try_get(1).map_err(map_err)?,
        project_id: row.try_get(2).map_err(map_err)?,
        author_id: row.try_get(3).map_err(map_err)?,
        body: row.try_get(4).map_err(map_err)?,
        created_at: row.try_get(5).map_err(map_err)?,
        updated_at: row.try_get(6).map_err(map_err)?,
    })
}

#[async_trait]
impl CommentStore for PgStore {
    async fn create_comment(&self, c: &CommentRecord, event: &Event) -> Result<(), StoreError> {
        let mut client = self.db.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        // The task row is share-locked so that a concurrent delete (or move) waits for us, and a
        // task that is gone is NotFound rather than a foreign-key error.
        let lock = tx
            .prepare_cached("SELECT 1 FROM tasks WHERE id = $1 AND project_id = $2 FOR KEY SHARE")
            .await
            .map_err(map_err)?;
        if tx.query_opt(&lock, &[&c.task_id, &c.project_id]).await.map_err(map_err)?.is_none() {
            return Err(StoreError::NotFound);
        }
        let insert = tx
            .prepare_cached(
                "INSERT INTO comments (id, task_id, project_id, author_id, body, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .await
            .map_err(map_err)?;
        tx.execute(&insert, &[&c.id, &c.task_id, &c.project_id, &c.author_id, &c.body, &c.created_at])
            .await
            .map_err(map_err)?;
        outbox::insert_pg(&tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn get_comment(&self, id: Uuid, user: Uuid) -> Result<CommentView, StoreError> {
        let client = self.db.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {COMMENT_COLUMNS}, m.role FROM comments c \
                 LEFT JOIN project_members m ON m.project_id = c.project_id AND m.user_id = $2 \
                 WHERE c.id = $1"
            ))
            .await
            .map_err(map_err)?;
        let row = client.query_opt(&stmt, &[&id, &user]).await.map_err(map_err)?.ok_or(StoreError::NotFound)?;
        Ok(CommentView { comment: comment_record(&row)?, member_role: role_at(&row, 7)? })
    }

    async fn list_comments(
        &self,
        task: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<CommentRecord>, StoreError> {
        // The nil UUID sorts before every real (v7) id.
        let after = after.unwrap_or(Uuid::nil());
        let client = self.db.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {COMMENT_COLUMNS} FROM comments c WHERE c.task_id = $1 AND c.id > $2 ORDER BY c.id LIMIT $3"
            ))
            .await
            .map_err(map_err)?;
        let rows = client.query(&stmt, &[&task, &after, &i64::from(limit)]).await.map_err(map_err)?;
        rows.iter().map(comment_record).collect()
    }

    async fn update_comment(
        &self,
        c: &CommentRecord,
        read_at: OffsetDateTime,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE comments SET body = $2, updated_at = $3 WHERE id = $1 AND updated_at = $4";
        self.conditional_write("comments", c.id, sql, &[&c.id, &c.body, &c.updated_at, &read_at], event).await
    }

    async fn delete_comment(&self, id: Uuid, read_at: OffsetDateTime, event: &Event) -> Result<bool, StoreError> {
        let sql = "DELETE FROM comments WHERE id = $1 AND updated_at = $2";
        self.conditional_write("comments", id, sql, &[&id, &read_at], event).await
    }
}

/// Deletes every comment `user` wrote (GDPR erasure); the `comment.deleted` event of each, in id
/// order, for the caller to store in the same transaction.
pub(super) async fn erase_comments_by(
    tx: &tokio_postgres::Transaction<'_>,
    user: Uuid,
    at: OffsetDateTime,
) -> Result<Vec<Event>, StoreError> {
    let rows = tx
        .query("DELETE FROM comments WHERE author_id = $1 RETURNING id, task_id, project_id", &[&user])
        .await
        .map_err(map_err)?;
    let mut erased = Vec::with_capacity(rows.len());
    for r in &rows {
        let (id, task, project): (Uuid, Uuid, Uuid) =
            (r.try_get(0).map_err(map_err)?, r.try_get(1).map_err(map_err)?, r.try_get(2).map_err(map_err)?);
        erased.push((id, task, project));
    }
    erased.sort();
    Ok(erased.into_iter().map(|(id, task, project)| comment_erased_event(id, task, project, at)).collect())
}
