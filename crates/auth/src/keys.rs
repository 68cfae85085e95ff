//! Signing keys for access tokens: RSA-3072 generated with aws-lc-rs, RS256 (PKCS#1 v1.5, as the
//! seed requires; see ARCHITECTURE.md for the ASVS exception), a `kid` per key, and the JWKS.
//!
//! Tokens are signed here directly with aws-lc-rs (a compact JWS is three base64url parts), not
//! through `jsonwebtoken`, whose aws-lc backend only takes PKCS#1 keys while aws-lc-rs generates
//! and stores PKCS#8. Verification everywhere uses `jsonwebtoken` (`platform::identity`), an
//! independent implementation.

use api::auth::{Jwk, Jwks};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{self, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use platform::identity::{ACCESS_TOKEN_TYP, AccessClaims};
use serde::Serialize;

/// A private signing key and its public parameters.
pub struct SigningKey {
    pub kid: String,
    pair: KeyPair,
    pub jwk: Jwk,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed")]
    Generate,
    #[error("stored key is unreadable")]
    Unreadable,
    #[error("signing failed")]
    Sign,
}

fn jwk_of(kid: &str, pair: &KeyPair) -> Jwk {
    let public = pair.public_key();
    Jwk {
        kty: "RSA".into(),
        kid: kid.to_string(),
        alg: "RS256".into(),
        use_: "sig".into(),
        n: URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
        e: URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
    }
}

impl SigningKey {
    /// A new RSA-3072 key with a random `kid`. Takes a moment; call from a blocking thread.
    pub fn generate() -> Result<SigningKey, KeyError> {
        let pair = KeyPair::generate(KeySize::Rsa3072).map_err(|_| KeyError::Generate)?;
        let kid = platform::crypto::random_token()[..16].to_string();
        let jwk = jwk_of(&kid, &pair);
        Ok(SigningKey { kid, pair, jwk })
    }

    /// The private key as PKCS#8 DER, to be sealed before storage.
    pub fn to_pkcs8(&self) -> Result<Vec<u8>, KeyError> {
        Ok(self.pair.as_der().map_err(|_| KeyError::Generate)?.as_ref().to_vec())
    }

    pub fn from_pkcs8(kid: &str, der: &[u8]) -> Result<SigningKey, KeyError> {
        let pair = KeyPair::from_pkcs8(der).map_err(|_| KeyError::Unreadable)?;
        let jwk = jwk_of(kid, &pair);
        Ok(SigningKey { kid: kid.to_string(), pair, jwk })
    }

    pub fn modulus_bits(&self) -> usize {
        self.pair.public_modulus_len() * 8
    }

    /// A compact JWS: header `{alg: RS256, typ: at+jwt, kid}` over `claims`.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, KeyError> {
        #[derive(Serialize)]
        struct Header<'a> {
            alg: &'a str,
            typ: &'a str,
            kid: &'a str,
        }
        let header = serde_json::to_vec(&Header { alg: "RS256", typ: ACCESS_TOKEN_TYP, kid: &self.kid })
            .map_err(|_| KeyError::Sign)?;
        let payload = serde_json::to_vec(claims).map_err(|_| KeyError::Sign)?;
        let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), signing_input.as_bytes(), &mut sig)
            .map_err(|_| KeyError::Sign)?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

/// The public keys verifiers accept.
pub fn jwks<'a>(keys: impl IntoIterator<Item = &'a SigningKey>) -> Jwks {
    Jwks { keys: keys.into_iter().map(|k| k.jwk.clone()).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, OnceLock};

    use api::ApiError;
    use api::auth::KeySource;
    use api::users::Role;
    use platform::identity::{TokenVerifier, VerifyError};

    fn key() -> &'static SigningKey {
        static KEY: OnceLock<SigningKey> = OnceLock::new();
        KEY.get_or_init(|| SigningKey::generate().unwrap())
    }

    struct Fixed(Jwks);

    #[async_trait::async_trait]
    impl KeySource for Fixed {
        async fn jwks(&self) -> Result<Jwks, ApiError> {
            Ok(self.0.clone())
        }
    }

    fn claims(exp_in: i64) -> AccessClaims {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        AccessClaims {
            iss: "https://trellis.test".into(),
            sub: uuid::Uuid::now_v7(),
            aud: "trellis".into(),
            exp: now + exp_in,
            iat: now,
            jti: "j1".into(),
            sid: uuid::Uuid::now_v7(),
            role: Role::User,
        }
    }

    struct AllActive;

    #[async_trait::async_trait]
    impl api::auth::SessionStatus for AllActive {
        async fn session_active(&self, _: uuid::Uuid) -> Result<bool, ApiError> {
            Ok(true)
        }
    }

    fn verifier() -> TokenVerifier {
        TokenVerifier::new(
            Arc::new(Fixed(jwks([key()]))),
            Arc::new(AllActive),
            Arc::new(platform::cache::MemoryCache::default()),
            "https://trellis.test",
            "trellis",
        )
    }

    #[test]
    fn keys_are_3072_bit_and_jwks_is_public_only() {
        assert_eq!(key().modulus_bits(), 3072);
        let json = serde_json::to_value(jwks([key()])).unwrap();
        let k = &json["keys"][0];
        assert_eq!(k["kty"], "RSA");
        assert_eq!(k["alg"], "RS256");
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(k.get(private).is_none(), "JWKS must not carry {private}");
        }
    }

    #[test]
    fn pkcs8_round_trip_keeps_the_key() {
        let der = key().to_pkcs8().unwrap();
        let back = SigningKey::from_pkcs8(&key().kid, &der).unwrap();
        assert_eq!(back.jwk, key().jwk);
    }

    #[tokio::test]
    async fn signed_tokens_verify_with_an_independent_implementation() {
        let c = claims(900);
        let token = key().sign(&c).unwrap();
        let id = verifier().verify(&token).await.unwrap();
        assert_eq!(id.user_id, c.sub);
        assert_eq!(id.session_id, c.sid);
    }

    #[tokio::test]
    async fn verifier_rejects_forgeries() {
        let v = verifier();
        let good = key().sign(&claims(900)).unwrap();
        let parts: Vec<&str> = good.split('.').collect();
        // alg none, with and without a signature
        let none_header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"at+jwt","kid":"{}"}}"#, key().kid));
        assert_eq!(v.verify(&format!("{none_header}.{}.", parts[1])).await, Err(VerifyError::Invalid));
        // HS256 signed with the public key material (algorithm confusion)
        let hs_header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"HS256","typ":"at+jwt","kid":"{}"}}"#, key().kid));
        let input = format!("{hs_header}.{}", parts[1]);
        let mac = platform::crypto::hmac_sha256(key().jwk.n.as_bytes(), input.as_bytes());
        assert_eq!(v.verify(&format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac))).await, Err(VerifyError::Invalid));
        // a flipped payload byte
        let mut payload = URL_SAFE_NO_PAD.decode(parts[1]).unwrap();
        payload[3] ^= 1;
        let tampered = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(payload), parts[2]);
        assert_eq!(v.verify(&tampered).await, Err(VerifyError::Invalid));
        // wrong typ
        let jwt_header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"RS256","typ":"JWT","kid":"{}"}}"#, key().kid));
        assert_eq!(v.verify(&format!("{jwt_header}.{}.{}", parts[1], parts[2])).await, Err(VerifyError::Invalid));
        // expired, and unknown kid
        assert_eq!(v.verify(&key().sign(&claims(-120)).unwrap()).await, Err(VerifyError::Invalid));
        let other = SigningKey::generate().unwrap();
        assert_eq!(v.verify(&other.sign(&claims(900)).unwrap()).await, Err(VerifyError::Invalid));
        // wrong audience and issuer
        let mut c = claims(900);
        c.aud = "other".into();
        assert_eq!(v.verify(&key().sign(&c).unwrap()).await, Err(VerifyError::Invalid));
        let mut c = claims(900);
        c.iss = "https://trellis.test/".into();
        assert_eq!(v.verify(&key().sign(&c).unwrap()).await, Err(VerifyError::Invalid));
    }
}
