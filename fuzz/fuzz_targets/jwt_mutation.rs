//! One of our tokens with one byte changed: accepted only if the signed bytes did not change.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let [key, p0, p1, byte, ..] = *data {
        auth::fuzz::check_token_mutation(key, u16::from_le_bytes([p0, p1]), byte);
    }
});
