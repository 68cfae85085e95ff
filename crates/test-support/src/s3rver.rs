//! s3rver (npm), a second S3-compatible server for what moto's default mode does not check: it
//! refuses an expired presigned URL with 403 `AccessDenied` (moto serves it). One server per
//! test on a free port, with a folder and a bucket of its own; s3rver is installed with npm into
//! `~/.cache/trellis-test-tools` the first time (like aiosmtpd from PyPI), so a fresh machine
//! needs only Node.js.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The version installed and started.
const VERSION: &str = "3.7.1";
/// s3rver's built-in account (its only access key).
const ACCESS_KEY: &str = "S3RVER";

/// A running s3rver with one bucket; stopped and its folder removed on drop.
pub struct TestS3rver {
    pub endpoint: String,
    pub bucket: String,
    child: Child,
    _dir: tempfile::TempDir,
}

fn install_dir() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from);
    home.join(".cache/trellis-test-tools").join(format!("s3rver-{VERSION}"))
}

/// The s3rver entry point, installed if missing. Installs into a fresh folder first and renames
/// it into place, so test processes racing to install never see half an installation.
fn ensure_installed() -> PathBuf {
    let dir = install_dir();
    let bin = dir.join("node_modules/s3rver/bin/s3rver.js");
    if bin.exists() {
        return bin;
    }
    let parent = dir.parent().unwrap_or_else(|| panic!("no parent of {}", dir.display()));
    std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
    let staging = tempfile::tempdir_in(parent).unwrap_or_else(|e| panic!("cannot stage the s3rver install: {e}"));
    let out = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
        .arg(staging.path())
        .arg(format!("s3rver@{VERSION}"))
        .output()
        .unwrap_or_else(|e| panic!("s3rver is required for this test; `npm` could not run: {e}"));
    assert!(out.status.success(), "npm install s3rver@{VERSION} failed: {}", String::from_utf8_lossy(&out.stderr));
    let staged = staging.keep();
    if std::fs::rename(&staged, &dir).is_err() {
        // Another process installed it first: use theirs.
        let _ = std::fs::remove_dir_all(&staged);
    }
    assert!(bin.exists(), "s3rver was installed but {} is missing", bin.display());
    bin
}

impl TestS3rver {
    pub async fn start() -> TestS3rver {
        tokio::task::spawn_blocking(Self::start_blocking)
            .await
            .unwrap_or_else(|e| panic!("starting s3rver panicked: {e}"))
    }

    fn start_blocking() -> TestS3rver {
        let bin = ensure_installed();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("s3rver folder: {e}"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("no free port for s3rver: {e}"));
        let bucket = crate::unique_name("trellis-s3rver").replace('_', "-");
        let child = Command::new("node")
            .arg(&bin)
            .arg("--directory")
            .arg(dir.path())
            .args(["--address", "127.0.0.1", "--port", &port.to_string(), "--silent", "--configure-bucket", &bucket])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("s3rver is required for this test; `node` could not start it: {e}"));
        let server = TestS3rver { endpoint: format!("http://127.0.0.1:{port}"), bucket, child, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3rver did not listen on {} within 20 s", server.endpoint);
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    pub fn location(&self) -> platform::objects::S3Location {
        platform::objects::S3Location {
            endpoint: self.endpoint.clone(),
            bucket: self.bucket.clone(),
            region: "us-east-1".into(),
            access_key_id: ACCESS_KEY.into(),
            secret_access_key: ACCESS_KEY.into(),
        }
    }
}

impl Drop for TestS3rver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
