//! Starting the real `trellis` binary as child processes, and a small HTTP client for the flows.

use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

/// A free loopback port (bound and released; the binary binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running `trellis` process; killed on drop if still running.
pub struct Trellis {
    pub base: String,
    child: Child,
    name: String,
    /// Reads the process's stderr as it comes, so that a long flow never fills the pipe (a full
    /// pipe blocks the process's logging, and with it every request).
    log: Option<tokio::task::JoinHandle<String>>,
}

impl Trellis {
    /// Starts `trellis serve` in `cwd` with exactly `env` (plus PATH), and waits for `/healthz`.
    pub async fn start(name: &str, cwd: &Path, args: &[&str], env: &[(&str, String)]) -> Trellis {
        Self::start_on(free_port(), name, cwd, args, env).await
    }

    /// Like [`Trellis::start`] on a chosen port (so that processes can know each other's address).
    pub async fn start_on(port: u16, name: &str, cwd: &Path, args: &[&str], env: &[(&str, String)]) -> Trellis {
        let listen = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_trellis"));
        cmd.arg("serve").arg("--listen").arg(&listen).args(args).current_dir(cwd).env_clear();
        cmd.env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::null()).stderr(Stdio::piped()).kill_on_drop(true);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start trellis ({name}): {e}"));
        let log = child.stderr.take().map(|mut err| {
            tokio::spawn(async move {
                let mut out = String::new();
                let _ = err.read_to_string(&mut out).await;
                out
            })
        });
        let mut t = Trellis { base: format!("http://{listen}"), child, name: name.to_string(), log };
        t.wait_healthy().await;
        t
    }

    async fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let http = reqwest::Client::new();
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = self.stop_and_log().await;
                panic!("trellis ({}) exited during start-up with {status}:\n{log}", self.name);
            }
            if let Ok(r) = http.get(format!("{}/healthz", self.base)).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = self.stop_and_log().await;
        panic!("trellis ({}) did not become healthy in 30 s:\n{log}", self.name);
    }

    /// Sends SIGTERM and waits for the exit; returns the exit code and everything it logged.
    pub async fn terminate(mut self) -> (Option<i32>, String) {
        let pid = self.child.id().expect("running");
        let _ = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("trellis ({}) did not stop within 20 s of SIGTERM", self.name))
            .unwrap();
        let log = self.read_log().await;
        (status.code(), log)
    }

    async fn read_log(&mut self) -> String {
        match self.log.take() {
            Some(reader) => tokio::time::timeout(Duration::from_secs(5), reader)
                .await
                .map(|r| r.unwrap_or_default())
                .unwrap_or_default(),
            None => String::new(),
        }
    }

    async fn stop_and_log(&mut self) -> String {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        self.read_log().await
    }
}

/// Runs `trellis ARGS` to completion with exactly `env` and returns (exit code, stdout, stderr).
pub async fn run(cwd: &Path, args: &[&str], env: &[(&str, String)]) -> (Option<i32>, String, String) {
    run_with_stdin(cwd, args, env, "").await
}

/// Like [`run`], writing `stdin` to the process's standard input.
pub async fn run_with_stdin(
    cwd: &Path,
    args: &[&str],
    env: &[(&str, String)],
    stdin: &str,
) -> (Option<i32>, String, String) {
    use tokio::io::AsyncWriteExt;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trellis"));
    cmd.args(args).current_dir(cwd).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("trellis finished")
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
