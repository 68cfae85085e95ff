//! The audit log through the real binary, all-in-one: a project's `project.created` reaches the
//! hash-chained log (outbox → relay → bus → worker), admins read it and its statistics and
//! non-admins get 403; `trellis audit archive` moves entries to the objects folder, `trellis audit
//! verify` exits 0, then 1 naming the archive whose object was altered, then 1 naming the entry
//! once a row is altered in the database. Distributed ([`distributed`]): the same on PostgreSQL and
//! S3, through the gateway to the worker process.

use std::path::Path;

use platform::db::{Database, SqliteDb};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::flow;
use crate::support::{Trellis, run, wait_for_outbox_consumed};

const ADMIN: (&str, &str) = ("root@example.com", "canary granite harbour lighthouse keeper");

#[tokio::test]
async fn all_in_one_audit_log_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("TRELLIS_ADMIN_EMAIL", ADMIN.0.to_string()),
        ("TRELLIS_ADMIN_PASSWORD", ADMIN.1.to_string()),
        // Admin actions here are about something else than 2FA (that is attack_admin_mfa.rs): a
        // password-only administrator may act.
        ("TRELLIS_AUTH__ADMIN_REQUIRES_MFA", "false".to_string()),
    ];
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

    // Once the worker has handled every event so far (the administrator's sign-up and login, the
    // project), the log and the statistics hold them all.
    let db = Database::connect(&format!("sqlite://{}", dir.path().join("data/trellis.db").display())).await.unwrap();
    let events = wait_for_outbox_consumed(&db).await;
    assert!(events >= 3, "user.created, auth.login_succeeded and project.created at least: {events}");
    drop(db);
    let url = format!("{}/api/admin/audit-log?action=project.created", app.base);
    let res = http.get(&url).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let page: Value = res.json().await.unwrap();
    let entry = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["aggregate_id"] == project["id"])
        .unwrap_or_else(|| panic!("the worker handled project.created, but the audit log does not show it: {page}"))
        .clone();
    assert_eq!(entry["action"], "project.created");
    assert!(!entry.to_string().contains("secret plans"), "user-written text stays out of the log: {entry}");
    let res = http.get(format!("{}/api/admin/audit-log/verify", app.base)).bearer_auth(&admin).send().await.unwrap();
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["ok"], true, "{v}");

    // The statistics count today's project (the gateway routes /api/admin/stats to the worker).
    let res = http.get(format!("{}/api/admin/stats?period=week", app.base)).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let stats: Value = res.json().await.unwrap();
    assert_eq!(stats["buckets"].as_array().unwrap().len(), 12, "{stats}");
    assert_eq!(stats["totals"]["projects_created"], 1, "{stats}");
    assert_eq!(stats["totals"]["signups"], 1, "the bootstrap administrator: {stats}");

    // A standard user is refused by the role gate.
    let user = json!({"email": "ada@example.com", "password": "correct horse battery staple twelve", "name": "Ada"});
    let res = http.post(format!("{}/auth/register", app.base)).json(&user).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let token = flow::login_tokens(&http, &app.base, "ada@example.com", "correct horse battery staple twelve").await;
    for path in ["/api/admin/audit-log", "/api/admin/audit-log/verify", "/api/admin/stats"] {
        let res = http.get(format!("{}{path}", app.base)).bearer_auth(&token.access).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let (code, log) = app.terminate().await;
    assert_eq!(code, Some(0), "{log}");

    let (code, out, err) = run(dir.path(), &["audit", "verify"], &[]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("ok: ") && out.contains("(0 archives)"), "{out}");

    // Everything but the newest entry (at least two, see above) moves to the objects folder, two
    // per object.
    let (code, out, err) = run(dir.path(), &["audit", "archive", "--older-than-days", "0", "--batch", "2"], &[]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    let first = dir.path().join("data/objects/audit/archive/00000000000000000001-00000000000000000002.jsonl.gz");
    assert!(out.contains("archived audit/archive/00000000000000000001-00000000000000000002.jsonl.gz"), "{out}");
    let (code, out, err) = run(dir.path(), &["audit", "verify"], &[]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("ok: ") && !out.contains("(0 archives)"), "{out}");

    // A byte of an archive altered: named.
    let original = std::fs::read(&first).unwrap();
    let mut altered = original.clone();
    altered[original.len() / 2] ^= 1;
    std::fs::write(&first, &altered).unwrap();
    let (code, out, err) = run(dir.path(), &["audit", "verify"], &[]).await;
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains("broken archive audit/archive/00000000000000000001-00000000000000000002")
            && out.contains("sha256_mismatch"),
        "{out}"
    );
    let (code, out, err) = run(dir.path(), &["audit", "verify", "--skip-archives"], &[]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    std::fs::write(&first, &original).unwrap();

    // The entry left in the table altered (the append-only triggers dropped, as an attacker with
    // the file could): named.
    let db = Database::Sqlite(SqliteDb::open(&dir.path().join("data/trellis.db")).await.unwrap());
    if let Database::Sqlite(db) = &db {
        db.write(move |tx| {
            tx.execute_batch(
                "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET action = 'project.deleted' \
                 WHERE seq = (SELECT max(seq) FROM audit_log)",
            )
            .map_err(platform::db::sqlite::map_err)
        })
        .await
        .unwrap();
    }
    drop(db);
    let (code, out, err) = run(dir.path(), &["audit", "verify"], &[]).await;
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("broken at seq ") && out.contains("hash_mismatch"), "{out}");
}

/// The worker process behind the gateway, PostgreSQL and S3: the statistics count the flows'
/// projects; `trellis audit archive` moves all but the newest entry to the bucket; the verify
/// route (worker process) and `trellis audit verify` check the archives and the table.
///
/// The worker may still be appending entries while the archive runs (events are handled
/// asynchronously, and each append makes the previous newest entry archivable), so the archive
/// may write more than one object: what it guarantees is one contiguous stretch of the chain from
/// seq 1, in objects of at most 10,000 entries, every one of which the verification checks.
pub async fn distributed(base: &str, dir: &Path, env: &[(&str, String)]) {
    let http = flow::client();
    let admin = flow::login_tokens(&http, base, ADMIN.0, ADMIN.1).await.access;
    let res = http.get(format!("{base}/api/admin/stats")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let stats: Value = res.json().await.unwrap();
    assert!(stats["totals"]["projects_created"].as_u64().unwrap() > 0, "{stats}");
    assert!(stats["totals"]["signups"].as_u64().unwrap() > 1, "{stats}");

    let (code, out, err) = run(dir, &["audit", "archive", "--older-than-days", "0"], env).await;
    assert_eq!(code, Some(0), "{out}{err}");
    let (entries, objects) = archived(&out);
    assert!(!objects.is_empty(), "the entries before the newest are archived: {out}");
    let mut next = 1;
    for (first, last) in &objects {
        assert_eq!(*first, next, "the archives are contiguous stretches of the chain from seq 1: {out}");
        assert!(last >= first && last - first < 10_000, "at most 10,000 entries per object: {out}");
        next = last + 1;
    }
    assert_eq!(entries, next - 1, "the entries archived are exactly the stretches printed: {out}");
    // Nothing else archives meanwhile (the scheduled job keeps a year), so every object is checked.
    let res = http.get(format!("{base}/api/admin/audit-log/verify")).bearer_auth(&admin).send().await.unwrap();
    let v: Value = res.json().await.unwrap();
    assert_eq!((v["ok"].clone(), v["archives_checked"].clone()), (json!(true), json!(objects.len())), "{v}");
    let (code, out, err) = run(dir, &["audit", "verify"], env).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(&format!("({} archives)", objects.len())), "{out}");
}

/// What `trellis audit archive` printed: the entries it reports, and the (first, last) seqs of
/// each `archived audit/archive/{first:020}-{last:020}.jsonl.gz` line, in order; the final line
/// `N entries archived in K objects` must count the same objects.
fn archived(out: &str) -> (u64, Vec<(u64, u64)>) {
    let mut objects = Vec::new();
    for key in out.lines().filter_map(|l| l.strip_prefix("archived ")) {
        let seqs = key
            .strip_prefix("audit/archive/")
            .and_then(|k| k.strip_suffix(".jsonl.gz"))
            .unwrap_or_else(|| panic!("an archive key: {key}"));
        let (first, last) = seqs.split_once('-').unwrap_or_else(|| panic!("first-last: {key}"));
        assert!(first.len() == 20 && last.len() == 20, "seqs of 20 digits: {key}");
        objects.push((first.parse().unwrap(), last.parse().unwrap()));
    }
    let summary = out.lines().last().unwrap_or_default();
    let words: Vec<&str> = summary.split(' ').collect();
    let (entries, count) = match words.as_slice() {
        [n, "entries", "archived", "in", k, "objects"] => (n.parse().unwrap(), k.parse::<usize>().unwrap()),
        _ => panic!("the last line says what moved: {out}"),
    };
    assert_eq!(count, objects.len(), "one `archived` line per object: {out}");
    (entries, objects)
}
