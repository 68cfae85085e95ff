//! The auth service's rules, with no I/O: the password policy of NIST SP 800-63B-4 (length in
//! code points, no composition rules, a blocklist and context words). The full breached-password
//! list comes with the auth issue.

/// Why a password was refused; `code` is stable for clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: &'static str,
    pub message: String,
}

/// Common passwords that pass the length rule; a starting set, extended later.
const BLOCKLIST: &[&str] = &[
    "passwordpassword",
    "passwordpassword1",
    "123456789012345",
    "1234567890123456",
    "qwertyuiopasdfgh",
    "iloveyouiloveyou",
    "correcthorsebatterystaple",
    "aaaaaaaaaaaaaaa",
];

pub fn check_password(password: &str, min_len: usize, context: &[&str]) -> Result<(), Rejection> {
    let len = password.chars().count();
    if len < min_len {
        return Err(Rejection { code: "too_short", message: format!("must be at least {min_len} characters") });
    }
    if len > 256 {
        return Err(Rejection { code: "too_long", message: "must be at most 256 characters".into() });
    }
    let folded: String = password.to_lowercase().chars().filter(|c| !c.is_whitespace()).collect();
    let first = folded.chars().next();
    let one_repeated_character = folded.chars().all(|c| Some(c) == first);
    if BLOCKLIST.contains(&folded.as_str()) || one_repeated_character {
        return Err(Rejection { code: "breached", message: "is too common; choose another".into() });
    }
    for word in context.iter().map(|w| w.to_lowercase()).filter(|w| w.chars().count() >= 4) {
        if folded.contains(&word) {
            return Err(Rejection {
                code: "context",
                message: "must not contain your name, email or the product name".into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_password as check;

    #[test]
    fn length_counts_code_points() {
        assert_eq!(check("a-b-c-d-e-f-g-", 15, &[]).unwrap_err().code, "too_short");
        assert!(check("a-b-c-d-e-f-g-h", 15, &[]).is_ok());
        let fifteen_emoji = "🦀🐍🦊🐢🦉🐙🦋🐝🦄🐬🦜🐞🦩🐳🦔";
        assert!(check(fifteen_emoji, 15, &[]).is_ok(), "15 emoji are 15 characters");
        assert_eq!(check(&fifteen_emoji[4..], 15, &[]).unwrap_err().code, "too_short");
        assert_eq!(check(&"xy".repeat(129), 15, &[]).unwrap_err().code, "too_long");
    }

    #[test]
    fn blocklist_and_context_words() {
        assert_eq!(check("passwordpassword1", 15, &[]).unwrap_err().code, "breached");
        assert_eq!(check("zzzzzzzzzzzzzzzzzz", 15, &[]).unwrap_err().code, "breached");
        assert_eq!(check("trellis-rocks-2026!", 15, &["trellis"]).unwrap_err().code, "context");
        assert_eq!(check("my name is Lovelace ok", 15, &["lovelace"]).unwrap_err().code, "context");
        assert!(check("correct horse battery stapler", 15, &["ada"]).is_ok());
    }
}

/// Failed logins allowed before any delay.
pub const FREE_FAILURES: u32 = 5;
const FIRST_DELAY_SECS: i64 = 30;
const MAX_DELAY_SECS: i64 = 3600;

/// How long an account must wait after its `consecutive`-th failed login (NIST SP 800-63B-4
/// §3.2.2): nothing for the first few, then 30 s doubling up to one hour. It never locks anyone
/// out for good, and at most a few dozen guesses a day get through.
pub fn login_delay(consecutive: u32) -> time::Duration {
    if consecutive < FREE_FAILURES {
        return time::Duration::ZERO;
    }
    let doublings = (consecutive - FREE_FAILURES).min(20);
    time::Duration::seconds((FIRST_DELAY_SECS << doublings).min(MAX_DELAY_SECS))
}

/// The form of an email address used to key login throttling (matches the users service's
/// normalization: trimmed, lowercased).
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

#[cfg(test)]
mod throttle_tests {
    use super::*;

    #[test]
    fn delays_start_after_the_free_failures_and_are_capped() {
        for n in 0..FREE_FAILURES {
            assert_eq!(login_delay(n), time::Duration::ZERO);
        }
        assert_eq!(login_delay(5), time::Duration::seconds(30));
        assert_eq!(login_delay(6), time::Duration::seconds(60));
        assert_eq!(login_delay(11), time::Duration::seconds(1920));
        assert_eq!(login_delay(12), time::Duration::hours(1));
        assert_eq!(login_delay(u32::MAX), time::Duration::hours(1), "never more than an hour");
    }

    #[test]
    fn a_hundred_guesses_take_days() {
        let total: i64 = (0..100).map(|n| login_delay(n).whole_seconds()).sum();
        assert!(total > 3 * 86_400, "100 consecutive failures must take more than 3 days, took {total} s");
    }

    #[test]
    fn emails_normalize_like_the_users_service() {
        assert_eq!(normalize_email("  Ada@Example.COM "), "ada@example.com");
    }
}
