//! `cargo xtask`: the project's automation, in Rust with the standard library only.
//!
//! `cargo xtask ci` is the one command that runs every test on a fresh Debian machine: it installs
//! what is missing (Debian packages, moto, aiosmtpd and PyJWT, npm packages), starts PostgreSQL, Redis and RabbitMQ
//! when they are not running (and fails loudly when they cannot be reached), checks that the
//! committed web build matches `web/`, then runs rustfmt, clippy, the web tests, every Rust test
//! and the browser suite (`web/e2e/app.mjs`) against the real binary.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("services") => ensure_tools().and_then(|_| ensure_services()),
        Some("web") => web_checks(),
        _ => {
            eprintln!("usage: cargo xtask <ci|services|web>");
            eprintln!("  ci        install what is missing, start services, run every check and test");
            eprintln!("  services  install and start PostgreSQL, Redis, RabbitMQ and moto (and aiosmtpd) only");
            eprintln!("  web       web app: install, typecheck, unit tests, build, and check dist is committed");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nxtask: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

fn step(name: &str) {
    eprintln!("\n==> {name}");
}

/// Runs a command to completion, streaming its output; fails with its description.
fn run(cmd: &mut Command) -> Result {
    let shown = format!("{cmd:?}");
    let status = cmd.status().map_err(|e| format!("cannot run {shown}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{shown} exited with {status}")) }
}

fn has(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn reachable(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
}

fn wait_for(port: u16, what: &str, timeout: Duration) -> Result {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if reachable(port) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Err(format!("{what} is not reachable on 127.0.0.1:{port} after {}s", timeout.as_secs()))
}

fn ci() -> Result {
    let started = Instant::now();
    ensure_tools()?;
    ensure_services()?;
    web_checks()?;
    let root = root();

    step("rustfmt");
    run(Command::new("cargo").args(["fmt", "--all", "--check"]).current_dir(&root))?;
    step("clippy");
    run(Command::new("cargo")
        .args(["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"])
        .current_dir(&root))?;

    step("Rust tests (unit, contract suites on every adapter, end-to-end on the real binary)");
    if has("cargo-nextest") {
        run(Command::new("cargo")
            .args(["nextest", "run", "--workspace", "--locked", "--no-fail-fast"])
            .current_dir(&root))?;
    } else {
        run(Command::new("cargo").args(["test", "--workspace", "--locked", "--no-fail-fast"]).current_dir(&root))?;
    }

    step("browser suite against the real binary (Chromium): web/e2e/app.mjs");
    browser_suite(&root)?;

    eprintln!("\nxtask: every check passed in {}s", started.elapsed().as_secs());
    Ok(())
}

/// Debian packages and tools the tests need, installed when missing.
fn ensure_tools() -> Result {
    step("tools");
    let wanted: &[(&str, &str)] = &[
        ("pg_ctlcluster", "postgresql"),
        ("psql", "postgresql-client"),
        ("pg_dump", "postgresql-client"),
        ("redis-server", "redis-server"),
        ("rabbitmq-server", "rabbitmq-server"),
        ("sqlite3", "sqlite3"),
        ("chromium", "chromium"),
        ("node", "nodejs"),
        ("npm", "npm"),
        ("pip3", "python3-pip"),
        // The malware scan tests start clamd with their own offline signatures (no freshclam).
        ("/usr/sbin/clamd", "clamav-daemon"),
        ("sigtool", "clamav"),
    ];
    let missing: Vec<&str> = wanted.iter().filter(|(cmd, _)| !has(cmd)).map(|(_, pkg)| *pkg).collect();
    if !missing.is_empty() {
        eprintln!("installing Debian packages: {}", missing.join(" "));
        let sudo: &[&str] = if is_root() { &[] } else { &["sudo"] };
        let apt = |args: &[&str]| {
            let mut all: Vec<&str> = sudo.to_vec();
            all.push("apt-get");
            all.extend_from_slice(args);
            let mut cmd = Command::new(all[0]);
            cmd.args(&all[1..]).env("DEBIAN_FRONTEND", "noninteractive");
            run(&mut cmd)
        };
        apt(&["update", "-q"])?;
        let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
        args.extend(missing.iter().copied());
        apt(&args)?;
    }
    if !has("moto_server") {
        eprintln!("installing moto's S3-compatible server from PyPI");
        run(Command::new("pip3").args(["install", "--quiet", "moto[server]"]))?;
    }
    if !python_imports("aiosmtpd") {
        eprintln!("installing the aiosmtpd SMTP server (the mail tests' sink) from PyPI");
        run(Command::new("python3").args(["-m", "pip", "install", "--quiet", "aiosmtpd"]))?;
        if !python_imports("aiosmtpd") {
            return Err("aiosmtpd is required for the mail tests and python3 cannot import it".into());
        }
    }
    // The end-to-end tests verify Trellis tokens with PyJWT, an independent JWT implementation.
    let has_pyjwt = || {
        Command::new("python3")
            .args([
                "-c",
                "import jwt, cryptography; from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAPSSAlgorithm",
            ])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !has_pyjwt() {
        eprintln!("installing PyJWT with its crypto extra from PyPI");
        run(Command::new("pip3").args(["install", "--quiet", "PyJWT[crypto]>=2.8"]))?;
        if !has_pyjwt() {
            return Err("PyJWT[crypto] is required for the end-to-end token tests and could not be installed".into());
        }
    }
    for (cmd, why) in [
        ("moto_server", "the S3 contract tests"),
        ("chromium", "the browser tests"),
        ("sqlite3", "the end-to-end tests"),
    ] {
        if !has(cmd) {
            return Err(format!("{cmd} is required for {why} and could not be installed"));
        }
    }
    Ok(())
}

/// Whether `python3` can import `module` (what the test support runs).
fn python_imports(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// PostgreSQL (5432, trust auth, database `test`), Redis (6379) and RabbitMQ (5672): started when
/// not running; the tests fail loudly if they still cannot be reached.
fn ensure_services() -> Result {
    step("services");
    if !reachable(5432) {
        eprintln!("starting PostgreSQL");
        let versions = std::fs::read_dir("/etc/postgresql").map_err(|e| format!("PostgreSQL is not installed: {e}"))?;
        for v in versions.flatten() {
            let version = v.file_name().to_string_lossy().to_string();
            let _ = run(Command::new("pg_ctlcluster").args(["--skip-systemctl-redirect", &version, "main", "start"]));
        }
        wait_for(5432, "PostgreSQL", Duration::from_secs(30))?;
    }
    // The tests connect as postgres without a password to the `test` database.
    let has_test_db = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-tAc", "SELECT 1"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_test_db {
        run(Command::new("psql").args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-c",
            "CREATE DATABASE test",
        ]))
        .map_err(|e| format!("PostgreSQL must accept postgres@127.0.0.1 with trust auth: {e}"))?;
    }
    if !reachable(6379) {
        eprintln!("starting Redis");
        let _ = std::fs::create_dir_all("/var/lib/redis");
        run(Command::new("redis-server").args([
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
        ]))?;
        wait_for(6379, "Redis", Duration::from_secs(15))?;
    }
    if !reachable(5672) {
        eprintln!("starting RabbitMQ (this takes a while)");
        run(Command::new("rabbitmq-server").arg("-detached"))?;
        wait_for(5672, "RabbitMQ", Duration::from_secs(120))?;
    }
    eprintln!("PostgreSQL, Redis and RabbitMQ are reachable");
    Ok(())
}

/// Installs the web app's packages, type-checks, unit-tests and builds it, and fails when the
/// committed `web/dist` differs from what the sources build to.
fn web_checks() -> Result {
    let web = root().join("web");
    step("web: npm ci");
    run(Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(&web))?;
    step("web: typecheck and unit tests");
    run(Command::new("npm").args(["run", "typecheck"]).current_dir(&web))?;
    run(Command::new("npm").arg("test").current_dir(&web))?;
    step("web: build, and check the committed build is current");
    run(Command::new("npm").args(["run", "build"]).current_dir(&web))?;
    let status = Command::new("git")
        .args(["status", "--porcelain", "--", "dist"])
        .current_dir(&web)
        .output()
        .map_err(|e| format!("git: {e}"))?;
    let changed = String::from_utf8_lossy(&status.stdout).trim().to_string();
    if !changed.is_empty() {
        return Err(format!(
            "web/dist is out of date with web/: rebuild it (cd web && npm run build) and commit the result:\n{changed}"
        ));
    }
    Ok(())
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"))
}

/// Starts the real binary with zero configuration (plus an administrator made with
/// `trellis admin create-user`) and runs the browser suite (`web/e2e/app.mjs`) against it.
fn browser_suite(root: &Path) -> Result {
    run(Command::new("cargo").args(["build", "--locked", "--bin", "trellis"]).current_dir(root))?;
    let binary = target_dir(root).join("debug/trellis");
    let dir = std::env::temp_dir().join(format!("trellis-browser-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let (admin_email, admin_password) = ("admin@example.com", "quartz harbour lantern meadow nine");
    let mut create = Command::new(&binary)
        .args(["admin", "create-user", "--email", admin_email, "--name", "Ada Admin"])
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    if let Some(mut stdin) = create.stdin.take() {
        use std::io::Write;
        writeln!(stdin, "{admin_password}").map_err(|e| e.to_string())?;
    }
    let made = create.wait().map_err(|e| e.to_string())?;
    if !made.success() {
        return Err(format!("trellis admin create-user failed: {made}"));
    }
    let port = free_port()?;
    let mut server = ServerGuard(
        Command::new(&binary)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?,
    );
    wait_for(port, "trellis", Duration::from_secs(30))?;
    let result = run(Command::new("node")
        .arg("e2e/app.mjs")
        .env("TRELLIS_URL", format!("http://127.0.0.1:{port}"))
        .env("ADMIN_EMAIL", admin_email)
        .env("ADMIN_PASSWORD", admin_password)
        .current_dir(root.join("web")));
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Kills the server however the browser suite ends.
struct ServerGuard(Child);

impl ServerGuard {
    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.stop();
    }
}
