//! Search queries and result snippets, independent of the backend. A query is reduced to words
//! (runs of letters and digits, lowercased) before any backend sees it, so no character of the
//! user's text ever reaches FTS5's MATCH syntax or a tsquery operator.

use super::ValidationError;

/// The longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// At most this many words are searched for (more would only slow the query down).
pub const MAX_WORDS: usize = 16;

/// A search query: the words of the user's text. Every word must occur in a result; the last one
/// may be the beginning of a word (search as you type). Empty when the text has no letter or
/// digit (`"*"`, `"&|!"`): such a query matches nothing rather than failing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    words: Vec<String>,
}

impl SearchQuery {
    /// 1–200 characters, not blank.
    pub fn parse(q: &str) -> Result<Self, ValidationError> {
        if q.trim().is_empty() {
            return Err(ValidationError::Empty);
        }
        if q.chars().count() > MAX_QUERY_CHARS {
            return Err(ValidationError::TooLong { max: MAX_QUERY_CHARS });
        }
        let words = words_of(q).into_iter().take(MAX_WORDS).collect();
        Ok(Self { words })
    }

    /// The words, lowercase, each a non-empty run of letters and digits.
    pub fn words(&self) -> &[String] {
        &self.words
    }
}

/// The runs of alphanumeric characters of `text`, lowercased.
fn words_of(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// The longest snippet, in characters.
pub const SNIPPET_CHARS: usize = 160;

/// An excerpt of `text` of at most [`SNIPPET_CHARS`] characters (plus ellipses) around the first
/// word that starts with one of `words`, or its beginning when none does. Plain text: line breaks
/// become spaces, nothing is marked up (the client highlights, so no markup can be injected).
pub fn snippet(text: &str, words: &[String]) -> String {
    let chars: Vec<char> = text.chars().map(|c| if c.is_whitespace() { ' ' } else { c }).collect();
    let lower: Vec<char> = chars.iter().map(|c| c.to_lowercase().next().unwrap_or(*c)).collect();
    let mut hit = None;
    let mut i = 0;
    while i < lower.len() && hit.is_none() {
        if lower[i].is_alphanumeric() && (i == 0 || !lower[i - 1].is_alphanumeric()) {
            let starts = |w: &String| {
                let w: Vec<char> = w.chars().collect();
                lower.get(i..i + w.len()).is_some_and(|s| s == w.as_slice())
            };
            if words.iter().any(starts) {
                hit = Some(i);
            }
        }
        i += 1;
    }
    let start = hit.map_or(0, |h| h.saturating_sub(SNIPPET_CHARS / 4));
    // Begin at a word boundary when cutting into the text.
    let start =
        if start == 0 { 0 } else { (start..hit.unwrap_or(start)).find(|&j| chars[j - 1] == ' ').unwrap_or(start) };
    let end = (start + SNIPPET_CHARS).min(chars.len());
    let mut out: String = chars[start..end].iter().collect::<String>().trim().to_string();
    if start > 0 {
        out.insert(0, '…');
    }
    if end < chars.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(q: &str) -> Vec<String> {
        SearchQuery::parse(q).map(|q| q.words().to_vec()).unwrap_or_default()
    }

    #[test]
    fn queries_are_reduced_to_lowercase_words() {
        assert_eq!(words("Rocket  FUEL-pump"), ["rocket", "fuel", "pump"]);
        assert_eq!(words("Grüße, 東京!"), ["grüße", "東京"]);
        assert_eq!(words("v2.0"), ["v2", "0"]);
    }

    #[test]
    fn hostile_queries_keep_no_syntax() {
        for q in ["\"", "*", "NEAR(", ":", "&|!", "\"unbalanced", "a' OR '1'='1", "title:x", "(a OR b)*"] {
            for w in words(q) {
                assert!(w.chars().all(char::is_alphanumeric), "{q:?} gave {w:?}");
            }
        }
        assert!(words("*&|!").is_empty());
        assert_eq!(words("NEAR(a b)"), ["near", "a", "b"]);
    }

    #[test]
    fn empty_blank_and_long_queries_are_refused() {
        assert_eq!(SearchQuery::parse(""), Err(ValidationError::Empty));
        assert_eq!(SearchQuery::parse("   "), Err(ValidationError::Empty));
        assert!(SearchQuery::parse(&"é".repeat(200)).is_ok());
        assert_eq!(SearchQuery::parse(&"a".repeat(201)), Err(ValidationError::TooLong { max: 200 }));
        assert_eq!(words(&"a ".repeat(40)).len(), MAX_WORDS);
    }

    #[test]
    fn snippets_centre_on_the_first_match() {
        let text = format!("{} the fuel pump leaks\nagain {}", "intro ".repeat(40), "outro ".repeat(40));
        let s = snippet(&text, &["pum".into()]);
        assert!(s.starts_with('…') && s.ends_with('…'), "{s}");
        assert!(s.contains("fuel pump leaks again"), "{s}");
        assert!(s.chars().count() <= SNIPPET_CHARS + 2);
        // No match in the text (the title matched): its beginning.
        assert_eq!(snippet("short text", &["zzz".into()]), "short text");
        assert_eq!(snippet("", &["a".into()]), "");
    }
}
