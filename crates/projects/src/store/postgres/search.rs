//! Full-text search in PostgreSQL: the generated `search` tsvector columns of projects, tasks and
//! comments (GIN-indexed, migration 0003), ranked by `ts_rank_cd`, with the visibility condition
//! inside each branch of the query.

use async_trait::async_trait;
use platform::db::{StoreError, postgres::map_err};
use tokio_postgres::Row;
use uuid::Uuid;

use super::{PgStore, corrupt};
use crate::ports::{SearchHit, SearchKey, SearchKind, SearchScope, SearchStore};

fn hit(row: &Row) -> Result<SearchHit, StoreError> {
    let code: i16 = row.try_get(0).map_err(map_err)?;
    let kind = SearchKind::from_code(i64::from(code)).ok_or_else(|| corrupt(format!("search kind {code}")))?;
    Ok(SearchHit {
        key: SearchKey { kind, id: row.try_get(1).map_err(map_err)?, score: row.try_get(6).map_err(map_err)? },
        project_id: row.try_get(2).map_err(map_err)?,
        task_id: row.try_get(3).map_err(map_err)?,
        title: row.try_get(4).map_err(map_err)?,
        text: row.try_get(5).map_err(map_err)?,
    })
}

/// `$1`: every word but the last, through `plainto_tsquery` (which parses no operator); `$2`: the
/// last word with `:*` (a prefix), through `to_tsquery` — it holds only letters and digits, so
/// it cannot carry tsquery syntax. `$3` all projects (admins) or `$4`'s memberships.
const SEARCH_SQL: &str = "\
    WITH q AS (SELECT plainto_tsquery('simple', $1) && to_tsquery('simple', $2) AS q), \
    visible AS (SELECT m.project_id FROM project_members m WHERE m.user_id = $4), \
    hits AS ( \
        SELECT 0::int2 AS kind, p.id, p.id AS project_id, NULL::uuid AS task_id, p.name AS title, \
               p.description AS text, ts_rank_cd(p.search, q.q)::float8 AS score \
        FROM projects p, q WHERE p.search @@ q.q AND ($3 OR p.id IN (SELECT project_id FROM visible)) \
        UNION ALL \
        SELECT 1::int2, t.id, t.project_id, t.id, t.title, t.description, ts_rank_cd(t.search, q.q)::float8 \
        FROM tasks t, q WHERE t.search @@ q.q AND ($3 OR t.project_id IN (SELECT project_id FROM visible)) \
        UNION ALL \
        SELECT 2::int2, c.id, c.project_id, c.task_id, t.title, c.body, ts_rank_cd(c.search, q.q)::float8 \
        FROM comments c JOIN tasks t ON t.id = c.task_id, q \
        WHERE c.search @@ q.q AND ($3 OR c.project_id IN (SELECT project_id FROM visible)) \
    ) \
    SELECT kind, id, project_id, task_id, title, text, score FROM hits \
    WHERE $5::float8 IS NULL OR score < $5 OR (score = $5 AND (kind, id) > ($6::int2, $7::uuid)) \
    ORDER BY score DESC, kind, id LIMIT $8";

#[async_trait]
impl SearchStore for PgStore {
    async fn search(
        &self,
        words: &[String],
        scope: SearchScope,
        after: Option<SearchKey>,
        limit: u32,
    ) -> Result<Vec<SearchHit>, StoreError> {
        let Some((last, rest)) = words.split_last() else { return Ok(Vec::new()) };
        if !last.chars().all(char::is_alphanumeric) {
            return Err(StoreError::Internal("a search word must be letters and digits only".into()));
        }
        let (rest, prefix) = (rest.join(" "), format!("{last}:*"));
        let (all, user) = match scope {
            SearchScope::All => (true, Uuid::nil()),
            SearchScope::MemberOf(user) => (false, user),
        };
        let (score, kind, id) =
            after.map_or((None, 0, Uuid::nil()), |k| (Some(k.score), i16::from(k.kind.code()), k.id));
        let client = self.db.client().await?;
        let stmt = client.prepare_cached(SEARCH_SQL).await.map_err(map_err)?;
        let rows = client
            .query(&stmt, &[&rest, &prefix, &all, &user, &score, &kind, &id, &i64::from(limit)])
            .await
            .map_err(map_err)?;
        rows.iter().map(hit).collect()
    }
}
