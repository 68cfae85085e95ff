//! `cargo xtask`: the project's automation, in Rust with the standard library only.
//!
//! `cargo xtask ci` is the one command that runs every test on a fresh Debian machine: it installs
//! what is missing (Debian packages; moto, aiosmtpd and PyJWT in a virtual environment of its own;
//! a recent Node.js when the system's is too old; cargo-nextest; the web app's npm packages),
//! reaches PostgreSQL, Redis and RabbitMQ as configured or starts private ones ([`services`]),
//! checks that the committed web build matches `web/`, then runs the supply-chain check
//! ([`supply_chain`]: `cargo deny` against a vendored advisory database, the web app's production
//! dependencies), rustfmt, clippy, the web tests, every Rust test (the property-based fuzz tests
//! with a small case count) and the browser suite (`web/e2e/app.mjs`) against the real binary.
//! `cargo xtask stress-ci` runs all of that several times in fresh clones ([`stress`]).

mod services;
mod stress;
mod supply_chain;
mod tools;
mod util;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitCode, Stdio};
use std::time::{Duration, Instant};

use util::{Result, cmd, root, run, step, wait_for};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("services") => services_only(),
        Some("web") => tools::ensure().and_then(|_| web_checks()),
        Some("supply-chain") => tools::ensure().and_then(|_| supply_chain::check()),
        Some("stress-ci") => stress::Options::parse(&args[1..]).and_then(|o| stress::stress(&o)),
        _ => {
            eprintln!("usage: cargo xtask <ci|services|web|stress-ci>");
            eprintln!("  ci         install what is missing, start services, run every check and test");
            eprintln!(
                "  services   install and start what the tests need, print the variables to use, leave it running"
            );
            eprintln!("  web        web app: install, typecheck, unit tests, build, and check dist is committed");
            eprintln!("  supply-chain  cargo deny (vendored advisories, licences, bans, sources) and the web app's");
            eprintln!("             production dependencies, offline");
            eprintln!("  stress-ci  [--runs N] [--hog THREADS] [--keep]: `CI=true bash .ci/run` N times (3) in fresh");
            eprintln!("             clones, beside THREADS busy-spinning threads, naming every failing test");
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

fn ci() -> Result {
    let started = Instant::now();
    tools::ensure()?;
    // Stops the privately started services however the run ends.
    let _services = services::ensure()?;
    web_checks()?;
    supply_chain::check()?;
    let root = root();

    step("rustfmt");
    run(cmd("cargo").args(["fmt", "--all", "--check"]).current_dir(&root))?;
    step("clippy");
    run(cmd("cargo")
        .args(["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"])
        .current_dir(&root))?;
    step("Rust tests (unit, contract suites on every adapter, end-to-end on the real binary)");
    // Profile `ci` (.config/nextest.toml): no retries, slow tests reported, each test bounded.
    run(cmd("cargo")
        .args(["nextest", "run", "--workspace", "--locked", "--no-fail-fast", "--profile", "ci"])
        .current_dir(&root))?;

    step("browser suite against the real binary (Chromium): web/e2e/app.mjs");
    browser_suite(&root)?;

    eprintln!("\nxtask: every check passed in {}s", started.elapsed().as_secs());
    Ok(())
}

/// Makes the tests runnable by hand: installs, starts, prints what to export, leaves it running.
fn services_only() -> Result {
    tools::ensure()?;
    let started = services::ensure()?;
    started.keep();
    eprintln!("\nFor `cargo nextest run` in this shell:");
    eprintln!("export PATH={}:\"$PATH\"", tools::venv_dir().join("bin").display());
    for key in ["TEST_DATABASE_URL", "TEST_REDIS_URL", "TEST_AMQP_URL"] {
        if let Some(v) = util::env_var(key).filter(|_| std::env::var(key).is_err()) {
            eprintln!("export {key}='{v}'");
        }
    }
    Ok(())
}

/// Installs the web app's packages, type-checks, unit-tests and builds it, and fails when the
/// committed `web/dist` differs from what the sources build to.
fn web_checks() -> Result {
    let web = root().join("web");
    step("web: npm ci");
    run(cmd("npm").args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(&web))?;
    step("web: typecheck and unit tests");
    run(cmd("npm").args(["run", "typecheck"]).current_dir(&web))?;
    run(cmd("npm").arg("test").current_dir(&web))?;
    step("web: build, and check the committed build is current");
    run(cmd("npm").args(["run", "build"]).current_dir(&web))?;
    let status = std::process::Command::new("git")
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
    run(cmd("cargo").args(["build", "--locked", "--bin", "trellis"]).current_dir(root))?;
    let binary = target_dir(root).join("debug/trellis");
    let dir = std::env::temp_dir().join(format!("trellis-browser-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let (admin_email, admin_password) = ("admin@example.com", "quartz harbour lantern meadow nine");
    let mut create = cmd(&binary.to_string_lossy())
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
        cmd(&binary.to_string_lossy())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            // The suite's administrator signs in with a password alone (its flows are not about
            // 2FA; that rule is tested in crates/trellis/tests/e2e/attack_admin_mfa.rs).
            .env("TRELLIS_AUTH__ADMIN_REQUIRES_MFA", "false")
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?,
    );
    wait_for(port, "trellis", Duration::from_secs(120))?;
    if let Ok(Some(status)) = server.0.try_wait() {
        return Err(format!("trellis serve exited with {status} before the browser suite (port {port} taken?)"));
    }
    let result = run(cmd("node")
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
