//! Arbitrary bytes as an access token: never accepted (docs/SECURITY.md JW-8).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| auth::fuzz::check_token_bytes(data));
