//! The projects service's public DTOs (docs/API.md "Projects and tasks").

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProjectRole {
    Owner,
    Editor,
    Viewer,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Project {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub owner_id: Uuid,
    /// The caller's role in this project.
    pub role: ProjectRole,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Todo,
    InProgress,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    Medium,
    High,
    Urgent,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Task {
    pub id: Uuid,
    pub project_id: Uuid,
    pub title: String,
    pub description: String,
    pub status: TaskStatus,
    pub priority: Priority,
    pub assignee_id: Option<Uuid>,
    /// A calendar date, `YYYY-MM-DD`.
    pub due_date: Option<String>,
    pub labels: Vec<String>,
    pub position: String,
    pub created_by: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Body of `POST /api/projects/{id}/tasks`. Every field but `title` may be left out; the task
/// goes to the end of its column unless `before_id` or `after_id` names a task of that column.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub status: Option<TaskStatus>,
    pub priority: Option<Priority>,
    /// A member of the project who is not a global guest.
    #[serde(default)]
    pub assignee_id: Option<Uuid>,
    /// A calendar date, `YYYY-MM-DD`.
    #[serde(default)]
    pub due_date: Option<String>,
    /// At most 20 labels of 1–50 characters; duplicates are dropped.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Place the task just before this task of its column.
    #[serde(default)]
    pub before_id: Option<Uuid>,
    /// Place the task just after this task of its column.
    #[serde(default)]
    pub after_id: Option<Uuid>,
}

/// Body of `PATCH /api/projects/{id}`: absent fields stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProject {
    pub name: Option<String>,
    pub description: Option<String>,
}

/// A member of a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Member {
    pub user_id: Uuid,
    pub role: ProjectRole,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Body of `POST /api/projects/{id}/members`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    pub user_id: Uuid,
    pub role: ProjectRole,
}

/// The other body of `POST /api/projects/{id}/members`: a member by exact email address. The
/// answer (202 [`MemberInvited`]) is the same whether or not the address has an account: an
/// active account is added, an unknown address gets an invitation to register.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteMember {
    pub email: String,
    pub role: ProjectRole,
}

/// The answer to [`InviteMember`], identical for known and unknown addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MemberInvited {
    /// The address as understood (trimmed, lowercased).
    pub email: String,
    pub role: ProjectRole,
}

/// Body of `PATCH /api/projects/{id}/members/{user_id}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeMember {
    pub role: ProjectRole,
}

/// A page of a list: `{items, next_cursor}` (docs/API.md "Lists").
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Tasks: changing one task (branch `tasks`).
// ---------------------------------------------------------------------------------------------

/// `Some(value)` for a present field, even `null` (then `Some(None)`); with `#[serde(default)]`
/// an absent field stays `None`. So a PATCH can tell "leave it" from "clear it".
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Body of `PATCH /api/tasks/{id}`: absent fields stay as they are; `assignee_id` and `due_date`
/// may be `null` to clear them. `status` and/or `before_id`/`after_id` move the task: a new
/// status without a placement puts it at the end of that column. `project_id`, `created_by` and
/// `position` are not writable.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTask {
    pub title: Option<String>,
    pub description: Option<String>,
    pub status: Option<TaskStatus>,
    pub priority: Option<Priority>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Uuid>)]
    pub assignee_id: Option<Option<Uuid>>,
    /// A calendar date, `YYYY-MM-DD`, or `null`.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub due_date: Option<Option<String>>,
    pub labels: Option<Vec<String>>,
    /// Place the task just before this task of its (new) column.
    pub before_id: Option<Uuid>,
    /// Place the task just after this task of its (new) column.
    pub after_id: Option<Uuid>,
}

#[cfg(test)]
mod update_task_tests {
    use super::*;

    #[test]
    fn absent_null_and_value_are_three_things() {
        let parse = |s: &str| serde_json::from_str::<UpdateTask>(s).map_err(|e| e.to_string());
        let absent = parse("{}").unwrap_or_default();
        assert_eq!((absent.assignee_id, absent.due_date), (None, None));
        let null = parse(r#"{"assignee_id": null, "due_date": null}"#).unwrap_or_default();
        assert_eq!((null.assignee_id, null.due_date), (Some(None), Some(None)));
        let id = Uuid::nil();
        let set = parse(&format!(r#"{{"assignee_id": "{id}", "due_date": "2030-01-02"}}"#)).unwrap_or_default();
        assert_eq!((set.assignee_id, set.due_date), (Some(Some(id)), Some(Some("2030-01-02".into()))));
        assert!(parse(r#"{"position": "a"}"#).is_err());
        assert!(parse(r#"{"project_id": null}"#).is_err());
    }
}

// ---- Comments and search (branch `comments`) ----

/// A comment on a task (Markdown text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Comment {
    pub id: Uuid,
    pub task_id: Uuid,
    pub project_id: Uuid,
    pub author_id: Uuid,
    pub body: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Body of `POST /api/tasks/{id}/comments`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateComment {
    /// 1–10,000 characters of Markdown, not blank. `<@USER_UUID>` mentions a user (the web app
    /// inserts it from a member picker and shows it as @Name): members of the project who are
    /// mentioned are mailed, unless they turned `notifications.mentioned` off; an edit mails only
    /// the mentions it adds.
    pub body: String,
}

/// Body of `PATCH /api/comments/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateComment {
    /// 1–10,000 characters of Markdown, not blank. `<@USER_UUID>` mentions a user (the web app
    /// inserts it from a member picker and shows it as @Name): members of the project who are
    /// mentioned are mailed, unless they turned `notifications.mentioned` off; an edit mails only
    /// the mentions it adds.
    pub body: String,
}

/// What a search result is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SearchKind {
    Project,
    Task,
    Comment,
}

/// One result of `GET /api/search`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchResult {
    pub kind: SearchKind,
    /// The project's, task's or comment's id.
    pub id: Uuid,
    pub project_id: Uuid,
    /// The task of a task or comment; absent for a project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<Uuid>,
    /// The project's name or the task's title (for a comment, its task's title).
    pub title: String,
    /// Plain text around the first match in the description or comment body (no markup).
    pub snippet: String,
    /// Relevance, higher is better; comparable within one answer only.
    pub rank: f64,
}

// ---------------------------------------------------------------------------------------------
// Attachments (branch `attachments`): files of a task, in object storage.
// ---------------------------------------------------------------------------------------------

/// `GET /api/attachments/{id}/link`: where a browser fetches the file. With S3 storage, a
/// presigned GET of the object (another origin, so a page navigates to it instead of fetching
/// it); with local storage `null`: the bytes come from `GET /api/attachments/{id}` with the
/// bearer token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AttachmentLink {
    pub url: Option<String>,
    /// Seconds the URL stays valid (absent with `url: null`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
}

/// A file attached to a task. `content_type` is sniffed from the file's bytes, never the
/// client's; `filename` is the client's, sanitized (last path component, no control characters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Attachment {
    pub id: Uuid,
    pub task_id: Uuid,
    pub project_id: Uuid,
    pub filename: String,
    pub content_type: String,
    /// Bytes.
    pub size: u64,
    pub uploaded_by: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Whether the file may be downloaded yet (malware scan, docs/SECURITY.md UP-5).
    pub status: AttachmentStatus,
    /// What the malware scan found; `none` when no scanner is configured (never scanned).
    pub scan: AttachmentScan,
}

// ---------------------------------------------------------------------------------------------
// Attachment scans and downloads (branch `uploads`): quarantine, malware scan, presigned GETs.
// ---------------------------------------------------------------------------------------------

/// Where an attachment is in its malware scan. Only `available` files are downloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentStatus {
    /// Stored, waiting for (or in) its scan; downloads are 409.
    Quarantined,
    /// Scanned clean, or stored where no scanner is configured (`scan: none`).
    Available,
    /// The scan found malware; the bytes are deleted, downloads are 409.
    Rejected,
}

/// The malware scan of an attachment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentScan {
    /// Not scanned: no scanner was configured when the file was stored.
    None,
    /// Waiting for the scanner.
    Pending,
    /// The scanner found nothing.
    Clean,
    /// The scanner found malware (or the file could not be scanned, which counts the same).
    Infected,
}

/// What other services (the worker's live updates and notifications) may ask of the projects
/// service: who may see a project, and the current state of a task or comment. Events carry no
/// user-written text (ARCHITECTURE.md "What events may carry"), so a consumer that shows text
/// reads it here when it delivers, and skips what is gone (`None`).
#[async_trait::async_trait]
pub trait ProjectAccess: Send + Sync {
    /// The role through which `user`, whose global role is `role`, sees `project` (admins see every
    /// project, as owners); `None` when they may not see it or it does not exist.
    async fn project_role(
        &self,
        project: Uuid,
        user: Uuid,
        role: crate::users::Role,
    ) -> Result<Option<ProjectRole>, crate::ApiError>;

    /// The task as it is now (`GET /internal/projects/tasks/{id}`); `None` when it is gone. Whoever
    /// shows it to someone checks `project_role` for them first.
    async fn current_task(&self, id: Uuid) -> Result<Option<Task>, crate::ApiError>;

    /// The comment as it is now (`GET /internal/projects/comments/{id}`); `None` when it is gone
    /// (deleted, with its task or project, or with its author's erasure).
    async fn current_comment(&self, id: Uuid) -> Result<Option<Comment>, crate::ApiError>;
}

/// The question of `POST /internal/projects/access` and its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessQuery {
    pub project_id: Uuid,
    pub user_id: Uuid,
    pub role: crate::users::Role,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessAnswer {
    pub role: Option<ProjectRole>,
}

/// Who shares a project with whom, for the users service's search (docs/SECURITY.md: a non-admin
/// finds only people who share a project with them).
#[async_trait::async_trait]
pub trait ProjectPeople: Send + Sync {
    /// The users who are members of at least one project `user` is a member of (`user` included
    /// when they are a member of any), in no particular order.
    async fn co_members(&self, user: Uuid) -> Result<Vec<Uuid>, crate::ApiError>;
}

/// The question of `POST /internal/projects/co-members` and its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoMembersQuery {
    pub user_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoMembersAnswer {
    pub user_ids: Vec<Uuid>,
}
