//! Live updates (`GET /api/ws`) through the real binary, run in both deployments: two members'
//! clients receive a project's events in order; one disconnects, changes happen, and on
//! reconnecting with `since` it receives every missed event in order; a member removed from the
//! project stops receiving its events (and may not subscribe again); bad tokens are refused.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::flow;
use crate::support::Trellis;

#[tokio::test]
async fn all_in_one_live_updates() {
    let dir = tempfile::tempdir().unwrap();
    let app = Trellis::start("all-in-one-live", dir.path(), &[], &[]).await;
    updates(&app.base).await;
    let (code, log) = app.terminate().await;
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("live-password-"), "no password in the log");
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Member {
    id: String,
    token: String,
}

async fn member(http: &Client, base: &str, name: &str) -> Member {
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let (email, password) = (format!("{name}.{tag}@example.com"), format!("live-password-{tag}"));
    let body = json!({"email": email, "password": password, "name": name});
    let res = http.post(format!("{base}/auth/register")).json(&body).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let user: Value = res.json().await.unwrap();
    let token = flow::login_tokens(http, base, &email, &password).await.access;
    Member { id: user["user"]["id"].as_str().unwrap().to_string(), token }
}

fn ws_url(base: &str) -> String {
    format!("{}/api/ws", base.replacen("http", "ws", 1))
}

/// Connects with the token as the subprotocol `bearer.<token>` beside `trellis`.
async fn connect_with_protocol(base: &str, token: &str) -> Ws {
    let mut req = ws_url(base).into_client_request().unwrap();
    let offer = HeaderValue::from_str(&format!("trellis, bearer.{token}")).unwrap();
    req.headers_mut().insert("sec-websocket-protocol", offer);
    let (ws, res) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(res.headers()["sec-websocket-protocol"], "trellis");
    ws
}

/// Connects and sends the token as the first message.
async fn connect_with_message(base: &str, token: &str) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url(base)).await.unwrap();
    send(&mut ws, json!({ "token": token })).await;
    ws
}

async fn send(ws: &mut Ws, message: Value) {
    ws.send(Message::Text(Utf8Bytes::from(message.to_string()))).await.unwrap();
}

/// The next text message within `wait`, skipping pings; `None` if none came.
async fn next_within(ws: &mut Ws, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let message = tokio::time::timeout_at(deadline, ws.next()).await.ok()??.unwrap();
        match message {
            Message::Text(t) => return Some(serde_json::from_str(t.as_str()).unwrap()),
            Message::Close(frame) => return Some(json!({ "closed": frame.map(|f| u16::from(f.code)) })),
            _ => continue,
        }
    }
}

/// The next text message, which must come: fails after the default limit (a minute, scaled).
async fn next(ws: &mut Ws, what: &str) -> Value {
    let limit = test_support::wait::default_limit();
    next_within(ws, limit).await.unwrap_or_else(|| panic!("no message in {limit:.0?}: expected {what}"))
}

/// Waits until the worker process serving WebSockets at `live` delivers events from the bus. Its
/// live hub subscribes to the bus off the start-up path (a process answers `/healthz` before),
/// and what is published before that reaches none of its clients; so this writes (through `base`)
/// to a project of its own until one of the writes is delivered (a later one would fill the gap
/// before it from the outbox).
async fn wait_for_hub(http: &Client, base: &str, live: &str, who: &Member) {
    let project = post(http, format!("{base}/api/projects"), &who.token, json!({"name": "Probe"})).await;
    let p = project["id"].as_str().unwrap().to_string();
    let mut ws = connect_with_protocol(live, &who.token).await;
    subscribe(&mut ws, &p, None).await;
    let limit = test_support::wait::default_limit();
    let start = std::time::Instant::now();
    loop {
        post(http, format!("{base}/api/projects/{p}/tasks"), &who.token, json!({"title": "Probe"})).await;
        if let Some(e) = next_within(&mut ws, Duration::from_millis(500)).await {
            assert_eq!(e["type"], "task.created", "{e}");
            return;
        }
        assert!(start.elapsed() < limit, "{live}: no event of the bus reached its live clients in {limit:.0?}");
    }
}

async fn subscribe(ws: &mut Ws, project: &str, since: Option<i64>) -> Vec<Value> {
    let mut message = json!({ "subscribe": [project] });
    if let Some(since) = since {
        message["since"] = json!(since);
    }
    send(ws, message).await;
    // Replayed events come first, then `subscribed`.
    let mut replayed = Vec::new();
    loop {
        let m = next(ws, "subscribed").await;
        if m["type"] == "subscribed" {
            assert_eq!(m["project_id"], project);
            replayed.push(m);
            return replayed;
        }
        replayed.push(m);
    }
}

async fn post(http: &Client, url: String, token: &str, body: Value) -> Value {
    let res = http.post(url).bearer_auth(token).json(&body).send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    res.json().await.unwrap_or(Value::Null)
}

pub async fn updates(base: &str) {
    let http = flow::client();
    let (ada, bob, cy) =
        (member(&http, base, "ada").await, member(&http, base, "bob").await, member(&http, base, "cy").await);
    let project = post(&http, format!("{base}/api/projects"), &ada.token, json!({"name": "Live"})).await;
    let p = project["id"].as_str().unwrap().to_string();
    for (m, role) in [(&bob, "editor"), (&cy, "viewer")] {
        post(&http, format!("{base}/api/projects/{p}/members"), &ada.token, json!({"user_id": m.id, "role": role}))
            .await;
    }

    wait_for_hub(&http, base, base, &ada).await;
    let mut a = connect_with_protocol(base, &ada.token).await;
    let mut b = connect_with_message(base, &bob.token).await;
    let mut c = connect_with_protocol(base, &cy.token).await;
    let head = subscribe(&mut a, &p, None).await[0]["seq"].as_i64().unwrap();
    assert!(head >= 3, "the project's creation and two member changes came first: {head}");
    for ws in [&mut b, &mut c] {
        assert_eq!(subscribe(ws, &p, None).await[0]["seq"], head);
    }

    // Every client receives the change, numbered next.
    let t1 = post(&http, format!("{base}/api/projects/{p}/tasks"), &ada.token, json!({"title": "One"})).await;
    for ws in [&mut a, &mut b, &mut c] {
        let e = next(ws, "task.created").await;
        assert_eq!(
            (e["seq"].as_i64(), &e["type"], &e["project_id"]),
            (Some(head + 1), &json!("task.created"), &json!(p))
        );
        // Ids and what changed, never the text (ARCHITECTURE.md "What events may carry").
        assert_eq!(e["data"]["task"]["id"], t1["id"]);
        assert!(e["data"]["task"].get("title").is_none(), "{e}");
    }

    // B goes away; three changes happen; A sees them live, in order.
    b.close(None).await.unwrap();
    drop(b);
    let t1_id = t1["id"].as_str().unwrap();
    let res = http
        .patch(format!("{base}/api/tasks/{t1_id}"))
        .bearer_auth(&ada.token)
        .json(&json!({"title": "One, renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    post(&http, format!("{base}/api/projects/{p}/tasks"), &ada.token, json!({"title": "Two"})).await;
    post(&http, format!("{base}/api/tasks/{t1_id}/comments"), &ada.token, json!({"body": "Looks good"})).await;
    let expected = [(head + 2, "task.updated"), (head + 3, "task.created"), (head + 4, "comment.created")];
    for (seq, kind) in expected {
        let e = next(&mut a, kind).await;
        assert_eq!((e["seq"].as_i64().unwrap(), e["type"].as_str().unwrap()), (seq, kind));
    }

    // B reconnects with `since`: every missed event, in order, then `subscribed` at the head.
    let mut b = connect_with_protocol(base, &bob.token).await;
    let replayed = subscribe(&mut b, &p, Some(head + 1)).await;
    let got: Vec<(i64, &str)> =
        replayed.iter().map(|e| (e["seq"].as_i64().unwrap(), e["type"].as_str().unwrap())).collect();
    assert_eq!(
        got,
        [
            (head + 2, "task.updated"),
            (head + 3, "task.created"),
            (head + 4, "comment.created"),
            (head + 4, "subscribed")
        ]
    );
    assert_eq!((&replayed[0]["data"]["task"]["id"], &replayed[0]["data"]["fields"]), (&t1["id"], &json!(["title"])));

    // Cy is removed: told so, and gets nothing of the project from then on.
    let res =
        http.delete(format!("{base}/api/projects/{p}/members/{}", cy.id)).bearer_auth(&ada.token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // C had not read its copies of the three changes yet: they come first, then the notice.
    for _ in 0..3 {
        assert_ne!(next(&mut c, "an earlier change").await["type"], "unsubscribed");
    }
    let notice = next(&mut c, "unsubscribed").await;
    assert_eq!((&notice["type"], &notice["reason"]), (&json!("unsubscribed"), &json!("removed")), "{notice}");
    for ws in [&mut a, &mut b] {
        let e = next(ws, "member.changed").await;
        assert_eq!((e["type"].as_str(), e["seq"].as_i64()), (Some("member.changed"), Some(head + 5)));
    }
    // Cy's connection stays open, subscribed to a project of Cy's own. Once A and B have "Three",
    // the hub has offered it to every connection it had for the project; an event of Cy's project
    // written only then is queued after it on Cy's connection: if "Three" reached Cy, it would
    // come first.
    let own = post(&http, format!("{base}/api/projects"), &cy.token, json!({"name": "Cy's own"})).await;
    let own = own["id"].as_str().unwrap().to_string();
    let got = subscribe(&mut c, &own, None).await;
    assert_eq!(got.len(), 1, "only `subscribed`, nothing to replay in a new project: {got:?}");
    post(&http, format!("{base}/api/projects/{p}/tasks"), &ada.token, json!({"title": "Three"})).await;
    for ws in [&mut a, &mut b] {
        assert_eq!(next(ws, "task.created").await["seq"], head + 6);
    }
    post(&http, format!("{base}/api/projects/{own}/tasks"), &cy.token, json!({"title": "Mine"})).await;
    let e = next(&mut c, "the task in Cy's own project").await;
    assert_eq!(
        (&e["project_id"], &e["type"]),
        (&json!(own), &json!("task.created")),
        "a removed member receives nothing: {e}"
    );
    send(&mut c, json!({ "subscribe": [p] })).await;
    let refused = next(&mut c, "error").await;
    assert_eq!((&refused["type"], &refused["status"]), (&json!("error"), &json!(404)), "{refused}");

    // Asking for more than happened: start afresh.
    let resync = subscribe(&mut b, &p, Some(head + 1000)).await;
    assert_eq!((&resync[0]["type"], &resync[0]["seq"]), (&json!("resync"), &json!(head + 6)), "{resync:?}");

    // The first message may carry the token and a subscription at once.
    let (mut d, _) = tokio_tungstenite::connect_async(ws_url(base)).await.unwrap();
    send(&mut d, json!({ "token": ada.token, "subscribe": [p], "since": head + 5 })).await;
    assert_eq!(next(&mut d, "the missed task").await["seq"], head + 6);
    assert_eq!(next(&mut d, "subscribed").await["type"], "subscribed");

    // A bad token, either way, is refused with 4401.
    let mut bad = connect_with_message(base, "not-a-token").await;
    assert_eq!(next(&mut bad, "close").await, json!({ "closed": 4401 }));
    let mut req = ws_url(base).into_client_request().unwrap();
    req.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("trellis, bearer.not-a-token"));
    let (mut bad, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(next(&mut bad, "close").await, json!({ "closed": 4401 }));
}

/// Fan-out across instances: a client of a second worker process (connected to it directly)
/// receives what a write through the gateway caused, as does a client through the gateway.
pub async fn fan_out(base: &str, other_worker: &str) {
    let http = flow::client();
    let ada = member(&http, base, "ada").await;
    let project = post(&http, format!("{base}/api/projects"), &ada.token, json!({"name": "Everywhere"})).await;
    let p = project["id"].as_str().unwrap().to_string();
    wait_for_hub(&http, base, other_worker, &ada).await;
    let mut here = connect_with_protocol(base, &ada.token).await;
    let mut there = connect_with_protocol(other_worker, &ada.token).await;
    for ws in [&mut here, &mut there] {
        assert_eq!(subscribe(ws, &p, None).await[0]["seq"], 1, "project.created is the first event");
    }
    post(&http, format!("{base}/api/projects/{p}/tasks"), &ada.token, json!({"title": "Seen twice"})).await;
    for ws in [&mut here, &mut there] {
        let e = next(ws, "task.created on every instance").await;
        assert_eq!((e["seq"].as_i64(), e["type"].as_str()), (Some(2), Some("task.created")));
    }
}
