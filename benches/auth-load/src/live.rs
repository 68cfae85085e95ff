//! **S9**: WebSocket connections per GiB and broadcast latency (docs/PERFORMANCE.md S9), on `GET /api/ws` of a
//! real `trellis` (through its gateway), and the same broadcast over a trivial fan-out server (the floor).
//!
//! 1. **Idle memory.** The server's `VmRSS` before; `--s9-subscribers` authenticated connections (token as
//!    the subprotocol `bearer.<token>` beside `trellis`), each subscribed to one project (`{"subscribe":
//!    [id]}` → `{"type": "subscribed"}`), opened `--s9-connect-concurrency` at a time; RSS once it settles;
//!    then more up to `--s9-idle` connections, RSS again. Reported: (RSS after − RSS before) / N in KiB,
//!    connections per GiB at that rate, and the totals. The kernel's TCP buffer pages (`/proc/net/sockstat`,
//!    both ends, not in any RSS) and this generator's own RSS are reported beside them.
//! 2. **Broadcast.** Back to `--s9-subscribers` connections (the others close), then one
//!    `POST /api/projects/{id}/tasks` per second for `--s9-secs` (open loop, thread pacer) with the title
//!    `s9-<i>`. Every delivery is timed at its client: receive time − the send time of create `i` (both
//!    `Instant`s of this process), into one HdrHistogram for every delivery and one per event. Each client
//!    checks the events' `seq`: each must be its last + 1 (gaps and duplicates are counted; both must be 0),
//!    and every client must get every event.
//! 3. **Floor.** The same clients, the same messages (a delivered event with its `seq` and title replaced),
//!    the same open loop, against a trivial fan-out server: this binary re-run as `ws-floor-server`
//!    (`floor_server`) on the server's cores, tokio-tungstenite with the server's buffer settings, one task
//!    and one bounded queue per connection, messages pushed to every queue as soon as a trigger line arrives
//!    over a loopback TCP connection. What it leaves out is exactly Trellis's part: the HTTP create, the
//!    commit with its outbox row, the relay, the bus, the hub and the per-event checks. Its idle RSS per
//!    connection is the memory floor of the same buffers.
//!
//! The generator (one thread, pinned) holds every client; with 10,000 sockets to read per event, its own
//! time to get through them is in every number, the floor's included: hence the ratios.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::load::{Outcome, Percentiles, Summary, histogram, open_loop};
use crate::scenarios::{Account, Target};
use crate::server::Server;

/// What S9 needs from the command line.
pub struct S9Options {
    pub idle: usize,
    pub subscribers: usize,
    pub rate: f64,
    pub duration: Duration,
    pub connect_concurrency: usize,
    pub read_buffer: usize,
    /// The longest wait for the RSS to settle.
    pub settle: Duration,
    /// The cores of the floor server (the trellis server's).
    pub server_cpus: String,
    pub floor: bool,
}

/// Server memory with N idle, subscribed connections.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    pub connections: usize,
    /// Connections that failed to open or subscribe.
    pub failed: usize,
    pub connect_s: f64,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub kib_per_conn: f64,
    /// 1 GiB / kib_per_conn.
    pub conns_per_gib: f64,
    /// Kernel TCP buffer memory of every socket on the host (both ends), before → after, KiB.
    pub kernel_tcp_before_kib: u64,
    pub kernel_tcp_after_kib: u64,
    /// This generator's RSS growth per client connection, KiB.
    pub client_kib_per_conn: f64,
}

/// One broadcast run: N subscribers, one event per create.
#[derive(Debug, Clone, Serialize)]
pub struct Broadcast {
    pub subscribers: usize,
    /// Events sent (creates that answered 201, or floor triggers).
    pub events: u64,
    /// Deliveries expected (events × subscribers) and received.
    pub expected: u64,
    pub delivered: u64,
    pub gaps: u64,
    pub duplicates: u64,
    /// Deliveries whose title matched no sent event.
    pub unknown: u64,
    pub resyncs: u64,
    /// Connections the server closed during the run, per close code.
    pub closed_by_server: BTreeMap<String, u64>,
    /// Every delivery: receive − send of its create.
    pub latency: Percentiles,
    /// Per event (across its deliveries): the median and the worst of the events' p50, p99 and max.
    pub per_event_p50_median_ms: f64,
    pub per_event_p99_median_ms: f64,
    pub per_event_p99_worst_ms: f64,
    pub per_event_max_median_ms: f64,
    pub per_event_max_worst_ms: f64,
    pub per_event: Vec<Percentiles>,
    /// The creates themselves (HTTP, 201), or the floor's trigger writes.
    pub sends: Summary,
    pub rss_during_kib: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct S9 {
    pub what: &'static str,
    pub client_read_buffer: usize,
    pub server_fd_limit: String,
    pub client_fd_limit: String,
    pub subscribers_memory: Memory,
    pub idle_memory: Memory,
    pub broadcast: Broadcast,
    pub floor_memory: Option<Memory>,
    pub floor: Option<Broadcast>,
    pub p50_over_floor: Option<f64>,
    pub p99_over_floor: Option<f64>,
    pub max_over_floor: Option<f64>,
}

// ------------------------------------------------------------------------------------------------------------
// Measuring

/// The "Max open files" line of a process (soft, hard).
fn fd_limit(pid: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .map(|l| l.split_whitespace().skip(3).take(2).collect::<Vec<_>>().join(" / "))
        })
        .unwrap_or_default()
}

/// Raises this process's soft fd limit to its hard one (`prlimit`, util-linux); children inherit it.
pub fn raise_fd_limit() {
    let pid = std::process::id().to_string();
    let hard = fd_limit(&pid).split(" / ").nth(1).unwrap_or_default().to_string();
    if !hard.is_empty() {
        let _ = Command::new("prlimit").args(["--pid", &pid, &format!("--nofile={hard}:{hard}")]).status();
    }
}

fn soft_fd_limit() -> usize {
    fd_limit("self").split(" / ").next().and_then(|s| s.parse().ok()).unwrap_or(usize::MAX)
}

fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Kernel memory of TCP buffers, KiB (`/proc/net/sockstat`, `TCP: … mem <pages>`).
fn kernel_tcp_kib() -> u64 {
    let text = std::fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
    let pages = text
        .lines()
        .find(|l| l.starts_with("TCP:"))
        .and_then(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.iter().position(|x| *x == "mem").and_then(|i| w.get(i + 1)?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    pages * 4
}

/// Waits until the RSS of `pid` holds still (within 0.5 % over 5 s) or `limit` passed; the last value.
async fn settled_rss(pid: u32, limit: Duration) -> u64 {
    let start = Instant::now();
    let mut window: Vec<u64> = Vec::new();
    loop {
        let now = rss_of(pid).unwrap_or(0);
        window.push(now);
        if window.len() > 5 {
            window.remove(0);
        }
        let (lo, hi) = (window.iter().min().copied().unwrap_or(0), window.iter().max().copied().unwrap_or(0));
        if (window.len() == 5 && hi - lo <= hi / 200) || start.elapsed() >= limit {
            return now;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// What every client records, shared (one thread: the lock is never contended).
struct Shared {
    /// Send time of event i.
    sends: Mutex<Vec<Option<Instant>>>,
    stats: Mutex<Stats>,
    /// The first event text a client received (the floor sends the same shape).
    sample: Mutex<Option<String>>,
}

struct Stats {
    all: Histogram<u64>,
    per_event: Vec<Histogram<u64>>,
    delivered: u64,
    gaps: u64,
    duplicates: u64,
    unknown: u64,
    resyncs: u64,
    closed: BTreeMap<String, u64>,
}

impl Stats {
    fn new(events: usize) -> Self {
        Self {
            all: histogram(),
            per_event: (0..events).map(|_| histogram()).collect(),
            delivered: 0,
            gaps: 0,
            duplicates: 0,
            unknown: 0,
            resyncs: 0,
            closed: BTreeMap::new(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Deserialize)]
struct Incoming {
    #[serde(rename = "type")]
    kind: String,
    seq: Option<i64>,
    data: Option<IncomingData>,
}

#[derive(Deserialize)]
struct IncomingData {
    task: Option<IncomingTask>,
}

#[derive(Deserialize)]
struct IncomingTask {
    title: String,
}

/// Where the clients connect and what they subscribe to.
#[derive(Clone)]
struct Endpoint {
    addr: SocketAddr,
    url: String,
    token: String,
    project: String,
    config: WebSocketConfig,
}

/// The client set: `keep` closes every client whose index is ≥ it.
struct Clients {
    keep: watch::Sender<usize>,
    tasks: tokio::task::JoinSet<()>,
    open: usize,
}

/// Opens and subscribes clients `from..to`, `concurrency` at a time. Ok(failures).
async fn open_clients(
    clients: &mut Clients,
    ep: &Endpoint,
    shared: &Arc<Shared>,
    from: usize,
    to: usize,
    concurrency: usize,
) -> usize {
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<bool>();
    for k in from..to {
        let Ok(permit) = sem.clone().acquire_owned().await else { break };
        let (ep, shared, ready, keep) = (ep.clone(), shared.clone(), ready_tx.clone(), clients.keep.subscribe());
        clients.tasks.spawn(async move {
            let opened = connect(&ep).await;
            drop(permit);
            match opened {
                Ok((ws, seq)) => {
                    let _ = ready.send(true);
                    run_client(k, ws, seq, shared, keep).await;
                }
                Err(e) => {
                    eprintln!("    client {k}: {e:#}");
                    let _ = ready.send(false);
                }
            }
        });
    }
    drop(ready_tx);
    let mut failed = 0;
    for _ in from..to {
        match ready_rx.recv().await {
            Some(true) => clients.open += 1,
            Some(false) | None => failed += 1,
        }
    }
    failed
}

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

/// Connects, authenticates with the subprotocol and subscribes; the `seq` the server answered.
async fn connect(ep: &Endpoint) -> anyhow::Result<(Ws, i64)> {
    let stream = TcpStream::connect(ep.addr).await.context("connect")?;
    stream.set_nodelay(true)?;
    let mut req = ep.url.as_str().into_client_request()?;
    req.headers_mut()
        .insert("sec-websocket-protocol", HeaderValue::from_str(&format!("trellis, bearer.{}", ep.token))?);
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(req, stream, Some(ep.config)).await.context("handshake")?;
    ws.send(Message::text(json!({ "subscribe": [ep.project] }).to_string())).await?;
    let wait = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(m) = ws.next().await {
            if let Message::Text(t) = m? {
                let m: Incoming = serde_json::from_str(t.as_str())?;
                match m.kind.as_str() {
                    "subscribed" => return Ok(m.seq.unwrap_or(0)),
                    "error" => bail!("subscribe refused: {t}"),
                    _ => {}
                }
            }
        }
        bail!("closed before subscribed")
    });
    let seq = wait.await.context("no `subscribed` within 60 s")??;
    Ok((ws, seq))
}

/// Reads events until told to close (or the server closes), checking each one's `seq` and timing it.
async fn run_client(k: usize, mut ws: Ws, mut last: i64, shared: Arc<Shared>, mut keep: watch::Receiver<usize>) {
    loop {
        if *keep.borrow_and_update() <= k {
            let _ = tokio::time::timeout(Duration::from_secs(5), ws.close(None)).await;
            return;
        }
        let next = tokio::select! {
            changed = keep.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
            m = ws.next() => m,
        };
        let received = Instant::now();
        let text = match next {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(frame))) => {
                let code = frame.map_or_else(|| "none".to_string(), |f| format!("{} {}", u16::from(f.code), f.reason));
                *lock(&shared.stats).closed.entry(code).or_default() += 1;
                return;
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                *lock(&shared.stats).closed.entry(format!("error: {e}")).or_default() += 1;
                return;
            }
            None => {
                *lock(&shared.stats).closed.entry("eof".into()).or_default() += 1;
                return;
            }
        };
        let Ok(m) = serde_json::from_str::<Incoming>(text.as_str()) else { continue };
        if m.kind == "resync" {
            lock(&shared.stats).resyncs += 1;
            last = m.seq.unwrap_or(last);
            continue;
        }
        let (Some(seq), Some(data)) = (m.seq, m.data) else { continue };
        let index = data.task.and_then(|t| t.title.strip_prefix("s9-").and_then(|i| i.parse::<usize>().ok()));
        let sent = index.and_then(|i| lock(&shared.sends).get(i).copied().flatten());
        {
            let mut s = lock(&shared.stats);
            if seq <= last {
                s.duplicates += 1;
                continue;
            }
            s.gaps += u64::try_from(seq - last - 1).unwrap_or(0);
            last = seq;
            match (index, sent) {
                (Some(i), Some(sent)) => {
                    let us = u64::try_from(received.saturating_duration_since(sent).as_micros()).unwrap_or(u64::MAX);
                    s.all.saturating_record(us.max(1));
                    if let Some(h) = s.per_event.get_mut(i) {
                        h.saturating_record(us.max(1));
                    }
                    s.delivered += 1;
                }
                _ => s.unknown += 1,
            }
        }
        if k == 0 {
            lock(&shared.sample).get_or_insert_with(|| text.as_str().to_string());
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs one open loop of `events` sends (`send(i)` records its own send time) and waits up to 15 s for
/// the deliveries; the clients' results.
async fn broadcast<F, Fut>(
    shared: &Arc<Shared>,
    subscribers: usize,
    rate: f64,
    duration: Duration,
    rss_pid: u32,
    send: F,
) -> Broadcast
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let events = (rate * duration.as_secs_f64()).round().max(1.0) as usize;
    *lock(&shared.sends) = vec![None; events];
    *lock(&shared.stats) = Stats::new(events);
    let sends = open_loop(rate, duration, 4, send).await;
    let sent = sends.ok;
    let expected = sent * subscribers as u64;
    let deadline = Instant::now() + Duration::from_secs(15);
    while lock(&shared.stats).delivered < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rss_during_kib = rss_of(rss_pid);
    let s = lock(&shared.stats);
    let per_event: Vec<Percentiles> = s.per_event.iter().map(Percentiles::of).collect();
    let used: Vec<&Percentiles> = per_event.iter().filter(|p| p.count > 0).collect();
    let worst = |f: fn(&Percentiles) -> f64| used.iter().map(|p| f(p)).fold(0.0, f64::max);
    Broadcast {
        subscribers,
        events: sent,
        expected,
        delivered: s.delivered,
        gaps: s.gaps,
        duplicates: s.duplicates,
        unknown: s.unknown,
        resyncs: s.resyncs,
        closed_by_server: s.closed.clone(),
        latency: Percentiles::of(&s.all),
        per_event_p50_median_ms: median(used.iter().map(|p| p.p50_ms).collect()),
        per_event_p99_median_ms: median(used.iter().map(|p| p.p99_ms).collect()),
        per_event_p99_worst_ms: worst(|p| p.p99_ms),
        per_event_max_median_ms: median(used.iter().map(|p| p.max_ms).collect()),
        per_event_max_worst_ms: worst(|p| p.max_ms),
        per_event,
        sends,
        rss_during_kib,
    }
}

/// Opens connections `from..to` and measures what they cost the process `pid`.
async fn grow(
    clients: &mut Clients,
    ep: &Endpoint,
    shared: &Arc<Shared>,
    pid: u32,
    (from, to): (usize, usize),
    o: &S9Options,
) -> Memory {
    let rss_before_kib = settled_rss(pid, o.settle).await;
    let kernel_tcp_before_kib = kernel_tcp_kib();
    let me = std::process::id();
    let client_before = rss_of(me).unwrap_or(0);
    let start = Instant::now();
    let failed = open_clients(clients, ep, shared, from, to, o.connect_concurrency).await;
    let connect_s = start.elapsed().as_secs_f64();
    let rss_after_kib = settled_rss(pid, o.settle).await;
    let n = (to - from - failed).max(1) as f64;
    let kib_per_conn = rss_after_kib.saturating_sub(rss_before_kib) as f64 / n;
    Memory {
        connections: clients.open,
        failed,
        connect_s,
        rss_before_kib,
        rss_after_kib,
        kib_per_conn,
        conns_per_gib: if kib_per_conn > 0.0 { 1024.0 * 1024.0 / kib_per_conn } else { f64::INFINITY },
        kernel_tcp_before_kib,
        kernel_tcp_after_kib: kernel_tcp_kib(),
        client_kib_per_conn: rss_of(me).unwrap_or(0).saturating_sub(client_before) as f64 / n,
    }
}

fn log_memory(label: &str, m: &Memory) {
    eprintln!(
        "    {label}: {} conns ({} failed) in {:.1} s; RSS {:.1} → {:.1} MiB = {:.2} KiB/conn ({:.0} conns/GiB); kernel TCP {:.1} → {:.1} MiB; client {:.2} KiB/conn",
        m.connections,
        m.failed,
        m.connect_s,
        m.rss_before_kib as f64 / 1024.0,
        m.rss_after_kib as f64 / 1024.0,
        m.kib_per_conn,
        m.conns_per_gib,
        m.kernel_tcp_before_kib as f64 / 1024.0,
        m.kernel_tcp_after_kib as f64 / 1024.0,
        m.client_kib_per_conn
    );
}

fn log_broadcast(label: &str, b: &Broadcast) {
    let l = &b.latency;
    eprintln!(
        "    {label}: {} events × {} subscribers: {}/{} delivered, gaps {}, duplicates {}, unknown {}, resyncs {}, closed {:?}; p50 {:.2} / p99 {:.2} / p99.9 {:.2} / max {:.2} ms",
        b.events,
        b.subscribers,
        b.delivered,
        b.expected,
        b.gaps,
        b.duplicates,
        b.unknown,
        b.resyncs,
        b.closed_by_server,
        l.p50_ms,
        l.p99_ms,
        l.p999_ms,
        l.max_ms
    );
}

/// Closes every client with index ≥ `keep` and waits for them to be gone.
async fn shrink(clients: &mut Clients, keep: usize) {
    let _ = clients.keep.send(keep);
    if keep == 0 {
        while clients.tasks.join_next().await.is_some() {}
        clients.open = 0;
    } else {
        // Their tasks end on their own; give the closes a moment to reach the server.
        clients.open = clients.open.min(keep);
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

pub async fn s9(t: &Target, account: &Account, server: &Server, o: &S9Options) -> anyhow::Result<S9> {
    let needed = o.idle.max(o.subscribers) + 200;
    let soft = soft_fd_limit();
    anyhow::ensure!(soft >= needed, "S9 needs {needed} file descriptors here, the limit is {soft}: `ulimit -n 20000`");
    let token = t.login_tokens(account).await?.access_token;
    let auth = format!("Bearer {token}");
    let project = crate::projects::new_project(t, &auth, "S9 broadcast").await?;
    let addr: SocketAddr = t.base.trim_start_matches("http://").parse().context("server address")?;
    let config = WebSocketConfig::default().read_buffer_size(o.read_buffer).write_buffer_size(0);
    let ep = Endpoint { addr, url: format!("ws://{addr}/api/ws"), token, project: project.clone(), config };
    let shared =
        Arc::new(Shared { sends: Mutex::new(Vec::new()), stats: Mutex::new(Stats::new(0)), sample: Mutex::new(None) });
    let (keep, _) = watch::channel(usize::MAX);
    let mut clients = Clients { keep, tasks: tokio::task::JoinSet::new(), open: 0 };

    eprintln!("S9: {} subscribed WebSocket connections, then up to {}", o.subscribers, o.idle);
    let subscribers_memory = grow(&mut clients, &ep, &shared, server.pid, (0, o.subscribers), o).await;
    log_memory("subscribers", &subscribers_memory);
    let mut idle_memory = grow(&mut clients, &ep, &shared, server.pid, (o.subscribers, o.idle), o).await;
    // Per connection over all of them, from the same starting point.
    let n = (o.idle - subscribers_memory.failed - idle_memory.failed).max(1) as f64;
    idle_memory.rss_before_kib = subscribers_memory.rss_before_kib;
    idle_memory.kernel_tcp_before_kib = subscribers_memory.kernel_tcp_before_kib;
    idle_memory.kib_per_conn = idle_memory.rss_after_kib.saturating_sub(idle_memory.rss_before_kib) as f64 / n;
    idle_memory.conns_per_gib = 1024.0 * 1024.0 / idle_memory.kib_per_conn.max(1e-9);
    idle_memory.client_kib_per_conn = (subscribers_memory.client_kib_per_conn * (o.subscribers as f64)
        + idle_memory.client_kib_per_conn * (o.idle - o.subscribers) as f64)
        / n;
    log_memory("idle", &idle_memory);
    let server_fd_limit = fd_limit(&server.pid.to_string());
    shrink(&mut clients, o.subscribers).await;

    eprintln!("S9 broadcast: {:.1} creates/s for {} s to {} subscribers", o.rate, o.duration.as_secs(), clients.open);
    let url: Arc<str> = format!("{}/api/projects/{project}/tasks", t.base).into();
    let auth: Arc<str> = auth.into();
    let send = |i: u64| {
        let (t, url, auth, shared) = (t.clone(), url.clone(), auth.clone(), shared.clone());
        async move {
            let body = json!({ "title": format!("s9-{i}") }).to_string();
            if let Some(slot) = lock(&shared.sends).get_mut(i as usize) {
                *slot = Some(Instant::now());
            }
            crate::projects::post_once(t, url, auth, body).await
        }
    };
    let subscribers = clients.open;
    let b = broadcast(&shared, subscribers, o.rate, o.duration, server.pid, send).await;
    log_broadcast("trellis", &b);
    shrink(&mut clients, 0).await;

    let (mut floor_memory, mut floor) = (None, None);
    if o.floor {
        let sample = lock(&shared.sample).clone();
        let (m, f) = floor_run(o, subscribers, &shared, sample).await?;
        log_memory("floor idle", &m);
        log_broadcast("floor", &f);
        floor_memory = Some(m);
        floor = Some(f);
    }
    let ratio = |a: f64, fl: Option<f64>| fl.filter(|x| *x > 0.0).map(|x| a / x);
    Ok(S9 {
        what: "GET /api/ws through the gateway, token as the subprotocol, one project subscribed per connection; events from POST /api/projects/{id}/tasks",
        client_read_buffer: o.read_buffer,
        server_fd_limit,
        client_fd_limit: fd_limit("self"),
        p50_over_floor: ratio(b.latency.p50_ms, floor.as_ref().map(|f| f.latency.p50_ms)),
        p99_over_floor: ratio(b.latency.p99_ms, floor.as_ref().map(|f| f.latency.p99_ms)),
        max_over_floor: ratio(b.latency.max_ms, floor.as_ref().map(|f| f.latency.max_ms)),
        subscribers_memory,
        idle_memory,
        broadcast: b,
        floor_memory,
        floor,
    })
}

// ------------------------------------------------------------------------------------------------------------
// The floor: a trivial fan-out server in a process of its own

/// The floor server process; killed when dropped.
struct FloorProcess(Child);

impl Drop for FloorProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn floor_run(
    o: &S9Options,
    subscribers: usize,
    shared: &Arc<Shared>,
    sample: Option<String>,
) -> anyhow::Result<(Memory, Broadcast)> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new("taskset")
        .args(["-c", &o.server_cpus])
        .arg(exe)
        .arg(FLOOR_SERVER_ARG)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start the floor server")?;
    let stdout = child.stdout.take().context("floor server stdout")?;
    let process = FloorProcess(child);
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).map(|_| line)
    })
    .await??;
    let ports: Vec<u16> = line.split_whitespace().skip(1).filter_map(|p| p.parse().ok()).collect();
    let &[ws_port, trigger_port] = ports.as_slice() else { bail!("floor server said {line:?}") };
    let addr = SocketAddr::from(([127, 0, 0, 1], ws_port));
    let config = WebSocketConfig::default().read_buffer_size(o.read_buffer).write_buffer_size(0);
    let ep = Endpoint {
        addr,
        url: format!("ws://{addr}/api/ws"),
        token: "floor".into(),
        project: "00000000-0000-0000-0000-000000000000".into(),
        config,
    };
    let (keep, _) = watch::channel(usize::MAX);
    let mut clients = Clients { keep, tasks: tokio::task::JoinSet::new(), open: 0 };
    let memory = grow(&mut clients, &ep, shared, process.0.id(), (0, subscribers), o).await;

    let template: Value = sample.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_else(|| {
        json!({"seq": 0, "type": "task.created", "project_id": ep.project, "data": {"project_id": ep.project, "task": {"title": ""}}})
    });
    let trigger = TcpStream::connect(("127.0.0.1", trigger_port)).await?;
    trigger.set_nodelay(true)?;
    let (line_tx, mut line_rx) = mpsc::unbounded_channel::<String>();
    let writer = tokio::spawn(async move {
        let mut trigger = trigger;
        while let Some(l) = line_rx.recv().await {
            if trigger.write_all(l.as_bytes()).await.is_err() {
                return;
            }
        }
    });
    let send = |i: u64| {
        let mut m = template.clone();
        m["seq"] = json!(i + 1);
        m["data"]["task"]["title"] = json!(format!("s9-{i}"));
        let line = format!("{m}\n");
        let (tx, shared) = (line_tx.clone(), shared.clone());
        async move {
            if let Some(slot) = lock(&shared.sends).get_mut(i as usize) {
                *slot = Some(Instant::now());
            }
            if tx.send(line).is_ok() { Outcome::Ok } else { Outcome::Failed("trigger".into()) }
        }
    };
    let b = broadcast(shared, clients.open, o.rate, o.duration, process.0.id(), send).await;
    drop(line_tx);
    let _ = writer.await;
    shrink(&mut clients, 0).await;
    drop(process);
    Ok((memory, b))
}

/// The hidden first argument that makes this binary the floor server.
pub const FLOOR_SERVER_ARG: &str = "ws-floor-server";

/// Server settings as `trellis`'s `GET /api/ws` (crates/worker/src/live.rs).
const FLOOR_READ_BUFFER: usize = 2 * 1024;
const FLOOR_MAX_WRITE_BUFFER: usize = 256 * 1024;
const FLOOR_MAX_MESSAGE: usize = 16 * 1024;
const FLOOR_QUEUE: usize = 256;

type Registry = Arc<std::sync::RwLock<BTreeMap<u64, mpsc::Sender<tokio_tungstenite::tungstenite::Utf8Bytes>>>>;

/// The floor server: WebSocket connections on one port (the subprotocol `trellis` is selected, any
/// subscription is answered `subscribed` with seq 0, pings every 30 s), trigger lines on another: each
/// line is pushed, as is, to every connection's queue. Prints `ready <ws port> <trigger port>`.
pub fn floor_server() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let ws = TcpListener::bind("127.0.0.1:0").await?;
        let trigger = TcpListener::bind("127.0.0.1:0").await?;
        #[allow(clippy::print_stdout)]
        {
            println!("ready {} {}", ws.local_addr()?.port(), trigger.local_addr()?.port());
        }
        let registry: Registry = Arc::default();
        let r = registry.clone();
        tokio::spawn(async move {
            let mut next = 0u64;
            while let Ok((stream, _)) = ws.accept().await {
                next += 1;
                tokio::spawn(floor_conn(next, stream, r.clone()));
            }
        });
        while let Ok((stream, _)) = trigger.accept().await {
            let mut lines = tokio::io::BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let text = tokio_tungstenite::tungstenite::Utf8Bytes::from(line);
                let conns = registry.read().unwrap_or_else(|e| e.into_inner());
                for tx in conns.values() {
                    let _ = tx.try_send(text.clone());
                }
            }
        }
        Ok(())
    })
}

// The handshake callback's error type is tungstenite's (`ErrorResponse`), large or not.
#[allow(clippy::result_large_err)]
async fn floor_conn(id: u64, stream: TcpStream, registry: Registry) {
    use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
    let _ = stream.set_nodelay(true);
    let config = WebSocketConfig::default()
        .read_buffer_size(FLOOR_READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(FLOOR_MAX_WRITE_BUFFER)
        .max_message_size(Some(FLOOR_MAX_MESSAGE))
        .max_frame_size(Some(FLOOR_MAX_MESSAGE));
    let select = |_: &Request, mut res: Response| {
        res.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("trellis"));
        Ok::<_, ErrorResponse>(res)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async_with_config(stream, select, Some(config)).await else {
        return;
    };
    let (tx, mut rx) = mpsc::channel(FLOOR_QUEUE);
    registry.write().unwrap_or_else(|e| e.into_inner()).insert(id, tx);
    let beat = Duration::from_secs(30);
    let mut heartbeat = tokio::time::interval_at(Instant::now() + beat, beat);
    loop {
        let sent = tokio::select! {
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) if t.as_str().contains("subscribe") => {
                    let project = serde_json::from_str::<Value>(t.as_str()).ok().and_then(|v| v["subscribe"].get(0).cloned());
                    ws.send(Message::text(json!({"type": "subscribed", "project_id": project, "seq": 0}).to_string())).await
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => Ok(()),
            },
            out = rx.recv() => match out {
                Some(text) => ws.send(Message::Text(text)).await,
                None => break,
            },
            _ = heartbeat.tick() => ws.send(Message::Ping(Default::default())).await,
        };
        if sent.is_err() {
            break;
        }
    }
    registry.write().unwrap_or_else(|e| e.into_inner()).remove(&id);
}

// ------------------------------------------------------------------------------------------------------------
// The human report

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn memory_row(label: &str, m: &Memory) -> String {
    format!(
        "| {label} | {} | {} | {:.1} | {:.1} → {:.1} | **{:.2}** | {:.0} | {:.1} → {:.1} | {:.2} |",
        m.connections,
        m.failed,
        m.connect_s,
        mib(m.rss_before_kib),
        mib(m.rss_after_kib),
        m.kib_per_conn,
        m.conns_per_gib,
        mib(m.kernel_tcp_before_kib),
        mib(m.kernel_tcp_after_kib),
        m.client_kib_per_conn
    )
}

fn broadcast_row(label: &str, b: &Broadcast) -> String {
    let l = &b.latency;
    format!(
        "| {label} | {} × {} | {} / {} | {} | {} | {} | {:.2} | {:.2} | **{:.2}** | {:.2} | {:.2} | {:.2} / {:.2} | {:.2} / {:.2} |",
        b.events,
        b.subscribers,
        b.delivered,
        b.expected,
        b.gaps,
        b.duplicates,
        b.closed_by_server.values().sum::<u64>(),
        l.p50_ms,
        l.p90_ms,
        l.p99_ms,
        l.p999_ms,
        l.max_ms,
        b.per_event_p99_median_ms,
        b.per_event_p99_worst_ms,
        b.per_event_max_median_ms,
        b.per_event_max_worst_ms
    )
}

#[allow(clippy::print_stdout)]
pub fn print(s: &S9) {
    println!();
    println!("## S9: WebSocket connections per GiB, broadcast latency");
    println!();
    println!(
        "{}. Clients: tokio-tungstenite 0.29, read buffer {} B, write buffer 0, all in this generator (one thread). Open-file limits (soft / hard): server {}, generator {}.",
        s.what, s.client_read_buffer, s.server_fd_limit, s.client_fd_limit
    );
    println!();
    println!(
        "| connections | open | failed | connect s | server RSS MiB | **KiB/conn** | conns/GiB | kernel TCP buffers MiB (both ends) | generator KiB/conn |"
    );
    println!("|---|---:|---:|---:|---|---:|---:|---|---:|");
    println!("{}", memory_row("trellis: first subscribers", &s.subscribers_memory));
    println!("{}", memory_row("trellis: all idle (from the same start)", &s.idle_memory));
    if let Some(m) = &s.floor_memory {
        println!("{}", memory_row("floor: trivial fan-out server", m));
    }
    println!();
    println!(
        "Trellis RSS with {} subscribers: **{:.1} MiB** (target ≤ 100 MiB); with {} idle connections: {:.1} MiB.",
        s.subscribers_memory.connections,
        mib(s.subscribers_memory.rss_after_kib),
        s.idle_memory.connections,
        mib(s.idle_memory.rss_after_kib)
    );
    println!();
    println!(
        "| broadcast | events × subscribers | delivered / expected | gaps | duplicates | closed by server | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | per-event p99: median / worst ms | per-event max: median / worst ms |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|");
    println!("{}", broadcast_row("trellis (create → every client)", &s.broadcast));
    if let Some(f) = &s.floor {
        println!("{}", broadcast_row("floor (trigger → every client)", f));
    }
    let c = &s.broadcast.sends;
    println!();
    println!(
        "The creates themselves (`POST /api/projects/{{id}}/tasks`, open loop at {:.1}/s): {} ok, {} errors; p50 {:.2} / p99 {:.2} / max {:.2} ms. Server RSS at the end of the broadcast: {}.",
        c.offered_rate.unwrap_or(0.0),
        c.ok,
        c.errors,
        c.ok_latency.p50_ms,
        c.ok_latency.p99_ms,
        c.ok_latency.max_ms,
        s.broadcast.rss_during_kib.map_or_else(|| "–".into(), |k| format!("{:.1} MiB", mib(k)))
    );
    if !s.broadcast.closed_by_server.is_empty() {
        println!();
        println!("Closed by the server: {:?}.", s.broadcast.closed_by_server);
    }
    if let (Some(p50), Some(p99), Some(max)) = (s.p50_over_floor, s.p99_over_floor, s.max_over_floor) {
        println!();
        println!("Over the floor of the same run: p50 ×{p50:.2}, **p99 ×{p99:.2}**, max ×{max:.2}.");
    }
}
