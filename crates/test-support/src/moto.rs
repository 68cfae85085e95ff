//! Makes sure an S3-compatible server answers at [`s3_endpoint`](crate::s3_endpoint) before a
//! test uses it, starting moto's `moto_server` when nothing is there.
//!
//! - `TEST_S3_ENDPOINT` set: that server must answer; nothing is started.
//! - unset: if something already listens on `127.0.0.1:5000` (another test binary's moto, or
//!   one started by hand) it is used; otherwise `moto_server -H 127.0.0.1 -p 5000` is started
//!   once per test process and awaited (20 s at most).
//!
//! The started server deliberately outlives the test process, so that test binaries running in
//! parallel (or the next `cargo test`) can share it without one of them pulling it away from the
//! others. A small `sh` watchdog stops it after 15 minutes without a request. Its output goes to
//! `$TMPDIR/trellis-moto-5000.log` and its process id to `$TMPDIR/trellis-moto-5000.pid`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Host and port used when `TEST_S3_ENDPOINT` is unset.
const DEFAULT_HOST: &str = "127.0.0.1";
const DEFAULT_PORT: u16 = 5000;
/// How long a started server may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Minutes without a request after which the watchdog stops a server we started.
const IDLE_MINUTES: u32 = 15;

/// Whether this process already proved the server answers (later calls return at once).
static READY: Mutex<bool> = Mutex::new(false);

/// Returns the S3 endpoint once a server answers there, starting moto if needed; panics with
/// the address and the reason otherwise. Blocking; cheap after the first call in a process.
pub fn ensure_s3_server() -> String {
    let endpoint = crate::s3_endpoint();
    // Held for the whole check so concurrent tests in this process start at most one server.
    let mut ready = READY.lock().unwrap_or_else(|e| e.into_inner());
    if *ready {
        return endpoint;
    }
    let explicit = std::env::var_os("TEST_S3_ENDPOINT").is_some();
    let addr = socket_addr(&endpoint);
    if answers_http(addr) {
        *ready = true;
        return endpoint;
    }
    if explicit {
        panic!(
            "the S3-compatible server is required and unreachable at {endpoint} \
             (TEST_S3_ENDPOINT); start it or unset TEST_S3_ENDPOINT to let the tests start moto"
        );
    }
    start_moto(addr);
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if answers_http(addr) {
            *ready = true;
            return endpoint;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "started moto_server for the S3 tests but nothing answered at {endpoint} within {}s; \
         its log ({}) ends with:\n{}",
        START_TIMEOUT.as_secs(),
        log_path().display(),
        log_tail()
    );
}

fn socket_addr(endpoint: &str) -> SocketAddr {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let host_port = rest.split('/').next().unwrap_or(rest);
    let with_port = if host_port.contains(':') { host_port.to_string() } else { format!("{host_port}:80") };
    with_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| panic!("cannot resolve the S3 test endpoint {endpoint}"))
}

/// True when an HTTP server answers a `GET /` at `addr` (moto answers with its bucket list).
fn answers_http(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET / HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    if s.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

fn log_path() -> PathBuf {
    std::env::temp_dir().join(format!("trellis-moto-{DEFAULT_PORT}.log"))
}

fn pid_path() -> PathBuf {
    std::env::temp_dir().join(format!("trellis-moto-{DEFAULT_PORT}.pid"))
}

fn log_tail() -> String {
    let text = std::fs::read_to_string(log_path()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Starts `moto_server` under a watchdog shell that stops it once it has been idle for a while.
/// If another process wins the race for the port, this server exits at once and the winner's is
/// used: `ensure_s3_server` only waits for *a* server to answer.
fn start_moto(addr: SocketAddr) {
    assert!(
        on_path("moto_server"),
        "the S3 tests need an S3-compatible server at {addr} and none is running; \
         `moto_server` is not on PATH. Install it with `pip install 'moto[server]'`, \
         or point TEST_S3_ENDPOINT at another S3-compatible server."
    );
    // `find -mmin +N` prints the log once it is older than N minutes: werkzeug writes a line per
    // request, so an old log means an idle server.
    let script = r#"
        moto_server -H "$1" -p "$2" >>"$3" 2>&1 &
        m=$!
        echo "$m" >"$4"
        ( while sleep 10; do
            if [ -n "$(find "$3" -mmin +"$5" 2>/dev/null)" ]; then kill "$m" 2>/dev/null; exit; fi
          done ) &
        w=$!
        wait "$m"
        kill "$w" 2>/dev/null
    "#;
    let log = log_path();
    // Touch the log so the watchdog does not see a stale file from an earlier run as idle.
    let _ = std::fs::OpenOptions::new().create(true).append(true).open(&log);
    let spawned = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(DEFAULT_HOST)
        .arg(DEFAULT_PORT.to_string())
        .arg(&log)
        .arg(pid_path())
        .arg(IDLE_MINUTES.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    if let Err(e) = spawned {
        panic!("cannot start moto_server for the S3 tests at {addr}: {e}");
    }
    // The child is not waited for: it must outlive this process (see the module docs).
}

#[cfg(test)]
mod tests {
    use super::socket_addr;

    #[test]
    fn parses_the_endpoint_address() {
        assert_eq!(socket_addr("http://127.0.0.1:5000").to_string(), "127.0.0.1:5000");
        assert_eq!(socket_addr("http://127.0.0.1:9000/").to_string(), "127.0.0.1:9000");
    }
}
