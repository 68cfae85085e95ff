//! TOTP second factor (RFC 6238 over RFC 4226 HOTP) and single-use recovery codes.
//!
//! Pure functions only: no clock, storage or HTTP. Callers pass the server clock
//! (docs/SECURITY.md TO-7), persist the returned time step as the user's last accepted step and
//! pass it back on the next verification (TO-3), and store the seed sealed (TO-1) and the
//! recovery codes as [`hash_recovery_code`] hashes (TO-5). Throttling (TO-4) is the caller's.

use std::fmt;

use aws_lc_rs::hmac;
use platform::crypto::{constant_time_eq, random_bytes, sha256};
use secrecy::zeroize::Zeroize;

/// Length of a TOTP seed in bytes: 160 bits, the size RFC 4226 §4 recommends.
pub const SECRET_LEN: usize = 20;
/// Length of a TOTP step in seconds.
pub const PERIOD_SECS: i64 = 30;
/// Number of digits in a TOTP code.
pub const DIGITS: usize = 6;
/// How many steps before and after the current one a code may come from.
pub const WINDOW_STEPS: i64 = 1;
/// How many recovery codes [`new_recovery_codes`] returns.
pub const RECOVERY_CODE_COUNT: usize = 10;

/// `10^DIGITS`, the modulus of the dynamic-truncation result.
const CODE_MODULUS: u32 = 1_000_000;
/// Characters of a recovery code before formatting (four groups of five).
const RECOVERY_CODE_CHARS: usize = 20;
/// Characters per hyphen-separated recovery code group.
const RECOVERY_GROUP_LEN: usize = 5;
/// Lowercase recovery-code alphabet without look-alikes (`0`, `1`, `i`, `l`, `o`): 31 symbols.
const RECOVERY_ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";
/// RFC 4648 §6 base32 alphabet.
const BASE32_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A 160-bit TOTP seed. Its `Debug` output is redacted and its bytes are zeroed on drop.
#[derive(Clone)]
pub struct TotpSecret([u8; SECRET_LEN]);

impl TotpSecret {
    /// A fresh seed from the operating system's CSPRNG.
    pub fn generate() -> Self {
        Self(random_bytes::<SECRET_LEN>())
    }

    /// Wraps an existing seed, e.g. one just unsealed from storage.
    pub fn from_bytes(bytes: [u8; SECRET_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw seed, for sealing before storage. Never log or return it to a client.
    pub fn as_bytes(&self) -> &[u8; SECRET_LEN] {
        &self.0
    }

    /// The seed as RFC 4648 base32 without padding (32 characters), as authenticator apps expect.
    pub fn to_base32(&self) -> String {
        base32_encode(&self.0)
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

impl Drop for TotpSecret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// RFC 4648 §6 base32 encoding of `data`, upper case, without `=` padding.
fn base32_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits: u32 = 0;
    for &byte in data {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32_ALPHABET[((buffer >> bits) & 0x1f) as usize]));
        }
        // Keep only the bits not yet emitted so the buffer never overflows.
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(BASE32_ALPHABET[((buffer << (5 - bits)) & 0x1f) as usize]));
    }
    out
}

/// Percent-encodes everything except RFC 3986 unreserved characters (so `:`, `@`, `&`, `/`, `?`,
/// `#`, `%`, `+` and spaces are all escaped, spaces as `%20`).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &byte in s.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The provisioning URI (Google Authenticator Key Uri Format) for enrolment QR codes:
/// `otpauth://totp/Issuer:account?secret=...&issuer=...&algorithm=SHA1&digits=6&period=30`.
/// `issuer` and `account` are percent-encoded in both the label and the parameter, so a `:` in
/// either cannot split the label. The result contains the secret: show it once, never log it.
pub fn otpauth_uri(secret: &TotpSecret, issuer: &str, account: &str) -> String {
    let issuer = percent_encode(issuer);
    let account = percent_encode(account);
    let secret = secret.to_base32();
    format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}\
         &algorithm=SHA1&digits={DIGITS}&period={PERIOD_SECS}"
    )
}

/// The TOTP time step containing `unix_time` (floor division, so negative times round down).
fn step_of(unix_time: i64) -> i64 {
    unix_time.div_euclid(PERIOD_SECS)
}

/// The RFC 4226 HOTP value for counter `step`: HMAC-SHA-1, dynamic truncation, mod 10^6.
fn hotp(secret: &TotpSecret, step: u64) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &secret.0);
    let tag = hmac::sign(&key, &step.to_be_bytes());
    let mac = tag.as_ref();
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([mac[offset] & 0x7f, mac[offset + 1], mac[offset + 2], mac[offset + 3]]);
    binary % CODE_MODULUS
}

/// The code for step `step` as six zero-padded ASCII digits.
fn code_for_step(secret: &TotpSecret, step: u64) -> String {
    format!("{:0width$}", hotp(secret, step), width = DIGITS)
}

/// The six-digit TOTP code valid at `unix_time` (seconds since the Unix epoch, from the server
/// clock). Times before the epoch are clamped to step 0.
pub fn code_at(secret: &TotpSecret, unix_time: i64) -> String {
    code_for_step(secret, u64::try_from(step_of(unix_time)).unwrap_or(0))
}

/// Checks `code` against the steps `now - 1`, `now` and `now + 1` around `now_unix`, which must be
/// the server clock (never a client-supplied time).
///
/// Returns the matched time step, which the caller must persist and pass back as
/// `last_used_step` next time: any step `<= last_used_step` is rejected, so each code works once
/// (RFC 6238 §5.2). `code` must be exactly six ASCII digits after trimming surrounding
/// whitespace. Candidates are compared in constant time and all of them are always computed;
/// if several match, the latest step is returned.
pub fn verify(secret: &TotpSecret, code: &str, now_unix: i64, last_used_step: Option<i64>) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now_step = step_of(now_unix);
    let mut matched = None;
    for delta in -WINDOW_STEPS..=WINDOW_STEPS {
        let Some(step) = now_step.checked_add(delta) else { continue };
        let Ok(counter) = u64::try_from(step) else { continue };
        let is_match = constant_time_eq(code_for_step(secret, counter).as_bytes(), code.as_bytes());
        let is_fresh = last_used_step.is_none_or(|last| step > last);
        if is_match && is_fresh {
            matched = Some(step);
        }
    }
    matched
}

/// Ten fresh recovery codes from the CSPRNG, each `xxxxx-xxxxx-xxxxx-xxxxx`: 20 characters from a
/// 31-symbol lowercase alphabet without look-alikes (about 99 bits each), all distinct. Show
/// them to the user once and store only [`hash_recovery_code`] of each; each is single-use.
pub fn new_recovery_codes() -> Vec<String> {
    let mut codes: Vec<String> = Vec::with_capacity(RECOVERY_CODE_COUNT);
    while codes.len() < RECOVERY_CODE_COUNT {
        let code = new_recovery_code();
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    codes
}

/// One recovery code, drawn by rejection sampling so every symbol is equally likely.
fn new_recovery_code() -> String {
    let alphabet_len = RECOVERY_ALPHABET.len();
    // Largest multiple of the alphabet size that fits in a byte; bytes at or above it are redrawn.
    let limit = 256 - 256 % alphabet_len;
    let mut chars = Vec::with_capacity(RECOVERY_CODE_CHARS);
    while chars.len() < RECOVERY_CODE_CHARS {
        for byte in random_bytes::<32>() {
            let byte = usize::from(byte);
            if byte < limit && chars.len() < RECOVERY_CODE_CHARS {
                chars.push(RECOVERY_ALPHABET[byte % alphabet_len]);
            }
        }
    }
    let groups: Vec<&str> =
        chars.chunks(RECOVERY_GROUP_LEN).map(|group| std::str::from_utf8(group).unwrap_or_default()).collect();
    groups.join("-")
}

/// The canonical form of a typed recovery code: lowercase, with hyphens and whitespace removed.
pub fn normalize_recovery_code(code: &str) -> String {
    code.chars().filter(|c| *c != '-' && !c.is_whitespace()).flat_map(char::to_lowercase).collect()
}

/// SHA-256 of [`normalize_recovery_code`]`(code)`: the only form in which recovery codes are
/// stored, so `"ABCDE FGHJK..."` and `"abcde-fghjk-..."` hash the same.
pub fn hash_recovery_code(code: &str) -> [u8; 32] {
    sha256(normalize_recovery_code(code).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC 6238 Appendix B SHA-1 seed.
    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(*b"12345678901234567890")
    }

    /// A time in the middle of a step, away from step boundaries.
    const T: i64 = 1_111_111_111;

    #[test]
    fn rfc6238_appendix_b_sha1_vectors() {
        let secret = rfc_secret();
        let vectors = [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ];
        for (time, expected) in vectors {
            assert_eq!(code_at(&secret, time), expected, "time {time}");
            assert_eq!(verify(&secret, expected, time, None), Some(time / PERIOD_SECS), "time {time}");
        }
    }

    #[test]
    fn base32_rfc4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ];
        for (input, expected) in vectors {
            assert_eq!(base32_encode(input.as_bytes()), expected, "input {input:?}");
        }
        assert_eq!(rfc_secret().to_base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }

    #[test]
    fn generated_secret_is_160_bits_and_random() {
        let a = TotpSecret::generate();
        let b = TotpSecret::generate();
        assert_eq!(a.as_bytes().len(), 20);
        assert_eq!(a.to_base32().len(), 32);
        assert_ne!(a.as_bytes(), b.as_bytes());
    }

    #[test]
    fn debug_is_redacted() {
        let secret = rfc_secret();
        let shown = format!("{secret:?}");
        assert_eq!(shown, "TotpSecret(<redacted>)");
        assert!(!shown.contains(&secret.to_base32()));
        assert!(!shown.contains("1234"));
    }

    #[test]
    fn window_is_one_step_each_way() {
        let secret = rfc_secret();
        let step = T / PERIOD_SECS;
        assert_eq!(verify(&secret, &code_at(&secret, T), T, None), Some(step));
        assert_eq!(verify(&secret, &code_at(&secret, T - 30), T, None), Some(step - 1));
        assert_eq!(verify(&secret, &code_at(&secret, T + 30), T, None), Some(step + 1));
        assert_eq!(verify(&secret, &code_at(&secret, T - 60), T, None), None);
        assert_eq!(verify(&secret, &code_at(&secret, T + 60), T, None), None);
    }

    #[test]
    fn replay_is_rejected() {
        let secret = rfc_secret();
        let step = T / PERIOD_SECS;
        let code = code_at(&secret, T);
        let used = verify(&secret, &code, T, None);
        assert_eq!(used, Some(step));
        // Same code again, same step or later in the same step.
        assert_eq!(verify(&secret, &code, T, used), None);
        assert_eq!(verify(&secret, &code, T + 5, used), None);
        // An older, still in-window step after a newer one was used.
        assert_eq!(verify(&secret, &code_at(&secret, T - 30), T, used), None);
        // A later step is still accepted.
        assert_eq!(verify(&secret, &code_at(&secret, T + 30), T, used), Some(step + 1));
        // An earlier last-used step does not block the current one.
        assert_eq!(verify(&secret, &code, T, Some(step - 1)), Some(step));
    }

    #[test]
    fn malformed_codes_are_rejected() {
        let secret = rfc_secret();
        let good = code_at(&secret, T);
        assert_eq!(good, "050471");
        for bad in ["12345", "1234567", "12a456", "", "      ", "050 471", "+50471", "05047１", "0504711", "050471x"] {
            assert_eq!(verify(&secret, bad, T, None), None, "code {bad:?}");
        }
        // Surrounding whitespace is trimmed.
        assert_eq!(verify(&secret, " 050471\n", T, None), Some(T / PERIOD_SECS));
    }

    #[test]
    fn negative_time_is_handled() {
        let secret = rfc_secret();
        assert_eq!(code_at(&secret, -1), code_at(&secret, 0));
        // At step 0 only steps 0 and 1 exist; step -1 is skipped, not wrapped.
        assert_eq!(verify(&secret, &code_at(&secret, 0), 0, None), Some(0));
        assert_eq!(verify(&secret, &code_at(&secret, 0), i64::MIN, None), None);
        // The far end of the clock neither overflows nor panics.
        let last = code_at(&secret, i64::MAX);
        assert_eq!(verify(&secret, &last, i64::MAX, None), Some(i64::MAX / PERIOD_SECS));
    }

    #[test]
    fn otpauth_uri_format_and_escaping() {
        let secret = rfc_secret();
        assert_eq!(
            otpauth_uri(&secret, "Trellis", "alice@example.com"),
            "otpauth://totp/Trellis:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Trellis&algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(
            otpauth_uri(&secret, "Acme & Co: Dev", "bob smith/x?y#z+%"),
            "otpauth://totp/Acme%20%26%20Co%3A%20Dev:bob%20smith%2Fx%3Fy%23z%2B%25\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme%20%26%20Co%3A%20Dev\
             &algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(percent_encode("é"), "%C3%A9");
        assert_eq!(percent_encode("a-b.c_d~e"), "a-b.c_d~e");
    }

    #[test]
    fn recovery_codes_are_distinct_and_well_formed() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        for code in &codes {
            assert_eq!(code.len(), 23, "{code}");
            let groups: Vec<&str> = code.split('-').collect();
            assert_eq!(groups.len(), 4, "{code}");
            for group in groups {
                assert_eq!(group.len(), 5, "{code}");
                assert!(group.bytes().all(|b| RECOVERY_ALPHABET.contains(&b)), "{code}");
            }
        }
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);
        assert_ne!(new_recovery_codes(), codes);
    }

    #[test]
    fn recovery_alphabet_has_no_look_alikes() {
        assert_eq!(RECOVERY_ALPHABET.len(), 31);
        for c in b"01ilo".iter().chain(b"ABCXYZ") {
            assert!(!RECOVERY_ALPHABET.contains(c));
        }
    }

    #[test]
    fn recovery_code_hashing_normalizes() {
        let canonical = "abcde-fghjk-mnpqr-stuvw";
        assert_eq!(normalize_recovery_code(canonical), "abcdefghjkmnpqrstuvw");
        assert_eq!(normalize_recovery_code(" ABCDE FGHJK\tMNPQR-STUVW \n"), "abcdefghjkmnpqrstuvw");
        let expected = hash_recovery_code(canonical);
        assert_eq!(expected, sha256(b"abcdefghjkmnpqrstuvw"));
        assert_eq!(hash_recovery_code("ABCDE FGHJK MNPQR STUVW"), expected);
        assert_eq!(hash_recovery_code("abcdefghjkmnpqrstuvw"), expected);
        assert_ne!(hash_recovery_code("abcde-fghjk-mnpqr-stuvx"), expected);
        let fresh = new_recovery_codes();
        assert_eq!(hash_recovery_code(&fresh[0].to_uppercase().replace('-', " ")), hash_recovery_code(&fresh[0]));
    }
}
