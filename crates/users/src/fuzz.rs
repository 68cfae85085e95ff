//! Property checks of the users service's parsers of untrusted input: the search cursor, email
//! addresses and names, and the preferences document.
//!
//! Each `check_*` takes arbitrary input, must not panic, and asserts an invariant. The proptest
//! suites below run them in every test run (`PROPTEST_CASES`, 256 by default); the cargo-fuzz
//! targets in `fuzz/` call the same functions for the longer runs (docs/SECURITY.md SC-3).
#![allow(clippy::expect_used, reason = "a check's panic is its verdict: it runs in tests and under cargo-fuzz only")]

use crate::domain::{Email, UserName};
use crate::service::{decode_cursor, encode_cursor};

/// A user search cursor is the base64url of an id: what decodes encodes back to the same text.
pub fn check_user_cursor(input: &str) {
    if let Some(id) = decode_cursor(input) {
        assert_eq!(encode_cursor(id), input);
    }
}

/// An accepted email address is normalized once and for all (parsing it again gives itself, so
/// one address has one stored and one looked-up form), has exactly one `@` between a 1–64 byte
/// local part and a dotted domain, at most 254 bytes and no whitespace or control characters.
pub fn check_email(raw: &str) {
    let Ok(email) = Email::parse(raw) else { return };
    let s = email.as_str();
    assert_eq!(Email::parse(s).as_ref().map(Email::as_str), Ok(s), "{raw:?} is not normalized once and for all");
    assert!(s.len() <= 254);
    let (local, domain) = s.split_once('@').expect("an @");
    assert!(!domain.contains('@'));
    assert!((1..=64).contains(&local.len()));
    assert!(domain.split('.').count() >= 2 && domain.split('.').all(|l| (1..=63).contains(&l.len())));
    assert!(!s.chars().any(|c| c.is_whitespace() || c.is_control()));
}

/// A display name: 1–100 characters, trimmed, no control characters, parsed once and for all.
pub fn check_name(raw: &str) {
    let Ok(name) = UserName::parse(raw) else { return };
    let s = name.as_str();
    assert!((1..=100).contains(&s.chars().count()) && s.trim() == s && !s.chars().any(char::is_control));
    assert_eq!(UserName::parse(s).as_ref().map(UserName::as_str), Ok(s));
}

/// The preferences document (`PUT /api/users/me/preferences`): any JSON is either refused with
/// named fields or gives a document that, sent again, is accepted as itself.
pub fn check_preferences(body: &[u8]) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else { return };
    match crate::preferences::parse(&value) {
        Ok(prefs) => {
            let again = serde_json::to_value(&prefs).expect("serializable");
            assert_eq!(crate::preferences::parse(&again).as_ref(), Ok(&prefs));
        }
        Err(errors) => assert!(!errors.is_empty() && errors.iter().all(|e| !e.field.is_empty())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use proptest::prelude::*;

    fn preferences_json() -> impl Strategy<Value = String> {
        let value = prop_oneof![
            Just("\"light\"".to_string()),
            Just("\"dark\"".to_string()),
            Just("\"en-GB\"".to_string()),
            Just("\"Europe/Paris\"".to_string()),
            Just("true".to_string()),
            Just("null".to_string()),
            Just("{\"mentioned\": false, \"assigned\": true}".to_string()),
            any::<String>().prop_map(|s| serde_json::Value::String(s).to_string()),
            "[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8}){0,3}".prop_map(|s| format!("\"{s}\"")),
        ];
        let key = "(theme|locale|timezone|notifications|x)";
        proptest::collection::vec((key, value), 0..5).prop_map(|pairs| {
            let body: Vec<String> = pairs.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
            format!("{{{}}}", body.join(", "))
        })
    }

    proptest! {
        #[test]
        fn user_cursors(s in prop_oneof![
            any::<String>(),
            proptest::collection::vec(any::<u8>(), 0..24).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
        ]) {
            check_user_cursor(&s)
        }

        #[test]
        fn emails(raw in prop_oneof![
            any::<String>(),
            "[ a-zA-Z0-9.@_+\\-\u{130}\u{1e9e}\u{212a}]{0,40}",
            "[a-zA-Z\u{130}]{1,10}@[a-zA-Z\u{212a}]{1,10}\\.[a-z]{2,4}",
        ]) {
            check_email(&raw)
        }

        #[test]
        fn names(raw in any::<String>()) { check_name(&raw) }

        #[test]
        fn preferences(body in prop_oneof![preferences_json(), any::<String>()]) {
            check_preferences(body.as_bytes())
        }
    }

    #[test]
    fn the_checks_see_what_they_look_for() {
        check_email("  Ada@Example.COM ");
        assert!(Email::parse("a@b@c.d").is_err());
        check_preferences(br#"{"theme": "dark", "notifications": {"mentioned": false}}"#);
        check_user_cursor(&encode_cursor(uuid::Uuid::nil()));
    }
}
