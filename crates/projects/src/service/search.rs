//! `GET /api/search`: projects, tasks and comments the caller may see (member projects; admins
//! all), best match first, keyset-paginated by (rank, kind, id) with an opaque cursor.

use api::ApiError;
use api::projects::{Page, SearchKind as Kind, SearchResult};
use api::users::Role;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use super::{Actor, PageRequest, ProjectsService, bad_cursor, invalid, paginate};
use crate::domain::search::{SearchQuery, snippet};
use crate::ports::{SearchHit, SearchKey, SearchKind, SearchScope};

/// A search cursor: the last result's score (8 bytes, big-endian IEEE 754), kind (1 byte) and id
/// (16 bytes), base64url.
pub(crate) fn encode_cursor(k: &SearchKey) -> String {
    let mut bytes = Vec::with_capacity(25);
    bytes.extend_from_slice(&k.score.to_be_bytes());
    bytes.push(k.kind.code());
    bytes.extend_from_slice(k.id.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn decode_cursor(s: &str) -> Result<SearchKey, ApiError> {
    let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad_cursor())?;
    let (score, rest) = bytes.split_first_chunk::<8>().ok_or_else(bad_cursor)?;
    let (kind, id) = rest.split_first().ok_or_else(bad_cursor)?;
    let score = f64::from_be_bytes(*score);
    if !score.is_finite() {
        return Err(bad_cursor());
    }
    let kind = SearchKind::from_code(i64::from(*kind)).ok_or_else(bad_cursor)?;
    Ok(SearchKey { score, kind, id: Uuid::from_slice(id).map_err(|_| bad_cursor())? })
}

fn result_dto(h: SearchHit, words: &[String]) -> SearchResult {
    SearchResult {
        kind: match h.key.kind {
            SearchKind::Project => Kind::Project,
            SearchKind::Task => Kind::Task,
            SearchKind::Comment => Kind::Comment,
        },
        id: h.key.id,
        project_id: h.project_id,
        task_id: h.task_id,
        snippet: snippet(&h.text, words),
        title: h.title,
        rank: h.key.score,
    }
}

impl ProjectsService {
    /// Full-text search over what the actor may see. `q`: 1–200 characters; every word must
    /// occur, the last one may be a prefix. A query without any letter or digit finds nothing.
    pub async fn search(&self, actor: Actor, q: &str, page: PageRequest) -> Result<Page<SearchResult>, ApiError> {
        let query = SearchQuery::parse(q).map_err(|e| invalid("q", e.to_string()))?;
        let limit = page.limit()?;
        let after = page.cursor.as_deref().map(decode_cursor).transpose()?;
        if query.words().is_empty() {
            return Ok(Page { items: Vec::new(), next_cursor: None });
        }
        let scope = match actor.role {
            Role::Admin => SearchScope::All,
            Role::User | Role::Guest => SearchScope::MemberOf(actor.user_id),
        };
        let rows = self.search.search(query.words(), scope, after, limit + 1).await?;
        Ok(paginate(rows, limit, |h| encode_cursor(&h.key), |h| result_dto(h, query.words())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() {
        let key = SearchKey { score: -0.123_456_789, kind: SearchKind::Comment, id: platform::ids::new_id() };
        assert_eq!(decode_cursor(&encode_cursor(&key)), Ok(key));
    }

    #[test]
    fn bad_cursors_are_invalid_input() {
        let nan = [f64::NAN.to_be_bytes().as_slice(), &[0], &[0; 16]].concat();
        let kind = [1.0f64.to_be_bytes().as_slice(), &[3], &[0; 16]].concat();
        let short = [1.0f64.to_be_bytes().as_slice(), &[0], &[0; 15]].concat();
        for raw in [vec![], nan, kind, short] {
            assert!(matches!(decode_cursor(&URL_SAFE_NO_PAD.encode(raw)), Err(ApiError::Invalid(_))));
        }
        assert!(decode_cursor("!!").is_err());
    }
}
