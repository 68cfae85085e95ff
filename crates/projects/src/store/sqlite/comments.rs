//! Comments in SQLite: the task's project for access checks, and conditional writes (the stored
//! `updated_at` must still be the one read) that store their event in the same transaction.

use async_trait::async_trait;
use platform::bus::Event;
use platform::db::{StoreError, sqlite::map_err};
use platform::outbox;
use rusqlite::{Row, params};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{SqliteStore, fmt_time, role_at, time_at};
use crate::ports::{CommentRecord, CommentStore, CommentView};
use crate::store::comment_erased_event;

const COMMENT_COLUMNS: &str = "c.id, c.task_id, c.project_id, c.author_id, c.body, c.created_at, c.updated_at";

/// The comment of columns 0–6 of [`COMMENT_COLUMNS`].
pub(super) fn comment_record(row: &Row<'_>) -> rusqlite::Result<CommentRecord> {
    Ok(CommentRecord {
        id: row.get(0)?,
        task_id: row.get(1)?,
        project_id: row.get(2)?,
        author_id: row.get(3)?,
        body: row.get(4)?,
        created_at: time_at(row, 5)?,
        updated_at: time_at(row, 6)?,
    })
}

/// Every comment `user` wrote, in id order (GDPR export).
pub(super) fn comments_by(c: &rusqlite::Connection, user: Uuid) -> rusqlite::Result<Vec<CommentRecord>> {
    c.prepare_cached(&format!("SELECT {COMMENT_COLUMNS} FROM comments c WHERE c.author_id = ?1 ORDER BY c.id"))?
        .query_map(params![user], comment_record)?
        .collect()
}

/// After a conditional write matched nothing: `false` (stale) when the comment exists,
/// `NotFound` when it does not.
fn stale_or_gone(tx: &rusqlite::Transaction<'_>, id: Uuid) -> Result<bool, StoreError> {
    let exists: bool =
        tx.query_row("SELECT EXISTS(SELECT 1 FROM comments WHERE id = ?1)", [id], |r| r.get(0)).map_err(map_err)?;
    if exists { Ok(false) } else { Err(StoreError::NotFound) }
}

#[async_trait]
impl CommentStore for SqliteStore {
    async fn create_comment(&self, comment: &CommentRecord, event: &Event) -> Result<(), StoreError> {
        let (c, event, at) = (comment.clone(), event.clone(), fmt_time(comment.created_at)?);
        self.db
            .write(move |tx| {
                let task_there = tx
                    .prepare_cached("SELECT 1 FROM tasks WHERE id = ?1 AND project_id = ?2")
                    .and_then(|mut s| s.exists(params![c.task_id, c.project_id]))
                    .map_err(map_err)?;
                if !task_there {
                    return Err(StoreError::NotFound);
                }
                tx.prepare_cached(
                    "INSERT INTO comments (id, task_id, project_id, author_id, body, created_at, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                )
                .and_then(|mut s| s.execute(params![c.id, c.task_id, c.project_id, c.author_id, c.body, at]))
                .map_err(map_err)?;
                outbox::insert_sqlite(tx, &event)
            })
            .await
    }

    async fn get_comment(&self, id: Uuid, user: Uuid) -> Result<CommentView, StoreError> {
        self.db
            .read(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {COMMENT_COLUMNS}, m.role FROM comments c \
                     LEFT JOIN project_members m ON m.project_id = c.project_id AND m.user_id = ?2 \
                     WHERE c.id = ?1"
                ))?
                .query_row(params![id, user], |r| {
                    Ok(CommentView { comment: comment_record(r)?, member_role: role_at(r, 7)? })
                })
            })
            .await
    }

    async fn list_comments(
        &self,
        task: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<CommentRecord>, StoreError> {
        // The nil UUID sorts before every real (v7) id.
        let after = after.unwrap_or(Uuid::nil());
        self.db
            .read(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {COMMENT_COLUMNS} FROM comments c WHERE c.task_id = ?1 AND c.id > ?2 ORDER BY c.id LIMIT ?3"
                ))?
                .query_map(params![task, after, limit], comment_record)?
                .collect()
            })
            .await
    }

    async fn update_comment(
        &self,
        comment: &CommentRecord,
        read_at: OffsetDateTime,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let (c, event) = (comment.clone(), event.clone());
        let (read_at, at) = (fmt_time(read_at)?, fmt_time(comment.updated_at)?);
        self.db
            .write(move |tx| {
                let changed = tx
                    .execute(
                        "UPDATE comments SET body = ?2, updated_at = ?3 WHERE id = ?1 AND updated_at = ?4",
                        params![c.id, c.body, at, read_at],
                    )
                    .map_err(map_err)?;
                if changed == 0 {
                    return stale_or_gone(tx, c.id);
                }
                outbox::insert_sqlite(tx, &event)?;
                Ok(true)
            })
            .await
    }

    async fn delete_comment(&self, id: Uuid, read_at: OffsetDateTime, event: &Event) -> Result<bool, StoreError> {
        let (event, read_at) = (event.clone(), fmt_time(read_at)?);
        self.db
            .write(move |tx| {
                let changed = tx
                    .execute("DELETE FROM comments WHERE id = ?1 AND updated_at = ?2", params![id, read_at])
                    .map_err(map_err)?;
                if changed == 0 {
                    return stale_or_gone(tx, id);
                }
                outbox::insert_sqlite(tx, &event)?;
                Ok(true)
            })
            .await
    }
}

/// Deletes every comment `user` wrote, each with its `comment.deleted` event (GDPR erasure);
/// the number deleted.
pub(super) fn erase_comments_by(
    tx: &rusqlite::Transaction<'_>,
    user: Uuid,
    at: OffsetDateTime,
) -> Result<u64, StoreError> {
    let authored: Vec<(Uuid, Uuid, Uuid)> = tx
        .prepare_cached("SELECT id, task_id, project_id FROM comments WHERE author_id = ?1 ORDER BY id")
        .and_then(|mut s| s.query_map([user], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect())
        .map_err(map_err)?;
    tx.prepare_cached("DELETE FROM comments WHERE author_id = ?1")
        .and_then(|mut s| s.execute([user]))
        .map_err(map_err)?;
    for (id, task, project) in &authored {
        outbox::insert_sqlite(tx, &comment_erased_event(*id, *task, *project, at))?;
    }
    Ok(authored.len() as u64)
}
