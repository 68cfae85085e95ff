//! Notification mails through a deployment's public address: a task assigned to another member
//! and a mention in a comment each mail that member, where the deployment puts mail.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::email::mails_to;
use crate::flow::{client, login_tokens};

async fn user(base: &str, name: &str, tag: &str) -> (String, String, String) {
    let http = client();
    let email = format!("{}.{tag}@example.com", name.to_lowercase());
    let password = format!("notify-{tag}-{name}-long-enough");
    let res = http
        .post(format!("{base}/auth/register"))
        .json(&json!({"email": email, "password": password, "name": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = res.json::<Value>().await.unwrap()["user"]["id"].as_str().unwrap().to_string();
    let access = login_tokens(&http, base, &email, &password).await.access;
    (id, email, access)
}

async fn post(base: &str, access: &str, path: &str, body: Value) -> Value {
    let res = client().post(format!("{base}{path}")).bearer_auth(access).json(&body).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED, "POST {path}");
    res.json().await.unwrap()
}

/// Ada assigns Bob a task and mentions him in a comment: Bob gets both mails, Ada none.
pub async fn assignment_and_mention(base: &str, mail_dir: &Path, public_url: &str) {
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let (_, ada_email, ada) = user(base, "Ada", &tag).await;
    let (bob_id, bob_email, _) = user(base, "Bob", &tag).await;
    let project = post(base, &ada, "/api/projects", json!({"name": "Garden"})).await;
    let project_id = project["id"].as_str().unwrap();
    post(base, &ada, &format!("/api/projects/{project_id}/members"), json!({"user_id": bob_id, "role": "editor"}))
        .await;
    let task = json!({"title": "Plant the roses", "assignee_id": bob_id});
    let task = post(base, &ada, &format!("/api/projects/{project_id}/tasks"), task).await;
    let task_id = task["id"].as_str().unwrap();
    let link = format!("{public_url}/projects/{project_id}/tasks/{task_id}");

    let assigned = mails_to(mail_dir, &bob_email, "You were assigned: Plant the roses", 1).await;
    assert!(assigned[0].body.contains(&link), "the task's link: {}", assigned[0].body);

    let body = format!("<@{bob_id}> could you take the north bed?");
    post(base, &ada, &format!("/api/tasks/{task_id}/comments"), json!({"body": body})).await;
    let mentioned = mails_to(mail_dir, &bob_email, "Ada mentioned you", 1).await;
    assert!(mentioned[0].body.contains("> @Bob could you take the north bed?"), "{}", mentioned[0].body);
    assert!(mentioned[0].body.contains(&link));
    for m in assigned.iter().chain(&mentioned) {
        assert!(!m.body.contains(&ada_email), "no one else's address");
    }
    let to_ada = test_support::read_mail_dir(mail_dir)
        .into_iter()
        .filter(|m| m.header("to") == Some(ada_email.as_str()))
        .filter(|m| m.header("subject").is_some_and(|s| s.contains("assigned") || s.contains("mentioned")))
        .count();
    assert_eq!(to_ada, 0, "the actor is not notified");
}
