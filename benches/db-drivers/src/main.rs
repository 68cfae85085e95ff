//! Hot-read driver benchmark for Trellis: tokio-postgres vs sqlx on PostgreSQL, rusqlite vs sqlx
//! on SQLite. Creates the data, runs every driver for N rounds back to back, prints a markdown table.
//!
//! The sqlx legs run in `./sqlx`, a second Cargo project this program builds and starts once per
//! round and driver group; see README.md ("Why two projects").

mod harness;
mod norecycle;
mod rusqlite_driver;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_postgres::NoTls;
use uuid::Uuid;

use harness::{BoxError, Measurement, PG_SELECT, Plan, Task};

const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Driver names, in the order each round runs them.
const TOKIO_PG: &str = "tokio-postgres";
const SQLX_PG: &str = "sqlx-postgres";
const RUSQLITE: &str = "rusqlite-0.40";
const SQLX_SQLITE: &str = "sqlx-sqlite";
const RUSQLITE_CONTROL: &str = "rusqlite-0.32-control";
/// Run by default, in this order.
const DEFAULT: [&str; 5] = [TOKIO_PG, SQLX_PG, RUSQLITE, SQLX_SQLITE, RUSQLITE_CONTROL];
/// Everything `--drivers` accepts, in run order (the diagnostic `rusqlite-0.40-norecycle` only on request).
const ALL: [&str; 6] = [TOKIO_PG, SQLX_PG, RUSQLITE, norecycle::NAME, SQLX_SQLITE, RUSQLITE_CONTROL];

#[derive(Parser, Debug)]
#[command(about = "Hot-read benchmark: tokio-postgres vs sqlx (PostgreSQL), rusqlite vs sqlx (SQLite)")]
struct Args {
    /// PostgreSQL server to use; a fresh database `bench_<random>` is created on it and dropped.
    #[arg(long, env = "BENCH_PG_URL", default_value = DEFAULT_PG)]
    pg_url: String,
    /// Rows in bench_tasks.
    #[arg(long, default_value_t = 100_000)]
    rows: usize,
    /// Rounds, run back to back; the table reports the median and the min–max spread.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Warm-up, seconds (at --concurrency).
    #[arg(long, default_value = "3", value_parser = harness::secs)]
    warmup: Duration,
    /// Closed-loop throughput phase, seconds.
    #[arg(long, default_value = "10", value_parser = harness::secs)]
    throughput: Duration,
    /// Concurrency-1 latency phase, seconds.
    #[arg(long, default_value = "10", value_parser = harness::secs)]
    latency: Duration,
    /// Concurrent tasks in the warm-up and throughput phases.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Connections in every pool.
    #[arg(long, default_value_t = 16)]
    pool_size: usize,
    /// Comma-separated drivers to run: tokio-postgres, sqlx-postgres, rusqlite-0.40, sqlx-sqlite,
    /// rusqlite-0.32-control (the default set), and the diagnostic rusqlite-0.40-norecycle.
    #[arg(long, value_delimiter = ',')]
    drivers: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    for d in &args.drivers {
        if !ALL.contains(&d.as_str()) {
            return Err(format!("unknown driver {d:?}; known: {}", ALL.join(", ")).into());
        }
    }
    let wanted = |d: &str| {
        if args.drivers.is_empty() { DEFAULT.contains(&d) } else { args.drivers.iter().any(|w| w == d) }
    };
    let plan =
        Plan { warmup: args.warmup, throughput: args.throughput, latency: args.latency, concurrency: args.concurrency };

    let helper = if wanted(SQLX_PG) || wanted(SQLX_SQLITE) || wanted(RUSQLITE_CONTROL) {
        Some(build_helper().await?)
    } else {
        None
    };

    let tag = format!("{:012x}", Uuid::new_v4().as_u128() & 0xFFFF_FFFF_FFFF);
    let db_name = format!("bench_{tag}");
    let dir = std::env::temp_dir().join(format!("trellis-db-drivers-{tag}"));
    std::fs::create_dir_all(&dir)?;
    let sqlite_path = dir.join("bench.db");

    let mut admin_cfg: tokio_postgres::Config = args.pg_url.parse()?;
    admin_cfg.application_name("db-drivers-bench");
    let (admin, conn) = admin_cfg.connect(NoTls).await?;
    tokio::spawn(conn);
    admin.batch_execute(&format!("CREATE DATABASE {db_name}")).await?;
    let mut bench_cfg = admin_cfg.clone();
    bench_cfg.dbname(&db_name);
    let bench_url = with_dbname(&args.pg_url, &db_name);

    let outcome = run(&args, &plan, &wanted, helper.as_deref(), &bench_cfg, &bench_url, &sqlite_path).await;

    // Clean up whatever happened.
    if let Err(e) = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")).await {
        eprintln!("warning: could not drop database {db_name}: {e}");
    }
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        eprintln!("warning: could not remove {}: {e}", dir.display());
    }
    let (results, env) = outcome?;
    print_report(&args, &plan, &results, &env);
    Ok(())
}

/// Facts about the run, for the report.
struct Env {
    started: OffsetDateTime,
    pg_version: String,
    sqlite_versions: String,
    load_before: String,
    load_after: String,
}

async fn run(
    args: &Args,
    plan: &Plan,
    wanted: &dyn Fn(&str) -> bool,
    helper: Option<&Path>,
    bench_cfg: &tokio_postgres::Config,
    bench_url: &str,
    sqlite_path: &Path,
) -> Result<(Vec<Measurement>, Env), BoxError> {
    let started = OffsetDateTime::now_utc();
    eprintln!("setup: {} rows into PostgreSQL and SQLite ...", args.rows);
    let rows = make_rows(args.rows);
    let pg_version = setup_pg(bench_cfg, &rows).await?;
    setup_sqlite(sqlite_path, &rows)?;
    drop(rows);
    let pg_ids = Arc::new(load_pg_ids(bench_cfg).await?);
    let sqlite_ids = Arc::new(rusqlite_driver::load_ids(sqlite_path)?);
    let sqlite_versions = format!("rusqlite 0.40 links SQLite {}", rusqlite::version());
    let load_before = loadavg();

    let mut results = Vec::new();
    for round in 1..=args.rounds {
        eprintln!("round {round}/{}", args.rounds);
        if wanted(TOKIO_PG) {
            results.push(run_tokio_postgres(round, bench_cfg, args.pool_size, pg_ids.clone(), *plan).await?);
        }
        if wanted(SQLX_PG) {
            let h = helper.ok_or("no helper")?;
            results.extend(run_helper(h, args, round, &[SQLX_PG], bench_url, sqlite_path).await?);
        }
        if wanted(RUSQLITE) {
            results.push(
                rusqlite_driver::run(RUSQLITE, round, sqlite_path, args.pool_size, sqlite_ids.clone(), *plan).await?,
            );
        }
        if wanted(norecycle::NAME) {
            results.push(norecycle::run(round, sqlite_path, args.pool_size, sqlite_ids.clone(), *plan).await?);
        }
        let sqlite_helper: Vec<&str> = [SQLX_SQLITE, RUSQLITE_CONTROL].into_iter().filter(|d| wanted(d)).collect();
        if !sqlite_helper.is_empty() {
            let h = helper.ok_or("no helper")?;
            results.extend(run_helper(h, args, round, &sqlite_helper, bench_url, sqlite_path).await?);
        }
    }
    let env = Env { started, pg_version, sqlite_versions, load_before, load_after: loadavg() };
    Ok((results, env))
}

// ---------------------------------------------------------------------------------------------
// Data.

struct Rows {
    ids: Vec<Uuid>,
    project_ids: Vec<Uuid>,
    titles: Vec<String>,
    statuses: Vec<String>,
    positions: Vec<String>,
    created: Vec<OffsetDateTime>,
}

/// Deterministic-enough rows: UUIDv7 keys (as Trellis), 200 projects, titles of varied length.
fn make_rows(n: usize) -> Rows {
    let projects: Vec<Uuid> = (0..200).map(|_| Uuid::now_v7()).collect();
    let words = ["fix", "the", "board", "drag", "and", "drop", "ordering", "flaky", "login", "page", "export"];
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).expect("0 ns is valid");
    let mut r = Rows {
        ids: Vec::with_capacity(n),
        project_ids: Vec::with_capacity(n),
        titles: Vec::with_capacity(n),
        statuses: Vec::with_capacity(n),
        positions: Vec::with_capacity(n),
        created: Vec::with_capacity(n),
    };
    for i in 0..n {
        r.ids.push(Uuid::now_v7());
        r.project_ids.push(projects[i % projects.len()]);
        let len = 3 + i % 7;
        let title: Vec<&str> = (0..len).map(|k| words[(i * 7 + k * 3) % words.len()]).collect();
        r.titles.push(format!("Task {i}: {}", title.join(" ")));
        r.statuses.push(["todo", "in_progress", "done"][i % 3].to_string());
        r.positions.push(format!("a{:08}", i / projects.len()));
        r.created.push(now - time::Duration::seconds(i as i64));
    }
    r
}

async fn setup_pg(cfg: &tokio_postgres::Config, rows: &Rows) -> Result<String, BoxError> {
    let (client, conn) = cfg.connect(NoTls).await?;
    tokio::spawn(conn);
    client
        .batch_execute(
            "CREATE TABLE bench_tasks (
                 id         uuid PRIMARY KEY,
                 project_id uuid NOT NULL,
                 title      text NOT NULL,
                 status     text NOT NULL,
                 position   text NOT NULL,
                 created_at timestamptz NOT NULL
             )",
        )
        .await?;
    let insert = client
        .prepare(
            "INSERT INTO bench_tasks (id, project_id, title, status, position, created_at)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])",
        )
        .await?;
    const BATCH: usize = 10_000;
    for start in (0..rows.ids.len()).step_by(BATCH) {
        let end = (start + BATCH).min(rows.ids.len());
        client
            .execute(
                &insert,
                &[
                    &&rows.ids[start..end],
                    &&rows.project_ids[start..end],
                    &&rows.titles[start..end],
                    &&rows.statuses[start..end],
                    &&rows.positions[start..end],
                    &&rows.created[start..end],
                ],
            )
            .await?;
    }
    client.batch_execute("VACUUM ANALYZE bench_tasks").await?;
    let v: String = client.query_one("SHOW server_version", &[]).await?.get(0);
    Ok(v)
}

fn setup_sqlite(path: &Path, rows: &Rows) -> Result<(), BoxError> {
    let mut c = rusqlite::Connection::open(path)?;
    c.execute_batch(rusqlite_driver::PRAGMAS)?;
    // As Trellis: 16-byte BLOB UUIDs, RFC 3339 TEXT times, WITHOUT ROWID.
    c.execute_batch(
        "CREATE TABLE bench_tasks (
             id         BLOB PRIMARY KEY NOT NULL,
             project_id BLOB NOT NULL,
             title      TEXT NOT NULL,
             status     TEXT NOT NULL,
             position   TEXT NOT NULL,
             created_at TEXT NOT NULL
         ) WITHOUT ROWID;",
    )?;
    let tx = c.transaction()?;
    {
        let mut stmt = tx.prepare(
            "INSERT INTO bench_tasks (id, project_id, title, status, position, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for i in 0..rows.ids.len() {
            let created = rows.created[i].format(&time::format_description::well_known::Rfc3339)?;
            stmt.execute(rusqlite::params![
                rows.ids[i],
                rows.project_ids[i],
                rows.titles[i],
                rows.statuses[i],
                rows.positions[i],
                created
            ])?;
        }
    }
    tx.commit()?;
    c.execute_batch("ANALYZE; PRAGMA wal_checkpoint(TRUNCATE);")?;
    Ok(())
}

async fn load_pg_ids(cfg: &tokio_postgres::Config) -> Result<Vec<Uuid>, BoxError> {
    let (client, conn) = cfg.connect(NoTls).await?;
    tokio::spawn(conn);
    let rows = client.query("SELECT id FROM bench_tasks", &[]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

// ---------------------------------------------------------------------------------------------
// tokio-postgres + deadpool-postgres, as `platform::db::postgres` (Fast recycling, 16 connections).

async fn run_tokio_postgres(
    round: u32,
    cfg: &tokio_postgres::Config,
    size: usize,
    ids: Arc<Vec<Uuid>>,
    plan: Plan,
) -> Result<Measurement, BoxError> {
    let manager = Manager::from_config(cfg.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    let pool = Pool::builder(manager).max_size(size).runtime(deadpool_postgres::Runtime::Tokio1).build()?;
    let mut held = Vec::with_capacity(size);
    for _ in 0..size {
        held.push(pool.get().await?);
    }
    drop(held);
    let p = pool.clone();
    let m = harness::measure(TOKIO_PG, round, ids, plan, move |id| {
        let pool = p.clone();
        async move {
            let client = pool.get().await?;
            let stmt = client.prepare_cached(PG_SELECT).await?;
            let row = client.query_one(&stmt, &[&id]).await?;
            Ok::<Task, BoxError>(Task {
                id: row.try_get(0)?,
                project_id: row.try_get(1)?,
                title: row.try_get(2)?,
                status: row.try_get(3)?,
                position: row.try_get(4)?,
                created_at: row.try_get(5)?,
            })
        }
    })
    .await?;
    pool.close();
    Ok(m)
}

// ---------------------------------------------------------------------------------------------
// The sqlx helper program.

/// Builds `./sqlx` (release, same target dir) and returns its executable.
async fn build_helper() -> Result<PathBuf, BoxError> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("sqlx").join("Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("building the sqlx helper ({}) ...", manifest.display());
    let out = tokio::process::Command::new(cargo)
        .args(["build", "--release", "--message-format", "json-render-diagnostics", "--manifest-path"])
        .arg(&manifest)
        .stderr(Stdio::inherit())
        .output()
        .await?;
    if !out.status.success() {
        return Err("building the sqlx helper failed".into());
    }
    // Find `"executable":"..."` in the compiler-artifact message of our binary (no JSON crate needed).
    let stdout = String::from_utf8_lossy(&out.stdout);
    let exe = stdout
        .lines()
        .filter(|l| l.contains("\"reason\":\"compiler-artifact\"") && l.contains("db-drivers-bench-sqlx"))
        .find_map(|l| {
            let rest = &l[l.find("\"executable\":\"")? + "\"executable\":\"".len()..];
            Some(PathBuf::from(&rest[..rest.find('"')?]))
        })
        .ok_or("no executable in cargo's output for the sqlx helper")?;
    Ok(exe)
}

async fn run_helper(
    exe: &Path,
    args: &Args,
    round: u32,
    drivers: &[&str],
    pg_url: &str,
    sqlite_path: &Path,
) -> Result<Vec<Measurement>, BoxError> {
    let mut child = tokio::process::Command::new(exe)
        .arg("--round")
        .arg(round.to_string())
        .arg("--drivers")
        .arg(drivers.join(","))
        .arg("--pg-url")
        .arg(pg_url)
        .arg("--sqlite-path")
        .arg(sqlite_path)
        .arg("--pool-size")
        .arg(args.pool_size.to_string())
        .arg("--concurrency")
        .arg(args.concurrency.to_string())
        .arg("--warmup")
        .arg(args.warmup.as_secs_f64().to_string())
        .arg("--throughput")
        .arg(args.throughput.as_secs_f64().to_string())
        .arg("--latency")
        .arg(args.latency.as_secs_f64().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    let mut out = Vec::new();
    while let Some(line) = lines.next_line().await? {
        match Measurement::from_line(&line) {
            Some(m) => out.push(m),
            None => eprintln!("  (helper) {line}"),
        }
    }
    let status = child.wait().await?;
    if !status.success() || out.len() != drivers.len() {
        return Err(format!("sqlx helper failed ({status}) for {drivers:?}").into());
    }
    Ok(out)
}

/// `url` with its database name replaced (URLs of the form `postgres://…/db[?…]`).
fn with_dbname(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{db}?{q}"),
        None => format!("{host_part}/{db}"),
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

// ---------------------------------------------------------------------------------------------
// Report.

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

struct Stat {
    med: f64,
    min: f64,
    max: f64,
}

fn stat(v: Vec<f64>) -> Stat {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Stat { med: median(v), min, max }
}

fn cell(s: &Stat, decimals: usize) -> String {
    format!("{:.d$} ({:.d$}–{:.d$})", s.med, s.min, s.max, d = decimals)
}

fn print_report(args: &Args, plan: &Plan, results: &[Measurement], env: &Env) {
    let mut by: BTreeMap<usize, (String, Vec<&Measurement>)> = BTreeMap::new();
    for m in results {
        let order = ALL.iter().position(|d| *d == m.driver).unwrap_or(ALL.len());
        by.entry(order).or_insert_with(|| (m.driver.clone(), Vec::new())).1.push(m);
    }
    let us = |ns: u64| ns as f64 / 1e3;
    let date = env.started.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| "?".into());

    println!();
    println!("## Hot read: select one row by random primary key, decode into a struct");
    println!();
    println!(
        "{date}; {} cores; PostgreSQL {}; {}; {} rows; pool {} connections; \
         {} round(s) back to back; per round and driver: warm-up {:?}, throughput {:?} at {} tasks, \
         latency {:?} at concurrency 1; load generator in-process; load average before {} / after {}.",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        env.pg_version,
        env.sqlite_versions,
        args.rows,
        args.pool_size,
        args.rounds,
        plan.warmup,
        plan.throughput,
        plan.concurrency,
        plan.latency,
        env.load_before,
        env.load_after,
    );
    println!();
    println!("Median of {} rounds (min–max across rounds). Latency in µs.", args.rounds);
    println!();
    println!("| driver | ops/s ({} tasks) | p50 | p90 | p99 | p99.9 | max | samples (c=1) |", plan.concurrency);
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut medians: BTreeMap<String, (f64, f64, f64)> = BTreeMap::new();
    for (name, ms) in by.values() {
        let ops = stat(ms.iter().map(|m| m.ops_per_sec).collect());
        let p50 = stat(ms.iter().map(|m| us(m.p50)).collect());
        let p90 = stat(ms.iter().map(|m| us(m.p90)).collect());
        let p99 = stat(ms.iter().map(|m| us(m.p99)).collect());
        let p999 = stat(ms.iter().map(|m| us(m.p999)).collect());
        let max = stat(ms.iter().map(|m| us(m.max)).collect());
        let n = stat(ms.iter().map(|m| m.latency_count as f64).collect());
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} | {:.0} |",
            cell(&ops, 0),
            cell(&p50, 1),
            cell(&p90, 1),
            cell(&p99, 1),
            cell(&p999, 1),
            cell(&max, 0),
            n.med
        );
        medians.insert(name.clone(), (ops.med, p50.med, p99.med));
    }
    println!();
    let ratio = |a: &str, b: &str| {
        if let (Some(x), Some(y)) = (medians.get(a), medians.get(b)) {
            println!(
                "- {a} vs {b}: throughput ×{:.2}, p50 latency ×{:.2} ({:.1} vs {:.1} µs), p99 ×{:.2}",
                x.0 / y.0,
                x.1 / y.1,
                x.1,
                y.1,
                x.2 / y.2
            );
        }
    };
    ratio(TOKIO_PG, SQLX_PG);
    ratio(RUSQLITE, SQLX_SQLITE);
    ratio(RUSQLITE_CONTROL, SQLX_SQLITE);
    ratio(RUSQLITE, RUSQLITE_CONTROL);
    ratio(norecycle::NAME, SQLX_SQLITE);
    ratio(norecycle::NAME, RUSQLITE);
    println!();
    println!("Per round:");
    println!();
    println!("| round | driver | ops/s | p50 | p90 | p99 | p99.9 | max |");
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
    let mut sorted: Vec<&Measurement> = results.iter().collect();
    sorted.sort_by_key(|m| (m.round, ALL.iter().position(|d| *d == m.driver)));
    for m in sorted {
        println!(
            "| {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} |",
            m.round,
            m.driver,
            m.ops_per_sec,
            us(m.p50),
            us(m.p90),
            us(m.p99),
            us(m.p999),
            us(m.max)
        );
    }
}
