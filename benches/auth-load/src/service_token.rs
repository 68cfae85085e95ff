//! The harness's own service credential for seeding through `POST /internal/users`: an Ed25519 key
//! that the server is told is the auth service's public key (`TRELLIS_INTERNAL__PUBLIC_KEYS__AUTH`),
//! and per request the token the auth service would sign (`platform::service_auth` in the server:
//! fixed header, `iss`/`aud`/`htm`/`htp`/`iat`/`exp`/`jti`, base64url without padding). Kept here,
//! not linked from the workspace, because the harness never links Trellis crates.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};

pub struct AuthCredential {
    pair: Ed25519KeyPair,
}

fn encode(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
        if pad {
            for _ in chunk.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

impl AuthCredential {
    pub fn generate() -> anyhow::Result<Self> {
        let mut seed = [0u8; 32];
        SystemRandom::new().fill(&mut seed).map_err(|_| anyhow::anyhow!("no randomness"))?;
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| anyhow::anyhow!("bad Ed25519 seed"))?;
        Ok(Self { pair })
    }

    /// The public key as the server's setting takes it (base64 of the 32 bytes).
    pub fn public_key(&self) -> String {
        encode(self.pair.public_key().as_ref(), STANDARD, true)
    }

    /// A token for one `method path` call of the users service, valid 60 s.
    pub fn sign(&self, method: &str, path: &str) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut jti = [0u8; 16];
        let _ = SystemRandom::new().fill(&mut jti);
        let claims = serde_json::json!({
            "iss": "auth", "aud": "users", "iat": now, "exp": now + 60,
            "jti": encode(&jti, URL_SAFE, false), "htm": method, "htp": path,
        });
        let header = encode(br#"{"alg":"EdDSA","typ":"trellis-service+jwt"}"#, URL_SAFE, false);
        let input = format!("{header}.{}", encode(claims.to_string().as_bytes(), URL_SAFE, false));
        let sig = self.pair.sign(input.as_bytes());
        format!("{input}.{}", encode(sig.as_ref(), URL_SAFE, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_vectors() {
        for (raw, std, url) in [
            ("", "", ""),
            ("f", "Zg==", "Zg"),
            ("fo", "Zm8=", "Zm8"),
            ("foo", "Zm9v", "Zm9v"),
            ("foob", "Zm9vYg==", "Zm9vYg"),
        ] {
            assert_eq!(encode(raw.as_bytes(), STANDARD, true), std);
            assert_eq!(encode(raw.as_bytes(), URL_SAFE, false), url);
        }
        assert_eq!(encode(&[0xfb, 0xff], URL_SAFE, false), "-_8");
    }
}
