//! Notification mails: the consumer group `notifications` (apart from the worker's own group, so
//! a slow SMTP server never delays the audit log) mails
//!
//! - **assignment**: on `task.created` with an assignee, or `task.updated` whose `fields` hold
//!   `assignee_id` and whose new assignee is set, the assignee, unless they are the actor, their
//!   account is not active, they may no longer see the project, or their
//!   `notifications.task_assigned` is off;
//! - **mention**: on `comment.created` and `comment.updated`, each user mentioned in the body as
//!   `<@USER_UUID>` (the web app inserts it from a member picker and shows it as @Name) who may
//!   see the project (`ProjectAccess`), is active, is not the author and has
//!   `notifications.mentioned` on. A user is mailed once per comment: an edit mails only the
//!   mentions it adds. At most [`MAX_MENTIONS`] users per comment.
//!
//! Events carry ids, never text (ARCHITECTURE.md "What events may carry"): the task or comment is
//! read as it is now through `ProjectAccess::current_task` / `current_comment` when the event is
//! delivered. Nothing is mailed about a task or comment that is gone, a task assigned to someone
//! else since, or to a recipient who may no longer see the project; mentions are those of the
//! comment's current body.
//!
//! Mails are plain text: the task's title (assignment) or the author's name and an excerpt of
//! the comment of at most [`EXCERPT_CHARS`] characters, in which other mentioned users appear as
//! `@someone`; and the link `{public_url}/projects/{project}/tasks/{task}`. Never a token, never
//! anyone else's address.
//!
//! # Exactly once in effect
//! `worker_notifications (event_id, recipient_id, kind)` is the primary key; `subject_id` is the
//! task or comment. A mail is **claimed** (a row with a lease of [`LEASE`], `sent_at` null), then
//! sent, then **marked** (`sent_at`). A redelivered event finds the mark and sends nothing; a send
//! that fails deletes the claim and the event is handed back (nack) to be retried; a claim whose
//! lease is still running (another consumer is sending) hands the event back too. A process that
//! dies between the SMTP server's acceptance and the mark leaves a claim whose lease runs out, and
//! the redelivery mails again: **at most one duplicate**, in that window only. A message that can
//! never be built (a bad address) is counted as failed and dropped.
//!
//! `trellis_notifications_sent_total{kind}` and `trellis_notifications_failed_total{kind}` count
//! mails (`kind` = `task_assigned` or `mentioned`).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use api::ApiError;
use api::projects::ProjectAccess;
use api::users::{User, UserStatus, UsersApi};
use platform::bus::{Event, EventBus};
use platform::db::{Database, Migration, StoreError, postgres, sqlite};
use platform::mail::{Mail, MailError, Mailer};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::watch;
use uuid::Uuid;

/// The consumer group of notifications on the bus.
pub const GROUP: &str = "notifications";
/// How long a claim keeps others from sending the same mail (an SMTP send times out in 15 s).
pub const LEASE: Duration = Duration::from_secs(60);
/// The longest comment excerpt in a mail, in characters.
pub const EXCERPT_CHARS: usize = 300;
/// The most users one comment notifies.
pub const MAX_MENTIONS: usize = 50;

pub const SQLITE_MIGRATION: Migration = Migration {
    version: 3,
    name: "notifications",
    sql: "CREATE TABLE worker_notifications (
        event_id BLOB NOT NULL, recipient_id BLOB NOT NULL, kind TEXT NOT NULL, subject_id BLOB NOT NULL,
        lease_until INTEGER NOT NULL, sent_at TEXT,
        PRIMARY KEY (event_id, recipient_id, kind)) WITHOUT ROWID;
    CREATE INDEX worker_notifications_subject ON worker_notifications (subject_id, recipient_id, kind);",
};

pub const POSTGRES_MIGRATION: Migration = Migration {
    version: 3,
    name: "notifications",
    sql: "CREATE TABLE worker_notifications (
        event_id UUID NOT NULL, recipient_id UUID NOT NULL, kind TEXT NOT NULL, subject_id UUID NOT NULL,
        lease_until TIMESTAMPTZ NOT NULL, sent_at TIMESTAMPTZ,
        PRIMARY KEY (event_id, recipient_id, kind));
    CREATE INDEX worker_notifications_subject ON worker_notifications (subject_id, recipient_id, kind);",
};

/// What a mail is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    TaskAssigned,
    Mentioned,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::TaskAssigned => "task_assigned",
            Kind::Mentioned => "mentioned",
        }
    }
}

#[derive(Debug)]
pub enum NotifyError {
    Store(StoreError),
    /// The users or projects service could not answer.
    Api(ApiError),
    Mail(MailError),
    /// Another consumer holds the claim on this mail; retry once its lease is over.
    Busy,
}

impl std::fmt::Display for NotifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotifyError::Store(e) => write!(f, "notification store: {e}"),
            NotifyError::Api(e) => write!(f, "notification lookup: {e}"),
            NotifyError::Mail(e) => write!(f, "notification mail: {e}"),
            NotifyError::Busy => f.write_str("another consumer is sending this notification"),
        }
    }
}

impl std::error::Error for NotifyError {}

impl From<StoreError> for NotifyError {
    fn from(e: StoreError) -> Self {
        NotifyError::Store(e)
    }
}

impl From<ApiError> for NotifyError {
    fn from(e: ApiError) -> Self {
        NotifyError::Api(e)
    }
}

/// One mail an event may call for, before the recipient's checks.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidate {
    kind: Kind,
    recipient: Uuid,
    /// Who caused it: the actor of an assignment, the author of a comment.
    by: Option<Uuid>,
    /// The task (assignment) or comment (mention).
    subject: Uuid,
    project: Uuid,
    task: Uuid,
    /// The task's title, or the comment's body.
    text: String,
}

fn uuid_at(v: &Value, key: &str) -> Option<Uuid> {
    v.get(key).and_then(Value::as_str).and_then(|s| Uuid::parse_str(s).ok())
}

/// The users mentioned in `body` as `<@UUID>`, in order of first mention, without repeats.
pub fn mentions(body: &str) -> Vec<Uuid> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(at) = rest.find("<@") {
        rest = &rest[at + 2..];
        if let Some(id) = rest.get(..36).and_then(|s| Uuid::parse_str(s).ok())
            && rest[36..].starts_with('>')
            && seen.insert(id)
        {
            out.push(id);
        }
    }
    out
}

/// The comment as a mail shows it: mentions as `@{recipient_name}` for the recipient and
/// `@someone` for anyone else, cut to [`EXCERPT_CHARS`] characters (with `…` when cut).
pub fn excerpt(body: &str, recipient: Uuid, recipient_name: &str) -> String {
    let mut text = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(at) = rest.find("<@") {
        text.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        match after.get(..36).and_then(|s| Uuid::parse_str(s).ok()).filter(|_| after[36..].starts_with('>')) {
            Some(id) => {
                text.push('@');
                text.push_str(if id == recipient { recipient_name } else { "someone" });
                rest = &after[37..];
            }
            None => {
                text.push_str("<@");
                rest = after;
            }
        }
    }
    text.push_str(rest);
    let text = text.trim();
    if text.chars().count() <= EXCERPT_CHARS {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(EXCERPT_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// What an event may call for mails about, read from its ids alone (events carry no text).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Subject {
    /// A task whose assignee the event set: the assignee it named.
    Assignment { task: Uuid, assignee: Uuid },
    /// A comment written or edited: its mentions are read from the comment as it is now.
    Comment { comment: Uuid },
}

/// The subject of `event`, if it may call for mails.
fn subject(event: &Event) -> Option<Subject> {
    let data = &event.data;
    match event.event_type.as_str() {
        "task.created" | "task.updated" => {
            if event.event_type == "task.updated" {
                let fields = data.get("fields").and_then(Value::as_array);
                if !fields.is_some_and(|f| f.iter().any(|f| f.as_str() == Some("assignee_id"))) {
                    return None;
                }
            }
            let task = data.get("task");
            let assignee = task.and_then(|t| uuid_at(t, "assignee_id"))?;
            let id = task.and_then(|t| uuid_at(t, "id")).or_else(|| uuid_at(data, "task_id"))?;
            Some(Subject::Assignment { task: id, assignee })
        }
        "comment.created" | "comment.updated" => {
            let id = uuid_at(data, "comment_id").or_else(|| data.get("comment").and_then(|c| uuid_at(c, "id")))?;
            Some(Subject::Comment { comment: id })
        }
        _ => None,
    }
}

/// Where a claim stands.
enum Claim {
    Mine,
    Sent,
    Busy,
}

/// The notifications consumer.
pub struct Notifier {
    db: Database,
    users: Arc<dyn UsersApi>,
    access: Arc<dyn ProjectAccess>,
    mailer: Arc<dyn Mailer>,
    public_url: String,
}

impl Notifier {
    /// `public_url` is the web app's address as users reach it (the links in mails).
    pub fn new(
        db: Database,
        users: Arc<dyn UsersApi>,
        access: Arc<dyn ProjectAccess>,
        mailer: Arc<dyn Mailer>,
        public_url: &str,
    ) -> Self {
        Self { db, users, access, mailer, public_url: public_url.trim_end_matches('/').to_string() }
    }

    /// Mails what `event` calls for; returns how many mails this call sent.
    pub async fn handle(&self, event: &Event) -> Result<usize, NotifyError> {
        let mut sent = 0;
        for c in self.candidates(event).await? {
            if self.notify(event, &c).await? {
                sent += 1;
            }
        }
        Ok(sent)
    }

    /// Consumes as the `notifications` group until `shutdown` fires.
    pub async fn spawn(self, bus: Arc<dyn EventBus>, shutdown: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        platform::consumer::spawn(bus, platform::consumer::Source::Group(GROUP.into()), Arc::new(self), shutdown).await
    }

    /// The mails `event` may call for, with the text as it is now: the task or comment is read
    /// from the projects service when the event is delivered, so a mail never shows a title or a
    /// comment that was changed or deleted meanwhile, and nothing is mailed about what is gone.
    async fn candidates(&self, event: &Event) -> Result<Vec<Candidate>, NotifyError> {
        match subject(event) {
            None => Ok(Vec::new()),
            Some(Subject::Assignment { task, assignee }) => {
                let Some(current) = self.access.current_task(task).await? else { return Ok(Vec::new()) };
                if current.assignee_id != Some(assignee) {
                    // Assigned to someone else since: the mail would tell something untrue.
                    return Ok(Vec::new());
                }
                Ok(vec![Candidate {
                    kind: Kind::TaskAssigned,
                    recipient: assignee,
                    by: event.actor_id,
                    subject: task,
                    project: current.project_id,
                    task,
                    text: current.title,
                }])
            }
            Some(Subject::Comment { comment }) => {
                let Some(current) = self.access.current_comment(comment).await? else { return Ok(Vec::new()) };
                Ok(mentions(&current.body)
                    .into_iter()
                    .take(MAX_MENTIONS)
                    .map(|recipient| Candidate {
                        kind: Kind::Mentioned,
                        recipient,
                        by: Some(current.author_id),
                        subject: comment,
                        project: current.project_id,
                        task: current.task_id,
                        text: current.body.clone(),
                    })
                    .collect())
            }
        }
    }

    /// The recipient, when the rules let `c` be mailed to them.
    async fn eligible(&self, event: &Event, c: &Candidate) -> Result<Option<User>, NotifyError> {
        if c.by == Some(c.recipient) {
            return Ok(None);
        }
        let user = match self.users.get_user(c.recipient).await {
            Ok(u) => u,
            Err(ApiError::NotFound) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if user.status != UserStatus::Active || user.email.is_empty() {
            return Ok(None);
        }
        // Only someone who may read the task now is told about it.
        if self.access.project_role(c.project, user.id, user.role).await?.is_none() {
            return Ok(None);
        }
        if c.kind == Kind::Mentioned && self.mentioned_before(event.id, c).await? {
            return Ok(None);
        }
        let switches = match self.users.notification_settings(user.id).await {
            Ok(s) => s,
            Err(ApiError::NotFound) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let on = match c.kind {
            Kind::TaskAssigned => switches.task_assigned,
            Kind::Mentioned => switches.mentioned,
        };
        Ok(on.then_some(user))
    }

    async fn mail(&self, c: &Candidate, to: &User) -> Result<Mail, NotifyError> {
        let link = format!("{}/projects/{}/tasks/{}", self.public_url, c.project, c.task);
        let footer = |switch: &str| {
            format!("You get this mail because \"{switch}\" is on in your Trellis notification preferences.\n")
        };
        Ok(match c.kind {
            Kind::TaskAssigned => Mail {
                to: to.email.clone(),
                subject: format!("You were assigned: {}", c.text),
                text: format!(
                    "Hello {},\n\nYou were assigned a task in Trellis:\n\n    {}\n\nOpen it:\n{link}\n\n{}",
                    to.name,
                    c.text,
                    footer("Task assigned")
                ),
            },
            Kind::Mentioned => {
                let author = match c.by {
                    Some(id) => match self.users.get_user(id).await {
                        Ok(u) => u.name,
                        Err(ApiError::NotFound) => "Someone".to_string(),
                        Err(e) => return Err(e.into()),
                    },
                    None => "Someone".to_string(),
                };
                let quoted: Vec<String> = excerpt(&c.text, to.id, &to.name)
                    .lines()
                    .map(|l| format!("> {l}").trim_end().to_string())
                    .collect();
                Mail {
                    to: to.email.clone(),
                    subject: format!("{author} mentioned you"),
                    text: format!(
                        "Hello {},\n\n{author} mentioned you in a comment:\n\n{}\n\nOpen the task:\n{link}\n\n{}",
                        to.name,
                        quoted.join("\n"),
                        footer("Mentioned")
                    ),
                }
            }
        })
    }

    /// Checks, claims, sends and marks one mail; true when this call sent it.
    async fn notify(&self, event: &Event, c: &Candidate) -> Result<bool, NotifyError> {
        let Some(to) = self.eligible(event, c).await? else {
            return Ok(false);
        };
        match self.claim(event.id, c).await? {
            Claim::Sent => return Ok(false),
            Claim::Busy => return Err(NotifyError::Busy),
            Claim::Mine => {}
        }
        let kind = c.kind.as_str();
        let sent = match self.mail(c, &to).await {
            Ok(mail) => self.mailer.send(&mail).await.map_err(NotifyError::Mail),
            Err(e) => Err(e),
        };
        match sent {
            Ok(()) => {
                metrics::counter!("trellis_notifications_sent_total", "kind" => kind).increment(1);
                if let Err(e) = self.mark(event.id, c).await {
                    // Mailed but not marked: the claim's lease runs out and a redelivery may
                    // mail once more; acknowledging now avoids exactly that.
                    tracing::warn!(event_id = %event.id, kind, error = %e, "notification sent but not marked");
                }
                Ok(true)
            }
            Err(e) => {
                metrics::counter!("trellis_notifications_failed_total", "kind" => kind).increment(1);
                self.release(event.id, c).await?;
                match e {
                    NotifyError::Mail(MailError::Invalid(why)) => {
                        tracing::warn!(event_id = %event.id, kind, error = %why, "notification cannot be sent; dropped");
                        Ok(false)
                    }
                    other => Err(other),
                }
            }
        }
    }

    async fn claim(&self, event: Uuid, c: &Candidate) -> Result<Claim, NotifyError> {
        let (recipient, kind, subject) = (c.recipient, c.kind.as_str(), c.subject);
        let state = match &self.db {
            Database::Sqlite(db) => {
                let now = OffsetDateTime::now_utc();
                let now_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
                let until = now_ms + LEASE.as_millis() as i64;
                db.write(move |tx| {
                    let n = tx
                        .execute(
                            "INSERT INTO worker_notifications (event_id, recipient_id, kind, subject_id, lease_until) \
                             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (event_id, recipient_id, kind) DO UPDATE \
                             SET lease_until = excluded.lease_until \
                             WHERE worker_notifications.sent_at IS NULL AND worker_notifications.lease_until < ?6",
                            rusqlite::params![event, recipient, kind, subject, until, now_ms],
                        )
                        .map_err(sqlite::map_err)?;
                    if n == 1 {
                        return Ok(Claim::Mine);
                    }
                    let sent: Option<String> = tx
                        .query_row(
                            "SELECT sent_at FROM worker_notifications WHERE event_id = ?1 AND recipient_id = ?2 AND kind = ?3",
                            rusqlite::params![event, recipient, kind],
                            |r| r.get(0),
                        )
                        .map_err(sqlite::map_err)?;
                    Ok(if sent.is_some() { Claim::Sent } else { Claim::Busy })
                })
                .await?
            }
            Database::Postgres(db) => {
                let client = db.client().await?;
                let lease = LEASE.as_secs_f64();
                let n = client
                    .execute(
                        "INSERT INTO worker_notifications (event_id, recipient_id, kind, subject_id, lease_until) \
                         VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5)) \
                         ON CONFLICT (event_id, recipient_id, kind) DO UPDATE SET lease_until = excluded.lease_until \
                         WHERE worker_notifications.sent_at IS NULL AND worker_notifications.lease_until < now()",
                        &[&event, &recipient, &kind, &subject, &lease],
                    )
                    .await
                    .map_err(postgres::map_err)?;
                if n == 1 {
                    Claim::Mine
                } else {
                    let row = client
                        .query_one(
                            "SELECT sent_at IS NOT NULL FROM worker_notifications \
                             WHERE event_id = $1 AND recipient_id = $2 AND kind = $3",
                            &[&event, &recipient, &kind],
                        )
                        .await
                        .map_err(postgres::map_err)?;
                    if row.get::<_, bool>(0) { Claim::Sent } else { Claim::Busy }
                }
            }
        };
        Ok(state)
    }

    async fn mark(&self, event: Uuid, c: &Candidate) -> Result<(), StoreError> {
        let (recipient, kind) = (c.recipient, c.kind.as_str());
        match &self.db {
            Database::Sqlite(db) => {
                db.write(move |tx| {
                    tx.execute(
                        "UPDATE worker_notifications SET sent_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') \
                         WHERE event_id = ?1 AND recipient_id = ?2 AND kind = ?3",
                        rusqlite::params![event, recipient, kind],
                    )
                    .map_err(sqlite::map_err)
                })
                .await?;
            }
            Database::Postgres(db) => {
                let client = db.client().await?;
                client
                    .execute(
                        "UPDATE worker_notifications SET sent_at = now() \
                         WHERE event_id = $1 AND recipient_id = $2 AND kind = $3",
                        &[&event, &recipient, &kind],
                    )
                    .await
                    .map_err(postgres::map_err)?;
            }
        }
        Ok(())
    }

    async fn release(&self, event: Uuid, c: &Candidate) -> Result<(), StoreError> {
        let (recipient, kind) = (c.recipient, c.kind.as_str());
        match &self.db {
            Database::Sqlite(db) => {
                db.write(move |tx| {
                    tx.execute(
                        "DELETE FROM worker_notifications \
                         WHERE event_id = ?1 AND recipient_id = ?2 AND kind = ?3 AND sent_at IS NULL",
                        rusqlite::params![event, recipient, kind],
                    )
                    .map_err(sqlite::map_err)
                })
                .await?;
            }
            Database::Postgres(db) => {
                let client = db.client().await?;
                client
                    .execute(
                        "DELETE FROM worker_notifications \
                         WHERE event_id = $1 AND recipient_id = $2 AND kind = $3 AND sent_at IS NULL",
                        &[&event, &recipient, &kind],
                    )
                    .await
                    .map_err(postgres::map_err)?;
            }
        }
        Ok(())
    }

    /// Whether another event of this comment already mailed (or is mailing) the recipient.
    async fn mentioned_before(&self, event: Uuid, c: &Candidate) -> Result<bool, StoreError> {
        let (recipient, subject, kind) = (c.recipient, c.subject, c.kind.as_str());
        match &self.db {
            Database::Sqlite(db) => {
                db.read(move |conn| {
                    conn.query_row(
                        "SELECT EXISTS (SELECT 1 FROM worker_notifications \
                         WHERE subject_id = ?1 AND recipient_id = ?2 AND kind = ?3 AND event_id <> ?4)",
                        rusqlite::params![subject, recipient, kind, event],
                        |r| r.get(0),
                    )
                })
                .await
            }
            Database::Postgres(db) => {
                let client = db.client().await?;
                let row = client
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM worker_notifications \
                         WHERE subject_id = $1 AND recipient_id = $2 AND kind = $3 AND event_id <> $4)",
                        &[&subject, &recipient, &kind, &event],
                    )
                    .await
                    .map_err(postgres::map_err)?;
                Ok(row.get(0))
            }
        }
    }
}

#[async_trait::async_trait]
impl platform::consumer::Handler for Notifier {
    async fn handle(&self, event: &Event) -> Result<(), platform::consumer::HandleError> {
        Notifier::handle(self, event).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn mentions_are_found_once_each_and_malformed_ones_ignored() {
        let (a, b) = (id(1), id(2));
        let body = format!("hi <@{a}> and <@{b}>, <@{a}> again; <@not-a-uuid> <@{a} <@{b}");
        assert_eq!(mentions(&body), vec![a, b]);
        assert!(mentions("no mention, <@ at the end").is_empty());
    }

    #[test]
    fn excerpts_name_only_the_recipient_and_stay_short() {
        let (me, other) = (id(1), id(2));
        assert_eq!(excerpt(&format!(" <@{me}>, ask <@{other}> ",), me, "Ada"), "@Ada, ask @someone");
        let long = "é".repeat(EXCERPT_CHARS + 10);
        let cut = excerpt(&long, me, "Ada");
        assert_eq!(cut.chars().count(), EXCERPT_CHARS);
        assert!(cut.ends_with('…'));
        assert_eq!(excerpt("<@x> <@", me, "Ada"), "<@x> <@");
    }

    fn event(kind: &str, actor: Uuid, data: Value) -> Event {
        Event::new(kind, id(99), Some(actor), OffsetDateTime::now_utc(), data)
    }

    #[test]
    fn assignments_come_from_created_tasks_and_changed_assignees() {
        let (actor, bob, project, task) = (id(1), id(2), id(3), id(4));
        let t = json!({"id": task, "project_id": project, "assignee_id": bob});
        let assigned = Some(Subject::Assignment { task, assignee: bob });
        assert_eq!(subject(&event("task.created", actor, json!({"task": t}))), assigned);
        let changed = json!({"task": t, "fields": ["assignee_id", "title"]});
        assert_eq!(subject(&event("task.updated", actor, changed)), assigned);
        assert_eq!(subject(&event("task.updated", actor, json!({"task": t, "fields": ["title"]}))), None);
        let cleared =
            json!({"task": {"id": task, "project_id": project, "assignee_id": null}, "fields": ["assignee_id"]});
        assert_eq!(subject(&event("task.updated", actor, cleared)), None);
        assert_eq!(subject(&event("task.deleted", actor, json!({"task_id": task}))), None);
    }

    #[test]
    fn comments_are_named_by_id_and_read_when_delivered() {
        let (actor, comment) = (id(1), id(5));
        let data = json!({"comment_id": comment, "task_id": id(4), "project_id": id(3)});
        assert_eq!(subject(&event("comment.created", actor, data.clone())), Some(Subject::Comment { comment }));
        assert_eq!(subject(&event("comment.updated", actor, data.clone())), Some(Subject::Comment { comment }));
        assert_eq!(subject(&event("comment.deleted", actor, data)), None);
    }
}
