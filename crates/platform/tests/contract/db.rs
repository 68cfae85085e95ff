//! The `Database` contract: migrations apply once, incrementally, atomically and safely from
//! several tasks at once; driver errors become typed `StoreError`s (`Conflict`, `NotFound`);
//! `ping` answers. Run on SQLite and PostgreSQL (a fresh database per test).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use platform::db::{Database, Migration, Migrations, StoreError};
use test_support::{TestPostgres, TestSqlite, wait};

use crate::support::{DbFixture, THINGS, exec, query_i64};

async fn history(db: &Database, service: &'static str) -> Vec<i64> {
    let (sqlite_sql, pg_sql) = match service {
        "platform" => (
            "SELECT group_concat(version) FROM schema_migrations WHERE service = 'platform'",
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations WHERE service = 'platform'",
        ),
        _ => (
            "SELECT group_concat(version) FROM schema_migrations WHERE service = 'steps'",
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations WHERE service = 'steps'",
        ),
    };
    let list: Option<String> = match db {
        Database::Sqlite(db) => db.read(move |c| c.query_row(sqlite_sql, [], |r| r.get(0))).await.unwrap(),
        Database::Postgres(db) => db.client().await.unwrap().query_one(pg_sql, &[]).await.unwrap().get(0),
    };
    let mut out: Vec<i64> =
        list.unwrap_or_default().split(',').filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
    out.sort_unstable();
    out
}

async fn table_exists(db: &Database, table: &'static str) -> bool {
    let sql = match table {
        "outbox" => "SELECT count(*) FROM outbox",
        "step_one" => "SELECT count(*) FROM step_one",
        "step_two" => "SELECT count(*) FROM step_two",
        _ => "SELECT count(*) FROM half_applied",
    };
    query_i64(db, sql, sql, vec![]).await.is_ok()
}

/// The versions of the platform's own migrations (the outbox's), as the history records them.
fn platform_versions() -> Vec<i64> {
    let versions = |list: &[Migration]| list.iter().map(|m| m.version).collect::<Vec<_>>();
    let (sqlite, postgres) =
        (versions(platform::outbox::MIGRATIONS.sqlite), versions(platform::outbox::MIGRATIONS.postgres));
    assert_eq!(sqlite, postgres, "both backends have the same migration versions");
    assert!(!sqlite.is_empty());
    sqlite
}

async fn migrations_apply_once_and_are_idempotent<F: DbFixture>() {
    let f = F::new().await;
    let db = f.db();
    db.migrate(&platform::outbox::MIGRATIONS).await.unwrap();
    db.migrate(&platform::outbox::MIGRATIONS).await.unwrap();
    assert_eq!(history(db, "platform").await, platform_versions());
    assert!(table_exists(db, "outbox").await);
}

const STEP_ONE: Migration = Migration { version: 1, name: "one", sql: "CREATE TABLE step_one (x INTEGER)" };
const STEP_TWO: Migration = Migration { version: 2, name: "two", sql: "CREATE TABLE step_two (x INTEGER)" };
/// Creates a table, then fails: none of it may stay.
const BROKEN: Migration = Migration {
    version: 3,
    name: "broken",
    sql: "CREATE TABLE half_applied (x INTEGER); INSERT INTO no_such_table VALUES (1);",
};

async fn migrations_apply_incrementally_and_atomically<F: DbFixture>() {
    let f = F::new().await;
    let db = f.db();
    let v1 = Migrations { service: "steps", sqlite: &[STEP_ONE], postgres: &[STEP_ONE] };
    let v2 = Migrations { service: "steps", sqlite: &[STEP_ONE, STEP_TWO], postgres: &[STEP_ONE, STEP_TWO] };
    let v3 =
        Migrations { service: "steps", sqlite: &[STEP_ONE, STEP_TWO, BROKEN], postgres: &[STEP_ONE, STEP_TWO, BROKEN] };
    db.migrate(&v1).await.unwrap();
    assert_eq!(history(db, "steps").await, [1]);
    assert!(table_exists(db, "step_one").await && !table_exists(db, "step_two").await);
    // Version 1 already ran and is not run again (it would fail: the table exists).
    db.migrate(&v2).await.unwrap();
    assert_eq!(history(db, "steps").await, [1, 2]);
    assert!(table_exists(db, "step_two").await);
    let err = db.migrate(&v3).await.expect_err("a failing migration must fail migrate");
    assert!(err.to_string().contains("broken"), "the error names the migration: {err:#}");
    assert_eq!(history(db, "steps").await, [1, 2], "a failed migration is not recorded");
    assert!(!table_exists(db, "half_applied").await, "a failed migration leaves nothing behind");
    // Services keep separate histories in one table.
    db.migrate(&platform::outbox::MIGRATIONS).await.unwrap();
    assert_eq!(history(db, "platform").await, platform_versions());
}

async fn concurrent_migrations_do_not_fail<F: DbFixture>() {
    let f = F::new().await;
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let db = f.db().clone();
            tokio::spawn(async move {
                db.migrate(&platform::outbox::MIGRATIONS).await?;
                db.migrate(&THINGS).await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap_or_else(|e| panic!("concurrent migrate failed: {e:#}"));
    }
    assert_eq!(history(f.db(), "platform").await, platform_versions());
    assert!(table_exists(f.db(), "outbox").await);
}

async fn unique_and_foreign_key_violations_are_conflicts<F: DbFixture>() {
    let f = F::new().await;
    let db = f.db();
    db.migrate(&THINGS).await.unwrap();
    let insert_thing = "INSERT INTO things (id, name) VALUES (?1, 'same')";
    let insert_thing_pg = "INSERT INTO things (id, name) VALUES ($1, 'same')";
    assert_eq!(exec(db, insert_thing, insert_thing_pg, vec![1]).await.unwrap(), 1);
    match exec(db, insert_thing, insert_thing_pg, vec![2]).await {
        Err(StoreError::Conflict(c)) => {
            assert!(!c.is_empty());
            // The client's answer names no table, constraint or column (docs/SECURITY.md GW-2).
            let problem = platform::http::Problem::from(StoreError::Conflict(c));
            assert_eq!(problem.status, axum::http::StatusCode::CONFLICT);
            for leak in ["things", "name", "unique", "constraint", "key"] {
                assert!(!problem.detail.to_lowercase().contains(leak), "{:?} names {leak:?}", problem.detail);
            }
        }
        other => panic!("a unique violation must be Conflict, got {other:?}"),
    }
    match exec(db, insert_thing, insert_thing_pg, vec![1]).await {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("a primary-key violation must be Conflict, got {other:?}"),
    }
    let part = "INSERT INTO parts (id, thing_id) VALUES (?1, ?2)";
    let part_pg = "INSERT INTO parts (id, thing_id) VALUES ($1, $2)";
    match exec(db, part, part_pg, vec![1, 999]).await {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("a foreign-key violation must be Conflict, got {other:?}"),
    }
    assert_eq!(exec(db, part, part_pg, vec![1, 1]).await.unwrap(), 1);
}

async fn no_rows_is_not_found<F: DbFixture>() {
    let f = F::new().await;
    let db = f.db();
    db.migrate(&THINGS).await.unwrap();
    let (select, select_pg) = ("SELECT id FROM things WHERE id = ?1", "SELECT id FROM things WHERE id = $1");
    match query_i64(db, select, select_pg, vec![42]).await {
        Err(StoreError::NotFound) => {}
        other => panic!("no row must be NotFound, got {other:?}"),
    }
    exec(
        db,
        "INSERT INTO things (id, name) VALUES (?1, 'x')",
        "INSERT INTO things (id, name) VALUES ($1, 'x')",
        vec![42],
    )
    .await
    .unwrap();
    assert_eq!(query_i64(db, select, select_pg, vec![42]).await.unwrap(), 42);
}

async fn ping_answers<F: DbFixture>() {
    let f = F::new().await;
    f.db().ping().await.unwrap();
    assert!(["sqlite", "postgres"].contains(&f.db().backend()));
}

macro_rules! db_contract {
    ($adapter:ident, $fixture:ty) => {
        mod $adapter {
            use super::*;
            db_contract!(@tests $fixture;
                migrations_apply_once_and_are_idempotent,
                migrations_apply_incrementally_and_atomically,
                concurrent_migrations_do_not_fail,
                unique_and_foreign_key_violations_are_conflicts,
                no_rows_is_not_found,
                ping_answers,
            );
        }
    };
    (@tests $fixture:ty; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                super::$check::<$fixture>().await;
            }
        )*
    };
}

db_contract!(sqlite, TestSqlite);
db_contract!(postgres, TestPostgres);

/// PostgreSQL on several worker threads: migrations racing for real still all succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_migrations_on_threads() {
    concurrent_migrations_do_not_fail::<TestPostgres>().await;
}

/// An unreachable PostgreSQL fails `connect` instead of hanging: a port nobody listens on, and a
/// server that accepts the connection but never answers (only the connect and pool timeouts end
/// that wait). How fast is not asserted: that is the timeouts' configuration, and a loaded
/// machine stretches any wall-clock figure; the bound only catches a hang.
#[tokio::test]
async fn unreachable_postgres_fails_fast() {
    // Bound for the whole test (never released): it accepts into its backlog and never reads.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = listener.local_addr().unwrap();
    for (what, url) in [
        ("nothing listens on port 1", "postgres://postgres@127.0.0.1:1/none".to_string()),
        ("a server that never answers", format!("postgres://postgres@{silent}/none")),
    ] {
        let err = tokio::time::timeout(wait::default_limit(), Database::connect(&url))
            .await
            .unwrap_or_else(|_| panic!("{what}: connect hangs"))
            .expect_err(what);
        assert!(err.to_string().contains("PostgreSQL"), "{what}: {err:#}");
    }
}

/// A full disk (SQLite's `SQLITE_FULL`, here for real through `max_page_count` on the writer
/// connection) is `Unavailable`, so clients get 503 with `Retry-After`, and loses nothing: the write
/// that did not fit is rolled back whole, the ones committed before stay, and it succeeds once
/// there is room.
#[tokio::test]
async fn sqlite_a_full_disk_is_unavailable_and_loses_nothing() {
    let t = TestSqlite::new().await;
    let Database::Sqlite(db) = t.db.clone() else { unreachable!("a SQLite test database") };
    let map = platform::db::sqlite::map_err;
    db.write(move |tx| {
        tx.execute_batch("CREATE TABLE filled (n INTEGER PRIMARY KEY, body BLOB NOT NULL)").map_err(map)?;
        tx.execute("INSERT INTO filled (n, body) VALUES (1, zeroblob(1000))", []).map_err(map)?;
        Ok(())
    })
    .await
    .unwrap();
    // The writer is the pool's only connection: the limit holds for every later write.
    db.write(move |tx| {
        let pages: i64 = tx.query_row("PRAGMA page_count", [], |r| r.get(0)).map_err(map)?;
        tx.query_row(&format!("PRAGMA max_page_count = {}", pages + 1), [], |_| Ok(())).map_err(map)?;
        Ok(())
    })
    .await
    .unwrap();
    let full = db
        .write(move |tx| {
            tx.execute("INSERT INTO filled (n, body) VALUES (2, zeroblob(1000))", []).map_err(map)?;
            tx.execute("INSERT INTO filled (n, body) VALUES (3, zeroblob(200000))", []).map_err(map)?;
            Ok(())
        })
        .await
        .expect_err("the disk is full");
    // SQLite rolls the whole transaction back on SQLITE_FULL: the batch is answered unavailable.
    assert!(matches!(&full, StoreError::Unavailable(_)), "{full:?}");
    let problem = platform::http::Problem::from(full);
    assert_eq!(problem.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
    assert!(problem.retry_after.is_some_and(|s| s > 0), "503 with Retry-After");
    let count = |db: platform::db::SqliteDb| async move {
        db.read(|c| c.query_row("SELECT group_concat(n) FROM filled ORDER BY n", [], |r| r.get::<_, String>(0))).await
    };
    assert_eq!(count(db.clone()).await.unwrap(), "1", "nothing of the write that did not fit, everything before");
    db.write(move |tx| {
        tx.query_row("PRAGMA max_page_count = 1073741823", [], |_| Ok(())).map_err(map)?;
        tx.execute("INSERT INTO filled (n, body) VALUES (2, zeroblob(1000))", []).map_err(map)?;
        tx.execute("INSERT INTO filled (n, body) VALUES (3, zeroblob(200000))", []).map_err(map)?;
        Ok(())
    })
    .await
    .expect("with room again, the same write succeeds");
    assert_eq!(count(db.clone()).await.unwrap(), "1,2,3");
}

/// Starts a write that holds the writer connection until `release` is sent (or dropped), and
/// returns once it holds it.
async fn hold_the_writer(
    db: &platform::db::SqliteDb,
) -> (std::sync::mpsc::Sender<()>, tokio::task::JoinHandle<Result<(), StoreError>>) {
    let (entered, held) = tokio::sync::oneshot::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let holder = tokio::spawn({
        let db = db.clone();
        async move {
            db.write(move |_| {
                let _ = entered.send(());
                released.recv().map_err(|e| StoreError::Internal(e.to_string()))
            })
            .await
        }
    });
    held.await.expect("the first write holds the writer");
    (release, holder)
}

/// A write that gives up waiting for the writer connection is answered `Unavailable` and must then
/// never be written: it stays in the queue, and the batch that later drains it skips it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_write_answered_unavailable_is_never_written() {
    let t = TestSqlite::new().await;
    let Database::Sqlite(db) = t.db.clone() else { unreachable!("a SQLite test database") };
    db.write(|tx| tx.execute_batch("CREATE TABLE gave_up (n INTEGER)").map_err(platform::db::sqlite::map_err))
        .await
        .unwrap();
    // A first write holds the writer connection past the pool's wait (5 s).
    let (release, holder) = hold_the_writer(&db).await;
    let refused = db
        .write(|tx| tx.execute("INSERT INTO gave_up (n) VALUES (1)", []).map_err(platform::db::sqlite::map_err))
        .await;
    assert!(matches!(refused, Err(StoreError::Unavailable(_))), "{refused:?}");
    release.send(()).unwrap();
    holder.await.unwrap().unwrap();
    // A later write drains the queue, withdrawn job included.
    db.write(|tx| tx.execute("INSERT INTO gave_up (n) VALUES (2)", []).map_err(platform::db::sqlite::map_err))
        .await
        .unwrap();
    let rows: Vec<i64> = db
        .read(|c| c.prepare("SELECT n FROM gave_up ORDER BY n")?.query_map([], |r| r.get(0))?.collect())
        .await
        .unwrap();
    assert_eq!(rows, vec![2], "the write answered Unavailable was written after all");
}

/// SQLite's group commit: many concurrent writes share transactions, yet each is answered with
/// its own result, and one that fails (an error of its own, or a constraint) leaves nothing
/// behind while the others of its batch commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_group_commit_keeps_each_write_its_own() {
    let t = TestSqlite::new().await;
    let Database::Sqlite(db) = t.db.clone() else { unreachable!("a SQLite test database") };
    db.write(|tx| {
        tx.execute_batch("CREATE TABLE gc (n INTEGER PRIMARY KEY, note TEXT NOT NULL)")
            .map_err(platform::db::sqlite::map_err)
    })
    .await
    .unwrap();
    let before = db.statements();
    // Group commit by construction rather than by luck of timing: a first write holds the writer
    // until the 300 writes are all queued behind it, so they cannot each get a transaction.
    let (release, holder) = hold_the_writer(&db).await;
    let queued = Arc::new(AtomicUsize::new(0));
    let writes: Vec<_> = (0..300i64)
        .map(|n| {
            let (db, queued) = (db.clone(), queued.clone());
            tokio::spawn(async move {
                // `write` queues its closure before it first waits: counted in the same poll.
                queued.fetch_add(1, Ordering::SeqCst);
                db.write(move |tx| {
                    tx.execute("INSERT INTO gc (n, note) VALUES (?1, 'first')", [n])
                        .map_err(platform::db::sqlite::map_err)?;
                    match n % 10 {
                        // Written, then refused by the closure itself: its insert must not stay.
                        3 => Err(StoreError::Internal(format!("write {n} gives up"))),
                        // A second insert of the same key: a conflict, and the first insert goes too.
                        7 => tx
                            .execute("INSERT INTO gc (n, note) VALUES (?1, 'again')", [n])
                            .map(|_| n)
                            .map_err(platform::db::sqlite::map_err),
                        _ => Ok(n),
                    }
                })
                .await
            })
        })
        .collect();
    wait::until("the 300 writes queued behind the first", || async { queued.load(Ordering::SeqCst) == 300 }).await;
    release.send(()).unwrap();
    holder.await.unwrap().unwrap();
    let results = futures::future::join_all(writes).await;
    for (n, result) in (0..300i64).zip(results) {
        match (n % 10, result.unwrap()) {
            (3, Err(StoreError::Internal(m))) => assert_eq!(m, format!("write {n} gives up")),
            (7, Err(StoreError::Conflict(_))) => {}
            (_, Ok(got)) => assert_eq!(got, n, "each writer gets its own answer"),
            (_, other) => panic!("write {n}: {other:?}"),
        }
    }
    // Per write: SAVEPOINT, the insert(s), RELEASE (or ROLLBACK TO and RELEASE): 240 × 3 + 30 × 4
    // + 30 × 5 = 990 statements; every transaction adds BEGIN and COMMIT. The first write, alone
    // in its transaction, adds SAVEPOINT, RELEASE, BEGIN and COMMIT. Fewer than 300 transactions
    // for the 300 means writes shared them.
    let transactions = (db.statements() - before - 990 - 4) / 2;
    assert!((1..300).contains(&transactions), "300 writes in {transactions} transactions");
    let stored: Vec<i64> = db
        .read(|c| {
            let mut stmt = c.prepare("SELECT n FROM gc ORDER BY n")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect()
        })
        .await
        .unwrap();
    let expected: Vec<i64> = (0..300).filter(|n| n % 10 != 3 && n % 10 != 7).collect();
    assert_eq!(stored, expected, "the failed writes left nothing, the others all committed");
}
