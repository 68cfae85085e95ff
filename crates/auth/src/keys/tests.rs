//! Every algorithm signs tokens that `platform::identity::TokenVerifier` (jsonwebtoken) accepts,
//! publishes only public parameters, and every forgery of docs/SECURITY.md JW-1..JW-4 and JW-6 is
//! rejected for every algorithm.

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use api::ApiError;
use api::auth::KeySource;
use platform::identity::{TokenVerifier, VerifyError};
use serde_json::{Value, json};

const ISS: &str = "https://trellis.test";

fn key(alg: SigningAlgorithm) -> &'static SigningKey {
    static KEYS: OnceLock<Vec<SigningKey>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| SigningAlgorithm::ALL.iter().map(|a| SigningKey::generate(*a).unwrap()).collect());
    keys.iter().find(|k| k.alg == alg).unwrap()
}

/// A key set that can change, counting fetches.
#[derive(Default)]
struct Source {
    jwks: Mutex<Jwks>,
    fetches: AtomicUsize,
}

#[async_trait::async_trait]
impl KeySource for Source {
    async fn jwks(&self) -> Result<Jwks, ApiError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        Ok(self.jwks.lock().unwrap().clone())
    }
}

struct AllActive;

#[async_trait::async_trait]
impl api::auth::SessionStatus for AllActive {
    async fn session_active(&self, _: uuid::Uuid) -> Result<bool, ApiError> {
        Ok(true)
    }
}

fn verifier_over(source: Arc<Source>) -> TokenVerifier {
    TokenVerifier::new(source, Arc::new(AllActive), Arc::new(platform::cache::MemoryCache::default()), ISS, "trellis")
}

/// A verifier that knows every algorithm's key.
fn verifier() -> (TokenVerifier, Arc<Source>) {
    let source = Arc::new(Source::default());
    *source.jwks.lock().unwrap() = jwks(SigningAlgorithm::ALL.iter().map(|a| key(*a)));
    (verifier_over(source.clone()), source)
}

fn claims() -> Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    json!({
        "iss": ISS, "sub": uuid::Uuid::now_v7(), "aud": "trellis", "exp": now + 900, "iat": now,
        "jti": uuid::Uuid::now_v7().to_string(), "sid": uuid::Uuid::now_v7(), "role": "user",
    })
}

fn typed_claims() -> AccessClaims {
    serde_json::from_value(claims()).unwrap()
}

fn b64json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

/// A token with any header, signed by `k` under its own algorithm.
fn with_header(k: &SigningKey, header: Value, payload: &Value) -> String {
    let input = format!("{}.{}", b64json(&header), b64json(payload));
    let sig = k.signature(input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn header(k: &SigningKey) -> Value {
    json!({ "alg": k.alg.as_str(), "typ": "at+jwt", "kid": k.kid })
}

#[tokio::test]
async fn every_algorithm_signs_tokens_the_verifier_accepts() {
    let (v, _) = verifier();
    for alg in SigningAlgorithm::ALL {
        let c = typed_claims();
        let token = key(alg).sign(&c).unwrap();
        let head: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
        assert_eq!(head, json!({ "alg": alg.as_str(), "typ": "at+jwt", "kid": key(alg).kid }));
        let id = v.verify(&token).await.unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!((id.user_id, id.session_id), (c.sub, c.sid), "{alg}");
    }
}

#[test]
fn jwks_entries_carry_their_algorithm_and_public_parameters_only() {
    let json = serde_json::to_value(jwks(SigningAlgorithm::ALL.iter().map(|a| key(*a)))).unwrap();
    let len = |v: &Value| URL_SAFE_NO_PAD.decode(v.as_str().unwrap()).unwrap().len();
    for (k, alg) in json["keys"].as_array().unwrap().iter().zip(SigningAlgorithm::ALL) {
        assert_eq!(k["alg"], alg.as_str());
        assert_eq!(k["use"], "sig");
        assert_eq!(k["kid"], key(alg).kid.as_str());
        let mut fields: Vec<&str> = k.as_object().unwrap().keys().map(String::as_str).collect();
        fields.sort_unstable();
        match alg {
            SigningAlgorithm::RS256 | SigningAlgorithm::PS256 => {
                assert_eq!(k["kty"], "RSA");
                assert_eq!(fields, ["alg", "e", "kid", "kty", "n", "use"], "{alg}: no d, p, q, dp, dq, qi");
                assert!(len(&k["n"]) * 8 >= 3072, "{alg}: modulus of at least 3072 bits");
                assert_eq!(key(alg).modulus_bits(), Some(3072));
            }
            SigningAlgorithm::ES256 => {
                assert_eq!(k["kty"], "EC");
                assert_eq!(k["crv"], "P-256");
                assert_eq!(fields, ["alg", "crv", "kid", "kty", "use", "x", "y"], "no d");
                assert_eq!((len(&k["x"]), len(&k["y"])), (32, 32));
            }
            SigningAlgorithm::EdDSA => {
                assert_eq!(k["kty"], "OKP");
                assert_eq!(k["crv"], "Ed25519");
                assert_eq!(fields, ["alg", "crv", "kid", "kty", "use", "x"], "no d");
                assert_eq!(len(&k["x"]), 32);
            }
        }
    }
}

#[test]
fn pkcs8_round_trip_keeps_every_key() {
    for alg in SigningAlgorithm::ALL {
        let der = key(alg).to_pkcs8().unwrap();
        let back = SigningKey::from_pkcs8(&key(alg).kid, alg, &der).unwrap();
        assert_eq!(back.jwk, key(alg).jwk, "{alg}");
    }
    // A key read as another algorithm's key type is refused.
    let der = key(SigningAlgorithm::ES256).to_pkcs8().unwrap();
    assert!(SigningKey::from_pkcs8("k", SigningAlgorithm::EdDSA, &der).is_err());
    assert!(SigningKey::from_pkcs8("k", SigningAlgorithm::RS256, &der).is_err());
}

#[test]
fn algorithm_names_parse_exactly() {
    for alg in SigningAlgorithm::ALL {
        assert_eq!(alg.as_str().parse::<SigningAlgorithm>().unwrap(), alg);
    }
    for bad in ["rs256", "HS256", "none", "ES384", ""] {
        assert!(bad.parse::<SigningAlgorithm>().is_err(), "{bad}");
    }
}

/// Asserts the verifier rejects `token` as invalid (not "unavailable").
async fn rejects(v: &TokenVerifier, token: &str, what: &str) {
    assert_eq!(v.verify(token).await, Err(VerifyError::Invalid), "{what} must be rejected");
}

#[tokio::test]
async fn forgeries_are_rejected_for_every_algorithm() {
    let (v, _) = verifier();
    for alg in SigningAlgorithm::ALL {
        let k = key(alg);
        let kid = k.kid.as_str();
        let good = k.sign_raw(&serde_json::to_vec(&claims()).unwrap()).unwrap();
        let parts: Vec<&str> = good.split('.').collect();
        let (head, body) = (parts[0], parts[1]);
        let input = |h: &Value| format!("{}.{body}", b64json(h));
        let what = |s: &str| format!("{alg}: {s}");

        // alg none, without and with a signature; a stripped signature.
        let none = input(&json!({ "alg": "none", "typ": "at+jwt", "kid": kid }));
        rejects(&v, &format!("{none}."), &what("alg none")).await;
        rejects(&v, &format!("{none}.{}", parts[2]), &what("alg none with a signature")).await;
        rejects(&v, &format!("{head}.{body}."), &what("a stripped signature")).await;
        // HS256 keyed with the public key (algorithm confusion): the JWK's public parameter, the
        // whole JWK JSON.
        let hs = input(&json!({ "alg": "HS256", "typ": "at+jwt", "kid": kid }));
        let public = k.jwk.n.clone().or(k.jwk.x.clone()).unwrap();
        for secret in [public.into_bytes(), serde_json::to_vec(&k.jwk).unwrap()] {
            let mac = platform::crypto::hmac_sha256(&secret, hs.as_bytes());
            rejects(&v, &format!("{hs}.{}", URL_SAFE_NO_PAD.encode(mac)), &what("HS256 with the public key")).await;
        }
        // Other algorithms under our kid: RS384 really signed with our RSA key, and each of our
        // other algorithms (PS256 under an RS256 key is a valid PSS signature by the same key).
        if let Pair::Rsa(pair) = &k.pair {
            let rs384 = input(&json!({ "alg": "RS384", "typ": "at+jwt", "kid": kid }));
            let mut sig = vec![0u8; pair.public_modulus_len()];
            pair.sign(&signature::RSA_PKCS1_SHA384, &SystemRandom::new(), rs384.as_bytes(), &mut sig).unwrap();
            rejects(&v, &format!("{rs384}.{}", URL_SAFE_NO_PAD.encode(sig)), &what("RS384 with our key")).await;
        }
        for other in SigningAlgorithm::ALL.into_iter().filter(|o| *o != alg) {
            let mut h = header(k);
            h["alg"] = json!(other.as_str());
            let same_key = SigningKey { kid: k.kid.clone(), alg: other, pair: clone_pair(&k.pair), jwk: k.jwk.clone() };
            let sig = same_key.signature(input(&h).as_bytes()).unwrap();
            rejects(&v, &format!("{}.{}", input(&h), URL_SAFE_NO_PAD.encode(sig)), &what("another alg")).await;
            // Signed by the other algorithm's own key, under our kid.
            let mut h = header(key(other));
            h["kid"] = json!(kid);
            rejects(&v, &with_header(key(other), h, &claims()), &what("another key under our kid")).await;
        }
        // A payload byte flipped.
        let mut payload = URL_SAFE_NO_PAD.decode(body).unwrap();
        payload[3] ^= 1;
        rejects(&v, &format!("{head}.{}.{}", URL_SAFE_NO_PAD.encode(payload), parts[2]), &what("tampering")).await;
        // Unknown kid: a key of the same algorithm that is not in the JWKS.
        let stranger = SigningKey::generate(alg).unwrap();
        rejects(&v, &stranger.sign(&typed_claims()).unwrap(), &what("an unknown kid")).await;
        // An attacker key in the header (jwk), by URL (jku, x5u), or a certificate chain (x5c);
        // crit extensions we do not implement.
        let mut h = header(&stranger);
        h["jwk"] = serde_json::to_value(&stranger.jwk).unwrap();
        rejects(&v, &with_header(&stranger, h.clone(), &claims()), &what("an embedded jwk")).await;
        h["kid"] = json!(kid);
        rejects(&v, &with_header(&stranger, h, &claims()), &what("an embedded jwk under our kid")).await;
        for (name, value) in [
            ("jku", json!("https://attacker.example/jwks.json")),
            ("x5u", json!("https://attacker.example/cert.pem")),
            ("x5c", json!(["MIIBszCCAVmgAwIBAgIUd"])),
            ("crit", json!(["exp"])),
        ] {
            let mut h = header(k);
            h[name] = value;
            rejects(&v, &with_header(k, h, &claims()), &what(name)).await;
        }
        // typ other than at+jwt, or none.
        for typ in [json!("JWT"), json!("at+JWT "), Value::Null] {
            let mut h = header(k);
            h["typ"] = typ;
            rejects(&v, &with_header(k, h, &claims()), &what("a wrong typ")).await;
        }
        // Claims: wrong iss (trailing slash), wrong aud, string exp/nbf, missing exp/iat/sub,
        // expired, not yet valid.
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let edits: Vec<(&str, ClaimEdit)> = vec![
            ("iss/", Box::new(|c| c["iss"] = json!(format!("{ISS}/")))),
            ("aud", Box::new(|c| c["aud"] = json!("billing"))),
            ("string exp", Box::new(move |c| c["exp"] = json!((now + 900).to_string()))),
            ("string nbf", Box::new(|c| c["nbf"] = json!("99999999999"))),
            ("future nbf", Box::new(move |c| c["nbf"] = json!(now + 3600))),
            ("no exp", Box::new(|c| _ = c.as_object_mut().unwrap().remove("exp"))),
            ("no iat", Box::new(|c| _ = c.as_object_mut().unwrap().remove("iat"))),
            ("no sub", Box::new(|c| _ = c.as_object_mut().unwrap().remove("sub"))),
            ("expired", Box::new(move |c| c["exp"] = json!(now - 120))),
        ];
        for (name, edit) in edits {
            let mut c = claims();
            edit(&mut c);
            rejects(&v, &with_header(k, header(k), &c), &what(name)).await;
        }
        // And the untouched token still passes: the cases above failed for their own reason.
        assert!(v.verify(&good).await.is_ok(), "{alg}");
    }
}

/// A change to the claims that must make a token invalid.
type ClaimEdit = Box<dyn Fn(&mut Value)>;

fn clone_pair(p: &Pair) -> Pair {
    match p {
        Pair::Rsa(k) => Pair::Rsa(RsaKeyPair::from_pkcs8(k.as_der().unwrap().as_ref()).unwrap()),
        Pair::Ec(k) => Pair::Ec(EcdsaKeyPair::from_pkcs8(P256, k.to_pkcs8v1().unwrap().as_ref()).unwrap()),
        Pair::Ed(k) => Pair::Ed(Ed25519KeyPair::from_pkcs8(k.to_pkcs8().unwrap().as_ref()).unwrap()),
    }
}

#[tokio::test]
async fn garbage_kids_are_rejected_without_fetching_and_unknown_ones_fetch_once_per_interval() {
    // An interval far longer than the test can take (the default, 10 s, is not, on a loaded
    // machine): every unknown kid below falls in the interval the first fetch opened.
    let (_, source) = verifier();
    let v = verifier_over(source.clone()).refetch_interval(Duration::from_secs(24 * 3600));
    let k = key(SigningAlgorithm::ES256);
    assert!(v.verify(&k.sign(&typed_claims()).unwrap()).await.is_ok());
    let baseline = source.fetches.load(Ordering::SeqCst);
    for kid in ["../../dev/null", "' OR 1=1 --", "", &"a".repeat(65), "k\u{0}"] {
        let mut h = header(k);
        h["kid"] = json!(kid);
        rejects(&v, &with_header(k, h, &claims()), "a malformed kid").await;
    }
    assert_eq!(source.fetches.load(Ordering::SeqCst), baseline, "malformed kids cause no key fetch");
    for i in 0..200 {
        let mut h = header(k);
        h["kid"] = json!(format!("unknown-{i}"));
        rejects(&v, &with_header(k, h, &claims()), "an unknown kid").await;
    }
    assert!(
        source.fetches.load(Ordering::SeqCst) <= baseline + 1,
        "200 unknown kids cost at most one fetch per interval"
    );
}

#[tokio::test]
async fn a_new_kid_is_picked_up_and_a_retired_one_is_rejected() {
    let source = Arc::new(Source::default());
    let (old, new) = (SigningKey::generate(SigningAlgorithm::EdDSA).unwrap(), key(SigningAlgorithm::EdDSA));
    *source.jwks.lock().unwrap() = jwks([&old]);
    let v = verifier_over(source.clone()).refetch_interval(Duration::ZERO);
    assert!(v.verify(&old.sign(&typed_claims()).unwrap()).await.is_ok());
    // Rotation: both published; a token of the new kid makes the verifier refetch.
    *source.jwks.lock().unwrap() = jwks([new, &old]);
    assert!(v.verify(&new.sign(&typed_claims()).unwrap()).await.is_ok());
    assert!(v.verify(&old.sign(&typed_claims()).unwrap()).await.is_ok(), "overlap: the old key still verifies");
    // Retirement: the old key leaves the JWKS; once the verifier has refetched, its tokens fail.
    *source.jwks.lock().unwrap() = jwks([new]);
    let stranger = SigningKey::generate(SigningAlgorithm::EdDSA).unwrap();
    rejects(&v, &stranger.sign(&typed_claims()).unwrap(), "an unknown kid (forcing a refetch)").await;
    rejects(&v, &old.sign(&typed_claims()).unwrap(), "a retired key's token").await;
    assert!(v.verify(&new.sign(&typed_claims()).unwrap()).await.is_ok());
}

#[test]
fn tokens_carry_no_personal_data() {
    let token = key(SigningAlgorithm::RS256).sign(&typed_claims()).unwrap();
    let payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap();
    let mut names: Vec<&str> = payload.as_object().unwrap().keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["amr", "aud", "exp", "iat", "iss", "jti", "role", "sid", "sub"], "JW-7: no email, no name");
}
