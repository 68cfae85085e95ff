//! Property checks of the token and second-factor input every service or the auth service reads
//! from strangers: access tokens (their header check and signature verification,
//! `platform::identity::TokenVerifier` over keys of every algorithm we sign with), TOTP codes and
//! recovery codes.
//!
//! Each `check_*` takes arbitrary input, must not panic, and asserts an invariant. The proptest
//! suites below run them in every test run (`PROPTEST_CASES`, 256 by default); the cargo-fuzz
//! targets in `fuzz/` call the same functions for the longer runs (docs/SECURITY.md JW-8, SC-3).
#![allow(clippy::expect_used, reason = "a check's panic is its verdict: it runs in tests and under cargo-fuzz only")]

use std::sync::{Arc, OnceLock};

use api::ApiError;
use api::auth::{Jwks, KeySource, SessionStatus};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use platform::identity::{ACCESS_TOKEN_TYP, TokenVerifier};
use serde_json::{Value, json};

use crate::keys::{SigningAlgorithm, SigningKey, jwks};
use crate::totp::{self, TotpSecret};

const ISS: &str = "https://trellis.fuzz";

struct Fixture {
    runtime: tokio::runtime::Runtime,
    keys: Vec<SigningKey>,
    verifier: TokenVerifier,
}

struct Keys(Jwks);

#[async_trait::async_trait]
impl KeySource for Keys {
    async fn jwks(&self) -> Result<Jwks, ApiError> {
        Ok(self.0.clone())
    }
}

struct AllActive;

#[async_trait::async_trait]
impl SessionStatus for AllActive {
    async fn session_active(&self, _: uuid::Uuid) -> Result<bool, ApiError> {
        Ok(true)
    }
}

/// One key per algorithm and a verifier that trusts exactly those keys (made once per process).
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let keys: Vec<SigningKey> =
            SigningAlgorithm::ALL.iter().map(|a| SigningKey::generate(*a).expect("key generation")).collect();
        let source = Arc::new(Keys(jwks(keys.iter())));
        let cache = Arc::new(platform::cache::MemoryCache::default());
        let verifier = TokenVerifier::new(source, Arc::new(AllActive), cache, ISS, "trellis");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        Fixture { runtime, keys, verifier }
    })
}

fn accepted(token: &str) -> bool {
    let f = fixture();
    f.runtime.block_on(f.verifier.verify_signature(token)).is_ok()
}

fn claims() -> Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    json!({
        "iss": ISS, "sub": uuid::Uuid::now_v7(), "aud": "trellis", "exp": now + 900, "iat": now,
        "jti": uuid::Uuid::now_v7().to_string(), "sid": uuid::Uuid::now_v7(), "role": "user",
    })
}

fn b64json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap_or_default())
}

/// A token with this header over valid claims, signed by `key` under its own algorithm.
fn signed(key: &SigningKey, header: &Value) -> String {
    let input = format!("{}.{}", b64json(header), b64json(&claims()));
    let sig = key.signature(input.as_bytes()).expect("signing");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// Arbitrary bytes are never a valid token: nothing is accepted without a signature by one of
/// our keys.
pub fn check_token_bytes(input: &[u8]) {
    let token = String::from_utf8_lossy(input);
    assert!(!accepted(&token), "accepted a token nobody signed: {token:?}");
}

/// The header check: a token correctly signed by one of our keys, under any header, is accepted
/// only when the header says `typ: at+jwt`, names that key's `kid` and exactly its algorithm,
/// and points at no other key (`jku`, `jwk`, `x5u`, `x5c`) nor demands extensions (`crit`). The
/// same header with `alg: none` and no signature is never accepted.
pub fn check_token_header(key_index: u8, header: &Value) {
    let f = fixture();
    let key = &f.keys[usize::from(key_index) % f.keys.len()];
    let token = signed(key, header);
    if accepted(&token) {
        let h = header.as_object().expect("an accepted header is an object");
        assert_eq!(h.get("typ").and_then(Value::as_str), Some(ACCESS_TOKEN_TYP), "{header}");
        assert_eq!(h.get("alg").and_then(Value::as_str), Some(key.alg.as_str()), "{header}");
        assert_eq!(h.get("kid").and_then(Value::as_str), Some(key.kid.as_str()), "{header}");
        for foreign in ["jku", "jwk", "x5u", "x5c", "crit"] {
            assert!(h.get(foreign).is_none_or(Value::is_null), "{header}");
        }
    }
    let mut unsigned = header.clone();
    if let Some(h) = unsigned.as_object_mut() {
        h.insert("alg".into(), json!("none"));
    }
    let input = format!("{}.{}", b64json(&unsigned), b64json(&claims()));
    assert!(!accepted(&format!("{input}.")), "accepted alg none: {unsigned}");
    // Nor the signed content under an empty signature.
    let (content, _) = token.rsplit_once('.').expect("three parts");
    assert!(!accepted(&format!("{content}.")), "accepted without a signature: {header}");
}

/// A token we signed, changed anywhere, is accepted only if the change left the signed bytes and
/// the signature as they were (base64url has one spelling per value).
pub fn check_token_mutation(key_index: u8, position: u16, replacement: u8) {
    let f = fixture();
    let key = &f.keys[usize::from(key_index) % f.keys.len()];
    let token = signed(key, &json!({ "alg": key.alg.as_str(), "typ": ACCESS_TOKEN_TYP, "kid": key.kid }));
    let mut bytes = token.clone().into_bytes();
    let at = usize::from(position) % bytes.len();
    bytes[at] = replacement;
    let Ok(changed) = String::from_utf8(bytes) else { return };
    if changed != token && accepted(&changed) {
        let parts =
            |t: &str| -> Vec<Option<Vec<u8>>> { t.split('.').map(|p| URL_SAFE_NO_PAD.decode(p).ok()).collect() };
        assert_eq!(parts(&changed), parts(&token), "accepted a changed token: {changed}");
    }
}

/// A TOTP code is accepted only as six ASCII digits (surrounding whitespace aside) equal to the
/// code of a step within one of the server's current step, later than the last step used; and the
/// current code is always accepted once.
pub fn check_totp(secret: [u8; totp::SECRET_LEN], code: &str, now: i64, last_used: Option<i64>) {
    let secret = TotpSecret::from_bytes(secret);
    if let Some(step) = totp::verify(&secret, code, now, last_used) {
        let trimmed = code.trim();
        assert!(trimmed.len() == 6 && trimmed.bytes().all(|b| b.is_ascii_digit()), "{code:?}");
        let now_step = now.div_euclid(totp::PERIOD_SECS);
        assert!((now_step - 1..=now_step + 1).contains(&step), "step {step} at {now}");
        assert!(last_used.is_none_or(|last| step > last), "replayed step {step}");
        if let Some(at) = step.checked_mul(totp::PERIOD_SECS) {
            assert_eq!(totp::code_at(&secret, at), trimmed);
        }
    }
    // The current code works, then never again once its step is used.
    if now < 0 {
        return;
    }
    let now_step = now.div_euclid(totp::PERIOD_SECS);
    let current = totp::code_at(&secret, now);
    let step = totp::verify(&secret, &current, now, None).expect("the current code");
    assert!(step >= now_step);
    assert_eq!(totp::verify(&secret, &current, now, Some(now_step + 1)), None, "replay accepted");
}

/// Recovery codes are compared in one canonical form: normalizing is idempotent and the stored
/// hash does not depend on case, hyphens or spaces.
pub fn check_recovery_code(typed: &str) {
    let canonical = totp::normalize_recovery_code(typed);
    assert_eq!(totp::normalize_recovery_code(&canonical), canonical, "{typed:?}");
    assert_eq!(totp::hash_recovery_code(typed), totp::hash_recovery_code(&canonical));
    assert!(!canonical.contains('-') && !canonical.chars().any(char::is_whitespace));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Header values: mostly what a header could plausibly hold, including the right ones.
    fn header() -> impl Strategy<Value = Value> {
        let f = fixture();
        let kids: Vec<Value> = f.keys.iter().map(|k| json!(k.kid)).collect();
        let value = prop_oneof![
            proptest::sample::select(kids),
            proptest::sample::select(vec![
                json!("RS256"),
                json!("PS256"),
                json!("ES256"),
                json!("EdDSA"),
                json!("HS256"),
                json!("none"),
                json!("at+jwt"),
                json!("JWT"),
                json!("https://evil.example/jwks.json"),
                json!({ "kty": "oct", "k": "AAAA" }),
                json!(["exp"]),
                json!(null),
                json!(1),
            ]),
            any::<String>().prop_map(Value::String),
        ];
        let key = proptest::sample::select(vec!["alg", "typ", "kid", "jku", "jwk", "x5u", "x5c", "crit", "cty", "zip"]);
        prop_oneof![
            proptest::collection::btree_map(key, value, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
            Just(json!([])),
            Just(json!("at+jwt")),
        ]
    }

    proptest! {
        #[test]
        fn tokens_from_arbitrary_bytes(input in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            "[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,200}\\.[A-Za-z0-9_-]{0,100}".prop_map(String::into_bytes),
        ]) {
            check_token_bytes(&input)
        }

        #[test]
        fn token_headers(key in any::<u8>(), header in header()) { check_token_header(key, &header) }

        #[test]
        fn changed_tokens(key in any::<u8>(), position in any::<u16>(), byte in any::<u8>()) {
            check_token_mutation(key, position, byte)
        }

        #[test]
        fn totp_codes(
            secret in any::<[u8; totp::SECRET_LEN]>(),
            code in prop_oneof![any::<String>(), "[ 0-9a\u{0660}-\u{0669}]{0,8}", "[0-9]{6}"],
            now in prop_oneof![any::<i64>(), 0..4_000_000_000i64],
            last in proptest::option::of(any::<i64>()),
        ) {
            check_totp(secret, &code, now, last)
        }

        #[test]
        fn recovery_codes(typed in any::<String>()) { check_recovery_code(&typed) }
    }

    #[test]
    fn the_checks_see_what_they_look_for() {
        let f = fixture();
        for key in &f.keys {
            let good = json!({ "alg": key.alg.as_str(), "typ": ACCESS_TOKEN_TYP, "kid": key.kid });
            assert!(accepted(&signed(key, &good)), "{:?}", key.alg);
            check_token_header(0, &good);
            let mut bad = good.clone();
            bad["jku"] = json!("https://evil.example/jwks.json");
            assert!(!accepted(&signed(key, &bad)));
        }
        check_totp([7; totp::SECRET_LEN], "123456", 1_700_000_000, None);
        check_recovery_code("ABCDE fghjk-MNPQR stuvw");
    }
}
