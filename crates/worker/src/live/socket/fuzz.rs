//! Property checks of what a WebSocket client sends (`GET /api/ws`): the first message and every
//! later one are parsed as a [`ClientMessage`]; anything else is answered with an error frame.
#![allow(clippy::expect_used, reason = "a check's panic is its verdict: it runs in tests and under cargo-fuzz only")]

use super::{ClientMessage, Since, error};

/// Known fields only (`deny_unknown_fields`), each of its type; a `since` map gives only its own
/// projects' numbers; and what is refused is answered with one well-formed JSON error frame that
/// carries the parser's message as data (no injection into the frame), never a panic.
pub fn check_client_message(text: &str) {
    match serde_json::from_str::<ClientMessage>(text) {
        Ok(m) => {
            let value: serde_json::Value = serde_json::from_str(text).expect("accepted text is JSON");
            let object = value.as_object().expect("a message is an object");
            assert!(object.keys().all(|k| ["token", "subscribe", "unsubscribe", "since"].contains(&k.as_str())));
            assert!(m.subscribe.as_ref().is_none_or(|s| s.len() == object["subscribe"].as_array().map_or(0, Vec::len)));
            if let Some(Since::Each(map)) = &m.since {
                let other = uuid::Uuid::from_u128(u128::MAX);
                if !map.contains_key(&other) {
                    assert_eq!(m.since.as_ref().and_then(|s| s.of(other)), None);
                }
            }
        }
        Err(e) => {
            let detail = format!("malformed message: {e}");
            let frame: serde_json::Value =
                serde_json::from_str(error(400, &detail, None).as_str()).expect("a JSON frame");
            assert_eq!(frame["type"], "error");
            assert_eq!(frame["status"], 400);
            assert_eq!(frame["detail"].as_str(), Some(detail.as_str()));
        }
    }
}
