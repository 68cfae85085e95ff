//! Attachments through the real binary (docs/SECURITY.md UP-3, UP-5): without clamd a file is
//! available at once and says it was never scanned, and is streamed; with clamd (a `TestClamd`)
//! it is quarantined until scanned, a signed file is rejected, and with S3 storage a download is
//! a `303` to a presigned URL that serves the bytes.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::flow;

/// A file the test clamd's only signature flags (`TestClamd::start(&[("malware.txt", SIGNED)])`).
pub const SIGNED: &[u8] = b"TRELLIS-E2E-MALWARE-TEST-FILE: harmless, flagged by the test's own signature\n";
const CLEAN: &[u8] = b"minutes of the meeting\n";
const BOUNDARY: &str = "e2e-attachment-boundary";

/// What the deployment is expected to do with files.
pub struct Expect {
    /// With clamd: quarantined, then available or rejected. Without: available at once with
    /// `scan: none`.
    pub scanned: bool,
    /// With S3: downloads are `303` to presigned URLs. With the local folder: streamed.
    pub presigned: bool,
}

async fn upload(http: &Client, base: &str, access: &str, task: &str, name: &str, bytes: &[u8]) -> Value {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: text/plain\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let res = http
        .post(format!("{base}/api/tasks/{task}/attachments"))
        .bearer_auth(access)
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let id: Value = res.json().await.unwrap();
    id
}

/// Waits until the attachment has status `want` (the scan runs off the request path).
async fn wait_for_status(http: &Client, base: &str, access: &str, task: &str, id: &Value, want: &str) {
    let what = format!("attachment {} of task {task} to be {want}", id["id"]);
    test_support::wait::until(&what, || async move {
        let list: Value = http
            .get(format!("{base}/api/tasks/{task}/attachments"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let item = list["items"].as_array().unwrap().iter().find(|a| a["id"] == id["id"]).cloned();
        let item = item.unwrap_or_else(|| panic!("attachment {} is not listed: {list}", id["id"]));
        // Quarantined is the only state before the scan's verdict.
        assert!(item["status"] == want || item["status"] == "quarantined", "expected {want}: {item}");
        item["status"] == want
    })
    .await;
}

pub async fn files(base: &str, expect: Expect) {
    let http = flow::client();
    let tag = Uuid::now_v7().simple().to_string();
    let (email, password) = (format!("files.{tag}@example.com"), format!("canary-ledger-{tag}"));
    let res = http
        .post(format!("{base}/auth/register"))
        .json(&json!({"email": email, "password": password, "name": "Ada Byron"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED, "{}", res.text().await.unwrap());
    let access = flow::login_tokens(&http, base, &email, &password).await.access;
    let post = |path: String, body: Value| http.post(format!("{base}{path}")).bearer_auth(&access).json(&body).send();
    let project: Value = post("/api/projects".into(), json!({"name": "Files"})).await.unwrap().json().await.unwrap();
    let task: Value = post(format!("/api/projects/{}/tasks", project["id"].as_str().unwrap()), json!({"title": "T"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let task = task["id"].as_str().unwrap();
    let clean = upload(&http, base, &access, task, "minutes.txt", CLEAN).await;
    let download = |id: &Value| {
        let no_redirects = Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        no_redirects.get(format!("{base}/api/attachments/{}", id["id"].as_str().unwrap())).bearer_auth(&access).send()
    };
    if expect.scanned {
        assert_eq!((clean["status"].as_str(), clean["scan"].as_str()), (Some("quarantined"), Some("pending")));
        let bad = upload(&http, base, &access, task, "malware.txt", SIGNED).await;
        wait_for_status(&http, base, &access, task, &clean, "available").await;
        wait_for_status(&http, base, &access, task, &bad, "rejected").await;
        flow::problem(download(&bad).await.unwrap(), StatusCode::CONFLICT).await;
    } else {
        assert_eq!((clean["status"].as_str(), clean["scan"].as_str()), (Some("available"), Some("none")));
    }
    let res = download(&clean).await.unwrap();
    let res = if expect.presigned {
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let url = res.headers()["location"].to_str().unwrap().to_string();
        assert!(url.contains("X-Amz-Signature=") && url.contains("X-Amz-Expires="), "{url}");
        http.get(url).send().await.unwrap()
    } else {
        res
    };
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap().as_ref(), CLEAN);
}
