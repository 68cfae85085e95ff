//! Small helpers every xtask command shares: running commands with the CI environment, waiting
//! for ports, and where xtask keeps its state between runs.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub type Result<T = ()> = std::result::Result<T, String>;

/// Variables every command xtask starts gets on top of its own environment: the virtual
/// environment's `bin` first on `PATH`, the addresses of privately started services.
static EXTRA_ENV: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// Adds (or replaces) a variable for every command started from now on.
pub fn set_env(key: &str, value: impl Into<String>) {
    let mut env = EXTRA_ENV.lock().unwrap_or_else(|e| e.into_inner());
    env.retain(|(k, _)| k != key);
    env.push((key.to_string(), value.into()));
}

/// The value a started command sees for `key`: xtask's own setting, else the environment's.
pub fn env_var(key: &str) -> Option<String> {
    let env = EXTRA_ENV.lock().unwrap_or_else(|e| e.into_inner());
    env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).or_else(|| std::env::var(key).ok())
}

/// Prepends `dir` to the `PATH` of every command started from now on.
pub fn prepend_path(dir: &Path) {
    let current = env_var("PATH").unwrap_or_default();
    let mut parts: Vec<PathBuf> = vec![dir.to_path_buf()];
    parts.extend(std::env::split_paths(&current).filter(|p| p != dir));
    if let Ok(joined) = std::env::join_paths(parts) {
        set_env("PATH", joined.to_string_lossy().into_owned());
    }
}

/// A command for `program` with xtask's environment applied, resolved on that environment's `PATH`.
pub fn cmd(program: &str) -> Command {
    let resolved = which(program).unwrap_or_else(|| PathBuf::from(program));
    let mut c = Command::new(resolved);
    let env = EXTRA_ENV.lock().unwrap_or_else(|e| e.into_inner());
    for (k, v) in env.iter() {
        c.env(k, v);
    }
    c
}

/// Where `program` is on xtask's `PATH` (absolute paths are returned as they are, if they exist).
pub fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return p.is_file().then_some(p);
    }
    let path = env_var("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file())
}

pub fn has(program: &str) -> bool {
    which(program).is_some()
}

/// Runs a command to completion, streaming its output; fails with its description.
pub fn run(c: &mut Command) -> Result {
    let shown = describe(c);
    let status = c.status().map_err(|e| format!("cannot run {shown}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{shown} exited with {status}")) }
}

/// Runs a command and returns its standard output, failing with its standard error.
pub fn output(c: &mut Command) -> Result<String> {
    let shown = describe(c);
    let out = c.stdin(Stdio::null()).output().map_err(|e| format!("cannot run {shown}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("{shown} exited with {}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Whether a command runs and exits 0, its output discarded.
pub fn succeeds(c: &mut Command) -> bool {
    c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// The program and arguments, without the environment (which may hold passwords) and with the
/// password of any URL among the arguments replaced by `***`.
fn describe(c: &Command) -> String {
    let mut s = c.get_program().to_string_lossy().into_owned();
    for a in c.get_args() {
        s.push(' ');
        s.push_str(&redact(&a.to_string_lossy()));
    }
    s
}

/// `scheme://user:secret@host…` → `scheme://user:***@host…`; anything else unchanged.
pub fn redact(text: &str) -> String {
    let Some(start) = text.find("://").map(|i| i + 3) else { return text.to_string() };
    let rest = &text[start..];
    let Some(at) = rest.find('@') else { return text.to_string() };
    match rest[..at].find(':') {
        Some(colon) => format!("{}{}:***{}", &text[..start], &rest[..colon], &rest[at..]),
        None => text.to_string(),
    }
}

pub fn step(name: &str) {
    eprintln!("\n==> {name}");
}

pub fn reachable(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
}

pub fn wait_for(port: u16, what: &str, timeout: Duration) -> Result {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if reachable(port) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Err(format!("{what} is not reachable on 127.0.0.1:{port} after {}s", timeout.as_secs()))
}

pub fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_ok_and(|o| o.trim() == "0")
}

/// The repository's root (xtask lives one folder below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

/// Where xtask keeps what it installs for itself (the Python virtual environment): kept between
/// runs so the next one starts warm; `TEST_TOOLS_HOME` moves it.
pub fn home() -> PathBuf {
    if let Some(dir) = std::env::var_os("TEST_TOOLS_HOME") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("trellis-ci")
}

/// Where privately started services keep their data: a folder that the service accounts
/// (`postgres`, `rabbitmq`) can reach even when the home folder is private.
pub fn service_home() -> PathBuf {
    let uid = output(Command::new("id").arg("-u")).map(|s| s.trim().to_string()).unwrap_or_default();
    PathBuf::from("/var/tmp").join(format!("trellis-ci-{uid}"))
}

/// A random lowercase hex string of `bytes` bytes from the kernel.
pub fn random_hex(bytes: usize) -> Result<String> {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn shown_commands_hide_url_passwords() {
        assert_eq!(
            redact("postgres://trellis:s3cret@127.0.0.1:15432/test"),
            "postgres://trellis:***@127.0.0.1:15432/test"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redact("CREATE DATABASE test"), "CREATE DATABASE test");
    }
}
