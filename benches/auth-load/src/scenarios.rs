//! The scenarios of docs/PERFORMANCE.md this harness covers, driven through the gateway of a real `trellis`:
//!
//! * **S6** login throughput: one account, logins ramped up open loop step by step.
//! * **S7** login-flood isolation: the S2 stand-in alone, then again while logins arrive at twice the
//!   capacity S6 measured. S2 is "authenticated GET /tasks/{id}, cache hit"; there is no
//!   `GET /api/tasks/{id}` yet, so the stand-in is the authenticated `GET /api/projects/{id}` (a
//!   database read by primary key plus the membership check, not a cache hit).
//! * **S8** refresh throughput: a pool of sessions, each refreshed along its own rotation chain.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};

use crate::load::{Outcome, Summary, closed_loop, open_loop};

/// The HTTP side of the harness: one connection-pooling client and the server's base URL.
#[derive(Clone)]
pub struct Target {
    pub client: reqwest::Client,
    pub base: String,
}

/// The benchmark account. The password carries "canary", like every password the e2e flows send, so a
/// grep of the server log shows whether it ever leaked.
#[derive(Clone)]
pub struct Account {
    pub email: String,
    pub password: String,
}

impl Target {
    pub fn new(base: &str, max_connections: usize) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(max_connections)
            .pool_idle_timeout(Duration::from_secs(90))
            .timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .user_agent("auth-load")
            .build()?;
        Ok(Self { client, base: base.to_string() })
    }

    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> Result<(StatusCode, Vec<u8>), String> {
        let res = self
            .client
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(transport_kind)?;
        let status = res.status();
        let body = res.bytes().await.map_err(transport_kind)?;
        Ok((status, body.to_vec()))
    }

    pub async fn register(&self, suffix: &str) -> anyhow::Result<Account> {
        let account = Account {
            email: format!("load-{suffix}@example.com"),
            // Not built from the email or the name (the server refuses those), long, random.
            password: format!("canary-{}-correct-horse-staple", crate::server::random_suffix()),
        };
        let body = json!({ "email": account.email, "password": account.password, "name": "Load Generator" });
        let (status, body) = self.post_json("/auth/register", &body).await.map_err(anyhow::Error::msg)?;
        if status != StatusCode::CREATED {
            bail!("register answered {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(account)
    }

    /// Logs in, retrying politely while the server refuses for load (429/503): used for setup, not measured.
    pub async fn login_tokens(&self, a: &Account) -> anyhow::Result<Tokens> {
        let body = json!({ "email": a.email, "password": a.password });
        for _ in 0..600 {
            let (status, bytes) = self.post_json("/auth/login", &body).await.map_err(anyhow::Error::msg)?;
            match status {
                StatusCode::OK => return Tokens::parse(&bytes),
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                other => bail!("login answered {other}: {}", String::from_utf8_lossy(&bytes)),
            }
        }
        bail!("login kept being refused for two minutes")
    }

    pub async fn create_project(&self, access_token: &str) -> anyhow::Result<String> {
        let res = self
            .client
            .post(format!("{}/api/projects", self.base))
            .bearer_auth(access_token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(json!({ "name": "bench project", "description": "S2 stand-in target" }).to_string())
            .send()
            .await?;
        let status = res.status();
        let bytes = res.bytes().await?;
        if !status.is_success() {
            bail!("create project answered {status}: {}", String::from_utf8_lossy(&bytes));
        }
        let v: Value = serde_json::from_slice(&bytes)?;
        v["id"].as_str().map(str::to_string).context("create project: no id in the answer")
    }

    /// One measured login.
    pub async fn login_once(&self, body: Arc<Value>) -> Outcome {
        match self.post_json("/auth/login", &body).await {
            Ok((status, _)) => classify(status, StatusCode::OK),
            Err(kind) => Outcome::Failed(kind),
        }
    }

    /// One measured S2 stand-in read.
    pub async fn get_project(&self, url: Arc<str>, auth: Arc<str>) -> Outcome {
        self.get_once(url, Some(auth)).await
    }

    /// One measured GET that should answer 200 (the body is read, not parsed).
    pub async fn get_once(&self, url: Arc<str>, auth: Option<Arc<str>>) -> Outcome {
        let mut req = self.client.get(&*url);
        if let Some(auth) = auth {
            req = req.header(reqwest::header::AUTHORIZATION, &*auth);
        }
        send_once(req, StatusCode::OK).await
    }

    /// One refresh. `Ok(new refresh token)`, or how it failed.
    pub async fn refresh_once(&self, refresh_token: &str) -> Result<String, Outcome> {
        match self.post_json("/auth/refresh", &json!({ "refresh_token": refresh_token })).await {
            Ok((StatusCode::OK, bytes)) => Tokens::parse(&bytes)
                .map(|t| t.refresh_token)
                .map_err(|_| Outcome::Failed("unreadable token answer".into())),
            Ok((status, _)) => Err(classify(status, StatusCode::OK)),
            Err(kind) => Err(Outcome::Failed(kind)),
        }
    }
}

/// Sends one measured request and reads its body (not parsed): `expected` is success.
pub(crate) async fn send_once(req: reqwest::RequestBuilder, expected: StatusCode) -> Outcome {
    match req.send().await {
        Ok(res) => {
            let status = res.status();
            match res.bytes().await {
                Ok(_) => classify(status, expected),
                Err(e) => Outcome::Failed(transport_kind(e)),
            }
        }
        Err(e) => Outcome::Failed(transport_kind(e)),
    }
}

fn classify(status: StatusCode, expected: StatusCode) -> Outcome {
    if status == expected {
        Outcome::Ok
    } else if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        Outcome::Refused
    } else {
        Outcome::Failed(format!("status {}", status.as_u16()))
    }
}

fn transport_kind(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect error".into()
    } else {
        "transport error".into()
    }
}

pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
}

impl Tokens {
    fn parse(bytes: &[u8]) -> anyhow::Result<Tokens> {
        let v: Value = serde_json::from_slice(bytes).context("token answer is not JSON")?;
        let field = |k: &str| v[k].as_str().map(str::to_string).with_context(|| format!("token answer has no {k}"));
        Ok(Tokens { access_token: field("access_token")?, refresh_token: field("refresh_token")? })
    }
}

// ------------------------------------------------------------------------------------------------------------
// S6

#[derive(Debug, Clone, Serialize)]
pub struct S6 {
    pub steps: Vec<Summary>,
    /// The highest achieved successful logins/s over the steps.
    pub capacity_per_s: f64,
    /// `capacity / (cores / bcrypt verify)`.
    pub capacity_over_theoretical: f64,
}

pub async fn s6(
    t: &Target,
    account: &Account,
    rates: &[f64],
    step: Duration,
    max_in_flight: usize,
    theoretical: f64,
) -> S6 {
    let body = Arc::new(json!({ "email": account.email, "password": account.password }));
    let mut steps = Vec::new();
    for &rate in rates {
        eprintln!("S6: logins at {rate}/s for {} s", step.as_secs());
        let summary = open_loop(rate, step, max_in_flight, |_| {
            let (t, body) = (t.clone(), body.clone());
            async move { t.login_once(body).await }
        })
        .await;
        eprintln!(
            "    ok {:.2}/s  p50 {:.1} ms  p99 {:.1} ms  refused {}  errors {}",
            summary.achieved_ok_per_s,
            summary.ok_latency.p50_ms,
            summary.ok_latency.p99_ms,
            summary.refused,
            summary.errors
        );
        steps.push(summary);
    }
    let capacity_per_s = steps.iter().map(|s| s.achieved_ok_per_s).fold(0.0, f64::max);
    S6 { steps, capacity_per_s, capacity_over_theoretical: capacity_per_s / theoretical }
}

// ------------------------------------------------------------------------------------------------------------
// S7

#[derive(Debug, Clone, Serialize)]
pub struct S7 {
    pub s2_stand_in: &'static str,
    pub s2_rate: f64,
    pub s2_solo: Summary,
    pub login_flood_rate: f64,
    pub s2_under_flood: Summary,
    pub login_flood: Summary,
    /// `p99 under flood / p99 solo` (target ≤ 2).
    pub p99_ratio: f64,
    pub p50_ratio: f64,
}

pub struct S7Options {
    pub s2_rate: f64,
    pub login_rate: f64,
    pub warmup: Duration,
    pub duration: Duration,
    pub max_in_flight: usize,
}

pub async fn s7(t: &Target, account: &Account, o: &S7Options) -> anyhow::Result<S7> {
    let tokens = t.login_tokens(account).await?;
    let project = t.create_project(&tokens.access_token).await?;
    let url: Arc<str> = format!("{}/api/projects/{project}", t.base).into();
    let auth: Arc<str> = format!("Bearer {}", tokens.access_token).into();
    let s2 = |d: Duration| {
        let (url, auth) = (url.clone(), auth.clone());
        open_loop(o.s2_rate, d, o.max_in_flight, move |_| {
            let (t, url, auth) = (t.clone(), url.clone(), auth.clone());
            async move { t.get_project(url, auth).await }
        })
    };
    eprintln!(
        "S7: S2 stand-in solo at {}/s: {} s warm-up, {} s measured",
        o.s2_rate,
        o.warmup.as_secs(),
        o.duration.as_secs()
    );
    let _ = s2(o.warmup).await;
    let solo = s2(o.duration).await;
    eprintln!("    p50 {:.3} ms  p99 {:.3} ms  errors {}", solo.ok_latency.p50_ms, solo.ok_latency.p99_ms, solo.errors);

    eprintln!("S7: the same under a login flood at {:.1}/s", o.login_rate);
    let body = Arc::new(json!({ "email": account.email, "password": account.password }));
    let flood = open_loop(o.login_rate, o.warmup + o.duration, o.max_in_flight, |_| {
        let (t, body) = (t.clone(), body.clone());
        async move { t.login_once(body).await }
    });
    // The S2 load starts once the flood has run for the warm-up, so it is measured in the flood's steady state.
    let measured = async {
        tokio::time::sleep(o.warmup).await;
        s2(o.duration).await
    };
    let (login_flood, under) = tokio::join!(flood, measured);
    eprintln!(
        "    p50 {:.3} ms  p99 {:.3} ms  errors {}",
        under.ok_latency.p50_ms, under.ok_latency.p99_ms, under.errors
    );
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    Ok(S7 {
        s2_stand_in: "GET /api/projects/{id}, authenticated, through the gateway (no GET /api/tasks/{id} yet)",
        s2_rate: o.s2_rate,
        p99_ratio: ratio(under.ok_latency.p99_ms, solo.ok_latency.p99_ms),
        p50_ratio: ratio(under.ok_latency.p50_ms, solo.ok_latency.p50_ms),
        s2_solo: solo,
        login_flood_rate: o.login_rate,
        s2_under_flood: under,
        login_flood,
    })
}

// ------------------------------------------------------------------------------------------------------------
// S8

#[derive(Debug, Clone, Serialize)]
pub struct S8 {
    pub sessions: usize,
    pub open: Summary,
    pub closed: Summary,
    /// Sessions whose chain broke (a refresh that did not answer 200): never reused afterwards.
    pub sessions_lost: usize,
    /// `closed-loop max / (cores / RS256 sign)`.
    pub max_over_theoretical: f64,
}

pub struct S8Options {
    pub sessions: usize,
    pub rate: f64,
    pub warmup: Duration,
    pub duration: Duration,
    pub closed_duration: Duration,
    pub concurrency: usize,
    pub max_in_flight: usize,
}

/// The sessions not being refreshed right now, each as its latest refresh token. A token is taken out while
/// its refresh is in flight and the *new* token goes back only on success, so no token is ever presented
/// twice (a second use of a rotated token would revoke the session, RFC 9700 §4.14.2).
#[derive(Clone, Default)]
struct Pool(Arc<Mutex<VecDeque<String>>>);

impl Pool {
    fn take(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop_front()
    }
    fn put(&self, token: String) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push_back(token);
    }
    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }
}

async fn refresh_from(t: Target, pool: Pool) -> Outcome {
    let Some(token) = pool.take() else {
        return Outcome::Failed("no free session".into());
    };
    match t.refresh_once(&token).await {
        Ok(next) => {
            pool.put(next);
            Outcome::Ok
        }
        // The old token's fate is unknown (it may have been rotated): the session is dropped, not retried.
        Err(outcome) => outcome,
    }
}

pub async fn s8(t: &Target, account: &Account, o: &S8Options, theoretical: f64) -> anyhow::Result<S8> {
    eprintln!("S8: logging in {} sessions", o.sessions);
    let pool = Pool::default();
    // A few logins at a time: more would only be refused by the bounded hashing queue.
    let mut made = 0;
    while made < o.sessions {
        let batch = (o.sessions - made).min(4);
        let mut logins = tokio::task::JoinSet::new();
        for _ in 0..batch {
            let (t, account) = (t.clone(), account.clone());
            logins.spawn(async move { t.login_tokens(&account).await });
        }
        while let Some(tokens) = logins.join_next().await {
            pool.put(tokens??.refresh_token);
        }
        made += batch;
    }
    let open = |d: Duration| {
        let pool = pool.clone();
        open_loop(o.rate, d, o.max_in_flight, move |_| refresh_from(t.clone(), pool.clone()))
    };
    eprintln!("S8: refresh at {}/s: {} s warm-up, {} s measured", o.rate, o.warmup.as_secs(), o.duration.as_secs());
    let _ = open(o.warmup).await;
    let open = open(o.duration).await;
    eprintln!("    p50 {:.3} ms  p99 {:.3} ms  errors {}", open.ok_latency.p50_ms, open.ok_latency.p99_ms, open.errors);
    eprintln!("S8: closed loop, {} workers, {} s", o.concurrency, o.closed_duration.as_secs());
    let p = pool.clone();
    let t2 = t.clone();
    let closed = closed_loop(o.concurrency, o.closed_duration, move |_| refresh_from(t2.clone(), p.clone())).await;
    eprintln!("    {:.0} refreshes/s  errors {}", closed.achieved_ok_per_s, closed.errors);
    Ok(S8 {
        sessions: o.sessions,
        sessions_lost: o.sessions - pool.len(),
        max_over_theoretical: closed.achieved_ok_per_s / theoretical,
        open,
        closed,
    })
}
