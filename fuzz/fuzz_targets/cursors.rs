//! Every list cursor (projects, tasks, search, users, audit log): decoded or refused with 422,
//! one spelling per cursor where it is ours to encode.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    let Ok(s) = std::str::from_utf8(rest) else { return };
    match which % 5 {
        0 => projects::fuzz::check_project_cursor(s),
        1 => projects::fuzz::check_task_cursor(s),
        2 => projects::fuzz::check_search_cursor(s),
        3 => users::fuzz::check_user_cursor(s),
        _ => worker::fuzz::check_audit_cursor(s),
    }
});
