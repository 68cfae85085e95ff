//! The audit log through the real binary, all-in-one: a project's `project.created` reaches the
//! hash-chained log (outbox → relay → bus → worker), admins read it and non-admins get 403, and
//! `trellis audit verify` exits 0, then 1 naming the entry once a row is altered in the database.

use std::time::{Duration, Instant};

use platform::db::{Database, SqliteDb};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::flow;
use crate::support::{Trellis, run};

const ADMIN: (&str, &str) = ("root@example.com", "canary granite harbour lighthouse keeper");

#[tokio::test]
async fn all_in_one_audit_log_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("TRELLIS_ADMIN_EMAIL", ADMIN.0.to_string()), ("TRELLIS_ADMIN_PASSWORD", ADMIN.1.to_string())];
    let app = Trellis::start("all-in-one", dir.path(), &[], &env).await;
    let http = flow::client();
    let admin = flow::login_tokens(&http, &app.base, ADMIN.0, ADMIN.1).await.access;
    let res = http
        .post(format!("{}/api/projects", app.base))
        .bearer_auth(&admin)
        .json(&json!({"name": "Audited", "description": "secret plans"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let project: Value = res.json().await.unwrap();

    let url = format!("{}/api/admin/audit-log?action=project.created", app.base);
    let deadline = Instant::now() + Duration::from_secs(20);
    let entry = loop {
        let res = http.get(&url).bearer_auth(&admin).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let page: Value = res.json().await.unwrap();
        if let Some(e) = page["items"].as_array().unwrap().iter().find(|e| e["aggregate_id"] == project["id"]) {
            break e.clone();
        }
        assert!(Instant::now() < deadline, "project.created never reached the audit log: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(entry["action"], "project.created");
    assert!(!entry.to_string().contains("secret plans"), "user-written text stays out of the log: {entry}");
    let res = http.get(format!("{}/api/admin/audit-log/verify", app.base)).bearer_auth(&admin).send().await.unwrap();
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["ok"], true, "{v}");

    // A standard user is refused by the role gate.
    let user = json!({"email": "ada@example.com", "password": "correct horse battery staple twelve", "name": "Ada"});
    let res = http.post(format!("{}/auth/register", app.base)).json(&user).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let token = flow::login_tokens(&http, &app.base, "ada@example.com", "correct horse battery staple twelve").await;
    for path in ["/api/admin/audit-log", "/api/admin/audit-log/verify"] {
        let res = http.get(format!("{}{path}", app.base)).bearer_auth(&token.access).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let (code, log) = app.terminate().await;
    assert_eq!(code, Some(0), "{log}");

    let (code, out, err) = run(dir.path(), &["audit", "verify"], &[]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("ok: "), "{out}");

    let seq = entry["seq"].as_i64().unwrap();
    let db = Database::Sqlite(SqliteDb::open(&dir.path().join("data/trellis.db")).await.unwrap());
    if let Database::Sqlite(db) = &db {
        db.write(move |tx| {
            tx.execute("UPDATE audit_log SET action = 'project.deleted' WHERE seq = ?1", [seq])
                .map_err(platform::db::sqlite::map_err)
        })
        .await
        .unwrap();
    }
    drop(db);
    let (code, out, err) = run(dir.path(), &["audit", "verify"], &[]).await;
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains(&format!("broken at seq {seq} ")) && out.contains("hash_mismatch"), "{out}");
}
