//! A real clamd per test ([`TestClamd`]), on a reserved local port, whose only signatures are the
//! MD5 hashes of files the test names (`sigtool --md5` into a `.hdb`, docs/SECURITY.md UP-5): no
//! signature download, so it starts offline in a second or two on an idle machine (much longer on
//! a loaded one: the start-up wait is generous). Needs `clamd` and `sigtool` (Debian
//! `clamav-daemon`, `clamav`; `cargo xtask services` installs them).
//!
//! The port comes from [`reserve_port`](crate::reserve_port), so nothing else can hold it between
//! its choice and clamd's bind, and whatever answers `PONG` there is this test's clamd.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::wait;

/// How long clamd may take to load its database and answer `PING`, before [`wait::patience`]
/// scales it.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A clamd process, stopped on drop.
pub struct TestClamd {
    addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
}

/// `program`'s path: on `PATH`, or in `/usr/sbin` (clamd's place, not on every user's `PATH`).
fn find(program: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&paths).chain([PathBuf::from("/usr/sbin")]).map(|d| d.join(program)).find(|p| p.is_file())
}

/// `PING` answered with `PONG`. Short of that (not listening yet, or too slow to answer this
/// time), false: the caller asks again.
fn answers(addr: SocketAddr) -> bool {
    let Ok(mut conn) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else { return false };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reply = Vec::new();
    conn.write_all(b"zPING\0").is_ok() && conn.read_to_end(&mut reply).is_ok() && reply.starts_with(b"PONG")
}

impl TestClamd {
    /// Starts clamd whose signature database flags exactly the `signed` files (name, bytes).
    pub async fn start(signed: &[(&str, &[u8])]) -> TestClamd {
        let signed: Vec<(String, Vec<u8>)> = signed.iter().map(|(n, b)| (n.to_string(), b.to_vec())).collect();
        tokio::task::spawn_blocking(move || TestClamd::start_blocking(&signed))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    fn start_blocking(signed: &[(String, Vec<u8>)]) -> TestClamd {
        let (Some(clamd), Some(sigtool)) = (find("clamd"), find("sigtool")) else {
            panic!(
                "the malware scan tests need clamd and sigtool: apt-get install clamav-daemon clamav \
                 (or cargo xtask services)"
            )
        };
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("clamd temp dir: {e}"));
        let db = dir.path().join("db");
        std::fs::create_dir(&db).unwrap_or_else(|e| panic!("clamd db dir: {e}"));
        let mut hdb = String::new();
        for (name, bytes) in signed {
            let file = dir.path().join(name);
            std::fs::write(&file, bytes).unwrap_or_else(|e| panic!("clamd signed file: {e}"));
            let out = Command::new(&sigtool)
                .arg("--md5")
                .arg(name)
                .current_dir(dir.path())
                .output()
                .unwrap_or_else(|e| panic!("sigtool: {e}"));
            assert!(out.status.success(), "sigtool --md5 {name}: {}", String::from_utf8_lossy(&out.stderr));
            hdb.push_str(&String::from_utf8_lossy(&out.stdout));
        }
        std::fs::write(db.join("trellis-test.hdb"), hdb).unwrap_or_else(|e| panic!("clamd .hdb: {e}"));
        let port = crate::reserve_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let conf = dir.path().join("clamd.conf");
        let text = format!(
            "DatabaseDirectory {db}\nTCPSocket {port}\nTCPAddr 127.0.0.1\nForeground yes\n\
             LogFile {log}\nPidFile {pid}\nStreamMaxLength 64M\nSelfCheck 0\n",
            db = db.display(),
            log = dir.path().join("clamd.log").display(),
            pid = dir.path().join("clamd.pid").display(),
        );
        std::fs::write(&conf, text).unwrap_or_else(|e| panic!("clamd.conf: {e}"));
        // What clamd prints before its log is open (a bad configuration) goes to a file of its own.
        let out = std::fs::File::create(dir.path().join("clamd.out")).unwrap_or_else(|e| panic!("clamd.out: {e}"));
        let err = out.try_clone().unwrap_or_else(|e| panic!("clamd.out: {e}"));
        let child = Command::new(&clamd)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start clamd: {e}"));
        let mut clamd = TestClamd { addr, child, dir };
        let limit = wait::patience(START_TIMEOUT);
        let start = Instant::now();
        while !answers(addr) {
            let log = || {
                let read = |name: &str| std::fs::read_to_string(clamd.dir.path().join(name)).unwrap_or_default();
                format!("{}{}", read("clamd.out"), read("clamd.log"))
            };
            if let Some(status) = clamd.child.try_wait().ok().flatten() {
                panic!("clamd exited ({status}) before answering PING at {addr}:\n{}", log());
            }
            assert!(
                start.elapsed() < limit,
                "clamd did not answer PING at {addr} within {limit:?} of starting (loading its signature \
                 database; TEST_PATIENCE scales this):\n{}",
                log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        clamd
    }

    /// `tcp://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for TestClamd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
