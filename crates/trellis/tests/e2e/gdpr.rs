//! Personal data through the real binary: preferences, email change, search, the export that
//! must name every table holding user data, erasure across services, a database dump free of
//! every test user's email and name, and `trellis keys rotate-pii` against a running deployment.

use std::path::Path;

use platform::db::Database;
use reqwest::{Client, StatusCode, header};
use serde_json::{Value, json};

use crate::flow::{self, problem};
use crate::support::run;

/// Tables that hold nothing about any user, or only an index of exported tables, each with the reason.
const NO_USER_DATA: &[(&str, &str)] = &[
    ("schema_migrations", "migration bookkeeping"),
    ("sqlite_sequence", "SQLite's AUTOINCREMENT counters"),
    ("worker_processed_events", "event ids the worker has handled"),
    // Events carry ids only (EN-5); the log keeps a pseudonymous trace after erasure (GD-2).
    ("audit_log", "hash-chained audit trail: event, actor and aggregate ids only, no names or emails"),
    // Which event mailed which user id, for exactly-once notifications (worker::notify).
    ("worker_notifications", "notification claims: event, recipient, task or comment ids only, no address or text"),
    // The next event number of each stream (a project, else the aggregate: a user id for auth
    // events), for live updates' ordering and replay.
    ("outbox_streams", "event counters per stream: a project or aggregate id and a number"),
    ("audit_archives", "where archived audit entries are in object storage: seqs, hashes, object keys"),
    ("audit_archive_guard", "SQLite: the flag that lets the archive delete audit entries, empty outside it"),
    ("job_leases", "which process runs each lifecycle job, its last run and item counts"),
    ("auth_signing_keys", "the service's own signing keys"),
    // SQLite's search index (projects): document ids, and the FTS5 index of text that is exported
    // from its own table and leaves the index with its row (triggers, same transaction).
    ("search_docs", "search index: ids of projects, tasks and comments"),
    ("search_fts", "search index (FTS5, external content): no text of its own"),
    ("search_fts_data", "search index (FTS5 shadow table)"),
    ("search_fts_idx", "search index (FTS5 shadow table)"),
    ("search_fts_docsize", "search index (FTS5 shadow table)"),
    ("search_fts_config", "search index (FTS5 shadow table)"),
    // Security notices waiting for the mail server (platform::mail::MailQueue): sealed with
    // AES-GCM, deleted once delivered or given up (three days); transient, so not exported.
    ("mail_queue", "mails waiting for delivery, sealed; deleted once sent or given up"),
];

/// The names and emails every test user of `personal_data` had, to look for in dumps.
pub struct Canaries(pub Vec<String>);

fn http() -> Client {
    Client::builder().timeout(crate::support::request_timeout()).build().unwrap()
}

async fn register(http: &Client, base: &str, email: &str, name: &str, password: &str) -> String {
    let body = json!({ "email": email, "password": password, "name": name });
    let res = http.post(format!("{base}/auth/register")).json(&body).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.unwrap();
    v["user"]["id"].as_str().unwrap().to_string()
}

async fn json_of(res: reqwest::Response, status: StatusCode) -> Value {
    let (got, url) = (res.status(), res.url().clone());
    let body = res.text().await.unwrap_or_default();
    assert_eq!(got, status, "{url}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Every table of the deployment's database.
pub async fn tables(db: &Database) -> Vec<String> {
    match db {
        Database::Sqlite(db) => db
            .read(|c| {
                let mut stmt = c.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")?;
                let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await
            .unwrap(),
        Database::Postgres(db) => {
            let client = db.client().await.unwrap();
            let rows = client
                .query(
                    "SELECT table_name::text FROM information_schema.tables \
                     WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1",
                    &[],
                )
                .await
                .unwrap();
            rows.iter().map(|r| r.get(0)).collect()
        }
    }
}

/// The flow, through the gateway at `base`, as two users and the administrator.
pub async fn personal_data(base: &str, admin: (&str, &str), db: &Database, mail_dir: &Path) -> Canaries {
    let http = http();
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let tag = &tag[tag.len() - 10..];
    let (zeph_name, zeph_email) = ("Zephyrine Quillfeather", format!("zephyrine.{tag}@canary.example"));
    let (bart_name, bart_email) = ("Bartholomew Wimbleton", format!("bartholomew.{tag}@canary.example"));
    let password = format!("canary-pii-password-{tag}");
    let zeph = register(&http, base, &zeph_email, zeph_name, &password).await;
    let bart = register(&http, base, &bart_email, bart_name, &password).await;
    let za = flow::login_tokens(&http, base, &zeph_email, &password).await.access;
    let ba = flow::login_tokens(&http, base, &bart_email, &password).await.access;
    let aa = flow::login_tokens(&http, base, admin.0, admin.1).await.access;
    let url = |p: &str| format!("{base}{p}");

    // Preferences: validated (every field named), private, kept.
    let prefs = json!({ "theme": "dark", "locale": "fr-ca", "timezone": "Europe/Paris",
                        "notifications": { "mentioned": false } });
    let saved = json_of(
        http.put(url(&format!("/api/users/{zeph}/preferences"))).bearer_auth(&za).json(&prefs).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!((saved["locale"].as_str(), saved["notifications"]["mentioned"].as_bool()), (Some("fr-CA"), Some(false)));
    let read = http.get(url(&format!("/api/users/{zeph}/preferences"))).bearer_auth(&za).send().await.unwrap();
    assert_eq!(json_of(read, StatusCode::OK).await, saved);
    let bad = json!({ "theme": "neon", "timezone": "Mars/Olympus", "extra": 1 });
    let res =
        http.put(url(&format!("/api/users/{zeph}/preferences"))).bearer_auth(&za).json(&bad).send().await.unwrap();
    assert_eq!(res.headers()[header::CONTENT_TYPE], "application/problem+json");
    let body = problem(res, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["errors"].as_array().unwrap().len(), 3, "{body}");
    let res = http.get(url(&format!("/api/users/{zeph}/preferences"))).bearer_auth(&ba).send().await.unwrap();
    problem(res, StatusCode::FORBIDDEN).await;

    // A new email: asked for with the password (step-up), applied only once the link mailed to
    // the new address is followed (verified then); the old one no longer signs in.
    let new_email = format!("zephyrine.new.{tag}@canary.example");
    let res = http
        .patch(url(&format!("/api/users/{zeph}")))
        .bearer_auth(&za)
        .json(&json!({ "email": new_email.to_uppercase(), "current_password": password }))
        .send()
        .await
        .unwrap();
    let pending = json_of(res, StatusCode::ACCEPTED).await;
    assert_eq!(pending["email"].as_str(), Some(zeph_email.as_str()), "pending until the link is followed");
    let mail = crate::email::mails_to(mail_dir, &new_email, "Confirm the new email address", 1).await.remove(0);
    let marker = "/confirm-email#token=";
    let line = mail.body.lines().find(|l| l.contains(marker)).expect("the link to the new address");
    let token = line[line.find(marker).unwrap() + marker.len()..].trim().to_string();
    let res = http.post(url("/auth/email/change/confirm")).json(&json!({ "token": token })).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let changed = json_of(http.get(url("/api/users/me")).bearer_auth(&za).send().await.unwrap(), StatusCode::OK).await;
    assert_eq!(
        (changed["email"].as_str(), changed["email_verified"].as_bool()),
        (Some(new_email.as_str()), Some(true))
    );
    assert_eq!(flow::post_login(&http, base, &zeph_email, &password).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    flow::login_tokens(&http, base, &new_email, &password).await;

    // Projects for each: Zephyrine shares hers with Bartholomew, who also owns one alone.
    let project = |token: String, name: &'static str| {
        let http = http.clone();
        let url = url("/api/projects");
        async move {
            let res = http.post(url).bearer_auth(token).json(&json!({ "name": name })).send().await.unwrap();
            json_of(res, StatusCode::CREATED).await["id"].as_str().unwrap().to_string()
        }
    };
    let garden = project(za.clone(), "Canary garden").await;
    let solo = project(ba.clone(), "Bartholomew's own").await;
    for (token, p) in [(&za, &garden), (&ba, &solo)] {
        let res = http
            .post(url(&format!("/api/projects/{p}/tasks")))
            .bearer_auth(token)
            .json(&json!({ "title": "Water the plants" }))
            .send()
            .await
            .unwrap();
        json_of(res, StatusCode::CREATED).await;
    }

    // Search: admins see whole users, others `{id, name}` of active users; bad input is named.
    let found =
        json_of(http.get(url("/api/users?q=zeph")).bearer_auth(&aa).send().await.unwrap(), StatusCode::OK).await;
    assert_eq!(found["items"][0]["id"], zeph.as_str());
    assert_eq!(found["items"][0]["email"], new_email.as_str());
    // A non-admin finds only people who share a project with them, by name only (docs/SECURITY.md).
    let search = |q: String| {
        let (http, ba) = (http.clone(), ba.clone());
        let url = url(&format!("/api/users?q={q}"));
        async move { json_of(http.get(url).bearer_auth(&ba).send().await.unwrap(), StatusCode::OK).await }
    };
    assert_eq!(search("zephyrine%20quill".into()).await["items"], json!([]), "no project in common yet");
    let res = http
        .post(url(&format!("/api/projects/{garden}/members")))
        .bearer_auth(&za)
        .json(&json!({ "user_id": bart, "role": "viewer" }))
        .send()
        .await
        .unwrap();
    json_of(res, StatusCode::CREATED).await;
    let found = search("zephyrine%20quill".into()).await;
    assert_eq!(found["items"], json!([{ "id": zeph, "name": zeph_name }]), "users see {{id, name}}");
    let found = search(format!("zephyrine%20{}", &tag[..4])).await;
    assert_eq!(found["items"], json!([]), "email text never matches for a non-admin");
    for q in ["/api/users?q=z", "/api/users?sort=name", "/api/users?limit=500"] {
        problem(http.get(url(q)).bearer_auth(&aa).send().await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    problem(http.get(url("/api/users?status=active")).bearer_auth(&ba).send().await.unwrap(), StatusCode::FORBIDDEN)
        .await;

    // The export: one document, every service, every table that can hold user data.
    let res = http.get(url(&format!("/api/users/{zeph}/export"))).bearer_auth(&za).send().await.unwrap();
    assert_eq!(problem(res, StatusCode::FORBIDDEN).await["code"], "step_up_required", "a GET carries no proof");
    let res = http
        .post(url(&format!("/api/users/{zeph}/export")))
        .bearer_auth(&za)
        .json(&json!({ "current_password": password }))
        .send()
        .await
        .unwrap();
    assert!(res.headers()[header::CONTENT_DISPOSITION].to_str().unwrap().starts_with("attachment"));
    let export = json_of(res, StatusCode::OK).await;
    assert_eq!(export["user"]["email"], new_email.as_str());
    assert_eq!(export["preferences"]["timezone"], "Europe/Paris");
    let services = export["services"].as_object().unwrap();
    let exported: Vec<&str> =
        services.values().flat_map(|s| s["tables"].as_object().unwrap().keys().map(String::as_str)).collect();
    for table in tables(db).await {
        let exempt = NO_USER_DATA.iter().any(|(t, _)| *t == table);
        assert!(
            exempt || exported.contains(&table.as_str()),
            "table {table} is in neither the export nor the list of tables without user data"
        );
    }
    let tables_of =
        |service: &str, table: &str| export["services"][service]["tables"][table].as_array().unwrap().clone();
    assert!(!tables_of("auth", "auth_sessions").is_empty(), "sessions are exported");
    assert!(tables_of("projects", "projects").iter().any(|p| p["name"] == "Canary garden"));
    assert!(tables_of("projects", "tasks").iter().any(|t| t["title"] == "Water the plants"));
    assert!(tables_of("users", "outbox").iter().any(|e| e["type"] == "user.created"));
    assert!(!export.to_string().contains(&bart_email), "nothing of another user");
    let res = http
        .post(url(&format!("/api/users/{zeph}/export")))
        .bearer_auth(&ba)
        .json(&json!({ "current_password": password }))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::FORBIDDEN).await;

    // Bartholomew erases his account.
    let res = http
        .delete(url(&format!("/api/users/{bart}")))
        .bearer_auth(&ba)
        .json(&json!({ "password": "not my password at all" }))
        .send()
        .await
        .unwrap();
    problem(res, StatusCode::UNAUTHORIZED).await;
    let res = http.delete(url(&format!("/api/users/{bart}"))).bearer_auth(&ba).send().await.unwrap();
    assert_eq!(problem(res, StatusCode::FORBIDDEN).await["code"], "step_up_required");
    let res = http
        .delete(url(&format!("/api/users/{bart}")))
        .bearer_auth(&ba)
        .json(&json!({ "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(flow::me_status(&http, base, &ba).await, StatusCode::UNAUTHORIZED, "his sessions ended at once");
    let login = flow::post_login(&http, base, &bart_email, &password).await.unwrap();
    assert_eq!(login.status(), StatusCode::UNAUTHORIZED);
    let gone =
        json_of(http.get(url(&format!("/api/users/{bart}"))).bearer_auth(&aa).send().await.unwrap(), StatusCode::OK)
            .await;
    assert_eq!((gone["name"].as_str(), gone["status"].as_str()), (Some("Deleted user"), Some("deleted")));
    let res = http.get(url(&format!("/api/projects/{solo}"))).bearer_auth(&aa).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "the project he alone owned went with him");
    let res = http.get(url(&format!("/api/projects/{garden}"))).bearer_auth(&za).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "others' projects stay");
    let again = http
        .delete(url(&format!("/api/users/{bart}")))
        .bearer_auth(&aa)
        .json(&json!({ "current_password": admin.1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NO_CONTENT, "erasing again changes nothing");

    Canaries(vec![
        zeph_name.into(),
        "Quillfeather".into(),
        zeph_email,
        new_email,
        bart_name.into(),
        "Wimbleton".into(),
        bart_email,
    ])
}

/// Fails when any canary appears in `dump` (case-insensitively), or when it is too short to be
/// what it claims.
pub fn assert_absent(dump: &str, canaries: &Canaries, what: &str) {
    assert!(dump.len() > 1000, "{what} looks empty ({} bytes)", dump.len());
    let lower = dump.to_lowercase();
    for c in &canaries.0 {
        assert!(!lower.contains(&c.to_lowercase()), "{what} holds {c:?} in plaintext");
    }
}

pub fn sqlite_dump(db: &Path) -> String {
    let out = std::process::Command::new("sqlite3")
        .arg(db)
        .arg(".dump")
        .output()
        .unwrap_or_else(|e| panic!("sqlite3 is required (cargo xtask ci installs it): {e}"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn pg_dump(url: &str) -> String {
    let out = std::process::Command::new("pg_dump")
        .args(["--no-owner", url])
        .output()
        .unwrap_or_else(|e| panic!("pg_dump is required (cargo xtask ci installs postgresql-client): {e}"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `trellis keys rotate-pii` against the data folder of an all-in-one deployment that serves
/// with key-encryption keys 1 and 2: stopped after one batch, run again to the end.
pub async fn rotate_pii(cwd: &Path, env: &[(&str, String)]) -> String {
    let (code, _, err) = run(cwd, &["keys", "rotate-pii", "--batch-size", "1", "--max-batches", "1"], env).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("1 users re-encrypted under personal-data key version 2"), "{err}");
    let left: u64 = err.split("; ").nth(1).and_then(|s| s.split(' ').next()).and_then(|n| n.parse().ok()).unwrap();
    assert!(left > 0, "the first run stopped mid-way: {err}");
    let (code, _, err) = run(cwd, &["keys", "rotate-pii"], env).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains(&format!("{left} users re-encrypted")) && err.contains("0 left"), "{err}");
    assert!(err.contains("can be removed from pii.keys"), "{err}");
    err
}
