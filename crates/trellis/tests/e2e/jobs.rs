//! `trellis jobs run` and `trellis jobs list` through the real binary on the zero-configuration
//! SQLite database: the sessions job deletes a session that ended long ago with its refresh token
//! and keeps a live one; the list shows its last run; a job whose lease another process holds, and
//! an unknown job, exit 1 with a message naming the cause.

use platform::db::{Database, SqliteDb, sqlite};

use crate::support::run;

async fn database(dir: &std::path::Path) -> SqliteDb {
    match Database::connect(&format!("sqlite://{}", dir.join("data/trellis.db").display())).await.unwrap() {
        Database::Sqlite(db) => db,
        Database::Postgres(_) => unreachable!(),
    }
}

async fn exec(db: &SqliteDb, sql: &'static str) {
    db.write(move |tx| tx.execute_batch(sql).map_err(sqlite::map_err)).await.unwrap();
}

#[tokio::test]
async fn jobs_run_and_list() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(dir.path(), &["migrate"], &[]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    let db = database(dir.path()).await;
    // One session revoked in 2000, one live until 2999; a refresh token each.
    exec(
        &db,
        "INSERT INTO auth_sessions (id, user_id, refresh_hash, created_at, last_used_at, expires_at, revoked_at) VALUES \
         (X'00000000000000000000000000000001', X'0000000000000000000000000000000A', X'AA', '2000-01-01T00:00:00Z', '2000-01-01T00:00:00Z', '2000-01-31T00:00:00Z', '2000-01-02T00:00:00.5Z'), \
         (X'00000000000000000000000000000002', X'0000000000000000000000000000000B', X'BB', '2999-01-01T00:00:00Z', '2999-01-01T00:00:00Z', '2999-01-31T00:00:00Z', NULL); \
         INSERT INTO auth_refresh_tokens (token_hash, session_id, issued_at) VALUES \
         (X'AA', X'00000000000000000000000000000001', '2000-01-01T00:00:00Z'), (X'BB', X'00000000000000000000000000000002', '2999-01-01T00:00:00Z');",
    )
    .await;

    let (code, out, err) = run(dir.path(), &["jobs", "run", "sessions"], &[]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("sessions=1") && out.contains("refresh_tokens=1"), "{out}");
    assert!(err.contains("job started") && err.contains("job finished"), "progress is logged: {err}");
    let left: (i64, i64) = db
        .read(|c| {
            c.query_row(
                "SELECT (SELECT count(*) FROM auth_sessions WHERE id = X'00000000000000000000000000000002'), (SELECT count(*) FROM auth_refresh_tokens)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .await
        .unwrap();
    assert_eq!(left, (1, 1), "the live session and its token stay");

    let (code, out, err) = run(dir.path(), &["jobs", "list"], &[]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    let line = out.lines().find(|l| l.starts_with("sessions ")).unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains(" ok ") && line.contains("sessions=1"), "{line}");
    for name in ["idempotency-keys", "outbox", "processed-events", "temp-files", "erased-users"] {
        let line = out.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{name}: {out}"));
        assert!(line.contains("never"), "{line}");
    }

    // Another process holds the lease until 2999 (microseconds since the epoch).
    exec(
        &db,
        "UPDATE job_leases SET holder = 'pid1-elsewhere', lease_until = 32472144000000000 WHERE name = 'sessions'",
    )
    .await;
    let (code, out, err) = run(dir.path(), &["jobs", "run", "sessions"], &[]).await;
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("job sessions is running in another process (pid1-elsewhere"), "{err}");

    let (code, out, err) = run(dir.path(), &["jobs", "run", "everything"], &[]).await;
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("unknown job \"everything\"") && err.contains("erased-users"), "{err}");
}
