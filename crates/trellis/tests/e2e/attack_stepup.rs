//! Issue 16, step-up (docs/SECURITY.md AZ-12, PW-11, TO-7): an attacker holding only a stolen
//! access token tries to take the account over for good: change its email, enrol or remove a
//! second factor, mint recovery codes, have a reset link mailed. Each needs a fresh proof in the
//! request; wrong proofs are throttled like logins; an email change waits for its link, the old
//! address can undo it and that ends every session; an admin's reset of a user's second factor
//! needs the admin's proof, mails the user and is audited.

use std::path::Path;

use reqwest::{Client, StatusCode, header};
use serde_json::{Value, json};
use test_support::wait;

use crate::email::mails_to;
use crate::flow::{client, independent_totp, login_tokens, me_status, post_login, problem, unix_now};
use crate::support;

fn token_for(body: &str, page: &str) -> String {
    let marker = format!("/{page}#token=");
    let line = body.lines().find(|l| l.contains(&marker)).unwrap_or_else(|| panic!("no {page} link in:\n{body}"));
    line[line.find(&marker).unwrap() + marker.len()..].trim().to_string()
}

async fn register(http: &Client, base: &str, email: &str, password: &str) -> String {
    let res = http
        .post(format!("{base}/auth/register"))
        .json(&json!({"email": email, "password": password, "name": "Ada Lovelace"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json::<Value>().await.unwrap()["user"]["id"].as_str().unwrap().to_string()
}

async fn verify(http: &Client, base: &str, mail_dir: &Path, email: &str) {
    let mail = mails_to(mail_dir, email, "Confirm your email address", 1).await.remove(0);
    let token = token_for(&mail.body, "verify-email");
    let res = http.post(format!("{base}/auth/email/verify")).json(&json!({"token": token})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
}

async fn send(http: &Client, method: reqwest::Method, url: String, access: &str, body: Value) -> reqwest::Response {
    http.request(method, url).bearer_auth(access).json(&body).send().await.unwrap()
}

async fn me(http: &Client, base: &str, access: &str) -> Value {
    http.get(format!("{base}/api/users/me")).bearer_auth(access).send().await.unwrap().json().await.unwrap()
}

/// The problem's `code` for `status`.
async fn code_of(res: reqwest::Response, status: StatusCode) -> String {
    problem(res, status).await["code"].as_str().unwrap_or_default().to_string()
}

/// Every step-up attack of issue 16 against one deployment.
pub async fn step_up(ctx: &support::Attack) {
    let (http, base) = (client(), ctx.base.as_str());
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let (email, password) = (format!("stepup.{tag}@example.com"), format!("canary-stepup-{tag}"));
    let user = register(&http, base, &email, &password).await;
    let stolen = login_tokens(&http, base, &email, &password).await.access;
    let patch_url = format!("{base}/api/users/{user}");
    let post_url = |path: &str| format!("{base}{path}");
    use reqwest::Method;

    // 1. The stolen token alone changes nothing sensitive.
    let attacker_inbox = format!("attacker.{tag}@example.com");
    let res = send(&http, Method::PATCH, patch_url.clone(), &stolen, json!({"email": attacker_inbox})).await;
    assert_eq!(code_of(res, StatusCode::FORBIDDEN).await, "step_up_required");
    let res = send(&http, Method::POST, post_url("/auth/mfa/totp/setup"), &stolen, json!({})).await;
    assert_eq!(code_of(res, StatusCode::FORBIDDEN).await, "step_up_required");
    let res = http.post(post_url("/auth/mfa/totp/setup")).bearer_auth(&stolen).send().await.unwrap();
    assert_eq!(code_of(res, StatusCode::FORBIDDEN).await, "step_up_required", "no body is no proof either");
    assert_eq!(me(&http, base, &stolen).await["email"], email.as_str(), "nothing changed");
    // A reset link goes only to a verified address: this one is not, so `forgot` mails nothing
    // (the same 202). Once verified, a reset mail comes, and only one: none was sent before.
    let forgot = http.post(post_url("/auth/password/forgot")).json(&json!({"email": email})).send().await.unwrap();
    assert_eq!(forgot.status(), StatusCode::ACCEPTED);
    verify(&http, base, &ctx.mail_dir, &email).await;
    let forgot = http.post(post_url("/auth/password/forgot")).json(&json!({"email": email})).send().await.unwrap();
    assert_eq!(forgot.status(), StatusCode::ACCEPTED);
    let resets = mails_to(&ctx.mail_dir, &email, "Reset your Trellis password", 1).await;
    assert_eq!(resets.len(), 1, "the unverified address got no reset link");

    // 2. An email change with the password waits for the link sent to the new address; the
    // answer is the same for a taken address, whose owner is told instead.
    let (other, other_password) = (format!("stepup.other.{tag}@example.com"), format!("canary-other-{tag}"));
    register(&http, base, &other, &other_password).await;
    let new_email = format!("stepup.new.{tag}@example.com");
    let res = send(
        &http,
        Method::PATCH,
        patch_url.clone(),
        &stolen,
        json!({"email": new_email, "current_password": password}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let pending: Value = res.json().await.unwrap();
    assert_eq!(pending["email"], email.as_str(), "pending, not applied");
    let res =
        send(&http, Method::PATCH, patch_url.clone(), &stolen, json!({"email": other, "current_password": password}))
            .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(res.json::<Value>().await.unwrap(), pending, "a taken address answers alike");
    let notice = mails_to(&ctx.mail_dir, &other, "Someone tried to use your address", 1).await.remove(0);
    assert!(!notice.body.contains("#token="), "the taken address's owner gets no link");
    assert_eq!(me(&http, base, &stolen).await["email"], email.as_str());
    let link = mails_to(&ctx.mail_dir, &new_email, "Confirm the new email address", 1).await.remove(0);
    let token = token_for(&link.body, "confirm-email");
    let res = http.post(post_url("/auth/email/change/confirm")).json(&json!({"token": token})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let now = me(&http, base, &stolen).await;
    assert_eq!((now["email"].as_str(), now["email_verified"].as_bool()), (Some(new_email.as_str()), Some(true)));
    let res = http.post(post_url("/auth/email/change/confirm")).json(&json!({"token": token})).send().await.unwrap();
    problem(res, StatusCode::BAD_REQUEST).await;
    // The old address is told (not the new address) with a link that undoes it and ends every
    // session: the stolen token dies.
    let told =
        mails_to(&ctx.mail_dir, &email, "The email address of your Trellis account was changed", 1).await.remove(0);
    assert!(!told.body.contains(&new_email));
    let undo = token_for(&told.body, "undo-email-change");
    let res = http.post(post_url("/auth/email/change/undo")).json(&json!({"token": undo})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(me_status(&http, base, &stolen).await, StatusCode::UNAUTHORIZED, "undo ends every session");
    mails_to(&ctx.mail_dir, &email, "The email address of your Trellis account was restored", 1).await;
    let access = login_tokens(&http, base, &email, &password).await.access;
    assert_eq!(me(&http, base, &access).await["email"], email.as_str());

    // 3. Second factor: enrolment with the password; recovery codes and removal need it too.
    let res =
        send(&http, Method::POST, post_url("/auth/mfa/totp/setup"), &access, json!({"current_password": password}))
            .await;
    assert_eq!(res.status(), StatusCode::OK);
    let secret = res.json::<Value>().await.unwrap()["secret"].as_str().unwrap().to_string();
    let code = independent_totp(&secret, unix_now());
    let res = send(&http, Method::POST, post_url("/auth/mfa/totp/enable"), &access, json!({"code": code})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let first_codes = res.json::<Value>().await.unwrap()["recovery_codes"].clone();
    let res = send(&http, Method::POST, post_url("/auth/mfa/recovery-codes"), &access, json!({})).await;
    assert_eq!(code_of(res, StatusCode::FORBIDDEN).await, "step_up_required");
    let res =
        send(&http, Method::POST, post_url("/auth/mfa/recovery-codes"), &access, json!({"current_password": password}))
            .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
    let codes = res.json::<Value>().await.unwrap()["recovery_codes"].clone();
    assert_eq!(codes.as_array().unwrap().len(), 10);
    assert_ne!(codes, first_codes);
    mails_to(&ctx.mail_dir, &email, "New recovery codes", 1).await;
    let res = send(&http, Method::POST, post_url("/auth/mfa/totp/disable"), &access, json!({})).await;
    assert_eq!(code_of(res, StatusCode::FORBIDDEN).await, "step_up_required");
    // The old recovery codes died: a login with one fails, with a new one it works.
    let mfa_token = |http: Client| {
        let (email, password) = (email.clone(), password.clone());
        async move {
            let res = post_login(&http, base, &email, &password).await.unwrap();
            res.json::<Value>().await.unwrap()["mfa_token"].as_str().unwrap().to_string()
        }
    };
    let login_mfa = |token: String, code: String| {
        let http = http.clone();
        async move {
            http.post(format!("{base}/auth/login/mfa"))
                .json(&json!({"mfa_token": token, "code": code}))
                .send()
                .await
                .unwrap()
        }
    };
    let t = mfa_token(http.clone()).await;
    problem(login_mfa(t.clone(), first_codes[0].as_str().unwrap().into()).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(login_mfa(t, codes[0].as_str().unwrap().into()).await.status(), StatusCode::OK);

    // 4. Wrong proofs count like failed logins: after the free ones, 429, and logins wait too.
    let (victim, victim_password) = (format!("stepup.guess.{tag}@example.com"), format!("canary-guess-{tag}"));
    let victim_id = register(&http, base, &victim, &victim_password).await;
    let victim_access = login_tokens(&http, base, &victim, &victim_password).await.access;
    for i in 0..5 {
        let body = json!({"email": format!("x{i}.{tag}@example.com"), "current_password": format!("canary guess {i}")});
        let res = send(&http, Method::PATCH, format!("{base}/api/users/{victim_id}"), &victim_access, body).await;
        assert_eq!(code_of(res, StatusCode::UNAUTHORIZED).await, "step_up_failed");
    }
    let body = json!({"current_password": victim_password});
    let res = send(&http, Method::POST, post_url("/auth/mfa/totp/setup"), &victim_access, body).await;
    assert!(res.headers().contains_key(header::RETRY_AFTER));
    problem(res, StatusCode::TOO_MANY_REQUESTS).await;
    // (From a client that never signed in to this account, so no device trust applies.)
    problem(post_login(&client(), base, &victim, &victim_password).await.unwrap(), StatusCode::TOO_MANY_REQUESTS).await;

    // 5. An administrator resets the user's second factor: only with the admin's own proof (a
    // user cannot at all); the user's sessions end, the user is mailed, the audit log has it.
    // (Admin actions need the admin's second factor too: `auth.admin_requires_mfa`, AZ-6.)
    let session = ctx.admin_session().await;
    let admin = session.access.clone();
    let reset_url = format!("{base}/auth/users/{user}/mfa/reset");
    problem(
        send(&http, Method::POST, reset_url.clone(), &access, json!({"current_password": password})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let res = send(&http, Method::POST, reset_url.clone(), &admin, json!({})).await;
    assert_eq!(code_of(res, StatusCode::FORBIDDEN).await, "step_up_required");
    let res = send(&http, Method::POST, reset_url.clone(), &admin, json!({"current_password": ctx.admin.1})).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(me_status(&http, base, &access).await, StatusCode::UNAUTHORIZED, "the user's sessions ended");
    mails_to(&ctx.mail_dir, &email, "An administrator turned off two-step verification", 1).await;
    let res = post_login(&http, base, &email, &password).await.unwrap();
    assert!(res.json::<Value>().await.unwrap()["access_token"].is_string(), "a password alone signs in again");
    let audit = format!("{base}/api/admin/audit-log?action=auth.mfa_reset");
    let entry = wait::until_some("the audit entry of the 2FA reset", || {
        let (http, audit, admin, user) = (http.clone(), audit.clone(), admin.clone(), user.clone());
        async move {
            let page: Value = http.get(&audit).bearer_auth(&admin).send().await.ok()?.json().await.ok()?;
            page["items"].as_array()?.iter().find(|e| e["aggregate_id"] == user.as_str()).cloned()
        }
    })
    .await;
    let admin_id = me(&http, base, &admin).await["id"].as_str().unwrap().to_string();
    assert!(entry.to_string().contains(&admin_id), "the admin is the actor: {entry}");
    session.end().await;
}
