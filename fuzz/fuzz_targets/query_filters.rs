//! The task list's query string (filters, sort, page, cursor) and the search query.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    projects::fuzz::check_task_list_query(s);
    let (q, text) = s.split_once('\u{0}').unwrap_or((s, s));
    projects::fuzz::check_search_query(q, text);
});
