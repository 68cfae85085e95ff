//! Admins need a second factor (issue 16, docs/SECURITY.md AZ-6), against the real binary: an
//! administrator signed in with a password alone (a phished or guessed password) acts as a plain
//! user: admin-only routes answer 403 `admin_mfa_required`, another user's role cannot be changed
//! and their full record is not shown. Signed in with a second factor (`amr` `["pwd", "otp"]`)
//! the same administrator can do all of it, and a refresh keeps the session's second factor. The
//! flow ends with the administrator's factor off again, as it found the deployment.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::flow::{client, login_tokens, problem};
use crate::support::Attack;

/// The claims of an access token.
fn claims(access: &str) -> Value {
    use base64::Engine as _;
    let part = access.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// The JSON body of a 200 answer.
async fn ok_json(res: reqwest::Response) -> Value {
    let (status, url) = (res.status(), res.url().to_string());
    let body = res.text().await.unwrap_or_default();
    assert_eq!(status, StatusCode::OK, "{url}: {body}");
    serde_json::from_str(&body).unwrap()
}

async fn get(http: &Client, url: String, token: &str) -> reqwest::Response {
    http.get(url).bearer_auth(token).send().await.unwrap()
}

/// Every admin-only route of the role gate (one per service that serves them), and the admin
/// actions decided inside the services, as `token` sees them: `admin` tells whether they work.
async fn admin_actions(http: &Client, base: &str, token: &str, victim: &str, password: &str, admin: bool) {
    for path in ["/api/admin/stats", "/api/admin/audit-log?limit=1", "/api/admin/audit-log/verify"] {
        let res = get(http, format!("{base}{path}"), token).await;
        if admin {
            ok_json(res).await;
        } else {
            let body = problem(res, StatusCode::FORBIDDEN).await;
            assert_eq!(body["code"], "admin_mfa_required", "{path}: {body}");
        }
    }
    // Another user's full record (their email) is for admins only.
    let res = get(http, format!("{base}/api/users/{victim}"), token).await;
    let seen = ok_json(res).await;
    assert_eq!(seen["email"].is_string(), admin, "another user's email: {seen}");
    // The admin's reset of a user's second factor (the user has none: 404 past the gate).
    let res = http
        .post(format!("{base}/auth/users/{victim}/mfa/reset"))
        .bearer_auth(token)
        .json(&json!({ "current_password": password }))
        .send()
        .await
        .unwrap();
    if admin {
        assert_ne!(res.status(), StatusCode::FORBIDDEN, "an admin with a second factor passes the gate");
    } else {
        assert_eq!(problem(res, StatusCode::FORBIDDEN).await["code"], "admin_mfa_required");
    }
}

async fn role_change(http: &Client, base: &str, token: &str, victim: &str, role: &str, password: &str) -> StatusCode {
    let body = json!({ "role": role, "current_password": password });
    http.patch(format!("{base}/api/users/{victim}")).bearer_auth(token).json(&body).send().await.unwrap().status()
}

pub async fn admin_mfa(ctx: &Attack) {
    let http = client();
    let base = ctx.base.as_str();
    let (email, password) = (&ctx.admin.0, &ctx.admin.1);
    let victim_email = format!("adminmfa.{}@example.com", uuid::Uuid::now_v7().simple());
    let victim_password = "canary orchard quietly measures nine lanterns".to_string();
    let res = http
        .post(format!("{base}/auth/register"))
        .json(&json!({ "email": victim_email, "password": victim_password, "name": "Victor Victim" }))
        .send()
        .await
        .unwrap();
    let status = res.status();
    assert!(status.is_success(), "registration: {status} {}", res.text().await.unwrap_or_default());
    let victim_access = login_tokens(&http, base, &victim_email, &victim_password).await.access;
    let victim = claims(&victim_access)["sub"].as_str().unwrap().to_string();
    // A role change ends the user's sessions: each look signs the user in afresh.
    let victim_role = || {
        let (http, base, email, password) =
            (http.clone(), base.to_string(), victim_email.clone(), victim_password.clone());
        async move {
            let access = login_tokens(&http, &base, &email, &password).await.access;
            ok_json(get(&http, format!("{base}/api/users/me"), &access).await).await["role"].clone()
        }
    };

    // 1. A password alone: the token says so, and the administrator acts as a plain user.
    let plain = login_tokens(&http, base, email, password).await;
    assert_eq!(claims(&plain.access)["amr"], json!(["pwd"]));
    assert_eq!(claims(&plain.access)["role"], "admin", "the token names the role; the verifier decides");
    admin_actions(&http, base, &plain.access, &victim, password, false).await;
    assert_eq!(role_change(&http, base, &plain.access, &victim, "admin", password).await, StatusCode::FORBIDDEN);
    assert_eq!(victim_role().await, "user", "nothing changed");
    // A refresh of that session gives no more.
    let res = http.post(format!("{base}/auth/refresh")).json(&json!({ "refresh_token": plain.refresh })).send().await;
    let refreshed = ok_json(res.unwrap()).await["access_token"].as_str().unwrap().to_string();
    assert_eq!(claims(&refreshed)["amr"], json!(["pwd"]));
    let res = get(&http, format!("{base}/api/admin/stats"), &refreshed).await;
    assert_eq!(problem(res, StatusCode::FORBIDDEN).await["code"], "admin_mfa_required");

    // 2. With a second factor (enrolled with a step-up; signed in with it), all of it works.
    let mut session = ctx.admin_session().await;
    assert_eq!(claims(&session.access)["amr"], json!(["pwd", "otp"]));
    admin_actions(&http, base, &session.access, &victim, password, true).await;
    assert_eq!(role_change(&http, base, &session.access, &victim, "admin", password).await, StatusCode::OK);
    assert_eq!(victim_role().await, "admin");
    // The session's first password-only token is still a plain user's.
    let res = get(&http, format!("{base}/api/admin/stats"), &refreshed).await;
    assert_eq!(problem(res, StatusCode::FORBIDDEN).await["code"], "admin_mfa_required");

    // 3. A refresh keeps the session's second factor.
    let res = http.post(format!("{base}/auth/refresh")).json(&json!({ "refresh_token": session.refresh })).send().await;
    let tokens = ok_json(res.unwrap()).await;
    session.access = tokens["access_token"].as_str().unwrap().to_string();
    assert_eq!(claims(&session.access)["amr"], json!(["pwd", "otp"]));
    assert_eq!(role_change(&http, base, &session.access, &victim, "user", password).await, StatusCode::OK);
    assert_eq!(victim_role().await, "user");
    ok_json(get(&http, format!("{base}/api/admin/stats"), &session.access).await).await;

    // 4. As found: the factor off again, and a password-only session is a plain user's again.
    session.end().await;
    let plain = login_tokens(&http, base, email, password).await.access;
    let res = get(&http, format!("{base}/api/admin/audit-log?limit=1"), &plain).await;
    assert_eq!(problem(res, StatusCode::FORBIDDEN).await["code"], "admin_mfa_required");
}
