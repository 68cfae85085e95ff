//! Attacks on who can see, export, erase and demote whom (issue 16, docs/SECURITY.md AZ and PW
//! step-up items), against the real binary: a stranger cannot find someone by an email fragment
//! or list every user; adding a member by address answers the same for a known and an unknown
//! address; an access token alone cannot export, erase or (for an admin) demote; two admins
//! demoting each other at once leave one; an admin's read of someone's data is audited.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::flow::{client, login_tokens, problem};
use crate::support::Attack;

struct Person {
    id: String,
    email: String,
    password: String,
    access: String,
}

/// The `sub` of an access token.
fn subject(access: &str) -> String {
    use base64::Engine as _;
    let part = access.split('.').nth(1).unwrap();
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap();
    claims["sub"].as_str().unwrap().to_string()
}

/// Registers and signs in someone new (whatever registration answers, as long as it is a success).
async fn person(http: &Client, base: &str, name: &str, email: String) -> Person {
    let password = format!("canary visibility password {}", uuid::Uuid::now_v7().simple());
    let res = http
        .post(format!("{base}/auth/register"))
        .json(&json!({ "email": email, "password": password, "name": name }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "registration of {name}: {}", res.status());
    let access = login_tokens(http, base, &email, &password).await.access;
    Person { id: subject(&access), email, password, access }
}

/// An account with a second factor, signed in with its single-use recovery codes: with
/// `auth.admin_requires_mfa` (on by default) an administrator acts as one only in a session
/// signed in with a second factor, and recovery codes need no waiting for the next TOTP step.
struct Mfa {
    email: String,
    password: String,
    codes: Vec<String>,
}

impl Mfa {
    /// Turns TOTP on for the account (step-up with its password) and keeps its recovery codes.
    async fn enrol(http: &Client, base: &str, email: &str, password: &str) -> Mfa {
        let access = login_tokens(http, base, email, password).await.access;
        let post = |path: &str, body: Value| {
            let (http, url, access) = (http.clone(), format!("{base}{path}"), access.clone());
            async move { http.post(url).bearer_auth(access).json(&body).send().await.unwrap() }
        };
        let setup =
            json_of(post("/auth/mfa/totp/setup", json!({ "current_password": password })).await, StatusCode::OK).await;
        let code = crate::flow::independent_totp(setup["secret"].as_str().unwrap(), crate::flow::unix_now());
        let enabled = json_of(post("/auth/mfa/totp/enable", json!({ "code": code })).await, StatusCode::OK).await;
        let codes =
            enabled["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
        Mfa { email: email.to_string(), password: password.to_string(), codes }
    }

    /// A new session with the second factor; its access token.
    async fn sign_in(&mut self, http: &Client, base: &str) -> String {
        let res = crate::flow::post_login(http, base, &self.email, &self.password).await.unwrap();
        let step = json_of(res, StatusCode::OK).await;
        let body = json!({ "mfa_token": step["mfa_token"], "code": self.codes.pop().expect("a recovery code left") });
        let res = http.post(format!("{base}/auth/login/mfa")).json(&body).send().await.unwrap();
        json_of(res, StatusCode::OK).await["access_token"].as_str().unwrap().to_string()
    }

    /// Turns the second factor off again (password re-checked), leaving the account as found.
    async fn disenrol(mut self, http: &Client, base: &str) {
        let access = self.sign_in(http, base).await;
        let res = http
            .post(format!("{base}/auth/mfa/totp/disable"))
            .bearer_auth(access)
            .json(&json!({ "password": self.password }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
    }
}

async fn json_of(res: reqwest::Response, status: StatusCode) -> Value {
    let got = res.status();
    let url = res.url().to_string();
    let body = res.text().await.unwrap_or_default();
    assert_eq!(got, status, "{url}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect()
}

/// The whole flow, in the order both deployments run it.
pub async fn visibility(ctx: &Attack) {
    let http = client();
    let base = ctx.base.as_str();
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let tag = &tag[tag.len() - 10..];
    let victim = person(&http, base, "Vivian Target", format!("vivian.{tag}@secret-employer.example")).await;
    let owner = person(&http, base, "Olga Owner", format!("olga.{tag}@example.com")).await;
    let stranger = person(&http, base, "Mallory Stranger", format!("mallory.{tag}@example.com")).await;
    let mut root = Mfa::enrol(&http, base, &ctx.admin.0, &ctx.admin.1).await;
    let admin = root.sign_in(&http, base).await;
    let admin_id = subject(&admin);

    // 1. A stranger cannot find someone by an email fragment, by name without a shared project,
    //    nor list every user.
    let search = |token: String, query: String| {
        let http = http.clone();
        let url = format!("{base}/api/users{query}");
        async move { json_of(http.get(url).bearer_auth(token).send().await.unwrap(), StatusCode::OK).await }
    };
    for q in [format!("?q={tag}"), "?q=secret-employer".into(), "?q=vivian".into(), format!("?q=vivian%20{tag}")] {
        let found = search(stranger.access.clone(), q.clone()).await;
        assert!(!ids(&found).contains(&victim.id), "a stranger found the victim with {q}: {found}");
    }
    let all = search(stranger.access.clone(), String::new()).await;
    assert_eq!(ids(&all), vec![stranger.id.clone()], "without q a stranger lists nobody but themself: {all}");
    // The admin finds by address (and that read is audited, below).
    let found = search(admin.clone(), format!("?q=vivian%20{tag}")).await;
    assert_eq!(ids(&found), vec![victim.id.clone()], "admins search email text too");

    // 2. Adding a member by address answers the same for a known and an unknown address.
    let res = http
        .post(format!("{base}/api/projects"))
        .bearer_auth(&owner.access)
        .json(&json!({ "name": "Visibility" }))
        .send()
        .await
        .unwrap();
    let project = json_of(res, StatusCode::CREATED).await["id"].as_str().unwrap().to_string();
    let invite = |email: String| {
        let (http, token) = (http.clone(), owner.access.clone());
        let url = format!("{base}/api/projects/{project}/members");
        async move {
            let res = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "email": email, "role": "viewer" }))
                .send()
                .await
                .unwrap();
            let status = res.status();
            let mut headers: Vec<String> = res
                .headers()
                .keys()
                .map(|k| k.as_str().to_string())
                .filter(|k| !["date", "x-request-id", "traceparent", "content-length"].contains(&k.as_str()))
                .collect();
            headers.sort();
            let body: Value = res.json().await.unwrap();
            (status, headers, body)
        }
    };
    let unknown = format!("nobody.{tag}@unregistered.example");
    let (known_status, known_headers, known_body) = invite(format!("  {}  ", victim.email.to_uppercase())).await;
    let (unknown_status, unknown_headers, unknown_body) = invite(unknown.clone()).await;
    assert_eq!(known_status, StatusCode::ACCEPTED, "{known_body}");
    assert_eq!((known_status, &known_headers), (unknown_status, &unknown_headers), "same status and headers");
    assert_eq!(known_body, json!({ "email": victim.email, "role": "viewer" }));
    assert_eq!(unknown_body, json!({ "email": unknown, "role": "viewer" }), "the same shape, only the address differs");
    // Again for the now-member: still the same answer.
    assert_eq!(invite(victim.email.clone()).await.0, StatusCode::ACCEPTED);
    // What happened behind the answer: the account was added, the unknown address invited.
    let members = json_of(
        http.get(format!("{base}/api/projects/{project}/members")).bearer_auth(&owner.access).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert!(members.as_array().unwrap().iter().any(|m| m["user_id"] == victim.id.as_str()), "{members}");
    let mail = crate::email::mails_to(&ctx.mail_dir, &unknown, "You are invited", 1).await;
    assert!(mail[0].body.contains("/register"), "the invitation links to registration");
    // Now they share a project: the owner finds the victim by name, never by address.
    assert_eq!(ids(&search(owner.access.clone(), "?q=vivian".into()).await), vec![victim.id.clone()]);
    assert!(ids(&search(owner.access.clone(), "?q=secret-employer".into()).await).is_empty());

    // 3. An access token alone cannot export, erase or let an admin demote.
    let export = format!("{base}/api/users/{}/export", victim.id);
    let body =
        problem(http.get(&export).bearer_auth(&victim.access).send().await.unwrap(), StatusCode::FORBIDDEN).await;
    assert_eq!(body["code"], "step_up_required");
    let body =
        problem(http.post(&export).bearer_auth(&victim.access).send().await.unwrap(), StatusCode::FORBIDDEN).await;
    assert_eq!(body["code"], "step_up_required");
    let wrong = json!({ "current_password": "canary a guessed password" });
    let res = http.post(&export).bearer_auth(&victim.access).json(&wrong).send().await.unwrap();
    assert_eq!(problem(res, StatusCode::UNAUTHORIZED).await["code"], "step_up_failed");
    let res = http.post(&export).bearer_auth(&admin).json(&json!({})).send().await.unwrap();
    assert_eq!(problem(res, StatusCode::FORBIDDEN).await["code"], "step_up_required", "an admin's token alone neither");
    let user_url = format!("{base}/api/users/{}", victim.id);
    let res = http.delete(&user_url).bearer_auth(&victim.access).send().await.unwrap();
    assert_eq!(problem(res, StatusCode::FORBIDDEN).await["code"], "step_up_required");
    let res = http.delete(&user_url).bearer_auth(&admin).json(&json!({})).send().await.unwrap();
    assert_eq!(problem(res, StatusCode::FORBIDDEN).await["code"], "step_up_required");
    for change in [json!({ "role": "guest" }), json!({ "status": "inactive" })] {
        let res = http.patch(&user_url).bearer_auth(&admin).json(&change).send().await.unwrap();
        assert_eq!(problem(res, StatusCode::FORBIDDEN).await["code"], "step_up_required", "{change}");
    }
    let me = json_of(
        http.get(format!("{base}/api/users/me")).bearer_auth(&victim.access).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!((me["role"].as_str(), me["status"].as_str()), (Some("user"), Some("active")), "nothing changed");
    // With the proof, the owner of the data downloads it.
    let res = http
        .post(&export)
        .bearer_auth(&victim.access)
        .json(&json!({ "current_password": victim.password }))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(res, StatusCode::OK).await["user"]["id"], victim.id.as_str());

    // 4. An admin's read of someone's personal data is audited (through the outbox).
    let res = http.get(&user_url).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(json_of(res, StatusCode::OK).await["email"], victim.email.as_str());
    let audit = |action: &'static str| {
        let (http, admin, admin_id) = (http.clone(), admin.clone(), admin_id.clone());
        let url = format!("{base}/api/admin/audit-log?action={action}&actor_id={admin_id}&limit=100");
        async move { json_of(http.get(url).bearer_auth(admin).send().await.unwrap(), StatusCode::OK).await }
    };
    for (action, about) in [("users.profile_viewed", "aggregate_id"), ("users.searched", "data")] {
        let victim_id = victim.id.clone();
        test_support::wait::until(&format!("an audit entry {action} about the victim"), || {
            let page = audit(action);
            let victim_id = victim_id.clone();
            async move {
                page.await["items"].as_array().unwrap().iter().any(|e| match about {
                    "aggregate_id" => e["aggregate_id"] == victim_id.as_str(),
                    _ => {
                        e["data"]["user_ids"].as_array().is_some_and(|ids| ids.iter().any(|i| i == victim_id.as_str()))
                    }
                })
            }
        })
        .await;
    }

    // 5. The last-admin race: two admins demote each other at the same moment; one stays.
    let second = person(&http, base, "Second Admin", format!("second.{tag}@example.com")).await;
    let mut second_mfa = Mfa::enrol(&http, base, &second.email, &second.password).await;
    let promote = json!({ "role": "admin", "current_password": ctx.admin.1 });
    let res =
        http.patch(format!("{base}/api/users/{}", second.id)).bearer_auth(&admin).json(&promote).send().await.unwrap();
    json_of(res, StatusCode::OK).await;
    let second_access = second_mfa.sign_in(&http, base).await;
    let demote = |token: String, target: String, password: String| {
        let http = http.clone();
        let url = format!("{base}/api/users/{target}");
        async move {
            let body = json!({ "role": "user", "current_password": password });
            http.patch(url).bearer_auth(token).json(&body).send().await.unwrap().status()
        }
    };
    let (a, b) = tokio::join!(
        demote(admin.clone(), second.id.clone(), ctx.admin.1.clone()),
        demote(second_access.clone(), admin_id.clone(), second.password.clone()),
    );
    let mut outcomes = [a, b];
    outcomes.sort();
    assert_eq!(outcomes, [StatusCode::OK, StatusCode::CONFLICT], "exactly one demotion passes");
    // Leave the deployment as found: the original administrator is the only admin again.
    if a == StatusCode::CONFLICT {
        // The second admin won: they promote the original back, who then steps them down.
        let back = json!({ "role": "admin", "current_password": second.password });
        let second_access = second_mfa.sign_in(&http, base).await;
        let res = http
            .patch(format!("{base}/api/users/{admin_id}"))
            .bearer_auth(&second_access)
            .json(&back)
            .send()
            .await
            .unwrap();
        json_of(res, StatusCode::OK).await;
        let admin = root.sign_in(&http, base).await;
        assert_eq!(demote(admin, second.id.clone(), ctx.admin.1.clone()).await, StatusCode::OK);
    }
    let admin = root.sign_in(&http, base).await;
    let me =
        json_of(http.get(format!("{base}/api/users/me")).bearer_auth(&admin).send().await.unwrap(), StatusCode::OK)
            .await;
    assert_eq!(me["role"], "admin");

    // 6. Erasure with the proof works (the token alone did not, above).
    let res = http
        .delete(format!("{base}/api/users/{}", stranger.id))
        .bearer_auth(&stranger.access)
        .json(&json!({ "current_password": stranger.password }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // The administrator signs in with the password alone again, as before this flow.
    root.disenrol(&http, base).await;
}
