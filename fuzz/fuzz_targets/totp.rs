//! TOTP codes (six digits of a step within one of now, after the last one used) and recovery codes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    const N: usize = auth::totp::SECRET_LEN;
    if data.len() < N + 9 {
        return;
    }
    let (secret, rest) = data.split_at(N);
    let (now, rest) = rest.split_at(8);
    let (flag, code) = rest.split_at(1);
    let mut s = [0u8; N];
    s.copy_from_slice(secret);
    let now = i64::from_le_bytes(now.try_into().unwrap_or_default());
    let last = (flag[0] & 1 == 1).then(|| now.wrapping_div(30) + i64::from(flag[0] >> 1) - 64);
    let code = String::from_utf8_lossy(code);
    auth::fuzz::check_totp(s, &code, now, last);
    auth::fuzz::check_recovery_code(&code);
});
