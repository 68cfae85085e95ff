//! The projects-service scenarios of docs/PERFORMANCE.md, through the gateway of a real `trellis`:
//!
//! * **S2** `GET /api/tasks/{id}`, cache hit: a small set of hot tasks (made through the API, each read once to
//!   warm the read-through cache: in memory all-in-one, Redis distributed), open loop at fixed rates, then a
//!   closed-loop sweep over connection counts for the maximum.
//! * **S3** `GET /api/tasks/{id}`, cache miss: a large population of tasks seeded straight into the database
//!   (one SQL statement per batch: `generate_series` on PostgreSQL, a recursive CTE on SQLite, after the server
//!   migrated), in a project of the bench account. Every request reads a task no request read before (an affine
//!   permutation of the population, shared by every phase), so with the 15-minute TTL each one is a miss.
//! * **S4** `GET /api/projects/{id}/tasks?limit=50`: a project of `--s4-tasks` tasks made through the API, with
//!   descriptions sized so a page of 50 is ~25 KB of JSON; the requests walk every page (keyset cursors
//!   collected before the load).
//! * **S5** `POST /api/projects/{id}/tasks` (insert + outbox row in one transaction), round robin over
//!   `--s5-projects` projects (a create locks its project's row, so one project would serialise the load). In
//!   postgres mode a consumer on the run's vhost binds its own queue to the `trellis.events` exchange and
//!   measures the outbox → broker publish lag of every `task.created` event: received − `occurred_at`.
//! * **Pacer**: `GET /healthz` at the S2 rates with tokio's millisecond timer and with the thread pacer, back to
//!   back, to show what the generator's own pacing adds (see `load.rs`).
//!
//! Every open-loop phase is preceded by its `/healthz` floor at the same rate (`users::step_with`). Where the
//! server counts them, the task cache's hits and misses (`/metrics`) over each measured scenario are reported,
//! so a "hit" or "miss" scenario shows that it was one.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use futures_util::StreamExt as _;
use hdrhistogram::Histogram;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::time::Instant;

use crate::load::{Outcome, Pacer, Percentiles, Summary, closed_loop, open_loop, open_loop_paced};
use crate::scenarios::{Account, Target, send_once};
use crate::server::Server;
use crate::users::{Pick, Step, UsersOptions, bearer, closed_get, get_json, log, mix, random_u64, step_with};

/// What the projects scenarios need besides the phase lengths.
pub struct ProjectsOptions {
    pub phases: UsersOptions,
    pub s2_rates: Vec<f64>,
    pub s2_hot: usize,
    pub s2_sweep: Vec<usize>,
    pub s3_rate: f64,
    pub s3_population: usize,
    pub s3_batch: usize,
    pub s4_rate: f64,
    pub s4_tasks: usize,
    pub s5_rates: Vec<f64>,
    pub s5_projects: usize,
    /// Closed-loop connections of S3, S4 and S5.
    pub concurrency: usize,
}

/// The task cache's counters over a scenario (from `/metrics`), when the server exposes them.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CacheCounts {
    pub hits: u64,
    pub misses: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct S2 {
    pub what: &'static str,
    pub hot_tasks: usize,
    pub steps: Vec<Step>,
    pub sweep: Vec<Summary>,
    pub max_per_s: f64,
    pub cache: Option<CacheCounts>,
}

/// How the S3 population was made.
#[derive(Debug, Clone, Serialize)]
pub struct SqlSeeding {
    pub rows: usize,
    pub statements: usize,
    pub elapsed_s: f64,
    pub rows_per_s: f64,
    /// Reading the ids back (one select), s.
    pub read_back_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct S3 {
    pub what: &'static str,
    pub population: usize,
    pub seeding: SqlSeeding,
    pub step: Step,
    pub closed: Summary,
    /// Distinct tasks read over every phase (warm-ups included); each at most once while below the population.
    pub tasks_read: u64,
    pub cache: Option<CacheCounts>,
}

#[derive(Debug, Clone, Serialize)]
pub struct S4 {
    pub what: &'static str,
    pub tasks: usize,
    pub pages: usize,
    /// Mean size of a full page's JSON body, bytes.
    pub page_bytes: f64,
    pub step: Step,
    pub closed: Summary,
}

/// Outbox → broker publish lag over one phase: received by our consumer − the event's `occurred_at`.
#[derive(Debug, Clone, Serialize)]
pub struct Lag {
    /// Tasks the phase created (201).
    pub created: u64,
    /// `task.created` events received that occurred during the phase.
    pub received: u64,
    /// How long after the phase we waited for the rest, s.
    pub waited_s: f64,
    pub latency: Percentiles,
}

#[derive(Debug, Clone, Serialize)]
pub struct S5Step {
    pub step: Step,
    pub lag: Option<Lag>,
}

#[derive(Debug, Clone, Serialize)]
pub struct S5 {
    pub what: &'static str,
    pub projects: usize,
    pub steps: Vec<S5Step>,
    pub closed: Summary,
    pub closed_lag: Option<Lag>,
    /// Why there is no lag (all-in-one: the bus is in-process).
    pub lag_note: &'static str,
}

/// `/healthz` paced by each pacer at one rate.
#[derive(Debug, Clone, Serialize)]
pub struct PacerStep {
    pub rate: f64,
    pub tokio: Summary,
    pub thread: Summary,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Projects {
    pub pacer: Vec<PacerStep>,
    pub s2: Option<S2>,
    pub s3: Option<S3>,
    pub s4: Option<S4>,
    pub s5: Option<S5>,
    /// Server RSS after each scenario, KiB.
    pub rss_after_s2_kib: Option<u64>,
    pub rss_after_s3_kib: Option<u64>,
    pub rss_after_s4_kib: Option<u64>,
    pub rss_after_s5_kib: Option<u64>,
}

// ------------------------------------------------------------------------------------------------------------
// HTTP helpers

async fn post_json(t: &Target, url: &str, auth: &str, body: &Value) -> anyhow::Result<Value> {
    let res = t
        .client
        .post(url)
        .header(reqwest::header::AUTHORIZATION, auth)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await?;
    let status = res.status();
    let bytes = res.bytes().await?;
    if status != StatusCode::CREATED {
        bail!("POST {url} answered {status}: {}", String::from_utf8_lossy(&bytes));
    }
    Ok(serde_json::from_slice(&bytes)?)
}

pub(crate) async fn new_project(t: &Target, auth: &str, name: &str) -> anyhow::Result<String> {
    let v = post_json(t, &format!("{}/api/projects", t.base), auth, &json!({ "name": name })).await?;
    v["id"].as_str().map(str::to_string).context("POST /api/projects: no id")
}

async fn new_task(t: &Target, auth: &str, project: &str, title: &str, description: &str) -> anyhow::Result<String> {
    let url = format!("{}/api/projects/{project}/tasks", t.base);
    let v = post_json(t, &url, auth, &json!({ "title": title, "description": description })).await?;
    v["id"].as_str().map(str::to_string).context("POST /api/projects/{id}/tasks: no id")
}

/// One measured create: must answer 201 (the body is read, not parsed).
pub(crate) async fn post_once(t: Target, url: Arc<str>, auth: Arc<str>, body: String) -> Outcome {
    let req = t
        .client
        .post(&*url)
        .header(reqwest::header::AUTHORIZATION, &*auth)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    send_once(req, StatusCode::CREATED).await
}

/// The task cache's hit and miss counters, from the server's `/metrics` (`None` if it has none yet).
async fn task_cache(t: &Target) -> Option<CacheCounts> {
    let text = t.client.get(format!("{}/metrics", t.base)).send().await.ok()?.text().await.ok()?;
    let counter = |name: &str| {
        text.lines()
            .filter(|l| l.starts_with(name) && l.contains("entity=\"task\""))
            .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
            .map(|v| v as u64)
            .sum::<u64>()
    };
    Some(CacheCounts { hits: counter("trellis_cache_hits_total"), misses: counter("trellis_cache_misses_total") })
}

fn delta(before: Option<CacheCounts>, after: Option<CacheCounts>) -> Option<CacheCounts> {
    let (b, a) = (before?, after?);
    Some(CacheCounts { hits: a.hits.saturating_sub(b.hits), misses: a.misses.saturating_sub(b.misses) })
}

fn report_cache(c: Option<CacheCounts>) {
    if let Some(c) = c {
        eprintln!("    task cache over the scenario: {} hits, {} misses", c.hits, c.misses);
    }
}

// ------------------------------------------------------------------------------------------------------------
// Seeding in SQL

/// Runs `program args` with `script` on stdin; its stdout.
fn run_script(program: &str, args: &[&str], script: &str) -> anyhow::Result<String> {
    use std::io::Write as _;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {program}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("{program} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A UUID's 32 hex digits (for SQLite's `X'…'` literals).
fn hex_of(uuid: &str) -> anyhow::Result<String> {
    let h: String = uuid.chars().filter(|c| *c != '-').collect();
    anyhow::ensure!(h.len() == 32 && h.chars().all(|c| c.is_ascii_hexdigit()), "not a UUID: {uuid}");
    Ok(h.to_lowercase())
}

fn uuid_of_hex(h: &str) -> Option<String> {
    let h = h.trim();
    (h.len() == 32).then(|| format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]))
}

/// Seeded rows: title `Seeded task <k>`, this description, status todo, priority medium, label `bench`, rank
/// `<k as 7 digits>1` (valid base-36 ranks, unique and in order within the column), created by the account.
const SEED_DESCRIPTION: &str =
    "A seeded task of the S3 population: a cold read by primary key, then the cache is populated.";

/// Inserts `n` tasks into `project` in batches of `batch` rows, one statement each, then reads their ids back.
fn seed_sql(
    server: &Server,
    project: &str,
    user: &str,
    n: usize,
    batch: usize,
) -> anyhow::Result<(Vec<String>, SqlSeeding)> {
    let batch = batch.max(1);
    let statements = n.div_ceil(batch);
    let ranges = (0..statements).map(|b| (b * batch, ((b + 1) * batch).min(n) - 1));
    let start = std::time::Instant::now();
    let (ids, read_back_s) = if let Some(url) = &server.database_url {
        let mut sql = String::new();
        for (a, z) in ranges {
            sql.push_str(&format!(
                "INSERT INTO tasks (id, project_id, title, description, status, priority, labels, position, \
                 created_by, created_at, updated_at) \
                 SELECT gen_random_uuid(), '{project}', 'Seeded task ' || k, '{SEED_DESCRIPTION}', 0, 1, \
                 '[\"bench\"]'::jsonb, lpad(k::text, 7, '0') || '1', '{user}', now(), now() \
                 FROM generate_series({a}, {z}) AS k;\n"
            ));
        }
        // What autovacuum would do soon after such a load; the planner then knows the table's size.
        sql.push_str("ANALYZE tasks;\n");
        run_script("psql", &[url, "-v", "ON_ERROR_STOP=1", "-qAt", "-f", "-"], &sql)?;
        let seeded = start.elapsed();
        let read = std::time::Instant::now();
        let out = run_script(
            "psql",
            &[url, "-v", "ON_ERROR_STOP=1", "-qAt", "-f", "-"],
            &format!("SELECT id FROM tasks WHERE project_id = '{project}' AND title LIKE 'Seeded task %';"),
        )?;
        let ids: Vec<String> = out.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
        (ids, (seeded, read.elapsed()))
    } else {
        let db = server.data_dir().join("trellis.db");
        let db = db.to_string_lossy();
        let (p, u) = (hex_of(project)?, hex_of(user)?);
        let now = OffsetDateTime::now_utc();
        // Exactly nine fractional digits, as the server writes them.
        let at = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second(),
            now.nanosecond()
        );
        let mut sql = String::from(".timeout 60000\nPRAGMA cache_size = -262144;\n");
        for (a, z) in ranges {
            sql.push_str(&format!(
                "WITH RECURSIVE s(k) AS (SELECT {a} UNION ALL SELECT k + 1 FROM s WHERE k < {z}) \
                 INSERT INTO tasks (id, project_id, title, description, status, priority, labels, position, \
                 created_by, created_at, updated_at) \
                 SELECT randomblob(16), X'{p}', 'Seeded task ' || k, '{SEED_DESCRIPTION}', 0, 1, '[\"bench\"]', \
                 printf('%07d1', k), X'{u}', '{at}', '{at}' FROM s;\n"
            ));
        }
        run_script("sqlite3", &["-bail", &db], &sql)?;
        let seeded = start.elapsed();
        let read = std::time::Instant::now();
        let out = run_script(
            "sqlite3",
            &["-bail", &db],
            &format!(
                ".timeout 60000\nSELECT lower(hex(id)) FROM tasks WHERE project_id = X'{p}' AND title LIKE 'Seeded task %';\n"
            ),
        )?;
        let ids: Vec<String> = out.lines().filter_map(uuid_of_hex).collect();
        (ids, (seeded, read.elapsed()))
    };
    let (seeded, read) = read_back_s;
    anyhow::ensure!(ids.len() == n, "seeded {n} tasks but read back {}", ids.len());
    let elapsed_s = seeded.as_secs_f64();
    Ok((
        ids,
        SqlSeeding {
            rows: n,
            statements,
            elapsed_s,
            rows_per_s: n as f64 / elapsed_s.max(1e-9),
            read_back_s: read.as_secs_f64(),
        },
    ))
}

/// An affine permutation of `0..n`: `i ↦ (a·i + b) mod n` with `a` coprime to `n`, so the first `n` draws are
/// all different.
fn permutation(n: u64, seed: u64) -> (u64, u64) {
    fn gcd(a: u64, b: u64) -> u64 {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    let n = n.max(1);
    let mut a = (mix(seed, 1) % n).max(1);
    while gcd(a, n) != 1 {
        a = a % n + 1;
    }
    (a, mix(seed, 2) % n)
}

// ------------------------------------------------------------------------------------------------------------
// The publish-lag consumer (postgres mode)

struct LagState {
    since: OffsetDateTime,
    hist: Histogram<u64>,
    received: u64,
}

/// A consumer of the run's `trellis.events` exchange (its own exclusive queue, `task.created` only).
struct LagMeter {
    state: Arc<Mutex<LagState>>,
    _conn: Connection,
}

fn lag_lock(m: &Mutex<LagState>) -> std::sync::MutexGuard<'_, LagState> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl LagMeter {
    async fn start(amqp_url: &str) -> anyhow::Result<Self> {
        let conn = Connection::connect(amqp_url, ConnectionProperties::default()).await.context("AMQP connect")?;
        let channel = conn.create_channel().await?;
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions { exclusive: true, auto_delete: true, ..Default::default() },
                FieldTable::default(),
            )
            .await?;
        let name = queue.name().as_str().to_string();
        channel
            .queue_bind(
                name.as_str().into(),
                "trellis.events".into(),
                "task.created".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .context("bind to trellis.events (does the server's namespace differ?)")?;
        let mut consumer = channel
            .basic_consume(
                name.as_str().into(),
                "auth-load-lag".into(),
                BasicConsumeOptions { no_ack: true, ..Default::default() },
                FieldTable::default(),
            )
            .await?;
        let state = Arc::new(Mutex::new(LagState {
            since: OffsetDateTime::now_utc(),
            hist: crate::load::histogram(),
            received: 0,
        }));
        let s = state.clone();
        tokio::spawn(async move {
            let _channel = channel;
            while let Some(Ok(delivery)) = consumer.next().await {
                let now = OffsetDateTime::now_utc();
                let Ok(v) = serde_json::from_slice::<Value>(&delivery.data) else { continue };
                let Some(at) = v["occurred_at"].as_str().and_then(|a| OffsetDateTime::parse(a, &Rfc3339).ok()) else {
                    continue;
                };
                let mut st = lag_lock(&s);
                if at < st.since {
                    continue;
                }
                let us = u64::try_from((now - at).whole_microseconds()).unwrap_or(0).max(1);
                st.hist.saturating_record(us);
                st.received += 1;
            }
        });
        Ok(Self { state, _conn: conn })
    }

    /// Counts only events that occur from now on.
    fn reset(&self) {
        let mut st = lag_lock(&self.state);
        st.since = OffsetDateTime::now_utc();
        st.hist.reset();
        st.received = 0;
    }

    /// Waits (up to `timeout`) until `created` events of this phase arrived; the lag so far.
    async fn drain(&self, created: u64, timeout: Duration) -> Lag {
        let start = Instant::now();
        while lag_lock(&self.state).received < created && start.elapsed() < timeout {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let st = lag_lock(&self.state);
        Lag {
            created,
            received: st.received,
            waited_s: start.elapsed().as_secs_f64(),
            latency: Percentiles::of(&st.hist),
        }
    }
}

// ------------------------------------------------------------------------------------------------------------
// The scenarios

/// The account's user id (`GET /api/users/me`).
async fn user_id(t: &Target, auth: &str) -> anyhow::Result<String> {
    let me = get_json(t, &format!("{}/api/users/me", t.base), auth).await?;
    me["id"].as_str().map(str::to_string).context("GET /api/users/me: no id")
}

pub async fn pacer(t: &Target, rates: &[f64], o: &UsersOptions) -> Vec<PacerStep> {
    let url: Arc<str> = format!("{}/healthz", t.base).into();
    let mut out = Vec::new();
    for &rate in rates {
        let run = |p: Pacer, d: Duration| {
            let (t, url) = (t.clone(), url.clone());
            open_loop_paced(p, rate, d, o.max_in_flight, move |_| {
                let (t, url) = (t.clone(), url.clone());
                async move { t.get_once(url, None).await }
            })
        };
        eprintln!(
            "pacer: GET /healthz at {rate}/s, tokio timer then thread pacer ({} s each)",
            o.floor_duration.as_secs()
        );
        let _ = run(Pacer::Tokio, o.warmup).await;
        let tokio = run(Pacer::Tokio, o.floor_duration).await;
        log("tokio timer", &tokio);
        let _ = run(Pacer::Thread, o.warmup).await;
        let thread = run(Pacer::Thread, o.floor_duration).await;
        log("thread pacer", &thread);
        out.push(PacerStep { rate, tokio, thread });
    }
    out
}

pub async fn s2(t: &Target, account: &Account, p: &ProjectsOptions) -> anyhow::Result<S2> {
    let o = &p.phases;
    let auth = bearer(t, account).await?;
    let project = new_project(t, &auth, "S2 hot tasks").await?;
    let mut urls = Vec::new();
    for k in 0..p.s2_hot.max(1) {
        let id = new_task(t, &auth, &project, &format!("Hot task {k}"), "read through the cache").await?;
        let url: Arc<str> = format!("{}/api/tasks/{id}", t.base).into();
        // Warm: the first read populates the task, project and membership entries.
        let v = get_json(t, &url, &auth).await?;
        anyhow::ensure!(v["id"].as_str() == Some(id.as_str()), "GET /api/tasks/{id} is another task: {v}");
        urls.push(url);
    }
    let urls = Arc::new(urls);
    let seed = random_u64();
    let pick: Pick = Arc::new(move |i| urls[(mix(seed, i) % urls.len() as u64) as usize].clone());
    let before = task_cache(t).await;
    let mut steps = Vec::new();
    for &rate in &p.s2_rates {
        eprintln!("S2: GET /api/tasks/{{id}} over {} hot tasks at {rate}/s", p.s2_hot);
        steps.push(crate::users::step(t, rate, o, &auth, &pick).await);
    }
    let mut sweep = Vec::new();
    for &c in &p.s2_sweep {
        eprintln!("S2: closed loop, {c} connections, {} s", o.sweep_duration.as_secs());
        let s = closed_get(t, c.max(1), o.sweep_duration, Some(auth.clone()), &pick).await;
        log("closed", &s);
        sweep.push(s);
    }
    let cache = delta(before, task_cache(t).await);
    report_cache(cache);
    let max_per_s = sweep.iter().map(|s| s.achieved_ok_per_s).fold(0.0, f64::max);
    Ok(S2 {
        what: "GET /api/tasks/{id}, authenticated, through the gateway; task, project and membership from the warmed read-through cache",
        hot_tasks: p.s2_hot,
        steps,
        sweep,
        max_per_s,
        cache,
    })
}

pub async fn s3(t: &Target, account: &Account, server: &Server, p: &ProjectsOptions) -> anyhow::Result<S3> {
    let o = &p.phases;
    let auth = bearer(t, account).await?;
    let user = user_id(t, &auth).await?;
    let project = new_project(t, &auth, "S3 population").await?;
    eprintln!("S3: seeding {} tasks in SQL, {} rows per statement", p.s3_population, p.s3_batch);
    let (ids, seeding) = seed_sql(server, &project, &user, p.s3_population, p.s3_batch)?;
    eprintln!(
        "    {} rows in {:.1} s ({:.0}/s), ids read back in {:.1} s",
        seeding.rows, seeding.elapsed_s, seeding.rows_per_s, seeding.read_back_s
    );
    let base = t.base.clone();
    let first = get_json(t, &format!("{base}/api/tasks/{}", ids[0]), &auth).await?;
    anyhow::ensure!(first["project_id"].as_str() == Some(project.as_str()), "a seeded task reads wrong: {first}");
    let ids = Arc::new(ids);
    let n = ids.len() as u64;
    let (a, b) = permutation(n, random_u64());
    // One counter over every phase: no task is read twice until the population is used up.
    let drawn = Arc::new(AtomicU64::new(1));
    let d = drawn.clone();
    let pick: Pick = Arc::new(move |_| {
        let c = d.fetch_add(1, Ordering::Relaxed);
        let k = ((u128::from(a) * u128::from(c) + u128::from(b)) % u128::from(n)) as usize;
        format!("{base}/api/tasks/{}", ids[k]).into()
    });
    let before = task_cache(t).await;
    eprintln!("S3: GET /api/tasks/{{id}}, never the same task twice, over {n} tasks at {}/s", p.s3_rate);
    let step = crate::users::step(t, p.s3_rate, o, &auth, &pick).await;
    eprintln!("S3: closed loop, {} connections, {} s", p.concurrency, o.sweep_duration.as_secs());
    let closed = closed_get(t, p.concurrency.max(1), o.sweep_duration, Some(auth), &pick).await;
    log("closed", &closed);
    let cache = delta(before, task_cache(t).await);
    report_cache(cache);
    Ok(S3 {
        what: "GET /api/tasks/{id}, each task read once (primary-key select + cache populate; project and membership cached)",
        population: ids_len(n),
        seeding,
        step,
        closed,
        tasks_read: drawn.load(Ordering::Relaxed) - 1,
        cache,
    })
}

fn ids_len(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// ~180 characters: with it a task is ~500 bytes of JSON, a page of 50 ~25 KB.
const S4_DESCRIPTION: &str = "Listed fifty at a time by S4. This description is here to give each task a realistic size: \
                              a page of fifty tasks should weigh about twenty-five kilobytes of JSON.";

pub async fn s4(t: &Target, account: &Account, p: &ProjectsOptions) -> anyhow::Result<S4> {
    let o = &p.phases;
    let auth = bearer(t, account).await?;
    let project = new_project(t, &auth, "S4 list").await?;
    eprintln!("S4: creating {} tasks through the API", p.s4_tasks);
    for k in 0..p.s4_tasks {
        new_task(t, &auth, &project, &format!("Listed task number {k}"), S4_DESCRIPTION).await?;
    }
    // Walk the list once: every page's URL, and the size of a page.
    let first: Arc<str> = format!("{}/api/projects/{project}/tasks?limit=50", t.base).into();
    let mut pages = vec![first.clone()];
    let (mut bytes, mut full, mut seen) = (0usize, 0usize, 0usize);
    let mut url = first;
    loop {
        let page = get_json(t, &url, &auth).await?;
        let items = page["items"].as_array().map_or(0, Vec::len);
        seen += items;
        if items == 50 {
            bytes += page.to_string().len();
            full += 1;
        }
        let Some(cursor) = page["next_cursor"].as_str() else { break };
        url = format!("{}/api/projects/{project}/tasks?limit=50&cursor={cursor}", t.base).into();
        pages.push(url.clone());
    }
    anyhow::ensure!(seen == p.s4_tasks, "the list walked {seen} tasks, expected {}", p.s4_tasks);
    let page_bytes = bytes as f64 / full.max(1) as f64;
    eprintln!("    {} pages, a full page ~{:.0} bytes", pages.len(), page_bytes);
    let n_pages = pages.len();
    let pages = Arc::new(pages);
    let pick: Pick = Arc::new(move |i| pages[(i % pages.len() as u64) as usize].clone());
    eprintln!("S4: GET /api/projects/{{id}}/tasks?limit=50, every page in turn, at {}/s", p.s4_rate);
    let step = crate::users::step(t, p.s4_rate, o, &auth, &pick).await;
    eprintln!("S4: closed loop, {} connections, {} s", p.concurrency, o.sweep_duration.as_secs());
    let closed = closed_get(t, p.concurrency.max(1), o.sweep_duration, Some(auth), &pick).await;
    log("closed", &closed);
    Ok(S4 {
        what: "GET /api/projects/{id}/tasks?limit=50 (membership check + keyset page by position), every page in turn",
        tasks: p.s4_tasks,
        pages: n_pages,
        page_bytes,
        step,
        closed,
    })
}

pub async fn s5(t: &Target, account: &Account, server: &Server, p: &ProjectsOptions) -> anyhow::Result<S5> {
    let o = &p.phases;
    let auth = bearer(t, account).await?;
    let mut urls = Vec::new();
    for k in 0..p.s5_projects.max(1) {
        let project = new_project(t, &auth, &format!("S5 creates {k}")).await?;
        urls.push(Arc::<str>::from(format!("{}/api/projects/{project}/tasks", t.base)));
    }
    let urls = Arc::new(urls);
    let meter = match &server.amqp_url {
        Some(url) => Some(LagMeter::start(url).await?),
        None => None,
    };
    let lag_note = if meter.is_some() {
        "received by a consumer of the run's vhost − the event's occurred_at (stamped by the service before its transaction)"
    } else {
        "all-in-one: the bus is in-process, there is no broker to measure"
    };
    let create = |d: Duration, rate: f64| {
        let (t, urls, auth) = (t.clone(), urls.clone(), auth.clone());
        if let Some(m) = &meter {
            m.reset();
        }
        open_loop(rate, d, o.max_in_flight, move |i| {
            let url = urls[(i % urls.len() as u64) as usize].clone();
            let body = json!({ "title": format!("S5 task {i}"), "description": "made by the S5 load" }).to_string();
            post_once(t.clone(), url, auth.clone(), body)
        })
    };
    let drain_wait = Duration::from_secs(15);
    let mut steps = Vec::new();
    for &rate in &p.s5_rates {
        eprintln!("S5: POST /api/projects/{{id}}/tasks over {} projects at {rate}/s", urls.len());
        let step = step_with(t, rate, o, |d| create(d, rate)).await;
        let lag = match &meter {
            Some(m) => Some(m.drain(step.measured.ok, drain_wait).await),
            None => None,
        };
        if let Some(l) = &lag {
            log_lag(l);
        }
        steps.push(S5Step { step, lag });
    }
    eprintln!("S5: closed loop, {} connections, {} s", p.concurrency, o.sweep_duration.as_secs());
    if let Some(m) = &meter {
        m.reset();
    }
    let closed = closed_loop(p.concurrency.max(1), o.sweep_duration, {
        let (t, urls, auth) = (t.clone(), urls.clone(), auth.clone());
        move |i| {
            let url = urls[(i % urls.len() as u64) as usize].clone();
            let body = json!({ "title": format!("S5 closed {i}"), "description": "made by the S5 load" }).to_string();
            post_once(t.clone(), url, auth.clone(), body)
        }
    })
    .await;
    log("closed", &closed);
    let closed_lag = match &meter {
        Some(m) => Some(m.drain(closed.ok, drain_wait).await),
        None => None,
    };
    if let Some(l) = &closed_lag {
        log_lag(l);
    }
    Ok(S5 {
        what: "POST /api/projects/{id}/tasks (project row lock, rank at the end of the column, insert + outbox row in one transaction), round robin over the projects",
        projects: urls.len(),
        steps,
        closed,
        closed_lag,
        lag_note,
    })
}

fn log_lag(l: &Lag) {
    eprintln!(
        "    publish lag: {} of {} events, p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        l.received, l.created, l.latency.p50_ms, l.latency.p99_ms, l.latency.max_ms
    );
}

// ------------------------------------------------------------------------------------------------------------
// The report

fn cache_line(c: Option<CacheCounts>) {
    if let Some(c) = c {
        println!("- task cache over the scenario (`/metrics`): {} hits, {} misses", c.hits, c.misses);
    }
}

fn lag_row(label: &str, l: &Lag) {
    let p = &l.latency;
    println!(
        "| {label} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.1} |",
        l.created, l.received, p.p50_ms, p.p90_ms, p.p99_ms, p.p999_ms, p.max_ms, l.waited_s
    );
}

/// The projects sections of the markdown report.
#[allow(clippy::print_stdout)]
pub fn print(r: &Projects) {
    let head = crate::LAT_HEAD;
    if !r.pacer.is_empty() {
        println!();
        println!("## Pacer: GET /healthz with tokio's timer vs the thread pacer");
        println!();
        println!("{head}");
        for s in &r.pacer {
            println!("{}", crate::lat_row("/healthz, tokio timer", &s.tokio));
            println!("{}", crate::lat_row("/healthz, thread pacer", &s.thread));
        }
    }
    if let Some(s2) = &r.s2 {
        println!();
        println!("## S2: GET /api/tasks/{{id}}, cache hit ({} hot tasks)", s2.hot_tasks);
        println!();
        println!("{}.", s2.what);
        println!();
        println!("{head}");
        for s in &s2.steps {
            crate::step_rows("GET /api/tasks/{id}", s);
        }
        for s in &s2.sweep {
            println!("{}", crate::lat_row("GET /api/tasks/{id}, closed loop (service time)", s));
        }
        println!();
        for s in &s2.steps {
            crate::ratios(s);
        }
        cache_line(s2.cache);
        println!("- max (closed-loop sweep): **{:.0} req/s**", s2.max_per_s);
    }
    if let Some(s3) = &r.s3 {
        let sd = &s3.seeding;
        println!();
        println!("## S3: GET /api/tasks/{{id}}, cache miss ({} seeded tasks)", s3.population);
        println!();
        println!(
            "{}. Seeded in SQL: {} rows in {} statements, {:.1} s ({:.0} rows/s); ids read back in {:.1} s. Tasks read over every phase: {}.",
            s3.what, sd.rows, sd.statements, sd.elapsed_s, sd.rows_per_s, sd.read_back_s, s3.tasks_read
        );
        println!();
        println!("{head}");
        crate::step_rows("GET /api/tasks/{id}, miss", &s3.step);
        println!("{}", crate::lat_row("GET /api/tasks/{id}, miss, closed loop (service time)", &s3.closed));
        println!();
        crate::ratios(&s3.step);
        cache_line(s3.cache);
        println!("- max (closed loop): **{:.0} req/s**", s3.closed.achieved_ok_per_s);
    }
    if let Some(s4) = &r.s4 {
        println!();
        println!(
            "## S4: list tasks, pages of 50 ({} tasks, {} pages, ~{:.0} bytes a page)",
            s4.tasks, s4.pages, s4.page_bytes
        );
        println!();
        println!("{}.", s4.what);
        println!();
        println!("{head}");
        crate::step_rows("GET /api/projects/{id}/tasks?limit=50", &s4.step);
        println!("{}", crate::lat_row("list, closed loop (service time)", &s4.closed));
        println!();
        crate::ratios(&s4.step);
        println!("- max (closed loop): **{:.0} req/s**", s4.closed.achieved_ok_per_s);
    }
    if let Some(s5) = &r.s5 {
        println!();
        println!("## S5: create task ({} projects)", s5.projects);
        println!();
        println!("{}.", s5.what);
        println!();
        println!("{head}");
        for s in &s5.steps {
            crate::step_rows("POST /api/projects/{id}/tasks", &s.step);
        }
        println!("{}", crate::lat_row("create, closed loop (service time)", &s5.closed));
        println!();
        for s in &s5.steps {
            crate::ratios(&s.step);
        }
        println!("- max (closed loop): **{:.0} creates/s**", s5.closed.achieved_ok_per_s);
        println!();
        println!("Outbox → broker publish lag: {}.", s5.lag_note);
        if s5.steps.iter().any(|s| s.lag.is_some()) || s5.closed_lag.is_some() {
            println!();
            println!("| phase | created | received | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | waited s |");
            println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
            for s in &s5.steps {
                if let Some(l) = &s.lag {
                    lag_row(&format!("open loop {:.0}/s", s.step.rate), l);
                }
            }
            if let Some(l) = &s5.closed_lag {
                lag_row("closed loop", l);
            }
        }
    }
    println!();
    println!(
        "Server RSS (MiB): after S2 {}, after S3 {}, after S4 {}, after S5 {}.",
        crate::mib(r.rss_after_s2_kib),
        crate::mib(r.rss_after_s3_kib),
        crate::mib(r.rss_after_s4_kib),
        crate::mib(r.rss_after_s5_kib)
    );
}

/// Every summary of the projects scenarios with a name, for the error listing.
pub fn phases(r: &Projects) -> Vec<(&'static str, &Summary)> {
    let mut out: Vec<(&'static str, &Summary)> = Vec::new();
    for p in &r.pacer {
        out.extend([("pacer tokio", &p.tokio), ("pacer thread", &p.thread)]);
    }
    if let Some(s) = &r.s2 {
        for x in &s.steps {
            out.extend([("S2 floor", &x.floor), ("S2", &x.measured)]);
        }
        out.extend(s.sweep.iter().map(|x| ("S2 closed", x)));
    }
    if let Some(s) = &r.s3 {
        out.extend([("S3 floor", &s.step.floor), ("S3", &s.step.measured), ("S3 closed", &s.closed)]);
    }
    if let Some(s) = &r.s4 {
        out.extend([("S4 floor", &s.step.floor), ("S4", &s.step.measured), ("S4 closed", &s.closed)]);
    }
    if let Some(s) = &r.s5 {
        for x in &s.steps {
            out.extend([("S5 floor", &x.step.floor), ("S5", &x.step.measured)]);
        }
        out.push(("S5 closed", &s.closed));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_permutation_draws_every_task_once() {
        for n in [1u64, 2, 7, 12, 1000, 1024] {
            let (a, b) = permutation(n, 42);
            let mut seen: Vec<u64> = (0..n).map(|c| (a * c + b) % n).collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..n).collect::<Vec<_>>(), "n = {n}");
        }
    }

    #[test]
    fn uuids_round_trip_through_hex() {
        let id = "0190f5a2-7b3c-7d4e-8f01-23456789abcd";
        assert_eq!(uuid_of_hex(&hex_of(id).unwrap()).as_deref(), Some(id));
        assert!(hex_of("not-a-uuid").is_err());
    }
}
