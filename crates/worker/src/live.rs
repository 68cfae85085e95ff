//! Live updates (docs/API.md "Live updates", `GET /api/ws`): the hub that fans events out to the
//! WebSocket connections of this process, and the routes that accept them.
//!
//! Every worker process takes every event from the bus (`EventBus::subscribe_broadcast`, so
//! clients may connect to any instance) and hands it to the connections subscribed to its
//! project: one pre-serialized message, a `try_send` into each connection's bounded queue. A
//! connection whose queue is full is too slow; it is told so and closed (it reconnects with
//! `since` and loses nothing), so a slow client never makes the process hold more for it.
//! Each connection (`socket`) checks every event before sending it (a member removed from a
//! project gets no more of its events) and numbers: events carry their project's sequence number
//! (`Event::seq`, given by the outbox), a duplicate is dropped, and a gap is filled from the
//! outbox (`platform::outbox::stream_events`), which is also where `since` replays come from.
//!
//! Events carry ids, kinds and the names of changed fields, never user-written text
//! (ARCHITECTURE.md "What events may carry"), so nothing sent or replayed here shows a member
//! what they could not read through the REST API now: not a deleted comment, not the earlier words
//! of an edited one, not what an erased user wrote. Clients refetch what an event names.

pub(crate) mod socket;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use api::projects::ProjectAccess;
use axum::Router;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use platform::bus::{Event, EventBus};
use platform::db::Database;
use platform::http::{ClientIp, Problem};
use platform::identity::TokenVerifier;
use tokio::sync::{Notify, mpsc, watch};
use uuid::Uuid;

/// The subprotocol a client offers (with `bearer.<token>`) and the server selects.
pub const PROTOCOL: &str = "trellis";

/// Limits and timings of live connections.
#[derive(Debug, Clone)]
pub struct LiveSettings {
    /// A ping every so often; a peer silent for two of them is gone.
    pub heartbeat: Duration,
    /// Time to send the token when it did not come with the upgrade.
    pub auth_timeout: Duration,
    /// Events waiting for one connection before it counts as too slow.
    pub queue: usize,
    /// The most events a `since` replays; further behind, the client gets `resync`.
    pub replay_limit: i64,
    /// How long one message may take to leave before the connection counts as too slow.
    pub send_timeout: Duration,
    /// Connections one user may hold open on this process (`http.websockets_per_user`); one
    /// more is closed with 1013 once its token is known.
    pub max_per_user: usize,
    /// Connections one client address (IPv6: /64) may hold open on this process
    /// (`http.websockets_per_address`); one more is refused with 429 before the upgrade.
    pub max_per_address: usize,
}

impl Default for LiveSettings {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(30),
            auth_timeout: Duration::from_secs(10),
            queue: 256,
            replay_limit: 1000,
            send_timeout: Duration::from_secs(10),
            max_per_user: 20,
            max_per_address: 200,
        }
    }
}

/// The largest message a client may send (subscriptions and tokens are small).
const MAX_CLIENT_MESSAGE: usize = 16 * 1024;
/// tungstenite's read buffer, allocated per connection (its default is 128 KiB; docs/PERFORMANCE.md S9).
const READ_BUFFER: usize = 2 * 1024;
/// Bytes a connection may hold unsent before writes fail (backpressure).
const MAX_WRITE_BUFFER: usize = 256 * 1024;

/// One event as every subscriber receives it: the event, for the checks, and its message.
pub(crate) struct Outgoing {
    pub event: Event,
    pub text: axum::extract::ws::Utf8Bytes,
}

/// The hub's handle on one connection.
pub(crate) struct Conn {
    tx: mpsc::Sender<Arc<Outgoing>>,
    /// Set when the queue overflowed; the connection then closes.
    lagged: AtomicBool,
    kick: Notify,
    user: Uuid,
}

impl Conn {
    fn offer(&self, out: &Arc<Outgoing>) {
        if self.tx.try_send(out.clone()).is_err() && !self.lagged.swap(true, Ordering::Relaxed) {
            metrics::counter!("trellis_live_slow_disconnects_total").increment(1);
            self.kick.notify_one();
        }
    }
}

type Registry = HashMap<Uuid, HashMap<u64, Arc<Conn>>>;

struct Inner {
    db: Database,
    access: Arc<dyn ProjectAccess>,
    verifier: Arc<TokenVerifier>,
    settings: LiveSettings,
    /// Connections per project they subscribed to.
    projects: RwLock<Registry>,
    /// Connections per user, for events about the user themself (session or role changes).
    users: RwLock<Registry>,
    next_id: AtomicU64,
    /// Open connections per client address key, counted from the upgrade to the socket's end.
    addresses: Arc<AddressCounts>,
    /// Bumped when the bus subscription was lost and made again: every connection then checks
    /// its projects for events it may have missed meanwhile.
    epoch: watch::Sender<u64>,
}

/// The live-update hub of this process.
#[derive(Clone)]
pub struct LiveHub(Arc<Inner>);

/// Event types about a user that make their connections check their session at once.
const USER_EVENTS: &[&str] = &[
    "auth.logout",
    "auth.logout_all",
    "auth.session_revoked",
    "auth.sessions_ended",
    "auth.password_changed",
    "auth.password_reset",
    "auth.refresh_reuse_detected",
    "auth.user_erased",
    "users.erasure_started",
    "users.role_changed",
    "users.status_changed",
];

impl LiveHub {
    pub fn new(
        db: Database,
        access: Arc<dyn ProjectAccess>,
        verifier: Arc<TokenVerifier>,
        settings: LiveSettings,
    ) -> Self {
        Self(Arc::new(Inner {
            db,
            access,
            verifier,
            settings,
            projects: RwLock::default(),
            users: RwLock::default(),
            next_id: AtomicU64::new(1),
            addresses: Arc::default(),
            epoch: watch::Sender::new(0),
        }))
    }

    /// Hands `event` to the connections it concerns; never waits for any of them.
    pub fn dispatch(&self, event: Event) {
        if event.data.get("project_id").is_some() {
            let project = event.stream();
            let projects = self.0.projects.read().unwrap_or_else(|e| e.into_inner());
            let Some(conns) = projects.get(&project).filter(|c| !c.is_empty()) else { return };
            let out = Arc::new(Outgoing { text: socket::event_message(&event), event });
            for conn in conns.values() {
                conn.offer(&out);
            }
            metrics::counter!("trellis_live_events_total").increment(1);
        } else if USER_EVENTS.contains(&event.event_type.as_str()) {
            let users = self.0.users.read().unwrap_or_else(|e| e.into_inner());
            let Some(conns) = users.get(&event.aggregate_id) else { return };
            let out = Arc::new(Outgoing { text: axum::extract::ws::Utf8Bytes::from_static(""), event });
            for conn in conns.values() {
                conn.offer(&out);
            }
        }
    }

    /// Consumes the bus until `shutdown` fires: every event goes to `dispatch`. After losing the
    /// subscription it subscribes again and has every connection catch up from the outbox.
    pub async fn run(self, bus: Arc<dyn EventBus>, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(200);
        let mut first = true;
        loop {
            let mut sub = tokio::select! {
                _ = shutdown.changed() => return,
                s = bus.subscribe_broadcast() => match s {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "live updates cannot subscribe to the bus; retrying");
                        tokio::select! { _ = shutdown.changed() => return, _ = tokio::time::sleep(backoff) => {} }
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                        continue;
                    }
                },
            };
            backoff = Duration::from_millis(200);
            if !first {
                self.0.epoch.send_modify(|e| *e += 1);
            }
            first = false;
            loop {
                let next = tokio::select! { _ = shutdown.changed() => return, n = sub.next() => n };
                match next {
                    None => break,
                    Some(Err(e)) => tracing::warn!(error = %e, "bad live delivery"),
                    Some(Ok(delivery)) => {
                        let event = delivery.event.clone();
                        let _ = delivery.ack().await;
                        self.dispatch(event);
                    }
                }
            }
        }
    }

    /// How many connections this process holds.
    pub fn connections(&self) -> usize {
        let users = self.0.users.read().unwrap_or_else(|e| e.into_inner());
        users.values().map(HashMap::len).sum()
    }

    /// Registers a connection of `user`; `None` when the user already has `max_per_user`.
    fn register(&self, user: Uuid) -> Option<(u64, Arc<Conn>, mpsc::Receiver<Arc<Outgoing>>)> {
        let mut users = self.0.users.write().unwrap_or_else(|e| e.into_inner());
        if users.get(&user).is_some_and(|c| c.len() >= self.0.settings.max_per_user) {
            metrics::counter!("trellis_live_refused_total", "limit" => "user").increment(1);
            return None;
        }
        let id = self.0.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.0.settings.queue);
        let conn = Arc::new(Conn { tx, lagged: AtomicBool::new(false), kick: Notify::new(), user });
        users.entry(user).or_default().insert(id, conn.clone());
        metrics::gauge!("trellis_live_connections").increment(1.0);
        Some((id, conn, rx))
    }

    /// Takes one of the address's connection slots for as long as the guard lives; `None` when
    /// the address already holds `max_per_address`.
    fn take_address(&self, key: String) -> Option<AddressSlot> {
        let slot = AddressCounts::take(&self.0.addresses, key, self.0.settings.max_per_address);
        if slot.is_none() {
            metrics::counter!("trellis_live_refused_total", "limit" => "address").increment(1);
        }
        slot
    }

    fn subscribe(&self, id: u64, conn: &Arc<Conn>, project: Uuid) {
        let mut projects = self.0.projects.write().unwrap_or_else(|e| e.into_inner());
        projects.entry(project).or_default().insert(id, conn.clone());
    }

    fn unsubscribe(&self, id: u64, project: Uuid) {
        let mut projects = self.0.projects.write().unwrap_or_else(|e| e.into_inner());
        if let Some(conns) = projects.get_mut(&project) {
            conns.remove(&id);
            if conns.is_empty() {
                projects.remove(&project);
            }
        }
    }

    fn unregister(&self, id: u64, conn: &Conn, projects: impl Iterator<Item = Uuid>) {
        for p in projects {
            self.unsubscribe(id, p);
        }
        let mut users = self.0.users.write().unwrap_or_else(|e| e.into_inner());
        if let Some(conns) = users.get_mut(&conn.user) {
            conns.remove(&id);
            if conns.is_empty() {
                users.remove(&conn.user);
            }
        }
        metrics::gauge!("trellis_live_connections").decrement(1.0);
    }
}

/// Open connections per client address key.
#[derive(Default)]
struct AddressCounts(std::sync::Mutex<HashMap<String, usize>>);

impl AddressCounts {
    /// One more connection of `key`, unless it already has `max`.
    fn take(counts: &Arc<AddressCounts>, key: String, max: usize) -> Option<AddressSlot> {
        let mut map = counts.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(key.clone()).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(AddressSlot { counts: counts.clone(), key })
    }

    #[cfg(test)]
    fn open(&self, key: &str) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(key).copied().unwrap_or(0)
    }
}

/// One open connection of a client address, given back when dropped.
struct AddressSlot {
    counts: Arc<AddressCounts>,
    key: String,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut map = self.counts.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// `GET /api/ws` with its state.
pub fn router(hub: LiveHub) -> Router {
    routes().with_state(hub)
}

/// The route before its state (the role-gate table test walks it).
pub fn routes() -> Router<LiveHub> {
    Router::new().route("/api/ws", get(upgrade))
}

/// The OpenAPI path of the live-updates upgrade.
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(upgrade))]
    struct Doc;
    <Doc as utoipa::OpenApi>::openapi()
}

/// Upgrades to a live-updates WebSocket. The token comes as the subprotocol `bearer.<token>`
/// offered beside `trellis`, or as the first message `{"token": "…"}`.
#[utoipa::path(get, path = "/api/ws", tag = "live",
    description = "Live updates over a WebSocket (docs/API.md \"Live updates\"). Authenticate by offering the \
subprotocols `trellis, bearer.<access token>` or by sending `{\"token\": \"…\"}` first (within 10 s; send it \
again before the token expires to keep the connection). Then send `{\"subscribe\": [project_id, …], \
\"since\": seq | {project_id: seq}}` (and `{\"unsubscribe\": […]}`). The server sends each event of the \
projects as `{seq, type, project_id, data}` (`data`: ids, kinds and changed field names, never text), numbered 1, 2, 3… per project, after replaying what followed \
`since` (at most 1,000 events, else `{type: \"resync\", project_id, seq}`: load the project afresh), then \
`{type: \"subscribed\", project_id, seq}`. A member removed from a project gets `{type: \"unsubscribed\", \
reason: \"removed\"}` and nothing more of it; a deleted project ends with `reason: \"deleted\"`. Errors are \
`{type: \"error\", status, detail, project_id?}`. Close codes: 4401 token missing, invalid, expired or \
session ended (reconnect with a fresh token and `since`), 4008 too slow to keep up (reconnect with `since`), \
1013 try again later (also: the user holds too many connections already). The server pings every 30 s.",
    responses((status = 101, description = "switching to the WebSocket protocol"),
              (status = 400, description = "not a WebSocket upgrade"),
              (status = 429, description = "this client address holds too many live connections already")))]
async fn upgrade(
    State(hub): State<LiveHub>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let address = platform::http::net::address_key(ip.unwrap_or(platform::http::net::UNKNOWN_PEER));
    let Some(slot) = hub.take_address(address) else {
        return Problem::too_many(5).into_response();
    };
    let token = headers
        .get_all(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix("bearer.").map(str::to_string));
    ws.protocols([PROTOCOL])
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| async move {
            socket::serve(hub, socket, token).await;
            drop(slot);
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(seq: i64) -> Arc<Outgoing> {
        let project = Uuid::now_v7();
        let mut event = Event::new(
            "task.created",
            Uuid::now_v7(),
            None,
            time::OffsetDateTime::now_utc(),
            serde_json::json!({ "project_id": project }),
        );
        event.seq = seq;
        Arc::new(Outgoing { text: socket::event_message(&event), event })
    }

    #[test]
    fn an_address_holds_at_most_its_cap_of_connections_until_one_ends() {
        let counts = Arc::new(AddressCounts::default());
        let a =
            [AddressCounts::take(&counts, "192.0.2.1".into(), 2), AddressCounts::take(&counts, "192.0.2.1".into(), 2)];
        assert!(a.iter().all(Option::is_some));
        assert!(AddressCounts::take(&counts, "192.0.2.1".into(), 2).is_none(), "a third is refused");
        let other = AddressCounts::take(&counts, "2001:db8::/64".into(), 2);
        assert!(other.is_some(), "another address has its own count");
        let [first, second] = a;
        drop(first);
        assert_eq!(counts.open("192.0.2.1"), 1);
        assert!(AddressCounts::take(&counts, "192.0.2.1".into(), 2).is_some(), "a slot is free again");
        drop(second);
        drop(other);
        assert_eq!(counts.open("2001:db8::/64"), 0, "nothing is kept for an address without connections");
    }

    #[tokio::test]
    async fn a_full_queue_holds_no_more_and_marks_the_connection_too_slow() {
        let (tx, mut rx) = mpsc::channel(2);
        let conn = Conn { tx, lagged: AtomicBool::new(false), kick: Notify::new(), user: Uuid::now_v7() };
        conn.offer(&outgoing(1));
        conn.offer(&outgoing(2));
        assert!(!conn.lagged.load(Ordering::Relaxed), "a queue with room is fine");
        for seq in 3..100 {
            conn.offer(&outgoing(seq));
        }
        assert!(conn.lagged.load(Ordering::Relaxed));
        // The connection is told (the permit waits for it), and its queue never grew.
        tokio::time::timeout(Duration::from_secs(1), conn.kick.notified()).await.unwrap();
        assert_eq!(rx.len(), 2);
        assert_eq!(rx.recv().await.unwrap().event.seq, 1);
    }

    /// The size of a future that `f` returns, without calling it.
    fn future_size<A, B, C, F: std::future::Future>(_: impl Fn(A, B, C) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every connection's task holds its future for as long as the connection lives, so the rare,
    /// heavy steps (token checks, subscriptions with their replay, gap filling, catch-up) are boxed
    /// while they run instead of sizing every idle connection (docs/PERFORMANCE.md S9: 4,488 bytes
    /// before in a debug build, 2,640 after).
    #[test]
    fn an_idle_connection_holds_a_small_future() {
        let size = future_size(socket::serve);
        assert!(size <= 3 * 1024, "the connection future is {size} bytes");
    }

    #[test]
    fn clients_receive_seq_type_project_and_data() {
        let out = outgoing(7);
        let m: serde_json::Value = serde_json::from_str(out.text.as_str()).unwrap();
        assert_eq!(m["seq"], 7);
        assert_eq!(m["type"], "task.created");
        assert_eq!(m["project_id"], out.event.data["project_id"]);
        assert_eq!(m["data"], out.event.data);
    }
}
