//! docs/SECURITY.md J for attachments beyond the upload itself: the malware scan with quarantine
//! (UP-5) against a real clamd with an offline signature of a test file, on both database
//! backends; presigned, short-lived downloads (UP-3) and the private, encrypted bucket (UP-4) on
//! moto; and the attachment's stable `ETag` with `If-Match` on delete.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use api::projects::ProjectRole;
use api::users::Role;
use axum::http::{Method, StatusCode, header};
use platform::clock::SystemClock;
use platform::objects::{ObjectPath, ObjectStoreExt};
use projects::ProjectsService;
use projects::scanner::ClamdScanner;
use projects::service::ScanPass;
use serde_json::json;
use test_support::{TcpProxy, TestClamd, wait};
use uuid::Uuid;

use crate::attachments::{Env, LIMIT, event_types, id_of, png};
use crate::http::identity;

/// Generates one test per database backend, each with a local-folder object store.
macro_rules! scan_suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::attachments::Env::local(crate::Backend::sqlite().await)).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::attachments::Env::local(crate::Backend::postgres().await)).await;
                }
            )*
        }
    };
}

scan_suite!(
    clean_files_become_available_and_signed_ones_are_rejected,
    an_unreachable_scanner_leaves_files_quarantined_until_it_is_back,
    the_etag_is_the_id_and_deletes_honour_if_match,
    files_past_the_scanners_limit_are_rejected_not_released,
);

/// A text file whose MD5 the test clamd knows as malware (an EICAR-like test string).
const SIGNED: &[u8] = b"TRELLIS-MALWARE-TEST-FILE: not harmful, flagged by the tests' own signature\n";
const CLEAN: &[u8] = b"meeting notes: nothing to see here\n";

async fn clamd() -> TestClamd {
    TestClamd::start(&[("trellis-test-malware.txt", SIGNED)]).await
}

/// A scanner with a generous timeout per step: a busy clamd is slow, not absent. (An unreachable
/// one, behind a cut proxy, fails at once whatever the timeout.)
fn scanner(url: &str) -> Arc<ClamdScanner> {
    Arc::new(ClamdScanner::new(url, LIMIT).unwrap().with_timeout(wait::patience(Duration::from_secs(60))))
}

async fn status_of(env: &Env, who: &platform::identity::Identity, task: Uuid, id: Uuid) -> String {
    let list = env.call(who, Method::GET, &format!("/api/tasks/{task}/attachments"), None).await;
    let items = list.json["items"].as_array().unwrap();
    let item = items.iter().find(|a| a["id"] == json!(id)).unwrap();
    format!("{}/{}", item["status"].as_str().unwrap(), item["scan"].as_str().unwrap())
}

async fn clean_files_become_available_and_signed_ones_are_rejected(env: Env) {
    let clamd = clamd().await;
    env.svc.connect_scanner(scanner(&clamd.url())).unwrap();
    let alice = identity(Role::User);
    let (pid, tid) = env.task(&alice).await;

    let clean = env.upload(&alice, tid, "notes.txt", CLEAN).await;
    assert_eq!(clean.status, StatusCode::CREATED, "{}", clean.json);
    assert_eq!((clean.json["status"].as_str(), clean.json["scan"].as_str()), (Some("quarantined"), Some("pending")));
    let clean_id = id_of(&clean);
    let bad_id = id_of(&env.upload(&alice, tid, "invoice.txt", SIGNED).await);
    assert_eq!(env.keys().await.len(), 2);

    // Quarantined: nobody downloads it yet.
    for id in [clean_id, bad_id] {
        let a = env.call(&alice, Method::GET, &format!("/api/attachments/{id}"), None).await;
        a.problem(StatusCode::CONFLICT);
        assert!(a.json["detail"].as_str().unwrap().contains("being scanned"), "{}", a.json);
    }

    assert_eq!(env.svc.scan_quarantined().await, Ok(ScanPass { available: 1, rejected: 1, waiting: 0 }));
    assert_eq!(status_of(&env, &alice, tid, clean_id).await, "available/clean");
    assert_eq!(status_of(&env, &alice, tid, bad_id).await, "rejected/infected");

    let down = env.call(&alice, Method::GET, &format!("/api/attachments/{clean_id}"), None).await;
    assert_eq!(down.status, StatusCode::OK);
    assert_eq!(down.bytes.as_ref(), CLEAN);
    // The rejected file's bytes are gone; its download says why.
    assert_eq!(env.keys().await, vec![format!("attachments/{pid}/{clean_id}")]);
    let a = env.call(&alice, Method::GET, &format!("/api/attachments/{bad_id}"), None).await;
    a.problem(StatusCode::CONFLICT);
    assert!(a.json["detail"].as_str().unwrap().contains("rejected"), "{}", a.json);

    let outbox = env.b.outbox().await;
    let available = outbox.iter().find(|r| r.event_type == "attachment.available").unwrap();
    assert_eq!((available.aggregate_id, available.actor_id), (clean_id, None));
    assert_eq!(available.data["task_id"], json!(tid));
    let rejected = outbox.iter().find(|r| r.event_type == "attachment.rejected").unwrap();
    assert_eq!(rejected.aggregate_id, bad_id);
    assert!(rejected.data["threat"].as_str().unwrap().contains("trellis-test-malware"), "{}", rejected.data);

    // A second pass finds nothing to do and writes nothing.
    let events = outbox.len();
    assert_eq!(env.svc.scan_quarantined().await, Ok(ScanPass::default()));
    assert_eq!(env.b.outbox().await.len(), events);
    // The sweep does not keep objects for rejected rows, and a rejected row can be deleted.
    assert_eq!(env.svc.sweep_attachments(None).await, Ok(0));
    let del = env.call(&alice, Method::DELETE, &format!("/api/attachments/{bad_id}"), None).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
}

async fn an_unreachable_scanner_leaves_files_quarantined_until_it_is_back(env: Env) {
    let clamd = clamd().await;
    let proxy = TcpProxy::start(&clamd.addr().to_string()).await;
    env.svc.connect_scanner(scanner(&format!("tcp://{}", proxy.addr()))).unwrap();
    let alice = identity(Role::User);
    let (_, tid) = env.task(&alice).await;

    proxy.cut();
    let first = id_of(&env.upload(&alice, tid, "first.txt", CLEAN).await);
    let second = id_of(&env.upload(&alice, tid, "second.png", &png(2000)).await);
    assert_eq!(env.svc.scan_quarantined().await, Ok(ScanPass { available: 0, rejected: 0, waiting: 2 }));
    assert_eq!(status_of(&env, &alice, tid, first).await, "quarantined/pending");
    env.call(&alice, Method::GET, &format!("/api/attachments/{second}"), None).await.problem(StatusCode::CONFLICT);
    assert!(!event_types(&env.b.outbox().await).contains(&"attachment.available"));

    // clamd is back and the service restarts: its scanner takes the quarantined rows at start,
    // then each new upload at once (the retry interval is far away).
    proxy.restore();
    let restarted = Arc::new(ProjectsService::new(Arc::clone(&env.b.store), Arc::new(SystemClock), None));
    restarted.connect_objects(env.objects.clone(), LIMIT);
    restarted.connect_scanner(scanner(&format!("tcp://{}", proxy.addr()))).unwrap();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(restarted.clone().run_attachment_scanner(Duration::from_secs(3600), stop_rx));
    wait_until(&env, &alice, tid, first, "available/clean").await;
    wait_until(&env, &alice, tid, second, "available/clean").await;

    let router = projects::router(restarted.clone());
    let env = Env { router, svc: restarted, ..env };
    let third = id_of(&env.upload(&alice, tid, "third.txt", SIGNED).await);
    wait_until(&env, &alice, tid, third, "rejected/infected").await;
    let down = env.call(&alice, Method::GET, &format!("/api/attachments/{first}"), None).await;
    assert_eq!(down.bytes.as_ref(), CLEAN);

    stop.send(true).unwrap();
    let limit = wait::patience(Duration::from_secs(60));
    tokio::time::timeout(limit, worker)
        .await
        .unwrap_or_else(|_| panic!("the scanner worker did not stop within {limit:?} of being told to"))
        .unwrap();
}

async fn files_past_the_scanners_limit_are_rejected_not_released(env: Env) {
    let clamd = clamd().await;
    let small = ClamdScanner::new(&clamd.url(), 16).unwrap();
    env.svc.connect_scanner(Arc::new(small)).unwrap();
    let alice = identity(Role::User);
    let (_, tid) = env.task(&alice).await;
    let id = id_of(&env.upload(&alice, tid, "long.txt", CLEAN).await);
    assert_eq!(env.svc.scan_quarantined().await, Ok(ScanPass { available: 0, rejected: 1, waiting: 0 }));
    assert_eq!(status_of(&env, &alice, tid, id).await, "rejected/infected");
    let rejected = env.b.outbox().await.into_iter().find(|r| r.event_type == "attachment.rejected").unwrap();
    assert!(rejected.data["threat"].as_str().unwrap().starts_with("unscannable"), "{}", rejected.data);
    assert!(env.keys().await.is_empty());
}

/// Waits until the attachment's `status/scan` is `want` (the scanner runs on its own task).
async fn wait_until(env: &Env, who: &platform::identity::Identity, task: Uuid, id: Uuid, want: &str) {
    let what = format!("attachment {id} to be {want}");
    wait::until(&what, || async { status_of(env, who, task, id).await == want }).await;
}

async fn the_etag_is_the_id_and_deletes_honour_if_match(env: Env) {
    let alice = identity(Role::User);
    let (_, tid) = env.task(&alice).await;
    let up = env.upload(&alice, tid, "a.png", &png(100)).await;
    let id = id_of(&up);
    let tag = format!("\"{id}\"");
    assert_eq!(up.header(header::ETAG), tag);
    let down = env.call(&alice, Method::GET, &format!("/api/attachments/{id}"), None).await;
    assert_eq!(down.header(header::ETAG), tag);

    let other = id_of(&env.upload(&alice, tid, "b.png", &png(100)).await);
    let delete = |t: String| {
        axum::http::Request::builder()
            .method(Method::DELETE)
            .uri(format!("/api/attachments/{id}"))
            .header(header::IF_MATCH, t)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    env.send(Some(&alice), delete(format!("\"{other}\""))).await.problem(StatusCode::PRECONDITION_FAILED);
    assert_eq!(env.keys().await.len(), 2, "nothing deleted");
    assert_eq!(env.send(Some(&alice), delete(format!("W/\"x\", {tag}"))).await.status, StatusCode::NO_CONTENT);
    assert_eq!(env.keys().await.len(), 1);
}

/// S3 downloads are `303` redirects to presigned GETs (docs/SECURITY.md UP-3), after the same checks:
/// a stranger gets 404 and no URL, a quarantined file 409 and no URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_downloads_redirect_to_short_lived_presigned_urls() {
    let env = Env::s3(crate::Backend::postgres().await).await;
    let bucket = env.bucket.as_ref().unwrap();
    let (_, signer) = platform::objects::s3_presigning(&bucket.location()).unwrap();
    env.svc.presign_downloads(signer.clone(), Duration::from_secs(300)).unwrap();
    assert!(env.svc.presign_downloads(signer, Duration::from_secs(301)).is_err(), "at most five minutes");
    let alice = identity(Role::User);
    let (pid, tid) = env.task(&alice).await;
    let content = png(5000);
    let id = id_of(&env.upload(&alice, tid, "r\u{e9}sum\u{e9}.png", &content).await);

    let a = env.call(&alice, Method::GET, &format!("/api/attachments/{id}"), None).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.header(header::ETAG), format!("\"{id}\""));
    assert_eq!(a.header(header::CACHE_CONTROL), "private, no-store");
    let url = reqwest::Url::parse(a.header(header::LOCATION)).unwrap();
    assert!(url.as_str().starts_with(&format!("{}/{}/attachments/{pid}/{id}?", bucket.endpoint, bucket.bucket)));
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(query["X-Amz-Expires"], "300");
    assert!(query.contains_key("X-Amz-Signature"));
    assert_eq!(query["response-content-type"], "image/png");
    assert_eq!(
        query["response-content-disposition"],
        "attachment; filename=\"r_sum_.png\"; filename*=UTF-8''r%C3%A9sum%C3%A9.png"
    );
    let got = reqwest::get(url.clone()).await.unwrap();
    assert_eq!(got.status(), reqwest::StatusCode::OK);
    // moto ignores the URL's `response-content-*` overrides (S3 honours them); the object's
    // own metadata, set at upload, gives the same headers.
    let served = |h: &str| got.headers().get(h).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert_eq!(served("content-type"), "image/png");
    assert_eq!(served("content-disposition"), query["response-content-disposition"]);
    assert_eq!(served("cache-control"), "private, no-store");
    assert_eq!(got.bytes().await.unwrap().as_ref(), content.as_slice());

    // The same URL as JSON, for a page that cannot follow a redirect across origins.
    let link = env.call(&alice, Method::GET, &format!("/api/attachments/{id}/link"), None).await;
    assert_eq!(link.status, StatusCode::OK);
    assert_eq!(link.header(header::CACHE_CONTROL), "private, no-store");
    assert_eq!(link.json["expires_in"], 300);
    let linked = reqwest::Url::parse(link.json["url"].as_str().unwrap()).unwrap();
    assert_eq!(linked.path(), url.path());
    let got = reqwest::get(linked).await.unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), content.as_slice());

    // A URL cannot be minted by someone who may not see the file.
    let bob = identity(Role::User);
    let a = env.call(&bob, Method::GET, &format!("/api/attachments/{id}"), None).await;
    a.problem(StatusCode::NOT_FOUND);
    assert!(a.headers.get(header::LOCATION).is_none());
    env.call(&bob, Method::GET, &format!("/api/attachments/{id}/link"), None).await.problem(StatusCode::NOT_FOUND);
    env.b.add_member(pid, bob.user_id, ProjectRole::Viewer).await;
    let a = env.call(&bob, Method::GET, &format!("/api/attachments/{id}"), None).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);

    // A configurable life, for short ones: the signed query says when it ends.
    let short = Arc::new(ProjectsService::new(Arc::clone(&env.b.store), Arc::new(SystemClock), None));
    short.connect_objects(env.objects.clone(), LIMIT);
    let (_, signer) = platform::objects::s3_presigning(&bucket.location()).unwrap();
    short.presign_downloads(signer, Duration::from_secs(1)).unwrap();
    let d = short.download_attachment(projects::service::Actor::from(&alice), id).await.unwrap();
    let projects::service::DownloadBody::Redirect(url) = d.body else { panic!("expected a redirect") };
    let url = reqwest::Url::parse(&url).unwrap();
    assert!(url.query_pairs().any(|(k, v)| k == "X-Amz-Expires" && v == "1"), "{url}");

    // The object is stored with server-side encryption (UP-4).
    let head = reqwest::Client::new()
        .head(format!("{}/{}/attachments/{pid}/{id}", bucket.endpoint, bucket.bucket))
        .send()
        .await
        .unwrap();
    assert_eq!(head.headers().get("x-amz-server-side-encryption").and_then(|v| v.to_str().ok()), Some("AES256"));
    let path = ObjectPath::from(format!("attachments/{pid}/{id}"));
    assert!(env.objects.head(&path).await.is_ok());
}

/// The OpenAPI document says what the routes now answer.
#[test]
fn the_openapi_document_describes_scans_redirects_and_if_match() {
    let doc = serde_json::to_value(projects::http::openapi()).unwrap();
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["AttachmentStatus"]["enum"], json!(["quarantined", "available", "rejected"]));
    assert!(schemas["Attachment"]["required"].as_array().unwrap().contains(&json!("scan")));
    let download = &doc["paths"]["/api/attachments/{id}"]["get"]["responses"];
    assert!(download.get("303").is_some() && download.get("409").is_some(), "{download}");
    let delete = &doc["paths"]["/api/attachments/{id}"]["delete"];
    assert!(delete["parameters"].as_array().unwrap().iter().any(|p| p["name"] == "If-Match"));
    assert!(delete["responses"].get("412").is_some());
}
