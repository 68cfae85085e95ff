//! The PostgreSQL, Redis and RabbitMQ the tests use: reached as configured, or started privately.
//!
//! For each service, in order:
//! 1. `TEST_DATABASE_URL`, `TEST_REDIS_URL`, `TEST_AMQP_URL` set: that server must answer, or the
//!    run fails saying so. Nothing is started.
//! 2. Otherwise, unless `TEST_SERVICES=private`: the usual local server
//!    (`postgres://postgres@127.0.0.1:5432/test` with trust authentication, Redis on 6379,
//!    RabbitMQ on 5672 with guest/guest), if it answers and accepts the tests.
//! 3. Otherwise a private instance of xtask's own, on its own port and data folder under
//!    `/var/tmp/trellis-ci-<uid>/` (PostgreSQL with its own superuser and SCRAM password
//!    authentication), whose address the tests get through the variables of step 1. The run
//!    stops what it started when it ends; the data folders stay for the next run.
//!
//! (xtask's own variables, `TEST_SERVICES`, `TEST_PATIENCE`, `TEST_TOOLS_HOME`, never start with
//! `TRELLIS_`: the binary reads every `TRELLIS_*` variable as configuration and refuses unknown ones.)
//!
//! So the tests never depend on a machine's hand-made settings (Debian's PostgreSQL asks for a
//! password, and nothing may be running at all).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util::{
    Result, cmd, has, is_root, output, random_hex, reachable, run, service_home, set_env, step, succeeds, wait_for,
};

/// Private ports: outside the kernel's ephemeral range and the tests' reserved range
/// (test-support's `reserve_port`, 20000–32000).
const PG_PORT: u16 = 15432;
const REDIS_PORT: u16 = 16379;
const AMQP_PORT: u16 = 15673;
const AMQP_DIST_PORT: u16 = 15674;

/// What this run started, stopped when dropped (unless [`Started::keep`] was called).
#[derive(Default)]
pub struct Started {
    stops: Vec<(String, Box<dyn FnOnce()>)>,
}

impl Started {
    /// Leaves the private services running (for `cargo xtask services`).
    pub fn keep(mut self) {
        self.stops.clear();
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        for (name, stop) in self.stops.drain(..).rev() {
            eprintln!("stopping the private {name}");
            stop();
        }
    }
}

fn private_only() -> bool {
    std::env::var("TEST_SERVICES").is_ok_and(|v| v == "private")
}

pub fn ensure() -> Result<Started> {
    step("services");
    let mut started = Started::default();
    postgres(&mut started)?;
    redis(&mut started)?;
    rabbitmq(&mut started)?;
    Ok(started)
}

/// Runs `program` as the service account `user` when xtask runs as root (PostgreSQL refuses to
/// run as root), else as the current user.
fn as_service(user: &str, program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        // -m: keep the environment (HOME, the data folders) xtask gives the service.
        c.args(["-m", "-u", user, "--"]).arg(program);
        // A folder the service account can enter (not a private home or clone).
        c.current_dir("/");
        c
    } else {
        Command::new(program)
    }
}

/// Whether the process whose id `pid_file` holds (first line) is alive.
fn alive(pid_file: &Path) -> bool {
    std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|t| t.lines().next().map(str::trim).map(str::to_string))
        .filter(|pid| !pid.is_empty())
        .is_some_and(|pid| Path::new("/proc").join(pid).is_dir())
}

/// An error for a private port that something other than our own instance listens on.
fn taken(what: &str, port: u16) -> String {
    format!(
        "{what}: 127.0.0.1:{port}, the private instance's port, is taken by another process; stop it, \
         or point TEST_* at a server of your own"
    )
}

fn chown(user: &str, path: &Path) -> Result {
    if is_root() { run(Command::new("chown").args(["-R", user]).arg(path)) } else { Ok(()) }
}

fn psql_ok(url: &str) -> bool {
    succeeds(cmd("psql").args([url, "-tAc", "SELECT 1"]))
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

fn postgres(started: &mut Started) -> Result {
    if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
        return if psql_ok(&url) {
            eprintln!("PostgreSQL: TEST_DATABASE_URL answers");
            Ok(())
        } else {
            Err("PostgreSQL: TEST_DATABASE_URL is set but psql cannot connect with it".into())
        };
    }
    if !private_only() && reachable(5432) {
        let url = "postgres://postgres@127.0.0.1:5432/test";
        if psql_ok(url) {
            eprintln!("PostgreSQL: the local server on 5432 (trust authentication, database test)");
            return Ok(());
        }
        // A trusting server without the `test` database: create it.
        if succeeds(cmd("psql").args(["postgres://postgres@127.0.0.1:5432/postgres", "-c", "CREATE DATABASE test"])) {
            eprintln!("PostgreSQL: the local server on 5432 (database test created)");
            return Ok(());
        }
        eprintln!("PostgreSQL: the server on 5432 does not let postgres in without a password; starting a private one");
    }
    let url = private_postgres(started)?;
    set_env("TEST_DATABASE_URL", url);
    Ok(())
}

/// The newest installed server's `bin` folder (`/usr/lib/postgresql/<version>/bin`).
fn postgres_bin() -> Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("PostgreSQL's server is not installed (/usr/lib/postgresql: {e})"))?
        .flatten()
        .filter_map(|d| Some((d.file_name().to_str()?.parse().ok()?, d.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| "no PostgreSQL server under /usr/lib/postgresql".into())
}

fn private_postgres(started: &mut Started) -> Result<String> {
    let bin = postgres_bin()?;
    let dir = service_home().join("postgres");
    let data = dir.join("data");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let password_file = dir.join("password");
    if !data.join("PG_VERSION").is_file() {
        eprintln!("PostgreSQL: creating a private cluster in {}", data.display());
        let _ = std::fs::remove_dir_all(&data);
        std::fs::write(&password_file, random_hex(24)?).map_err(|e| format!("{}: {e}", password_file.display()))?;
        chown("postgres", &dir)?;
        run(as_service("postgres", &bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "trellis", "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8"])
            .arg(format!("--pwfile={}", password_file.display()))
            .stdout(Stdio::null()))?;
    }
    let password = std::fs::read_to_string(&password_file).map_err(|e| format!("{}: {e}", password_file.display()))?;
    let password = password.trim().to_string();
    let url = format!("postgres://trellis:{password}@127.0.0.1:{PG_PORT}/test");
    // The password goes to psql in its environment, never on a command line (which is shown).
    let psql = |db: &str| {
        let mut c = cmd("psql");
        c.env("PGPASSWORD", &password).args(["-h", "127.0.0.1", "-p", &PG_PORT.to_string(), "-U", "trellis", "-d", db]);
        c
    };
    if reachable(PG_PORT) && !alive(&data.join("postmaster.pid")) {
        return Err(taken("PostgreSQL", PG_PORT));
    }
    if !reachable(PG_PORT) {
        eprintln!("PostgreSQL: starting the private cluster on 127.0.0.1:{PG_PORT}");
        // Throwaway data: durability settings off, room for many tests' pools at once.
        let options = format!(
            "-c port={PG_PORT} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
             -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            dir.display()
        );
        run(as_service("postgres", &bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("server.log"))
            .args(["-w", "-t", "120", "-o", &options, "start"])
            .stdout(Stdio::null()))
        .map_err(|e| format!("{e}; see {}", dir.join("server.log").display()))?;
        let (pg_ctl, data) = (bin.join("pg_ctl"), data.clone());
        started.stops.push((
            "PostgreSQL".into(),
            Box::new(move || {
                let _ = as_service("postgres", &pg_ctl)
                    .arg("-D")
                    .arg(&data)
                    .args(["-m", "fast", "-w", "stop"])
                    .stdout(Stdio::null())
                    .status();
            }),
        ));
    }
    if !succeeds(psql("test").args(["-tAc", "SELECT 1"])) {
        run(psql("postgres").args(["-qc", "CREATE DATABASE test"]).stdout(Stdio::null()))
            .map_err(|e| format!("PostgreSQL: the private cluster refuses its own superuser: {e}"))?;
    }
    eprintln!("PostgreSQL: private cluster on 127.0.0.1:{PG_PORT} (password authentication)");
    Ok(url)
}

// ---------------------------------------------------------------------------------------------
// Redis

fn redis(started: &mut Started) -> Result {
    if let Ok(url) = std::env::var("TEST_REDIS_URL") {
        return if succeeds(cmd("redis-cli").args(["-u", &url, "ping"])) {
            eprintln!("Redis: TEST_REDIS_URL answers");
            Ok(())
        } else {
            Err("Redis: TEST_REDIS_URL is set but does not answer PING".into())
        };
    }
    if !private_only() && succeeds(cmd("redis-cli").args(["-h", "127.0.0.1", "-p", "6379", "ping"])) {
        eprintln!("Redis: the local server on 6379");
        return Ok(());
    }
    let dir = service_home().join("redis");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if reachable(REDIS_PORT) && !alive(&dir.join("redis.pid")) {
        return Err(taken("Redis", REDIS_PORT));
    }
    if !reachable(REDIS_PORT) {
        eprintln!("Redis: starting a private server on 127.0.0.1:{REDIS_PORT}");
        run(cmd("redis-server")
            .args(["--port", &REDIS_PORT.to_string(), "--bind", "127.0.0.1", "--daemonize", "yes"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .arg("--pidfile")
            .arg(dir.join("redis.pid"))
            .arg("--logfile")
            .arg(dir.join("redis.log")))?;
        wait_for(REDIS_PORT, "the private Redis", Duration::from_secs(30))?;
        started.stops.push((
            "Redis".into(),
            Box::new(|| {
                let _ = cmd("redis-cli")
                    .args(["-p", &REDIS_PORT.to_string(), "shutdown", "nosave"])
                    .stdout(Stdio::null())
                    .status();
            }),
        ));
    }
    set_env("TEST_REDIS_URL", format!("redis://127.0.0.1:{REDIS_PORT}"));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// RabbitMQ

fn rabbitmq(started: &mut Started) -> Result {
    if let Ok(url) = std::env::var("TEST_AMQP_URL") {
        let port = url.rsplit_once(':').and_then(|(_, p)| p.split('/').next()?.parse().ok()).unwrap_or(5672);
        return if reachable(port) {
            eprintln!("RabbitMQ: TEST_AMQP_URL answers");
            Ok(())
        } else {
            Err(format!("RabbitMQ: TEST_AMQP_URL is set but nothing listens on its port {port}"))
        };
    }
    if !private_only() && reachable(5672) {
        eprintln!("RabbitMQ: the local server on 5672 (guest/guest)");
        return Ok(());
    }
    let server = PathBuf::from("/usr/lib/rabbitmq/bin/rabbitmq-server");
    if !server.is_file() || !has("rabbitmqctl") {
        return Err("RabbitMQ is not installed (/usr/lib/rabbitmq/bin/rabbitmq-server)".into());
    }
    let dir = service_home().join("rabbitmq");
    std::fs::create_dir_all(dir.join("log")).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (file, text) in [("enabled_plugins", "[].\n"), ("rabbitmq.conf", ""), ("rabbitmq-env.conf", "")] {
        std::fs::write(dir.join(file), text).map_err(|e| format!("{}: {e}", dir.join(file).display()))?;
    }
    chown("rabbitmq", &dir)?;
    let node = format!("trellis-ci-{}@localhost", output(Command::new("id").arg("-u"))?.trim());
    let env = rabbit_env(&dir, &node);
    if reachable(AMQP_PORT) && !alive(&dir.join("rabbitmq.pid")) {
        return Err(taken("RabbitMQ", AMQP_PORT));
    }
    if !reachable(AMQP_PORT) {
        eprintln!("RabbitMQ: starting a private node {node} on 127.0.0.1:{AMQP_PORT} (this takes a while)");
        let log = std::fs::File::create(dir.join("log/console.log")).map_err(|e| e.to_string())?;
        let mut c = as_service("rabbitmq", &server);
        // `runuser` keeps the environment it is given; xtask's variables go to the server too.
        c.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        let child: Child = c.spawn().map_err(|e| format!("cannot start rabbitmq-server: {e}"))?;
        let waited = wait_for(AMQP_PORT, "the private RabbitMQ", Duration::from_secs(180));
        let stop_env = env.clone();
        let stop_node = node.clone();
        let mut child = child;
        started.stops.push((
            "RabbitMQ".into(),
            Box::new(move || {
                let mut c = as_service("rabbitmq", Path::new("/usr/lib/rabbitmq/bin/rabbitmqctl"));
                let _ = c
                    .envs(stop_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    .args(["-n", &stop_node, "stop"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                let _ = child.kill();
                let _ = child.wait();
            }),
        ));
        waited.map_err(|e| format!("{e}; see {}", dir.join("log").display()))?;
    }
    set_env("TEST_AMQP_URL", format!("amqp://guest:guest@127.0.0.1:{AMQP_PORT}/%2f"));
    eprintln!("RabbitMQ: private node on 127.0.0.1:{AMQP_PORT}");
    Ok(())
}

/// The variables that give a RabbitMQ node its own name, ports, data, logs and cookie.
fn rabbit_env(dir: &Path, node: &str) -> Vec<(String, String)> {
    let d = |p: &str| dir.join(p).display().to_string();
    [
        ("RABBITMQ_NODENAME", node.to_string()),
        ("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1".into()),
        ("RABBITMQ_NODE_PORT", AMQP_PORT.to_string()),
        ("RABBITMQ_DIST_PORT", AMQP_DIST_PORT.to_string()),
        ("RABBITMQ_MNESIA_BASE", d("mnesia")),
        ("RABBITMQ_LOG_BASE", d("log")),
        ("RABBITMQ_PID_FILE", d("rabbitmq.pid")),
        ("RABBITMQ_ENABLED_PLUGINS_FILE", d("enabled_plugins")),
        ("RABBITMQ_CONFIG_FILE", d("rabbitmq")),
        ("RABBITMQ_CONF_ENV_FILE", d("rabbitmq-env.conf")),
        ("HOME", dir.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}
