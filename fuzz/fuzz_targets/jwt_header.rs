//! Any JSON header over a token signed by one of our keys: accepted only with `typ: at+jwt`, that
//! key's kid and algorithm, and no header pointing at another key; never with `alg: none`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&key, header)) = data.split_first() else { return };
    if let Ok(header) = serde_json::from_slice::<serde_json::Value>(header) {
        auth::fuzz::check_token_header(key, &header);
    }
});
