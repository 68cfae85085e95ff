//! Device cookies (docs/SECURITY.md LG-1; OWASP "Slow Down Online Guessing Attacks with Device
//! Cookies"): a browser or client that once signed in to an account carries a signed proof of it,
//! and the per-account lock-out that failures from other clients caused does not apply to it.
//!
//! The cookie `__Host-trellis-device` (`Secure; HttpOnly; SameSite=Strict; Path=/`, like the
//! session cookies) holds `<nonce>.<signature>`: a random nonce and HMAC-SHA-256 under the pepper
//! of the account's throttle key and the nonce, so it is valid for that one account only and
//! cannot be forged without the pepper. It is set at every successful sign-in (password, or
//! password and second factor). A login that presents a valid one for the account it names is
//! throttled by that device's own failure counter instead of the account's: its own failures
//! still slow it down, a stranger's do not. One cookie per client: signing in to another account
//! replaces it.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use platform::crypto::{constant_time_eq, random_token};

use crate::passwords::PasswordHasher;

/// The cookie that holds a device's proof.
pub const DEVICE_COOKIE: &str = "__Host-trellis-device";
/// How long a device stays known after its last sign-in.
pub const DEVICE_COOKIE_LIFETIME: Duration = Duration::from_secs(180 * 86_400);

/// A new device cookie's value for the account with this throttle key.
pub fn issue(hasher: &PasswordHasher, account_key: &[u8; 32]) -> String {
    let nonce = random_token();
    let mac = URL_SAFE_NO_PAD.encode(hasher.device_mac(account_key, &nonce));
    format!("{nonce}.{mac}")
}

/// The nonce of `value` when it is a valid device cookie for this account; `None` for anything
/// else (another account's, a forged or a malformed one).
pub fn verify<'a>(hasher: &PasswordHasher, account_key: &[u8; 32], value: &'a str) -> Option<&'a str> {
    let (nonce, mac) = value.split_once('.')?;
    if nonce.is_empty() || nonce.len() > 64 {
        return None;
    }
    let presented = URL_SAFE_NO_PAD.decode(mac).ok()?;
    constant_time_eq(&presented, &hasher.device_mac(account_key, nonce)).then_some(nonce)
}

/// The device cookie the request carries, if any (unverified).
pub fn from_headers(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == DEVICE_COOKIE)
        .map(|(_, value)| value.trim().to_string())
        .filter(|v| !v.is_empty() && v.len() <= 256)
}

/// The `Set-Cookie` value that stores `value`.
pub fn set_cookie(value: &str) -> Option<HeaderValue> {
    let age = DEVICE_COOKIE_LIFETIME.as_secs();
    HeaderValue::from_str(&format!("{DEVICE_COOKIE}={value}; Path=/; Max-Age={age}; Secure; HttpOnly; SameSite=Strict"))
        .ok()
}

#[cfg(test)]
mod tests {
    use secrecy::SecretSlice;

    use super::*;

    fn hasher(pepper: u8) -> PasswordHasher {
        PasswordHasher::new(SecretSlice::from(vec![pepper; 32]), 4, 1, 1)
    }

    #[test]
    fn a_cookie_is_valid_for_its_account_only() {
        let h = hasher(1);
        let (a, b) = (h.account_key("a@example.com"), h.account_key("b@example.com"));
        let cookie = issue(&h, &a);
        let nonce = verify(&h, &a, &cookie).expect("valid for its account");
        assert!(cookie.starts_with(nonce));
        assert_eq!(verify(&h, &b, &cookie), None, "another account's cookie");
        assert_eq!(verify(&hasher(2), &a, &cookie), None, "another pepper");
        assert_ne!(issue(&h, &a), cookie, "each sign-in gets a new nonce");
    }

    #[test]
    fn forged_and_malformed_cookies_are_refused() {
        let h = hasher(1);
        let a = h.account_key("a@example.com");
        let cookie = issue(&h, &a);
        let (nonce, mac) = cookie.split_once('.').unwrap();
        for bad in [
            format!("{nonce}x.{mac}"),
            format!("{nonce}.{}", &mac[1..]),
            nonce.to_string(),
            format!(".{mac}"),
            format!("{nonce}.%%%"),
            String::new(),
        ] {
            assert_eq!(verify(&h, &a, &bad), None, "{bad}");
        }
    }

    #[test]
    fn the_cookie_is_read_and_set_with_every_protection() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; __Host-trellis-device=n.m; b=2"));
        assert_eq!(from_headers(&headers).as_deref(), Some("n.m"));
        let set = set_cookie("n.m").unwrap();
        let s = set.to_str().unwrap();
        assert!(s.starts_with("__Host-trellis-device=n.m; Path=/;"), "{s}");
        for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Max-Age="] {
            assert!(s.contains(attr), "{s} lacks {attr}");
        }
        assert!(!s.contains("Domain"));
    }
}
