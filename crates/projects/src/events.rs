//! The projects service's events, the only place they are built: each carries ids, kinds, the
//! names of the fields that changed, versions and the actor's id, never user-written text (a
//! project's name or description, a task's title, description or labels, a comment's body, a
//! file name) nor personal data (ARCHITECTURE.md "What events may carry").
//!
//! Events are kept: in the outbox (live replays with `since`, the export), in the bus's dead
//! letters, in the audit log. Text in them would outlive its deletion, its edit and its author's
//! erasure, and reach members who join later. Consumers that show text (notification mails)
//! read the current state through `api::projects::ProjectAccess` when they deliver, and skip
//! what is gone; the web app refetches what an event names. Every payload is a struct below,
//! whose fields are ids, enums, times and server-made ranks; a test serializes every kind built
//! from records full of canary text and fails if any of it shows.

use api::projects::{AttachmentScan, AttachmentStatus, Priority, ProjectRole, TaskStatus};
use platform::bus::Event;
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ports::{AttachmentRecord, CommentRecord, MemberRecord, TaskRecord};

/// Every event type the projects service writes (docs/API.md "Live updates").
pub const KINDS: &[&str] = &[
    "project.created",
    "project.updated",
    "project.deleted",
    "member.changed",
    "task.created",
    "task.updated",
    "task.deleted",
    "comment.created",
    "comment.updated",
    "comment.deleted",
    "attachment.created",
    "attachment.available",
    "attachment.rejected",
    "attachment.deleted",
];

fn event(kind: &str, aggregate: Uuid, actor: Option<Uuid>, at: OffsetDateTime, data: impl Serialize) -> Event {
    let data = serde_json::to_value(data).unwrap_or(serde_json::Value::Null);
    Event::new(kind, aggregate, actor, at, data)
}

/// A task as events show it: everything but its text (title, description, labels) and due date.
#[derive(Serialize)]
struct TaskRef<'a> {
    id: Uuid,
    project_id: Uuid,
    status: TaskStatus,
    priority: Priority,
    assignee_id: Option<Uuid>,
    /// The server-made rank (`crate::rank`), no user text.
    position: &'a str,
    created_by: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

impl<'a> From<&'a TaskRecord> for TaskRef<'a> {
    fn from(t: &'a TaskRecord) -> Self {
        Self {
            id: t.id,
            project_id: t.project_id,
            status: t.status,
            priority: t.priority,
            assignee_id: t.assignee_id,
            position: &t.position,
            created_by: t.created_by,
            updated_at: t.updated_at,
        }
    }
}

/// A task's new rank in a column the write rewrote.
#[derive(Serialize)]
struct Rank<'a> {
    id: Uuid,
    position: &'a str,
}

#[derive(Serialize)]
struct TaskData<'a> {
    project_id: Uuid,
    task_id: Uuid,
    task: TaskRef<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<&'a [&'static str]>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rebalanced: Vec<Rank<'a>>,
}

fn task_data<'a>(t: &'a TaskRecord, fields: Option<&'a [&'static str]>, column: &'a [(Uuid, String)]) -> TaskData<'a> {
    TaskData {
        project_id: t.project_id,
        task_id: t.id,
        task: TaskRef::from(t),
        fields,
        rebalanced: column.iter().map(|(id, position)| Rank { id: *id, position }).collect(),
    }
}

/// `task.created`: the task without its text, and the column's new ranks when it was rebalanced.
pub fn task_created(actor: Uuid, t: &TaskRecord, column: &[(Uuid, String)]) -> Event {
    event("task.created", t.id, Some(actor), t.created_at, task_data(t, None, column))
}

/// `task.updated`: as `task.created`, plus `fields`, the names of what changed.
pub fn task_updated(actor: Uuid, t: &TaskRecord, fields: &[&'static str], column: &[(Uuid, String)]) -> Event {
    event("task.updated", t.id, Some(actor), t.updated_at, task_data(t, Some(fields), column))
}

#[derive(Serialize)]
struct TaskDeleted {
    task_id: Uuid,
    project_id: Uuid,
    status: TaskStatus,
}

/// `task.deleted`: ids and the column it left.
pub fn task_deleted(actor: Uuid, t: &TaskRecord, at: OffsetDateTime) -> Event {
    event(
        "task.deleted",
        t.id,
        Some(actor),
        at,
        TaskDeleted { task_id: t.id, project_id: t.project_id, status: t.status },
    )
}

/// A comment as events show it: everything but its body.
#[derive(Serialize)]
struct CommentRef {
    id: Uuid,
    task_id: Uuid,
    project_id: Uuid,
    author_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

#[derive(Serialize)]
struct CommentData {
    comment_id: Uuid,
    task_id: Uuid,
    project_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<CommentRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<&'static [&'static str]>,
}

fn comment_data(c: &CommentRecord, fields: Option<&'static [&'static str]>) -> CommentData {
    CommentData {
        comment_id: c.id,
        task_id: c.task_id,
        project_id: c.project_id,
        comment: Some(CommentRef {
            id: c.id,
            task_id: c.task_id,
            project_id: c.project_id,
            author_id: c.author_id,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }),
        fields,
    }
}

/// `comment.created`: the comment without its body.
pub fn comment_created(actor: Uuid, c: &CommentRecord) -> Event {
    event("comment.created", c.id, Some(actor), c.created_at, comment_data(c, None))
}

/// `comment.updated`: the comment without its body, and `fields: ["body"]`.
pub fn comment_updated(actor: Uuid, c: &CommentRecord) -> Event {
    event("comment.updated", c.id, Some(actor), c.updated_at, comment_data(c, Some(&["body"])))
}

/// `comment.deleted`: ids only; `actor` is `None` when the comment went with its author's erasure.
pub fn comment_deleted(actor: Option<Uuid>, comment: Uuid, task: Uuid, project: Uuid, at: OffsetDateTime) -> Event {
    let data = CommentData { comment_id: comment, task_id: task, project_id: project, comment: None, fields: None };
    event("comment.deleted", comment, actor, at, data)
}

#[derive(Serialize)]
struct ProjectData<'a> {
    project_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<&'a [&'static str]>,
    #[serde(skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    updated_at: Option<OffsetDateTime>,
}

/// `project.created`: its id and owner.
pub fn project_created(actor: Uuid, project: Uuid, owner: Uuid, at: OffsetDateTime) -> Event {
    let data = ProjectData { project_id: project, owner_id: Some(owner), fields: None, updated_at: None };
    event("project.created", project, Some(actor), at, data)
}

/// `project.updated`: the names of the fields that changed (`name`, `description`), not their values.
pub fn project_updated(actor: Uuid, project: Uuid, fields: &[&'static str], at: OffsetDateTime) -> Event {
    let data = ProjectData { project_id: project, owner_id: None, fields: Some(fields), updated_at: Some(at) };
    event("project.updated", project, Some(actor), at, data)
}

/// `project.deleted`: its id; no actor when it went with its sole owner's erasure.
pub fn project_deleted(actor: Option<Uuid>, project: Uuid, at: OffsetDateTime) -> Event {
    let data = ProjectData { project_id: project, owner_id: None, fields: None, updated_at: None };
    event("project.deleted", project, actor, at, data)
}

#[derive(Serialize)]
struct MemberData {
    project_id: Uuid,
    user_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<ProjectRole>,
    change: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner_id: Option<Uuid>,
}

/// `member.changed` for a member `added` or whose role changed (`role_changed`).
pub fn member_changed(actor: Uuid, m: &MemberRecord, change: &'static str, at: OffsetDateTime) -> Event {
    let data = MemberData { project_id: m.project_id, user_id: m.user_id, role: Some(m.role), change, owner_id: None };
    event("member.changed", m.project_id, Some(actor), at, data)
}

/// `member.changed` with `change: "removed"`: by `actor` (an owner, or the member leaving), or by
/// the member's erasure (no actor), naming the project's new `owner_id` when it moved.
pub fn member_removed(
    actor: Option<Uuid>,
    project: Uuid,
    user: Uuid,
    new_owner: Option<Uuid>,
    at: OffsetDateTime,
) -> Event {
    let data = MemberData { project_id: project, user_id: user, role: None, change: "removed", owner_id: new_owner };
    event("member.changed", project, actor, at, data)
}

#[derive(Serialize)]
struct AttachmentData<'a> {
    attachment_id: Uuid,
    task_id: Uuid,
    project_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    uploaded_by: Option<Uuid>,
    /// The sniffed media type (`infer`), not what the client said.
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<AttachmentStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scan: Option<AttachmentScan>,
    /// The scanner's name for what it found (`attachment.rejected`, null when it gave none), not
    /// user text.
    #[serde(skip_serializing_if = "Option::is_none")]
    threat: Option<Option<&'a str>>,
}

fn attachment_ids(a: &AttachmentRecord) -> AttachmentData<'_> {
    AttachmentData {
        attachment_id: a.id,
        task_id: a.task_id,
        project_id: a.project_id,
        uploaded_by: None,
        content_type: None,
        size: None,
        status: None,
        scan: None,
        threat: None,
    }
}

/// `attachment.created`: ids, type, size and scan state; never the file's name.
pub fn attachment_created(actor: Uuid, a: &AttachmentRecord) -> Event {
    let data = AttachmentData {
        uploaded_by: Some(a.uploaded_by),
        content_type: Some(&a.content_type),
        size: Some(a.size),
        status: Some(a.status),
        scan: Some(a.scan),
        ..attachment_ids(a)
    };
    event("attachment.created", a.id, Some(actor), a.created_at, data)
}

/// `attachment.available` or `attachment.rejected` (with the scanner's `threat`): the scan's end.
pub fn attachment_scanned(
    a: &AttachmentRecord,
    status: AttachmentStatus,
    scan: AttachmentScan,
    threat: Option<&str>,
    at: OffsetDateTime,
) -> Event {
    let (kind, threat) = match status {
        AttachmentStatus::Rejected => ("attachment.rejected", Some(threat)),
        _ => ("attachment.available", None),
    };
    let data = AttachmentData { status: Some(status), scan: Some(scan), threat, ..attachment_ids(a) };
    event(kind, a.id, None, at, data)
}

/// `attachment.deleted`: ids only.
pub fn attachment_deleted(actor: Uuid, a: &AttachmentRecord, at: OffsetDateTime) -> Event {
    event("attachment.deleted", a.id, Some(actor), at, attachment_ids(a))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const CANARY: &str = "canary-7f3a";

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn text(what: &str) -> String {
        format!("{CANARY} {what} {CANARY}")
    }

    fn task() -> TaskRecord {
        let at = OffsetDateTime::now_utc();
        TaskRecord {
            id: id(1),
            project_id: id(2),
            title: text("title"),
            description: text("description"),
            status: TaskStatus::Done,
            priority: Priority::High,
            assignee_id: Some(id(3)),
            due_date: Some(time::macros::date!(2030 - 01 - 02)),
            labels: vec![text("label")],
            position: "m".into(),
            created_by: id(4),
            created_at: at,
            updated_at: at,
        }
    }

    fn comment() -> CommentRecord {
        let at = OffsetDateTime::now_utc();
        CommentRecord {
            id: id(5),
            task_id: id(1),
            project_id: id(2),
            author_id: id(4),
            body: text("body"),
            created_at: at,
            updated_at: at,
        }
    }

    fn attachment() -> AttachmentRecord {
        AttachmentRecord {
            id: id(6),
            task_id: id(1),
            project_id: id(2),
            uploaded_by: id(4),
            filename: text("file name"),
            content_type: "image/png".into(),
            size: 10,
            object_key: "attachments/x/y".into(),
            created_at: OffsetDateTime::now_utc(),
            status: AttachmentStatus::Available,
            scan: AttachmentScan::None,
            threat: None,
        }
    }

    /// One event of every kind, each built from records whose every text holds the canary.
    fn every_kind() -> Vec<Event> {
        let (t, c, a, at) = (task(), comment(), attachment(), OffsetDateTime::now_utc());
        let member = MemberRecord { project_id: id(2), user_id: id(3), role: ProjectRole::Editor, created_at: at };
        let column = vec![(id(7), "n".to_string())];
        vec![
            project_created(id(4), id(2), id(4), at),
            project_updated(id(4), id(2), &["name", "description"], at),
            project_deleted(Some(id(4)), id(2), at),
            member_changed(id(4), &member, "added", at),
            member_removed(None, id(2), id(3), Some(id(4)), at),
            task_created(id(4), &t, &column),
            task_updated(id(4), &t, &["title", "description", "labels", "status"], &column),
            task_deleted(id(4), &t, at),
            comment_created(id(4), &c),
            comment_updated(id(4), &c),
            comment_deleted(None, c.id, c.task_id, c.project_id, at),
            attachment_created(id(4), &a),
            attachment_scanned(&a, AttachmentStatus::Available, AttachmentScan::Clean, None, at),
            attachment_scanned(&a, AttachmentStatus::Rejected, AttachmentScan::Infected, Some("Eicar-Signature"), at),
            attachment_deleted(id(4), &a, at),
        ]
    }

    #[test]
    fn no_event_carries_user_written_text() {
        for e in every_kind() {
            let wire = serde_json::to_string(&e).unwrap();
            assert!(!wire.contains(CANARY), "{} carries user-written text: {wire}", e.event_type);
            assert!(e.data.get("project_id").is_some(), "{} names no project: {wire}", e.event_type);
        }
    }

    #[test]
    fn every_kind_is_built_here_and_tested() {
        let built: std::collections::BTreeSet<String> = every_kind().into_iter().map(|e| e.event_type).collect();
        let kinds: std::collections::BTreeSet<String> = KINDS.iter().map(|k| k.to_string()).collect();
        assert_eq!(built, kinds);
        // No event of this crate is made anywhere else, so none escapes the rule above.
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut stack = vec![src];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("events.rs") {
                    let code = std::fs::read_to_string(&path).unwrap();
                    let code = code.split("#[cfg(test)]").next().unwrap_or_default();
                    assert!(!code.contains("Event::new("), "{} builds an event: use crate::events", path.display());
                }
            }
        }
    }

    #[test]
    fn events_keep_what_consumers_need() {
        let t = task();
        let e = task_updated(id(9), &t, &["status"], &[]);
        // The statistics count completions by `task.status` and `fields`; notifications and the
        // web app find the task and its assignee by id.
        assert_eq!(e.data["task"]["status"], "done");
        assert_eq!(e.data["task"]["assignee_id"], id(3).to_string());
        assert_eq!(e.data["task"]["id"], id(1).to_string());
        assert_eq!(e.data["fields"], serde_json::json!(["status"]));
        let c = comment_created(id(9), &comment());
        assert_eq!(c.data["comment"]["task_id"], id(1).to_string());
        assert_eq!(c.data["comment"]["author_id"], id(4).to_string());
        let u = project_updated(id(9), id(2), &["name"], OffsetDateTime::now_utc());
        assert_eq!(u.data["fields"], serde_json::json!(["name"]));
        assert!(u.data.get("name").is_none());
    }
}
