//! Signing keys through the real binary: every configurable algorithm logs in and calls the API,
//! its tokens verify with PyJWT (an independent implementation) against the served JWKS, and
//! `trellis keys rotate` against a running deployment brings a new kid without any token failing.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::flow;
use crate::support::{Trellis, run};

/// Verifies `token` with PyJWT against `jwks`; panics (never skips) when PyJWT is missing.
pub async fn verify_independently(jwks: &Value, token: &str) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/verify_jwt.py");
    let mut child = tokio::process::Command::new("python3")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("python3 is required for the independent JWT check (cargo xtask ci installs it): {e}")
        });
    let input = json!({ "jwks": jwks, "token": token, "issuer": "trellis", "audience": "trellis" });
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.to_string().as_bytes()).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "PyJWT rejected a Trellis token (or is not installed: pip3 install 'PyJWT[crypto]'): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn header_of(token: &str) -> Value {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap();
    serde_json::from_slice(&raw).unwrap()
}

fn client() -> Client {
    Client::builder().timeout(crate::support::request_timeout()).build().unwrap()
}

/// Registers a fresh account and returns (email, password).
async fn account(http: &Client, base: &str) -> (String, String) {
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let (email, password) = (format!("keys.{tag}@example.com"), format!("canary-key-password-{tag}"));
    let res = http
        .post(format!("{base}/auth/register"))
        .json(&json!({ "email": email, "password": password, "name": "Key Holder" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    (email, password)
}

async fn access_token(http: &Client, base: &str, email: &str, password: &str) -> String {
    let res = flow::post_login(http, base, email, password).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

async fn me(http: &Client, base: &str, token: &str) -> StatusCode {
    http.get(format!("{base}/api/users/me")).bearer_auth(token).send().await.unwrap().status()
}

async fn jwks(http: &Client, base: &str) -> Value {
    let res = http.get(format!("{base}/.well-known/jwks.json")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn every_signing_algorithm_logs_in_and_verifies_independently() {
    for alg in ["RS256", "PS256", "ES256", "EdDSA"] {
        let dir = tempfile::tempdir().unwrap();
        // RS256 is the default: no setting at all.
        let env: Vec<(&str, String)> =
            if alg == "RS256" { vec![] } else { vec![("TRELLIS_AUTH__SIGNING_ALGORITHM", alg.into())] };
        let app = Trellis::start(alg, dir.path(), &[], &env).await;
        let http = client();
        let (email, password) = account(&http, &app.base).await;
        let token = access_token(&http, &app.base, &email, &password).await;
        let header = header_of(&token);
        assert_eq!((header["alg"].as_str(), header["typ"].as_str()), (Some(alg), Some("at+jwt")), "{alg}");
        assert_eq!(me(&http, &app.base, &token).await, StatusCode::OK, "{alg}: an authenticated call");

        let set = jwks(&http, &app.base).await;
        assert_eq!(kids(&set), vec![header["kid"].as_str().unwrap().to_string()], "{alg}: one key on first start");
        let key = &set["keys"][0];
        let kty = match alg {
            "RS256" | "PS256" => "RSA",
            "ES256" => "EC",
            _ => "OKP",
        };
        assert_eq!(
            (key["kty"].as_str(), key["alg"].as_str(), key["use"].as_str()),
            (Some(kty), Some(alg), Some("sig"))
        );
        let checked = verify_independently(&set, &token).await;
        assert_eq!(checked["alg"], alg);

        // `trellis keys list` reads the same key, current.
        let (code, out, err) = run(dir.path(), &["keys", "list"], &env).await;
        assert_eq!(code, Some(0), "{err}");
        let line =
            out.lines().find(|l| l.starts_with(header["kid"].as_str().unwrap())).unwrap_or_else(|| panic!("{out}"));
        assert!(line.contains(alg) && line.contains("current"), "{line}");

        let (code, log) = app.terminate().await;
        assert_eq!(code, Some(0), "{log}");
        assert!(!log.contains(&password) && !log.contains(&token), "{alg}: no password or token in the log");
    }
}

/// Runs `trellis keys rotate` against a running deployment (`cwd` and `env` say which), then
/// checks through `base`: the JWKS publishes old and new kid, old tokens keep working, and new
/// tokens carry the new kid, with no token refused at any moment.
pub async fn rotate_while_serving(base: &str, cwd: &Path, env: &[(&str, String)]) {
    let http = client();
    let (email, password) = account(&http, base).await;
    let old_token = access_token(&http, base, &email, &password).await;
    let old_kid = header_of(&old_token)["kid"].as_str().unwrap().to_string();
    assert_eq!(me(&http, base, &old_token).await, StatusCode::OK);

    let (code, out, err) = run(cwd, &["keys", "rotate"], env).await;
    assert_eq!(code, Some(0), "{err}");
    let new_kid = out.trim().to_string();
    assert!(uuid::Uuid::parse_str(&new_kid).is_ok() && new_kid != old_kid, "keys rotate prints the new kid: {out}");
    assert!(err.contains("signs from"), "{err}");
    let (code, out, err) = run(cwd, &["keys", "list"], env).await;
    assert_eq!(code, Some(0), "{err}");
    let state =
        |kid: &str| out.lines().find(|l| l.starts_with(kid)).unwrap_or_else(|| panic!("{kid}: {out}")).to_string();
    assert!(state(&new_kid).contains("next") && state(&old_kid).contains("current"), "{out}");

    // Until the new key signs, every login still gets the old kid and every token works; then
    // the new kid, which the gateway's verifier accepts at once. It signs from
    // `2 × key_check_interval + 10 s` after it was made, by the wall clock; logins are paced
    // (bcrypt, and the gateway's rate limit) at one per half second or slower.
    let new_token = {
        let (http, email, password, old_kid, new_kid) = (&http, email.as_str(), password.as_str(), &old_kid, &new_kid);
        test_support::wait::until_some("the running server to sign with the rotated key", || async move {
            let token = access_token(http, base, email, password).await;
            assert_eq!(me(http, base, &token).await, StatusCode::OK, "no token fails around a rotation");
            let kid = header_of(&token)["kid"].as_str().unwrap().to_string();
            if kid == *new_kid {
                return Some(token);
            }
            assert_eq!(kid, *old_kid, "until the new key signs, the old one does");
            tokio::time::sleep(Duration::from_millis(500)).await;
            None
        })
        .await
    };
    let set = jwks(&http, base).await;
    assert_eq!(kids(&set), vec![new_kid.clone(), old_kid.clone()], "the JWKS serves current and previous");
    assert_eq!(me(&http, base, &old_token).await, StatusCode::OK, "overlap: the old key's token still works");
    assert_eq!(me(&http, base, &new_token).await, StatusCode::OK);
    for token in [&old_token, &new_token] {
        verify_independently(&set, token).await;
    }
}

#[tokio::test]
async fn keys_rotate_against_a_running_all_in_one_server() {
    let dir = tempfile::tempdir().unwrap();
    let env = vec![("TRELLIS_AUTH__KEY_CHECK_INTERVAL_SECS", "1".to_string())];
    let app = Trellis::start("rotation", dir.path(), &[], &env).await;
    rotate_while_serving(&app.base, dir.path(), &env).await;
    let (code, log) = app.terminate().await;
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("generated a signing key"), "{log}");

    // Settings are checked at start: an unknown algorithm is refused by name.
    let (code, _, err) =
        run(dir.path(), &["keys", "list"], &[("TRELLIS_AUTH__SIGNING_ALGORITHM", "HS256".into())]).await;
    assert_ne!(code, Some(0));
    assert!(err.contains("signing_algorithm") || err.contains("HS256"), "{err}");
}
