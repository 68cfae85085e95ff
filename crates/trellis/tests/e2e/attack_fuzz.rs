//! Malformed input against the real binary (issue 16 "supply chain and fuzzing", docs/SECURITY.md
//! JW-8, SC-3): the inputs the property checks (`src/fuzz.rs` of auth, projects, users, worker)
//! found interesting, sent through the gateway as an attacker would. Forged access tokens (no
//! signature, `alg: none`, HS256 keyed with our public key, a header pointing at another key, a
//! changed byte) are 401; malformed cursors, list filters, search queries, multipart bodies and
//! WebSocket messages are refused with a 4xx problem (or an error frame), never a 5xx; an
//! upload's hostile file name comes back as a safe `Content-Disposition`. About 40 requests, so
//! the flows after it are not pushed over the anonymous rate limit (a 429 is an accepted refusal).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::{SinkExt, StreamExt};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::flow::{client, login_tokens};
use crate::support::Attack;

/// A refusal: the status is one of `allowed` (or 429), and the body is problem+json.
async fn refused(res: reqwest::Response, allowed: &[StatusCode], what: &str) {
    let status = res.status();
    let ct = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let body = res.text().await.unwrap_or_default();
    assert!(
        allowed.contains(&status) || status == StatusCode::TOO_MANY_REQUESTS,
        "{what}: expected one of {allowed:?}, got {status}: {body}"
    );
    assert_eq!(ct, "application/problem+json", "{what}: {body}");
}

fn b64json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// Tokens a forger can make from a real one and the public key set.
fn forgeries(real: &str, jwks: &Value) -> Vec<(&'static str, String)> {
    let mut parts = real.split('.');
    let (head, body, sig) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(head).unwrap()).unwrap();
    let with = |change: &dyn Fn(&mut Value)| {
        let mut h = header.clone();
        change(&mut h);
        b64json(&h)
    };
    let none = with(&|h| h["alg"] = json!("none"));
    let hs = with(&|h| h["alg"] = json!("HS256"));
    // The classic confusion: HMAC keyed with the public key's bytes, as a naive verifier would.
    let public = serde_json::to_vec(&jwks["keys"][0]).unwrap();
    let hs_sig = URL_SAFE_NO_PAD.encode(platform::crypto::hmac_sha256(&public, format!("{hs}.{body}").as_bytes()));
    let mut flipped = sig.as_bytes().to_vec();
    flipped[sig.len() / 2] = if flipped[sig.len() / 2] == b'A' { b'B' } else { b'A' };
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap();
    claims["role"] = json!("admin");
    vec![
        ("no signature", format!("{head}.{body}.")),
        ("alg none", format!("{none}.{body}.")),
        ("HS256 keyed with the public key", format!("{hs}.{body}.{hs_sig}")),
        ("a jku header", format!("{}.{body}.{sig}", with(&|h| h["jku"] = json!("https://evil.example/jwks.json")))),
        ("an embedded jwk", format!("{}.{body}.{sig}", with(&|h| h["jwk"] = jwks["keys"][0].clone()))),
        ("typ JWT", format!("{}.{body}.{sig}", with(&|h| h["typ"] = json!("JWT")))),
        ("a path as kid", format!("{}.{body}.{sig}", with(&|h| h["kid"] = json!("../../../../dev/null")))),
        ("a changed signature byte", format!("{head}.{body}.{}", String::from_utf8(flipped).unwrap())),
        ("claims raised to admin", format!("{head}.{}.{sig}", b64json(&claims))),
        ("two parts", format!("{head}.{body}")),
        ("garbage", "\u{1}\u{2}.%%%.\u{7f}".replace(|c: char| c.is_control(), "x")),
    ]
}

pub async fn malformed_input(ctx: &Attack) {
    let http = client();
    let base = ctx.base.as_str();
    let tag = uuid::Uuid::now_v7().simple().to_string();
    // The password shares nothing with the address (context words are refused, NIST SP 800-63B-4).
    let email = format!("malformed.{}@example.com", &tag[tag.len() - 12..]);
    let password = "canary quartz meadow lantern harbour seven".to_string();
    let res = http
        .post(format!("{base}/auth/register"))
        .json(&json!({ "email": email, "password": password, "name": "Mallory Brown" }))
        .send()
        .await
        .unwrap();
    let status = res.status();
    assert!(status.is_success(), "registration: {status} {}", res.text().await.unwrap_or_default());
    let access = login_tokens(&http, base, &email, &password).await.access;
    forged_tokens(&http, base, &access).await;

    let project: Value = http
        .post(format!("{base}/api/projects"))
        .bearer_auth(&access)
        .json(&json!({ "name": "Fuzzed" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let project = project["id"].as_str().expect("a project id").to_string();
    let task: Value = http
        .post(format!("{base}/api/projects/{project}/tasks"))
        .bearer_auth(&access)
        .json(&json!({ "title": "Fuzzed task" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let task = task["id"].as_str().expect("a task id").to_string();

    lists(&http, base, &access, &project).await;
    uploads(&http, base, &access, &task).await;
    websocket(base, &access, &project).await;
}

async fn forged_tokens(http: &Client, base: &str, access: &str) {
    let jwks: Value = http.get(format!("{base}/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let me = format!("{base}/api/users/me");
    assert_eq!(http.get(&me).bearer_auth(access).send().await.unwrap().status(), StatusCode::OK);
    for (what, token) in forgeries(access, &jwks) {
        let res = http.get(&me).bearer_auth(&token).send().await.unwrap();
        refused(res, &[StatusCode::UNAUTHORIZED], &format!("a forged token ({what})")).await;
    }
}

async fn lists(http: &Client, base: &str, access: &str, project: &str) {
    let four = [StatusCode::BAD_REQUEST, StatusCode::UNPROCESSABLE_ENTITY];
    let junk_cursor = URL_SAFE_NO_PAD.encode("AAAAAAAA position 00000000000000000000000000000000 9 zz");
    for query in [
        format!("/api/projects?cursor={junk_cursor}"),
        "/api/projects?cursor=%F0%9F%92%A9%00".to_string(),
        format!("/api/projects/{project}/tasks?cursor={junk_cursor}"),
        format!("/api/projects/{project}/tasks?sort=-due_date&cursor={}", URL_SAFE_NO_PAD.encode([0xff; 40])),
        format!("/api/projects/{project}/tasks?status=todo&status=done"),
        format!("/api/projects/{project}/tasks?due_before=2026-02-31"),
        format!("/api/projects/{project}/tasks?limit=99999999999999999999"),
        format!("/api/projects/{project}/tasks?q={}", "x".repeat(201)),
        format!("/api/projects/{project}/tasks?label=%20%20"),
        format!("/api/projects/{project}/tasks?sort=position%00"),
        format!("/api/projects/{project}/tasks?%ZZ=1"),
        format!("/api/search?q=a&cursor={}", URL_SAFE_NO_PAD.encode([0x7f, 0xf8, 0, 0, 0, 0, 0, 0, 9])),
        format!("/api/search?q={}", "\u{fffd}".repeat(201)),
        "/api/users?q=a&cursor=%2F%2F%2F".to_string(),
    ] {
        let res = http.get(format!("{base}{query}")).bearer_auth(access).send().await.unwrap();
        refused(res, &four, &query).await;
    }
    // The query language's operators are only characters to search for.
    let res =
        http.get(format!("{base}/api/search?q=%22%20OR%20*%20NEAR(a)%20%26%7C!")).bearer_auth(access).send().await;
    assert_eq!(res.unwrap().status(), StatusCode::OK, "a search for FTS5 and tsquery syntax");
}

async fn uploads(http: &Client, base: &str, access: &str, task: &str) {
    let url = format!("{base}/api/tasks/{task}/attachments");
    let four = [StatusCode::BAD_REQUEST, StatusCode::UNPROCESSABLE_ENTITY, StatusCode::UNSUPPORTED_MEDIA_TYPE];
    let bodies: [(&str, &str, Vec<u8>); 4] = [
        ("no boundary", "multipart/form-data", b"--x\r\n\r\n".to_vec()),
        (
            "a truncated part",
            "multipart/form-data; boundary=b",
            b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhal".to_vec(),
        ),
        (
            "no file field",
            "multipart/form-data; boundary=b",
            b"--b\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--b--\r\n".to_vec(),
        ),
        ("not multipart", "application/json", b"{}".to_vec()),
    ];
    for (what, ct, body) in bodies {
        let res = http.post(&url).bearer_auth(access).header("content-type", ct).body(body).send().await.unwrap();
        refused(res, &four, &format!("an upload with {what}")).await;
    }
    // A hostile name is reduced to its last component, and its download header stays one header.
    let name = "..\\../évil \"name\"; x=y%0d.txt";
    let body = format!(
        "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\n",
        name.replace('"', "%22")
    );
    let res = http
        .post(&url)
        .bearer_auth(access)
        .header("content-type", "multipart/form-data; boundary=b")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let created: Value = res.json().await.unwrap_or_default();
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let kept = created["filename"].as_str().unwrap_or_default();
    assert!(!kept.contains(['/', '\\']) && !kept.is_empty(), "kept name {kept:?}");
}

async fn websocket(base: &str, access: &str, project: &str) {
    let mut req = format!("{}/api/ws", base.replacen("http", "ws", 1)).into_client_request().unwrap();
    req.headers_mut()
        .insert("sec-websocket-protocol", HeaderValue::from_str(&format!("trellis, bearer.{access}")).unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    for text in [
        "not json".to_string(),
        r#"{"subscribe": "all"}"#.to_string(),
        r#"{"subscribe": [], "admin": true}"#.to_string(),
        format!(r#"{{"subscribe": ["{project}"], "since": "0; DROP TABLE outbox"}}"#),
        r#"{"since": {"not-a-uuid": 1}}"#.to_string(),
        "\"}\\\"\u{0}".to_string(),
    ] {
        ws.send(Message::Text(text.clone().into())).await.unwrap();
        let frame = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(t))) => {
                        let v: Value = serde_json::from_str(t.as_str()).expect("frames are JSON");
                        if v["type"] == "error" {
                            return v;
                        }
                    }
                    Some(Ok(_)) => {}
                    other => panic!("the connection ended on {text:?}: {other:?}"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no error frame for {text:?}"));
        assert_eq!(frame["status"], 400, "{text:?}: {frame}");
    }
    // The connection survived all of it: a well-formed subscription is answered `subscribed`.
    ws.send(Message::Text(json!({ "subscribe": [project] }).to_string().into())).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str()).expect("frames are JSON");
                    if v["type"] == "subscribed" && v["project_id"] == project {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("the connection ended before subscribing: {other:?}"),
            }
        }
    })
    .await
    .expect("subscribed after the malformed messages");
    let _ = ws.close(None).await;
}
