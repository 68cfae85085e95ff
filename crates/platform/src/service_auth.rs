//! Per-service credentials for calls between Trellis services (docs/SECURITY.md GW-6, AZ-5):
//! each service has its own Ed25519 key pair; a call carries a short-lived token the calling
//! service signed, naming itself (`iss`), the service called (`aud`), the request it is for
//! (`htm` method, `htp` path), when it was made and when it ends (`iat`, `exp`: 60 s) and a
//! random `jti`. The called service verifies it with the caller's public key, so a credential
//! says which service is calling, works for one route of one service only, and expires.
//!
//! The token is a compact JWS with one fixed header, `{"alg":"EdDSA","typ":"trellis-service+jwt"}`,
//! compared byte for byte: there is no algorithm to negotiate and no key a header could point at,
//! and its `typ` keeps it apart from access tokens (which are verified against other keys anyway).
//! A process remembers the `jti`s it accepted until they expire, so a token is accepted once per
//! process. Keys: a private key is 32 random bytes (the Ed25519 seed) or a PKCS#8 document, in
//! base64; a public key is the raw 32 bytes or a SubjectPublicKeyInfo document, in base64.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use api::internal::Service;
use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

/// The header carrying the calling service's token.
pub const SERVICE_TOKEN_HEADER: &str = "x-trellis-service";

/// How long a token is valid after it is made.
pub const TOKEN_TTL: Duration = Duration::from_secs(60);

/// How far the clocks of two services may disagree.
pub const CLOCK_SKEW_SECS: i64 = 15;

/// The longest lifetime a token may claim: a caller configured otherwise is refused.
const MAX_LIFETIME_SECS: i64 = 120;

/// The `typ` of a service token.
pub const SERVICE_TOKEN_TYP: &str = "trellis-service+jwt";

const HEADER_JSON: &str = r#"{"alg":"EdDSA","typ":"trellis-service+jwt"}"#;

/// The longest token accepted (ours are about 400 bytes; paths are short).
const MAX_TOKEN_LEN: usize = 4096;

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), before the 32 key bytes.
const SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn decode_any(text: &str) -> Option<Vec<u8>> {
    let t = text.trim();
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD].iter().find_map(|e| e.decode(t).ok())
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Claims {
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
    jti: String,
    htm: String,
    htp: String,
}

/// One service's private key: it signs the calls that service makes.
pub struct ServiceKey {
    service: Service,
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceKey").field("service", &self.service).field("public", &self.public_key()).finish()
    }
}

impl ServiceKey {
    /// A private key as configured: base64 of the 32-byte seed, or of a PKCS#8 document (such as
    /// `openssl genpkey -algorithm ed25519 -outform DER | base64 -w0`).
    pub fn parse(service: Service, text: &str) -> anyhow::Result<Self> {
        let bytes = decode_any(text).ok_or_else(|| anyhow::anyhow!("the private key of {service} is not base64"))?;
        let pair = if bytes.len() == 32 {
            Ed25519KeyPair::from_seed_unchecked(&bytes)
        } else {
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(&bytes)
        }
        .map_err(|_| anyhow::anyhow!("the private key of {service} is not an Ed25519 key (32 bytes or PKCS#8)"))?;
        Ok(Self { service, pair })
    }

    /// A new key: the key and its private half in the configured form (base64 of the seed).
    pub fn generate(service: Service) -> (Self, String) {
        let seed = crate::crypto::random_bytes::<32>();
        let text = STANDARD.encode(seed);
        #[allow(clippy::expect_used)] // any 32 bytes are an Ed25519 seed
        let key = Self::parse(service, &text).expect("a 32-byte seed");
        (key, text)
    }

    pub fn service(&self) -> Service {
        self.service
    }

    /// The public key in the configured form (base64 of the 32 bytes).
    pub fn public_key(&self) -> String {
        STANDARD.encode(self.pair.public_key().as_ref())
    }

    /// A token for calling `method path` (the path as it goes on the wire, without the query)
    /// of `audience`, valid for [`TOKEN_TTL`].
    pub fn sign(&self, audience: &str, method: &str, path: &str) -> String {
        self.sign_at(audience, method, path, now_secs(), TOKEN_TTL)
    }

    /// [`ServiceKey::sign`] at a given time with a given lifetime (tests make expired tokens).
    pub fn sign_at(&self, audience: &str, method: &str, path: &str, iat: i64, ttl: Duration) -> String {
        let claims = Claims {
            iss: self.service.as_str().to_string(),
            aud: audience.to_string(),
            iat,
            exp: iat.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
            jti: URL_SAFE_NO_PAD.encode(crate::crypto::random_bytes::<16>()),
            htm: method.to_string(),
            htp: path.to_string(),
        };
        #[allow(clippy::expect_used)] // a struct of strings and integers always serializes
        let payload = serde_json::to_vec(&claims).expect("claims serialize");
        let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(HEADER_JSON), URL_SAFE_NO_PAD.encode(payload));
        let sig = self.pair.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}

/// A public key as configured: base64 of the raw 32 bytes or of a SubjectPublicKeyInfo document
/// (`openssl pkey -pubout -outform DER`).
pub fn parse_public_key(service: Service, text: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = decode_any(text).ok_or_else(|| anyhow::anyhow!("a public key of {service} is not base64"))?;
    let raw = match bytes.len() {
        32 => &bytes[..],
        44 if bytes[..12] == SPKI_PREFIX => &bytes[12..],
        _ => anyhow::bail!("a public key of {service} is not an Ed25519 public key (32 bytes or SubjectPublicKeyInfo)"),
    };
    let mut out = [0u8; 32];
    out.copy_from_slice(raw);
    Ok(out)
}

/// Why a service credential was refused (logged; the caller sees only 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No credential at all.
    Missing,
    /// Not a token of ours (shape, header, encoding, claims).
    Malformed,
    /// `iss` names no service whose public key this process knows.
    UnknownIssuer,
    /// The signature is not the issuer's.
    BadSignature,
    /// Meant for a service this process does not run.
    WrongAudience,
    /// Past `exp` (or claiming a lifetime longer than allowed).
    Expired,
    /// Made in the future.
    NotYetValid,
    /// Made for another method or path.
    WrongRequest,
    /// Its `jti` was accepted before.
    Replayed,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::Malformed => "malformed",
            Refusal::UnknownIssuer => "unknown_issuer",
            Refusal::BadSignature => "bad_signature",
            Refusal::WrongAudience => "wrong_audience",
            Refusal::Expired => "expired",
            Refusal::NotYetValid => "not_yet_valid",
            Refusal::WrongRequest => "wrong_request",
            Refusal::Replayed => "replayed",
        }
    }
}

/// A verified credential: who called, and which of this process's services it was meant for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceCaller {
    pub caller: Service,
    pub audience: Service,
}

/// Verifies service tokens with every service's public keys, for the services this process runs.
pub struct ServiceVerifier {
    keys: BTreeMap<Service, Vec<[u8; 32]>>,
    audiences: BTreeSet<Service>,
    seen: moka::sync::Cache<String, ()>,
}

impl std::fmt::Debug for ServiceVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceVerifier").field("keys", &self.keys.keys()).field("audiences", &self.audiences).finish()
    }
}

impl ServiceVerifier {
    /// `keys`: each service's public keys (several while one is being replaced); `audiences`:
    /// the services this process runs.
    pub fn new(keys: BTreeMap<Service, Vec<[u8; 32]>>, audiences: impl IntoIterator<Item = Service>) -> Self {
        let lifetime = u64::try_from(MAX_LIFETIME_SECS + 2 * CLOCK_SKEW_SECS).unwrap_or(150);
        Self {
            keys,
            audiences: audiences.into_iter().collect(),
            seen: moka::sync::Cache::builder()
                .max_capacity(500_000)
                .time_to_live(Duration::from_secs(lifetime))
                .build(),
        }
    }

    /// Whether any public key is known (all-in-one without keys: no service can call in).
    pub fn knows_any(&self) -> bool {
        self.keys.values().any(|k| !k.is_empty())
    }

    /// Verifies `token` for the request `method path` arriving now.
    pub fn verify(&self, token: &str, method: &str, path: &str) -> Result<ServiceCaller, Refusal> {
        self.verify_at(token, method, path, now_secs())
    }

    pub fn verify_at(&self, token: &str, method: &str, path: &str, now: i64) -> Result<ServiceCaller, Refusal> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Refusal::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Refusal::Malformed);
        };
        if header != URL_SAFE_NO_PAD.encode(HEADER_JSON) {
            return Err(Refusal::Malformed);
        }
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(Refusal::Malformed)?;
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| Refusal::Malformed)?;
        let caller: Service = claims.iss.parse().map_err(|_| Refusal::UnknownIssuer)?;
        let keys = self.keys.get(&caller).filter(|k| !k.is_empty()).ok_or(Refusal::UnknownIssuer)?;
        let signed = &token.as_bytes()[..header.len() + 1 + payload.len()];
        if !keys.iter().any(|k| UnparsedPublicKey::new(&signature::ED25519, k).verify(signed, &sig).is_ok()) {
            return Err(Refusal::BadSignature);
        }
        let audience =
            claims.aud.parse::<Service>().ok().filter(|a| self.audiences.contains(a)).ok_or(Refusal::WrongAudience)?;
        if claims.iat > now + CLOCK_SKEW_SECS {
            return Err(Refusal::NotYetValid);
        }
        if claims.exp <= now - CLOCK_SKEW_SECS || claims.exp.saturating_sub(claims.iat) > MAX_LIFETIME_SECS {
            return Err(Refusal::Expired);
        }
        if !claims.htm.eq_ignore_ascii_case(method) || claims.htp != path {
            return Err(Refusal::WrongRequest);
        }
        if claims.jti.len() < 16 {
            return Err(Refusal::Malformed);
        }
        let entry = self.seen.entry(format!("{caller}:{}", claims.jti)).or_insert(());
        if !entry.is_fresh() {
            return Err(Refusal::Replayed);
        }
        Ok(ServiceCaller { caller, audience })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier_for(keys: &[&ServiceKey], audiences: &[Service]) -> ServiceVerifier {
        let mut map: BTreeMap<Service, Vec<[u8; 32]>> = BTreeMap::new();
        for k in keys {
            map.entry(k.service()).or_default().push(parse_public_key(k.service(), &k.public_key()).unwrap());
        }
        ServiceVerifier::new(map, audiences.iter().copied())
    }

    #[test]
    fn a_token_says_who_calls_whom_for_which_request_and_works_once() {
        let (users, _) = ServiceKey::generate(Service::Users);
        let v = verifier_for(&[&users], &[Service::Auth]);
        let t = users.sign("auth", "POST", "/internal/auth/password-check");
        assert_eq!(
            v.verify(&t, "POST", "/internal/auth/password-check"),
            Ok(ServiceCaller { caller: Service::Users, audience: Service::Auth })
        );
        assert_eq!(v.verify(&t, "POST", "/internal/auth/password-check"), Err(Refusal::Replayed));
        let t = users.sign("auth", "POST", "/internal/auth/password-check");
        assert_eq!(v.verify(&t, "POST", "/internal/auth/personal-data/erase"), Err(Refusal::WrongRequest));
        let t = users.sign("auth", "POST", "/internal/auth/password-check");
        assert_eq!(v.verify(&t, "GET", "/internal/auth/password-check"), Err(Refusal::WrongRequest));
        let t = users.sign("projects", "POST", "/internal/projects/access");
        assert_eq!(v.verify(&t, "POST", "/internal/projects/access"), Err(Refusal::WrongAudience));
    }

    #[test]
    fn forged_expired_and_foreign_tokens_are_refused() {
        let (users, _) = ServiceKey::generate(Service::Users);
        let (impostor, _) = ServiceKey::generate(Service::Users);
        let (worker, _) = ServiceKey::generate(Service::Worker);
        let v = verifier_for(&[&users], &[Service::Auth]);
        let path = "/internal/sessions/end-all";
        assert_eq!(v.verify(&impostor.sign("auth", "POST", path), "POST", path), Err(Refusal::BadSignature));
        assert_eq!(v.verify(&worker.sign("auth", "POST", path), "POST", path), Err(Refusal::UnknownIssuer));
        let now = now_secs();
        let old = users.sign_at("auth", "POST", path, now - 200, TOKEN_TTL);
        assert_eq!(v.verify(&old, "POST", path), Err(Refusal::Expired));
        let long = users.sign_at("auth", "POST", path, now, Duration::from_secs(3600));
        assert_eq!(v.verify(&long, "POST", path), Err(Refusal::Expired), "a lifetime beyond the cap");
        let future = users.sign_at("auth", "POST", path, now + 120, TOKEN_TTL);
        assert_eq!(v.verify(&future, "POST", path), Err(Refusal::NotYetValid));
        let skewed = users.sign_at("auth", "POST", path, now - 70, TOKEN_TTL);
        assert!(v.verify(&skewed, "POST", path).is_ok(), "within the allowed clock skew");

        // Tampering with any part breaks the signature or the shape.
        let good = users.sign("auth", "POST", path);
        let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
        let claims = String::from_utf8(URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
        parts[1] = URL_SAFE_NO_PAD.encode(claims.replace("\"users\"", "\"gateway\""));
        assert_eq!(v.verify(&parts.join("."), "POST", path), Err(Refusal::UnknownIssuer));
        parts[1] = URL_SAFE_NO_PAD.encode(claims.replace("end-all", "end-all-x"));
        assert_eq!(v.verify(&parts.join("."), "POST", &format!("{path}-x")), Err(Refusal::BadSignature));
        for header in [r#"{"alg":"none","typ":"trellis-service+jwt"}"#, r#"{"alg":"EdDSA","typ":"at+jwt"}"#] {
            let mut p = good.split('.').map(str::to_string).collect::<Vec<_>>();
            p[0] = URL_SAFE_NO_PAD.encode(header);
            assert_eq!(v.verify(&p.join("."), "POST", path), Err(Refusal::Malformed), "{header}");
        }
        for junk in ["", "a.b", "a.b.c.d", "not a token", &"x".repeat(5000)] {
            assert_eq!(v.verify(junk, "POST", path), Err(Refusal::Malformed), "{junk:.20}");
        }
        let unsigned = format!("{}.{}.", parts[0], good.split('.').nth(1).unwrap());
        assert_eq!(v.verify(&unsigned, "POST", path), Err(Refusal::BadSignature));
    }

    #[test]
    fn keys_are_read_in_their_documented_forms_and_rotate() {
        let (k, private) = ServiceKey::generate(Service::Worker);
        let again = ServiceKey::parse(Service::Worker, &private).unwrap();
        assert_eq!(k.public_key(), again.public_key(), "the seed is the key");
        let pkcs8 = STANDARD.encode(k.pair.to_pkcs8().unwrap().as_ref());
        assert_eq!(ServiceKey::parse(Service::Worker, &pkcs8).unwrap().public_key(), k.public_key());
        let raw = parse_public_key(Service::Worker, &k.public_key()).unwrap();
        let mut spki = SPKI_PREFIX.to_vec();
        spki.extend_from_slice(&raw);
        assert_eq!(parse_public_key(Service::Worker, &STANDARD.encode(&spki)).unwrap(), raw);
        assert!(ServiceKey::parse(Service::Worker, "not base64!").is_err());
        assert!(ServiceKey::parse(Service::Worker, &STANDARD.encode([1u8; 31])).is_err());
        assert!(parse_public_key(Service::Worker, &STANDARD.encode([1u8; 33])).is_err());
        assert!(!format!("{k:?}").contains(&private), "Debug never shows the private key");

        // Two public keys for one service while the key is replaced: both verify.
        let (new, _) = ServiceKey::generate(Service::Worker);
        let v = verifier_for(&[&k, &new], &[Service::Projects]);
        for key in [&k, &new] {
            let t = key.sign("projects", "POST", "/internal/projects/access");
            assert!(v.verify(&t, "POST", "/internal/projects/access").is_ok());
        }
    }
}
