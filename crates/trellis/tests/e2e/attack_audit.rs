//! Attacks on the audit log's integrity, full disks and lost security mail, against the real
//! binary (docs/SECURITY.md LO-4, GW-2; issue 16, part F).
//!
//! - [`audit`] (both deployments): someone with write access to the database gets the triggers
//!   out of the way, rewrites an entry and recomputes the plain hash chain after it. The plain
//!   chain is fooled; the keyed chain is not: `GET /api/admin/audit-log/verify` and `trellis audit
//!   verify` name the entry (`mac_mismatch`). The entry is then put back and the log verifies.
//! - [`full_disk`] (all-in-one on a tmpfs of a few MiB): writes on a full disk answer 503
//!   problem+json with `Retry-After`, never 500; every write answered 201 is there once there is
//!   room again, and none answered 503 is.
//! - [`durable_notice`] (all-in-one with an SMTP server that is down): the password-changed notice
//!   is queued in the database, retried, kept across a restart and delivered once the server is
//!   back.
//! - [`runtime_role_without_ddl`] (all-in-one on PostgreSQL): the owner/runtime role split of
//!   docs/OPERATIONS.md with the real binary.

use std::path::Path;

use platform::db::Database;
use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::wait::{until, until_some};

use crate::flow;
use crate::support::{self, Trellis, run};

/// An entry as stored, for the attacker's rewrite.
#[derive(Clone, Debug)]
struct Stored {
    seq: i64,
    event_id: uuid::Uuid,
    action: String,
    actor_id: Option<uuid::Uuid>,
    aggregate_id: uuid::Uuid,
    occurred_at: String,
    data: String,
    prev_hash: String,
    hash: String,
}

const COLUMNS: &str = "seq, event_id, action, actor_id, aggregate_id, occurred_at, data, prev_hash, hash";

async fn entries(db: &Database) -> Vec<Stored> {
    match db {
        Database::Sqlite(s) => s
            .read(|c| {
                let mut st = c.prepare(&format!("SELECT {COLUMNS} FROM audit_log ORDER BY seq"))?;
                st.query_map([], |r| {
                    Ok(Stored {
                        seq: r.get(0)?,
                        event_id: r.get(1)?,
                        action: r.get(2)?,
                        actor_id: r.get(3)?,
                        aggregate_id: r.get(4)?,
                        occurred_at: r.get(5)?,
                        data: r.get(6)?,
                        prev_hash: r.get(7)?,
                        hash: r.get(8)?,
                    })
                })?
                .collect()
            })
            .await
            .unwrap(),
        Database::Postgres(p) => p
            .client()
            .await
            .unwrap()
            .query(&format!("SELECT {COLUMNS} FROM audit_log ORDER BY seq"), &[])
            .await
            .unwrap()
            .iter()
            .map(|r| Stored {
                seq: r.get(0),
                event_id: r.get(1),
                action: r.get(2),
                actor_id: r.get(3),
                aggregate_id: r.get(4),
                occurred_at: r.get(5),
                data: r.get(6),
                prev_hash: r.get(7),
                hash: r.get(8),
            })
            .collect(),
    }
}

/// A stored hex hash as bytes.
fn hash_bytes(hex: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

/// The attacker's statements: entries from `target` on get the given data and a plain hash chain
/// recomputed over it (SHA-256, as documented), key ids and MACs left alone.
fn recompute(all: &[Stored], target: i64, forged: &str) -> Vec<Stored> {
    let mut prev = all.iter().find(|e| e.seq == target - 1).map_or_else(|| "0".repeat(64), |e| e.hash.clone());
    let mut out = Vec::new();
    for e in all.iter().filter(|e| e.seq >= target) {
        let mut e = e.clone();
        if e.seq == target {
            e.data = forged.to_string();
        }
        let data: Value = serde_json::from_str(&e.data).unwrap();
        let canon =
            worker::audit::canonical(e.seq, e.event_id, &e.action, e.actor_id, e.aggregate_id, &e.occurred_at, &data);
        let prev_bytes = hash_bytes(&prev);
        e.prev_hash = prev;
        e.hash = worker::audit::chain_hash(&canon, &prev_bytes);
        prev = e.hash.clone();
        out.push(e);
    }
    out
}

/// Writes `rows` over the stored entries with the append-only triggers out of the way, as the
/// database's owner could (SQLite: dropped and created again; PostgreSQL: disabled for the
/// transaction, which also locks out appends meanwhile).
async fn overwrite(db: &Database, rows: Vec<Stored>) {
    match db {
        Database::Sqlite(s) => s
            .write(move |tx| {
                let map = platform::db::sqlite::map_err;
                let triggers: Vec<(String, String)> = {
                    let mut st = tx
                        .prepare(
                            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'",
                        )
                        .map_err(map)?;
                    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                        .map_err(map)?
                        .collect::<Result<_, _>>()
                        .map_err(map)?
                };
                for (name, _) in &triggers {
                    tx.execute_batch(&format!("DROP TRIGGER {name}")).map_err(map)?;
                }
                for r in &rows {
                    tx.execute(
                        "UPDATE audit_log SET data = ?2, prev_hash = ?3, hash = ?4 WHERE seq = ?1",
                        rusqlite::params![r.seq, r.data, r.prev_hash, r.hash],
                    )
                    .map_err(map)?;
                }
                for (_, sql) in &triggers {
                    tx.execute_batch(sql).map_err(map)?;
                }
                Ok(())
            })
            .await
            .unwrap(),
        Database::Postgres(p) => {
            let mut client = p.client().await.unwrap();
            let tx = client.transaction().await.unwrap();
            tx.batch_execute("LOCK TABLE audit_log IN EXCLUSIVE MODE; ALTER TABLE audit_log DISABLE TRIGGER USER")
                .await
                .unwrap();
            for r in &rows {
                tx.execute(
                    "UPDATE audit_log SET data = $2, prev_hash = $3, hash = $4 WHERE seq = $1",
                    &[&r.seq, &r.data, &r.prev_hash, &r.hash],
                )
                .await
                .unwrap();
            }
            tx.batch_execute("ALTER TABLE audit_log ENABLE TRIGGER USER").await.unwrap();
            tx.commit().await.unwrap();
        }
    }
}

async fn verify(http: &reqwest::Client, base: &str, token: &str) -> Value {
    let res = http.get(format!("{base}/api/admin/audit-log/verify")).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

/// The keyed audit chain against a database writer (see the module docs).
pub async fn audit(ctx: &support::Attack) {
    let http = flow::client();
    // Admin routes need a session with a second factor (`auth.admin_requires_mfa`, AZ-6); its
    // events (the last: the sign-in with it) are in the log before the attack starts.
    let session = ctx.admin_session().await;
    let admin = session.access.clone();
    let sid = flow::decode_segment(&admin, 1)["sid"].as_str().unwrap().to_string();
    until("the admin's sign-in in the audit log", || async {
        entries(&ctx.db).await.iter().any(|e| e.action == "auth.login_succeeded" && e.data.contains(&sid))
    })
    .await;
    let res = http
        .post(format!("{}/api/projects", ctx.base))
        .bearer_auth(&admin)
        .json(&json!({"name": "Ledger"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let project: Value = res.json().await.unwrap();
    // Once the project's entry is in the log, the whole chain verifies under the keys.
    until("the project's audit entry", || async {
        entries(&ctx.db).await.iter().any(|e| e.aggregate_id.to_string() == project["id"].as_str().unwrap())
    })
    .await;
    let v = verify(&http, &ctx.base, &admin).await;
    assert_eq!((v["ok"].clone(), v["keyed"].clone()), (json!(true), json!(true)), "{v}");

    // The attack: the project's entry says another project, and the chain after it is recomputed.
    let before = entries(&ctx.db).await;
    let target = before.iter().find(|e| e.aggregate_id.to_string() == project["id"].as_str().unwrap()).unwrap().seq;
    let forged = json!({"project_id": uuid::Uuid::nil()}).to_string();
    let rewritten = recompute(&before, target, &forged);
    overwrite(&ctx.db, rewritten).await;
    let plain = worker::audit::AuditLog::new(ctx.db.clone()).verify().await.unwrap();
    assert!(plain.ok, "the plain hash chain alone is fooled by a recomputed chain: {plain:?}");
    let v = verify(&http, &ctx.base, &admin).await;
    assert_eq!(v["ok"], false, "the keyed chain is not: {v}");
    assert_eq!(
        (v["first_broken"]["seq"].as_i64(), v["first_broken"]["reason"].as_str()),
        (Some(target), Some("mac_mismatch")),
        "{v}"
    );
    let (code, out, err) = run(&ctx.dir, &["audit", "verify", "--skip-archives"], &ctx.env).await;
    assert_eq!(code, Some(1), "`trellis audit verify` fails on the rewrite:\n{out}{err}");
    assert!(out.contains(&format!("broken at seq {target}")) && out.contains("mac_mismatch"), "{out}{err}");

    // Put back (the entries appended meanwhile chain to the forged hash, so they are put back too).
    let now = entries(&ctx.db).await;
    let last_original = before.last().unwrap().seq;
    let mut restore: Vec<Stored> = before.iter().filter(|e| e.seq >= target).cloned().collect();
    if now.last().unwrap().seq > last_original {
        panic!("entries were appended during the attack; the flow cannot restore the log: {:?}", now.last());
    }
    restore.retain(|e| e.seq <= last_original);
    overwrite(&ctx.db, restore).await;
    let v = verify(&http, &ctx.base, &admin).await;
    assert_eq!(v["ok"], true, "the original entries verify again: {v}");
    session.end().await;
}

/// Mounts a tmpfs of `mib` MiB on `dir` (the test runs as root, as the suite does on CI).
fn mount_tmpfs(dir: &Path, mib: u32) {
    let out = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={mib}m,mode=0700"), "trellis-full-disk"])
        .arg(dir)
        .output()
        .expect("mount(8)");
    assert!(
        out.status.success(),
        "the full-disk test mounts a small tmpfs and needs root (or CAP_SYS_ADMIN): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Unmounts on drop, also when the test fails.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system of `path` to the last byte; the filler's path.
fn fill(dir: &Path) -> std::path::PathBuf {
    use std::io::Write as _;
    let filler = dir.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 4096];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.write_all(&[0u8; 1]);
    let _ = f.sync_all();
    filler
}

/// A full disk under the all-in-one binary (see the module docs).
pub async fn full_disk() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    mount_tmpfs(&data, 24);
    let _mounted = Mounted(data.clone());
    let env = [
        ("TRELLIS_ADMIN_EMAIL", support::ATTACK_ADMIN.0.to_string()),
        ("TRELLIS_ADMIN_PASSWORD", support::ATTACK_ADMIN.1.to_string()),
        ("TRELLIS_GATEWAY__RATE_LIMIT_PER_MINUTE", "100000".to_string()),
    ];
    let app = Trellis::start("full-disk", dir.path(), &[], &env).await;
    let http = flow::client();
    let admin = flow::login_tokens(&http, &app.base, support::ATTACK_ADMIN.0, support::ATTACK_ADMIN.1).await.access;
    let res = http
        .post(format!("{}/api/projects", app.base))
        .bearer_auth(&admin)
        .json(&json!({"name": "Full"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let project: Value = res.json().await.unwrap();
    let tasks_url = format!("{}/api/projects/{}/tasks", app.base, project["id"].as_str().unwrap());

    let filler = fill(&data);
    let (mut created, mut refused) = (Vec::new(), Vec::new());
    let description = "x".repeat(9_000);
    for i in 0..2_000 {
        let title = format!("task {i}");
        let res = http
            .post(&tasks_url)
            .bearer_auth(&admin)
            .json(&json!({"title": title, "description": description}))
            .send()
            .await
            .unwrap();
        match res.status() {
            StatusCode::CREATED => created.push(title),
            StatusCode::SERVICE_UNAVAILABLE => {
                let retry = res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
                assert!(retry.is_some_and(|r| r.parse::<u64>().is_ok_and(|s| s > 0)), "503 with Retry-After");
                let ct = res.headers()["content-type"].to_str().unwrap().to_string();
                assert_eq!(ct, "application/problem+json");
                let body: Value = res.json().await.unwrap();
                assert!(!body.to_string().to_lowercase().contains("sqlite"), "no internals: {body}");
                refused.push(title);
                if refused.len() >= 3 {
                    break;
                }
            }
            other => panic!("a full disk answers 503, not {other}: {}", res.text().await.unwrap_or_default()),
        }
    }
    assert!(!refused.is_empty(), "the disk filled up: {} tasks were created and none refused", created.len());

    // Room again: the same request succeeds, and what was acknowledged is all there.
    std::fs::remove_file(&filler).unwrap();
    let res = until_some("a write succeeds once there is room", || {
        let (http, url, admin) = (http.clone(), tasks_url.clone(), admin.clone());
        async move {
            let res = http.post(&url).bearer_auth(&admin).json(&json!({"title": "after"})).send().await.unwrap();
            (res.status() == StatusCode::CREATED).then_some(res)
        }
    })
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let mut titles = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{tasks_url}?limit=100");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = http.get(&url).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
        titles.extend(page["items"].as_array().unwrap().iter().map(|t| t["title"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    for t in &created {
        assert!(titles.contains(t), "{t} was answered 201 and is lost");
    }
    for t in &refused {
        assert!(!titles.contains(t), "{t} was answered 503 and is there anyway (half-written)");
    }
    let (code, log) = app.terminate().await;
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

/// The password-changed notice through an SMTP outage and a restart (see the module docs).
pub async fn durable_notice() {
    let sink = test_support::TestSmtp::start().await;
    let proxy = test_support::TcpProxy::start(&format!("127.0.0.1:{}", sink.port)).await;
    proxy.cut();
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("SMTP_URL", format!("smtp://{}", proxy.addr())),
        ("TRELLIS_GATEWAY__RATE_LIMIT_PER_MINUTE", "100000".to_string()),
    ];
    let app = Trellis::start("smtp-down", dir.path(), &[], &env).await;
    let email = flow::password_change(&app.base).await;
    let db = Database::connect(&format!("sqlite://{}", dir.path().join("data/trellis.db").display())).await.unwrap();
    until("the notice waits in the queue after a failed attempt", || async {
        let Database::Sqlite(s) = &db else { unreachable!() };
        s.read(|c| c.query_row("SELECT count(*) FROM mail_queue WHERE attempts > 0", [], |r| r.get::<_, i64>(0)))
            .await
            .unwrap()
            > 0
    })
    .await;
    assert!(sink.messages().is_empty(), "the server is down");
    let (code, log) = app.terminate().await;
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains(&email), "no recipient in the log");

    // The server comes back while Trellis is down; the next start delivers what was queued.
    proxy.restore();
    let app = Trellis::start("smtp-back", dir.path(), &[], &env).await;
    let got = until_some("the password-changed notice", || async {
        sink.messages().into_iter().find(|m| m.header("subject") == Some("Your Trellis password was changed"))
    })
    .await;
    assert_eq!(got.header("to"), Some(email.as_str()));
    let (code, log) = app.terminate().await;
    assert_eq!(code, Some(0), "{log}");
}

/// `postgres://user@host/db` with another user.
fn as_role(url: &str, role: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{role}@{host}")
}

/// The PostgreSQL role split of docs/OPERATIONS.md with the real binary: `trellis migrate` as the
/// schema's owner, then every service in one process as a runtime role without DDL and
/// `migrate_on_start = false`. The application works (sign-in, a project, its audit entry, the
/// keyed verification), the runtime role cannot drop or disable the audit log's triggers, and a
/// server refuses to start while a migration is missing.
pub async fn runtime_role_without_ddl() {
    let pg = test_support::TestPostgres::new().await;
    let suffix = pg.name["trellis_test".len()..].to_string();
    let (owner, app) = (format!("trellis_owner{suffix}"), format!("trellis_app{suffix}"));
    let Database::Postgres(admin) = &pg.db else { unreachable!() };
    let admin = admin.client().await.unwrap();
    admin
        .batch_execute(&format!(
            "CREATE ROLE {owner} LOGIN; CREATE ROLE {app} LOGIN; ALTER DATABASE {db} OWNER TO {owner}; \
             ALTER SCHEMA public OWNER TO {owner}; REVOKE CREATE ON SCHEMA public FROM PUBLIC;",
            db = pg.name
        ))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (owner_url, app_url) = (as_role(&pg.url, &owner), as_role(&pg.url, &app));
    let (code, out, err) = run(dir.path(), &["migrate"], &[("DATABASE_URL", owner_url.clone())]).await;
    assert_eq!(code, Some(0), "`trellis migrate` as the owner:\n{out}{err}");
    let grants = format!(
        "GRANT USAGE ON SCHEMA public TO {app}; \
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {app}; \
         GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {app}; \
         REVOKE UPDATE ON audit_log, audit_archives FROM {app};"
    );
    let owner_db = Database::connect(&owner_url).await.unwrap();
    let Database::Postgres(o) = &owner_db else { unreachable!() };
    o.client().await.unwrap().batch_execute(&grants).await.unwrap();

    let env = vec![
        ("DATABASE_URL", app_url.clone()),
        ("TRELLIS_MIGRATE_ON_START", "false".to_string()),
        // About the database role, not the admin's second factor (attack_admin_mfa tests that).
        ("TRELLIS_AUTH__ADMIN_REQUIRES_MFA", "false".to_string()),
        ("TRELLIS_ADMIN_EMAIL", support::ATTACK_ADMIN.0.to_string()),
        ("TRELLIS_ADMIN_PASSWORD", support::ATTACK_ADMIN.1.to_string()),
    ];
    let server = Trellis::start("runtime-role", dir.path(), &[], &env).await;
    let http = flow::client();
    let token = flow::login_tokens(&http, &server.base, support::ATTACK_ADMIN.0, support::ATTACK_ADMIN.1).await.access;
    let res = http
        .post(format!("{}/api/projects", server.base))
        .bearer_auth(&token)
        .json(&json!({"name": "Least privilege"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let project: Value = res.json().await.unwrap();
    let runtime = Database::connect(&app_url).await.unwrap();
    until("the project's audit entry", || async {
        entries(&runtime).await.iter().any(|e| e.aggregate_id.to_string() == project["id"].as_str().unwrap())
    })
    .await;
    let v = verify(&http, &server.base, &token).await;
    assert_eq!((v["ok"].clone(), v["keyed"].clone()), (json!(true), json!(true)), "{v}");
    let Database::Postgres(rt) = &runtime else { unreachable!() };
    let rt = rt.client().await.unwrap();
    for sql in [
        "DROP TRIGGER audit_log_append_only ON audit_log",
        "ALTER TABLE audit_log DISABLE TRIGGER USER",
        "UPDATE audit_log SET action = 'forged'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let err = rt.batch_execute(sql).await.expect_err(sql);
        assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{sql}: {err:?}");
    }
    drop(rt);
    let (code, log) = server.terminate().await;
    assert_eq!(code, Some(0), "{log}");

    // A migration missing (a binary newer than the schema): the server refuses to start.
    o.client()
        .await
        .unwrap()
        .batch_execute("DELETE FROM schema_migrations WHERE service = 'worker' AND version = 5")
        .await
        .unwrap();
    let listen = format!("127.0.0.1:{}", test_support::reserve_port());
    let (code, out, err) = run(dir.path(), &["serve", "--listen", &listen], &env).await;
    assert_ne!(code, Some(0), "{out}{err}");
    assert!(err.contains("has not been applied") && err.contains("trellis migrate"), "{err}");

    drop((runtime, owner_db));
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {db} OWNER TO CURRENT_USER; ALTER SCHEMA public OWNER TO CURRENT_USER; \
             REASSIGN OWNED BY {owner}, {app} TO CURRENT_USER; DROP OWNED BY {owner}, {app};",
            db = pg.name
        ))
        .await
        .unwrap();
    drop(admin);
    drop(pg);
    let cleanup = Database::connect(&test_support::services::postgres_admin_url()).await;
    if let Ok(Database::Postgres(c)) = cleanup
        && let Ok(c) = c.client().await
    {
        let _ = c.batch_execute(&format!("DROP ROLE IF EXISTS {owner}; DROP ROLE IF EXISTS {app};")).await;
    }
}
