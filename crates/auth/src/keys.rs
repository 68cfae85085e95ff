//! Signing keys for access tokens, generated and used through aws-lc-rs: RS256 (the default, as
//! docs/API.md names it; see ARCHITECTURE.md for the ASVS exception) and PS256 on RSA-3072, ES256 on
//! P-256, EdDSA on Ed25519. Each key has a `kid` and exactly one algorithm, and publishes only its
//! public parameters in the JWKS.
//!
//! Tokens are signed here directly with aws-lc-rs (a compact JWS is three base64url parts), not
//! through `jsonwebtoken`, whose aws-lc backend only takes PKCS#1 keys while aws-lc-rs generates
//! and stores PKCS#8. Verification everywhere uses `jsonwebtoken` (`platform::identity`), an
//! independent implementation. The `rsa` crate is never used (RUSTSEC-2023-0071).

use std::fmt;
use std::str::FromStr;

use api::auth::{Jwk, Jwks};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use platform::identity::{ACCESS_TOKEN_TYP, AccessClaims};
use serde::{Deserialize, Serialize};

/// The algorithms access tokens can be signed with (`auth.signing_algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 over RSA-3072: what docs/API.md names.
    #[default]
    RS256,
    /// RSASSA-PSS with SHA-256 over RSA-3072.
    PS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
}

impl SigningAlgorithm {
    pub const ALL: [SigningAlgorithm; 4] =
        [SigningAlgorithm::RS256, SigningAlgorithm::PS256, SigningAlgorithm::ES256, SigningAlgorithm::EdDSA];

    /// The JOSE name (`alg`).
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlgorithm::RS256 => "RS256",
            SigningAlgorithm::PS256 => "PS256",
            SigningAlgorithm::ES256 => "ES256",
            SigningAlgorithm::EdDSA => "EdDSA",
        }
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SigningAlgorithm {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        SigningAlgorithm::ALL.into_iter().find(|a| a.as_str() == s).ok_or(KeyError::UnknownAlgorithm)
    }
}

enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A private signing key, its algorithm and its public JWK.
pub struct SigningKey {
    pub kid: String,
    pub alg: SigningAlgorithm,
    pair: Pair,
    pub jwk: Jwk,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).field("alg", &self.alg).finish_non_exhaustive()
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
    #[error("unknown signing algorithm (expected RS256, PS256, ES256 or EdDSA)")]
    UnknownAlgorithm,
}

const P256: &signature::EcdsaSigningAlgorithm = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;

fn b64(bytes: &[u8]) -> Option<String> {
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

fn jwk_of(kid: &str, alg: SigningAlgorithm, pair: &Pair) -> Jwk {
    let base = Jwk { kid: kid.to_string(), alg: alg.as_str().into(), use_: "sig".into(), ..Jwk::default() };
    match pair {
        Pair::Rsa(p) => {
            let public = p.public_key();
            Jwk {
                kty: "RSA".into(),
                n: b64(public.modulus().big_endian_without_leading_zero()),
                e: b64(public.exponent().big_endian_without_leading_zero()),
                ..base
            }
        }
        Pair::Ec(p) => {
            // Uncompressed SEC 1 point: 0x04 || x || y, 32 bytes each on P-256.
            let point = p.public_key().as_ref();
            Jwk { kty: "EC".into(), crv: Some("P-256".into()), x: b64(&point[1..33]), y: b64(&point[33..65]), ..base }
        }
        Pair::Ed(p) => Jwk { kty: "OKP".into(), crv: Some("Ed25519".into()), x: b64(p.public_key().as_ref()), ..base },
    }
}

impl SigningKey {
    /// A new key for `alg` with a fresh `kid` (a UUIDv7: unique, public, not a secret). RSA
    /// generation takes a moment; call from a blocking thread.
    pub fn generate(alg: SigningAlgorithm) -> Result<SigningKey, KeyError> {
        let pair = match alg {
            SigningAlgorithm::RS256 | SigningAlgorithm::PS256 => {
                Pair::Rsa(RsaKeyPair::generate(KeySize::Rsa3072).map_err(|_| KeyError::Generate)?)
            }
            SigningAlgorithm::ES256 => Pair::Ec(EcdsaKeyPair::generate(P256).map_err(|_| KeyError::Generate)?),
            SigningAlgorithm::EdDSA => Pair::Ed(Ed25519KeyPair::generate().map_err(|_| KeyError::Generate)?),
        };
        let kid = platform::ids::new_id().to_string();
        let jwk = jwk_of(&kid, alg, &pair);
        Ok(SigningKey { kid, alg, pair, jwk })
    }

    /// The private key as PKCS#8 DER, to be sealed before storage.
    pub fn to_pkcs8(&self) -> Result<Vec<u8>, KeyError> {
        let der = match &self.pair {
            Pair::Rsa(p) => p.as_der().map_err(|_| KeyError::Generate)?.as_ref().to_vec(),
            Pair::Ec(p) => p.to_pkcs8v1().map_err(|_| KeyError::Generate)?.as_ref().to_vec(),
            Pair::Ed(p) => p.to_pkcs8().map_err(|_| KeyError::Generate)?.as_ref().to_vec(),
        };
        Ok(der)
    }

    /// Reads a key stored by [`SigningKey::to_pkcs8`]; the DER must be of the algorithm's key type.
    pub fn from_pkcs8(kid: &str, alg: SigningAlgorithm, der: &[u8]) -> Result<SigningKey, KeyError> {
        let pair = match alg {
            SigningAlgorithm::RS256 | SigningAlgorithm::PS256 => {
                Pair::Rsa(RsaKeyPair::from_pkcs8(der).map_err(|_| KeyError::Unreadable)?)
            }
            SigningAlgorithm::ES256 => Pair::Ec(EcdsaKeyPair::from_pkcs8(P256, der).map_err(|_| KeyError::Unreadable)?),
            SigningAlgorithm::EdDSA => Pair::Ed(Ed25519KeyPair::from_pkcs8(der).map_err(|_| KeyError::Unreadable)?),
        };
        let jwk = jwk_of(kid, alg, &pair);
        Ok(SigningKey { kid: kid.to_string(), alg, pair, jwk })
    }

    /// Bits of the RSA modulus (None for elliptic-curve keys).
    pub fn modulus_bits(&self) -> Option<usize> {
        match &self.pair {
            Pair::Rsa(p) => Some(p.public_modulus_len() * 8),
            _ => None,
        }
    }

    /// A compact JWS: header `{alg, typ: at+jwt, kid}` over `claims`.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, KeyError> {
        let payload = serde_json::to_vec(claims).map_err(|_| KeyError::Sign)?;
        self.sign_raw(&payload)
    }

    /// Signs any payload under our header (tests build malformed claims with it).
    pub fn sign_raw(&self, payload: &[u8]) -> Result<String, KeyError> {
        #[derive(Serialize)]
        struct Header<'a> {
            alg: &'a str,
            typ: &'a str,
            kid: &'a str,
        }
        let header = serde_json::to_vec(&Header { alg: self.alg.as_str(), typ: ACCESS_TOKEN_TYP, kid: &self.kid })
            .map_err(|_| KeyError::Sign)?;
        let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
        let sig = self.signature(signing_input.as_bytes())?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }

    /// The JWS signature of `input` under this key's one algorithm (ECDSA in the fixed r||s form
    /// JWS requires, RFC 7518 §3.4).
    pub fn signature(&self, input: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rng = SystemRandom::new();
        match (&self.pair, self.alg) {
            (Pair::Rsa(p), alg) => {
                let padding: &'static dyn signature::RsaEncoding = match alg {
                    SigningAlgorithm::PS256 => &signature::RSA_PSS_SHA256,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0u8; p.public_modulus_len()];
                p.sign(padding, &rng, input, &mut sig).map_err(|_| KeyError::Sign)?;
                Ok(sig)
            }
            (Pair::Ec(p), _) => Ok(p.sign(&rng, input).map_err(|_| KeyError::Sign)?.as_ref().to_vec()),
            (Pair::Ed(p), _) => Ok(p.sign(input).as_ref().to_vec()),
        }
    }
}

/// The public keys verifiers accept.
pub fn jwks<'a>(keys: impl IntoIterator<Item = &'a SigningKey>) -> Jwks {
    Jwks { keys: keys.into_iter().map(|k| k.jwk.clone()).collect() }
}

#[cfg(test)]
mod tests;
