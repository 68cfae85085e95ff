//! The `Mailer` contract: `SmtpMailer` against a real SMTP server (aiosmtpd, [`TestSmtp`]) and
//! `FileMailer` into a folder deliver the same RFC 5322 message: the sender, recipient and
//! subject (encoded when not ASCII), a `Date` and `Message-ID`, and the text exactly, long lines
//! and non-ASCII included; one message per send, in order; a bad address is refused up front.

use std::sync::Arc;

use platform::mail::{FileMailer, Mail, MailError, Mailer, SmtpMailer};
use test_support::wait::default_limit;
use test_support::{ReceivedMail, TestSmtp, reserve_port, wait_for_mail};

const FROM: &str = "Trellis <no-reply@localhost>";

/// A mailer and the place its messages end up.
pub trait Fixture: Sized {
    async fn new() -> Self;
    fn mailer(&self) -> Arc<dyn Mailer>;
    /// Waits for at least `count` delivered messages, oldest first.
    async fn received(&self, count: usize) -> Vec<ReceivedMail>;
}

pub struct File {
    mailer: Arc<FileMailer>,
    _dir: tempfile::TempDir,
}

impl Fixture for File {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        File { mailer: Arc::new(FileMailer::new(&dir.path().join("mail"), FROM).unwrap()), _dir: dir }
    }
    fn mailer(&self) -> Arc<dyn Mailer> {
        self.mailer.clone()
    }
    async fn received(&self, count: usize) -> Vec<ReceivedMail> {
        wait_for_mail(self.mailer.dir(), count, default_limit()).await
    }
}

pub struct Smtp {
    mailer: Arc<SmtpMailer>,
    sink: TestSmtp,
}

impl Fixture for Smtp {
    async fn new() -> Self {
        let sink = TestSmtp::start().await;
        Smtp { mailer: Arc::new(SmtpMailer::new(&sink.url, FROM).unwrap()), sink }
    }
    fn mailer(&self) -> Arc<dyn Mailer> {
        self.mailer.clone()
    }
    async fn received(&self, count: usize) -> Vec<ReceivedMail> {
        self.sink.wait_for(count, default_limit()).await
    }
}

fn mail(to: &str, subject: &str, text: &str) -> Mail {
    Mail { to: to.into(), subject: subject.into(), text: text.into() }
}

async fn delivers_headers_and_text<F: Fixture>() {
    let f = F::new().await;
    let link = format!("http://127.0.0.1:8080/reset-password#token={}", "x".repeat(43));
    let text = format!("Someone asked to reset your password.\n\n{link}\n\nGrüße, Trellis\n");
    f.mailer().send(&mail("ada@example.com", "Reset your Trellis password", &text)).await.unwrap();
    let got = f.received(1).await;
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.header("from"), Some(FROM));
    assert_eq!(m.header("to"), Some("ada@example.com"));
    assert_eq!(m.header("subject"), Some("Reset your Trellis password"));
    assert!(m.header("date").is_some() && m.header("message-id").is_some(), "{:?}", m.headers);
    assert!(m.header("content-type").unwrap().starts_with("text/plain"), "{:?}", m.headers);
    assert_eq!(m.body.trim_end(), text.trim_end(), "the text arrives exactly, the long link on one line");
    assert!(m.body.lines().any(|l| l == link));
}

async fn encodes_a_non_ascii_subject<F: Fixture>() {
    let f = F::new().await;
    let subject = "Réinitialiser votre mot de passe — Trellis";
    f.mailer().send(&mail("zoe@example.com", subject, "bonjour")).await.unwrap();
    let m = &f.received(1).await[0];
    assert_eq!(m.header("subject"), Some(subject));
    let head = m.raw.split("\r\n\r\n").next().unwrap();
    assert!(head.is_ascii(), "headers travel as ASCII (RFC 2047): {head}");
}

async fn one_message_per_send_in_order<F: Fixture>() {
    let f = F::new().await;
    for i in 0..3 {
        f.mailer().send(&mail(&format!("user{i}@example.com"), &format!("message {i}"), "hello")).await.unwrap();
    }
    // Each send returns once its message is stored (the file renamed into place; the SMTP sink
    // saves before it answers the data), so what is there now is all the three sends made.
    let got = f.received(3).await;
    let subjects: Vec<&str> = got.iter().map(|m| m.header("subject").unwrap()).collect();
    assert_eq!(subjects, ["message 0", "message 1", "message 2"], "one message per send, in order, nothing more");
}

async fn refuses_a_bad_address<F: Fixture>() {
    let f = F::new().await;
    let err = f.mailer().send(&mail("not an address", "x", "y")).await.unwrap_err();
    assert!(matches!(err, MailError::Invalid(_)), "{err}");
    f.mailer().send(&mail("ok@example.com", "after", "y")).await.unwrap();
    let got = f.received(1).await;
    assert_eq!(got.len(), 1, "the refused message went nowhere");
    assert_eq!(got[0].header("subject"), Some("after"));
}

macro_rules! mail_contract {
    ($adapter:ident, $fixture:ty) => {
        mod $adapter {
            use super::*;
            mail_contract!(@tests $fixture;
                delivers_headers_and_text,
                encodes_a_non_ascii_subject,
                one_message_per_send_in_order,
                refuses_a_bad_address,
            );
        }
    };
    (@tests $fixture:ty; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                super::$check::<$fixture>().await;
            }
        )*
    };
}

mail_contract!(file, File);
mail_contract!(smtp, Smtp);

/// SMTP only: a server that is not there is `Unavailable` (the caller may retry), not a hang.
#[tokio::test]
async fn smtp_server_down_is_unavailable() {
    // Reserved for this test and bound by nobody: no other test's server can appear there.
    let port = reserve_port();
    let mailer = SmtpMailer::new(&format!("smtp://127.0.0.1:{port}"), FROM).unwrap();
    let err = tokio::time::timeout(default_limit(), mailer.send(&mail("a@example.com", "x", "y")))
        .await
        .expect("a send to a port nobody listens on never returned")
        .unwrap_err();
    assert!(matches!(err, MailError::Unavailable(_)), "{err}");
}

/// File only: the files (which carry single-use links) are readable by their owner alone.
#[cfg(unix)]
#[tokio::test]
async fn mail_files_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let f = File::new().await;
    f.mailer().send(&mail("a@example.com", "x", "y")).await.unwrap();
    f.received(1).await;
    let dir = f.mailer.dir();
    assert_eq!(std::fs::metadata(dir).unwrap().permissions().mode() & 0o777, 0o700);
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(path.extension().unwrap(), "eml", "no temporary file is left behind");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
