//! Measurement harness shared, source for source, by both benchmark programs (`..` and `../sqlx`).
//!
//! One "operation" is: pick a random primary key, fetch that row, decode it into [`Task`]. Each
//! driver hands the harness a closure doing exactly that; the harness runs a warm-up, a closed-loop
//! throughput phase and a concurrency-1 latency phase; the sqlx program hands each result back to
//! the orchestrator as one `RESULT` line on stdout.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The decoded row (docs/PERFORMANCE.md S3 shape). Every field is decoded; only `id` is compared, the
/// rest go through `black_box` so the decode cannot be optimised away.
#[derive(Debug, Clone)]
#[allow(dead_code)]
pub struct Task {
    pub id: Uuid,
    pub project_id: Uuid,
    pub title: String,
    pub status: String,
    pub position: String,
    pub created_at: OffsetDateTime,
}

/// The hot read, the same text for every driver (`$1` is understood by SQLite too).
pub const PG_SELECT: &str = "SELECT id, project_id, title, status, position, created_at FROM bench_tasks WHERE id = $1";
pub const SQLITE_SELECT: &str =
    "SELECT id, project_id, title, status, position, created_at FROM bench_tasks WHERE id = ?1";

/// SQLite stores times as RFC 3339 TEXT, as Trellis does; both SQLite drivers parse them with this.
pub fn parse_time(s: &str) -> Result<OffsetDateTime, BoxError> {
    Ok(OffsetDateTime::parse(s, &Rfc3339)?)
}

/// Phase lengths and concurrency.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub warmup: Duration,
    pub throughput: Duration,
    pub latency: Duration,
    /// Concurrent tasks in the warm-up and throughput phases.
    pub concurrency: usize,
}

/// One driver, one round.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub driver: String,
    pub round: u32,
    pub ops_per_sec: f64,
    /// Operations completed in the latency phase (= histogram count).
    pub latency_count: u64,
    /// Latency percentiles, nanoseconds: p50, p90, p99, p99.9, max.
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Measurement {
    #[allow(dead_code)] // Used by the sqlx program only.
    pub fn to_line(&self) -> String {
        format!(
            "RESULT\t{}\t{}\t{:.1}\t{}\t{}\t{}\t{}\t{}\t{}",
            self.driver,
            self.round,
            self.ops_per_sec,
            self.latency_count,
            self.p50,
            self.p90,
            self.p99,
            self.p999,
            self.max
        )
    }

    #[allow(dead_code)] // Used by the orchestrator (`..`) only.
    pub fn from_line(line: &str) -> Option<Self> {
        let f: Vec<&str> = line.strip_prefix("RESULT\t")?.split('\t').collect();
        if f.len() != 9 {
            return None;
        }
        Some(Self {
            driver: f[0].to_string(),
            round: f[1].parse().ok()?,
            ops_per_sec: f[2].parse().ok()?,
            latency_count: f[3].parse().ok()?,
            p50: f[4].parse().ok()?,
            p90: f[5].parse().ok()?,
            p99: f[6].parse().ok()?,
            p999: f[7].parse().ok()?,
            max: f[8].parse().ok()?,
        })
    }
}

/// A tiny per-task PRNG (splitmix64), so key choice costs nothing and needs no extra crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, ids: &'a [Uuid]) -> &'a Uuid {
        &ids[(self.next() % ids.len() as u64) as usize]
    }
}

fn seed(task: usize) -> u64 {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    now ^ ((task as u64 + 1).wrapping_mul(0xD6E8_FEB8_6659_FD93))
}

/// Checks the row really is the one asked for, and keeps the decode from being optimised away.
fn check(asked: &Uuid, got: Task) -> Result<(), BoxError> {
    let got = std::hint::black_box(got);
    if got.id != *asked {
        return Err(format!("asked for {asked}, got {}", got.id).into());
    }
    Ok(())
}

/// Closed loop: `concurrency` tasks each run operations back to back until `length` is up.
/// Returns (operations, elapsed).
async fn closed_loop<F, Fut>(
    op: &F,
    ids: &Arc<Vec<Uuid>>,
    concurrency: usize,
    length: Duration,
) -> Result<(u64, Duration), BoxError>
where
    F: Fn(Uuid) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Task, BoxError>> + Send + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut handles = Vec::with_capacity(concurrency);
    for t in 0..concurrency {
        let (op, ids, stop) = (op.clone(), ids.clone(), stop.clone());
        handles.push(tokio::spawn(async move {
            let mut rng = Rng(seed(t));
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let id = *rng.pick(&ids);
                check(&id, op(id).await?)?;
                n += 1;
            }
            Ok::<u64, BoxError>(n)
        }));
    }
    tokio::time::sleep(length).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for h in handles {
        total += h.await??;
    }
    // Operations in flight at the stop finish after it; count the time they took too.
    Ok((total, start.elapsed()))
}

/// Runs the three phases for one driver.
pub async fn measure<F, Fut>(
    driver: &str,
    round: u32,
    ids: Arc<Vec<Uuid>>,
    plan: Plan,
    op: F,
) -> Result<Measurement, BoxError>
where
    F: Fn(Uuid) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Task, BoxError>> + Send + 'static,
{
    eprintln!("  [{driver}] round {round}: warm-up {:?}", plan.warmup);
    closed_loop(&op, &ids, plan.concurrency, plan.warmup).await?;

    eprintln!("  [{driver}] round {round}: throughput, {} tasks, {:?}", plan.concurrency, plan.throughput);
    let (ops, elapsed) = closed_loop(&op, &ids, plan.concurrency, plan.throughput).await?;
    let ops_per_sec = ops as f64 / elapsed.as_secs_f64();

    eprintln!("  [{driver}] round {round}: latency, concurrency 1, {:?}", plan.latency);
    // 1 ns .. 60 s, 3 significant digits.
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let mut rng = Rng(seed(usize::MAX));
    let deadline = Instant::now() + plan.latency;
    loop {
        let id = *rng.pick(&ids);
        let t0 = Instant::now();
        let task = op(id).await?;
        let dt = t0.elapsed();
        check(&id, task)?;
        hist.saturating_record(dt.as_nanos() as u64);
        if t0 + dt >= deadline {
            break;
        }
    }

    let m = Measurement {
        driver: driver.to_string(),
        round,
        ops_per_sec,
        latency_count: hist.len(),
        p50: hist.value_at_quantile(0.50),
        p90: hist.value_at_quantile(0.90),
        p99: hist.value_at_quantile(0.99),
        p999: hist.value_at_quantile(0.999),
        max: hist.max(),
    };
    eprintln!(
        "  [{driver}] round {round}: {:.0} ops/s; p50 {:.1} µs, p99 {:.1} µs ({} samples)",
        m.ops_per_sec,
        m.p50 as f64 / 1e3,
        m.p99 as f64 / 1e3,
        m.latency_count
    );
    Ok(m)
}

/// Parses a duration given in seconds (fractions allowed), for the command lines.
pub fn secs(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("not a number of seconds: {s:?}"))
}
