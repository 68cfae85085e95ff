//! Scheduled data-lifecycle jobs, run once per cluster: the [`Job`] trait, the [`JobRunner`] that
//! takes a per-job lease in the database before running one, and the scheduler.
//!
//! - **Lease.** `job_leases` (its own migration set, [`MIGRATIONS`]) has one row per job name.
//!   Taking it is one conditional upsert, the same statement on SQLite and PostgreSQL: insert the
//!   row, or take it over only `WHERE lease_until <= now` (and, for a scheduled run, only when the
//!   last run started at least one interval ago). The primary key serializes concurrent takers,
//!   so of several replicas exactly one runs a job; the others see the row it wrote. A lease lasts
//!   [`DEFAULT_LEASE`] and is renewed by the runner after every batch once half of it is spent, so
//!   a long run keeps it and a crashed holder blocks the job for one lease at most. A run that
//!   finds its lease taken over stops at its next batch.
//! - **Progress.** A job reports each batch through [`JobContext::progress`] (or lets
//!   [`JobContext::drain`] loop its batches): a log line per batch and at the start and end with
//!   the counts per kind (never personal data), and the metrics `trellis_job_runs_total{job,
//!   outcome}`, `trellis_job_items_total{job,kind}`, `trellis_job_last_success_timestamp_seconds
//!   {job}` and `trellis_job_running{job}`. The last run's start, end, outcome and counts stay in
//!   the lease row for `trellis jobs list`.
//! - **Schedule.** [`spawn_scheduler`] checks each job a few minutes after start (with jitter),
//!   then every eighth of its interval (between a minute and an hour, with jitter), and runs it
//!   when its last run started an interval ago or more; it stops on the shutdown channel.
//!   `trellis jobs run NAME` runs a job at once through the same lease ([`JobRunner::run`]).
//!
//! Jobs delete in bounded batches ([`DEFAULT_BATCH`] rows, one transaction each), so none holds
//! locks for long. The platform's own jobs are in [`builtin`]; services bring theirs.

pub mod builtin;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::db::{Database, Migration, Migrations, PgDb, SqliteDb, StoreError, postgres, sqlite};

/// The lease table, for `Database::migrate` (a history of its own, `jobs`).
pub const MIGRATIONS: Migrations = Migrations {
    service: "jobs",
    sqlite: &[Migration {
        version: 1,
        name: "job_leases",
        // Times are Unix microseconds: integers compare in time order.
        sql: "CREATE TABLE job_leases (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            lease_until INTEGER NOT NULL,
            last_started_at INTEGER,
            last_finished_at INTEGER,
            last_outcome TEXT,
            last_items TEXT
        );",
    }],
    postgres: &[Migration {
        version: 1,
        name: "job_leases",
        sql: "CREATE TABLE job_leases (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            lease_until TIMESTAMPTZ NOT NULL,
            last_started_at TIMESTAMPTZ,
            last_finished_at TIMESTAMPTZ,
            last_outcome TEXT,
            last_items TEXT
        );",
    }],
};

/// How often a job runs unless it or the settings say otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(86_400);
/// How long a lease lasts before another process may take the job over (renewed while running).
pub const DEFAULT_LEASE: time::Duration = time::Duration::minutes(10);
/// Rows per batch (one transaction each).
pub const DEFAULT_BATCH: i64 = 1000;

/// Items a run handled, per kind (`sessions`, `refresh_tokens`, `objects`…).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobReport {
    pub items: BTreeMap<String, u64>,
}

impl JobReport {
    pub fn add(&mut self, kind: &str, n: u64) {
        *self.items.entry(kind.to_string()).or_default() += n;
    }

    /// The count of `kind` (0 when absent).
    pub fn get(&self, kind: &str) -> u64 {
        self.items.get(kind).copied().unwrap_or(0)
    }

    /// `kind=n` pairs, for logs and the CLI.
    pub fn summary(&self) -> String {
        if self.items.is_empty() {
            return "nothing".into();
        }
        self.items.iter().map(|(k, n)| format!("{k}={n}")).collect::<Vec<_>>().join(" ")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("object storage: {0}")]
    Objects(String),
    #[error("file system: {0}")]
    Files(String),
    #[error("the lease was taken over by another process")]
    LeaseLost,
    #[error("stopped by shutdown")]
    Stopped,
}

/// One data-lifecycle job.
#[async_trait]
pub trait Job: Send + Sync {
    /// The name `trellis jobs run` takes (lowercase, `-` between words).
    fn name(&self) -> &'static str;
    /// What it does, in one line.
    fn description(&self) -> &'static str;
    /// How often the scheduler runs it.
    fn interval(&self) -> Duration {
        DEFAULT_INTERVAL
    }
    /// Does the work in batches, reporting each through `ctx`; returns the counts per kind
    /// (usually [`JobContext::report`]).
    async fn run(&self, ctx: &JobContext) -> Result<JobReport, JobError>;
}

/// What a running job is given: the run's reference time, the batch size, and the progress
/// channel that logs, counts and keeps the lease.
pub struct JobContext {
    job: &'static str,
    now: OffsetDateTime,
    batch_size: i64,
    report: Mutex<JobReport>,
    lease: Lease,
    stop: watch::Receiver<bool>,
}

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext").field("job", &self.job).field("now", &self.now).finish_non_exhaustive()
    }
}

impl JobContext {
    /// When the run started: cutoffs are computed from it.
    pub fn now(&self) -> OffsetDateTime {
        self.now
    }

    /// The most rows a batch should touch.
    pub fn batch_size(&self) -> i64 {
        self.batch_size
    }

    /// The counts reported so far.
    pub fn report(&self) -> JobReport {
        self.report.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Records a batch of `n` items of `kind`: a log line, the items metric, and the lease renewed
    /// when half spent. Fails when the lease was lost or shutdown began: the job then stops.
    pub async fn progress(&self, kind: &'static str, n: u64) -> Result<(), JobError> {
        self.report.lock().unwrap_or_else(std::sync::PoisonError::into_inner).add(kind, n);
        if n > 0 {
            metrics::counter!("trellis_job_items_total", "job" => self.job, "kind" => kind).increment(n);
            tracing::info!(job = self.job, kind, items = n, "job batch done");
        }
        self.lease.keep().await?;
        if *self.stop.borrow() {
            return Err(JobError::Stopped);
        }
        Ok(())
    }

    /// Runs `batch(limit)` until it returns fewer than `limit` items, reporting each batch as
    /// `kind`; returns the total.
    pub async fn drain<F, Fut>(&self, kind: &'static str, mut batch: F) -> Result<u64, JobError>
    where
        F: FnMut(i64) -> Fut + Send,
        Fut: Future<Output = Result<u64, StoreError>> + Send,
    {
        let mut total = 0;
        loop {
            let n = batch(self.batch_size).await?;
            total += n;
            self.progress(kind, n).await?;
            if n < self.batch_size.max(1) as u64 {
                return Ok(total);
            }
        }
    }
}

/// A held lease: renewed when half spent.
struct Lease {
    leases: Leases,
    clock: Arc<dyn Clock>,
    name: &'static str,
    holder: String,
    length: time::Duration,
    until: Mutex<OffsetDateTime>,
}

impl Lease {
    async fn keep(&self) -> Result<(), JobError> {
        let now = self.clock.now();
        let until = *self.until.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if until - now > self.length / 2 {
            return Ok(());
        }
        let next = now + self.length;
        if !self.leases.renew(self.name, &self.holder, next).await? {
            return Err(JobError::LeaseLost);
        }
        *self.until.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = next;
        Ok(())
    }
}

/// A job's row of `job_leases`: who holds it, and how its last run went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    pub name: String,
    pub holder: String,
    pub lease_until: OffsetDateTime,
    pub last_started_at: Option<OffsetDateTime>,
    pub last_finished_at: Option<OffsetDateTime>,
    /// `ok`, `failed`, `lease_lost` or `stopped`; None while the first run is under way.
    pub last_outcome: Option<String>,
    pub last_items: JobReport,
}

impl JobStatus {
    /// Whether a run holds the lease at `now`.
    pub fn running(&self, now: OffsetDateTime) -> bool {
        self.lease_until > now && self.last_finished_at.is_none_or(|f| Some(f) < self.last_started_at)
    }
}

/// The lease table on either backend.
#[derive(Debug, Clone)]
enum Leases {
    Sqlite(SqliteDb),
    Postgres(PgDb),
}

fn micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

fn from_micros(m: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(m) * 1000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn encode_items(r: &JobReport) -> String {
    serde_json::to_string(&r.items).unwrap_or_else(|_| "{}".into())
}

fn decode_items(s: Option<String>) -> JobReport {
    JobReport { items: s.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default() }
}

/// Takes the lease: inserts the row, or takes it over when the lease ended and the last run
/// started at or before `due_before`. The same statement on both backends.
const TAKE: &str = "INSERT INTO job_leases (name, holder, lease_until, last_started_at) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, lease_until = excluded.lease_until, \
     last_started_at = excluded.last_started_at \
     WHERE job_leases.lease_until <= $4 AND (job_leases.last_started_at IS NULL OR job_leases.last_started_at <= $5)";
const RENEW: &str = "UPDATE job_leases SET lease_until = $3 WHERE name = $1 AND holder = $2";
const FINISH: &str = "UPDATE job_leases SET lease_until = $3, last_finished_at = $3, last_outcome = $4, \
     last_items = $5 WHERE name = $1 AND holder = $2";
const STATUS: &str = "SELECT name, holder, lease_until, last_started_at, last_finished_at, last_outcome, last_items \
     FROM job_leases ORDER BY name";

/// SQLite numbers its parameters `?N`; the statements above use PostgreSQL's `$N`.
fn sqlite_sql(sql: &str) -> String {
    sql.replace('$', "?")
}

impl Leases {
    fn new(db: &Database) -> Self {
        match db {
            Database::Sqlite(db) => Leases::Sqlite(db.clone()),
            Database::Postgres(db) => Leases::Postgres(db.clone()),
        }
    }

    async fn take(
        &self,
        name: &'static str,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
        due_before: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        match self {
            Leases::Sqlite(db) => {
                let holder = holder.to_string();
                db.write(move |tx| {
                    tx.execute(
                        &sqlite_sql(TAKE),
                        rusqlite::params![name, holder, micros(until), micros(now), micros(due_before)],
                    )
                    .map(|n| n == 1)
                    .map_err(sqlite::map_err)
                })
                .await
            }
            Leases::Postgres(db) => {
                let client = db.client().await?;
                let n = db.execute(&client, TAKE, &[&name, &holder, &until, &now, &due_before]).await?;
                Ok(n == 1)
            }
        }
    }

    async fn renew(&self, name: &'static str, holder: &str, until: OffsetDateTime) -> Result<bool, StoreError> {
        match self {
            Leases::Sqlite(db) => {
                let holder = holder.to_string();
                db.write(move |tx| {
                    tx.execute(&sqlite_sql(RENEW), rusqlite::params![name, holder, micros(until)])
                        .map(|n| n == 1)
                        .map_err(sqlite::map_err)
                })
                .await
            }
            Leases::Postgres(db) => {
                let client = db.client().await?;
                Ok(db.execute(&client, RENEW, &[&name, &holder, &until]).await? == 1)
            }
        }
    }

    /// Ends the run: releases the lease and records the outcome; false when it was no longer ours.
    async fn finish(
        &self,
        name: &'static str,
        holder: &str,
        at: OffsetDateTime,
        outcome: &'static str,
        items: &JobReport,
    ) -> Result<bool, StoreError> {
        let items = encode_items(items);
        match self {
            Leases::Sqlite(db) => {
                let holder = holder.to_string();
                db.write(move |tx| {
                    tx.execute(&sqlite_sql(FINISH), rusqlite::params![name, holder, micros(at), outcome, items])
                        .map(|n| n == 1)
                        .map_err(sqlite::map_err)
                })
                .await
            }
            Leases::Postgres(db) => {
                let client = db.client().await?;
                Ok(db.execute(&client, FINISH, &[&name, &holder, &at, &outcome, &items]).await? == 1)
            }
        }
    }

    async fn status(&self) -> Result<Vec<JobStatus>, StoreError> {
        match self {
            Leases::Sqlite(db) => {
                db.read(|c| {
                    let mut stmt = c.prepare_cached(STATUS)?;
                    let rows = stmt.query_map([], |r| {
                        Ok(JobStatus {
                            name: r.get(0)?,
                            holder: r.get(1)?,
                            lease_until: from_micros(r.get(2)?),
                            last_started_at: r.get::<_, Option<i64>>(3)?.map(from_micros),
                            last_finished_at: r.get::<_, Option<i64>>(4)?.map(from_micros),
                            last_outcome: r.get(5)?,
                            last_items: decode_items(r.get(6)?),
                        })
                    })?;
                    rows.collect()
                })
                .await
            }
            Leases::Postgres(db) => {
                let client = db.client().await?;
                let rows = db.query(&client, STATUS, &[]).await?;
                rows.iter()
                    .map(|r| {
                        Ok(JobStatus {
                            name: r.try_get(0).map_err(postgres::map_err)?,
                            holder: r.try_get(1).map_err(postgres::map_err)?,
                            lease_until: r.try_get(2).map_err(postgres::map_err)?,
                            last_started_at: r.try_get(3).map_err(postgres::map_err)?,
                            last_finished_at: r.try_get(4).map_err(postgres::map_err)?,
                            last_outcome: r.try_get(5).map_err(postgres::map_err)?,
                            last_items: decode_items(r.try_get(6).map_err(postgres::map_err)?),
                        })
                    })
                    .collect()
            }
        }
    }
}

/// What an attempt to run a job came to.
#[derive(Debug)]
pub enum RunOutcome {
    /// It ran to the end.
    Ran(JobReport),
    /// Another process holds the lease (`holder`, until `until`).
    Busy { holder: String, until: OffsetDateTime },
    /// Scheduled only: the last run started less than an interval ago.
    NotDue,
}

/// Runs jobs under their lease. One per process: its holder id names this process in the table.
pub struct JobRunner {
    leases: Leases,
    clock: Arc<dyn Clock>,
    holder: String,
    lease: time::Duration,
    batch_size: i64,
}

impl std::fmt::Debug for JobRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobRunner").field("holder", &self.holder).finish_non_exhaustive()
    }
}

impl JobRunner {
    /// A runner over `db` (migrated with [`MIGRATIONS`]), with [`DEFAULT_LEASE`] and
    /// [`DEFAULT_BATCH`]. Its holder id is the process id and a random part (no host name).
    pub fn new(db: &Database, clock: Arc<dyn Clock>) -> Self {
        let holder = format!("pid{}-{}", std::process::id(), hex::encode(crate::crypto::random_bytes::<6>()));
        Self { leases: Leases::new(db), clock, holder, lease: DEFAULT_LEASE, batch_size: DEFAULT_BATCH }
    }

    pub fn with_lease(mut self, lease: time::Duration) -> Self {
        self.lease = lease;
        self
    }

    pub fn with_batch_size(mut self, n: i64) -> Self {
        self.batch_size = n.max(1);
        self
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Runs `job` now if no other process holds its lease, however recently it last ran (what
    /// `trellis jobs run` does).
    pub async fn run(&self, job: &dyn Job, stop: watch::Receiver<bool>) -> Result<RunOutcome, JobError> {
        let now = self.clock.now();
        self.run_due(job, now + time::Duration::days(365 * 100), stop).await
    }

    /// Runs `job` if no other process holds its lease and its last run started `interval` ago or
    /// more (what the scheduler does).
    pub async fn run_if_due(
        &self,
        job: &dyn Job,
        interval: Duration,
        stop: watch::Receiver<bool>,
    ) -> Result<RunOutcome, JobError> {
        let interval = time::Duration::try_from(interval).unwrap_or(time::Duration::days(365));
        let now = self.clock.now();
        self.run_due(job, now - interval, stop).await
    }

    async fn run_due(
        &self,
        job: &dyn Job,
        due_before: OffsetDateTime,
        stop: watch::Receiver<bool>,
    ) -> Result<RunOutcome, JobError> {
        let name = job.name();
        let now = self.clock.now();
        let until = now + self.lease;
        if !self.leases.take(name, &self.holder, now, until, due_before).await? {
            let row = self.leases.status().await?.into_iter().find(|s| s.name == name);
            return Ok(match row {
                Some(s) if s.lease_until > now => RunOutcome::Busy { holder: s.holder, until: s.lease_until },
                _ => RunOutcome::NotDue,
            });
        }
        let ctx = JobContext {
            job: name,
            now,
            batch_size: self.batch_size,
            report: Mutex::default(),
            lease: Lease {
                leases: self.leases.clone(),
                clock: self.clock.clone(),
                name,
                holder: self.holder.clone(),
                length: self.lease,
                until: Mutex::new(until),
            },
            stop,
        };
        metrics::gauge!("trellis_job_running", "job" => name).set(1.0);
        tracing::info!(job = name, holder = %self.holder, "job started");
        let started = std::time::Instant::now();
        let result = job.run(&ctx).await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        metrics::gauge!("trellis_job_running", "job" => name).set(0.0);
        let (outcome, report) = match &result {
            Ok(report) => ("ok", report.clone()),
            Err(JobError::LeaseLost) => ("lease_lost", ctx.report()),
            Err(JobError::Stopped) => ("stopped", ctx.report()),
            Err(_) => ("failed", ctx.report()),
        };
        metrics::counter!("trellis_job_runs_total", "job" => name, "outcome" => outcome).increment(1);
        let end = self.clock.now();
        if outcome != "lease_lost" && !self.leases.finish(name, &self.holder, end, outcome, &report).await? {
            tracing::warn!(job = name, "job finished after its lease was taken over");
        }
        match result {
            Ok(report) => {
                metrics::gauge!("trellis_job_last_success_timestamp_seconds", "job" => name)
                    .set(end.unix_timestamp() as f64);
                tracing::info!(job = name, items = %report.summary(), elapsed_ms, "job finished");
                Ok(RunOutcome::Ran(report))
            }
            Err(e) => {
                tracing::warn!(job = name, outcome, error = %e, items = %report.summary(), elapsed_ms, "job did not finish");
                Err(e)
            }
        }
    }

    /// Every job's lease row, by name.
    pub async fn status(&self) -> Result<Vec<JobStatus>, StoreError> {
        self.leases.status().await
    }
}

/// A random duration between zero and `max`.
fn jitter(max: Duration) -> Duration {
    let r = u32::from_le_bytes(crate::crypto::random_bytes::<4>());
    max.mul_f64(f64::from(r) / f64::from(u32::MAX))
}

/// How long the scheduler waits between checks of a job run every `interval`: an eighth of it,
/// between a minute and an hour.
fn check_period(interval: Duration) -> Duration {
    (interval / 8).clamp(Duration::from_secs(60), Duration::from_secs(3600))
}

/// Schedules `jobs` (each with its interval) on `runner`: a first check between two and five
/// minutes after start, then one every [`check_period`] plus up to 10 % jitter; a job runs when
/// its last run, anywhere in the cluster, started an interval ago or more. One task per job, all
/// ending when `stop` turns true (a running job stops at its next batch).
pub fn spawn_scheduler(
    runner: Arc<JobRunner>,
    jobs: Vec<(Arc<dyn Job>, Duration)>,
    stop: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    jobs.into_iter()
        .map(|(job, interval)| {
            let runner = runner.clone();
            let mut stop = stop.clone();
            tokio::spawn(async move {
                let mut delay = Duration::from_secs(120) + jitter(Duration::from_secs(180));
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.changed() => return,
                    }
                    if *stop.borrow() {
                        return;
                    }
                    match runner.run_if_due(job.as_ref(), interval, stop.clone()).await {
                        Ok(RunOutcome::Busy { .. } | RunOutcome::NotDue | RunOutcome::Ran(_)) => {}
                        Err(JobError::Stopped) => return,
                        // Logged by the runner; the next check tries again.
                        Err(_) => {}
                    }
                    let period = check_period(interval);
                    delay = period + jitter(period / 10);
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_periods_are_bounded() {
        assert_eq!(check_period(Duration::from_secs(86_400)), Duration::from_secs(3600));
        assert_eq!(check_period(Duration::from_secs(3600 * 4)), Duration::from_secs(1800));
        assert_eq!(check_period(Duration::from_secs(60)), Duration::from_secs(60));
        for _ in 0..100 {
            assert!(jitter(Duration::from_secs(10)) <= Duration::from_secs(10));
        }
    }

    #[test]
    fn statements_are_the_same_on_both_backends() {
        assert_eq!(sqlite_sql("WHERE a = $1 AND b <= $5"), "WHERE a = ?1 AND b <= ?5");
    }

    #[test]
    fn reports_sum_per_kind() {
        let mut r = JobReport::default();
        r.add("sessions", 2);
        r.add("sessions", 3);
        r.add("tokens", 1);
        assert_eq!((r.get("sessions"), r.get("tokens"), r.get("other")), (5, 1, 0));
        assert_eq!(r.summary(), "sessions=5 tokens=1");
        assert_eq!(decode_items(Some(encode_items(&r))), r);
    }
}
