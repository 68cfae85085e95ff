//! Email verification and password reset through a deployment's public address, reading the
//! mails where the deployment puts them: `.eml` files in `data/mail` (no `SMTP_URL`) or the
//! folder of the SMTP sink it was pointed at.

use std::path::Path;
use std::time::Duration;

use reqwest::{Client, StatusCode, header};
use serde_json::{Value, json};
use test_support::{ReceivedMail, read_mail_dir};

use crate::flow::{client, login_tokens, me_status, post_login, problem, refresh};

/// The messages to `to` whose subject starts with `subject`, once there are at least `count`.
/// Mail leaves off the request path (a spawned task, retried): this fails only when no further
/// such mail has arrived for a minute (scaled), saying how many had.
pub async fn mails_to(dir: &Path, to: &str, subject: &str, count: usize) -> Vec<ReceivedMail> {
    let matching = || {
        read_mail_dir(dir)
            .into_iter()
            .filter(|m| m.header("to") == Some(to) && m.header("subject").is_some_and(|s| s.starts_with(subject)))
            .collect::<Vec<_>>()
    };
    let what = format!("mails \"{subject}…\" to {to} in {}", dir.display());
    test_support::wait::until_count(&what, count, Duration::from_secs(60), || std::future::ready(matching().len()))
        .await;
    matching()
}

/// The value of the counter `name` (with its labels, as `/metrics` writes them) in the process
/// at `base`; 0 while it was never counted.
async fn counter(http: &Client, base: &str, name: &str) -> u64 {
    let text = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap_or_else(|e| panic!("{name} {v}: {e}")) as u64)
}

/// The token of the mail's link, after checking where the link points.
fn token_in(mail: &ReceivedMail, link_prefix: &str) -> String {
    let line = mail
        .body
        .lines()
        .find(|l| l.starts_with(link_prefix))
        .unwrap_or_else(|| panic!("no link {link_prefix}… in:\n{}", mail.body));
    let token = &line[link_prefix.len()..];
    // 256 bits in unpadded base64url; PW-9 asks for at least 128.
    assert!(token.len() >= 43 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    token.to_string()
}

async fn post(http: &Client, base: &str, path: &str, body: Value) -> reqwest::Response {
    http.post(format!("{base}{path}")).json(&body).send().await.unwrap()
}

async fn register(http: &Client, base: &str, email: &str, password: &str, name: &str) {
    let res = post(http, base, "/auth/register", json!({"email": email, "password": password, "name": name})).await;
    assert_eq!(res.status(), StatusCode::CREATED, "registration succeeds whatever happens to its mail");
}

async fn me(http: &Client, base: &str, access: &str) -> Value {
    http.get(format!("{base}/api/users/me")).bearer_auth(access).send().await.unwrap().json().await.unwrap()
}

/// Verification and reset, end to end; returns every token mailed, none of which may ever reach
/// a log line (see [`assert_tokens_absent`]). `auth_process` is the address of the process that
/// runs the auth service (`base` itself all-in-one): its `/metrics` say which mail was not sent.
pub async fn verification_and_reset(base: &str, auth_process: &str, mail_dir: &Path, public_url: &str) -> Vec<String> {
    let http = client();
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let mut mailed = Vec::new();

    // Registration mails a verification link; the account works meanwhile.
    let (email, password) = (format!("verify.{tag}@example.com"), format!("canary-verify-{tag}"));
    register(&http, base, &email, &password, "Vera Lynn").await;
    let mail = &mails_to(mail_dir, &email, "Confirm your email address", 1).await[0];
    assert_eq!(mail.header("from"), Some("Trellis <no-reply@localhost>"));
    let token = token_in(mail, &format!("{public_url}/verify-email#token="));
    mailed.push(token.clone());
    let session = login_tokens(&http, base, &email, &password).await;
    assert_eq!(me(&http, base, &session.access).await["email_verified"], false);

    problem(post(&http, base, "/auth/email/verify", json!({"token": "not-a-token"})).await, StatusCode::BAD_REQUEST)
        .await;
    let sneaky = post(&http, base, "/auth/email/verify", json!({"token": token, "user_id": "x"})).await;
    assert!(sneaky.status().is_client_error(), "unknown fields are refused: {}", sneaky.status());
    let res = post(&http, base, "/auth/email/verify", json!({"token": token})).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(me(&http, base, &session.access).await["email_verified"], true);
    let body =
        problem(post(&http, base, "/auth/email/verify", json!({"token": token})).await, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["detail"], "invalid or expired token", "a link works once");

    // Asking again needs a session, and sends nothing once the email is verified.
    problem(http.post(format!("{base}/auth/email/verify/resend")).send().await.unwrap(), StatusCode::UNAUTHORIZED)
        .await;
    let resend = |access: String| {
        let http = http.clone();
        async move {
            http.post(format!("{base}/auth/email/verify/resend")).bearer_auth(access).send().await.unwrap().status()
        }
    };
    assert_eq!(resend(session.access.clone()).await, StatusCode::ACCEPTED);

    // Password reset.
    let (email, old, new) =
        (format!("reset.{tag}@example.com"), format!("canary-old-reset-{tag}"), format!("canary-new-reset-{tag}"));
    register(&http, base, &email, &old, "Rex Harrison").await;
    let a = login_tokens(&http, base, &email, &old).await;
    let b = login_tokens(&http, base, &email, &old).await;
    assert_eq!(resend(a.access.clone()).await, StatusCode::ACCEPTED);
    for m in mails_to(mail_dir, &email, "Confirm your email address", 2).await {
        mailed.push(token_in(&m, &format!("{public_url}/verify-email#token=")));
    }
    // Reset links go only to a verified address (issue 16): this one is verified first.
    let verified = post(&http, base, "/auth/email/verify", json!({"token": mailed.last().unwrap()})).await;
    assert_eq!(verified.status(), StatusCode::NO_CONTENT);

    // `forgot` answers alike, byte for byte, for an unknown and a known email (PW-9, LG-3).
    let forgot = |who: String| {
        let http = http.clone();
        async move {
            let res = post(&http, base, "/auth/password/forgot", json!({"email": who})).await;
            (res.status(), res.bytes().await.unwrap())
        }
    };
    let unknown = forgot(format!("nobody.{tag}@example.com")).await;
    let known = forgot(email.clone()).await;
    assert_eq!(unknown.0, StatusCode::ACCEPTED);
    assert_eq!(known, unknown, "status and body are identical for a known and an unknown email");
    assert_eq!(forgot("not an email".into()).await, unknown);

    // Meanwhile someone guesses: the account is throttled (LG-1) until the reset.
    for i in 0..5 {
        problem(post_login(&http, base, &email, &format!("canary guess {i}")).await.unwrap(), StatusCode::UNAUTHORIZED)
            .await;
    }
    problem(post_login(&http, base, &email, &old).await.unwrap(), StatusCode::TOO_MANY_REQUESTS).await;

    let mail = &mails_to(mail_dir, &email, "Reset your Trellis password", 1).await[0];
    let token = token_in(mail, &format!("{public_url}/reset-password#token="));
    mailed.push(token.clone());
    let reset = |token: String, password: String| {
        let http = http.clone();
        async move { post(&http, base, "/auth/password/reset", json!({"token": token, "new_password": password})).await }
    };
    let weak = problem(reset(token.clone(), "short".into()).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(weak["errors"][0]["field"], "new_password");
    problem(reset("not-a-token".into(), new.clone()).await, StatusCode::BAD_REQUEST).await;

    let res = reset(token.clone(), new.clone()).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT, "a refused password did not spend the token");
    assert!(res.headers().get(header::SET_COOKIE).is_none());
    assert!(res.bytes().await.unwrap().is_empty(), "a reset issues no tokens: the next login, 2FA included, does");

    // Every session ended, access and refresh tokens alike.
    for (name, s) in [("a", &a), ("b", &b)] {
        assert_eq!(me_status(&http, base, &s.access).await, StatusCode::UNAUTHORIZED, "session {name} ended");
        problem(refresh(&http, base, &s.refresh).await, StatusCode::UNAUTHORIZED).await;
    }
    // The old password fails; the new one works at once (the failed-login count was cleared).
    problem(post_login(&http, base, &email, &old).await.unwrap(), StatusCode::UNAUTHORIZED).await;
    let fresh = login_tokens(&http, base, &email, &new).await;
    assert_eq!(me_status(&http, base, &fresh.access).await, StatusCode::OK);
    problem(reset(token.clone(), format!("canary-third-{tag}")).await, StatusCode::BAD_REQUEST).await;
    login_tokens(&http, base, &email, &new).await;

    // The owner is told, without a link that does anything.
    let notice = &mails_to(mail_dir, &email, "Your Trellis password was reset", 1).await[0];
    assert!(!notice.body.contains("#token="));

    // At most three reset mails an hour per account; the answer never changes. The request past
    // the limit is refused while it is answered (no token, so no mail is ever spawned), and the
    // auth process counts it: that count, not a pause, shows the fourth mail will never come.
    const LIMITED: &str = "trellis_auth_mail_limited_total{purpose=\"reset_password\"}";
    let limited = counter(&http, auth_process, LIMITED).await;
    for _ in 0..3 {
        assert_eq!(forgot(email.clone()).await, unknown);
    }
    assert_eq!(counter(&http, auth_process, LIMITED).await, limited + 1, "exactly one request was past the limit");
    let resets = mails_to(mail_dir, &email, "Reset your Trellis password", 3).await;
    assert_eq!(resets.len(), 3, "the fourth was not sent");
    for m in &resets {
        mailed.push(token_in(m, &format!("{public_url}/reset-password#token=")));
    }
    mailed
}

/// No mailed token may appear in any log line.
pub fn assert_tokens_absent(log: &str, tokens: &[String]) {
    assert!(!tokens.is_empty());
    for token in tokens {
        if let Some(line) = log.lines().find(|l| l.contains(token.as_str())) {
            panic!("a mailed token reached the logs: {line}");
        }
    }
}

/// A password reset does not get around the second factor (docs/SECURITY.md PW-9, LG-6): after it,
/// the password alone still yields only an mfa_token.
pub async fn reset_keeps_the_second_factor(base: &str, mail_dir: &Path, public_url: &str) -> String {
    let http = Client::new();
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let (email, old, new) =
        (format!("totp.reset.{tag}@example.com"), format!("canary-before-{tag}"), format!("canary-after-{tag}"));
    register(&http, base, &email, &old, "Katherine Johnson").await;
    let res = post(&http, base, "/auth/login", json!({"email": email, "password": old})).await;
    let access = res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string();
    let authed = |path: &'static str, body: Value| {
        let (http, access) = (http.clone(), access.clone());
        async move { http.post(format!("{base}{path}")).bearer_auth(access).json(&body).send().await.unwrap() }
    };
    let confirm = mails_to(mail_dir, &email, "Confirm your email address", 1).await.remove(0);
    let verify = token_in(&confirm, &format!("{public_url}/verify-email#token="));
    assert_eq!(
        post(&http, base, "/auth/email/verify", json!({"token": verify})).await.status(),
        StatusCode::NO_CONTENT
    );
    let setup: Value = authed("/auth/mfa/totp/setup", json!({"current_password": old})).await.json().await.unwrap();
    let code = crate::flow::independent_totp(setup["secret"].as_str().unwrap(), crate::flow::unix_now());
    assert_eq!(authed("/auth/mfa/totp/enable", json!({"code": code})).await.status(), StatusCode::OK);
    let notice = mails_to(mail_dir, &email, "Two-step verification is on", 1).await.remove(0);
    assert!(notice.body.contains("/forgot-password"), "the owner is told, with a way out: {}", notice.body);

    assert_eq!(
        post(&http, base, "/auth/password/forgot", json!({"email": email})).await.status(),
        StatusCode::ACCEPTED
    );
    let mail = mails_to(mail_dir, &email, "Reset your Trellis password", 1).await.remove(0);
    let token = token_in(&mail, &format!("{public_url}/reset-password#token="));
    let res = post(&http, base, "/auth/password/reset", json!({"token": token, "new_password": new})).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let body: Value =
        post(&http, base, "/auth/login", json!({"email": email, "password": new})).await.json().await.unwrap();
    assert_eq!(body["mfa_required"], true, "the second factor survives a reset: {body}");
    assert!(body.get("access_token").is_none());
    token
}
