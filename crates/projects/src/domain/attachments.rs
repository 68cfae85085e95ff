//! Attachment rules, pure: the file name a client gives (sanitized, never part of an object
//! key), the allowlist of file types checked against both the magic bytes and the extension,
//! the incremental UTF-8 check of text files, and the `Content-Disposition` of a download.
//!
//! # Allowlist
//! | extension | type (sniffed from the content) |
//! |---|---|
//! | `png`, `jpg`/`jpeg`, `gif`, `webp` | the image type of the same name |
//! | `pdf` | `application/pdf` |
//! | `txt`/`text`/`log`, `md`/`markdown`, `csv` | UTF-8 text without control characters (but tab, CR, LF, FF), whole file checked |
//! | `docx`, `xlsx`, `pptx` | the Office Open XML type (a zip whose first entries are the document's) |
//! | `zip` | any zip, Office Open XML included; stored and served as opaque bytes, never unpacked |
//!
//! Anything else, a file whose content is of no type on the list, and a file whose content is
//! another type than its extension names (a `.png` that is a zip) are refused with 415. The
//! type stored and served is always the sniffed one, never the client's `Content-Type`.

use super::ValidationError;

/// How many leading bytes the type is sniffed from (Office Open XML needs the first three zip
/// entries; SVG-like tricks do not matter since text is checked whole).
pub const SNIFF_LEN: usize = 16 * 1024;

/// The longest file name kept, in characters.
pub const MAX_NAME_CHARS: usize = 255;

/// A client's file name made safe to store and show: its last path component only (so `../x`
/// and `C:\x` name `x`), trimmed, 1–255 characters, no control characters (so no CR or LF can
/// reach a header). It is only ever metadata; object keys are server-generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentName(String);

impl AttachmentName {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.chars().any(char::is_control) {
            return Err(ValidationError::ControlCharacter);
        }
        let base = raw.rsplit(['/', '\\']).next().unwrap_or_default().trim();
        if base.is_empty() || base == "." || base == ".." {
            return Err(ValidationError::Empty);
        }
        if base.chars().count() > MAX_NAME_CHARS {
            return Err(ValidationError::TooLong { max: MAX_NAME_CHARS });
        }
        Ok(Self(base.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lowercased extension, if the name has one.
    fn extension(&self) -> Option<String> {
        let (stem, ext) = self.0.rsplit_once('.')?;
        (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
    }
}

/// Why a file's type was refused (415).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypeRefusal {
    #[error("files named .{0} are not accepted")]
    Extension(String),
    #[error("files without an extension are not accepted")]
    NoExtension,
    #[error("the content is not of an accepted type")]
    UnknownContent,
    #[error("the content is {sniffed}, not what the extension .{extension} names")]
    Mismatch { extension: String, sniffed: String },
    #[error("a text file must be UTF-8 without control characters")]
    NotText,
}

const OOXML: [&str; 3] = [
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
];

/// What an extension allows: the binary types its content may sniff as, or text of a type.
enum Allowed {
    Binary(&'static [&'static str]),
    Text(&'static str),
}

fn allowed(ext: &str) -> Option<Allowed> {
    Some(match ext {
        "png" => Allowed::Binary(&["image/png"]),
        "jpg" | "jpeg" => Allowed::Binary(&["image/jpeg"]),
        "gif" => Allowed::Binary(&["image/gif"]),
        "webp" => Allowed::Binary(&["image/webp"]),
        "pdf" => Allowed::Binary(&["application/pdf"]),
        "docx" => Allowed::Binary(&[OOXML[0]]),
        "xlsx" => Allowed::Binary(&[OOXML[1]]),
        "pptx" => Allowed::Binary(&[OOXML[2]]),
        "zip" => Allowed::Binary(&["application/zip", OOXML[0], OOXML[1], OOXML[2]]),
        "txt" | "text" | "log" => Allowed::Text("text/plain; charset=utf-8"),
        "md" | "markdown" => Allowed::Text("text/markdown; charset=utf-8"),
        "csv" => Allowed::Text("text/csv; charset=utf-8"),
        _ => return None,
    })
}

/// The type of a file from its name and its first bytes (`head`, up to [`SNIFF_LEN`]): the
/// sniffed type when it is one the extension allows. `Ok((type, true))` for text, whose every
/// later byte must pass a [`TextCheck`] too.
pub fn classify(name: &AttachmentName, head: &[u8]) -> Result<(&'static str, bool), TypeRefusal> {
    let ext = name.extension().ok_or(TypeRefusal::NoExtension)?;
    let allowed = allowed(&ext).ok_or_else(|| TypeRefusal::Extension(ext.clone()))?;
    let sniffed = infer::get(head).map(|t| t.mime_type());
    match (allowed, sniffed) {
        (Allowed::Binary(types), Some(s)) => match types.iter().find(|t| **t == s) {
            Some(t) => Ok((t, false)),
            None => Err(TypeRefusal::Mismatch { extension: ext, sniffed: s.to_string() }),
        },
        (Allowed::Binary(_), None) => Err(TypeRefusal::UnknownContent),
        (Allowed::Text(_), Some(s)) => Err(TypeRefusal::Mismatch { extension: ext, sniffed: s.to_string() }),
        (Allowed::Text(t), None) => Ok((t, true)),
    }
}

/// Checks a text file piece by piece: UTF-8 throughout (a character may be split between
/// pieces) and no control characters but tab, LF, FF and CR.
#[derive(Debug, Default)]
pub struct TextCheck {
    /// The bytes of a character the last piece ended inside.
    pending: Vec<u8>,
}

impl TextCheck {
    /// Takes the next piece; `false` as soon as the text is not acceptable.
    pub fn feed(&mut self, piece: &[u8]) -> bool {
        let mut buf = std::mem::take(&mut self.pending);
        buf.extend_from_slice(piece);
        let valid = match std::str::from_utf8(&buf) {
            Ok(s) => s,
            // An incomplete last character (at most 3 bytes) waits for the next piece.
            Err(e) if e.error_len().is_none() && buf.len() - e.valid_up_to() < 4 => {
                self.pending = buf[e.valid_up_to()..].to_vec();
                // Cannot fail: `valid_up_to` bytes are valid UTF-8.
                std::str::from_utf8(&buf[..e.valid_up_to()]).unwrap_or_default()
            }
            Err(_) => return false,
        };
        !valid.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{c}'))
    }

    /// Whether the text ended on a whole character.
    pub fn finish(&self) -> bool {
        self.pending.is_empty()
    }
}

/// `Content-Disposition` for downloading `name` (RFC 6266): `attachment`, an ASCII fallback
/// `filename` with anything but safe printable ASCII replaced by `_`, and the exact name as
/// `filename*` in RFC 5987 UTF-8 percent-encoding. Neither part can carry a quote, a
/// backslash, CR or LF.
pub fn content_disposition(name: &AttachmentName) -> String {
    let fallback: String = name
        .as_str()
        .chars()
        .map(|c| if c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '%' | ';') || c == ' ' { c } else { '_' })
        .collect();
    let mut encoded = String::new();
    for b in name.as_str().bytes() {
        // RFC 5987 attr-char: ALPHA / DIGIT / "!#$&+-.^_`|~".
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn name(s: &str) -> AttachmentName {
        AttachmentName::parse(s).unwrap()
    }

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";
    const ZIP: &[u8] = b"PK\x03\x04\x14\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

    #[test]
    fn names_keep_their_last_component_and_refuse_control_characters() {
        assert_eq!(name("../../etc/passwd").as_str(), "passwd");
        assert_eq!(name("C:\\Users\\x\\report.pdf").as_str(), "report.pdf");
        assert_eq!(name("  été.txt ").as_str(), "été.txt");
        assert_eq!(AttachmentName::parse("a\r\nSet-Cookie: x.txt"), Err(ValidationError::ControlCharacter));
        for empty in ["", "  ", "dir/", "..", "a/.."] {
            assert_eq!(AttachmentName::parse(empty), Err(ValidationError::Empty), "{empty:?}");
        }
        assert!(AttachmentName::parse(&"x".repeat(256)).is_err());
        assert!(AttachmentName::parse(&"x".repeat(255)).is_ok());
    }

    #[test]
    fn types_are_sniffed_and_must_agree_with_the_extension() {
        assert_eq!(classify(&name("a.PNG"), PNG), Ok(("image/png", false)));
        assert_eq!(classify(&name("a.pdf"), b"%PDF-1.7\n"), Ok(("application/pdf", false)));
        assert_eq!(classify(&name("a.zip"), ZIP), Ok(("application/zip", false)));
        assert_eq!(classify(&name("notes.md"), "# hé\n".as_bytes()), Ok(("text/markdown; charset=utf-8", true)));
        assert!(matches!(classify(&name("a.png"), ZIP), Err(TypeRefusal::Mismatch { .. })));
        assert!(matches!(classify(&name("a.txt"), PNG), Err(TypeRefusal::Mismatch { .. })));
        assert!(matches!(classify(&name("a.jpg"), PNG), Err(TypeRefusal::Mismatch { .. })));
        assert_eq!(classify(&name("a.png"), b"just text"), Err(TypeRefusal::UnknownContent));
        assert_eq!(classify(&name("a.exe"), b"MZ\x90\0"), Err(TypeRefusal::Extension("exe".into())));
        assert_eq!(classify(&name("a.html"), b"<html>"), Err(TypeRefusal::Extension("html".into())));
        assert_eq!(classify(&name("Makefile"), b"all:"), Err(TypeRefusal::NoExtension));
        assert_eq!(classify(&name(".png"), PNG), Err(TypeRefusal::NoExtension));
    }

    #[test]
    fn text_is_checked_across_pieces() {
        let text = "naïve café — ok\r\n\tend".as_bytes();
        for split in 0..text.len() {
            let mut check = TextCheck::default();
            assert!(check.feed(&text[..split]) && check.feed(&text[split..]) && check.finish(), "{split}");
        }
        let mut check = TextCheck::default();
        assert!(check.feed("é".as_bytes().split_at(1).0));
        assert!(!check.finish(), "cut inside a character");
        assert!(!TextCheck::default().feed(b"bin\0ary"));
        assert!(!TextCheck::default().feed(b"\x1b[31m"));
        assert!(!TextCheck::default().feed(b"\xff\xfe"));
    }

    #[test]
    fn content_disposition_cannot_be_injected() {
        let d = content_disposition(&name("r\u{e9}sum\u{e9} \"final\";x.pdf"));
        assert_eq!(
            d,
            "attachment; filename=\"r_sum_ _final__x.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22%3Bx.pdf"
        );
        assert!(d.bytes().all(|b| b.is_ascii_graphic() || b == b' '));
    }
}
