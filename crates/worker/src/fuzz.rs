//! Property checks of the worker's parsers of untrusted input: the audit log's cursor and the
//! live-update client messages (`live::socket::fuzz`).
//!
//! Each `check_*` takes arbitrary input, must not panic, and asserts an invariant. The proptest
//! suites below run them in every test run (`PROPTEST_CASES`, 256 by default); the cargo-fuzz
//! targets in `fuzz/` call the same functions for the longer runs (docs/SECURITY.md SC-3).
#![allow(clippy::expect_used, reason = "a check's panic is its verdict: it runs in tests and under cargo-fuzz only")]

pub use crate::live::socket::fuzz::check_client_message;

/// An audit cursor names a sequence number and nothing else: what decodes is a number whose own
/// cursor decodes to it again ("audit:+7" and "audit:007" are other spellings of 7, harmless).
pub fn check_audit_cursor(input: &str) {
    if let Some(seq) = crate::audit::decode_cursor(input) {
        assert_eq!(crate::audit::decode_cursor(&crate::audit::encode_cursor(seq)), Some(seq));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use proptest::prelude::*;

    fn client_message() -> impl Strategy<Value = String> {
        let uuid = any::<u128>().prop_map(|n| format!("\"{}\"", uuid::Uuid::from_u128(n)));
        let value = prop_oneof![
            uuid.clone(),
            proptest::collection::vec(uuid.clone(), 0..3).prop_map(|v| format!("[{}]", v.join(","))),
            any::<i64>().prop_map(|n| n.to_string()),
            (uuid, any::<i64>()).prop_map(|(u, n)| format!("{{{u}: {n}}}")),
            any::<String>().prop_map(|s| serde_json::Value::String(s).to_string()),
            Just("null".to_string()),
            Just("1e999".to_string()),
        ];
        let key = "(token|subscribe|unsubscribe|since|x)";
        proptest::collection::vec((key, value), 0..5).prop_map(|pairs| {
            let body: Vec<String> = pairs.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
            format!("{{{}}}", body.join(", "))
        })
    }

    proptest! {
        #[test]
        fn audit_cursors(s in prop_oneof![
            any::<String>(),
            any::<i64>().prop_map(|n| URL_SAFE_NO_PAD.encode(format!("audit:{n}"))),
            "audit:[-+0-9]{0,21}".prop_map(|s| URL_SAFE_NO_PAD.encode(s)),
        ]) {
            check_audit_cursor(&s)
        }

        #[test]
        fn client_messages(text in prop_oneof![client_message(), any::<String>()]) {
            check_client_message(&text)
        }
    }

    #[test]
    fn the_checks_see_what_they_look_for() {
        check_audit_cursor(&crate::audit::encode_cursor(42));
        check_client_message(r#"{"subscribe": ["00000000-0000-0000-0000-000000000001"], "since": 3}"#);
        check_client_message(r#"{"subscribe": [], "evil": "\"}"}"#);
    }
}
