//! A live-update client message (`GET /api/ws`): parsed with known fields only, or answered with
//! one well-formed error frame.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        worker::fuzz::check_client_message(s);
    }
});
