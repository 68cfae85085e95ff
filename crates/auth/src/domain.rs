//! The auth service's rules, with no I/O: the password policy of NIST SP 800-63B-4 (length in
//! code points, no composition rules, a breached-password list shipped with the binary, and
//! context words) and the delays after failed logins.

use std::collections::HashSet;
use std::sync::LazyLock;

/// Why a password was refused; `code` is stable for clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: &'static str,
    pub message: String,
}

/// The breached-password list shipped with the binary (see the file's header for its source).
static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../data/common-passwords.txt").lines().filter(|l| !l.starts_with('#') && !l.is_empty()).collect()
});

/// Shortest list entry that counts as a piece of a composed password.
const MIN_PIECE: usize = 4;

/// Whether `s` repeats a unit of at most four characters (`abcabcabc…`, `1212…`, `zzzz…`).
fn is_short_period(s: &[char]) -> bool {
    (1..=4).any(|p| s.len() >= 2 * p && s.iter().enumerate().all(|(i, c)| *c == s[i % p]))
}

/// Whether `s` is a run of consecutive characters, up or down (`abcdef…`, `987…`), digits
/// wrapping around (`1234567890123…`).
fn is_sequence(s: &[char]) -> bool {
    let digits = s.iter().all(char::is_ascii_digit);
    let step = |d: i64| {
        s.windows(2).all(|w| {
            let diff = i64::from(u32::from(w[1])) - i64::from(u32::from(w[0]));
            if digits { diff.rem_euclid(10) == d.rem_euclid(10) } else { diff == d }
        })
    };
    s.len() >= 4 && (step(1) || step(-1))
}

/// Whether `folded` (lowercase, no whitespace) is a known breached password, or is made of them:
/// one or two list entries, or one entry repeated, with digits or symbols around; or a short
/// repeated unit or a plain sequence.
fn is_breached(folded: &str) -> bool {
    let chars: Vec<char> = folded.chars().collect();
    if COMMON.contains(folded) || is_short_period(&chars) || is_sequence(&chars) {
        return true;
    }
    let core = folded.trim_matches(|c: char| !c.is_alphabetic());
    if !core.is_empty() && COMMON.contains(core) {
        return true;
    }
    let core_chars: Vec<char> = core.chars().collect();
    let n = core_chars.len();
    // One entry repeated (`dragondragondragon`).
    let repeated = (MIN_PIECE..=n / 2).filter(|p| n.is_multiple_of(*p)).any(|p| {
        let unit: String = core_chars[..p].iter().collect();
        COMMON.contains(unit.as_str()) && core_chars.chunks(p).all(|c| c == &core_chars[..p])
    });
    // Two entries, maybe joined by digits or symbols (`baseball4football`).
    let two = core.char_indices().map(|(i, _)| i).filter(|&i| i >= MIN_PIECE && core.len() - i >= MIN_PIECE).any(|i| {
        let (a, b) = core.split_at(i);
        let a_trim = a.trim_end_matches(|c: char| !c.is_alphabetic());
        COMMON.contains(a) && COMMON.contains(b) || COMMON.contains(a_trim) && COMMON.contains(b)
    });
    repeated || two
}

pub fn check_password(password: &str, min_len: usize, context: &[&str]) -> Result<(), Rejection> {
    let len = password.chars().count();
    if len < min_len {
        return Err(Rejection { code: "too_short", message: format!("must be at least {min_len} characters") });
    }
    if len > 256 {
        return Err(Rejection { code: "too_long", message: "must be at most 256 characters".into() });
    }
    let folded: String = password.to_lowercase().chars().filter(|c| !c.is_whitespace()).collect();
    if is_breached(&folded) {
        return Err(Rejection {
            code: "breached",
            message: "is a common or breached password, or made of them; choose another".into(),
        });
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

    #[test]
    fn breached_passwords_and_their_compositions_are_refused() {
        for weak in [
            "passwordpassword1",
            "PasswordPassword!",
            "iloveyouiloveyou",
            "dragondragondragon",
            "baseball4football!",
            "1qaz2wsx3edc4rfv",
            "qwertyuiop12345",
            "123456789012345",
            "abcdefghijklmnop",
            "abcabcabcabcabcabc",
            "!!!2024sunshine2024!!!",
            "monkey123456789",
        ] {
            assert_eq!(check(weak, 15, &[]).map_err(|r| r.code), Err("breached"), "{weak}");
        }
        for fine in [
            "correct horse battery staple",
            "Tr0ub4dor&3 is not enough here",
            "lunar-otter-backpack-92",
            "🦀🐍🦊🐢🦉🐙🦋🐝🦄🐬🦜🐞🦩🐳🦔",
            "my grandmother knits purple socks",
        ] {
            assert_eq!(check(fine, 15, &[]).map_err(|r| r.code), Ok(()), "{fine}");
        }
    }

    #[test]
    fn the_shipped_list_is_loaded() {
        assert!(super::COMMON.len() >= 29_000, "{}", super::COMMON.len());
        assert!(super::COMMON.contains("password") && super::COMMON.contains("dragon"));
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

/// A display name as the users service accepts it (`users::domain::UserName`): 1–100 characters
/// after trimming, no control characters. Registration checks it itself, so that a taken address
/// is refused for the same names as a new one.
pub fn check_name(raw: &str) -> Result<(), &'static str> {
    let s = raw.trim();
    let n = s.chars().count();
    if n == 0 || n > 100 {
        return Err("must be 1 to 100 characters");
    }
    if s.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    Ok(())
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
