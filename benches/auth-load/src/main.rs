//! `auth-load`: the load harness for the auth service (docs/PERFORMANCE.md S6, S7, S8), the users service's
//! reads in the S2/S3 shapes (U2, U3, U4), the projects service (S2, S3, S4, S5: `projects.rs`) and live
//! updates (S9: `live.rs`).
//!
//! One run: pin this process to the generator core, measure the floors (bcrypt verify, RS256 sign) while
//! nothing else of ours runs, start `trellis serve` on a fresh data folder (and, with `--mode postgres`, a
//! fresh database, Redis prefix and RabbitMQ vhost), register one account, run the selected scenarios, print
//! a markdown report on stdout and write the same numbers as JSON, then stop the server and remove everything
//! made for it. Progress goes to stderr.

mod flood;
mod floor;
mod live;
mod load;
mod projects;
mod scenarios;
mod server;
mod service_token;
mod users;

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

use clap::Parser;
use serde::Serialize;

use crate::floor::Floor;
use crate::load::{Pacer, Summary};
use crate::scenarios::{S6, S7, S7Options, S8, S8Options, Target};
use crate::server::{Mode, Server, ServerOptions};
use crate::users::{U2, U3, U4, UsersOptions};

#[derive(Parser, Debug)]
#[command(
    name = "auth-load",
    about = "Login (S6), login-flood isolation (S7), refresh (S8), users reads (U2, U3, U4) and projects (S2 task cache hit, S3 miss, S4 list, S5 create) on a real trellis."
)]
struct Cli {
    /// sqlite: all-in-one (SQLite, in-process cache and bus). postgres: PostgreSQL + Redis + RabbitMQ.
    #[arg(long, value_enum, default_value = "sqlite")]
    mode: Mode,
    /// The server binary [default: $CARGO_TARGET_DIR/release/trellis, else ../../target/release/trellis].
    #[arg(long)]
    trellis: Option<PathBuf>,
    /// Scenarios to run, comma-separated: s6, s7, r1 (registration flood while logins run), s8, u2, u3, u4, the projects ones: pacer, s2, s3, s4, s5
    /// (s7 needs s6's capacity, or --s7-login-rate), and s9 (WebSocket memory and broadcast). The projects
    /// scenarios run in the order pacer, s2, s4, s5, s3 (S3 seeds its large population last, so that it does
    /// not disturb the others); s9 runs last.
    #[arg(long, value_delimiter = ',', default_value = "s6,s7,s8")]
    scenarios: Vec<String>,
    /// Extra server settings, KEY=VALUE, repeatable (e.g. TRELLIS_AUTH__HASH_WORKERS=2). They are applied last,
    /// over the harness's own (which only lift TRELLIS_GATEWAY__RATE_LIMIT_PER_MINUTE and, in postgres mode, set
    /// the backing services). The server sees no other variable of this environment.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// The core this generator is pinned to (`taskset`), or `none`.
    #[arg(long, default_value = "1")]
    generator_cpu: String,
    /// The cores the server may use (`taskset -c` list) [default: every core].
    #[arg(long)]
    server_cpus: Option<String>,
    /// Cores for the theoretical maxima [default: the cores this process may use before pinning].
    #[arg(long)]
    cores: Option<usize>,
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test", env = "BENCH_PG_URL")]
    pg_url: String,
    #[arg(long, default_value = "redis://127.0.0.1:6379", env = "BENCH_REDIS_URL")]
    redis_url: String,
    /// AMQP URL without a vhost; the run's own vhost is appended.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672", env = "BENCH_AMQP_URL")]
    amqp_url: String,
    /// S6 login rates (per second), one open-loop step each.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,6,8,10,12,15,20")]
    s6_rates: Vec<f64>,
    #[arg(long, default_value_t = 15)]
    s6_step_secs: u64,
    /// S7: the S2 stand-in's rate.
    #[arg(long, default_value_t = 1000.0)]
    s2_rate: f64,
    /// S7: the login flood's rate [default: 2 × the capacity S6 measured].
    #[arg(long)]
    s7_login_rate: Option<f64>,
    #[arg(long, default_value_t = 5)]
    s7_warmup_secs: u64,
    #[arg(long, default_value_t = 60)]
    s7_secs: u64,
    /// R1: the logins' rate, alone and during the registration flood.
    #[arg(long, default_value_t = 4.0)]
    r1_login_rate: f64,
    /// R1: the registration flood's rate (new addresses, one client).
    #[arg(long, default_value_t = 40.0)]
    r1_register_rate: f64,
    #[arg(long, default_value_t = 5)]
    r1_warmup_secs: u64,
    #[arg(long, default_value_t = 30)]
    r1_secs: u64,
    #[arg(long, default_value_t = 200)]
    s8_sessions: usize,
    #[arg(long, default_value_t = 500.0)]
    s8_rate: f64,
    #[arg(long, default_value_t = 5)]
    s8_warmup_secs: u64,
    #[arg(long, default_value_t = 60)]
    s8_secs: u64,
    #[arg(long, default_value_t = 20)]
    s8_closed_secs: u64,
    /// S8 closed-loop workers (at most the number of sessions).
    #[arg(long, default_value_t = 32)]
    s8_concurrency: usize,
    /// U2: open-loop rates of GET /api/users/me (per second), each with its /healthz floor.
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    u2_rates: Vec<f64>,
    /// U2: closed-loop connection counts of the max-throughput sweep.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,64")]
    u2_sweep: Vec<usize>,
    /// U3: rate of GET /api/users/{id} by an admin over the seeded users.
    #[arg(long, default_value_t = 1000.0)]
    u3_rate: f64,
    /// U4: rate of GET /api/users?q=<prefix>&limit=20 by an admin.
    #[arg(long, default_value_t = 200.0)]
    u4_rate: f64,
    /// U3/U4: users seeded through POST /internal/users.
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    #[arg(long, default_value_t = 16)]
    seed_concurrency: usize,
    /// U3/U4: closed-loop connections for the maximum.
    #[arg(long, default_value_t = 32)]
    u_concurrency: usize,
    #[arg(long, default_value_t = 5)]
    u_warmup_secs: u64,
    /// U2–U4: length of each measured open-loop phase.
    #[arg(long, default_value_t = 60)]
    u_secs: u64,
    /// U2–U4: length of each /healthz floor phase (measured right before its scenario, same rate).
    #[arg(long, default_value_t = 30)]
    u_floor_secs: u64,
    /// U2–U4: length of each closed-loop phase.
    #[arg(long, default_value_t = 10)]
    u_closed_secs: u64,
    /// Open-loop pacing: `thread` (a high-resolution timer thread) or `tokio` (millisecond timer, the old pacer).
    #[arg(long, value_enum, default_value = "thread")]
    pacer: Pacer,
    /// S2: open-loop rates of GET /api/tasks/{id} (cache hit), each with its /healthz floor; also the rates of
    /// the `pacer` comparison.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000")]
    s2_rates: Vec<f64>,
    /// S2: hot tasks (made through the API and read once to warm the cache).
    #[arg(long, default_value_t = 100)]
    s2_hot: usize,
    /// S2: closed-loop connection counts of the max-throughput sweep.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,64")]
    s2_sweep: Vec<usize>,
    #[arg(long, default_value_t = 1000.0)]
    s3_rate: f64,
    /// S3: tasks seeded in SQL into one project of the account (each read at most once).
    #[arg(long, default_value_t = 1_000_000)]
    s3_population: usize,
    /// S3: rows per seeding statement.
    #[arg(long, default_value_t = 50_000)]
    s3_batch: usize,
    #[arg(long, default_value_t = 500.0)]
    s4_rate: f64,
    /// S4: tasks in the listed project (made through the API).
    #[arg(long, default_value_t = 1000)]
    s4_tasks: usize,
    /// S5: open-loop create rates.
    #[arg(long, value_delimiter = ',', default_value = "200,1000")]
    s5_rates: Vec<f64>,
    /// S5: projects the creates go to, round robin.
    #[arg(long, default_value_t = 16)]
    s5_projects: usize,
    /// S3–S5: closed-loop connections for the maximum.
    #[arg(long, default_value_t = 32)]
    p_concurrency: usize,
    #[arg(long, default_value_t = 5)]
    p_warmup_secs: u64,
    /// Projects scenarios: length of each measured open-loop phase.
    #[arg(long, default_value_t = 60)]
    p_secs: u64,
    /// Projects scenarios: length of each /healthz floor phase (and of each pacer-comparison phase).
    #[arg(long, default_value_t = 30)]
    p_floor_secs: u64,
    /// Projects scenarios: length of each closed-loop phase.
    #[arg(long, default_value_t = 10)]
    p_closed_secs: u64,
    /// S9: idle connections (the server needs one file descriptor each; so does this generator).
    #[arg(long, default_value_t = 18_000)]
    s9_idle: usize,
    /// S9: connections kept subscribed to the broadcast project.
    #[arg(long, default_value_t = 10_000)]
    s9_subscribers: usize,
    /// S9: task creates (= broadcast events) per second.
    #[arg(long, default_value_t = 1.0)]
    s9_rate: f64,
    /// S9: length of the broadcast (and of its floor), s.
    #[arg(long, default_value_t = 60)]
    s9_secs: u64,
    /// S9: connections being opened at once.
    #[arg(long, default_value_t = 64)]
    s9_connect_concurrency: usize,
    /// S9: the clients' tungstenite read buffer, bytes.
    #[arg(long, default_value_t = 4096)]
    s9_read_buffer: usize,
    /// S9: the longest wait for the server's RSS to settle, s.
    #[arg(long, default_value_t = 30)]
    s9_settle_secs: u64,
    /// S9: skip the floor (the same broadcast over a trivial fan-out server).
    #[arg(long)]
    s9_no_floor: bool,
    /// Open loop: requests in flight at most; one more is counted as an `overflow` error.
    #[arg(long, default_value_t = 512)]
    max_in_flight: usize,
    #[arg(long, default_value_t = 7)]
    bcrypt_iterations: usize,
    #[arg(long, default_value_t = 300)]
    sign_iterations: usize,
    /// Where to write the JSON report [default: auth-load-<mode>.json].
    #[arg(long)]
    json: Option<PathBuf>,
    /// Keep the server's data folder (and log) instead of removing it.
    #[arg(long)]
    keep_data: bool,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))?;
    if k.is_empty() {
        return Err("empty KEY".into());
    }
    Ok((k.to_string(), v.to_string()))
}

/// Values of settings that may be secret are not repeated in the report.
fn shown(k: &str, v: &str) -> String {
    let k_up = k.to_uppercase();
    if ["PASSWORD", "SECRET", "PEPPER", "TOKEN", "KEY_ENCRYPTION", "_URL"].iter().any(|s| k_up.contains(s)) {
        format!("{k}=<redacted>")
    } else {
        format!("{k}={v}")
    }
}

#[derive(Debug, Serialize)]
struct Machine {
    date_utc: String,
    cpu: String,
    cores: usize,
    kernel: String,
    load_average_start: String,
    load_average_end: String,
    generator_cpu: String,
    server_cpus: String,
}

#[derive(Debug, Serialize, Default)]
struct Rss {
    after_start_kib: Option<u64>,
    after_s6_kib: Option<u64>,
    after_s7_kib: Option<u64>,
    after_s8_kib: Option<u64>,
    after_u2_kib: Option<u64>,
    after_seeding_kib: Option<u64>,
    after_u3_kib: Option<u64>,
    after_u4_kib: Option<u64>,
    peak_kib: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Report {
    command: String,
    mode: Mode,
    pacer: Pacer,
    server_env: Vec<String>,
    machine: Machine,
    bcrypt_floor: Floor,
    rs256_floor: Floor,
    rss: Rss,
    /// Whether a password of the run ("canary…": the account's, the administrator's) appeared in the server's log.
    password_in_server_log: bool,
    s6: Option<S6>,
    s7: Option<S7>,
    /// Registration flood while logins run.
    r1: Option<flood::R1>,
    s8: Option<S8>,
    /// How the U3/U4 population was made.
    seeding: Option<users::Seeding>,
    u2: Option<U2>,
    u3: Option<U3>,
    u4: Option<U4>,
    projects: Option<projects::Projects>,
    s9: Option<live::S9>,
}

fn sh(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_string()))
        })
        .unwrap_or_default()
}

fn main() -> ExitCode {
    // The S9 floor re-runs this binary as its trivial WebSocket fan-out server.
    if std::env::args().nth(1).as_deref() == Some(live::FLOOR_SERVER_ARG) {
        return match live::floor_server() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("floor server: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("auth-load: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(mut cli: Cli) -> anyhow::Result<()> {
    let known = ["s6", "s7", "s8", "r1", "u2", "u3", "u4", "pacer", "s2", "s3", "s4", "s5", "s9"];
    if let Some(bad) = cli.scenarios.iter().find(|s| !known.contains(&s.as_str())) {
        anyhow::bail!("unknown scenario {bad:?} (known: {})", known.join(", "));
    }
    let cores = cli.cores.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let server_cpus = cli.server_cpus.clone().unwrap_or_else(|| format!("0-{}", cores.saturating_sub(1)));
    cli.server_cpus = Some(server_cpus.clone());
    // Pin before any other thread exists: every thread made later (the runtime's) inherits it.
    if cli.generator_cpu != "none" {
        let pid = std::process::id().to_string();
        let out = Command::new("taskset").args(["-p", "-c", &cli.generator_cpu, &pid]).output()?;
        anyhow::ensure!(out.status.success(), "taskset failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    if cli.scenarios.iter().any(|s| s == "s9") {
        // Soft fd limit up to the hard one, for us and (inherited) the server.
        live::raise_fd_limit();
    }
    let load_start = loadavg();
    load::set_pacer(cli.pacer);

    eprintln!("floors: bcrypt cost-12 verify × {}, RS256 sign × {}", cli.bcrypt_iterations, cli.sign_iterations);
    let bcrypt_floor = floor::bcrypt_verify(cores, cli.bcrypt_iterations)?;
    let rs256_floor = floor::rs256_sign(cores, cli.sign_iterations)?;
    eprintln!(
        "    bcrypt {:.1} ms → {:.1} logins/s on {cores} cores; RS256 {:.3} ms → {:.0} signs/s",
        bcrypt_floor.median_ms, bcrypt_floor.theoretical_per_s, rs256_floor.median_ms, rs256_floor.theoretical_per_s
    );

    // One thread: the generator owns one core, and a single-threaded runtime uses it without handoffs.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        let binary = cli.trellis.clone().unwrap_or_else(|| match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) => PathBuf::from(dir).join("release/trellis"),
            None => PathBuf::from("../../target/release/trellis"),
        });
        // U3/U4 seed through the internal route and read as the first administrator, whom the server makes
        // at start. The harness signs the seeding calls as the auth service with a key of its own, whose
        // public half the server is given (both modes run every service in one process).
        let admin = users::admin_account();
        let internal_token = std::sync::Arc::new(service_token::AuthCredential::generate()?);
        let mut harness_env = Vec::new();
        if cli.scenarios.iter().any(|s| s == "u3" || s == "u4") {
            harness_env.extend([
                ("TRELLIS_INTERNAL__PUBLIC_KEYS__AUTH".to_string(), internal_token.public_key()),
                ("TRELLIS_ADMIN_EMAIL".to_string(), admin.email.clone()),
                ("TRELLIS_ADMIN_PASSWORD".to_string(), admin.password.clone()),
            ]);
        }
        let opts = ServerOptions {
            binary,
            mode: cli.mode,
            cpus: server_cpus.clone(),
            pg_url: cli.pg_url.clone(),
            redis_url: cli.redis_url.clone(),
            amqp_base: cli.amqp_url.clone(),
            harness_env,
            env: cli.env.clone(),
            keep_data: cli.keep_data,
        };
        eprintln!("starting {} ({:?} mode)", opts.binary.display(), cli.mode);
        let mut server = Server::start(&opts).await?;
        eprintln!("server pid {} at {}, log {}", server.pid, server.base, server.log.display());
        // The run, raced against Ctrl-C so that an interrupted run still cleans up (Server's Drop).
        let result = tokio::select! {
            r = scenarios(&cli, &server, &bcrypt_floor, &rs256_floor, &admin, &internal_token) => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        };
        let Ran { s6, s7, r1, s8, seeding, u2, u3, u4, projects, s9, mut rss, password } = match result {
            Ok(x) => x,
            Err(e) => {
                eprintln!("--- server log (last lines) ---\n{}", server.log_tail(20));
                server.stop();
                return Err(e);
            }
        };
        rss.peak_kib = server.rss_kib().map(|r| r.1);
        let log = std::fs::read_to_string(&server.log).unwrap_or_default();
        let password_in_server_log = log.contains(&password) || log.contains(&admin.password);
        if cli.keep_data {
            eprintln!("data folder kept: {}", server.data_dir().display());
        }
        server.stop();
        let report = Report {
            command: std::env::args().collect::<Vec<_>>().join(" "),
            mode: cli.mode,
            pacer: cli.pacer,
            server_env: cli.env.iter().map(|(k, v)| shown(k, v)).collect(),
            machine: Machine {
                date_utc: sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
                cpu: cpu_model(),
                cores,
                kernel: sh("uname", &["-r"]),
                load_average_start: load_start,
                load_average_end: loadavg(),
                generator_cpu: cli.generator_cpu.clone(),
                server_cpus,
            },
            bcrypt_floor,
            rs256_floor,
            rss,
            password_in_server_log,
            s6,
            s7,
            r1,
            s8,
            seeding,
            u2,
            u3,
            u4,
            projects,
            s9,
        };
        print_report(&report);
        let path = cli.json.clone().unwrap_or_else(|| PathBuf::from(format!("auth-load-{}.json", mode_name(cli.mode))));
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
        eprintln!("JSON written to {}", path.display());
        anyhow::ensure!(!report.password_in_server_log, "a password of the run appeared in the server log");
        Ok(())
    })
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Sqlite => "sqlite",
        Mode::Postgres => "postgres",
    }
}

/// What the scenarios produced, and the account's password for the log check.
struct Ran {
    s6: Option<S6>,
    s7: Option<S7>,
    r1: Option<flood::R1>,
    s8: Option<S8>,
    seeding: Option<users::Seeding>,
    u2: Option<U2>,
    u3: Option<U3>,
    u4: Option<U4>,
    projects: Option<projects::Projects>,
    s9: Option<live::S9>,
    rss: Rss,
    password: String,
}

async fn scenarios(
    cli: &Cli,
    server: &Server,
    bcrypt: &Floor,
    rs256: &Floor,
    admin: &scenarios::Account,
    internal_token: &std::sync::Arc<service_token::AuthCredential>,
) -> anyhow::Result<Ran> {
    let wants = |s: &str| cli.scenarios.iter().any(|x| x == s);
    let target = Target::new(&server.base, cli.max_in_flight)?;
    let account = target.register(&server::random_suffix()).await?;
    let mut rss = Rss { after_start_kib: server.rss_kib().map(|r| r.0), ..Rss::default() };

    let s6 = if wants("s6") {
        let step = Duration::from_secs(cli.s6_step_secs);
        let r =
            scenarios::s6(&target, &account, &cli.s6_rates, step, cli.max_in_flight, bcrypt.theoretical_per_s).await;
        rss.after_s6_kib = server.rss_kib().map(|r| r.0);
        Some(r)
    } else {
        None
    };
    let s7 = if wants("s7") {
        let login_rate = match (cli.s7_login_rate, &s6) {
            (Some(r), _) => r,
            (None, Some(s6)) => (2.0 * s6.capacity_per_s).max(1.0),
            (None, None) => anyhow::bail!("s7 without s6 needs --s7-login-rate"),
        };
        let o = S7Options {
            s2_rate: cli.s2_rate,
            login_rate,
            warmup: Duration::from_secs(cli.s7_warmup_secs),
            duration: Duration::from_secs(cli.s7_secs),
            max_in_flight: cli.max_in_flight,
        };
        let r = scenarios::s7(&target, &account, &o).await?;
        rss.after_s7_kib = server.rss_kib().map(|r| r.0);
        Some(r)
    } else {
        None
    };
    let r1 = if wants("r1") {
        let o = flood::R1Options {
            login_rate: cli.r1_login_rate,
            register_rate: cli.r1_register_rate,
            warmup: Duration::from_secs(cli.r1_warmup_secs),
            duration: Duration::from_secs(cli.r1_secs),
            max_in_flight: cli.max_in_flight,
        };
        Some(flood::r1(&target, &account, &o).await?)
    } else {
        None
    };
    let s8 = if wants("s8") {
        let o = S8Options {
            sessions: cli.s8_sessions,
            rate: cli.s8_rate,
            warmup: Duration::from_secs(cli.s8_warmup_secs),
            duration: Duration::from_secs(cli.s8_secs),
            closed_duration: Duration::from_secs(cli.s8_closed_secs),
            concurrency: cli.s8_concurrency.min(cli.s8_sessions).max(1),
            max_in_flight: cli.max_in_flight,
        };
        let r = scenarios::s8(&target, &account, &o, rs256.theoretical_per_s).await?;
        rss.after_s8_kib = server.rss_kib().map(|r| r.0);
        Some(r)
    } else {
        None
    };
    let uo = UsersOptions {
        warmup: Duration::from_secs(cli.u_warmup_secs),
        duration: Duration::from_secs(cli.u_secs),
        floor_duration: Duration::from_secs(cli.u_floor_secs),
        sweep_duration: Duration::from_secs(cli.u_closed_secs),
        max_in_flight: cli.max_in_flight,
    };
    let u2 = if wants("u2") {
        let r = users::u2(&target, &account, &cli.u2_rates, &cli.u2_sweep, &uo).await?;
        rss.after_u2_kib = server.rss_kib().map(|r| r.0);
        Some(r)
    } else {
        None
    };
    let population = if wants("u3") || wants("u4") {
        eprintln!("seeding {} users through POST /internal/users ({} at a time)", cli.users, cli.seed_concurrency);
        let p = users::seed(&target, internal_token, cli.users, cli.seed_concurrency).await?;
        eprintln!("    {} users in {:.1} s ({:.0}/s)", p.seeding.users, p.seeding.elapsed_s, p.seeding.per_s);
        rss.after_seeding_kib = server.rss_kib().map(|r| r.0);
        Some(p)
    } else {
        None
    };
    let mut u3 = None;
    let mut u4 = None;
    if let Some(p) = &population {
        if wants("u3") {
            u3 = Some(users::u3(&target, admin, p, cli.u3_rate, cli.u_concurrency, &uo).await?);
            rss.after_u3_kib = server.rss_kib().map(|r| r.0);
        }
        if wants("u4") {
            u4 = Some(users::u4(&target, admin, p, cli.u4_rate, cli.u_concurrency, &uo).await?);
            rss.after_u4_kib = server.rss_kib().map(|r| r.0);
        }
    }
    let seeding = population.map(|p| p.seeding);
    let projects = if ["pacer", "s2", "s3", "s4", "s5"].iter().any(|s| wants(s)) {
        Some(run_projects(cli, server, &target, &account, &wants).await?)
    } else {
        None
    };
    let s9 = if wants("s9") {
        let o = live::S9Options {
            idle: cli.s9_idle.max(cli.s9_subscribers),
            subscribers: cli.s9_subscribers,
            rate: cli.s9_rate,
            duration: Duration::from_secs(cli.s9_secs),
            connect_concurrency: cli.s9_connect_concurrency,
            read_buffer: cli.s9_read_buffer,
            settle: Duration::from_secs(cli.s9_settle_secs),
            // `run` filled it in before pinning this process.
            server_cpus: cli.server_cpus.clone().unwrap_or_else(|| "0".into()),
            floor: !cli.s9_no_floor,
        };
        Some(live::s9(&target, &account, server, &o).await?)
    } else {
        None
    };
    Ok(Ran { s6, s7, r1, s8, seeding, u2, u3, u4, projects, s9, rss, password: account.password })
}

/// The projects scenarios, in the order pacer, S2, S4, S5, S3.
async fn run_projects(
    cli: &Cli,
    server: &Server,
    target: &Target,
    account: &scenarios::Account,
    wants: &dyn Fn(&str) -> bool,
) -> anyhow::Result<projects::Projects> {
    let o = projects::ProjectsOptions {
        phases: UsersOptions {
            warmup: Duration::from_secs(cli.p_warmup_secs),
            duration: Duration::from_secs(cli.p_secs),
            floor_duration: Duration::from_secs(cli.p_floor_secs),
            sweep_duration: Duration::from_secs(cli.p_closed_secs),
            max_in_flight: cli.max_in_flight,
        },
        s2_rates: cli.s2_rates.clone(),
        s2_hot: cli.s2_hot,
        s2_sweep: cli.s2_sweep.clone(),
        s3_rate: cli.s3_rate,
        s3_population: cli.s3_population,
        s3_batch: cli.s3_batch,
        s4_rate: cli.s4_rate,
        s4_tasks: cli.s4_tasks,
        s5_rates: cli.s5_rates.clone(),
        s5_projects: cli.s5_projects,
        concurrency: cli.p_concurrency,
    };
    let rss = || server.rss_kib().map(|r| r.0);
    let mut r = projects::Projects::default();
    if wants("pacer") {
        r.pacer = projects::pacer(target, &cli.s2_rates, &o.phases).await;
    }
    if wants("s2") {
        r.s2 = Some(projects::s2(target, account, &o).await?);
        r.rss_after_s2_kib = rss();
    }
    if wants("s4") {
        r.s4 = Some(projects::s4(target, account, &o).await?);
        r.rss_after_s4_kib = rss();
    }
    if wants("s5") {
        r.s5 = Some(projects::s5(target, account, server, &o).await?);
        r.rss_after_s5_kib = rss();
    }
    if wants("s3") {
        r.s3 = Some(projects::s3(target, account, server, &o).await?);
        r.rss_after_s3_kib = rss();
    }
    Ok(r)
}

// ------------------------------------------------------------------------------------------------------------
// The human report (markdown).

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "–".into(), |k| format!("{:.1}", k as f64 / 1024.0))
}

fn lat_row(label: &str, s: &Summary) -> String {
    let l = &s.ok_latency;
    format!(
        "| {label} | {} | {:.1} | {} | {:.2} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {} | {:.2} % |",
        s.offered_rate.map_or_else(|| format!("closed ×{}", s.concurrency.unwrap_or(0)), |r| format!("{r:.1}")),
        s.elapsed_s,
        s.ok,
        s.achieved_ok_per_s,
        l.p50_ms,
        l.p90_ms,
        l.p99_ms,
        l.p999_ms,
        l.max_ms,
        s.errors,
        s.error_rate * 100.0
    )
}

const LAT_HEAD: &str = "| phase | offered/s | elapsed s | ok | ok/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors | error rate |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|";

#[allow(clippy::print_stdout)]
fn print_report(r: &Report) {
    let m = &r.machine;
    println!("# auth-load: {} mode, {}", mode_name(r.mode), m.date_utc);
    println!();
    println!(
        "{} cores ({}), kernel {}; generator pinned to cpu {}, server on cpus {}; load average {} → {}.",
        m.cores, m.cpu, m.kernel, m.generator_cpu, m.server_cpus, m.load_average_start, m.load_average_end
    );
    if !r.server_env.is_empty() {
        println!("Server settings passed: {}.", r.server_env.join(", "));
    }
    println!("Command: `{}`", r.command);
    println!("Open-loop pacer: {:?}.", r.pacer);
    println!();
    println!("## Floors (same run, single thread, server not running)");
    println!();
    println!("| operation | iterations | median ms | min ms | max ms | theoretical max/s on {} cores |", m.cores);
    println!("|---|---:|---:|---:|---:|---:|");
    for f in [&r.bcrypt_floor, &r.rs256_floor] {
        println!(
            "| {} | {} | {:.3} | {:.3} | {:.3} | {:.1} |",
            f.what, f.iterations, f.median_ms, f.min_ms, f.max_ms, f.theoretical_per_s
        );
    }
    println!();
    println!(
        "Server RSS (MiB): after start {}, after S6 {}, after S7 {}, after S8 {}, peak {}. Password in server log: {}.",
        mib(r.rss.after_start_kib),
        mib(r.rss.after_s6_kib),
        mib(r.rss.after_s7_kib),
        mib(r.rss.after_s8_kib),
        mib(r.rss.peak_kib),
        if r.password_in_server_log { "YES" } else { "no" }
    );
    if let Some(s6) = &r.s6 {
        println!();
        println!("## S6: login throughput (open loop, latency from the scheduled time)");
        println!();
        println!(
            "| offered/s | ok/s | ok p50 ms | ok p99 ms | ok max ms | refused (429/503) | refusal p50 ms | refusal p99 ms | errors |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for s in &s6.steps {
            println!(
                "| {} | {:.2} | {:.1} | {:.1} | {:.1} | {} | {:.2} | {:.2} | {} |",
                s.offered_rate.unwrap_or(0.0),
                s.achieved_ok_per_s,
                s.ok_latency.p50_ms,
                s.ok_latency.p99_ms,
                s.ok_latency.max_ms,
                s.refused,
                s.refused_latency.p50_ms,
                s.refused_latency.p99_ms,
                s.errors
            );
        }
        println!();
        println!(
            "Capacity (best step): **{:.2} logins/s** = **{:.0} %** of the theoretical {:.2}/s (cores / bcrypt verify).",
            s6.capacity_per_s,
            s6.capacity_over_theoretical * 100.0,
            r.bcrypt_floor.theoretical_per_s
        );
    }
    if let Some(s7) = &r.s7 {
        println!();
        println!("## S7: login-flood isolation");
        println!();
        println!("S2 stand-in: {}.", s7.s2_stand_in);
        println!();
        println!("{LAT_HEAD}");
        println!("{}", lat_row("S2 solo", &s7.s2_solo));
        println!("{}", lat_row("S2 under login flood", &s7.s2_under_flood));
        println!("{}", lat_row("login flood", &s7.login_flood));
        println!();
        println!(
            "Login flood at {:.1}/s: {} ok, {} refused (refusal p50 {:.2} ms, p99 {:.2} ms). S2 under flood / solo: p50 ×{:.2}, **p99 ×{:.2}** (target ≤ 2, p99 ≤ 3 ms, no errors).",
            s7.login_flood_rate,
            s7.login_flood.ok,
            s7.login_flood.refused,
            s7.login_flood.refused_latency.p50_ms,
            s7.login_flood.refused_latency.p99_ms,
            s7.p50_ratio,
            s7.p99_ratio
        );
    }
    if let Some(r1) = &r.r1 {
        flood::print(r1, LAT_HEAD, lat_row);
    }
    if let Some(s8) = &r.s8 {
        println!();
        println!("## S8: refresh throughput ({} sessions, each along its own rotation chain)", s8.sessions);
        println!();
        println!("{LAT_HEAD}");
        println!("{}", lat_row("refresh, open loop", &s8.open));
        println!("{}", lat_row("refresh, closed loop (service time)", &s8.closed));
        println!();
        println!(
            "Max **{:.0} refreshes/s** = **{:.1} %** of the theoretical {:.0}/s (cores / RS256 sign); sessions lost: {}.",
            s8.closed.achieved_ok_per_s,
            s8.max_over_theoretical * 100.0,
            r.rs256_floor.theoretical_per_s,
            s8.sessions_lost
        );
    }
    print_users(r);
    if let Some(p) = &r.projects {
        projects::print(p);
    }
    if let Some(s9) = &r.s9 {
        live::print(s9);
    }
    for (name, s) in r
        .s6
        .iter()
        .flat_map(|s| s.steps.iter().map(|x| ("S6", x)))
        .chain(r.s7.iter().flat_map(|s| {
            [("S7 S2 solo", &s.s2_solo), ("S7 S2 flood", &s.s2_under_flood), ("S7 logins", &s.login_flood)]
        }))
        .chain(r.s8.iter().flat_map(|s| [("S8 open", &s.open), ("S8 closed", &s.closed)]))
        .chain(r.u2.iter().flat_map(|u| {
            u.steps
                .iter()
                .flat_map(|s| [("U2 floor", &s.floor), ("U2", &s.measured)])
                .chain(u.sweep.iter().map(|s| ("U2 closed", s)))
        }))
        .chain(
            r.u3.iter().flat_map(|u| [("U3 floor", &u.step.floor), ("U3", &u.step.measured), ("U3 closed", &u.closed)]),
        )
        .chain(
            r.u4.iter().flat_map(|u| [("U4 floor", &u.step.floor), ("U4", &u.step.measured), ("U4 closed", &u.closed)]),
        )
        .chain(r.projects.iter().flat_map(projects::phases))
    {
        if !s.failures.is_empty() {
            println!();
            println!("Errors in {name} at {:?}/s: {:?}", s.offered_rate, s.failures);
        }
    }
}

/// An open-loop phase and its floor, as two table rows.
#[allow(clippy::print_stdout)]
fn step_rows(label: &str, s: &users::Step) {
    println!("{}", lat_row("floor: GET /healthz", &s.floor));
    println!("{}", lat_row(label, &s.measured));
}

/// An open-loop phase over its floor: ratios and differences at p50 and p99.
#[allow(clippy::print_stdout)]
fn ratios(s: &users::Step) {
    println!();
    println!(
        "At {:.0}/s, over the /healthz floor of the same run: p50 ×{:.2} ({:+.3} ms), **p99 ×{:.2}** ({:+.3} ms: {:.3} over {:.3} ms).",
        s.rate,
        s.p50_over_floor,
        s.p50_minus_floor_ms,
        s.p99_over_floor,
        s.p99_minus_floor_ms,
        s.measured.ok_latency.p99_ms,
        s.floor.ok_latency.p99_ms
    );
}

/// The U2–U4 sections of the report.
#[allow(clippy::print_stdout)]
fn print_users(r: &Report) {
    if r.u2.is_some() || r.seeding.is_some() {
        println!();
        println!(
            "Server RSS (MiB): after U2 {}, after seeding {}, after U3 {}, after U4 {}.",
            mib(r.rss.after_u2_kib),
            mib(r.rss.after_seeding_kib),
            mib(r.rss.after_u3_kib),
            mib(r.rss.after_u4_kib)
        );
    }
    if let Some(u2) = &r.u2 {
        println!();
        println!("## U2: hot read (S2 shape)");
        println!();
        println!("{}.", u2.what);
        println!();
        println!("{LAT_HEAD}");
        for s in &u2.steps {
            step_rows("GET /api/users/me", s);
        }
        for s in &u2.sweep {
            println!("{}", lat_row("GET /api/users/me, closed loop (service time)", s));
        }
        for s in &u2.steps {
            ratios(s);
        }
        println!();
        println!("Max (closed-loop sweep): **{:.0} req/s**.", u2.max_per_s);
    }
    if let Some(p) = &r.seeding {
        println!();
        println!(
            "Seeded {} users through `POST /internal/users`, {} at a time, in {:.1} s ({:.0}/s).",
            p.users, p.concurrency, p.elapsed_s, p.per_s
        );
    }
    if let Some(u3) = &r.u3 {
        println!();
        println!("## U3: cold read (S3 shape), {} users", u3.population);
        println!();
        println!("{}.", u3.what);
        println!();
        println!("{LAT_HEAD}");
        step_rows("GET /api/users/{id}", &u3.step);
        println!("{}", lat_row("GET /api/users/{id}, closed loop (service time)", &u3.closed));
        ratios(&u3.step);
        println!();
        println!("Max (closed loop): **{:.0} req/s**.", u3.closed.achieved_ok_per_s);
    }
    if let Some(u4) = &r.u4 {
        println!();
        println!("## U4: search, {} users", u4.population);
        println!();
        println!(
            "{}. Prefixes: {}; a sample of 50 found {:.1} users per answer on average, {:.0} % full pages.",
            u4.what,
            u4.prefixes,
            u4.mean_items,
            u4.full_pages * 100.0
        );
        println!();
        println!("{LAT_HEAD}");
        step_rows("GET /api/users?q=…&limit=20", &u4.step);
        println!("{}", lat_row("GET /api/users?q=…&limit=20, closed loop (service time)", &u4.closed));
        ratios(&u4.step);
        println!();
        println!("Max (closed loop): **{:.0} req/s**.", u4.closed.achieved_ok_per_s);
    }
}
