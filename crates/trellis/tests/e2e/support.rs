//! Starting the real `trellis` binary as child processes, and a small HTTP client for the flows.
//!
//! Every wait here is for a state and has a generous bound scaled by `TEST_PATIENCE`
//! (`test_support::wait`); a port is reserved for the child (`test_support::reserve_port`), never
//! bound and released.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use platform::db::Database;
use test_support::wait::{self, patience};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// The bound of one HTTP request of the flows: a login waits for bcrypt, which runs at nice 10
/// and so gets little of a machine busy with other work.
pub fn request_timeout() -> Duration {
    patience(Duration::from_secs(60))
}

/// A running `trellis` process; killed on drop if still running.
pub struct Trellis {
    pub base: String,
    port: u16,
    child: Child,
    /// Reads stderr as it comes, so that a chatty process never blocks on a full pipe.
    log: Option<tokio::task::JoinHandle<String>>,
    name: String,
}

impl Trellis {
    /// Starts `trellis serve` in `cwd` with exactly `env` (plus PATH), and waits for `/healthz`.
    pub async fn start(name: &str, cwd: &Path, args: &[&str], env: &[(&str, String)]) -> Trellis {
        Self::start_on(test_support::reserve_port(), name, cwd, args, env).await
    }

    /// Like [`Trellis::start`] on a chosen port (so that processes can know each other's address);
    /// the port must come from `test_support::reserve_port`.
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
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let log = tokio::spawn(async move {
            let mut out = Vec::new();
            let _ = stderr.read_to_end(&mut out).await;
            String::from_utf8_lossy(&out).into_owned()
        });
        let mut t = Trellis { base: format!("http://{listen}"), port, child, log: Some(log), name: name.to_string() };
        t.wait_healthy().await;
        t
    }

    /// Waits until `/healthz` answers 200. Start-up runs the migrations and, on a first start,
    /// generates a signing key: seconds on a loaded machine, hence the generous bound.
    async fn wait_healthy(&mut self) {
        let limit = patience(Duration::from_secs(120));
        let start = std::time::Instant::now();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = self.stop_and_log().await;
                panic!("trellis ({}) exited during start-up with {status}:\n{log}", self.name);
            }
            if let Ok(r) = http.get(format!("{}/healthz", self.base)).send().await
                && r.status().is_success()
            {
                return;
            }
            if start.elapsed() > limit {
                let log = self.stop_and_log().await;
                panic!(
                    "trellis ({}) was still running but did not answer 200 on {}/healthz within {limit:.0?}:\n{log}",
                    self.name, self.base
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM without waiting for the exit (see [`Trellis::wait_exit`]).
    pub fn sigterm(&self) {
        let pid = self.child.id().expect("running");
        let status = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
        assert!(
            status.as_ref().is_ok_and(|s| s.success()),
            "cannot send SIGTERM to trellis ({}): {status:?}",
            self.name
        );
    }

    /// Waits until the listener is closed: connecting is refused. After [`Trellis::sigterm`] this
    /// is the sign that the graceful shutdown has begun (the server accepts nothing new).
    pub async fn wait_until_not_accepting(&self) {
        let addr = ("127.0.0.1", self.port);
        wait::until(&format!("trellis ({}) to close its listener after SIGTERM", self.name), || async move {
            TcpStream::connect(addr).await.is_err()
        })
        .await;
    }

    /// Sends SIGTERM and waits for the exit; returns the exit code and everything it logged.
    pub async fn terminate(self) -> (Option<i32>, String) {
        self.sigterm();
        self.wait_exit().await
    }

    /// Waits for the exit after a SIGTERM; returns the exit code and everything it logged. The
    /// process finishes in-flight requests and background work first (up to 10 s per task).
    pub async fn wait_exit(mut self) -> (Option<i32>, String) {
        let limit = patience(Duration::from_secs(90));
        let status = match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(status) => status.unwrap(),
            Err(_) => {
                let log = self.stop_and_log().await;
                panic!("trellis ({}) did not exit within {limit:.0?} of SIGTERM; killed it:\n{log}", self.name);
            }
        };
        let log = self.read_log().await;
        (status.code(), log)
    }

    /// Everything the process wrote to stderr (call once it has exited: the pipe is then at its
    /// end).
    async fn read_log(&mut self) -> String {
        let Some(task) = self.log.take() else { return String::new() };
        let limit = patience(Duration::from_secs(30));
        match tokio::time::timeout(limit, task).await {
            Ok(joined) => joined.unwrap_or_else(|e| panic!("reading the log of trellis ({}) failed: {e}", self.name)),
            Err(_) => panic!("the stderr of trellis ({}) was not at its end {limit:.0?} after the exit", self.name),
        }
    }

    async fn stop_and_log(&mut self) -> String {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        self.read_log().await
    }
}

/// A request whose head the server has read and whose handler is reading the body, which is
/// held back until [`HeldRequest::finish`]: a request in flight, for as long as the test likes.
pub struct HeldRequest {
    stream: TcpStream,
    body: Vec<u8>,
}

impl HeldRequest {
    /// Sends `POST path` with `Expect: 100-continue` and waits for `100 Continue`, which the
    /// server sends only once the handler polls the body (hyper).
    pub async fn begin(app: &Trellis, path: &str, json: &serde_json::Value) -> HeldRequest {
        let body = json.to_string().into_bytes();
        let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
            app.port,
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let interim = read_head(&mut stream, &format!("100 Continue to POST {path}")).await;
        assert!(interim.starts_with("HTTP/1.1 100"), "the server answered before reading the body: {interim}");
        HeldRequest { stream, body }
    }

    /// Sends the body and returns the status line and the rest of the answer.
    pub async fn finish(mut self) -> (String, String) {
        self.stream.write_all(&self.body).await.unwrap();
        let mut answer = String::new();
        let read = self.stream.read_to_string(&mut answer);
        tokio::time::timeout(wait::default_limit(), read)
            .await
            .unwrap_or_else(|_| panic!("no answer to the held request within {:.0?}", wait::default_limit()))
            .unwrap_or_else(|e| panic!("the held request was cut: {e}"));
        let (status, rest) = answer.split_once("\r\n").unwrap_or((answer.as_str(), ""));
        (status.to_string(), rest.to_string())
    }
}

/// Reads one response head (up to the empty line).
async fn read_head(stream: &mut TcpStream, what: &str) -> String {
    let mut head = Vec::new();
    let read = async {
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut byte).await.unwrap();
            assert!(n == 1, "the connection closed while waiting for {what}: {}", String::from_utf8_lossy(&head));
            head.push(byte[0]);
        }
    };
    tokio::time::timeout(wait::default_limit(), read)
        .await
        .unwrap_or_else(|_| panic!("waited {:.0?} for {what}", wait::default_limit()));
    String::from_utf8_lossy(&head).into_owned()
}

/// Waits until the worker has handled every event the outbox holds when called (each has its row
/// in `worker_processed_events`, written with its audit entry); returns how many that is. Fails
/// only when the count stops growing for a minute (scaled).
pub async fn wait_for_outbox_consumed(db: &Database) -> usize {
    const TOTAL: &str = "SELECT count(*) FROM outbox";
    const HANDLED: &str = "SELECT count(*) FROM outbox o JOIN worker_processed_events p ON p.event_id = o.id";
    let count = |sql: &'static str| async move {
        let n: i64 = match db {
            Database::Sqlite(db) => db.read(move |c| c.query_row(sql, [], |r| r.get(0))).await.unwrap(),
            Database::Postgres(db) => db.client().await.unwrap().query_one(sql, &[]).await.unwrap().get(0),
        };
        usize::try_from(n).unwrap()
    };
    let total = count(TOTAL).await;
    wait::until_count(
        "events of the outbox handled by the worker (outbox → relay → bus → worker_processed_events)",
        total,
        Duration::from_secs(60),
        || count(HANDLED),
    )
    .await;
    total
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
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trellis"));
    cmd.args(args).current_dir(cwd).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start `trellis {}`: {e}", args.join(" ")));
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    // Commands run migrations, talk to PostgreSQL and S3 and archive or re-encrypt in batches.
    let limit = patience(Duration::from_secs(300));
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("`trellis {}` did not finish within {limit:.0?}; killed it", args.join(" ")))
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One deployment under attack (docs/SECURITY.md): what the attack flows of issue 16 need to reach
/// it and to look behind it. All-in-one, every service address is the one process's.
pub struct Attack {
    /// Where clients reach Trellis: the all-in-one process or the gateway.
    pub base: String,
    /// Each service's own address (`auth`, `users`, `projects`, `worker`, `gateway`).
    pub services: std::collections::BTreeMap<&'static str, String>,
    /// Where mail lands (`.eml` files: no SMTP server is configured in either deployment).
    pub mail_dir: std::path::PathBuf,
    /// The deployment's database, to look at what it retains.
    pub db: Database,
    /// The administrator created at start-up: (email, password).
    pub admin: (String, String),
    /// The working folder and settings of the processes, to run `trellis` commands beside them.
    pub dir: std::path::PathBuf,
    pub env: Vec<(&'static str, String)>,
    pub distributed: bool,
}

impl Attack {
    /// The address of one service's own process (all-in-one: the one process).
    pub fn service(&self, name: &str) -> &str {
        self.services.get(name).unwrap_or_else(|| panic!("no service named {name}"))
    }

    /// The administrator signed in with a second factor, as `auth.admin_requires_mfa` (on in the
    /// attack tests, the default) wants for admin actions: turns TOTP on for the administrator
    /// (step-up with the password) and signs in with one of its single-use recovery codes, so no
    /// flow waits for the next TOTP step. [`AdminSession::end`] turns the factor off again, so the
    /// administrator signs in with the password alone as before (each flow leaves the deployment
    /// as it found it).
    pub async fn admin_session(&self) -> AdminSession {
        use serde_json::json;
        let http = crate::flow::client();
        let (base, (email, password)) = (self.base.clone(), self.admin.clone());
        let plain = crate::flow::login_tokens(&http, &base, &email, &password).await.access;
        let post = |path: &str, body: serde_json::Value| {
            let (http, url, plain) = (http.clone(), format!("{base}{path}"), plain.clone());
            async move {
                let res = http.post(&url).bearer_auth(plain).json(&body).send().await.unwrap();
                let status = res.status();
                let text = res.text().await.unwrap_or_default();
                assert_eq!(status, reqwest::StatusCode::OK, "{url}: {text}");
                serde_json::from_str::<serde_json::Value>(&text).unwrap()
            }
        };
        let setup = post("/auth/mfa/totp/setup", json!({ "current_password": password })).await;
        let code = crate::flow::independent_totp(setup["secret"].as_str().unwrap(), crate::flow::unix_now());
        let enabled = post("/auth/mfa/totp/enable", json!({ "code": code })).await;
        let codes = enabled["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string());
        let mut session = AdminSession {
            access: String::new(),
            refresh: String::new(),
            base,
            email,
            password,
            recovery_codes: codes.collect(),
        };
        session.sign_in().await;
        session
    }
}

/// The administrator's session with a second factor ([`Attack::admin_session`]).
pub struct AdminSession {
    /// An access token whose `amr` names `otp`.
    pub access: String,
    pub refresh: String,
    base: String,
    email: String,
    password: String,
    recovery_codes: Vec<String>,
}

impl AdminSession {
    /// A new session with the second factor (a recovery code); replaces `access` and `refresh`.
    pub async fn sign_in(&mut self) -> &str {
        use serde_json::json;
        let http = crate::flow::client();
        let res = crate::flow::post_login(&http, &self.base, &self.email, &self.password).await.unwrap();
        assert_eq!(res.status(), reqwest::StatusCode::OK);
        let step: serde_json::Value = res.json().await.unwrap();
        assert_eq!(step["mfa_required"], true, "the administrator has a second factor: {step}");
        let code = self.recovery_codes.pop().expect("a recovery code left");
        let body = json!({ "mfa_token": step["mfa_token"], "code": code });
        let res = http.post(format!("{}/auth/login/mfa", self.base)).json(&body).send().await.unwrap();
        assert_eq!(res.status(), reqwest::StatusCode::OK);
        let tokens: serde_json::Value = res.json().await.unwrap();
        self.access = tokens["access_token"].as_str().unwrap().to_string();
        self.refresh = tokens["refresh_token"].as_str().unwrap().to_string();
        &self.access
    }

    /// Turns the administrator's second factor off again (password re-checked): afterwards the
    /// administrator signs in with the password alone, as before [`Attack::admin_session`].
    pub async fn end(mut self) {
        let access = self.sign_in().await.to_string();
        let res = crate::flow::client()
            .post(format!("{}/auth/mfa/totp/disable", self.base))
            .bearer_auth(access)
            .json(&serde_json::json!({ "password": self.password }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), reqwest::StatusCode::NO_CONTENT, "the second factor is off again");
    }
}

/// The administrator of the attacked deployments.
pub const ATTACK_ADMIN: (&str, &str) = ("root@example.com", "canary granite harbour lighthouse keeper");
