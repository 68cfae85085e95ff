//! No account lock-out, no global denial (issue 16, docs/SECURITY.md LG-1, LG-3, LG-7, SE-2, PW-1), each attack
//! performed against the real binary: a registration flood while logins run gives no login a
//! 503; registration answers alike for a taken address and has a budget per client; a stranger's
//! failures do not lock out the owner's known device; a wrong current password at
//! `/auth/password/change` counts like a failed login; a reused refresh token ends its session.
//!
//! Each flow speaks from addresses of its own inside 127.0.0.0/8 (Linux routes the whole block to
//! loopback), so that its failures and budgets do not touch other flows' at 127.0.0.1.

use std::net::IpAddr;

use reqwest::{Client, StatusCode, header};
use serde_json::{Value, json};

use crate::support::{self, Attack};
use crate::{email, flow};

/// Hash workers of the attacked deployments: fixed, so that the flood below outnumbers the hash
/// pool's places (2 workers + 8 waiting) on any machine.
pub fn settings() -> Vec<(&'static str, String)> {
    vec![("TRELLIS_AUTH__HASH_WORKERS", "2".into())]
}

/// Every flow of this area, in both deployments.
pub async fn lockout(ctx: &Attack) {
    registration_reveals_nothing(ctx).await;
    registration_has_a_budget_per_client(ctx).await;
    a_stranger_cannot_lock_the_owner_out(&ctx.base).await;
    password_change_counts_like_a_login(&ctx.base).await;
    step_up_proofs_count_per_address(&ctx.base).await;
    refresh_reuse_ends_the_session(&ctx.base).await;
    registration_flood_leaves_logins_alone(&ctx.base).await;
    a_short_minimum_password_length_is_refused(ctx).await;
}

fn client_from(ip: &str) -> Client {
    Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .pool_max_idle_per_host(0)
        .timeout(support::request_timeout())
        .build()
        .unwrap()
}

fn tag() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

async fn register(http: &Client, base: &str, email: &str, password: &str, name: &str) -> reqwest::Response {
    let body = json!({"email": email, "password": password, "name": name});
    http.post(format!("{base}/auth/register")).json(&body).send().await.unwrap()
}

/// A taken address answers like a new one; its owner is mailed, and nothing changes.
async fn registration_reveals_nothing(ctx: &Attack) {
    let http = client_from("127.0.16.1");
    let t = tag();
    let (email, password) = (format!("owner.{t}@example.com"), format!("canary owner passphrase {t}"));
    let res = register(&http, &ctx.base, &email, &password, "Pat Doe").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let first: Value = res.json().await.unwrap();

    let other = format!("canary intruder passphrase {t}");
    let res = register(&http, &ctx.base, &email.to_uppercase(), &other, "Mallory").await;
    assert_eq!(res.status(), StatusCode::CREATED, "a taken address answers like a new one");
    let second: Value = res.json().await.unwrap();
    let (a, b) = (&first["user"], &second["user"]);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(a), keys(b), "the same fields: {a} / {b}");
    assert_ne!(a["id"], b["id"], "no existing account is named");
    assert_eq!((&a["email"], &a["role"], &a["email_verified"]), (&b["email"], &b["role"], &b["email_verified"]));

    let told = email::mails_to(&ctx.mail_dir, &email, "Someone tried to register with your address", 1).await;
    assert!(!told[0].body.contains(&other), "the mail holds no password");
    flow::problem(flow::post_login(&http, &ctx.base, &email, &other).await.unwrap(), StatusCode::UNAUTHORIZED).await;
    flow::login_tokens(&http, &ctx.base, &email, &password).await;
}

/// Registration attempts are limited per client address, whatever their outcome; another
/// address is not.
async fn registration_has_a_budget_per_client(ctx: &Attack) {
    let limit: usize =
        ctx.env.iter().find(|(k, _)| *k == "TRELLIS_AUTH__REGISTER_LIMIT").map_or(100, |(_, v)| v.parse().unwrap());
    let http = client_from("127.0.16.2");
    let t = tag();
    // Cheap attempts (a name the policy refuses) spend the budget all the same.
    for i in 0..limit {
        let res = register(&http, &ctx.base, &format!("b{i}.{t}@example.com"), "canary budget passphrase", "").await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "attempt {i}");
    }
    let res = register(&http, &ctx.base, &format!("last.{t}@example.com"), "canary budget passphrase", "Late").await;
    assert!(res.headers().contains_key(header::RETRY_AFTER));
    flow::problem(res, StatusCode::TOO_MANY_REQUESTS).await;
    let elsewhere = client_from("127.0.16.3");
    let res =
        register(&elsewhere, &ctx.base, &format!("else.{t}@example.com"), "canary budget passphrase", "Else").await;
    assert_eq!(res.status(), StatusCode::CREATED, "another client has its own budget");
}

/// The device cookie a sign-in set, checked for its protections.
fn device_cookie(res: &reqwest::Response) -> String {
    let set = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Host-trellis-device="))
        .expect("a sign-in sets the device cookie")
        .to_string();
    for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    let pair = set.split(';').next().unwrap();
    pair.trim_start_matches("__Host-trellis-device=").to_string()
}

async fn login_with_device(http: &Client, base: &str, email: &str, password: &str, device: &str) -> reqwest::Response {
    http.post(format!("{base}/auth/login"))
        .header(header::COOKIE, format!("__Host-trellis-device={device}"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

/// A stranger's failures lock the account for strangers only: the owner's device, known from an
/// earlier sign-in, still gets in, and the stranger still gets 429.
async fn a_stranger_cannot_lock_the_owner_out(base: &str) {
    let (owner, stranger) = (client_from("127.0.16.4"), client_from("127.0.16.5"));
    let t = tag();
    let (email, password) = (format!("locked.{t}@example.com"), format!("canary locked passphrase {t}"));
    assert_eq!(register(&owner, base, &email, &password, "Owner").await.status(), StatusCode::CREATED);
    let res = flow::post_login(&owner, base, &email, &password).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let device = device_cookie(&res);

    let mut locked = false;
    for _ in 0..10 {
        let res = flow::post_login(&stranger, base, &email, "a guess of the stranger").await.unwrap();
        match res.status() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::TOO_MANY_REQUESTS => {
                locked = true;
                break;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(locked, "the stranger's guesses are throttled");
    flow::problem(flow::post_login(&stranger, base, &email, &password).await.unwrap(), StatusCode::TOO_MANY_REQUESTS)
        .await;
    // Without the cookie, the owner is a stranger too; with it, the owner gets in.
    flow::problem(flow::post_login(&owner, base, &email, &password).await.unwrap(), StatusCode::TOO_MANY_REQUESTS)
        .await;
    let forged = format!("{}.AAAA", device.split('.').next().unwrap());
    flow::problem(login_with_device(&owner, base, &email, &password, &forged).await, StatusCode::TOO_MANY_REQUESTS)
        .await;
    let res = login_with_device(&owner, base, &email, &password, &device).await;
    assert_eq!(res.status(), StatusCode::OK, "the owner's known device is not locked out by a stranger");
    device_cookie(&res);
    flow::problem(flow::post_login(&stranger, base, &email, &password).await.unwrap(), StatusCode::TOO_MANY_REQUESTS)
        .await;
}

/// A wrong current password at `/auth/password/change` is a failed login for the account.
async fn password_change_counts_like_a_login(base: &str) {
    let http = client_from("127.0.16.6");
    let t = tag();
    let (email, password) = (format!("change.{t}@example.com"), format!("canary change passphrase {t}"));
    assert_eq!(register(&http, base, &email, &password, "Changer").await.status(), StatusCode::CREATED);
    let me = flow::login_tokens(&http, base, &email, &password).await;
    let change = |current: String| {
        let http = http.clone();
        let access = me.access.clone();
        async move {
            let body = json!({"current_password": current, "new_password": "canary a brand new passphrase"});
            http.post(format!("{base}/auth/password/change")).bearer_auth(access).json(&body).send().await.unwrap()
        }
    };
    let mut throttled = false;
    for i in 0..10 {
        let res = change(format!("wrong guess {i}")).await;
        match res.status() {
            StatusCode::UNPROCESSABLE_ENTITY => {}
            StatusCode::TOO_MANY_REQUESTS => {
                throttled = true;
                break;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(throttled, "guessing the current password is throttled");
    flow::problem(change(password.clone()).await, StatusCode::TOO_MANY_REQUESTS).await;
    flow::problem(flow::post_login(&http, base, &email, &password).await.unwrap(), StatusCode::TOO_MANY_REQUESTS).await;
}

/// Wrong step-up proofs count against the client's address exactly as failed logins do, on the
/// auth service's own routes (2FA setup) and through the users service (the data export): spread
/// over accounts, four each (below any account's own throttle), they block the address (the
/// default budget is 50 failures) for every account, and another address is untouched.
async fn step_up_proofs_count_per_address(base: &str) {
    let attacker = client_from("127.0.16.8");
    let mut blocked = false;
    'accounts: for n in 0..16 {
        let t = tag();
        let (email, password) = (format!("proof.{n}.{t}@example.com"), format!("canary proof passphrase {t}"));
        let res = register(&attacker, base, &email, &password, "Prover").await;
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            blocked = true;
            break;
        }
        assert_eq!(res.status(), StatusCode::CREATED);
        let me = flow::login_tokens(&client_from("127.0.16.9"), base, &email, &password).await;
        let id = flow::decode_segment(&me.access, 1)["sub"].as_str().unwrap().to_string();
        let wrong = json!({"current_password": "not the password at all"});
        for (i, url) in [format!("{base}/auth/mfa/totp/setup"), format!("{base}/api/users/{id}/export")]
            .iter()
            .cycle()
            .take(4)
            .enumerate()
        {
            let res = attacker.post(url).bearer_auth(&me.access).json(&wrong).send().await.unwrap();
            match res.status() {
                StatusCode::UNAUTHORIZED => {}
                StatusCode::TOO_MANY_REQUESTS => {
                    assert!(i < 5, "an account's own throttle allows five failures");
                    blocked = true;
                    break 'accounts;
                }
                other => panic!("a wrong proof at {url}: unexpected {other}"),
            }
        }
    }
    assert!(blocked, "64 wrong proofs from one address were never limited");
    let (email, password) = (format!("proof.last.{}@example.com", tag()), "canary the last passphrase".to_string());
    let elsewhere = client_from("127.0.16.10");
    assert_eq!(register(&elsewhere, base, &email, &password, "Zed Quorn").await.status(), StatusCode::CREATED);
    let res = flow::post_login(&attacker, base, &email, &password).await.unwrap();
    flow::problem(res, StatusCode::TOO_MANY_REQUESTS).await;
    flow::login_tokens(&elsewhere, base, &email, &password).await;
}

/// With the default settings, the first reuse of a rotated refresh token ends the session.
async fn refresh_reuse_ends_the_session(base: &str) {
    let http = client_from("127.0.16.7");
    let t = tag();
    let (email, password) = (format!("reuse.{t}@example.com"), format!("canary reuse passphrase {t}"));
    assert_eq!(register(&http, base, &email, &password, "Reuser").await.status(), StatusCode::CREATED);
    let a = flow::login_tokens(&http, base, &email, &password).await;
    let res = flow::refresh(&http, base, &a.refresh).await;
    assert_eq!(res.status(), StatusCode::OK);
    let rotated: Value = res.json().await.unwrap();
    let newest = rotated["refresh_token"].as_str().unwrap().to_string();
    flow::problem(flow::refresh(&http, base, &a.refresh).await, StatusCode::UNAUTHORIZED).await;
    flow::problem(flow::refresh(&http, base, &newest).await, StatusCode::UNAUTHORIZED).await;
    let access = rotated["access_token"].as_str().unwrap();
    assert_eq!(flow::me_status(&http, base, access).await, StatusCode::UNAUTHORIZED, "the whole session ended");
}

/// Registrations from many clients at once, far more than the hash pool holds, while a user keeps
/// signing in: no login is answered 503.
async fn registration_flood_leaves_logins_alone(base: &str) {
    let t = tag();
    let (email, password) = (format!("steady.{t}@example.com"), format!("canary steady passphrase {t}"));
    let user = client_from("127.0.17.1");
    assert_eq!(register(&user, base, &email, &password, "Sam Roe").await.status(), StatusCode::CREATED);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut logins = Vec::new();
    for n in 0..2 {
        let (http, email, password, done) =
            (client_from(&format!("127.0.17.{}", n + 2)), email.clone(), password.clone(), done.clone());
        let base = base.to_string();
        logins.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            while statuses.len() < 2 || !done.load(std::sync::atomic::Ordering::SeqCst) {
                statuses.push(flow::post_login(&http, &base, &email, &password).await.unwrap().status());
            }
            statuses
        }));
    }
    let mut flood = Vec::new();
    for round in 0..2 {
        for i in 0..30 {
            let http = client_from(&format!("127.0.18.{}", round * 30 + i + 1));
            let (base, t) = (base.to_string(), t.clone());
            flood.push(tokio::spawn(async move {
                let email = format!("flood{round}-{i}.{t}@example.com");
                register(&http, &base, &email, "canary flood passphrase long enough", "Robo Filler").await.status()
            }));
        }
    }
    let mut registrations = Vec::new();
    for f in flood {
        registrations.push(f.await.unwrap());
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut statuses = Vec::new();
    for l in logins {
        statuses.extend(l.await.unwrap());
    }
    let count = |all: &[StatusCode]| {
        let mut by: std::collections::BTreeMap<u16, usize> = std::collections::BTreeMap::new();
        for s in all {
            *by.entry(s.as_u16()).or_default() += 1;
        }
        by
    };
    let (logins, registered) = (count(&statuses), count(&registrations));
    assert!(registered.contains_key(&201), "the flood registered: {registered:?}");
    assert_eq!(
        logins.keys().copied().collect::<Vec<_>>(),
        [200],
        "logins during the flood: {logins:?}, registrations: {registered:?}"
    );
}

/// `auth.password_min_length` below 15 stops the binary at start-up (the settings are checked
/// before anything else, here by `trellis migrate` with the deployment's own settings), saying why.
async fn a_short_minimum_password_length_is_refused(ctx: &Attack) {
    let mut env = ctx.env.clone();
    env.push(("TRELLIS_AUTH__PASSWORD_MIN_LENGTH", "12".into()));
    let (code, _, stderr) = support::run(&ctx.dir, &["migrate"], &env).await;
    assert_ne!(code, Some(0), "{stderr}");
    assert!(stderr.contains("auth.password_min_length") && stderr.contains("15"), "{stderr}");
}
