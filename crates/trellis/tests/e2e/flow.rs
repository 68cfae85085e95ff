//! The walking-skeleton flow and the edge cases, run against any deployment's public address.

use reqwest::{Client, StatusCode, header};
use serde_json::{Value, json};

/// What a flow did, for later checks.
pub struct Outcome {
    /// Events its writes put in the outbox.
    pub events_written: i64,
    pub email: String,
    pub password: String,
    pub access_token: String,
    pub refresh_token: String,
    /// A request id the flow chose for a call that crosses the gateway.
    pub traced_request_id: String,
    /// The W3C trace id the flow sent with that call (`traceparent`).
    pub traced_trace_id: String,
}

/// `POST /auth/login` with JSON credentials (the error is the transport's, not the status).
pub async fn post_login(http: &Client, base: &str, email: &str, password: &str) -> reqwest::Result<reqwest::Response> {
    http.post(format!("{base}/auth/login")).json(&json!({"email": email, "password": password})).send().await
}

/// A client whose every request is bounded by [`crate::support::request_timeout`].
pub fn client() -> Client {
    Client::builder().timeout(crate::support::request_timeout()).build().unwrap()
}

pub async fn problem(res: reqwest::Response, status: StatusCode) -> Value {
    let got = res.status();
    if got != status {
        let url = res.url().to_string();
        let body = res.text().await.unwrap_or_default();
        panic!("expected {status} from {url}, got {got}: {body}");
    }
    let ct = res.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    assert_eq!(ct, "application/problem+json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    for field in ["type", "title", "detail", "request_id"] {
        assert!(body[field].is_string(), "problem has {field}: {body}");
    }
    assert!(!body["request_id"].as_str().unwrap().is_empty());
    body
}

pub fn decode_segment(token: &str, i: usize) -> Value {
    use base64::Engine as _;
    let part = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

pub async fn skeleton(base: &str) -> Outcome {
    let http = client();
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let email = format!("Ada.{tag}@Example.com");
    let password = format!("canary-password-{tag}");
    let register = json!({"email": email, "password": password, "name": "Ada Lovelace"});

    let res = http.post(format!("{base}/auth/register")).json(&register).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let user: Value = res.json().await.unwrap();
    let user = &user["user"];
    assert_eq!(user["email"], email.to_lowercase());
    assert_eq!(user["role"], "user");
    assert_eq!(user["status"], "active");
    for f in ["id", "name", "email_verified", "mfa_enabled", "created_at", "updated_at"] {
        assert!(!user[f].is_null(), "user has {f}");
    }
    assert!(user.get("password_hash").is_none());

    // A taken address gets the same answer as a new one (docs/SECURITY.md LG-3): its owner is
    // mailed instead, and the answer names no existing account.
    let res = http.post(format!("{base}/auth/register")).json(&register).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let again: Value = res.json().await.unwrap();
    assert_ne!(again["user"]["id"], user["id"]);
    assert_eq!(again["user"]["email"], user["email"]);
    let weak = json!({"email": format!("weak.{tag}@example.com"), "password": "short", "name": "Weak"});
    let body = problem(
        http.post(format!("{base}/auth/register")).json(&weak).send().await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "password");

    // Login: tokens, no-store, an RS256 access token with a kid from the JWKS.
    let res = post_login(&http, base, &email, &password).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    assert!(refresh.len() >= 43, "refresh tokens carry 256 bits");
    let header_json = decode_segment(&access, 0);
    assert_eq!(header_json["alg"], "RS256");
    assert_eq!(header_json["typ"], "at+jwt");
    let claims = decode_segment(&access, 1);
    for c in ["iss", "sub", "aud", "exp", "iat", "jti", "sid", "role"] {
        assert!(!claims[c].is_null(), "claim {c}");
    }
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 900);
    assert!(claims.get("email").is_none() && claims.get("name").is_none(), "no PII in tokens");
    let jwks: Value = http.get(format!("{base}/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert!(kids.contains(&header_json["kid"].as_str().unwrap()), "the token's kid is published");

    // Wrong password and unknown email look the same.
    let wrong =
        problem(post_login(&http, base, &email, "not the password at all").await.unwrap(), StatusCode::UNAUTHORIZED)
            .await;
    let unknown = problem(
        post_login(&http, base, &format!("nobody.{tag}@example.com"), "not the password at all").await.unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(wrong["detail"], unknown["detail"]);
    assert_eq!(wrong["type"], unknown["type"]);

    let me: Value =
        http.get(format!("{base}/api/users/me")).bearer_auth(&access).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["id"], user["id"]);

    // A project and a task, through the gateway.
    let res = http
        .post(format!("{base}/api/projects"))
        .bearer_auth(&access)
        .json(&json!({"name": "Apollo", "description": "to the moon"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    for h in ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "x-request-id"] {
        assert!(res.headers().contains_key(h), "{h} on every API answer");
    }
    let project: Value = res.json().await.unwrap();
    assert_eq!(project["owner_id"], user["id"]);
    assert_eq!(project["role"], "owner");
    let pid = project["id"].as_str().unwrap();

    let traced = format!("e2e-{tag}");
    let trace_id = tag.clone(); // 32 lowercase hex digits, as W3C trace ids are
    assert_eq!(trace_id.len(), 32);
    let res = http
        .post(format!("{base}/api/projects/{pid}/tasks"))
        .bearer_auth(&access)
        .header("x-request-id", &traced)
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&json!({"title": "Build the rocket"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["x-request-id"], traced.as_str(), "a client's request id is kept");
    let task: Value = res.json().await.unwrap();
    assert_eq!(task["project_id"], pid);
    assert_eq!(task["status"], "todo");
    assert_eq!(task["priority"], "medium");
    // Read twice: a cache miss, then a hit (counted in /metrics, see `operations_endpoints`).
    for _ in 0..2 {
        let res = http.get(format!("{base}/api/tasks/{}", task["id"].as_str().unwrap())).bearer_auth(&access);
        let read: Value = res.send().await.unwrap().json().await.unwrap();
        assert_eq!(read["title"], "Build the rocket");
    }

    let list: Value = http
        .get(format!("{base}/api/projects/{pid}/tasks"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["id"], task["id"]);
    assert!(list["next_cursor"].is_null());
    let projects: Value =
        http.get(format!("{base}/api/projects")).bearer_auth(&access).send().await.unwrap().json().await.unwrap();
    assert!(projects["items"].as_array().unwrap().iter().any(|p| p["id"] == pid));

    // Another user cannot see it.
    let bob_password = format!("canary-bob-{tag}");
    let bob_email = format!("bob.{tag}@example.com");
    let bob = json!({"email": bob_email, "password": bob_password, "name": "Bob"});
    assert_eq!(
        http.post(format!("{base}/auth/register")).json(&bob).send().await.unwrap().status(),
        StatusCode::CREATED
    );
    let bob_login = login_tokens(&http, base, &bob_email, &bob_password).await;
    let bob_access = bob_login.access.as_str();
    problem(
        http.get(format!("{base}/api/projects/{pid}")).bearer_auth(bob_access).send().await.unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        http.get(format!("{base}/api/projects/{pid}/tasks")).bearer_auth(bob_access).send().await.unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    let bob_view: Value = http
        .get(format!("{base}/api/users/{}", user["id"].as_str().unwrap()))
        .bearer_auth(bob_access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bob_view, json!({"id": user["id"], "name": "Ada Lovelace"}), "others see only id and name");

    // user.created ×2, auth.login_succeeded ×2, auth.login_failed ×1, project.created, task.created.
    Outcome {
        events_written: 7,
        email,
        password,
        access_token: access,
        refresh_token: refresh,
        traced_request_id: traced,
        traced_trace_id: trace_id,
    }
}

/// Logs in and returns the status (used while the server is being stopped).
pub async fn login(base: String, email: String, password: String) -> StatusCode {
    let res = post_login(&client(), &base, &email, &password).await;
    res.map(|r| r.status()).unwrap_or_else(|e| panic!("the in-flight login was cut: {e}"))
}

pub async fn edge_cases(base: &str) {
    let http = client();
    let body = problem(http.get(format!("{base}/api/nope")).send().await.unwrap(), StatusCode::NOT_FOUND).await;
    assert_eq!(body["detail"], "not found");
    problem(
        http.post(format!("{base}/api/projects")).json(&json!({"name": "x"})).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    problem(
        http.get(format!("{base}/api/projects")).bearer_auth("not.a.token").send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    // Raw bodies to the login route: wrong media type, malformed JSON, too large.
    let login_with = |content_type: &'static str, body: String| {
        let http = http.clone();
        async move {
            http.post(format!("{base}/auth/login"))
                .header(header::CONTENT_TYPE, content_type)
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    problem(login_with("text/plain", "{}".into()).await, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    problem(login_with("application/json", "{\"email\":".into()).await, StatusCode::BAD_REQUEST).await;
    let big = format!("{{\"email\":\"{}\",\"password\":\"x\"}}", "a".repeat(2 * 1024 * 1024));
    problem(login_with("application/json", big).await, StatusCode::PAYLOAD_TOO_LARGE).await;
    problem(http.delete(format!("{base}/auth/login")).send().await.unwrap(), StatusCode::METHOD_NOT_ALLOWED).await;
    // Credentials only in a POST body, never in a URL (docs/SECURITY.md LG-4).
    let in_url = format!("{base}/auth/login?email=eve@example.com&password=canary-in-a-url");
    problem(http.get(&in_url).send().await.unwrap(), StatusCode::METHOD_NOT_ALLOWED).await;
    // No mass assignment: unknown fields are refused.
    let sneaky =
        json!({"email": "eve@example.com", "password": "a long enough password", "name": "Eve", "role": "admin"});
    let res = http.post(format!("{base}/auth/register")).json(&sneaky).send().await.unwrap();
    assert!(
        res.status() == StatusCode::UNPROCESSABLE_ENTITY || res.status() == StatusCode::BAD_REQUEST,
        "{}",
        res.status()
    );
    // Identity headers from the client are not trusted.
    problem(
        http.get(format!("{base}/api/users/me"))
            .header("x-user-id", uuid::Uuid::now_v7().to_string())
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

/// `projects_read`: this process serves the projects service and `skeleton` read a task there.
pub async fn operations_endpoints(base: &str, expected_checks: &[&str], projects_read: bool) {
    let http = client();
    assert_eq!(http.get(format!("{base}/healthz")).send().await.unwrap().status(), StatusCode::OK);
    // Readiness is a moment's answer: each probe has 2 s, which a loaded machine can miss once.
    // Every dependency is up, so the process must report ready; a probe that keeps failing fails.
    let ready: Value = test_support::wait::until_some("/readyz to answer 200 ready", || async {
        let res = http.get(format!("{base}/readyz")).send().await.ok()?;
        if res.status() != StatusCode::OK {
            return None;
        }
        res.json::<Value>().await.ok()
    })
    .await;
    assert_eq!(ready["status"], "ready", "{ready}");
    for c in expected_checks {
        assert_eq!(ready["checks"][c]["status"], "up", "{c} in {ready}");
    }
    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("http_requests_total"), "{metrics}");
    assert!(metrics.contains("http_request_duration_seconds_bucket"), "latency histograms: {metrics}");
    if projects_read {
        // The task reads of `skeleton` went through the projects service's cache.
        for counter in ["trellis_cache_hits_total{entity=\"task\"}", "trellis_cache_misses_total{entity=\"task\"}"] {
            assert!(metrics.contains(counter), "{counter} in {metrics}");
        }
    }
    if expected_checks.contains(&"event_bus") {
        return; // a worker process has no gateway routes
    }
    let doc: Value = http.get(format!("{base}/api/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/auth/register",
        "/auth/login",
        "/.well-known/jwks.json",
        "/api/users/me",
        "/api/projects",
        "/api/projects/{id}/tasks",
        "/auth/password/forgot",
        "/auth/password/reset",
        "/auth/email/verify",
        "/auth/email/verify/resend",
    ] {
        assert!(doc["paths"][path].is_object(), "OpenAPI documents {path}");
    }
    let docs = http.get(format!("{base}/api/docs")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    let res = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let csp = res.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_string();
    for directive in ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe"), "no unsafe-inline or unsafe-eval: {csp}");
    assert!(res.text().await.unwrap().contains("<div id=\"root\">"), "the web app shell");
    let spa = http.get(format!("{base}/projects")).send().await.unwrap();
    assert_eq!(spa.status(), StatusCode::OK, "client routes get the app shell");
}

/// No password or token of the flows may appear in any log line. Every password the flows send,
/// right or wrong, contains the word `canary`.
pub fn assert_log_is_clean(log: &str, outcome: &Outcome) {
    assert!(!log.is_empty(), "the processes logged something");
    assert!(outcome.password.contains("canary"));
    if let Some(line) = log.lines().find(|l| l.contains("canary")) {
        panic!("a password reached the logs: {line}");
    }
    for (what, secret) in [
        ("password", &outcome.password),
        ("access token", &outcome.access_token),
        ("refresh token", &outcome.refresh_token),
    ] {
        assert!(!log.contains(secret.as_str()), "a {what} leaked into the logs");
    }
}

/// A login's tokens and session id.
pub struct Login {
    pub access: String,
    pub refresh: String,
    pub sid: String,
}

pub async fn login_tokens(http: &Client, base: &str, email: &str, password: &str) -> Login {
    let res = post_login(http, base, email, password).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let t: Value = res.json().await.unwrap();
    let access = t["access_token"].as_str().unwrap().to_string();
    let sid = decode_segment(&access, 1)["sid"].as_str().unwrap().to_string();
    Login { access, refresh: t["refresh_token"].as_str().unwrap().to_string(), sid }
}

pub async fn refresh(http: &Client, base: &str, token: &str) -> reqwest::Response {
    http.post(format!("{base}/auth/refresh")).json(&json!({"refresh_token": token})).send().await.unwrap()
}

pub async fn me_status(http: &Client, base: &str, access: &str) -> StatusCode {
    http.get(format!("{base}/api/users/me")).bearer_auth(access).send().await.unwrap().status()
}

/// How a deployment treats a rotated refresh token presented again.
pub enum Reuse {
    /// Within the grace window: refused, the session lives on.
    WithinGrace,
    /// Grace 0: reuse, the whole session is revoked.
    Detected,
}

/// Sessions: rotation, reuse, logout (effective at once at another service), the sessions list,
/// revoking one session, logout-all.
pub async fn sessions(base: &str, reuse: Reuse) {
    let http = client();
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let (email, password) = (format!("sessions.{tag}@example.com"), format!("canary-session-{tag}"));
    let body = json!({"email": email, "password": password, "name": "Grace Hopper"});
    assert_eq!(
        http.post(format!("{base}/auth/register")).json(&body).send().await.unwrap().status(),
        StatusCode::CREATED
    );
    let a = login_tokens(&http, base, &email, &password).await;
    let b = login_tokens(&http, base, &email, &password).await;

    // The list shows both, the caller's marked current.
    let list: Value =
        http.get(format!("{base}/auth/sessions")).bearer_auth(&a.access).send().await.unwrap().json().await.unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{list}");
    let current: Vec<&Value> = items.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], a.sid.as_str());
    for s in items {
        assert_eq!(s["ip"], "127.0.0.1", "the client's address, also through a gateway in another process: {s}");
    }

    // Rotation: a new pair, the same session, and the old refresh token is spent.
    let res = refresh(&http, base, &a.refresh).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
    let rotated: Value = res.json().await.unwrap();
    let a2_refresh = rotated["refresh_token"].as_str().unwrap().to_string();
    let a2_access = rotated["access_token"].as_str().unwrap().to_string();
    assert_ne!(a2_refresh, a.refresh);
    assert_eq!(decode_segment(&a2_access, 1)["sid"], a.sid.as_str(), "refresh keeps the session");
    problem(refresh(&http, base, &a.refresh).await, StatusCode::UNAUTHORIZED).await;
    let a3_refresh = match reuse {
        Reuse::WithinGrace => {
            // An honest race: the session survives and its newest token still works.
            let res = refresh(&http, base, &a2_refresh).await;
            assert_eq!(res.status(), StatusCode::OK, "within the grace window the session survives");
            let v: Value = res.json().await.unwrap();
            Some(v["refresh_token"].as_str().unwrap().to_string())
        }
        Reuse::Detected => {
            problem(refresh(&http, base, &a2_refresh).await, StatusCode::UNAUTHORIZED).await;
            assert_eq!(me_status(&http, base, &a2_access).await, StatusCode::UNAUTHORIZED, "reuse revokes the session");
            None
        }
    };
    problem(refresh(&http, base, "not-a-token").await, StatusCode::UNAUTHORIZED).await;

    // Logout ends session A at once, everywhere (users answers /api/users/me), not B.
    if let Some(a3) = &a3_refresh {
        assert_eq!(me_status(&http, base, &a2_access).await, StatusCode::OK);
        let res = http.post(format!("{base}/auth/logout")).bearer_auth(&a2_access).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert_eq!(me_status(&http, base, &a2_access).await, StatusCode::UNAUTHORIZED, "logout revokes access at once");
        assert_eq!(me_status(&http, base, &a.access).await, StatusCode::UNAUTHORIZED);
        problem(refresh(&http, base, a3).await, StatusCode::UNAUTHORIZED).await;
    }
    assert_eq!(me_status(&http, base, &b.access).await, StatusCode::OK, "other sessions live on");

    // Revoke one session from another; others' and unknown sessions are 404.
    let c = login_tokens(&http, base, &email, &password).await;
    let res = http.delete(format!("{base}/auth/sessions/{}", b.sid)).bearer_auth(&c.access).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(me_status(&http, base, &b.access).await, StatusCode::UNAUTHORIZED);
    problem(refresh(&http, base, &b.refresh).await, StatusCode::UNAUTHORIZED).await;
    let unknown = uuid::Uuid::now_v7();
    problem(
        http.delete(format!("{base}/auth/sessions/{unknown}")).bearer_auth(&c.access).send().await.unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    let other = format!("other.{tag}@example.com");
    let other_body = json!({"email": other, "password": password, "name": "Other"});
    assert_eq!(
        http.post(format!("{base}/auth/register")).json(&other_body).send().await.unwrap().status(),
        StatusCode::CREATED
    );
    let o = login_tokens(&http, base, &other, &password).await;
    problem(
        http.delete(format!("{base}/auth/sessions/{}", o.sid)).bearer_auth(&c.access).send().await.unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(me_status(&http, base, &o.access).await, StatusCode::OK, "another user's session is untouched");

    // Introspection (RFC 7662): active with the claims, then inactive once the session ends.
    let introspect = |token: String| {
        let http = http.clone();
        async move {
            let res = http.post(format!("{base}/auth/verify")).json(&json!({"token": token})).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
            res.json::<Value>().await.unwrap()
        }
    };
    let active = introspect(c.access.clone()).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["sid"], c.sid.as_str());
    assert_eq!(active["role"], "user");
    assert_eq!(active["exp"].as_i64().unwrap() - active["iat"].as_i64().unwrap(), 900);
    assert_eq!(introspect(b.access.clone()).await, json!({"active": false}), "a revoked session's token");
    assert_eq!(introspect("not.a.token".into()).await, json!({"active": false}));

    // Logout-all ends the rest.
    let d = login_tokens(&http, base, &email, &password).await;
    let res = http.post(format!("{base}/auth/logout-all")).bearer_auth(&c.access).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    for (name, access) in [("c", &c.access), ("d", &d.access)] {
        assert_eq!(me_status(&http, base, access).await, StatusCode::UNAUTHORIZED, "session {name} ended");
    }
    problem(refresh(&http, base, &d.refresh).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(introspect(c.access.clone()).await, json!({"active": false}));
    problem(http.post(format!("{base}/auth/logout")).send().await.unwrap(), StatusCode::UNAUTHORIZED).await;
}

/// Brute force: after the free failures an account is throttled (429 with `Retry-After`), even
/// for the right password, and an unknown email is treated exactly the same.
pub async fn brute_force(base: &str) {
    let http = client();
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let (email, password) = (format!("target.{tag}@example.com"), format!("canary-right-{tag}"));
    let body = json!({"email": email, "password": password, "name": "Target"});
    assert_eq!(
        http.post(format!("{base}/auth/register")).json(&body).send().await.unwrap().status(),
        StatusCode::CREATED
    );
    let unknown = format!("nobody.{tag}@example.com");
    let mut answers = Vec::new();
    for who in [&email, &unknown] {
        let attempt = |pw: String| {
            let http = http.clone();
            let who = who.to_string();
            async move { post_login(&http, base, &who, &pw).await.unwrap() }
        };
        for i in 0..5 {
            problem(attempt(format!("canary wrong guess {i}")).await, StatusCode::UNAUTHORIZED).await;
        }
        // The fifth failure started a delay: now even the right password waits.
        let res = attempt(password.clone()).await;
        let retry: u64 = res.headers()[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
        assert!((1..=30).contains(&retry), "Retry-After {retry}");
        let mut body = problem(res, StatusCode::TOO_MANY_REQUESTS).await;
        body.as_object_mut().unwrap().remove("request_id");
        answers.push(body);
    }
    assert_eq!(answers[0], answers[1], "a known and an unknown email are throttled alike");
    // Another account is unaffected.
    let other = format!("bystander.{tag}@example.com");
    let body = json!({"email": other, "password": password, "name": "Bystander"});
    assert_eq!(
        http.post(format!("{base}/auth/register")).json(&body).send().await.unwrap().status(),
        StatusCode::CREATED
    );
    let res = post_login(&http, base, &other, &password).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

/// Password change: the current password is required, the policy applies, the caller's other
/// sessions end at once while the caller's own continues, and only the new password logs in.
pub async fn password_change(base: &str) -> String {
    let http = client();
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let (email, old, new) =
        (format!("rotate.{tag}@example.com"), format!("canary-old-{tag}"), format!("canary-new-{tag}"));
    let body = json!({"email": email, "password": old, "name": "Mary Rotate"});
    assert_eq!(
        http.post(format!("{base}/auth/register")).json(&body).send().await.unwrap().status(),
        StatusCode::CREATED
    );
    let a = login_tokens(&http, base, &email, &old).await;
    let b = login_tokens(&http, base, &email, &old).await;
    let change = |current: String, next: String| {
        let (http, access) = (http.clone(), a.access.clone());
        async move {
            http.post(format!("{base}/auth/password/change"))
                .bearer_auth(access)
                .json(&json!({"current_password": current, "new_password": next}))
                .send()
                .await
                .unwrap()
        }
    };
    let wrong =
        problem(change("canary: not my password".into(), new.clone()).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(wrong["errors"][0]["field"], "current_password");
    let weak = problem(change(old.clone(), "short".into()).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(weak["errors"][0]["field"], "new_password");
    let res = change(old.clone(), new.clone()).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(me_status(&http, base, &b.access).await, StatusCode::UNAUTHORIZED, "other sessions end at once");
    problem(refresh(&http, base, &b.refresh).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(me_status(&http, base, &a.access).await, StatusCode::OK, "the caller's session continues");
    problem(post_login(&http, base, &email, &old).await.unwrap(), StatusCode::UNAUTHORIZED).await;
    login_tokens(&http, base, &email, &new).await;
    problem(
        http.post(format!("{base}/auth/password/change"))
            .json(&json!({"current_password": old, "new_password": new}))
            .send()
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    email
}

/// A TOTP code for `unix_time` from an independent implementation of RFC 6238 (Python's standard
/// library), so the server is checked against the RFC and not against itself.
pub fn independent_totp(secret_b32: &str, unix_time: i64) -> String {
    const SCRIPT: &str = "import base64,hashlib,hmac,struct,sys\n\
        s=sys.argv[1]; key=base64.b32decode(s+'='*(-len(s)%8))\n\
        mac=hmac.new(key,struct.pack('>Q',int(sys.argv[2])//30),hashlib.sha1).digest()\n\
        o=mac[-1]&15\n\
        print('%06d'%((struct.unpack('>I',mac[o:o+4])[0]&0x7fffffff)%1000000))";
    let out = std::process::Command::new("python3")
        .args(["-c", SCRIPT, secret_b32, &unix_time.to_string()])
        .output()
        .expect("python3 is required for the independent TOTP implementation");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

async fn login_mfa(http: &Client, base: &str, mfa_token: &str, code: &str) -> reqwest::Response {
    http.post(format!("{base}/auth/login/mfa"))
        .json(&json!({"mfa_token": mfa_token, "code": code}))
        .send()
        .await
        .unwrap()
}

/// A login that must stop at the second factor: only `{mfa_required, mfa_token}`, no token.
async fn mfa_token(http: &Client, base: &str, email: &str, password: &str) -> String {
    let res = post_login(http, base, email, password).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["mfa_required"], true, "{body}");
    assert!(body.get("access_token").is_none() && body.get("refresh_token").is_none(), "no token yet: {body}");
    body["mfa_token"].as_str().unwrap().to_string()
}

/// TOTP 2FA: setup, enable with a code from an independent implementation, login in two steps,
/// each code once, recovery codes once, the mfa_token good for nothing else, disable with the
/// password, and throttled wrong codes.
pub async fn two_factor(base: &str) {
    let http = client();
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let (email, password) = (format!("mfa.{tag}@example.com"), format!("canary-mfa-{tag}"));
    let body = json!({"email": email, "password": password, "name": "Hedy Lamarr"});
    assert_eq!(
        http.post(format!("{base}/auth/register")).json(&body).send().await.unwrap().status(),
        StatusCode::CREATED
    );
    let first = login_tokens(&http, base, &email, &password).await;
    let post = |path: &'static str, body: Value| {
        let (http, access) = (http.clone(), first.access.clone());
        async move { http.post(format!("{base}{path}")).bearer_auth(access).json(&body).send().await.unwrap() }
    };
    problem(post("/auth/mfa/totp/enable", json!({"code": "123456"})).await, StatusCode::CONFLICT).await;

    // Enrolment needs the password with the request (step-up); the token alone is not enough.
    let refused = problem(post("/auth/mfa/totp/setup", json!({})).await, StatusCode::FORBIDDEN).await;
    assert_eq!(refused["code"], "step_up_required");
    let res = post("/auth/mfa/totp/setup", json!({"current_password": password})).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
    let setup: Value = res.json().await.unwrap();
    let secret = setup["secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 32, "160-bit seed in base32");
    let uri = setup["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/Trellis:") && uri.contains(&format!("secret={secret}")), "{uri}");
    assert!(
        post_login(&http, base, &email, &password).await.unwrap().json::<Value>().await.unwrap()["access_token"]
            .is_string(),
        "2FA is not on before it is enabled"
    );

    let t0 = unix_now();
    let right = independent_totp(&secret, t0);
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000);
    let bad =
        problem(post("/auth/mfa/totp/enable", json!({"code": wrong})).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(bad["errors"][0]["field"], "code");
    let res = post("/auth/mfa/totp/enable", json!({"code": right})).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
    let codes: Vec<String> = res.json::<Value>().await.unwrap()["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10);
    let me: Value =
        http.get(format!("{base}/api/users/me")).bearer_auth(&first.access).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["mfa_enabled"], true);

    // A password alone now yields only an mfa_token, which works nowhere but /auth/login/mfa.
    let token = mfa_token(&http, base, &email, &password).await;
    assert_eq!(me_status(&http, base, &token).await, StatusCode::UNAUTHORIZED);
    problem(refresh(&http, base, &token).await, StatusCode::UNAUTHORIZED).await;
    // The code that enabled 2FA is spent; the next step's code (inside the ±1 window) is not.
    // "Next" counts from the clock now, not from t0: however long the steps above took, it is
    // one step ahead of the server's clock, and after the step that enabled 2FA.
    problem(login_mfa(&http, base, &token, &right).await, StatusCode::UNAUTHORIZED).await;
    let next = independent_totp(&secret, unix_now() + 30);
    let res = login_mfa(&http, base, &token, &next).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(me_status(&http, base, tokens["access_token"].as_str().unwrap()).await, StatusCode::OK);
    problem(login_mfa(&http, base, &token, &next).await, StatusCode::UNAUTHORIZED).await;
    let again = mfa_token(&http, base, &email, &password).await;
    problem(login_mfa(&http, base, &again, &next).await, StatusCode::UNAUTHORIZED).await;
    // Four steps ahead of the clock now: outside the ±1 window.
    let too_far = independent_totp(&secret, unix_now() + 120);
    problem(login_mfa(&http, base, &again, &too_far).await, StatusCode::UNAUTHORIZED).await;

    // Recovery codes: once each, hyphens and case not significant.
    let res = login_mfa(&http, base, &again, &codes[0].to_uppercase()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let third = mfa_token(&http, base, &email, &password).await;
    problem(login_mfa(&http, base, &third, &codes[0]).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(login_mfa(&http, base, &third, &codes[1].replace('-', "")).await.status(), StatusCode::OK);

    // Disable needs the password.
    problem(post("/auth/mfa/totp/disable", json!({"password": "canary: not it"})).await, StatusCode::UNAUTHORIZED)
        .await;
    let refused = problem(post("/auth/mfa/totp/disable", json!({})).await, StatusCode::FORBIDDEN).await;
    assert_eq!(refused["code"], "step_up_required");
    assert_eq!(post("/auth/mfa/totp/disable", json!({"password": password})).await.status(), StatusCode::NO_CONTENT);
    let me: Value =
        http.get(format!("{base}/api/users/me")).bearer_auth(&first.access).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["mfa_enabled"], false);
    let res = post_login(&http, base, &email, &password).await.unwrap();
    assert!(res.json::<Value>().await.unwrap()["access_token"].is_string(), "a password alone logs in again");
    problem(post("/auth/mfa/totp/disable", json!({"password": password})).await, StatusCode::CONFLICT).await;

    // Wrong codes are throttled per account: five, then even the right code waits.
    let res = post("/auth/mfa/totp/setup", json!({"current_password": password})).await;
    let secret = res.json::<Value>().await.unwrap()["secret"].as_str().unwrap().to_string();
    let t1 = unix_now();
    assert_eq!(
        post("/auth/mfa/totp/enable", json!({"code": independent_totp(&secret, t1)})).await.status(),
        StatusCode::OK
    );
    let token = mfa_token(&http, base, &email, &password).await;
    let right = independent_totp(&secret, t1 + 30);
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000);
    for _ in 0..5 {
        problem(login_mfa(&http, base, &token, &wrong).await, StatusCode::UNAUTHORIZED).await;
    }
    let res = login_mfa(&http, base, &token, &right).await;
    let retry: u64 = res.headers()[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "Retry-After {retry}");
    problem(res, StatusCode::TOO_MANY_REQUESTS).await;
}

/// What the RBAC flow leaves behind for further checks.
pub struct RbacOutcome {
    /// A fresh access token of a guest who owns a project.
    pub guest_access: String,
    pub guest_project: String,
    pub admin_id: String,
}

/// RBAC: an admin changes a user's role and status (`PATCH /api/users/{id}`); each change ends
/// every session of the user at once; a guest reads but cannot write; only admins change roles;
/// the last admin stays; `If-Match` is honoured; registration cannot choose a role.
pub async fn rbac(base: &str, admin_email: &str, admin_password: &str) -> RbacOutcome {
    let http = client();
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let admin = login_tokens(&http, base, admin_email, admin_password).await;
    let (email, password) = (format!("rbac.{tag}@example.com"), format!("canary-password-{tag}-r"));
    let res = http
        .post(format!("{base}/auth/register"))
        .json(&json!({"email": email, "password": password, "name": "Role Player"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let uid = res.json::<Value>().await.unwrap()["user"]["id"].as_str().unwrap().to_string();
    let a = login_tokens(&http, base, &email, &password).await;
    let b = login_tokens(&http, base, &email, &password).await;
    let res = http
        .post(format!("{base}/api/projects"))
        .bearer_auth(&a.access)
        .json(&json!({"name": "Kept"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let pid = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();

    let patch = |token: String, id: String, body: Value, if_match: Option<String>| {
        let http = http.clone();
        async move {
            let mut req = http.patch(format!("{base}/api/users/{id}")).bearer_auth(token).json(&body);
            if let Some(tag) = if_match {
                req = req.header(header::IF_MATCH, tag);
            }
            req.send().await.unwrap()
        }
    };
    // Only admins change roles and statuses; a user may rename themself; unknown fields are refused.
    let body =
        problem(patch(a.access.clone(), uid.clone(), json!({"role": "admin"}), None).await, StatusCode::FORBIDDEN)
            .await;
    assert_ne!(body["detail"], platform::http::ROLE_DENIED, "an object-level refusal of the users service");
    problem(
        patch(a.access.clone(), uid.clone(), json!({"password_hash": "x"}), None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let res = patch(a.access.clone(), uid.clone(), json!({"name": "Renamed Player"}), None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(me_status(&http, base, &b.access).await, StatusCode::OK, "a rename ends no session");

    // The admin demotes the user to guest, with the user's current ETag.
    let res = http.get(format!("{base}/api/users/{uid}")).bearer_auth(&admin.access).send().await.unwrap();
    let etag = res.headers()[header::ETAG].to_str().unwrap().to_string();
    problem(
        patch(
            admin.access.clone(),
            uid.clone(),
            json!({"role": "guest", "current_password": admin_password}),
            Some("\"stale\"".into()),
        )
        .await,
        StatusCode::PRECONDITION_FAILED,
    )
    .await;
    assert_eq!(me_status(&http, base, &a.access).await, StatusCode::OK, "a refused change ends no session");
    // Step-up (docs/SECURITY.md): without the admin's current password, or with a wrong one,
    // nothing changes.
    let body = problem(
        patch(admin.access.clone(), uid.clone(), json!({"role": "guest"}), Some(etag.clone())).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(body["code"], "step_up_required");
    let wrong = json!({"role": "guest", "current_password": "not the password"});
    let body =
        problem(patch(admin.access.clone(), uid.clone(), wrong, Some(etag.clone())).await, StatusCode::UNAUTHORIZED)
            .await;
    assert_eq!(body["code"], "step_up_failed");
    let res = patch(
        admin.access.clone(),
        uid.clone(),
        json!({"role": "guest", "current_password": admin_password}),
        Some(etag.clone()),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_ne!(res.headers()[header::ETAG].to_str().unwrap(), etag, "a new version");
    assert_eq!(res.json::<Value>().await.unwrap()["role"], "guest");
    for (name, s) in [("a", &a), ("b", &b)] {
        assert_eq!(me_status(&http, base, &s.access).await, StatusCode::UNAUTHORIZED, "session {name} ended at once");
        problem(refresh(&http, base, &s.refresh).await, StatusCode::UNAUTHORIZED).await;
    }

    // As a guest: reads what it may see, writes nothing.
    let g = login_tokens(&http, base, &email, &password).await;
    assert_eq!(decode_segment(&g.access, 1)["role"], "guest");
    let get = |path: String| {
        let (http, token) = (http.clone(), g.access.clone());
        async move { http.get(format!("{base}{path}")).bearer_auth(token).send().await.unwrap().status() }
    };
    for path in [format!("/api/projects/{pid}"), format!("/api/projects/{pid}/tasks"), "/api/projects".into()] {
        assert_eq!(get(path.clone()).await, StatusCode::OK, "a guest reads {path}");
    }
    assert_eq!(get("/auth/sessions".into()).await, StatusCode::OK);
    for (path, body) in [
        ("/api/projects".to_string(), json!({"name": "Nope"})),
        (format!("/api/projects/{pid}/tasks"), json!({"title": "Nope"})),
    ] {
        let res = http.post(format!("{base}{path}")).bearer_auth(&g.access).json(&body).send().await.unwrap();
        let body = problem(res, StatusCode::FORBIDDEN).await;
        assert_eq!(body["detail"], platform::http::ROLE_DENIED, "{path}");
    }

    // Deactivated: the sessions end and login fails like a wrong password; reactivated: it works.
    let res = patch(
        admin.access.clone(),
        uid.clone(),
        json!({"status": "inactive", "current_password": admin_password}),
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(me_status(&http, base, &g.access).await, StatusCode::UNAUTHORIZED, "deactivation ends sessions");
    let body = problem(post_login(&http, base, &email, &password).await.unwrap(), StatusCode::UNAUTHORIZED).await;
    assert_eq!(body["detail"], "invalid credentials");
    let res =
        patch(admin.access.clone(), uid.clone(), json!({"status": "active", "current_password": admin_password}), None)
            .await;
    assert_eq!(res.status(), StatusCode::OK);
    let g = login_tokens(&http, base, &email, &password).await;

    // The last active admin stays an active admin.
    let admin_id = decode_segment(&admin.access, 1)["sub"].as_str().unwrap().to_string();
    for body in [
        json!({"role": "user", "current_password": admin_password}),
        json!({"status": "inactive", "current_password": admin_password}),
    ] {
        problem(patch(admin.access.clone(), admin_id.clone(), body, None).await, StatusCode::CONFLICT).await;
    }
    assert_eq!(me_status(&http, base, &admin.access).await, StatusCode::OK);

    // Registration cannot choose a role (mass assignment): refused, and nobody was created.
    let sneaky = format!("sneaky.{tag}@example.com");
    let res = http
        .post(format!("{base}/auth/register"))
        .json(&json!({"email": sneaky, "password": password, "name": "Sneaky", "role": "admin"}))
        .send()
        .await
        .unwrap();
    assert!(matches!(res.status(), StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST), "{}", res.status());
    problem(post_login(&http, base, &sneaky, &password).await.unwrap(), StatusCode::UNAUTHORIZED).await;

    // Forged identity headers give nothing.
    let res = http
        .post(format!("{base}/api/projects"))
        .header("x-user-id", &admin_id)
        .header("x-user-role", "admin")
        .json(&json!({"name": "Forged"}))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::UNAUTHORIZED).await;
    RbacOutcome { guest_access: g.access, guest_project: pid, admin_id }
}

/// The `__Host-` refresh cookie of a browser client, from a `Set-Cookie` header.
fn refresh_cookie(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Host-trellis-refresh="))
        .map(str::to_string)
}

/// Browser sessions (docs/SECURITY.md SE-6): the refresh token only in a `__Host-` cookie, refreshed
/// by a same-origin request of the web app and refused for anything cross-site.
pub async fn browser_session(base: &str) {
    let http = client();
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let (email, password) = (format!("browser.{tag}@example.com"), format!("canary-browser-{tag}"));
    let body = json!({"email": email, "password": password, "name": "Ada Lovelace"});
    assert_eq!(
        http.post(format!("{base}/auth/register")).json(&body).send().await.unwrap().status(),
        StatusCode::CREATED
    );
    let host = base.trim_start_matches("http://").to_string();
    let res = http
        .post(format!("{base}/auth/login"))
        .header("x-trellis-session", "cookie")
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let set = refresh_cookie(&res).expect("login sets the refresh cookie");
    for attr in ["; Path=/", "; Secure", "; HttpOnly", "; SameSite=Strict"] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    assert!(!set.contains("Domain="), "{set}");
    let hint = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Host-trellis-session="))
        .expect("login sets the script-readable hint cookie")
        .to_string();
    assert!(hint.starts_with("__Host-trellis-session=1;") && !hint.contains("HttpOnly"), "{hint}");
    let token = set.split(';').next().unwrap().trim_start_matches("__Host-trellis-refresh=").to_string();
    let login: Value = res.json().await.unwrap();
    assert!(login.get("refresh_token").is_none(), "the body must not carry the refresh token: {login}");
    assert!(login["access_token"].as_str().is_some_and(|t| !t.is_empty()));
    let cookie = format!("__Host-trellis-refresh={token}");

    let refresh_with = |extra: &[(&'static str, String)], cookie: &str| {
        let mut req = http.post(format!("{base}/auth/refresh")).header(header::COOKIE, cookie.to_string());
        for (k, v) in extra {
            req = req.header(*k, v.clone());
        }
        req.send()
    };
    let app = |origin: &str| {
        vec![
            ("x-trellis-session", "cookie".to_string()),
            ("sec-fetch-site", "same-origin".to_string()),
            ("origin", origin.to_string()),
        ]
    };

    // Cross-site attempts with the cookie attached are refused and spend nothing.
    let form = http
        .post(format!("{base}/auth/refresh"))
        .header(header::COOKIE, cookie.clone())
        .header("origin", "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("x=1")
        .send()
        .await
        .unwrap();
    assert!(matches!(form.status(), StatusCode::FORBIDDEN | StatusCode::UNSUPPORTED_MEDIA_TYPE), "{}", form.status());
    problem(refresh_with(&[("sec-fetch-site", "cross-site".into())], &cookie).await.unwrap(), StatusCode::FORBIDDEN)
        .await;
    problem(refresh_with(&app("https://evil.example"), &cookie).await.unwrap(), StatusCode::FORBIDDEN).await;
    let mut cross = app(&format!("http://{host}"));
    cross[1].1 = "cross-site".into();
    problem(refresh_with(&cross, &cookie).await.unwrap(), StatusCode::FORBIDDEN).await;

    // The app's own refresh rotates the cookie and keeps the session.
    let res = refresh_with(&app(&format!("http://{host}")), &cookie).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let rotated = refresh_cookie(&res).expect("refresh sets a new cookie");
    let rotated_cookie = rotated.split(';').next().unwrap().to_string();
    assert_ne!(rotated_cookie, cookie, "the refresh token rotates");
    let pair: Value = res.json().await.unwrap();
    assert!(pair.get("refresh_token").is_none(), "{pair}");
    let access = pair["access_token"].as_str().unwrap().to_string();
    assert_eq!(me_status(&http, base, &access).await, StatusCode::OK);

    // No cookie: 401. Logout deletes the cookie and ends the session.
    problem(refresh_with(&app(&format!("http://{host}")), "other=1").await.unwrap(), StatusCode::UNAUTHORIZED).await;
    let res = http.post(format!("{base}/auth/logout")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(refresh_cookie(&res).is_some_and(|c| c.contains("Max-Age=0")), "logout clears the cookie");
    let res = refresh_with(&app(&format!("http://{host}")), &rotated_cookie).await.unwrap();
    assert!(refresh_cookie(&res).is_some_and(|c| c.contains("Max-Age=0")), "a dead cookie is cleared");
    problem(res, StatusCode::UNAUTHORIZED).await;
}
