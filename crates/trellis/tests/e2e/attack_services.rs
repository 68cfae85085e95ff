//! Attacks on the trust between services (docs/SECURITY.md GW-6, AZ-5), against the real binary:
//! calling a service's `/internal/*` routes with no credential, a forged one, an expired one, a
//! replayed one, one made for another route, or a valid one of a service the route does not admit;
//! a client going straight to a split service with forged `X-Forwarded-For`; the old shared
//! `internal_token` setting; a split service started without its key.

use api::internal::Service;
use platform::service_auth::{SERVICE_TOKEN_HEADER, ServiceKey, TOKEN_TTL};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::flow::{client, problem, unix_now};
use crate::support::{self, Attack};

/// The environment variable of a service's private key and of its public key.
fn key_vars(service: Service) -> (&'static str, &'static str) {
    match service {
        Service::Gateway => ("TRELLIS_INTERNAL__PRIVATE_KEYS__GATEWAY", "TRELLIS_INTERNAL__PUBLIC_KEYS__GATEWAY"),
        Service::Auth => ("TRELLIS_INTERNAL__PRIVATE_KEYS__AUTH", "TRELLIS_INTERNAL__PUBLIC_KEYS__AUTH"),
        Service::Users => ("TRELLIS_INTERNAL__PRIVATE_KEYS__USERS", "TRELLIS_INTERNAL__PUBLIC_KEYS__USERS"),
        Service::Projects => ("TRELLIS_INTERNAL__PRIVATE_KEYS__PROJECTS", "TRELLIS_INTERNAL__PUBLIC_KEYS__PROJECTS"),
        Service::Worker => ("TRELLIS_INTERNAL__PRIVATE_KEYS__WORKER", "TRELLIS_INTERNAL__PUBLIC_KEYS__WORKER"),
    }
}

/// A new key pair for every service, as the settings of a distributed deployment (the test gives
/// every process the same environment; a process uses the private keys of its own services only).
pub fn service_key_env() -> Vec<(&'static str, String)> {
    Service::ALL
        .into_iter()
        .flat_map(|s| {
            let (key, private) = ServiceKey::generate(s);
            let (private_var, public_var) = key_vars(s);
            [(private_var, private), (public_var, key.public_key())]
        })
        .collect()
}

/// The key of `service` in this deployment's settings.
fn key_of(ctx: &Attack, service: Service) -> ServiceKey {
    let var = key_vars(service).0;
    let text =
        ctx.env.iter().find(|(k, _)| *k == var).map(|(_, v)| v.clone()).unwrap_or_else(|| panic!("{var} is set"));
    ServiceKey::parse(service, &text).unwrap()
}

async fn call(base: &str, method: reqwest::Method, path: &str, token: Option<&str>, body: &Value) -> reqwest::Response {
    let mut req = client().request(method, format!("{base}{path}")).json(body);
    if let Some(t) = token {
        req = req.header(SERVICE_TOKEN_HEADER, t);
    }
    req.send().await.unwrap()
}

/// Refused for want of a valid credential: 401 problem+json with its code.
async fn unauthorized(res: reqwest::Response, what: &str) {
    let body = problem(res, StatusCode::UNAUTHORIZED).await;
    assert_eq!(body["code"], "service_credential_required", "{what}: {body}");
}

/// Refused because the calling service may not: 403 problem+json with its code.
async fn forbidden(res: reqwest::Response, what: &str) {
    let body = problem(res, StatusCode::FORBIDDEN).await;
    assert_eq!(body["code"], "service_not_allowed", "{what}: {body}");
}

/// Every attack on the internal routes and forwarded headers that applies to the deployment.
pub async fn services(ctx: &Attack) {
    old_token_and_missing_keys_are_refused_at_start(ctx).await;
    let post = reqwest::Method::POST;
    let check = "/internal/auth/password-check";
    let body = json!({"user_id": uuid::Uuid::now_v7(), "password": "canary-not-a-password"});
    let auth = ctx.service("auth");

    // Anyone without a credential, with the old shared token, or with a key of their own making.
    unauthorized(call(auth, post.clone(), check, None, &body).await, "no credential").await;
    let old = client()
        .post(format!("{auth}{check}"))
        .header("x-trellis-internal", "an-internal-token-of-at-least-32-characters")
        .json(&body)
        .send()
        .await
        .unwrap();
    unauthorized(old, "the old shared token").await;
    let (forger, _) = ServiceKey::generate(Service::Users);
    unauthorized(call(auth, post.clone(), check, Some(&forger.sign("auth", "POST", check)), &body).await, "forged")
        .await;
    if !ctx.distributed {
        // All-in-one: no service calls another over HTTP, so no key admits anyone.
        return;
    }

    let users = key_of(ctx, Service::Users);
    let session = format!("/internal/sessions/{}", uuid::Uuid::now_v7());
    // The control: the users service's own key opens what users may call.
    let token = users.sign("auth", "GET", &session);
    let res = client().get(format!("{auth}{session}")).header(SERVICE_TOKEN_HEADER, &token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "a valid credential of an allowed service is admitted");
    assert_eq!(res.json::<Value>().await.unwrap()["active"], false);
    let again = client().get(format!("{auth}{session}")).header(SERVICE_TOKEN_HEADER, &token).send().await.unwrap();
    unauthorized(again, "replayed").await;
    let expired = users.sign_at("auth", "POST", check, unix_now() - 600, TOKEN_TTL);
    unauthorized(call(auth, post.clone(), check, Some(&expired), &body).await, "expired").await;
    let elsewhere = users.sign("auth", "POST", "/internal/auth/personal-data/export");
    unauthorized(call(auth, post.clone(), check, Some(&elsewhere), &body).await, "made for another route").await;
    let other_service = users.sign("projects", "POST", check);
    unauthorized(call(auth, post.clone(), check, Some(&other_service), &body).await, "made for another service").await;

    // Valid credentials of services the route does not admit.
    let worker = key_of(ctx, Service::Worker);
    let gateway = key_of(ctx, Service::Gateway);
    let projects = key_of(ctx, Service::Projects);
    for key in [&worker, &gateway, &projects] {
        let t = key.sign("auth", "POST", check);
        forbidden(call(auth, post.clone(), check, Some(&t), &body).await, "password checks are the users service's")
            .await;
        let erase = "/internal/auth/personal-data/erase";
        let t = key.sign("auth", "POST", erase);
        let subject = json!({"user_id": uuid::Uuid::now_v7()});
        forbidden(call(auth, post.clone(), erase, Some(&t), &subject).await, "erasure is the users service's").await;
    }
    let users_base = ctx.service("users");
    let new_user =
        json!({"id": uuid::Uuid::now_v7(), "email": "planted@example.com", "name": "Planted", "role": "admin"});
    for key in [&gateway, &projects, &worker] {
        let t = key.sign("users", "POST", "/internal/users");
        forbidden(
            call(users_base, post.clone(), "/internal/users", Some(&t), &new_user).await,
            "only auth creates users",
        )
        .await;
    }
    let notifications = format!("/internal/users/{}/notifications", uuid::Uuid::now_v7());
    let t = key_of(ctx, Service::Auth).sign("users", "GET", &notifications);
    let res =
        client().get(format!("{users_base}{notifications}")).header(SERVICE_TOKEN_HEADER, t).send().await.unwrap();
    forbidden(res, "notification settings are the worker's").await;
    let projects_base = ctx.service("projects");
    let q = json!({"project_id": uuid::Uuid::now_v7(), "user_id": uuid::Uuid::now_v7(), "role": "admin"});
    unauthorized(call(projects_base, post.clone(), "/internal/projects/access", None, &q).await, "no credential").await;
    let t = gateway.sign("projects", "POST", "/internal/projects/access");
    forbidden(
        call(projects_base, post.clone(), "/internal/projects/access", Some(&t), &q).await,
        "access is the worker's",
    )
    .await;

    forwarded_headers_count_only_from_the_gateway(ctx, &gateway).await;
}

/// A client that reaches the auth process directly cannot choose its address with
/// `X-Forwarded-For` or `X-Real-IP`: its session records the peer. The same headers with the
/// gateway's credential are taken (the control).
async fn forwarded_headers_count_only_from_the_gateway(ctx: &Attack, gateway: &ServiceKey) {
    let http = client();
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let secret = uuid::Uuid::now_v7().simple().to_string();
    let (email, password) = (format!("forwarded.{tag}@example.com"), format!("canary lantern orchard {secret}"));
    let res = http
        .post(format!("{}/auth/register", ctx.base))
        .json(&json!({"email": email, "password": password, "name": "Forwarded Tester"}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "registration: {}", res.status());
    let auth = ctx.service("auth");
    let login = |headers: Vec<(&'static str, String)>| {
        let (http, email, password) = (http.clone(), email.clone(), password.clone());
        async move {
            let mut req = http.post(format!("{auth}/auth/login")).json(&json!({"email": email, "password": password}));
            for (k, v) in headers {
                req = req.header(k, v);
            }
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK, "login straight at the auth process");
            res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string()
        }
    };
    let spoofed = "203.0.113.77";
    let forged = vec![
        ("x-forwarded-for", spoofed.to_string()),
        ("x-real-ip", spoofed.to_string()),
        ("forwarded", format!("for={spoofed}")),
    ];
    let access = login(forged.clone()).await;
    // A credential of another service does not make the headers count either.
    let mut as_worker = forged.clone();
    as_worker.push((SERVICE_TOKEN_HEADER, key_of(ctx, Service::Worker).sign("auth", "POST", "/auth/login")));
    login(as_worker).await;
    let honest = "198.51.100.23";
    login(vec![
        ("x-forwarded-for", honest.to_string()),
        (SERVICE_TOKEN_HEADER, gateway.sign("auth", "POST", "/auth/login")),
    ])
    .await;
    let res = http.get(format!("{}/auth/sessions", ctx.base)).bearer_auth(&access).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let sessions: Value = res.json().await.unwrap();
    let ips: Vec<&str> =
        sessions.as_array().or(sessions["items"].as_array()).unwrap().iter().filter_map(|s| s["ip"].as_str()).collect();
    assert_eq!(ips.len(), 3, "three sessions: {sessions}");
    assert!(!ips.contains(&spoofed), "a client cannot choose the address its session records: {sessions}");
    assert_eq!(ips.iter().filter(|ip| **ip == "127.0.0.1").count(), 2, "the peer is recorded: {sessions}");
    assert!(ips.contains(&honest), "the gateway's forwarded address is recorded: {sessions}");
}

/// The old shared secret is refused with a message naming what replaced it, and a split service
/// without its key does not start.
async fn old_token_and_missing_keys_are_refused_at_start(ctx: &Attack) {
    let listen = format!("127.0.0.1:{}", test_support::reserve_port());
    let mut env: Vec<(&str, String)> =
        ctx.env.iter().filter(|(k, _)| !k.starts_with("TRELLIS_INTERNAL")).map(|(k, v)| (*k, v.clone())).collect();
    let mut with_token = env.clone();
    with_token.push(("TRELLIS_INTERNAL_TOKEN", "an-internal-token-of-at-least-32-characters".into()));
    let (code, _, stderr) =
        support::run(&ctx.dir, &["serve", "--services", "users", "--listen", &listen], &with_token).await;
    assert_ne!(code, Some(0), "the old setting stops start-up");
    assert!(
        stderr.contains("internal_token") && stderr.contains("internal.private_keys"),
        "the message says what replaced it: {stderr}"
    );
    assert!(!stderr.contains("an-internal-token-of-at-least"), "the secret is not echoed: {stderr}");
    if !ctx.distributed {
        return;
    }
    // Every public key, but not the users service's private key.
    env.extend(
        ctx.env.iter().filter(|(k, _)| k.starts_with("TRELLIS_INTERNAL__PUBLIC_KEYS")).map(|(k, v)| (*k, v.clone())),
    );
    let (code, _, stderr) = support::run(&ctx.dir, &["serve", "--services", "users", "--listen", &listen], &env).await;
    assert_ne!(code, Some(0), "a split service without its key does not start");
    assert!(stderr.contains("TRELLIS_INTERNAL__PRIVATE_KEYS__USERS"), "the missing setting is named: {stderr}");
}
