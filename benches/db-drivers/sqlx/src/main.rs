//! The sqlx legs of the db-drivers benchmark (and the rusqlite-0.32 control), started by `..`.
//!
//! Runs one round of the named drivers against an existing database and SQLite file and prints one
//! `RESULT` line each; the harness and the rusqlite code are `..`'s own files, compiled here again.

#[path = "../../src/harness.rs"]
mod harness;
#[path = "../../src/rusqlite_driver.rs"]
mod rusqlite_driver;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use sqlx::postgres::{PgPoolOptions, PgRow};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{FromRow, Row};
use uuid::Uuid;

use harness::{BoxError, PG_SELECT, Plan, SQLITE_SELECT, Task};

#[derive(Parser, Debug)]
struct Args {
    #[arg(long)]
    round: u32,
    #[arg(long, value_delimiter = ',')]
    drivers: Vec<String>,
    #[arg(long)]
    pg_url: String,
    #[arg(long)]
    sqlite_path: PathBuf,
    #[arg(long)]
    pool_size: u32,
    #[arg(long)]
    concurrency: usize,
    #[arg(long, value_parser = harness::secs)]
    warmup: Duration,
    #[arg(long, value_parser = harness::secs)]
    throughput: Duration,
    #[arg(long, value_parser = harness::secs)]
    latency: Duration,
}

// What `#[derive(FromRow)]` would write, by index (as the tokio-postgres and rusqlite legs read).
impl<'r> FromRow<'r, PgRow> for Task {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        Ok(Task {
            id: row.try_get(0)?,
            project_id: row.try_get(1)?,
            title: row.try_get(2)?,
            status: row.try_get(3)?,
            position: row.try_get(4)?,
            created_at: row.try_get(5)?,
        })
    }
}

impl<'r> FromRow<'r, SqliteRow> for Task {
    fn from_row(row: &'r SqliteRow) -> Result<Self, sqlx::Error> {
        let created: &str = row.try_get(5)?;
        let created_at =
            harness::parse_time(created).map_err(|source| sqlx::Error::ColumnDecode { index: "5".into(), source })?;
        Ok(Task {
            id: row.try_get(0)?,
            project_id: row.try_get(1)?,
            title: row.try_get(2)?,
            status: row.try_get(3)?,
            position: row.try_get(4)?,
            created_at,
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let plan =
        Plan { warmup: args.warmup, throughput: args.throughput, latency: args.latency, concurrency: args.concurrency };
    for d in &args.drivers {
        match d.as_str() {
            "sqlx-postgres" => sqlx_postgres(&args, plan).await?,
            "sqlx-sqlite" => sqlx_sqlite(&args, plan).await?,
            "rusqlite-0.32-control" => {
                let ids = Arc::new(rusqlite_driver::load_ids(&args.sqlite_path)?);
                eprintln!("  [{d}] links SQLite {}", rusqlite::version());
                let m =
                    rusqlite_driver::run(d, args.round, &args.sqlite_path, args.pool_size as usize, ids, plan).await?;
                println!("{}", m.to_line());
            }
            other => return Err(format!("unknown driver {other:?}").into()),
        }
    }
    Ok(())
}

/// sqlx's pool pings a connection on every acquire by default (`test_before_acquire`); Trellis's
/// deadpool-postgres uses Fast recycling (no query), so the ping is turned off to compare drivers.
async fn sqlx_postgres(args: &Args, plan: Plan) -> Result<(), BoxError> {
    let pool = PgPoolOptions::new()
        .max_connections(args.pool_size)
        .min_connections(args.pool_size)
        .test_before_acquire(false)
        .connect(&args.pg_url)
        .await?;
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM bench_tasks").fetch_all(&pool).await?;
    let mut held = Vec::new();
    for _ in 0..args.pool_size {
        held.push(pool.acquire().await?);
    }
    drop(held);
    let p = pool.clone();
    let m = harness::measure("sqlx-postgres", args.round, Arc::new(ids), plan, move |id| {
        let pool = p.clone();
        async move {
            let t: Task = sqlx::query_as(PG_SELECT).bind(id).fetch_one(&pool).await?;
            Ok::<Task, BoxError>(t)
        }
    })
    .await?;
    println!("{}", m.to_line());
    pool.close().await;
    Ok(())
}

/// Same pragmas as the rusqlite pool; `test_before_acquire` off as for PostgreSQL (note:
/// deadpool-sqlite, unlike deadpool-postgres, always runs a `SELECT` when it recycles).
async fn sqlx_sqlite(args: &Args, plan: Plan) -> Result<(), BoxError> {
    let opts = SqliteConnectOptions::new()
        .filename(&args.sqlite_path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(args.pool_size)
        .min_connections(args.pool_size)
        .test_before_acquire(false)
        .connect_with(opts)
        .await?;
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM bench_tasks").fetch_all(&pool).await?;
    eprintln!(
        "  [sqlx-sqlite] links SQLite {}",
        sqlx::query_scalar::<_, String>("SELECT sqlite_version()").fetch_one(&pool).await?
    );
    let mut held = Vec::new();
    for _ in 0..args.pool_size {
        held.push(pool.acquire().await?);
    }
    drop(held);
    let p = pool.clone();
    let m = harness::measure("sqlx-sqlite", args.round, Arc::new(ids), plan, move |id| {
        let pool = p.clone();
        async move {
            let t: Task = sqlx::query_as(SQLITE_SELECT).bind(id).fetch_one(&pool).await?;
            Ok::<Task, BoxError>(t)
        }
    })
    .await?;
    println!("{}", m.to_line());
    pool.close().await;
    Ok(())
}
