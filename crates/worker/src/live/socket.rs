//! One live-updates connection: its token, its subscriptions with their replay, the check of
//! every event before it is sent, gap filling, heartbeats and the slow-client rule.
//!
//! Client messages: `{"token": "…"}` (first, unless the token came as the subprotocol
//! `bearer.<token>`; again later to extend the session past the token's expiry),
//! `{"subscribe": [project_id, …], "since": seq | {project_id: seq}}`, `{"unsubscribe": […]}`.
//! Server messages: events `{"seq", "type", "project_id", "data"}`, and `{"type": "subscribed" |
//! "resync" | "unsubscribed" | "error", "project_id", …}`.

use std::collections::HashMap;
use std::sync::Arc;

use api::users::Role;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use platform::bus::Event;
use platform::identity::{Identity, VerifyError};
use platform::outbox::{stream_events, stream_head};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;
use uuid::Uuid;

use super::{Conn, LiveHub, Outgoing};

/// Why a connection ends: a close code (4000–4999 are Trellis's own) and a reason.
type Close = (u16, &'static str);

const UNAUTHORIZED: Close = (4401, "unauthorized: reconnect with a fresh token and since");
const TOO_SLOW: Close = (4008, "too slow: reconnect with since");
const TRY_LATER: Close = (1013, "try again later");
const SILENT: Close = (1001, "no answer to pings");
const TEXT_ONLY: Close = (1003, "text messages only");

/// Projects one connection may follow at once, and per message.
const MAX_SUBSCRIPTIONS: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientMessage {
    token: Option<String>,
    subscribe: Option<Vec<Uuid>>,
    unsubscribe: Option<Vec<Uuid>>,
    since: Option<Since>,
}

/// `since`: one number for every project subscribed in the message, or one per project.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Since {
    All(i64),
    Each(HashMap<Uuid, i64>),
}

impl Since {
    fn of(&self, project: Uuid) -> Option<i64> {
        match self {
            Since::All(n) => Some(*n),
            Since::Each(m) => m.get(&project).copied(),
        }
    }
}

/// An event as clients receive it (docs/API.md).
pub(super) fn event_message(e: &Event) -> Utf8Bytes {
    json!({ "seq": e.seq, "type": e.event_type, "project_id": e.stream(), "data": e.data }).to_string().into()
}

fn control(kind: &str, project: Uuid, extra: Value) -> Utf8Bytes {
    let mut m = json!({ "type": kind, "project_id": project });
    if let (Some(m), Value::Object(extra)) = (m.as_object_mut(), extra) {
        m.extend(extra);
    }
    m.to_string().into()
}

fn error(status: u16, detail: &str, project: Option<Uuid>) -> Utf8Bytes {
    json!({ "type": "error", "status": status, "detail": detail, "project_id": project }).to_string().into()
}

/// Serves one upgraded connection until it ends. The rare, large steps are boxed (`Box::pin`): the
/// task keeps its future for the connection's whole life, and an inline one is sized by its largest
/// step, which would cost every idle connection kilobytes (docs/PERFORMANCE.md S9).
pub(super) async fn serve(hub: LiveHub, mut socket: WebSocket, token: Option<String>) {
    // Without the token in the upgrade, the first message brings it (and may subscribe too).
    let (token, first) = match token {
        Some(t) => (Some(t), None),
        None => match Box::pin(first_message(&hub, &mut socket)).await {
            Some(mut m) => (m.token.take(), Some(m)),
            None => (None, None),
        },
    };
    let Some(token) = token else {
        return close(socket, UNAUTHORIZED).await;
    };
    let identity = match Box::pin(hub.0.verifier.verify(&token)).await {
        Ok(identity) => identity,
        Err(VerifyError::Invalid) => return close(socket, UNAUTHORIZED).await,
        Err(VerifyError::Unavailable) => return close(socket, TRY_LATER).await,
    };
    // One user's connections per process are capped (`LiveSettings::max_per_user`).
    let Some((id, conn, mut rx)) = hub.register(identity.user_id) else {
        return close(socket, TRY_LATER).await;
    };
    let mut session =
        Session { hub: hub.clone(), socket, id, conn: conn.clone(), identity, token, last: HashMap::new() };
    let ending = match first {
        Some(m) => Box::pin(session.on_request(m)).await.err(),
        None => None,
    };
    let ending = match ending {
        Some(reason) => Some(reason),
        None => session.run(&mut rx).await,
    };
    hub.unregister(id, &conn, session.last.keys().copied());
    if let Some(reason) = ending {
        close(session.socket, reason).await;
    }
}

/// The first message of a client that did not send its token with the upgrade.
async fn first_message(hub: &LiveHub, socket: &mut WebSocket) -> Option<ClientMessage> {
    let first = tokio::time::timeout(hub.0.settings.auth_timeout, socket.recv()).await.ok()??.ok()?;
    let Message::Text(text) = first else { return None };
    serde_json::from_str::<ClientMessage>(text.as_str()).ok()
}

async fn close(mut socket: WebSocket, (code, reason): Close) {
    let frame = CloseFrame { code, reason: Utf8Bytes::from_static(reason) };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), socket.send(Message::Close(Some(frame)))).await;
}

struct Session {
    hub: LiveHub,
    socket: WebSocket,
    id: u64,
    conn: Arc<Conn>,
    identity: Identity,
    token: String,
    /// The projects followed, each with the number of the newest event sent of it.
    last: HashMap<Uuid, i64>,
}

impl Session {
    /// Runs until the connection ends: `None` when the client went away, else why we close it.
    async fn run(&mut self, rx: &mut mpsc::Receiver<Arc<Outgoing>>) -> Option<Close> {
        let beat = self.hub.0.settings.heartbeat;
        let mut heartbeat = tokio::time::interval_at(Instant::now() + beat, beat);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut epoch = self.hub.0.epoch.subscribe();
        let mut last_heard = Instant::now();
        loop {
            let step = tokio::select! {
                biased;
                _ = self.conn.kick.notified() => Err(TOO_SLOW),
                message = self.socket.recv() => match message {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return None,
                    Some(Ok(message)) => {
                        last_heard = Instant::now();
                        match message {
                            Message::Text(text) => Box::pin(self.on_message(text.as_str())).await,
                            Message::Binary(_) => Err(TEXT_ONLY),
                            _ => Ok(()),
                        }
                    }
                },
                out = rx.recv() => match out {
                    Some(out) => self.deliver(&out).await,
                    None => return None,
                },
                _ = epoch.changed() => Box::pin(self.catch_up()).await,
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > beat * 2 {
                        Err(SILENT)
                    } else {
                        match Box::pin(self.check_session()).await {
                            Ok(()) => self.send_raw(Message::Ping(Default::default())).await,
                            Err(e) => Err(e),
                        }
                    }
                }
            };
            if let Err(reason) = step {
                return Some(reason);
            }
        }
    }

    async fn send_raw(&mut self, message: Message) -> Result<(), Close> {
        match tokio::time::timeout(self.hub.0.settings.send_timeout, self.socket.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(TRY_LATER),
            Err(_) => Err(TOO_SLOW),
        }
    }

    async fn send(&mut self, text: Utf8Bytes) -> Result<(), Close> {
        self.send_raw(Message::Text(text)).await
    }

    /// The session is still active and the token unexpired (a revoked session, a changed role or
    /// status, an erased user all end the session); else the connection closes.
    async fn check_session(&mut self) -> Result<(), Close> {
        match self.hub.0.verifier.verify(&self.token).await {
            Ok(identity) => {
                self.identity = identity;
                Ok(())
            }
            Err(VerifyError::Invalid) => Err(UNAUTHORIZED),
            Err(VerifyError::Unavailable) => Err(TRY_LATER),
        }
    }

    async fn on_message(&mut self, text: &str) -> Result<(), Close> {
        match serde_json::from_str::<ClientMessage>(text) {
            Ok(m) => self.on_request(m).await,
            Err(e) => self.send(error(400, &format!("malformed message: {e}"), None)).await,
        }
    }

    async fn on_request(&mut self, message: ClientMessage) -> Result<(), Close> {
        if let Some(token) = message.token {
            match self.hub.0.verifier.verify(&token).await {
                Ok(identity) if identity.user_id == self.identity.user_id => {
                    self.identity = identity;
                    self.token = token;
                }
                Ok(_) | Err(VerifyError::Invalid) => return Err(UNAUTHORIZED),
                Err(VerifyError::Unavailable) => return Err(TRY_LATER),
            }
        }
        for project in message.unsubscribe.unwrap_or_default() {
            if self.last.remove(&project).is_some() {
                self.hub.unsubscribe(self.id, project);
            }
        }
        let subscribe = message.subscribe.unwrap_or_default();
        if self.last.len() + subscribe.len() > MAX_SUBSCRIPTIONS {
            let detail = format!("at most {MAX_SUBSCRIPTIONS} projects per connection");
            return self.send(error(422, &detail, None)).await;
        }
        for project in subscribe {
            let since = message.since.as_ref().and_then(|s| s.of(project));
            self.subscribe(project, since).await?;
        }
        Ok(())
    }

    /// Follows `project` if the user may see it, replaying what followed `since`.
    async fn subscribe(&mut self, project: Uuid, since: Option<i64>) -> Result<(), Close> {
        let Identity { user_id, role, .. } = self.identity;
        match self.hub.0.access.project_role(project, user_id, role).await {
            Ok(Some(_)) => {}
            Ok(None) => return self.send(error(404, "no such project", Some(project))).await,
            Err(_) => return self.send(error(503, "cannot check access now; subscribe again", Some(project))).await,
        }
        // Registered first, so that nothing committed after the head read below is missed: it
        // comes through the queue, and what the replay already sent is dropped there.
        self.hub.subscribe(self.id, &self.conn, project);
        let head = match stream_head(&self.hub.0.db, project).await {
            Ok(head) => head,
            Err(_) => {
                self.hub.unsubscribe(self.id, project);
                return self.send(error(503, "cannot read events now; subscribe again", Some(project))).await;
            }
        };
        match since {
            None => {
                self.last.insert(project, head);
            }
            Some(since) => {
                let since = since.max(0);
                self.last.insert(project, since.min(head));
                if since > head {
                    self.resync(project, head).await?;
                } else {
                    self.fill(project, head).await?;
                }
            }
        }
        let seq = self.last.get(&project).copied().unwrap_or(head);
        if self.last.contains_key(&project) {
            self.send(control("subscribed", project, json!({ "seq": seq }))).await?;
        }
        Ok(())
    }

    /// Sends the events of `project` after the last one sent, up to `upto`, from the outbox; when
    /// they are not all there any more (or too many), tells the client to load afresh.
    async fn fill(&mut self, project: Uuid, upto: i64) -> Result<(), Close> {
        let Some(&after) = self.last.get(&project) else { return Ok(()) };
        if upto <= after {
            return Ok(());
        }
        let missing = upto - after;
        if missing > self.hub.0.settings.replay_limit {
            return self.resync(project, upto).await;
        }
        let events = match stream_events(&self.hub.0.db, project, after, missing).await {
            Ok(events) => events,
            Err(_) => return self.resync(project, upto).await,
        };
        let complete = events.len() as i64 == missing && events.first().is_some_and(|e| e.seq == after + 1);
        if !complete {
            return self.resync(project, upto).await;
        }
        metrics::counter!("trellis_live_replayed_total").increment(events.len() as u64);
        for event in events {
            if !self.last.contains_key(&project) {
                break;
            }
            let text = event_message(&event);
            self.check_and_send(project, &event, text).await?;
        }
        Ok(())
    }

    /// The client must load the project afresh: what it missed is no longer replayable.
    async fn resync(&mut self, project: Uuid, head: i64) -> Result<(), Close> {
        metrics::counter!("trellis_live_resyncs_total").increment(1);
        self.last.insert(project, head);
        self.send(control("resync", project, json!({ "seq": head }))).await
    }

    /// An event from the hub: dropped if already sent, gaps before it filled, then checked.
    async fn deliver(&mut self, out: &Outgoing) -> Result<(), Close> {
        let event = &out.event;
        if event.data.get("project_id").is_none() {
            // About the user themself: their session may have ended.
            return Box::pin(self.check_session()).await;
        }
        let project = event.stream();
        let Some(&last) = self.last.get(&project) else { return Ok(()) };
        if event.seq <= last {
            return Ok(());
        }
        if event.seq > last + 1 {
            Box::pin(self.fill(project, event.seq - 1)).await?;
            if self.last.get(&project).is_none_or(|&l| l >= event.seq) {
                return Ok(());
            }
        }
        self.check_and_send(project, event, out.text.clone()).await
    }

    /// The check every event passes before it is sent: a member removed from the project gets
    /// no more of it (not even the removal's details), and a deleted project ends the
    /// subscription after its event.
    async fn check_and_send(&mut self, project: Uuid, event: &Event, text: Utf8Bytes) -> Result<(), Close> {
        let removed_me = event.event_type == "member.changed"
            && event.data["change"] == "removed"
            && event.data["user_id"].as_str() == Some(self.identity.user_id.to_string().as_str())
            && self.identity.role != Role::Admin;
        if removed_me {
            self.stop(project);
            return self.send(control("unsubscribed", project, json!({ "reason": "removed" }))).await;
        }
        self.send(text).await?;
        self.last.insert(project, event.seq);
        if event.event_type == "project.deleted" {
            self.stop(project);
            self.send(control("unsubscribed", project, json!({ "reason": "deleted" }))).await?;
        }
        Ok(())
    }

    fn stop(&mut self, project: Uuid) {
        self.last.remove(&project);
        self.hub.unsubscribe(self.id, project);
    }

    /// After the hub lost the bus for a while: whatever was committed meanwhile, from the outbox.
    async fn catch_up(&mut self) -> Result<(), Close> {
        let projects: Vec<Uuid> = self.last.keys().copied().collect();
        for project in projects {
            let head = stream_head(&self.hub.0.db, project).await.map_err(|_| TRY_LATER)?;
            self.fill(project, head).await?;
        }
        Ok(())
    }
}

/// Property checks of the client messages (`crate::fuzz`).
#[cfg(any(test, fuzzing))]
pub mod fuzz;
