//! Outgoing mail: the `Mailer` port and its two adapters.
//!
//! - [`SmtpMailer`] (distributed, or whenever `SMTP_URL` is set): lettre over tokio, rustls on
//!   aws-lc-rs. `smtp://host:port` is plain SMTP (a local relay or test sink),
//!   `smtp://…?tls=starttls` (or lettre's `required` / `opportunistic`) upgrades with STARTTLS,
//!   `smtps://` is TLS from the first byte; `user:password@` in the URL authenticates.
//! - [`FileMailer`] (all-in-one default): each message is written as an RFC 5322 `.eml` file into
//!   a folder (`<data_dir>/mail/`), readable by any mail client, and one log line names the file.
//!
//! Both build the same message (lettre's builder): `From` is the configured sender, the body is
//! plain UTF-8 text. Log lines name a file or a failure, never the recipient (PII) or the body
//! (which carries single-use tokens).
//!
//! In front of either, [`MailQueue`] (`queue`) makes mail durable: stored sealed in the service's
//! database and retried with backoff until delivered or a three-day deadline, across restarts.

pub mod queue;

pub use queue::{MailQueue, QueueSettings};

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// One message to one recipient.
#[derive(Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    /// Plain text; it may carry a secret link, so it is never logged or debug-printed.
    pub text: String,
}

impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail").field("subject", &self.subject).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The message cannot be built (a bad address, say); retrying will not help.
    #[error("invalid message: {0}")]
    Invalid(String),
    /// The server or the folder could not take it; retrying later may help.
    #[error("mail could not be delivered: {0}")]
    Unavailable(String),
}

/// Sends mail. Implementations are cheap to share (`Arc<dyn Mailer>`).
#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, mail: &Mail) -> Result<(), MailError>;
}

/// Parses a sender such as `Trellis <no-reply@example.com>`.
pub fn parse_mailbox(raw: &str) -> Result<Mailbox, MailError> {
    raw.parse::<Mailbox>().map_err(|e| MailError::Invalid(format!("bad address: {e}")))
}

fn build(from: &Mailbox, mail: &Mail) -> Result<Message, MailError> {
    let to = parse_mailbox(&mail.to)?;
    // RFC 5322 §3.6.4: a unique id on the right of which stands the sender's domain.
    let message_id = format!("<{}@{}>", crate::ids::new_id().simple(), from.email.domain());
    Message::builder()
        .message_id(Some(message_id))
        .from(from.clone())
        .to(to)
        .subject(mail.subject.as_str())
        .header(ContentType::TEXT_PLAIN)
        .body(mail.text.clone())
        .map_err(|e| MailError::Invalid(e.to_string()))
}

/// Mail over SMTP.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

/// How long one delivery may take, connection included.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

impl SmtpMailer {
    /// `url`: `smtp://host[:port]`, `smtps://…`, with `?tls=starttls|required|opportunistic` and
    /// optional `user:password@`. Fails on a URL lettre does not understand; connects lazily.
    pub fn new(url: &str, from: &str) -> Result<SmtpMailer, MailError> {
        let from = parse_mailbox(from)?;
        // `starttls` reads better in configuration; lettre calls it `required`.
        let url = url.replace("tls=starttls", "tls=required");
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
            .map_err(|e| MailError::Invalid(format!("SMTP URL {}: {e}", crate::db::redact_url(&url))))?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        Ok(SmtpMailer { transport, from })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let message = build(&self.from, mail)?;
        self.transport.send(message).await.map_err(|e| MailError::Unavailable(e.to_string()))?;
        metrics::counter!("trellis_mail_sent_total", "transport" => "smtp").increment(1);
        Ok(())
    }
}

/// Mail as `.eml` files in a folder, for all-in-one installs without an SMTP server.
pub struct FileMailer {
    dir: PathBuf,
    from: Mailbox,
}

impl FileMailer {
    /// Creates the folder (owner-only: the files hold single-use tokens) if needed.
    pub fn new(dir: &Path, from: &str) -> Result<FileMailer, MailError> {
        let from = parse_mailbox(from)?;
        std::fs::create_dir_all(dir)
            .map_err(|e| MailError::Unavailable(format!("cannot create {}: {e}", dir.display())))?;
        restrict(dir, 0o700);
        Ok(FileMailer { dir: dir.to_path_buf(), from })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

#[cfg(not(unix))]
fn restrict(_: &Path, _: u32) {}

#[async_trait]
impl Mailer for FileMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let message = build(&self.from, mail)?;
        let bytes = message.formatted();
        // Time-ordered names sort in sending order; the write goes through a hidden temporary
        // file and a rename, so a reader never sees half a message.
        let name = format!("{}.eml", crate::ids::new_id());
        let (path, tmp) = (self.dir.join(&name), self.dir.join(format!(".{name}.tmp")));
        let written = async {
            tokio::fs::write(&tmp, &bytes).await?;
            restrict(&tmp, 0o600);
            tokio::fs::rename(&tmp, &path).await
        }
        .await;
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(MailError::Unavailable(format!("cannot write {}: {e}", path.display())));
        }
        metrics::counter!("trellis_mail_sent_total", "transport" => "file").increment(1);
        tracing::info!(path = %path.display(), "mail written to a file (no SMTP server configured)");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn senders_and_urls_are_checked() {
        assert!(parse_mailbox("Trellis <no-reply@localhost>").is_ok());
        assert!(matches!(parse_mailbox("not an address"), Err(MailError::Invalid(_))));
        assert!(SmtpMailer::new("smtp://127.0.0.1:2525", "Trellis <no-reply@localhost>").is_ok());
        assert!(SmtpMailer::new("smtp://127.0.0.1:2525?tls=starttls", "a@b.c").is_ok());
        assert!(SmtpMailer::new("smtps://user:pw@mail.example.com", "a@b.c").is_ok());
        let err = SmtpMailer::new("http://user:hunter2@mail.example.com", "a@b.c").err().unwrap().to_string();
        assert!(!err.contains("hunter2"), "the URL's password is redacted: {err}");
    }

    #[test]
    fn the_body_is_never_debug_printed() {
        let mail = Mail { to: "a@b.c".into(), subject: "Reset".into(), text: "token=secret".into() };
        assert!(!format!("{mail:?}").contains("secret"));
    }
}
