//! s3rver (npm), a second S3-compatible server for what moto's default mode does not check: it
//! refuses an expired presigned URL with 403 `AccessDenied` (moto serves it). One server per
//! test on a reserved port ([`reserve_port`](crate::reserve_port): nothing else can hold it
//! between its choice and s3rver's bind), with a folder and a bucket of its own; s3rver is
//! installed with npm into `~/.cache/trellis-test-tools` the first time (like aiosmtpd from
//! PyPI), so a fresh machine needs only Node.js. The server is ready when its command line says
//! `S3rver listening on <address>:<port>`, which it prints once the bucket exists and the port is
//! bound.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::wait;

/// The version installed and started.
const VERSION: &str = "3.7.1";
/// s3rver's built-in account (its only access key).
const ACCESS_KEY: &str = "S3RVER";
/// How long node may take to load s3rver, make the bucket and listen, before [`wait::patience`]
/// scales it.
const START_TIMEOUT: Duration = Duration::from_secs(60);

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
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap_or_else(|e| panic!("s3rver data folder: {e}"));
        // Its errors go to a file, read if it fails to start (a pipe nobody reads could fill up).
        let errors = dir.path().join("stderr");
        let stderr = std::fs::File::create(&errors).unwrap_or_else(|e| panic!("s3rver stderr file: {e}"));
        let port = crate::reserve_port();
        let bucket = crate::unique_name("trellis-s3rver").replace('_', "-");
        let mut child = Command::new("node")
            .arg(&bin)
            .arg("--directory")
            .arg(&data)
            .args(["--address", "127.0.0.1", "--port", &port.to_string(), "--silent", "--configure-bucket", &bucket])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("s3rver is required for this test; `node` could not start it: {e}"));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("s3rver has no stdout"));
        let ready = format!("S3rver listening on 127.0.0.1:{port}");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Every line until the one that says it listens; then the rest is drained, so that a
            // full pipe never blocks the server. End of file: it exited.
            let mut said = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !said && line.trim() == ready {
                    said = true;
                    let _ = tx.send(true);
                }
            }
            let _ = tx.send(false);
        });
        let limit = wait::patience(START_TIMEOUT);
        let waited = match rx.recv_timeout(limit) {
            Ok(true) => {
                return TestS3rver { endpoint: format!("http://127.0.0.1:{port}"), bucket, child, _dir: dir };
            }
            Ok(false) => "exited before listening".to_string(),
            Err(_) => format!("did not say it listens within {limit:?} (TEST_PATIENCE scales this)"),
        };
        let _ = child.kill();
        let _ = child.wait();
        let stderr = std::fs::read_to_string(&errors).unwrap_or_default();
        panic!("s3rver on reserved port {port} {waited}:\n{stderr}");
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
