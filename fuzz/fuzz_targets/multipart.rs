//! An upload's file name and bytes as the multipart handler treats them: the name sanitizer, the
//! download header made from it, type sniffing, and the text check over pieces of any size.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&len, rest)) = data.split_first() else { return };
    let (name, content) = rest.split_at(usize::from(len).min(rest.len()));
    projects::fuzz::check_attachment(&String::from_utf8_lossy(name), content);
    let cuts: Vec<usize> = name.iter().map(|b| usize::from(*b)).collect();
    projects::fuzz::check_text_pieces(content, &cuts);
});
