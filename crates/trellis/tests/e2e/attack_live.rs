//! Attacks on live updates and retained events (issue 16, "Live updates leak nothing"), against
//! the real binary: a member who joins late replays the project from `since=0` and listens on
//! `/api/ws`, and must never receive what they could not read through the REST API: not a
//! deleted comment, not the earlier words of an edited one, not a project's or task's earlier
//! name, not what an erased user wrote. After the erasure, none of that text is left in the
//! outbox, the audit log or (distributed) the bus's dead letters.

use futures::{SinkExt, StreamExt};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::flow::{client, login_tokens};
use crate::support::Attack;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Person {
    id: String,
    password: String,
    access: String,
}

/// The `sub` of an access token.
fn subject(access: &str) -> String {
    use base64::Engine as _;
    let part = access.split('.').nth(1).unwrap();
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap();
    claims["sub"].as_str().unwrap().to_string()
}

async fn person(http: &Client, base: &str, name: &str, tag: &str) -> Person {
    let email = format!("{}.{tag}@example.com", name.to_lowercase());
    let password = format!("live attack password {}", uuid::Uuid::now_v7().simple());
    let body = json!({ "email": email, "password": password, "name": name });
    let res = http.post(format!("{base}/auth/register")).json(&body).send().await.unwrap();
    assert!(res.status().is_success(), "registration of {name}: {}", res.status());
    let access = login_tokens(http, base, &email, &password).await.access;
    Person { id: subject(&access), password, access }
}

/// Sends `body` with `method` to `path` as `who`; the JSON answer, after checking its status.
async fn call(http: &Client, base: &str, who: &Person, method: &str, path: &str, body: Value, status: u16) -> Value {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = http.request(method, format!("{base}{path}")).bearer_auth(&who.access);
    if !body.is_null() {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let got = res.status();
    let text = res.text().await.unwrap_or_default();
    assert_eq!(got.as_u16(), status, "{path}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn connect(base: &str, token: &str) -> Ws {
    let mut req = format!("{}/api/ws", base.replacen("http", "ws", 1)).into_client_request().unwrap();
    let offer = HeaderValue::from_str(&format!("trellis, bearer.{token}")).unwrap();
    req.headers_mut().insert("sec-websocket-protocol", offer);
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

/// The next text message as it came over the wire (and parsed), which must come in time.
async fn next(ws: &mut Ws, what: &str) -> (String, Value) {
    let limit = test_support::wait::default_limit();
    loop {
        let message = tokio::time::timeout(limit, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no message in {limit:.0?}: expected {what}"))
            .unwrap_or_else(|| panic!("the connection ended: expected {what}"))
            .unwrap();
        match message {
            Message::Text(t) => return (t.to_string(), serde_json::from_str(t.as_str()).unwrap()),
            Message::Close(frame) => panic!("closed ({frame:?}): expected {what}"),
            _ => continue,
        }
    }
}

/// Every message until (and with) the first that `last` accepts.
async fn until(ws: &mut Ws, what: &str, last: impl Fn(&Value) -> bool) -> Vec<(String, Value)> {
    let mut got = Vec::new();
    loop {
        let m = next(ws, what).await;
        let done = last(&m.1);
        got.push(m);
        if done {
            return got;
        }
    }
}

fn assert_clean(what: &str, text: &str, canaries: &[&str]) {
    for canary in canaries {
        assert!(!text.contains(canary), "{what} holds text the reader may not see ({canary}): {text}");
    }
}

/// Every stored event's and audit entry's data, as text.
async fn retained(ctx: &Attack) -> Vec<String> {
    const SQL: &str = "SELECT CAST(data AS TEXT) FROM outbox UNION ALL SELECT CAST(data AS TEXT) FROM audit_log";
    match &ctx.db {
        platform::db::Database::Sqlite(db) => db
            .read(|c| {
                let mut stmt = c.prepare(SQL)?;
                let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
                rows.collect()
            })
            .await
            .unwrap(),
        platform::db::Database::Postgres(db) => {
            let client = db.client().await.unwrap();
            client.query(SQL, &[]).await.unwrap().iter().map(|r| r.get::<_, String>(0)).collect()
        }
    }
}

/// The messages in the deployment's dead letters (`{namespace}.dead`), left where they are:
/// read unacknowledged on a channel that then closes. Empty all-in-one (they live in memory).
async fn dead_letters(ctx: &Attack) -> Vec<String> {
    let setting = |key: &str| ctx.env.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
    let (Some(url), Some(namespace)) = (setting("AMQP_URL"), setting("TRELLIS_AMQP_NAMESPACE")) else {
        return Vec::new();
    };
    let conn = lapin::Connection::connect(&url, lapin::ConnectionProperties::default()).await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    let queue = format!("{namespace}.dead");
    let mut out = Vec::new();
    while let Some(m) =
        channel.basic_get(queue.as_str().into(), lapin::options::BasicGetOptions::default()).await.unwrap()
    {
        out.push(String::from_utf8_lossy(&m.delivery.data).into_owned());
    }
    let _ = conn.close(0, "read".into()).await;
    out
}

/// The whole flow, in both deployments.
pub async fn live(ctx: &Attack) {
    let http = client();
    let base = ctx.base.as_str();
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let tag = &tag[tag.len() - 10..];
    let (old_name, old_title) = (format!("canary-live-name-{tag}"), format!("canary-live-title-{tag}"));
    let (edited, deleted) = (format!("canary-live-edited-{tag}"), format!("canary-live-deleted-{tag}"));
    let (erased, fleeting) = (format!("canary-live-erased-{tag}"), format!("canary-live-fleeting-{tag}"));
    let canaries = [&old_name, &old_title, &edited, &deleted, &erased, &fleeting].map(String::as_str);

    let ann = person(&http, base, "Ann", tag).await;
    let walt = person(&http, base, "Walt", tag).await;
    let bea = person(&http, base, "Bea", tag).await;

    // Ann's project and task, renamed; Walt joins as an editor.
    let project = call(&http, base, &ann, "POST", "/api/projects", json!({ "name": old_name }), 201).await;
    let p = project["id"].as_str().unwrap().to_string();
    call(&http, base, &ann, "PATCH", &format!("/api/projects/{p}"), json!({ "name": "Live garden" }), 200).await;
    let members = format!("/api/projects/{p}/members");
    call(&http, base, &ann, "POST", &members, json!({ "user_id": walt.id, "role": "editor" }), 201).await;
    let body = json!({ "title": old_title, "description": old_title, "labels": [old_title] });
    let task = call(&http, base, &ann, "POST", &format!("/api/projects/{p}/tasks"), body, 201).await;
    let t = task["id"].as_str().unwrap().to_string();
    let renamed = json!({ "title": "Water the beds", "description": "", "labels": [] });
    call(&http, base, &ann, "PATCH", &format!("/api/tasks/{t}"), renamed, 200).await;

    // A comment edited, one deleted, one by Walt, who then erases himself.
    let comments = format!("/api/tasks/{t}/comments");
    let c1 = call(&http, base, &ann, "POST", &comments, json!({ "body": edited }), 201).await;
    let c1 = c1["id"].as_str().unwrap().to_string();
    call(&http, base, &ann, "PATCH", &format!("/api/comments/{c1}"), json!({ "body": "Fine words" }), 200).await;
    let c2 = call(&http, base, &ann, "POST", &comments, json!({ "body": deleted }), 201).await;
    let c2 = c2["id"].as_str().unwrap().to_string();
    call(&http, base, &ann, "DELETE", &format!("/api/comments/{c2}"), Value::Null, 204).await;
    let c3 = call(&http, base, &walt, "POST", &comments, json!({ "body": erased }), 201).await;
    let c3 = c3["id"].as_str().unwrap().to_string();
    let proof = json!({ "current_password": walt.password });
    call(&http, base, &walt, "DELETE", &format!("/api/users/{}", walt.id), proof, 204).await;
    test_support::wait::until("Walt's comment to go with his erasure", || {
        let (http, url, token) = (http.clone(), format!("{base}/api/comments/{c3}"), ann.access.clone());
        async move { http.get(url).bearer_auth(token).send().await.unwrap().status() == StatusCode::NOT_FOUND }
    })
    .await;

    // Bea joins late and replays the whole project, then listens.
    call(&http, base, &ann, "POST", &members, json!({ "user_id": bea.id, "role": "viewer" }), 201).await;
    let mut ws = connect(base, &bea.access).await;
    let subscribe = json!({ "subscribe": [p], "since": 0 });
    ws.send(Message::Text(Utf8Bytes::from(subscribe.to_string()))).await.unwrap();
    let replay = until(&mut ws, "the replay, then subscribed", |m| m["type"] == "subscribed").await;
    let kinds: Vec<&str> = replay.iter().map(|(_, m)| m["type"].as_str().unwrap_or_default()).collect();
    assert!(!kinds.contains(&"resync"), "a whole replay, not a resync: {kinds:?}");
    for wanted in ["project.updated", "task.updated", "comment.updated", "comment.deleted"] {
        assert!(kinds.contains(&wanted), "the replay shows what happened ({wanted}), without its text: {kinds:?}");
    }
    for (raw, _) in &replay {
        assert_clean("a replayed event", raw, &canaries);
    }

    // Live: a comment written and deleted while Bea listens, then a last task as the end mark.
    let c4 = call(&http, base, &ann, "POST", &comments, json!({ "body": fleeting }), 201).await;
    let c4 = c4["id"].as_str().unwrap().to_string();
    call(&http, base, &ann, "DELETE", &format!("/api/comments/{c4}"), Value::Null, 204).await;
    let mark =
        call(&http, base, &ann, "POST", &format!("/api/projects/{p}/tasks"), json!({ "title": "Mark" }), 201).await;
    let live = until(&mut ws, "the live events up to the mark", |m| {
        m["type"] == "task.created" && m["data"]["task_id"] == mark["id"]
    })
    .await;
    let kinds: Vec<&str> = live.iter().map(|(_, m)| m["type"].as_str().unwrap_or_default()).collect();
    assert!(kinds.contains(&"comment.created") && kinds.contains(&"comment.deleted"), "{kinds:?}");
    for (raw, _) in &live {
        assert_clean("a live event", raw, &canaries);
    }
    let _ = ws.close(None).await;

    // Through the REST API Bea reads the same: the comment of now, nothing deleted or erased.
    let page = call(&http, base, &bea, "GET", &comments, Value::Null, 200).await;
    let bodies: Vec<&str> = page["items"].as_array().unwrap().iter().map(|c| c["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["Fine words"]);

    // Nothing retained holds the text: outbox, audit log, dead letters.
    for row in retained(ctx).await {
        assert_clean("an outbox or audit row", &row, &canaries);
    }
    for message in dead_letters(ctx).await {
        assert_clean("a dead letter", &message, &canaries);
    }
}
