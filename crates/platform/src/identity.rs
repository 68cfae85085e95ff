//! Who is calling: verification of access tokens (JWT, `typ: at+jwt`) against the public keys of
//! a `KeySource`. Each `kid` is bound to exactly the algorithm its JWK names (RS256, PS256, ES256 or
//! EdDSA); a token whose header names another is rejected. The key set is cached, refetched when it
//! is older than a minute (so retired keys leave) and when an unknown but well-formed `kid` shows
//! up, at most once per interval whatever the traffic, so garbage kids cause no IO storm. Every service verifies tokens itself (docs/SECURITY.md AZ-5); verified
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
    /// The role the caller acts with ([`acting_role`]): an admin whose session did not use a
    /// second factor acts as a `user` while `auth.admin_requires_mfa` is on.
    pub role: Role,
    pub session_id: Uuid,
    pub token_id: String,
    pub issued_at: i64,
    pub expires_at: i64,
    /// The session's sign-in used a second factor (its `amr` names `otp`).
    pub mfa: bool,
    /// The token names an admin who acts as a `user` for want of a second factor: admin-only
    /// routes answer 403 `admin_mfa_required` rather than the plain role refusal.
    pub admin_needs_mfa: bool,
}

/// The RFC 8176 `amr` value of a one-time code (TOTP or a recovery code).
pub const AMR_OTP: &str = "otp";
/// The RFC 8176 `amr` value of a password.
pub const AMR_PWD: &str = "pwd";

/// The one decision of whether a token's role holds (docs/SECURITY.md AZ-6): an admin acts as an
/// admin only with a second factor in the session's sign-in when `admin_requires_mfa` is on
/// (ASVS 5.0 6.3.3, NIST SP 800-63B-4 AAL2 for privileged accounts); otherwise as a `user`. Every
/// role check downstream (the route gate, the services' admin decisions, live updates) sees the
/// role this returns, since [`TokenVerifier`] puts it in the [`Identity`].
pub fn acting_role(claimed: Role, mfa: bool, admin_requires_mfa: bool) -> Role {
    match claimed {
        Role::Admin if admin_requires_mfa && !mfa => Role::User,
        other => other,
    }
}

/// The claims of an access token (docs/API.md).
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
    /// How the session's sign-in authenticated the user (RFC 8176): `["pwd"]` or `["pwd", "otp"]`.
    /// A token without it counts as password-only.
    #[serde(default)]
    pub amr: Vec<String>,
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

/// One published key: the only algorithm it verifies, and the validation rules for it.
struct VerifyingKey {
    alg: Algorithm,
    key: DecodingKey,
    validation: Validation,
}

struct KeyCache {
    keys: HashMap<String, Arc<VerifyingKey>>,
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
    last_failed: bool,
}

/// An unknown kid makes the verifier refetch the key set at most this often (by default).
pub const UNKNOWN_KID_REFETCH: Duration = Duration::from_secs(10);

/// A key set older than this is refetched on the next verification.
const KEYS_MAX_AGE: Duration = Duration::from_secs(60);

/// Header parameters that would point a verifier at another key (RFC 8725 §3.10) or demand
/// extensions we do not implement: tokens carrying them are rejected.
fn has_foreign_key_headers(h: &jsonwebtoken::Header) -> bool {
    h.jku.is_some() || h.jwk.is_some() || h.x5u.is_some() || h.x5c.is_some() || h.crit.is_some()
}

/// Our kids are UUIDs (older ones base64url); anything else is rejected without any IO.
fn plausible_kid(kid: &str) -> bool {
    !kid.is_empty() && kid.len() <= 64 && kid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
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
    admin_requires_mfa: bool,
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
            keys: RwLock::new(KeyCache {
                keys: HashMap::new(),
                fetched_at: None,
                attempted_at: None,
                last_failed: false,
            }),
            refetch_after: UNKNOWN_KID_REFETCH,
            refetch: tokio::sync::Mutex::new(()),
            verified: moka::sync::Cache::builder().max_capacity(100_000).time_to_live(Duration::from_secs(60)).build(),
            admin_requires_mfa: true,
        }
    }

    /// Whether an admin's token without a second factor (`amr` lacking `otp`) acts as an admin
    /// (`auth.admin_requires_mfa`, on by default); see [`acting_role`].
    pub fn admin_requires_mfa(mut self, required: bool) -> Self {
        self.admin_requires_mfa = required;
        self
    }

    /// Refetches the key set for an unknown kid at most this often (default 10 s).
    pub fn refetch_interval(mut self, every: Duration) -> Self {
        self.refetch_after = every;
        self
    }

    fn key(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).keys.get(kid).cloned()
    }

    fn stale(&self) -> bool {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).fetched_at.is_none_or(|t| t.elapsed() >= KEYS_MAX_AGE)
    }

    /// Refetches the key set, at most once per `refetch_after` whoever asks; within that interval
    /// it answers as the last attempt did.
    async fn refresh(&self) -> Result<(), VerifyError> {
        let _one_at_a_time = self.refetch.lock().await;
        {
            let cache = self.keys.read().unwrap_or_else(|e| e.into_inner());
            if cache.attempted_at.is_some_and(|t| t.elapsed() < self.refetch_after) {
                return if cache.last_failed { Err(VerifyError::Unavailable) } else { Ok(()) };
            }
        }
        let fetched = self.source.jwks().await;
        let mut cache = self.keys.write().unwrap_or_else(|e| e.into_inner());
        cache.attempted_at = Some(Instant::now());
        match fetched {
            Ok(jwks) => {
                cache.keys = verifying_keys(&jwks, &self.validation);
                cache.fetched_at = cache.attempted_at;
                cache.last_failed = false;
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot fetch the JWKS");
                cache.last_failed = true;
                Err(VerifyError::Unavailable)
            }
        }
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

    /// Verifies the token itself: signature by a known key with exactly that key's algorithm,
    /// `typ: at+jwt`, no header pointing at other keys, issuer, audience, expiry and required
    /// claims with strict types. Does not check the session.
    pub async fn verify_signature(&self, token: &str) -> Result<Identity, VerifyError> {
        let digest = crate::crypto::sha256(token.as_bytes());
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if let Some(id) = self.verified.get(&digest).filter(|id| id.expires_at > now) {
            return Ok(id);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Invalid)?;
        if header.typ.as_deref() != Some(ACCESS_TOKEN_TYP) || has_foreign_key_headers(&header) {
            return Err(VerifyError::Invalid);
        }
        // Keys come only from our own key set, selected by a well-formed kid.
        let kid = header.kid.filter(|k| plausible_kid(k)).ok_or(VerifyError::Invalid)?;
        if self.stale() {
            // An old key set still verifies while the source is unreachable; an unknown kid then
            // answers 503 below.
            let _ = self.refresh().await;
        }
        let key = match self.key(&kid) {
            Some(k) => k,
            None => {
                self.refresh().await?;
                self.key(&kid).ok_or(VerifyError::Invalid)?
            }
        };
        if header.alg != key.alg {
            return Err(VerifyError::Invalid);
        }
        let data =
            jsonwebtoken::decode::<AccessClaims>(token, &key.key, &key.validation).map_err(|_| VerifyError::Invalid)?;
        let c = data.claims;
        let mfa = c.amr.iter().any(|m| m == AMR_OTP);
        let role = acting_role(c.role, mfa, self.admin_requires_mfa);
        let identity = Identity {
            user_id: c.sub,
            role,
            session_id: c.sid,
            token_id: c.jti,
            issued_at: c.iat,
            expires_at: c.exp,
            mfa,
            admin_needs_mfa: role != c.role,
        };
        self.verified.insert(digest, identity.clone());
        Ok(identity)
    }
}

/// The keys of a JWKS that we accept, each bound to the one algorithm its JWK names and to the key
/// type and strength that algorithm needs (RSA of at least 3072 bits, P-256, Ed25519); anything
/// else is skipped.
fn verifying_keys(jwks: &Jwks, base: &Validation) -> HashMap<String, Arc<VerifyingKey>> {
    let mut out = HashMap::new();
    for k in jwks.keys.iter().filter(|k| k.use_ == "sig" && plausible_kid(&k.kid)) {
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        let built = match (k.alg.as_str(), k.kty.as_str(), k.crv.as_deref()) {
            ("RS256" | "PS256", "RSA", None) => {
                let bits = s(&k.n).len() * 6;
                (bits >= 3072)
                    .then(|| DecodingKey::from_rsa_components(&s(&k.n), &s(&k.e)).ok())
                    .flatten()
                    .map(|d| (if k.alg == "RS256" { Algorithm::RS256 } else { Algorithm::PS256 }, d))
            }
            ("ES256", "EC", Some("P-256")) => {
                DecodingKey::from_ec_components(&s(&k.x), &s(&k.y)).ok().map(|d| (Algorithm::ES256, d))
            }
            ("EdDSA", "OKP", Some("Ed25519")) => {
                DecodingKey::from_ed_components(&s(&k.x)).ok().map(|d| (Algorithm::EdDSA, d))
            }
            _ => None,
        };
        if let Some((alg, key)) = built {
            let mut validation = base.clone();
            validation.algorithms = vec![alg];
            out.insert(k.kid.clone(), Arc::new(VerifyingKey { alg, key, validation }));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_admin_acts_as_one_only_with_a_second_factor_when_required() {
        assert_eq!(acting_role(Role::Admin, false, true), Role::User);
        assert_eq!(acting_role(Role::Admin, true, true), Role::Admin);
        assert_eq!(acting_role(Role::Admin, false, false), Role::Admin);
        for role in [Role::User, Role::Guest] {
            for (mfa, required) in [(false, false), (false, true), (true, false), (true, true)] {
                assert_eq!(acting_role(role, mfa, required), role, "{role:?} is never raised or lowered");
            }
        }
    }

    #[test]
    fn a_token_without_amr_counts_as_password_only() {
        let claims: AccessClaims = serde_json::from_value(serde_json::json!({
            "iss": "i", "sub": Uuid::nil(), "aud": "a", "exp": 2, "iat": 1, "jti": "j",
            "sid": Uuid::nil(), "role": "admin"
        }))
        .unwrap();
        assert!(claims.amr.is_empty());
        let claims: AccessClaims = serde_json::from_value(serde_json::json!({
            "iss": "i", "sub": Uuid::nil(), "aud": "a", "exp": 2, "iat": 1, "jti": "j",
            "sid": Uuid::nil(), "role": "admin", "amr": ["pwd", "otp"]
        }))
        .unwrap();
        assert_eq!(claims.amr, vec![AMR_PWD, AMR_OTP]);
    }
}
