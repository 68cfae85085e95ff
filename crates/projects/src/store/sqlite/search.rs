//! Full-text search in SQLite: FTS5 (`search_fts`, kept in step by the triggers of migration
//! 0003) ranked by `bm25`, with the visibility join inside the query.

use async_trait::async_trait;
use platform::db::StoreError;
use rusqlite::types::Type;
use rusqlite::{Row, params};
use uuid::Uuid;

use super::{SqliteStore, bad_column};
use crate::ports::{SearchHit, SearchKey, SearchKind, SearchScope, SearchStore};

/// The FTS5 query for `words`: each word a quoted string (so nothing in it is FTS5 syntax:
/// words hold only letters and digits, and a `"` would be doubled anyway), all required, the
/// last one as a prefix.
fn match_expr(words: &[String]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("\"{}\"", w.replace('"', "\"\""))).collect();
    let mut expr = quoted.join(" ");
    if !expr.is_empty() {
        expr.push('*');
    }
    expr
}

fn hit(row: &Row<'_>) -> rusqlite::Result<SearchHit> {
    let code: i64 = row.get(0)?;
    let kind =
        SearchKind::from_code(code).ok_or_else(|| bad_column(0, Type::Integer, format!("search kind {code}")))?;
    Ok(SearchHit {
        key: SearchKey { kind, id: row.get(1)?, score: row.get(6)? },
        project_id: row.get(2)?,
        task_id: row.get(3)?,
        title: row.get(4)?,
        text: row.get(5)?,
    })
}

/// Column weights of `bm25`: title, labels, body. A title match outranks a body-only match.
const SEARCH_SQL: &str = "\
    SELECT kind, id, project_id, task_id, title, text, score FROM ( \
        SELECT d.kind AS kind, d.id AS id, d.project_id AS project_id, d.task_id AS task_id, \
               CASE d.kind WHEN 0 THEN p.name ELSE t.title END AS title, \
               CASE d.kind WHEN 0 THEN p.description WHEN 1 THEN t.description ELSE c.body END AS text, \
               -bm25(search_fts, 10.0, 5.0, 1.0) AS score \
        FROM search_fts \
        JOIN search_docs d ON d.doc = search_fts.rowid \
        LEFT JOIN projects p ON d.kind = 0 AND p.id = d.id \
        LEFT JOIN tasks t ON t.id = d.task_id \
        LEFT JOIN comments c ON d.kind = 2 AND c.id = d.id \
        WHERE search_fts MATCH ?1 \
          AND (?2 OR d.project_id IN (SELECT m.project_id FROM project_members m WHERE m.user_id = ?3)) \
    ) \
    WHERE ?4 IS NULL OR score < ?4 OR (score = ?4 AND (kind > ?5 OR (kind = ?5 AND id > ?6))) \
    ORDER BY score DESC, kind, id LIMIT ?7";

#[async_trait]
impl SearchStore for SqliteStore {
    async fn search(
        &self,
        words: &[String],
        scope: SearchScope,
        after: Option<SearchKey>,
        limit: u32,
    ) -> Result<Vec<SearchHit>, StoreError> {
        let expr = match_expr(words);
        if expr.is_empty() {
            return Ok(Vec::new());
        }
        let (all, user) = match scope {
            SearchScope::All => (true, Uuid::nil()),
            SearchScope::MemberOf(user) => (false, user),
        };
        let (score, kind, id) = after.map_or((None, 0, Uuid::nil()), |k| (Some(k.score), k.kind.code(), k.id));
        self.db
            .read(move |c| {
                c.prepare_cached(SEARCH_SQL)?
                    .query_map(params![expr, all, user, score, kind, id, limit], hit)?
                    .collect()
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_is_quoted_and_the_last_is_a_prefix() {
        let w = |s: &[&str]| s.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        assert_eq!(match_expr(&w(&["near", "fu"])), r#""near" "fu"*"#);
        assert_eq!(match_expr(&w(&["a\"b"])), r#""a""b"*"#);
        assert_eq!(match_expr(&[]), "");
    }
}
