//! `Idempotency-Key` through the real binary and the gateway: a repeated `POST /api/projects`
//! replays the first answer and creates one project; the key with another body is 422.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::flow;

pub async fn replayed_create(base: &str) {
    let http = flow::client();
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let (email, password) = (format!("idem.{tag}@example.com"), format!("canary-idem-{tag}"));
    let res = http
        .post(format!("{base}/auth/register"))
        .json(&json!({"email": email, "password": password, "name": "Ida Lovelace"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let access = flow::login_tokens(&http, base, &email, &password).await.access;
    let key = format!("create-{tag}");
    let create = |name: &'static str| {
        http.post(format!("{base}/api/projects"))
            .bearer_auth(&access)
            .header("Idempotency-Key", &key)
            .json(&json!({"name": name}))
            .send()
    };
    let first = create("Once").await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let location = first.headers()["location"].clone();
    let first: Value = first.json().await.unwrap();
    let again = create("Once").await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["location"], location);
    assert_eq!(again.json::<Value>().await.unwrap(), first, "the first answer, replayed");
    flow::problem(create("Other").await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY).await;
    let list: Value =
        http.get(format!("{base}/api/projects")).bearer_auth(&access).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "one project: {list}");
}
