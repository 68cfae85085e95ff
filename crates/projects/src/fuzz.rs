//! Property checks of the projects service's parsers of untrusted input: the list cursors
//! (projects, tasks, search), the task list's query string, the search query, and the attachment
//! handling of a multipart upload (file name, type sniffing, text check, `Content-Disposition`).
//!
//! Each `check_*` takes arbitrary input, must not panic, and asserts an invariant. The proptest
//! suites below run them in every test run (`PROPTEST_CASES`, 256 by default); the cargo-fuzz
//! targets in `fuzz/` call the same functions for the longer runs (docs/SECURITY.md SC-3).
#![allow(clippy::expect_used, reason = "a check's panic is its verdict: it runs in tests and under cargo-fuzz only")]

use api::ApiError;
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::domain::attachments::{AttachmentName, TextCheck, classify, content_disposition};
use crate::domain::search::SearchQuery;
use crate::ports::{SearchKey, SearchKind};
use crate::service::search::{decode_cursor as decode_search, encode_cursor as encode_search};
use crate::service::tasks::{decode_cursor as decode_task, fingerprint};
use crate::service::{TaskListQuery, decode_project_cursor, encode_project_cursor};

fn is_cursor_error(e: &ApiError) -> bool {
    matches!(e, ApiError::Invalid(errors) if errors.iter().all(|f| f.field == "cursor"))
}

/// A project list cursor is the base64url of an id: what decodes encodes back to the same text
/// (no second spelling of a cursor), and anything else is a 422 naming `cursor`.
pub fn check_project_cursor(input: &str) {
    match decode_project_cursor(input) {
        Ok(id) => assert_eq!(encode_project_cursor(id), input),
        Err(e) => assert!(is_cursor_error(&e), "{e:?}"),
    }
}

/// A search cursor: a finite score, a known kind and an id, re-encoded to the same text.
pub fn check_search_cursor(input: &str) {
    match decode_search(input) {
        Ok(key) => {
            assert!(key.score.is_finite());
            assert_eq!(encode_search(&key), input);
        }
        Err(e) => assert!(is_cursor_error(&e), "{e:?}"),
    }
}

/// Every search key survives its cursor.
pub fn check_search_key_round_trip(score: f64, kind: u8, id: [u8; 16]) {
    let Some(kind) = SearchKind::from_code(i64::from(kind % 3)) else { return };
    if !score.is_finite() {
        return;
    }
    let key = SearchKey { score, kind, id: uuid::Uuid::from_bytes(id) };
    let back = decode_search(&encode_search(&key)).expect("our own cursor");
    assert_eq!((back.score.to_bits(), back.kind, back.id), (key.score.to_bits(), key.kind, key.id));
}

/// The task list's query string as the handler receives it (`Query<Vec<(String, String)>>`):
/// never a panic, never a 5xx; accepted lists name only known parameters, once each, with a
/// bounded `q`; and a cursor given with them is either accepted for exactly that list or 422.
pub fn check_task_list_query(query: &str) {
    // Exactly what the handler's extractor does with the request target.
    let Ok(uri) = format!("/?{query}").parse::<axum::http::Uri>() else { return };
    let Ok(axum::extract::Query(pairs)) = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri) else {
        return;
    };
    match crate::http::tasks::list_request(pairs.clone()) {
        Ok((list, page)) => {
            let mut keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
            keys.sort_unstable();
            let n = keys.len();
            keys.dedup();
            assert_eq!(keys.len(), n, "a parameter given twice was accepted");
            assert!(list.filter.q.as_deref().is_none_or(|q| q.chars().count() <= 200));
            assert!(list.filter.label.as_deref().is_none_or(|l| !l.trim().is_empty()));
            if let Some(cursor) = page.cursor.as_deref() {
                check_task_cursor_for(cursor, &list);
            }
        }
        Err(p) => assert!(
            p.status == StatusCode::BAD_REQUEST || p.status == StatusCode::UNPROCESSABLE_ENTITY,
            "{query:?}: {}",
            p.status
        ),
    }
}

fn check_task_cursor_for(cursor: &str, list: &TaskListQuery) {
    let fp = fingerprint(list);
    match decode_task(cursor, list, &fp) {
        Ok(_) => {
            // Only a cursor made for this very list (its fingerprint and sort) is accepted.
            let text = URL_SAFE_NO_PAD.decode(cursor).ok().and_then(|b| String::from_utf8(b).ok());
            let text = text.expect("an accepted cursor is base64url UTF-8");
            assert!(text.starts_with(&format!("{fp} ")), "{text:?} accepted for another list");
        }
        Err(e) => assert!(matches!(e, ApiError::Invalid(_)), "{e:?}"),
    }
}

/// A task cursor against the default list.
pub fn check_task_cursor(input: &str) {
    check_task_cursor_for(input, &TaskListQuery::default());
}

/// The search query and its snippets: accepted queries are 1–200 characters, not blank, of at
/// most 16 words in which no ASCII but letters and digits remains (so nothing of the text reaches
/// FTS5's MATCH syntax or a tsquery operator); a snippet of any text is one line of at most 160
/// characters plus the two ellipses.
pub fn check_search_query(q: &str, text: &str) {
    if let Ok(query) = SearchQuery::parse(q) {
        assert!(!q.trim().is_empty() && q.chars().count() <= 200, "{q:?}");
        assert!(query.words().len() <= crate::domain::search::MAX_WORDS);
        for w in query.words() {
            assert!(!w.is_empty());
            assert!(!w.chars().any(|c| c.is_ascii() && !c.is_ascii_alphanumeric()), "{w:?}");
        }
        let snippet = crate::domain::search::snippet(text, query.words());
        assert!(snippet.chars().count() <= crate::domain::search::SNIPPET_CHARS + 2, "{snippet:?}");
        assert!(!snippet.contains(['\n', '\r']), "{snippet:?}");
    }
}

/// An uploaded file's name and content as the upload handler treats them: the kept name is one
/// path component of 1–255 characters without control characters, the download header built
/// from it is a valid header value without quotes, backslashes or line breaks in its parts and
/// gives the exact name back, and type sniffing never panics.
pub fn check_attachment(name: &str, content: &[u8]) {
    let Ok(kept) = AttachmentName::parse(name) else { return };
    let s = kept.as_str();
    assert!(!s.contains(['/', '\\']) && !s.chars().any(char::is_control), "{s:?}");
    assert!((1..=255).contains(&s.chars().count()) && s != "." && s != "..");
    assert_eq!(AttachmentName::parse(s).as_ref().map(AttachmentName::as_str), Ok(s), "not idempotent");
    let header = content_disposition(&kept);
    assert!(axum::http::HeaderValue::from_str(&header).is_ok(), "{header:?}");
    let (fallback, encoded) = header
        .strip_prefix("attachment; filename=\"")
        .and_then(|rest| rest.split_once("\"; filename*=UTF-8''"))
        .expect("attachment; filename=\"…\"; filename*=UTF-8''…");
    assert!(!fallback.contains(['"', '\\', '\r', '\n']));
    assert_eq!(percent_decode(encoded).as_deref(), Some(s.as_bytes()));
    let head = &content[..content.len().min(crate::domain::attachments::SNIFF_LEN)];
    let _ = classify(&kept, head);
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    Some(out)
}

/// The text check of an upload reads the body in pieces of any size: its verdict is the same
/// however the bytes are split, and is the whole-text rule (UTF-8, no control characters but
/// tab, LF, FF and CR).
pub fn check_text_pieces(content: &[u8], cuts: &[usize]) {
    let whole = std::str::from_utf8(content)
        .is_ok_and(|t| !t.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{c}')));
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (content.len() + 1)).collect();
    points.sort_unstable();
    let mut check = TextCheck::default();
    let mut at = 0;
    let mut ok = true;
    for p in points.into_iter().chain([content.len()]) {
        ok &= check.feed(&content[at..p]);
        at = p;
        if !ok {
            break;
        }
    }
    assert_eq!(ok && check.finish(), whole, "{content:?} split at {cuts:?}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Text made of the pieces a cursor or query is made of, so that more inputs get past the
    /// first check than with arbitrary strings.
    fn cursorish() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[A-Za-z0-9_-]{0,64}",
            proptest::collection::vec(any::<u8>(), 0..64).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
            (
                "[A-Za-z0-9_-]{12}",
                "(position|due_date|priority|created_at|updated_at)",
                any::<[u8; 16]>(),
                "[-0-9 a-z]{0,24}"
            )
                .prop_map(|(fp, sort, id, key)| URL_SAFE_NO_PAD
                    .encode(format!("{fp} {sort} {} {key}", uuid::Uuid::from_bytes(id).simple()))),
        ]
    }

    fn query_string() -> impl Strategy<Value = String> {
        let key = "(limit|cursor|sort|status|assignee_id|priority|label|due_before|due_after|q|x)";
        let value = prop_oneof![
            any::<String>(),
            "-?(position|due_date|priority|created_at|updated_at|todo|done|low|urgent)",
            "[0-9]{1,4}-[0-9]{1,2}-[0-9]{1,3}",
            "[0-9]{0,12}",
            cursorish(),
        ];
        proptest::collection::vec((key, value), 0..6).prop_map(|pairs| {
            let enc = |s: &str| {
                s.bytes()
                    .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") })
                    .collect::<String>()
            };
            pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
        })
    }

    proptest! {
        #[test]
        fn project_cursors(s in cursorish()) { check_project_cursor(&s) }

        #[test]
        fn search_cursors(s in cursorish()) { check_search_cursor(&s) }

        #[test]
        fn search_keys_survive_their_cursor(score in any::<f64>(), kind in any::<u8>(), id in any::<[u8; 16]>()) {
            check_search_key_round_trip(score, kind, id)
        }

        #[test]
        fn task_cursors(s in prop_oneof![
            cursorish(),
            // With the default list's own fingerprint and sort, so the key's parsing is reached.
            ("(position|due_date)", any::<[u8; 16]>(), "[-0-9 a-z]{0,24}").prop_map(|(sort, id, key)| {
                let fp = fingerprint(&TaskListQuery::default());
                URL_SAFE_NO_PAD.encode(format!("{fp} {sort} {} {key}", uuid::Uuid::from_bytes(id).simple()))
            }),
        ]) {
            check_task_cursor(&s)
        }

        #[test]
        fn task_list_queries(q in query_string()) { check_task_list_query(&q) }

        #[test]
        fn raw_task_list_queries(q in any::<String>()) { check_task_list_query(&q) }

        #[test]
        fn search_queries(q in prop_oneof![any::<String>(), "[a-zA-Z0-9 *&|!:\"()^-]{0,40}"], text in any::<String>()) {
            check_search_query(&q, &text)
        }

        #[test]
        fn attachments(name in prop_oneof![any::<String>(), "[./\\\\a-z\\x00-\\x1f\"%; é]{0,40}"],
                       content in proptest::collection::vec(any::<u8>(), 0..512)) {
            check_attachment(&name, &content)
        }

        #[test]
        fn text_checks_do_not_depend_on_pieces(
            content in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..64),
                any::<String>().prop_map(String::into_bytes),
            ],
            cuts in proptest::collection::vec(any::<usize>(), 0..6),
        ) {
            check_text_pieces(&content, &cuts)
        }
    }

    /// A check that finds nothing proves nothing: each rejects what it must.
    #[test]
    fn the_checks_see_what_they_look_for() {
        // A valid cursor of the default list is accepted and passes.
        check_project_cursor(&encode_project_cursor(uuid::Uuid::nil()));
        assert!(decode_project_cursor("AAAAAAAAAAAAAAAAAAAAAA").is_ok());
        // A cursor with a second spelling (non-canonical trailing bits) is refused.
        assert!(decode_project_cursor("AAAAAAAAAAAAAAAAAAAAAB").is_err());
        // A text split inside a character is still one character.
        check_text_pieces("é".as_bytes(), &[1]);
        check_text_pieces(b"a\x00b", &[1]);
        check_attachment("../../etc/passwd", b"root");
        check_task_list_query("sort=-due_date&limit=5&q=a%20b");
        // A cursor of one list is refused for another.
        let other = TaskListQuery {
            order: crate::ports::TaskOrder { sort: crate::ports::TaskSort::DueDate, descending: false },
            ..Default::default()
        };
        let cursor =
            URL_SAFE_NO_PAD.encode(format!("{} due_date {} -", fingerprint(&other), uuid::Uuid::nil().simple()));
        assert!(decode_task(&cursor, &other, &fingerprint(&other)).is_ok());
        assert!(decode_task(&cursor, &TaskListQuery::default(), &fingerprint(&TaskListQuery::default())).is_err());
    }
}
