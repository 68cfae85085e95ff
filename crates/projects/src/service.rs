//! The use cases of the projects service, over the storage ports: validation, access rules
//! ([`crate::domain::effective_role`]), events, pagination cursors and the mapping to API DTOs.

pub mod attachments;
mod comments;
mod members;
mod people;
pub(crate) mod search;
pub(crate) mod tasks;

pub use attachments::{
    AttachmentError, DEFAULT_MAX_ATTACHMENT_BYTES, Download, DownloadBody, MAX_PRESIGN_TTL, ScanPass, attachment_etag,
};
pub use comments::comment_etag;
pub use members::{ChangeError, member_etag, project_etag};
pub use people::Invitations;
pub use tasks::{TaskListQuery, filter_date, task_etag};

pub use crate::ports::{TaskFilter, TaskOrder, TaskSort};

use std::sync::{Arc, OnceLock};

use api::personal::{DataSubject, ErasureReport, PersonalData, PersonalDataApi};
use api::projects::{CreateProject, Page, Project, ProjectRole, Task};
use api::users::Role;
use api::{ApiError, FieldError};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use platform::clock::Clock;
use platform::identity::Identity;
use platform::ids::new_id;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::cache::{EntityCache, Key};
use crate::domain::{Description, ProjectName, can_create_projects, effective_role};
use crate::ports::{
    ErasureCounts, MemberRecord, NewProject, PersonalDataStore, ProjectRecord, ProjectScope, ProjectStore, ProjectView,
    ProjectsStore, TaskRecord, TaskStore, UserRows,
};
use crate::store::role_str;

/// Who performs a use case: a verified user and their global role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Uuid,
    pub role: Role,
}

impl From<&Identity> for Actor {
    fn from(id: &Identity) -> Self {
        Self { user_id: id.user_id, role: id.role }
    }
}

/// The page size when the client names none, and the largest it may ask for (docs/API.md "Lists").
pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

/// Which page of a list to read: `limit` 1–100 (default 20) and the opaque `cursor` of the
/// previous page's `next_cursor`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl PageRequest {
    fn limit(&self) -> Result<u32, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(l @ 1..=MAX_LIMIT) => Ok(l),
            Some(_) => Err(invalid("limit", format!("must be between 1 and {MAX_LIMIT}"))),
        }
    }
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::Invalid(vec![FieldError::new(field, message)])
}

fn bad_cursor() -> ApiError {
    invalid("cursor", "is not a cursor from this list")
}

/// A project list's cursor: the last id of the page, base64url.
pub(crate) fn encode_project_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

pub(crate) fn decode_project_cursor(s: &str) -> Result<Uuid, ApiError> {
    let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad_cursor())?;
    Uuid::from_slice(&bytes).map_err(|_| bad_cursor())
}

/// Splits `limit + 1` rows into a page of `limit` and the cursor of the next page, if any.
fn paginate<R, T>(
    mut rows: Vec<R>,
    limit: u32,
    cursor_of: impl Fn(&R) -> String,
    to_item: impl FnMut(R) -> T,
) -> Page<T> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(&cursor_of) } else { None };
    Page { items: rows.into_iter().map(to_item).collect(), next_cursor }
}

fn project_dto(p: ProjectRecord, role: ProjectRole) -> Project {
    Project {
        id: p.id,
        name: p.name,
        description: p.description,
        owner_id: p.owner_id,
        role,
        created_at: p.created_at,
        updated_at: p.updated_at,
    }
}

fn task_dto(t: TaskRecord) -> Task {
    Task {
        id: t.id,
        project_id: t.project_id,
        title: t.title,
        description: t.description,
        status: t.status,
        priority: t.priority,
        assignee_id: t.assignee_id,
        // `Date`'s Display is ISO 8601, `YYYY-MM-DD`.
        due_date: t.due_date.map(|d| d.to_string()),
        labels: t.labels,
        position: t.position,
        created_by: t.created_by,
        created_at: t.created_at,
        updated_at: t.updated_at,
    }
}

fn rfc3339(t: OffsetDateTime) -> Result<String, ApiError> {
    t.format(&Rfc3339).map_err(|e| ApiError::Internal(format!("cannot format time: {e}")))
}

/// A `projects` row with every column.
fn project_row(p: &ProjectRecord) -> Result<Value, ApiError> {
    Ok(json!({
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "owner_id": p.owner_id,
        "created_at": rfc3339(p.created_at)?,
        "updated_at": rfc3339(p.updated_at)?,
    }))
}

/// A `project_members` row with every column.
fn member_row(m: &MemberRecord) -> Result<Value, ApiError> {
    Ok(json!({
        "project_id": m.project_id,
        "user_id": m.user_id,
        "role": role_str(m.role),
        "created_at": rfc3339(m.created_at)?,
    }))
}

/// A `tasks` row with every column: the API's task, whose fields are the columns, with status
/// and priority by name rather than by their stored codes.
fn task_row(t: TaskRecord) -> Result<Value, ApiError> {
    serde_json::to_value(task_dto(t)).map_err(|e| ApiError::Internal(format!("cannot serialize a task: {e}")))
}

fn personal_data(rows: UserRows) -> Result<PersonalData, ApiError> {
    let UserRows { projects, memberships, tasks, comments } = rows;
    let tables = [
        ("projects", projects.iter().map(project_row).collect::<Result<Vec<_>, _>>()?),
        ("project_members", memberships.iter().map(member_row).collect::<Result<_, _>>()?),
        ("tasks", tasks.into_iter().map(task_row).collect::<Result<_, _>>()?),
        ("comments", comments.into_iter().map(comments::comment_row).collect::<Result<_, _>>()?),
    ];
    Ok(PersonalData { tables: tables.into_iter().map(|(t, rows)| (t.to_string(), rows)).collect() })
}

fn erasure_report(c: ErasureCounts) -> ErasureReport {
    let tables = [
        ("projects", c.projects),
        ("project_members", c.project_members),
        ("tasks", c.tasks),
        ("comments", c.comments),
    ];
    ErasureReport { tables: tables.into_iter().map(|(t, n)| (t.to_string(), n)).collect() }
}

/// The answer for an object in a project the actor may not see: `NotFound`, exactly as for one
/// that does not exist; the refusal is logged with who asked (docs/SECURITY.md AZ-11).
fn invisible(actor: Actor, project_id: Uuid) -> ApiError {
    tracing::warn!(
        user_id = %actor.user_id,
        role = actor.role.as_str(),
        %project_id,
        by = "projects",
        "authorization denied"
    );
    ApiError::NotFound
}

/// The projects service.
pub struct ProjectsService {
    projects: Arc<dyn ProjectStore>,
    tasks: Arc<dyn TaskStore>,
    personal: Arc<dyn PersonalDataStore>,
    members: Arc<dyn crate::ports::MemberStore>,
    comments: Arc<dyn crate::ports::CommentStore>,
    search: Arc<dyn crate::ports::SearchStore>,
    attachments: Arc<dyn crate::ports::AttachmentStore>,
    /// Object storage for attachments, connected after construction.
    objects: OnceLock<attachments::Objects>,
    clock: Arc<dyn Clock>,
    outbox_waker: Option<Arc<Notify>>,
    /// The users service, to check that a new member exists and is active. Connected after
    /// construction, like the other services' cross-service ports.
    users: OnceLock<Arc<dyn api::users::UsersApi>>,
    /// Single projects, memberships and tasks ([`crate::cache`]); disabled unless
    /// [`ProjectsService::with_cache`] is called.
    cache: EntityCache,
    /// The stored answers of `Idempotency-Key` requests, which hold personal data for 24 hours:
    /// exported and erased with the rest when connected.
    idempotency: OnceLock<Arc<platform::http::idempotency::Idempotency>>,
    /// The mailer for invitations to register (adding a member by an unknown address).
    invitations: OnceLock<people::Invitations>,
}

impl ProjectsService {
    /// `outbox_waker` is the outbox relay's waker ([`platform::outbox::Relay::waker`]), poked
    /// after each committed write so events leave at once rather than at the next poll.
    pub fn new(store: Arc<dyn ProjectsStore>, clock: Arc<dyn Clock>, outbox_waker: Option<Arc<Notify>>) -> Self {
        Self {
            projects: store.clone(),
            tasks: store.clone(),
            members: store.clone(),
            comments: store.clone(),
            search: store.clone(),
            attachments: store.clone(),
            objects: OnceLock::new(),
            personal: store,
            clock,
            outbox_waker,
            users: OnceLock::new(),
            cache: EntityCache::disabled(),
            idempotency: OnceLock::new(),
            invitations: OnceLock::new(),
        }
    }

    /// The read-through cache, for the cross-instance invalidation consumer
    /// ([`crate::invalidation`]).
    pub(crate) fn entity_cache(&self) -> &EntityCache {
        &self.cache
    }

    /// Connects the `Idempotency-Key` store of this service's router, so that GDPR export and
    /// erasure cover its stored answers (`idempotency_keys`).
    pub fn connect_idempotency(&self, idempotency: Arc<platform::http::idempotency::Idempotency>) {
        if self.idempotency.set(idempotency).is_err() {
            tracing::warn!("the idempotency store was already connected");
        }
    }

    /// Reads single projects, memberships and tasks through `cache` (15-minute entries,
    /// invalidated on every write; see [`crate::cache`]).
    pub fn with_cache(mut self, cache: Arc<dyn platform::cache::Cache>) -> Self {
        self.cache = EntityCache::new(cache);
        self
    }

    /// Connects the users service (in process or over HTTP). Until then, adding a member is
    /// refused as unavailable.
    pub fn connect_users(&self, users: Arc<dyn api::users::UsersApi>) {
        if self.users.set(users).is_err() {
            tracing::warn!("the users API was already connected");
        }
    }

    /// Now, in UTC, to the microsecond: what both backends store exactly, so that a value read
    /// back equals the value written.
    fn now(&self) -> OffsetDateTime {
        let t = self.clock.now().to_offset(UtcOffset::UTC);
        t.replace_microsecond(t.microsecond()).unwrap_or(t)
    }

    fn written(&self) {
        if let Some(waker) = &self.outbox_waker {
            waker.notify_one();
        }
    }

    /// The project and the actor's effective role in it; `NotFound` when the actor may not see
    /// it, exactly as when it does not exist.
    async fn visible_project(&self, actor: Actor, id: Uuid) -> Result<(ProjectRecord, ProjectRole), ApiError> {
        let user = actor.user_id;
        let ProjectView { project, member_role } =
            self.cache.project_view(id, user, || self.projects.get_project(id, user)).await?;
        let role = effective_role(actor.role, member_role).ok_or_else(|| invisible(actor, id))?;
        Ok((project, role))
    }

    /// Creates a project owned by the actor (also its first member, as `owner`).
    pub async fn create_project(&self, actor: Actor, input: CreateProject) -> Result<Project, ApiError> {
        if !can_create_projects(actor.role) {
            return Err(ApiError::Forbidden);
        }
        let name = ProjectName::parse(&input.name);
        let description = Description::parse(&input.description);
        let (name, description) = match (name, description) {
            (Ok(n), Ok(d)) => (n, d),
            (n, d) => {
                let errors = [("name", n.err()), ("description", d.err())]
                    .into_iter()
                    .filter_map(|(f, e)| e.map(|e| FieldError::new(f, e.to_string())))
                    .collect();
                return Err(ApiError::Invalid(errors));
            }
        };
        let now = self.now();
        let project = NewProject { id: new_id(), name, description, owner_id: actor.user_id, created_at: now };
        let event = crate::events::project_created(actor.user_id, project.id, project.owner_id, now);
        let record = self.projects.create_project(&project, &event).await?;
        self.written();
        // The creator is the owner; an admin creating a project is its owner too.
        Ok(project_dto(record, effective_role(actor.role, Some(ProjectRole::Owner)).unwrap_or(ProjectRole::Owner)))
    }

    /// The projects the actor is a member of (admins: all), in creation order.
    pub async fn list_projects(&self, actor: Actor, page: PageRequest) -> Result<Page<Project>, ApiError> {
        let limit = page.limit()?;
        let after = page.cursor.as_deref().map(decode_project_cursor).transpose()?;
        let scope = match actor.role {
            Role::Admin => ProjectScope::All { viewer: actor.user_id },
            Role::User | Role::Guest => ProjectScope::MemberOf(actor.user_id),
        };
        let rows = self.projects.list_projects(scope, after, limit + 1).await?;
        let mut hidden = false;
        let page = paginate(
            rows,
            limit,
            |v| encode_project_cursor(v.project.id),
            |v| {
                let role = effective_role(actor.role, v.member_role);
                hidden |= role.is_none();
                project_dto(v.project, role.unwrap_or(ProjectRole::Viewer))
            },
        );
        if hidden {
            // The scope only yields visible projects; anything else is a store bug, never a leak.
            return Err(ApiError::Internal("project listing returned a project the caller may not see".into()));
        }
        Ok(page)
    }

    /// One project, for its members and admins.
    pub async fn get_project(&self, actor: Actor, id: Uuid) -> Result<Project, ApiError> {
        let (project, role) = self.visible_project(actor, id).await?;
        Ok(project_dto(project, role))
    }
}

/// GDPR export and erasure of one user's rows (the users service calls it for every service).
/// Other services ask who sees a project through the same cached lookup as the routes, without
/// logging a refusal: asking is not a request for the project.
#[async_trait]
impl api::projects::ProjectAccess for ProjectsService {
    async fn project_role(&self, project: Uuid, user: Uuid, role: Role) -> Result<Option<ProjectRole>, ApiError> {
        match self.cache.project_view(project, user, || self.projects.get_project(project, user)).await {
            Ok(view) => Ok(effective_role(role, view.member_role)),
            Err(platform::db::StoreError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn current_task(&self, id: Uuid) -> Result<Option<api::projects::Task>, ApiError> {
        match self.cache.task(id, || self.tasks.get_task(id)).await {
            Ok(task) => Ok(Some(task_dto(task))),
            Err(platform::db::StoreError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn current_comment(&self, id: Uuid) -> Result<Option<api::projects::Comment>, ApiError> {
        // The membership read with it is nobody's: the caller checks the recipient's access.
        match self.comments.get_comment(id, Uuid::nil()).await {
            Ok(view) => Ok(Some(comments::comment_dto(view.comment))),
            Err(platform::db::StoreError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// The subject's email is not used: this service keys nothing by email.
#[async_trait]
impl PersonalDataApi for ProjectsService {
    /// `projects` (member of, or `owner_id`), `project_members` (the user's own memberships),
    /// `tasks` (created by or assigned to the user), `comments` (written by the user) and
    /// `attachments` (uploaded by the user), every column, each table present.
    async fn export(&self, subject: &DataSubject) -> Result<PersonalData, ApiError> {
        let mut data = personal_data(self.personal.export_user(subject.user_id).await?)?;
        data.tables.insert("attachments".into(), self.attachment_rows(subject.user_id).await?);
        if let Some(idempotency) = self.idempotency.get() {
            data.tables.insert("idempotency_keys".into(), idempotency.export_user(subject.user_id).await?);
        }
        Ok(data)
    }

    /// See [`PersonalDataStore::erase_user`]: projects the user alone owns are deleted, in the
    /// others the user's membership and assignments go and `owner_id` moves to the oldest other
    /// owner; tasks they created stay under their (pseudonymous) id. Every comment they wrote
    /// is deleted: unlike a task, whose title is the team's, a comment's body is the user's own
    /// words (personal data), and a thread with a comment missing still reads. Counts per table, every
    /// table present; zero everywhere when there was nothing (left) to erase.
    async fn erase(&self, subject: &DataSubject) -> Result<ErasureReport, ApiError> {
        // What the erasure may change, read first so that its cache entries can go after it.
        let before = self.personal.export_user(subject.user_id).await?;
        let counts = self.personal.erase_user(subject.user_id, self.now()).await?;
        if counts != ErasureCounts::default() {
            let user = subject.user_id;
            let keys: Vec<Key> = before
                .projects
                .iter()
                .flat_map(|p| [Key::Project(p.id), Key::Member { project: p.id, user }])
                .chain(before.tasks.iter().map(|t| Key::Task(t.id)))
                .collect();
            self.cache.invalidate(&keys).await;
            self.written();
        }
        let mut report = erasure_report(counts);
        if let Some(idempotency) = self.idempotency.get() {
            let forgotten = idempotency.forget_user(subject.user_id).await?;
            report.tables.insert("idempotency_keys".into(), forgotten);
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_cursor_round_trips_and_is_url_safe() {
        let id = new_id();
        let c = encode_project_cursor(id);
        assert!(c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(decode_project_cursor(&c), Ok(id));
    }

    #[test]
    fn bad_project_cursors_are_invalid_input() {
        for c in ["", "!!", "AAAA", &URL_SAFE_NO_PAD.encode([0u8; 17])] {
            assert!(matches!(decode_project_cursor(c), Err(ApiError::Invalid(e)) if e[0].field == "cursor"), "{c}");
        }
    }

    #[test]
    fn limit_defaults_to_20_and_stays_within_1_to_100() {
        assert_eq!(PageRequest::default().limit(), Ok(20));
        assert_eq!(PageRequest { limit: Some(1), cursor: None }.limit(), Ok(1));
        assert_eq!(PageRequest { limit: Some(100), cursor: None }.limit(), Ok(100));
        assert!(PageRequest { limit: Some(0), cursor: None }.limit().is_err());
        assert!(PageRequest { limit: Some(101), cursor: None }.limit().is_err());
    }

    #[test]
    fn paginate_reports_a_next_cursor_only_when_rows_remain() {
        let page = paginate(vec![1, 2, 3], 2, |n| n.to_string(), |n| n);
        assert_eq!((page.items, page.next_cursor), (vec![1, 2], Some("2".into())));
        let page = paginate(vec![1, 2], 2, |n| n.to_string(), |n| n);
        assert_eq!((page.items, page.next_cursor), (vec![1, 2], None));
    }
}
