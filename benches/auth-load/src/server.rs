//! Starting the server under test, and cleaning up after it.
//!
//! `trellis serve` (all services in one process) on a fresh temporary `--data-dir`, listening on a free
//! loopback port, either all-in-one (SQLite, in-process cache and bus) or on PostgreSQL + Redis + RabbitMQ
//! with a database, key prefix and vhost of its own that are removed afterwards. The gateway's per-client
//! rate limit is lifted (it would otherwise refuse the load itself); the users scenarios add the internal
//! token and the first administrator; `--env KEY=VALUE` passes any other setting through. The server is started through `taskset` so that it does not inherit the generator's
//! pinning.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};

/// Where the server keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// All-in-one: SQLite file, in-process cache and event bus.
    Sqlite,
    /// PostgreSQL + Redis + RabbitMQ (every service still in one process).
    Postgres,
}

pub struct ServerOptions {
    pub binary: PathBuf,
    pub mode: Mode,
    pub cpus: String,
    pub pg_url: String,
    pub redis_url: String,
    pub amqp_base: String,
    /// Settings the scenarios need (internal token, first administrator), applied before `env`.
    pub harness_env: Vec<(String, String)>,
    pub env: Vec<(String, String)>,
    pub keep_data: bool,
}

/// A running server and everything made for it.
pub struct Server {
    pub base: String,
    pub pid: u32,
    pub log: PathBuf,
    /// The server's `DATABASE_URL` (postgres mode) and `AMQP_URL` (with the run's vhost), for the projects
    /// scenarios' seeding and publish-lag consumer; `None` all-in-one (the SQLite file is `trellis.db` in the
    /// data folder).
    pub database_url: Option<String>,
    pub amqp_url: Option<String>,
    child: Child,
    data_dir: PathBuf,
    keep_data: bool,
    /// Undo steps for the backing services, run in order by `stop`.
    cleanup: Vec<(String, Vec<String>)>,
}

/// A short random lowercase name part (database, prefix, vhost, email).
pub fn random_suffix() -> String {
    let mut b = [0u8; 6];
    // The CSPRNG cannot fail on Linux; if it ever does, the time still makes the name unique enough.
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        b.copy_from_slice(&t.as_nanos().to_le_bytes()[..6]);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Runs a command to completion, failing with its stderr.
fn run(program: &str, args: &[String]) -> anyhow::Result<String> {
    let out = Command::new(program).args(args).output().with_context(|| format!("cannot run {program}"))?;
    if !out.status.success() {
        bail!("{program} {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("cannot bind a loopback port")?;
    Ok(l.local_addr()?.port())
}

/// `postgres://u@h:p/test` → `postgres://u@h:p/<db>` (query string kept).
fn with_database(url: &str, db: &str) -> anyhow::Result<String> {
    let (head, query) = url.split_once('?').map_or((url, None), |(h, q)| (h, Some(q)));
    let Some(slash) = head.rfind('/').filter(|i| *i > "postgres://".len()) else {
        bail!("--pg-url must name a database (postgres://user@host:port/db), got {url}");
    };
    let mut out = format!("{}/{db}", &head[..slash]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

impl Server {
    pub async fn start(o: &ServerOptions) -> anyhow::Result<Server> {
        anyhow::ensure!(
            o.binary.exists(),
            "{} does not exist: build it with `cargo build --release -p trellis` or pass --trellis",
            o.binary.display()
        );
        let suffix = random_suffix();
        let data_dir = std::env::temp_dir().join(format!("auth-load-{suffix}"));
        std::fs::create_dir_all(&data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
        let port = free_port()?;
        let mut env: Vec<(String, String)> = vec![
            // The gateway's per-client fixed window would refuse the benchmark's own load.
            ("TRELLIS_GATEWAY__RATE_LIMIT_PER_MINUTE".into(), "1000000000".into()),
            // S9 holds tens of thousands of live connections of one user from one address.
            ("TRELLIS_HTTP__MAX_CONNECTIONS".into(), "1000000".into()),
            ("TRELLIS_HTTP__WEBSOCKETS_PER_USER".into(), "1000000".into()),
            ("TRELLIS_HTTP__WEBSOCKETS_PER_ADDRESS".into(), "1000000".into()),
            // R1's flood registers new addresses from this one client: the flood of many clients that a
            // per-client registration budget cannot stop.
            ("TRELLIS_AUTH__REGISTER_LIMIT".into(), "1000000000".into()),
        ];
        let mut cleanup = Vec::new();
        if o.mode == Mode::Postgres
            && let Err(e) = prepare_backends(o, &format!("bench_{suffix}"), &mut env, &mut cleanup)
        {
            undo(&mut cleanup, &data_dir, o.keep_data);
            return Err(e);
        }
        // Later entries win: the caller's --env overrides ours.
        env.extend(o.harness_env.iter().cloned());
        env.extend(o.env.iter().cloned());
        let log = data_dir.join("server.log");
        let log_file = std::fs::File::create(&log)?;
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", &o.cpus])
            .arg(&o.binary)
            .arg("serve")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        // The server gets only what we choose, plus the basics a process expects; our own environment (and
        // any TRELLIS_*/DATABASE_URL in it) does not leak in.
        cmd.env_clear();
        for key in ["PATH", "HOME", "LANG", "TMPDIR"] {
            if let Ok(v) = std::env::var(key) {
                cmd.env(key, v);
            }
        }
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        // `taskset` execs the server, so the child's pid is the server's.
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                undo(&mut cleanup, &data_dir, o.keep_data);
                bail!("cannot start taskset/trellis: {e}");
            }
        };
        let setting = |key: &str| env.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let mut server = Server {
            base: format!("http://127.0.0.1:{port}"),
            pid: child.id(),
            log,
            database_url: setting("DATABASE_URL"),
            amqp_url: setting("AMQP_URL"),
            child,
            data_dir,
            keep_data: o.keep_data,
            cleanup,
        };
        if let Err(e) = server.wait_ready().await {
            let tail = server.log_tail(20);
            server.stop();
            bail!("{e:#}\n--- server log (last lines) ---\n{tail}");
        }
        Ok(server)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let url = format!("{}/readyz", self.base);
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait()? {
                bail!("the server exited during start-up ({status})");
            }
            if let Ok(r) = client.get(&url).timeout(Duration::from_secs(2)).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the server was not ready after 60 s")
    }

    /// Resident set size of the server, KiB (`VmRSS`), and its peak (`VmHWM`).
    pub fn rss_kib(&self) -> Option<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let field = |name: &str| {
            status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.split_whitespace().next()?.parse().ok())
        };
        Some((field("VmRSS:")?, field("VmHWM:")?))
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Stops the server (SIGTERM, then SIGKILL after 10 s) and removes what was made for it. Idempotent.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill").args(["-TERM", &self.pid.to_string()]).status();
            let mut exited = false;
            for _ in 0..100 {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    exited = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if !exited {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        undo(&mut self.cleanup, &self.data_dir, self.keep_data);
    }
}

/// A database, a RabbitMQ vhost and a Redis key prefix of the run's own, each registered for `undo` as soon
/// as it exists.
fn prepare_backends(
    o: &ServerOptions,
    name: &str,
    env: &mut Vec<(String, String)>,
    cleanup: &mut Vec<(String, Vec<String>)>,
) -> anyhow::Result<()> {
    run("psql", &[o.pg_url.clone(), "-qc".into(), format!("CREATE DATABASE {name}")])
        .context("cannot create the bench database (is PostgreSQL up? see --pg-url)")?;
    cleanup.push((
        "psql".into(),
        vec![o.pg_url.clone(), "-qc".into(), format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")],
    ));
    run("rabbitmqctl", &["-q".into(), "add_vhost".into(), name.to_string()]).context("cannot add a RabbitMQ vhost")?;
    cleanup.push(("rabbitmqctl".into(), vec!["-q".into(), "delete_vhost".into(), name.to_string()]));
    run(
        "rabbitmqctl",
        &[
            "-q".into(),
            "set_permissions".into(),
            "-p".into(),
            name.to_string(),
            "guest".into(),
            ".*".into(),
            ".*".into(),
            ".*".into(),
        ],
    )?;
    let prefix = format!("{name}:");
    cleanup.push((
        "sh".into(),
        vec![
            "-c".into(),
            format!("redis-cli -u \"$0\" --scan --pattern '{prefix}*' | xargs -r redis-cli -u \"$0\" del >/dev/null"),
            o.redis_url.clone(),
        ],
    ));
    env.extend([
        ("DATABASE_URL".to_string(), with_database(&o.pg_url, name)?),
        ("REDIS_URL".into(), o.redis_url.clone()),
        ("TRELLIS_REDIS_PREFIX".into(), prefix),
        ("AMQP_URL".into(), format!("{}/{name}", o.amqp_base.trim_end_matches('/'))),
    ]);
    Ok(())
}

/// Drops the database, vhost and keys made for the run, and the data folder unless it is to be kept.
fn undo(cleanup: &mut Vec<(String, Vec<String>)>, data_dir: &Path, keep_data: bool) {
    for (program, args) in cleanup.drain(..) {
        if let Err(e) = run(&program, &args) {
            eprintln!("cleanup: {e:#}");
        }
    }
    if !keep_data {
        let _ = std::fs::remove_dir_all(data_dir);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn replaces_only_the_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "b").unwrap(),
            "postgres://postgres@127.0.0.1:5432/b"
        );
        assert_eq!(
            with_database("postgres://u:p@h/x?sslmode=disable", "b").unwrap(),
            "postgres://u:p@h/b?sslmode=disable"
        );
        assert!(with_database("postgres://h", "b").is_err());
    }
}
