//! HTTP hardening under attack (issue 16, docs/SECURITY.md GW): slow headers, oversized bodies,
//! unknown methods, invalid-token floods, forged `X-Forwarded-For`, live-connection caps, the
//! connection cap, and what `/readyz` and `/metrics` reveal, each performed against the real
//! binary. Raw TCP where a well-behaved client could not misbehave enough.
//!
//! The flood flows speak from addresses of their own inside 127.0.0.0/8 (Linux routes the whole
//! block to loopback), so that other flows' budgets at 127.0.0.1 are untouched; the deployments
//! trust `127.0.0.9` as a proxy (`TRUSTED_PROXY`).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use futures::{SinkExt as _, StreamExt as _};
use reqwest::{Client, Method, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use test_support::wait;

use crate::flow;
use crate::support::{self, Trellis};

/// The proxy address the attacked deployments trust (`gateway.trusted_proxies`).
pub const TRUSTED_PROXY: &str = "127.0.0.9";
/// Live connections one address may hold in the attacked deployments
/// (`http.websockets_per_address`); the default 200 is more than a test should open.
pub const WS_PER_ADDRESS: usize = 8;

/// The settings the attacked deployments need for these flows: an anonymous budget the other
/// areas' flows fit in, a trusted proxy apart from 127.0.0.1, and a small live-connection cap per
/// address.
pub fn settings() -> Vec<(&'static str, String)> {
    vec![
        ("TRELLIS_GATEWAY__RATE_LIMIT_PER_MINUTE", "1000".into()),
        ("TRELLIS_GATEWAY__TRUSTED_PROXIES", format!("[\"{TRUSTED_PROXY}/32\"]")),
        ("TRELLIS_HTTP__WEBSOCKETS_PER_ADDRESS", WS_PER_ADDRESS.to_string()),
    ]
}

/// Every flow that shares the attacked deployment (`under_attack`), in both deployments.
pub async fn hardened(ctx: &support::Attack) {
    let limit: u64 = ctx
        .env
        .iter()
        .find(|(k, _)| *k == "TRELLIS_GATEWAY__RATE_LIMIT_PER_MINUTE")
        .map_or(100, |(_, v)| v.parse().unwrap());
    unknown_method_is_405_before_authentication(&ctx.base).await;
    for base in ctx.services.values().collect::<std::collections::BTreeSet<_>>() {
        oversized_content_length_is_refused_without_the_body(base).await;
    }
    slow_headers_are_cut_off(&ctx.base).await;
    readyz_reveals_no_error_text(&ctx.base).await;
    invalid_token_flood_is_rate_limited(&ctx.base, limit).await;
    forged_forwarded_for_does_not_dodge_the_limit(&ctx.base, limit).await;
    let admin = flow::login_tokens(&flow::client(), &ctx.base, &ctx.admin.0, &ctx.admin.1).await;
    live_connections_are_capped_per_address(&ctx.base, &admin.access, WS_PER_ADDRESS).await;
    live_connections_are_capped_per_user(&ctx.base, &admin.access, 20).await;
}

/// A client speaking from `ip` (any 127.x.y.z), without a connection pool.
fn client_from(ip: &str) -> Client {
    Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .pool_max_idle_per_host(0)
        .timeout(support::request_timeout())
        .build()
        .unwrap()
}

fn host_port(base: &str) -> SocketAddr {
    base.trim_start_matches("http://").parse().unwrap()
}

/// A TCP connection to `base` from `ip`.
async fn tcp_from(base: &str, ip: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(ip.parse().unwrap(), 0)).unwrap();
    socket.connect(host_port(base)).await.unwrap()
}

/// Reads until the server closes (or `within` passes: `None`).
async fn read_to_close(s: &mut TcpStream, within: Duration) -> Option<String> {
    let mut out = Vec::new();
    match tokio::time::timeout(within, s.read_to_end(&mut out)).await {
        Ok(_) => Some(String::from_utf8_lossy(&out).into_owned()),
        Err(_) => None,
    }
}

/// `FOO /api/projects` is 405 whoever asks: without a token, with a forged one. Never 401.
pub async fn unknown_method_is_405_before_authentication(base: &str) {
    let http = client_from("127.0.0.1");
    for method in ["FOO", "TRACE", "PROPFIND"] {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        for token in [None, Some("forged.token.value")] {
            let mut req = http.request(m.clone(), format!("{base}/api/projects"));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let res = req.send().await.unwrap();
            let allow = res.headers().get("allow").map(|v| v.to_str().unwrap().to_string());
            flow::problem(res, StatusCode::METHOD_NOT_ALLOWED).await;
            assert!(allow.is_some_and(|a| a.contains("GET")), "{method}: Allow lists the methods");
        }
    }
}

/// A `Content-Length` past the limit is answered 413 at once, without the body ever being sent.
pub async fn oversized_content_length_is_refused_without_the_body(base: &str) {
    for path in ["/api/projects", "/auth/login", "/api/users/me"] {
        let mut s = tcp_from(base, "127.0.0.1").await;
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: 104857600\r\n\r\n",
            host_port(base)
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let started = Instant::now();
        let mut buf = vec![0u8; 4096];
        // Before: the server waited 5 s for the body it meant to drain. Now it answers at once.
        let n = tokio::time::timeout(Duration::from_secs(4), s.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("{base}{path}: no answer without the body within 4 s"))
            .unwrap();
        let answer = String::from_utf8_lossy(&buf[..n]);
        assert!(answer.starts_with("HTTP/1.1 413"), "{base}{path}: {answer}");
        assert!(answer.to_lowercase().contains("application/problem+json"), "{answer}");
        assert!(started.elapsed() < Duration::from_secs(4));
    }
}

/// A client that trickles its request head is cut off within the 10 s header-read timeout,
/// and so is one that sends nothing at all.
pub async fn slow_headers_are_cut_off(base: &str) {
    let (silent, trickle) = (tcp_from(base, "127.0.0.1").await, tcp_from(base, "127.0.0.1").await);
    let started = Instant::now();
    let silent = tokio::spawn(async move {
        let mut s = silent;
        read_to_close(&mut s, Duration::from_secs(14)).await
    });
    let mut s = trickle;
    s.write_all(format!("GET /api/projects HTTP/1.1\r\nhost: {}\r\n", host_port(base)).as_bytes()).await.unwrap();
    // One header byte a second, for longer than the timeout: the connection must end first.
    let mut closed_after = None;
    for i in 0..14 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let byte = if i % 2 == 0 { &b"x"[..] } else { b"-" };
        if s.write_all(byte).await.is_err() {
            closed_after = Some(started.elapsed());
            break;
        }
        let mut probe = [0u8; 256];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(10), s.read(&mut probe)).await {
            assert!(!String::from_utf8_lossy(&probe[..n]).contains(" 200 "), "a trickled head was served");
            closed_after = Some(started.elapsed());
            break;
        }
    }
    let closed_after = closed_after.expect("a trickling client was still connected after 14 s");
    assert!(closed_after <= Duration::from_secs(13), "closed after {closed_after:?}");
    let silent = silent.await.unwrap();
    assert!(silent.is_some(), "a silent connection was still open after 14 s");
    assert!(!silent.unwrap().contains(" 200 "));
}

/// `/readyz` names its checks with up/down only: no error text, no host, no driver message.
pub async fn readyz_reveals_no_error_text(base: &str) {
    let res = client_from("127.0.0.1").get(format!("{base}/readyz")).send().await.unwrap();
    let body: Value = res.json().await.unwrap();
    assert_no_error_text(&body);
}

fn assert_no_error_text(body: &Value) {
    let text = body.to_string();
    for leak in ["error", "refused", "connect", "timed out", "127.0.0.1", "sqlite", "postgres", "redis", "amqp"] {
        assert!(!text.to_lowercase().contains(leak), "/readyz reveals {leak:?}: {text}");
    }
    if let Some(checks) = body["checks"].as_object() {
        for (name, check) in checks {
            assert!(["up", "down"].contains(&check["status"].as_str().unwrap()), "{name}: {check}");
        }
    }
}

/// Requests with a forged, expired or garbled token are counted against their address: past the
/// anonymous budget they get 429, and so does everything else from that address.
pub async fn invalid_token_flood_is_rate_limited(base: &str, limit: u64) {
    let http = client_from("127.0.0.2");
    let forged = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImZvcmdlZCJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
    let mut unauthorized = 0;
    let mut limited = None;
    for i in 0..=limit + 1 {
        let token = if i % 2 == 0 { forged.to_string() } else { format!("garbage-{i}") };
        let res = http.get(format!("{base}/api/projects")).bearer_auth(token).send().await.unwrap();
        match res.status() {
            StatusCode::UNAUTHORIZED => unauthorized += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                limited = Some(i);
                flow::problem(res, StatusCode::TOO_MANY_REQUESTS).await;
                break;
            }
            other => panic!("request {i} with an invalid token: {other}"),
        }
    }
    let at = limited.unwrap_or_else(|| panic!("{unauthorized} invalid-token requests and no 429"));
    assert!(at <= limit, "the flood was limited only after {at} requests (budget {limit})");
    // The address's budget is spent for anonymous requests too.
    let res = flow::post_login(&http, base, "someone@example.com", "whatever it is").await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// A client that is not a trusted proxy cannot pick its address with `X-Forwarded-For`: a new
/// forged address per request still runs into its own peer's budget. The trusted proxy's header
/// is believed, by its right-most untrusted hop.
pub async fn forged_forwarded_for_does_not_dodge_the_limit(base: &str, limit: u64) {
    let http = client_from("127.0.0.3");
    let mut limited = None;
    for i in 0..=limit + 1 {
        let forged = format!("198.51.{}.{}", i / 250, i % 250 + 1);
        let res = http.get(format!("{base}/api/projects")).header("x-forwarded-for", forged).send().await.unwrap();
        match res.status() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::TOO_MANY_REQUESTS => {
                limited = Some(i);
                break;
            }
            other => panic!("request {i}: {other}"),
        }
    }
    let at = limited.expect("forged X-Forwarded-For dodged the per-address limit");
    assert!(at <= limit, "limited only after {at} requests (budget {limit})");

    // Through the trusted proxy the client it names is counted, not the proxy: one client's budget
    // spent leaves another's whole. A forged entry left of the proxy's is ignored.
    let proxy = client_from(TRUSTED_PROXY);
    let spend = |xff: String| {
        let proxy = proxy.clone();
        async move {
            let res = proxy.get(format!("{base}/api/projects")).header("x-forwarded-for", xff).send().await.unwrap();
            res.status()
        }
    };
    let mut spent = false;
    for _ in 0..=limit + 1 {
        if spend("203.0.113.50".into()).await == StatusCode::TOO_MANY_REQUESTS {
            spent = true;
            break;
        }
    }
    assert!(spent, "the trusted proxy's client had no limit");
    assert_eq!(spend("10.9.9.9, 203.0.113.50".into()).await, StatusCode::TOO_MANY_REQUESTS, "right-most hop");
    assert_eq!(spend("203.0.113.51".into()).await, StatusCode::UNAUTHORIZED, "another client of the proxy");
    // IPv6 clients count per /64: another address in the same /64 shares the budget.
    let mut v6_spent = false;
    for _ in 0..=limit + 1 {
        if spend("2001:db8:7:7::1".into()).await == StatusCode::TOO_MANY_REQUESTS {
            v6_spent = true;
            break;
        }
    }
    assert!(v6_spent);
    assert_eq!(spend("2001:db8:7:7:ffff::2".into()).await, StatusCode::TOO_MANY_REQUESTS, "same /64");
    assert_eq!(spend("2001:db8:7:8::1".into()).await, StatusCode::UNAUTHORIZED, "another /64");
}

fn ws_request(base: &str, token: Option<&str>) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut req = format!("{}/api/ws", base.replacen("http", "ws", 1)).into_client_request().unwrap();
    if let Some(t) = token {
        let offer = HeaderValue::from_str(&format!("trellis, bearer.{t}")).unwrap();
        req.headers_mut().insert("sec-websocket-protocol", offer);
    }
    req
}

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

async fn ws_from(base: &str, ip: &str, token: Option<&str>) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let stream = tcp_from(base, ip).await;
    tokio_tungstenite::client_async(ws_request(base, token), stream).await.map(|(ws, _)| ws)
}

/// One address holds at most `cap` live connections; the next upgrade is refused with 429, and
/// a slot is free again once one of them closes.
pub async fn live_connections_are_capped_per_address(base: &str, token: &str, cap: usize) {
    let ip = "127.0.0.6";
    let mut open = Vec::new();
    for i in 0..cap {
        open.push(ws_from(base, ip, Some(token)).await.unwrap_or_else(|e| panic!("connection {i}: {e}")));
    }
    match ws_from(base, ip, Some(token)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS.as_u16());
        }
        Ok(_) => panic!("connection {} from one address was accepted past the cap of {cap}", cap + 1),
        Err(e) => panic!("unexpected: {e}"),
    }
    let mut other = ws_from(base, "127.0.0.1", Some(token)).await.expect("another address is not affected");
    let _ = other.close(None).await;
    let mut first = open.remove(0);
    first.close(None).await.unwrap();
    drop(first);
    wait::until("a live slot to be free again after a close", || async {
        match ws_from(base, ip, Some(token)).await {
            Ok(mut ws) => {
                let _ = ws.close(None).await;
                true
            }
            Err(_) => false,
        }
    })
    .await;
    for mut ws in open {
        let _ = ws.close(None).await;
    }
}

/// Waits until the server reads the connection, which it does once it has registered it (it
/// answers a ping only from its session loop); panics if it closes instead.
async fn registered(ws: &mut Ws) {
    ws.send(Message::Ping(b"registered?".to_vec().into())).await.unwrap();
    let answer = tokio::time::timeout(support::request_timeout(), async {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Pong(_)) => return Ok(()),
                Ok(Message::Close(frame)) => return Err(format!("closed: {frame:?}")),
                Ok(_) => continue,
                Err(e) => return Err(e.to_string()),
            }
        }
        Err("ended".to_string())
    })
    .await
    .expect("no pong");
    answer.unwrap_or_else(|e| panic!("a live connection within the cap: {e}"));
}

/// One user holds at most `cap` live connections per worker; one more is closed with 1013.
pub async fn live_connections_are_capped_per_user(base: &str, token: &str, cap: usize) {
    let mut open = Vec::new();
    // Spread over addresses, so that the address cap is not what stops them.
    for i in 0..cap {
        let ip = format!("127.0.1.{}", i + 1);
        let mut ws = ws_from(base, &ip, Some(token)).await.unwrap_or_else(|e| panic!("connection {i}: {e}"));
        registered(&mut ws).await;
        open.push(ws);
    }
    let mut extra = ws_from(base, "127.0.2.1", Some(token)).await.expect("the upgrade itself is accepted");
    let closed = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(msg) = extra.next().await {
            match msg {
                Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .expect("the connection past the per-user cap was not closed");
    assert_eq!(closed, Some(1013), "closed with try-again-later");
    for mut ws in open {
        let _ = ws.close(None).await;
    }
}

/// The connection cap and a separate metrics address, in a process of their own (a cap of a few
/// connections would starve the other flows): past the cap a connection is answered 503 at once;
/// `/metrics` is only on the metrics address; `/readyz` with a dependency down (object storage
/// at an address nobody listens on) names no error on either listener.
#[tokio::test]
async fn connection_cap_and_metrics_address() {
    let dir = tempfile::tempdir().unwrap();
    let (metrics_port, dead_port) = (test_support::reserve_port(), test_support::reserve_port());
    let env = [
        ("TRELLIS_HTTP__MAX_CONNECTIONS", "6".to_string()),
        ("TRELLIS_METRICS__LISTEN", format!("127.0.0.1:{metrics_port}")),
        ("S3_ENDPOINT", format!("http://127.0.0.1:{dead_port}")),
        ("S3_BUCKET", "nowhere".to_string()),
        ("S3_ACCESS_KEY_ID", "key".to_string()),
        ("S3_SECRET_ACCESS_KEY", "canary secret of the dead bucket".to_string()),
    ];
    let app = Trellis::start("connection-cap", dir.path(), &[], &env).await;
    let metrics = format!("http://127.0.0.1:{metrics_port}");
    let http = client_from("127.0.0.1");

    // The main listener: no /metrics, and a bare readiness status.
    let res = http.get(format!("{}/metrics", app.base)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "/metrics must not be on the main listener");
    let res = http.get(format!("{}/readyz", app.base)).send().await.unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "degraded"}), "the public /readyz: status only");
    // The metrics listener: /metrics, and each check, down without its reason.
    let res = http.get(format!("{metrics}/metrics")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("http_requests_total"));
    let body: Value = http.get(format!("{metrics}/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["checks"]["objects"]["status"], "down", "{body}");
    assert_no_error_text(&body);

    // The connection cap: silent connections fill it; the next is answered 503 before it sends.
    let mut held = Vec::new();
    let mut refused = None;
    for i in 0..12 {
        let mut s = tcp_from(&app.base, "127.0.0.1").await;
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                refused = Some((i, String::from_utf8_lossy(&buf[..n]).into_owned()));
                break;
            }
            _ => held.push(s),
        }
    }
    let (at, answer) = refused.expect("12 connections held at once with a cap of 6");
    assert!(at <= 6, "refused only at connection {at}");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("application/problem+json") && answer.contains("retry-after"), "{answer}");
    drop(held);
    wait::until("the server to accept requests again once connections close", || async {
        client_from("127.0.0.1")
            .get(format!("{}/healthz", app.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;

    let (code, log) = app.terminate().await;
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("canary"), "a secret reached the log");
}
