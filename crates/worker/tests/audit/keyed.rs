//! The keyed chain (docs/SECURITY.md LO-4): someone who can write the database rewrites an entry
//! and recomputes the plain hash chain after it, which fools the hash chain alone but not the MACs
//! under keys the database does not hold; and, on PostgreSQL, the role split: a runtime role
//! without DDL runs the worker (appends, verification, archiving) but cannot drop or disable the
//! triggers, nor update, delete or truncate audit entries.

use std::sync::Arc;

use platform::bus::InProcessBus;
use platform::db::Database;
use serde_json::json;
use worker::Worker;
use worker::audit::{AuditKeys, AuditLog, canonical, chain_hash, format_time};

use super::{Backend, all, event};

test_support::backend_suite!(
    a_rewrite_with_a_recomputed_chain_fails_the_keyed_verification,
    entries_stripped_of_their_macs_fail_the_keyed_verification,
);

fn keys() -> Arc<AuditKeys> {
    Arc::new(AuditKeys::single([0x5a; 32]))
}

/// Three events appended by a worker that signs with `keys`.
async fn three_keyed(db: &Database, keys: &Arc<AuditKeys>) {
    let w = Worker::new(db.clone(), Arc::new(InProcessBus::new())).with_audit_keys(Some(keys.clone()));
    for n in 0..3 {
        let id = platform::ids::new_id();
        assert!(w.handle(&event("task.created", Some(id), json!({"task_id": id, "n": n}))).await.unwrap());
    }
}

/// The attacker's rewrite: entry `seq` gets other data, and the hash chain is recomputed from it
/// to the end (the SQL a database writer would run; key ids and MACs are left as they were).
async fn rewrite_and_recompute(b: &Backend, seq: i64) {
    let (mut items, _) = b.log().list(all()).await.unwrap();
    items.reverse();
    let mut prev = items[usize::try_from(seq - 2).unwrap()].hash.clone();
    let mut sql = String::new();
    for e in items.iter_mut().filter(|e| e.seq >= seq) {
        if e.seq == seq {
            e.data = json!({"task_id": uuid::Uuid::nil()});
        }
        let at = format_time(e.occurred_at).unwrap();
        let canon = canonical(e.seq, e.event_id, &e.action, e.actor_id, e.aggregate_id, &at, &e.data);
        let prev_bytes: [u8; 32] = hex::decode(&prev).unwrap().try_into().unwrap();
        let hash = chain_hash(&canon, &prev_bytes);
        // How the data is written does not matter: it is hashed in its canonical form.
        let data = e.data.to_string();
        sql.push_str(&format!(
            "UPDATE audit_log SET data = '{data}', prev_hash = '{prev}', hash = '{hash}' WHERE seq = {};",
            e.seq
        ));
        prev = hash;
    }
    b.exec(sql.trim_end_matches(';')).await;
}

async fn a_rewrite_with_a_recomputed_chain_fails_the_keyed_verification(b: &Backend) {
    let keys = keys();
    three_keyed(&b.db, &keys).await;
    let keyed = AuditLog::keyed(b.db.clone(), keys.clone());
    let v = keyed.verify().await.unwrap();
    assert!(v.ok && v.keyed && v.checked == 3, "{v:?}");
    rewrite_and_recompute(b, 2).await;
    let plain = b.log().verify().await.unwrap();
    assert!(plain.ok, "the plain hash chain alone is fooled by a recomputed chain: {plain:?}");
    let v = keyed.verify().await.unwrap();
    assert!(!v.ok, "the keyed chain is not: {v:?}");
    let broken = v.first_broken.unwrap();
    assert_eq!((broken.seq, broken.reason.as_str()), (2, "mac_mismatch"));
    // Under another key (an attacker's guess), nothing verifies.
    let other = AuditLog::keyed(b.db.clone(), Arc::new(AuditKeys::single([1; 32])));
    assert_eq!(other.verify().await.unwrap().first_broken.unwrap().seq, 1);
}

async fn entries_stripped_of_their_macs_fail_the_keyed_verification(b: &Backend) {
    let keys = keys();
    three_keyed(&b.db, &keys).await;
    b.exec("UPDATE audit_log SET key_id = NULL, mac = NULL").await;
    let v = AuditLog::keyed(b.db.clone(), keys.clone()).verify().await.unwrap();
    let broken = v.first_broken.unwrap();
    assert_eq!((broken.seq, broken.reason.as_str()), (1, "unkeyed"));
    b.exec("UPDATE audit_log SET key_id = 7, mac = '00'").await;
    let v = AuditLog::keyed(b.db.clone(), keys).verify().await.unwrap();
    assert_eq!(v.first_broken.unwrap().reason, "unknown_key");
}

/// `postgres://user@host/db` with another user.
fn as_role(url: &str, role: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{role}@{host}")
}

/// The role split of docs/OPERATIONS.md, in a private database: an owner role runs the
/// migrations, the runtime role gets data rights only. The worker then works as the runtime role,
/// which cannot get the audit log's triggers out of the way nor change entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_the_runtime_role_cannot_touch_the_triggers_or_the_entries() {
    let pg = test_support::TestPostgres::new().await;
    let suffix = &pg.name["trellis_test".len()..];
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
    // The owner migrates and grants the runtime role what docs/OPERATIONS.md says.
    let owner_db = Database::connect(&as_role(&pg.url, &owner)).await.unwrap();
    owner_db.migrate(&worker::MIGRATIONS).await.unwrap();
    let Database::Postgres(o) = &owner_db else { unreachable!() };
    o.client()
        .await
        .unwrap()
        .batch_execute(&format!(
            "GRANT USAGE ON SCHEMA public TO {app}; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {app}; \
             GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {app}; \
             REVOKE UPDATE ON audit_log, audit_archives FROM {app};"
        ))
        .await
        .unwrap();

    let db = Database::connect(&as_role(&pg.url, &app)).await.unwrap();
    db.ensure_migrated(&worker::MIGRATIONS).await.expect("the runtime role reads the schema's history");
    assert!(db.migrate(&worker::MIGRATIONS).await.is_err(), "but it cannot change the schema");
    let keys = keys();
    three_keyed(&db, &keys).await;
    let log = AuditLog::keyed(db.clone(), keys.clone());
    assert!(log.verify().await.unwrap().ok);
    // Archiving (the one way entries leave) works as the runtime role.
    let dir = tempfile::tempdir().unwrap();
    let objects = platform::objects::local(dir.path()).unwrap();
    let later = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let report = log.archive(objects.as_ref(), later, 1).await.unwrap();
    assert_eq!(report.entries, 2, "all but the newest");
    let v = log.verify_all(Some(objects.as_ref())).await.unwrap();
    assert!(v.ok && v.archives_checked == 2, "{v:?}");

    let Database::Postgres(rt) = &db else { unreachable!() };
    let rt = rt.client().await.unwrap();
    for sql in [
        "DROP TRIGGER audit_log_append_only ON audit_log",
        "ALTER TABLE audit_log DISABLE TRIGGER USER",
        "ALTER TABLE audit_log DISABLE TRIGGER ALL",
        "DROP FUNCTION audit_log_guard() CASCADE",
        "UPDATE audit_log SET action = 'forged'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "DELETE FROM audit_archives",
        "UPDATE audit_archives SET last_hash = 'x'",
        "CREATE TABLE audit_shadow (x INTEGER)",
        "SET session_replication_role = replica",
    ] {
        let err = rt.batch_execute(sql).await.expect_err(sql);
        let code = err.code().map(|c| c.code().to_string()).unwrap_or_default();
        assert!(
            code == "42501" || code == "42809",
            "{sql}: refused for lack of privilege, not for another reason: {code} {err:?}"
        );
    }
    // What it could not do left the log as it was.
    assert!(log.verify_all(Some(objects.as_ref())).await.unwrap().ok);

    drop((db, log, owner_db));
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
    let cleanup = tokio_postgres::connect(&test_support::services::postgres_admin_url(), tokio_postgres::NoTls).await;
    if let Ok((client, conn)) = cleanup {
        tokio::spawn(conn);
        let _ = client.batch_execute(&format!("DROP ROLE IF EXISTS {owner}; DROP ROLE IF EXISTS {app};")).await;
    }
}
