//! Personal data at rest: envelope encryption of the users table, its blind index and its
//! search tokens (docs/SECURITY.md EN-1 to EN-3, GD-2).
//!
//! - Every user has a data key (DEK) of their own: 256 random bits, stored only wrapped by a
//!   key-encryption key (KEK) from configuration, with the KEK's version beside it. Destroying
//!   the wrapped DEK makes whatever was sealed with it unreadable (crypto-shredding).
//! - Fields are sealed with the DEK (AES-256-GCM, random 96-bit nonce) and associated data
//!   naming the table, column, row and key version, so a ciphertext moved to another row or
//!   column does not open.
//! - Equality lookups by email use an HMAC-SHA-256 of the normalized email under a separate index
//!   key; search uses HMAC tokens of word prefixes under a key derived from it. What the tokens
//!   reveal is written in ARCHITECTURE.md ("Personal data at rest").

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use platform::crypto::{SealingKey, hmac_sha256, random_bytes};
use uuid::Uuid;

/// Shortest word prefix that gets a search token: one letter would tie nearly every user to
/// nearly every other and make the tokens' frequencies telling, for a search nobody needs.
pub const MIN_PREFIX: usize = 2;
/// Longest prefix that gets a token; longer query words match on this prefix, then on the
/// decrypted text.
pub const MAX_PREFIX: usize = 16;
/// Bytes kept of each search token's HMAC: enough that unrelated prefixes practically never
/// share one (and results are checked against the decrypted text anyway).
pub const TOKEN_LEN: usize = 8;

pub type SearchToken = [u8; TOKEN_LEN];

#[derive(Debug, thiserror::Error)]
pub enum PiiError {
    #[error("no key-encryption key of version {0} is configured")]
    UnknownVersion(u32),
    #[error("personal data could not be decrypted (wrong key or moved ciphertext)")]
    Open,
    #[error("invalid personal-data key configuration: {0}")]
    Config(String),
}

/// The configured keys: KEKs by version (the highest wraps new data keys) and the index key.
pub struct PiiKeys {
    keks: BTreeMap<u32, SealingKey>,
    current: u32,
    index_key: [u8; 32],
    token_key: [u8; 32],
}

impl std::fmt::Debug for PiiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PiiKeys").field("versions", &self.keks.keys().collect::<Vec<_>>()).finish_non_exhaustive()
    }
}

/// A user's data key, unwrapped.
pub struct DataKey {
    key: SealingKey,
    user_id: Uuid,
    version: u32,
}

/// A data key as stored: wrapped by the KEK of `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub version: u32,
    pub bytes: Vec<u8>,
}

/// The encrypted columns of the users table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Email,
    Name,
    Preferences,
}

impl Column {
    fn as_str(self) -> &'static str {
        match self {
            Column::Email => "email",
            Column::Name => "name",
            Column::Preferences => "preferences",
        }
    }
}

impl PiiKeys {
    /// `keks`: (version, 32-byte key) pairs, versions from 1; `index_key`: 32 bytes.
    pub fn new(keks: &[(u32, [u8; 32])], index_key: [u8; 32]) -> Result<Self, PiiError> {
        let mut map = BTreeMap::new();
        for (version, key) in keks {
            if *version == 0 {
                return Err(PiiError::Config("key versions start at 1".into()));
            }
            let key = SealingKey::new(key).map_err(|e| PiiError::Config(e.to_string()))?;
            if map.insert(*version, key).is_some() {
                return Err(PiiError::Config(format!("key version {version} is given twice")));
            }
        }
        let current = *map.keys().next_back().ok_or_else(|| PiiError::Config("no key is configured".into()))?;
        let token_key = hmac_sha256(&index_key, b"trellis users search tokens v1");
        Ok(Self { keks: map, current, index_key, token_key })
    }

    /// Parses `pii.keys` (`VERSION:BASE64` entries separated by commas) and `pii.index_key`.
    pub fn from_config(keys: &str, index_key: &str) -> Result<Self, PiiError> {
        let mut keks = Vec::new();
        for entry in keys.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (version, key) =
                entry.split_once(':').ok_or_else(|| PiiError::Config("pii.keys entries are VERSION:BASE64".into()))?;
            let version: u32 = version
                .trim()
                .parse()
                .map_err(|_| PiiError::Config(format!("pii.keys: {version:?} is not a key version")))?;
            keks.push((version, decode32("pii.keys", key)?));
        }
        Self::new(&keks, decode32("pii.index_key", index_key)?)
    }

    /// Fresh random keys (tests and first start all-in-one).
    pub fn generate() -> Self {
        // Infallible: version 1 and 32-byte keys.
        #[allow(clippy::expect_used)]
        Self::new(&[(1, random_bytes::<32>())], random_bytes::<32>()).expect("valid generated keys")
    }

    pub fn current_version(&self) -> u32 {
        self.current
    }

    pub fn versions(&self) -> impl Iterator<Item = u32> + '_ {
        self.keks.keys().copied()
    }

    fn wrap_aad(user_id: Uuid, version: u32) -> Vec<u8> {
        format!("users|data_key|{user_id}|{version}").into_bytes()
    }

    /// A new data key for `user_id`, wrapped by the current KEK.
    pub fn new_data_key(&self, user_id: Uuid) -> (DataKey, WrappedKey) {
        let raw = random_bytes::<32>();
        // Infallible: a 32-byte key, and the current version is always configured.
        #[allow(clippy::expect_used)]
        let (kek, key) = (
            self.keks.get(&self.current).expect("current key-encryption key"),
            SealingKey::new(&raw).expect("32-byte data key"),
        );
        let bytes = kek.seal(&raw, &Self::wrap_aad(user_id, self.current));
        (DataKey { key, user_id, version: self.current }, WrappedKey { version: self.current, bytes })
    }

    /// Unwraps a stored data key.
    pub fn unwrap(&self, user_id: Uuid, wrapped: &WrappedKey) -> Result<DataKey, PiiError> {
        let kek = self.keks.get(&wrapped.version).ok_or(PiiError::UnknownVersion(wrapped.version))?;
        let raw = kek.open(&wrapped.bytes, &Self::wrap_aad(user_id, wrapped.version)).map_err(|_| PiiError::Open)?;
        let key = SealingKey::new(&raw).map_err(|_| PiiError::Open)?;
        Ok(DataKey { key, user_id, version: wrapped.version })
    }

    /// The blind index of a normalized email.
    pub fn email_index(&self, normalized_email: &str) -> Vec<u8> {
        hmac_sha256(&self.index_key, format!("email\0{normalized_email}").as_bytes()).to_vec()
    }

    fn token(&self, prefix: &str) -> SearchToken {
        let mac = hmac_sha256(&self.token_key, prefix.as_bytes());
        let mut out = [0u8; TOKEN_LEN];
        out.copy_from_slice(&mac[..TOKEN_LEN]);
        out
    }

    /// The search tokens of a user: one per distinct prefix (2 to 16 characters) of every word of
    /// the name and the email.
    pub fn search_tokens(&self, name: &str, email: &str) -> BTreeSet<SearchToken> {
        let mut out = BTreeSet::new();
        for word in words(name).into_iter().chain(words(email)) {
            let chars: Vec<char> = word.chars().collect();
            for len in MIN_PREFIX..=chars.len().min(MAX_PREFIX) {
                out.insert(self.token(&chars[..len].iter().collect::<String>()));
            }
        }
        out
    }

    /// The tokens a query needs: one per query word of at least two characters (cut to 16).
    /// `None` when no word is long enough to search by.
    pub fn query_tokens(&self, query: &str) -> Option<Vec<SearchToken>> {
        let tokens: BTreeSet<SearchToken> = words(query)
            .into_iter()
            .filter(|w| w.chars().count() >= MIN_PREFIX)
            .map(|w| self.token(&w.chars().take(MAX_PREFIX).collect::<String>()))
            .collect();
        (!tokens.is_empty()).then(|| tokens.into_iter().collect())
    }
}

/// Whether every word of `query` begins some word of `name` or `email` (the exact check behind
/// the token match).
pub fn matches(query: &str, name: &str, email: &str) -> bool {
    let have: Vec<String> = words(name).into_iter().chain(words(email)).collect();
    words(query).iter().all(|q| have.iter().any(|w| w.starts_with(q.as_str())))
}

/// Lowercased runs of letters and digits.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

impl DataKey {
    fn aad(&self, column: Column) -> Vec<u8> {
        format!("users|{}|{}|{}", column.as_str(), self.user_id, self.version).into_bytes()
    }

    pub fn seal(&self, column: Column, plaintext: &[u8]) -> Vec<u8> {
        self.key.seal(plaintext, &self.aad(column))
    }

    pub fn open(&self, column: Column, sealed: &[u8]) -> Result<Vec<u8>, PiiError> {
        self.key.open(sealed, &self.aad(column)).map_err(|_| PiiError::Open)
    }

    pub fn open_string(&self, column: Column, sealed: &[u8]) -> Result<String, PiiError> {
        String::from_utf8(self.open(column, sealed)?).map_err(|_| PiiError::Open)
    }
}

fn decode32(name: &str, value: &str) -> Result<[u8; 32], PiiError> {
    STANDARD
        .decode(value.trim())
        .ok()
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
        .ok_or_else(|| PiiError::Config(format!("{name} must be 32 bytes in base64")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(versions: &[(u32, u8)]) -> PiiKeys {
        let keks: Vec<(u32, [u8; 32])> = versions.iter().map(|(v, b)| (*v, [*b; 32])).collect();
        PiiKeys::new(&keks, [9; 32]).unwrap()
    }

    #[test]
    fn fields_open_only_in_their_row_column_and_version() {
        let k = keys(&[(1, 1)]);
        let (ada, _) = k.new_data_key(Uuid::now_v7());
        let sealed = ada.seal(Column::Email, b"ada@example.com");
        assert_eq!(ada.open_string(Column::Email, &sealed).unwrap(), "ada@example.com");
        assert!(ada.open(Column::Name, &sealed).is_err(), "moved to another column");
        assert_ne!(sealed, ada.seal(Column::Email, b"ada@example.com"), "random nonces");
        // The same key bytes under another row's id do not open it either.
        let other = DataKey { key: SealingKey::new(&[0; 32]).unwrap(), user_id: Uuid::now_v7(), version: 1 };
        assert!(other.open(Column::Email, &sealed).is_err());
    }

    #[test]
    fn data_keys_unwrap_with_their_version_only() {
        let old = keys(&[(1, 1)]);
        let id = Uuid::now_v7();
        let (dk, wrapped) = old.new_data_key(id);
        let sealed = dk.seal(Column::Name, b"Ada");
        let both = keys(&[(1, 1), (2, 2)]);
        assert_eq!(both.current_version(), 2, "the highest version wraps new keys");
        let again = both.unwrap(id, &wrapped).unwrap();
        assert_eq!(again.open_string(Column::Name, &sealed).unwrap(), "Ada");
        assert!(both.unwrap(Uuid::now_v7(), &wrapped).is_err(), "a wrapped key is bound to its user");
        let only_new = keys(&[(2, 2)]);
        assert!(matches!(only_new.unwrap(id, &wrapped), Err(PiiError::UnknownVersion(1))));
        let wrong = keys(&[(1, 3)]);
        assert!(matches!(wrong.unwrap(id, &wrapped), Err(PiiError::Open)));
    }

    #[test]
    fn blind_index_is_keyed_and_deterministic() {
        let a = keys(&[(1, 1)]);
        assert_eq!(a.email_index("ada@example.com"), a.email_index("ada@example.com"));
        assert_ne!(a.email_index("ada@example.com"), a.email_index("bob@example.com"));
        let other = PiiKeys::new(&[(1, [1; 32])], [8; 32]).unwrap();
        assert_ne!(a.email_index("ada@example.com"), other.email_index("ada@example.com"));
    }

    #[test]
    fn tokens_cover_word_prefixes_of_name_and_email() {
        let k = keys(&[(1, 1)]);
        let tokens = k.search_tokens("Ada Lovelace", "ada.king@analytical.org");
        for q in ["ad", "ada", "LOVE", "lovelace", "king", "anal", "org", "ada love", "ada@analytical"] {
            let needed = k.query_tokens(q).unwrap();
            assert!(needed.iter().all(|t| tokens.contains(t)), "{q} should match");
            assert!(matches(q, "Ada Lovelace", "ada.king@analytical.org"), "{q} should match exactly");
        }
        for q in ["ovelace", "adam", "babbage"] {
            let needed = k.query_tokens(q).unwrap();
            assert!(!needed.iter().all(|t| tokens.contains(t)), "{q} should not match");
            assert!(!matches(q, "Ada Lovelace", "ada.king@analytical.org"));
        }
        assert!(k.query_tokens("a").is_none(), "one letter is too short to search by");
        assert!(k.query_tokens(" - ").is_none());
    }

    #[test]
    fn long_words_match_on_their_first_sixteen_characters_then_exactly() {
        let k = keys(&[(1, 1)]);
        let tokens = k.search_tokens("Wolfeschlegelsteinhausenbergerdorff", "w@example.com");
        let q = "wolfeschlegelsteinhausen";
        assert!(k.query_tokens(q).unwrap().iter().all(|t| tokens.contains(t)));
        assert!(matches(q, "Wolfeschlegelsteinhausenbergerdorff", "w@example.com"));
        let near = "wolfeschlegelsteinXXX";
        assert!(k.query_tokens(near).unwrap().iter().all(|t| tokens.contains(t)), "same first 16");
        assert!(!matches(near, "Wolfeschlegelsteinhausenbergerdorff", "w@example.com"), "the exact check drops it");
    }

    #[test]
    fn config_parses_versions_and_rejects_bad_keys() {
        let k32 = STANDARD.encode([5u8; 32]);
        let k = PiiKeys::from_config(&format!("1:{k32}, 3:{k32}"), &k32).unwrap();
        assert_eq!(k.current_version(), 3);
        assert_eq!(k.versions().collect::<Vec<_>>(), vec![1, 3]);
        for bad in ["", "1", "x:abc", &format!("0:{k32}"), "1:c2hvcnQ=", &format!("1:{k32},1:{k32}")] {
            assert!(PiiKeys::from_config(bad, &k32).is_err(), "{bad:?} should be refused");
        }
        assert!(PiiKeys::from_config(&format!("1:{k32}"), "c2hvcnQ=").is_err());
    }
}
