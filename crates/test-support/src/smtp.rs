//! A real SMTP server for tests ([`TestSmtp`]: aiosmtpd on a reserved loopback port, saving every
//! message it accepts into a temporary folder) and a small reader for the messages it saved and
//! for the `.eml` files the file mailer writes ([`ReceivedMail`], [`read_mail_dir`]).
//!
//! aiosmtpd is installed from PyPI (`python3 -m pip install aiosmtpd`) when `python3` cannot
//! import it, as `cargo xtask ci` does on a fresh machine; a server that still cannot start fails
//! the test with the reason. Each `TestSmtp` is its own process, stopped on drop, and it also
//! stops by itself when the test process goes away (it exits when its standard input closes).
//!
//! The port comes from [`reserve_port`](crate::reserve_port): no other test, and no outgoing
//! connection, can hold it between its choice and the sink's bind, so one start is enough; the
//! sink says `ready` once aiosmtpd has bound it and answered its own test connection.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::wait;

/// The sink: an aiosmtpd controller whose handler writes `X-Envelope-To:` and the message as it
/// was received into `<dir>/<n>.eml` (through a rename, so a reader never sees half of one).
const SINK: &str = r#"
import itertools, os, sys
from aiosmtpd.controller import Controller

folder, port, ready_timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
counter = itertools.count()

class Save:
    async def handle_DATA(self, server, session, envelope):
        n = next(counter)
        tmp = os.path.join(folder, ".%06d.tmp" % n)
        with open(tmp, "wb") as f:
            f.write(("X-Envelope-To: %s\r\n" % ", ".join(envelope.rcpt_tos)).encode())
            f.write(envelope.original_content or envelope.content)
        os.rename(tmp, os.path.join(folder, "%06d.eml" % n))
        return "250 OK"

# aiosmtpd's own start-up check gives up after 5 s by default; a loaded machine needs longer.
controller = Controller(Save(), hostname="127.0.0.1", port=port, ready_timeout=ready_timeout)
controller.start()
print("ready", flush=True)
sys.stdin.read()
controller.stop()
"#;

/// How long the sink may take to start (python3, aiosmtpd's import and its own start-up check),
/// before [`wait::patience`] scales it.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether this process already made sure aiosmtpd is importable.
static INSTALLED: Mutex<bool> = Mutex::new(false);

/// A running SMTP sink, stopped on drop.
pub struct TestSmtp {
    /// `smtp://127.0.0.1:<port>`, for `SMTP_URL`.
    pub url: String,
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
    /// Held open: the sink exits when it closes.
    _stdin: Option<ChildStdin>,
}

fn importable() -> bool {
    Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs aiosmtpd from PyPI if `python3` cannot import it; panics when that fails.
pub fn ensure_aiosmtpd() {
    let mut done = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return;
    }
    if !importable() {
        let out = Command::new("python3").args(["-m", "pip", "install", "--quiet", "aiosmtpd"]).output();
        let detail = match &out {
            Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
            Err(e) => e.to_string(),
        };
        assert!(
            importable(),
            "the SMTP tests need aiosmtpd and it could not be installed \
             (`python3 -m pip install aiosmtpd`): {detail}"
        );
    }
    *done = true;
}

impl TestSmtp {
    /// Starts a sink on a reserved port and waits until it accepts connections.
    pub async fn start() -> TestSmtp {
        tokio::task::spawn_blocking(Self::start_blocking)
            .await
            .unwrap_or_else(|e| panic!("starting the SMTP sink panicked: {e}"))
    }

    fn start_blocking() -> TestSmtp {
        ensure_aiosmtpd();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir for the SMTP sink: {e}"));
        let port = crate::reserve_port();
        let limit = wait::patience(START_TIMEOUT);
        // Its errors go to a hidden file beside the messages, read if it fails to start (a pipe
        // nobody reads could fill up and stall it).
        let errors = dir.path().join(".stderr");
        let stderr = std::fs::File::create(&errors).unwrap_or_else(|e| panic!("the SMTP sink's stderr file: {e}"));
        let mut child = Command::new("python3")
            .args(["-c", SINK])
            .arg(dir.path())
            .arg(port.to_string())
            .arg(limit.as_secs_f64().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("the SMTP sink needs python3, which cannot run: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("the SMTP sink has no stdout"));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            // An empty line is end of file: the sink exited before it was ready.
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let waited = match rx.recv_timeout(limit) {
            Ok(line) if line.trim() == "ready" => {
                return TestSmtp { url: format!("smtp://127.0.0.1:{port}"), port, dir, child, _stdin: stdin };
            }
            Ok(_) => "exited before it was ready".to_string(),
            Err(_) => format!("did not say `ready` within {limit:?} (TEST_PATIENCE scales this)"),
        };
        let _ = child.kill();
        let _ = child.wait();
        let stderr = std::fs::read_to_string(&errors).unwrap_or_default();
        panic!("the SMTP sink (aiosmtpd) on reserved port {port} {waited}:\n{stderr}");
    }

    /// The folder the sink saves messages in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Every message received so far, in arrival order.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        read_mail_dir(self.dir.path())
    }

    /// Waits until at least `count` messages arrived; panics when none arrived for `timeout`
    /// (scaled, see [`wait_for_mail`]).
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        wait_for_mail(self.dir.path(), count, timeout).await
    }
}

impl Drop for TestSmtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every `.eml` file in `dir`, sorted by name (both the sink and the file mailer name them in
/// sending order). A missing folder holds no mail.
pub fn read_mail_dir(dir: &Path) -> Vec<ReceivedMail> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> =
        entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "eml")).collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let raw = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
            ReceivedMail::parse(&raw)
        })
        .collect()
}

/// Waits until `dir` holds at least `count` messages. Fails only when no new message arrived for
/// `timeout` (scaled by `TEST_PATIENCE`, [`wait::patience`]), so a slow batch passes as
/// long as it advances; the failure lists the subjects that did arrive.
pub async fn wait_for_mail(dir: &Path, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
    let stall = wait::patience(timeout);
    let start = Instant::now();
    let (mut seen, mut moved) = (0, Instant::now());
    loop {
        let found = read_mail_dir(dir);
        if found.len() >= count {
            return found;
        }
        if found.len() > seen {
            (seen, moved) = (found.len(), Instant::now());
        }
        if moved.elapsed() > stall {
            let subjects: Vec<&str> = found.iter().map(|m| m.header("subject").unwrap_or("")).collect();
            panic!(
                "expected {count} messages in {}; after {:.1?}, none new for {stall:?}; found {subjects:?}",
                dir.display(),
                start.elapsed()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A message as stored (RFC 5322), with its headers unfolded and decoded (RFC 2047 encoded
/// words) and its text body decoded (7bit, 8bit, quoted-printable or base64).
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub raw: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl ReceivedMail {
    pub fn parse(raw: &str) -> ReceivedMail {
        let normalized = raw.replace("\r\n", "\n");
        let (head, body) = normalized.split_once("\n\n").unwrap_or((normalized.as_str(), ""));
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some((_, v)) = headers.last_mut() {
                    v.push(' ');
                    v.push_str(line.trim());
                }
            } else if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        for (_, v) in &mut headers {
            *v = decode_words(v);
        }
        let mut mail = ReceivedMail { raw: raw.to_string(), headers, body: String::new() };
        let encoding = mail.header("content-transfer-encoding").unwrap_or("7bit").to_ascii_lowercase();
        mail.body = match encoding.as_str() {
            "quoted-printable" => decode_qp(body),
            "base64" => {
                let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
                let bytes = base64::engine::general_purpose::STANDARD.decode(compact).unwrap_or_default();
                String::from_utf8_lossy(&bytes).into_owned()
            }
            _ => body.to_string(),
        };
        mail
    }

    /// The first header of that name (case-insensitive), decoded.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Quoted-printable (RFC 2045 §6.7): `=XX` bytes and `=` soft line breaks.
fn decode_qp(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            if bytes.get(i + 1) == Some(&b'\n') {
                i += 2;
                continue;
            }
            if let Some(hex) = s.get(i + 1..i + 3)
                && let Ok(b) = u8::from_str_radix(hex, 16)
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`); whitespace between two encoded
/// words is dropped, as the RFC says.
fn decode_words(v: &str) -> String {
    if !v.contains("=?") {
        return v.to_string();
    }
    let mut out = String::new();
    // None before the first token, then whether the previous one was an encoded word.
    let mut previous_was_word: Option<bool> = None;
    for token in v.split(' ') {
        let word = token.strip_prefix("=?").and_then(|t| t.strip_suffix("?=")).and_then(|t| {
            let mut parts = t.splitn(3, '?');
            let (_charset, enc, text) = (parts.next()?, parts.next()?, parts.next()?);
            match enc.to_ascii_lowercase().as_str() {
                "b" => base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .ok()
                    .map(|b| String::from_utf8_lossy(&b).into_owned()),
                "q" => Some(decode_qp(&text.replace('_', " "))),
                _ => None,
            }
        });
        let is_word = word.is_some();
        if previous_was_word.is_some() && !(is_word && previous_was_word == Some(true)) {
            out.push(' ');
        }
        out.push_str(word.as_deref().unwrap_or(token));
        previous_was_word = Some(is_word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_folded_encoded_headers_and_bodies() {
        let raw = "From: A <a@b.c>\r\nSubject: =?utf-8?b?UsOpaW5pdGlhbGlzZXI=?=\r\n =?utf-8?q?_mot_de_passe?=\r\n\
                   Content-Transfer-Encoding: quoted-printable\r\n\r\nhttp://x/reset#token=3Dab=\r\ncd\r\n";
        let m = ReceivedMail::parse(raw);
        assert_eq!(m.header("subject"), Some("Réinitialiser mot de passe"));
        assert_eq!(m.header("FROM"), Some("A <a@b.c>"));
        assert_eq!(m.body, "http://x/reset#token=abcd\n");
        assert_eq!(decode_words("Re: =?utf-8?q?caf=C3=A9?= ok"), "Re: café ok");
    }
}
