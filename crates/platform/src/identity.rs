//! Who is calling: verification of access tokens (JWT, RS256, `typ: at+jwt`) against the public
//! keys of a `KeySource`, with the key set cached and refreshed at most once per interval when an
//! unknown `kid` shows up. Every service verifies tokens itself (SECURITY.md AZ-5); verified
//! signatures are cached by token hash, so the RSA check leaves the hot path.
//!
//! Then, on every request, the token's session must still be active. The auth service's
//! database is the truth (`SessionStatus`); answers are cached in the shared cache (Redis when
//! distributed, else in process), where a logout writes its revocation at once. A cache outage
//! sends every check to the truth; if that is unreachable too, the request fails (503), never
//! through.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use api::auth::{Jwks, KeySource, SessionStatus};
use api::users::Role;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The verified caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: Uuid,
    pub role: Role,
    pub session_id: Uuid,
    pub token_id: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// The claims of an access token (API.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: Uuid,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub sid: Uuid,
    pub role: Role,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    /// Bad signature, wrong claims, expired, or its session was ended.
    #[error("invalid token")]
    Invalid,
    /// The keys or the session status could not be read; the caller answers 503 and never lets
    /// the request through.
    #[error("token verification unavailable")]
    Unavailable,
}

/// The shared-cache key holding a session's status: `1` active, `0` revoked.
pub fn session_cache_key(session_id: Uuid) -> String {
    format!("session:{session_id}")
}

/// How long an "active" answer may be reused before asking the truth again; it bounds how late a
/// revocation can be seen when the revocation could not be written to the cache.
const ACTIVE_FOR: Duration = Duration::from_secs(10);

/// The `typ` header every access token carries (RFC 9068).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

struct KeyCache {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Option<Instant>,
}

pub struct TokenVerifier {
    source: Arc<dyn KeySource>,
    sessions: Arc<dyn SessionStatus>,
    cache: Arc<dyn crate::cache::Cache>,
    validation: Validation,
    keys: RwLock<KeyCache>,
    refetch_after: Duration,
    refetch: tokio::sync::Mutex<()>,
    verified: moka::sync::Cache<[u8; 32], Identity>,
}

impl TokenVerifier {
    pub fn new(
        source: Arc<dyn KeySource>,
        sessions: Arc<dyn SessionStatus>,
        cache: Arc<dyn crate::cache::Cache>,
        issuer: &str,
        audience: &str,
    ) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.algorithms = vec![Algorithm::RS256];
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        Self {
            source,
            sessions,
            cache,
            validation,
            keys: RwLock::new(KeyCache { keys: HashMap::new(), fetched_at: None }),
            refetch_after: Duration::from_secs(10),
            refetch: tokio::sync::Mutex::new(()),
            verified: moka::sync::Cache::builder().max_capacity(100_000).time_to_live(Duration::from_secs(60)).build(),
        }
    }

    fn key(&self, kid: &str) -> Option<DecodingKey> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).keys.get(kid).cloned()
    }

    /// Refetches the key set, at most once per `refetch_after`, whoever asks.
    async fn refresh(&self) -> Result<(), VerifyError> {
        let _one_at_a_time = self.refetch.lock().await;
        let recent = self
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .fetched_at
            .is_some_and(|t| t.elapsed() < self.refetch_after);
        if recent {
            return Ok(());
        }
        let jwks = self.source.jwks().await.map_err(|_| VerifyError::Unavailable)?;
        let keys = decoding_keys(&jwks);
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = KeyCache { keys, fetched_at: Some(Instant::now()) };
        Ok(())
    }

    /// Verifies an access token (see [`TokenVerifier::verify_signature`]) and that its session is
    /// still active.
    pub async fn verify(&self, token: &str) -> Result<Identity, VerifyError> {
        let identity = self.verify_signature(token).await?;
        if self.session_active(identity.session_id).await? { Ok(identity) } else { Err(VerifyError::Invalid) }
    }

    async fn session_active(&self, session_id: Uuid) -> Result<bool, VerifyError> {
        let key = session_cache_key(session_id);
        match self.cache.get(&key).await {
            Ok(Some(v)) => return Ok(v.as_slice() == b"1"),
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "session cache unavailable; asking the auth service"),
        }
        let active = self.sessions.session_active(session_id).await.map_err(|_| VerifyError::Unavailable)?;
        if active {
            // Never overwrite a revocation: only an absent entry becomes "active".
            let _ = self.cache.add(&key, b"1", ACTIVE_FOR).await;
        }
        Ok(active)
    }

    /// Verifies the token itself: signature by a known key, RS256 only, `typ: at+jwt`, issuer,
    /// audience, expiry and required claims with strict types. Does not check the session.
    pub async fn verify_signature(&self, token: &str) -> Result<Identity, VerifyError> {
        let digest = crate::crypto::sha256(token.as_bytes());
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if let Some(id) = self.verified.get(&digest).filter(|id| id.expires_at > now) {
            return Ok(id);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Invalid)?;
        if header.alg != Algorithm::RS256 || header.typ.as_deref() != Some(ACCESS_TOKEN_TYP) {
            return Err(VerifyError::Invalid);
        }
        // Keys come only from our own key set; the header's jku/jwk/x5u are never followed.
        let kid = header.kid.ok_or(VerifyError::Invalid)?;
        let key = match self.key(&kid) {
            Some(k) => k,
            None => {
                self.refresh().await?;
                self.key(&kid).ok_or(VerifyError::Invalid)?
            }
        };
        let data =
            jsonwebtoken::decode::<AccessClaims>(token, &key, &self.validation).map_err(|_| VerifyError::Invalid)?;
        let c = data.claims;
        let identity = Identity {
            user_id: c.sub,
            role: c.role,
            session_id: c.sid,
            token_id: c.jti,
            issued_at: c.iat,
            expires_at: c.exp,
        };
        self.verified.insert(digest, identity.clone());
        Ok(identity)
    }
}

fn decoding_keys(jwks: &Jwks) -> HashMap<String, DecodingKey> {
    jwks.keys
        .iter()
        .filter(|k| k.kty == "RSA" && k.alg == "RS256")
        .filter_map(|k| DecodingKey::from_rsa_components(&k.n, &k.e).ok().map(|d| (k.kid.clone(), d)))
        .collect()
}
