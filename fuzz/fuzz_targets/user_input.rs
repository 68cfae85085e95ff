//! Email addresses, display names and the preferences document.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    users::fuzz::check_email(&s);
    users::fuzz::check_name(&s);
    users::fuzz::check_preferences(data);
});
