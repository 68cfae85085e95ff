//! The storage ports of the projects service: one narrow trait per aggregate, each implemented
//! once per backend in [`crate::store`]. Writes take the event to store in the outbox, so that the
//! state change and its event commit together.

use api::projects::{Priority, ProjectRole, TaskStatus};
use async_trait::async_trait;
use platform::bus::Event;
use platform::db::StoreError;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::domain::tasks::Labels;
use crate::domain::{Description, ProjectName, TaskTitle};

/// A project as stored (and as cached, [`crate::cache`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProjectRecord {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub owner_id: Uuid,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A project with the membership role of the user it was read for (`None`: not a member).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectView {
    pub project: ProjectRecord,
    pub member_role: Option<ProjectRole>,
}

/// A project to create; its owner becomes its first member.
#[derive(Debug, Clone)]
pub struct NewProject {
    pub id: Uuid,
    pub name: ProjectName,
    pub description: Description,
    pub owner_id: Uuid,
    pub created_at: OffsetDateTime,
}

/// Which projects a listing covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectScope {
    /// The projects `user` is a member of.
    MemberOf(Uuid),
    /// Every project (admins); `viewer`'s membership roles are still reported.
    All { viewer: Uuid },
}

#[async_trait]
pub trait ProjectStore: Send + Sync {
    /// Inserts the project, its owner's `owner` membership and `event`, in one transaction.
    async fn create_project(&self, project: &NewProject, event: &Event) -> Result<ProjectRecord, StoreError>;

    /// The project `id` with `user`'s membership role; `NotFound` when there is no such project.
    async fn get_project(&self, id: Uuid, user: Uuid) -> Result<ProjectView, StoreError>;

    /// Up to `limit` projects of `scope` with ids greater than `after`, in id (creation) order.
    async fn list_projects(
        &self,
        scope: ProjectScope,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<ProjectView>, StoreError>;
}

/// A task as stored (and as cached, [`crate::cache`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TaskRecord {
    pub id: Uuid,
    pub project_id: Uuid,
    pub title: String,
    pub description: String,
    pub status: TaskStatus,
    pub priority: Priority,
    pub assignee_id: Option<Uuid>,
    pub due_date: Option<Date>,
    pub labels: Vec<String>,
    pub position: String,
    pub created_by: Uuid,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A task to create. Its position is chosen by the store, inside the transaction: where
/// `placement` says, by default the end of its status column.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub id: Uuid,
    pub project_id: Uuid,
    pub title: TaskTitle,
    pub description: Description,
    pub status: TaskStatus,
    pub priority: Priority,
    pub assignee_id: Option<Uuid>,
    pub due_date: Option<Date>,
    pub labels: Labels,
    pub placement: Placement,
    pub created_by: Uuid,
    pub created_at: OffsetDateTime,
}

/// Where a task goes in its (target) column: just before `before`, just after `after`, between
/// both (which must then be neighbours), or with neither, at the end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Placement {
    pub before: Option<Uuid>,
    pub after: Option<Uuid>,
}

impl Placement {
    pub fn is_end(&self) -> bool {
        self.before.is_none() && self.after.is_none()
    }
}

/// A change of a task, written if the stored `updated_at` is still `read_at`: every writable
/// field's new value, and a move when `moved` (to the end of `status`'s column, or where
/// `placement` says). Without a move a task whose status is unchanged keeps its position.
#[derive(Debug, Clone)]
pub struct TaskChange {
    pub id: Uuid,
    pub project_id: Uuid,
    pub title: String,
    pub description: String,
    pub status: TaskStatus,
    pub priority: Priority,
    pub assignee_id: Option<Uuid>,
    pub due_date: Option<Date>,
    pub labels: Vec<String>,
    /// Placement in `status`'s column, if the client asked for one.
    pub placement: Option<Placement>,
    /// The assignee changed: check inside the transaction that they are a project member.
    pub check_assignee: bool,
    pub read_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// Builds a write's event from the task as it is about to commit (its position is chosen inside
/// the transaction), so that the event carries exactly what was written; the second argument
/// lists the column's new `(id, position)`s when the write rebalanced it (else it is empty).
pub type TaskEvent = Box<dyn FnOnce(&TaskRecord, &[(Uuid, String)]) -> Event + Send>;

/// What became of a task write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskWrite {
    Done(TaskRecord),
    /// `updated_at` was no longer `read_at`; nothing written.
    Stale,
    /// The assignee is not a member of the project; nothing written.
    NotMember,
    /// `before_id`/`after_id` (the field named) is not a task of the target column, or the two
    /// are not neighbours; nothing written.
    BadNeighbour(&'static str),
}

/// The sorts of a task list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskSort {
    /// Board order: status column, then position.
    Position,
    /// Tasks without a due date come last, in both directions.
    DueDate,
    Priority,
    CreatedAt,
    UpdatedAt,
}

/// A sort and its direction; ties are broken by id in the same direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskOrder {
    pub sort: TaskSort,
    pub descending: bool,
}

impl Default for TaskOrder {
    fn default() -> Self {
        Self { sort: TaskSort::Position, descending: false }
    }
}

/// The sort key of a task under a [`TaskSort`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortValue {
    Position(TaskStatus, String),
    DueDate(Option<Date>),
    Priority(Priority),
    Time(OffsetDateTime),
}

/// Where a page starts: after the task with this sort key and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskCursor {
    pub value: SortValue,
    pub id: Uuid,
}

/// Filters of a task listing; every one given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    pub assignee_id: Option<Uuid>,
    pub priority: Option<Priority>,
    /// Tasks carrying this label (exactly).
    pub label: Option<String>,
    /// Due strictly before this date (tasks without one are left out).
    pub due_before: Option<Date>,
    /// Due strictly after this date (tasks without one are left out).
    pub due_after: Option<Date>,
    /// Case-insensitive substring of the title or the description.
    pub q: Option<String>,
}

/// One page of a project's tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskQuery {
    pub project_id: Uuid,
    pub filter: TaskFilter,
    pub order: TaskOrder,
    pub after: Option<TaskCursor>,
    pub limit: u32,
}

#[async_trait]
pub trait TaskStore: Send + Sync {
    /// Inserts the task where its placement says (by default the end of its status column, a
    /// rank after the column's last) with `event`, in one transaction that excludes concurrent
    /// writes to the project's tasks. `NotFound` when the project does not exist.
    async fn create_task(&self, task: &NewTask, event: TaskEvent) -> Result<TaskWrite, StoreError>;

    /// The task `id`; `NotFound` when there is none. No access check: the service checks the
    /// caller's role in `project_id`.
    async fn get_task(&self, id: Uuid) -> Result<TaskRecord, StoreError>;

    /// Writes `change` with its event, compare-and-set on `updated_at`; `NotFound` when the task
    /// is gone. A move computes the position from the neighbours read in the transaction and
    /// never renumbers the column, unless the new rank would exceed [`crate::rank::MAX_LEN`]:
    /// then the whole column gets fresh ranks ([`crate::rank::spread`]), in order.
    async fn update_task(&self, change: &TaskChange, event: TaskEvent) -> Result<TaskWrite, StoreError>;

    /// Deletes the task with `event` if its `updated_at` is still `read_at`: `false` when it is
    /// not, `NotFound` when it is gone.
    async fn delete_task(&self, id: Uuid, read_at: OffsetDateTime, event: &Event) -> Result<bool, StoreError>;

    /// Up to `query.limit` tasks of the project matching its filter, in its order, after its
    /// cursor: one statement, whatever the page holds.
    async fn list_tasks(&self, query: &TaskQuery) -> Result<Vec<TaskRecord>, StoreError>;
}

/// A `project_members` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    pub project_id: Uuid,
    pub user_id: Uuid,
    pub role: ProjectRole,
    pub created_at: OffsetDateTime,
}

/// The rows about one user (GDPR export), each list in id (creation) order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserRows {
    /// Projects the user is a member of or whose `owner_id` is the user.
    pub projects: Vec<ProjectRecord>,
    /// The user's own memberships (not the other members of their projects).
    pub memberships: Vec<MemberRecord>,
    /// Tasks the user created or is assigned to, in any project.
    pub tasks: Vec<TaskRecord>,
    /// Comments the user wrote, in any project.
    pub comments: Vec<CommentRecord>,
}

/// Rows an erasure deleted or changed, per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErasureCounts {
    /// Projects deleted, plus projects whose `owner_id` moved to another owner.
    pub projects: u64,
    /// Memberships deleted: the user's own, and every membership of a deleted project.
    pub project_members: u64,
    /// Tasks deleted with their project, plus tasks unassigned from the user.
    pub tasks: u64,
    /// Comments the user wrote, plus the other comments of deleted projects.
    pub comments: u64,
}

/// Personal data of one user across the service's tables (GDPR Art. 15, 17, 20).
#[async_trait]
pub trait PersonalDataStore: Send + Sync {
    /// Every row about `user`, read from one snapshot.
    async fn export_user(&self, user: Uuid) -> Result<UserRows, StoreError>;

    /// Erases `user` in one transaction, project by project as [`crate::domain::plan_erasure`]
    /// decides: deletes the projects they alone own (with their members and tasks), removes
    /// their other memberships, hands `owner_id` to the oldest remaining owner, and unassigns
    /// every task assigned to them. Tasks they created in kept projects keep `created_by`.
    /// Deletes every comment the user wrote (the body is their words: personal data), with a
    /// `comment.deleted` each (ids only), and the comments of the projects it deletes.
    /// Writes `project.deleted` per deleted project and `member.changed` per removed membership
    /// ([`crate::store::erasure_event`]), stamped `at`. Erasing an erased user changes nothing.
    async fn erase_user(&self, user: Uuid, at: OffsetDateTime) -> Result<ErasureCounts, StoreError>;
}

/// The stores of the service, as one backend adapter provides them.
pub trait ProjectsStore:
    ProjectStore + TaskStore + PersonalDataStore + MemberStore + CommentStore + SearchStore + AttachmentStore
{
}

impl<T> ProjectsStore for T where
    T: ProjectStore + TaskStore + PersonalDataStore + MemberStore + CommentStore + SearchStore + AttachmentStore
{
}

/// A change of one membership: the new role (`None` removes the member), when, and the role the
/// caller read (`If-Match`), if it must still hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberUpdate {
    pub role: Option<ProjectRole>,
    pub at: OffsetDateTime,
    pub expected: Option<ProjectRole>,
}

/// What became of a membership change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    /// Done; the ids of the tasks unassigned from a removed member.
    Done { unassigned: Vec<Uuid> },
    /// The user is not a member of the project; nothing was written.
    NotMember,
    /// The change would leave the project without an owner; nothing was written.
    LastOwner,
    /// The member's role is no longer the one the caller's `If-Match` named; nothing was written.
    Stale,
}

/// Changes to a project and its members, each with its event in one transaction.
#[async_trait]
pub trait MemberStore: Send + Sync {
    /// Writes `project`'s name, description and `updated_at` if the stored `updated_at` is still
    /// `read_at`; `false` when it is not (nothing written), `NotFound` when the project is gone.
    async fn update_project(
        &self,
        project: &ProjectRecord,
        read_at: OffsetDateTime,
        event: &Event,
    ) -> Result<bool, StoreError>;
    /// Deletes the project with its members and tasks, if its `updated_at` is still `read_at`;
    /// `false` when it is not, `NotFound` when it is gone.
    async fn delete_project(&self, id: Uuid, read_at: OffsetDateTime, event: &Event) -> Result<bool, StoreError>;
    /// The project's members, oldest first.
    async fn list_members(&self, project: Uuid) -> Result<Vec<MemberRecord>, StoreError>;
    /// The users who are members of a project `user` is a member of (`user` included when they
    /// are one of any), each once.
    async fn co_members(&self, user: Uuid) -> Result<Vec<Uuid>, StoreError>;
    /// Adds a member; `Conflict` when the user already is one, `NotFound` when the project is gone.
    async fn add_member(&self, member: &MemberRecord, event: &Event) -> Result<(), StoreError>;
    /// Gives `user` the role `role`, or with `None` removes them, keeping at least one owner
    /// (checked with the project's members locked). A removed member's tasks are unassigned; a
    /// project whose `owner_id` stops being an owner names its oldest remaining owner.
    /// With `expected`, nothing is written unless the member's role still is that one (`Stale`).
    async fn change_member(
        &self,
        project: Uuid,
        user: Uuid,
        change: MemberUpdate,
        event: &Event,
    ) -> Result<MemberChange, StoreError>;
}

/// A comment as stored. `project_id` is its task's project (kept in step when the task moves).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentRecord {
    pub id: Uuid,
    pub task_id: Uuid,
    pub project_id: Uuid,
    pub author_id: Uuid,
    pub body: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A comment with the membership role, in the comment's project, of the user it was read for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentView {
    pub comment: CommentRecord,
    pub member_role: Option<ProjectRole>,
}

/// Comments on tasks, each write with its event in one transaction.
#[async_trait]
pub trait CommentStore: Send + Sync {
    /// Inserts the comment and `event`; `NotFound` when the task is gone (or no longer in the
    /// comment's project).
    async fn create_comment(&self, comment: &CommentRecord, event: &Event) -> Result<(), StoreError>;
    /// The comment with `user`'s membership role in its project; `NotFound` when there is none.
    async fn get_comment(&self, id: Uuid, user: Uuid) -> Result<CommentView, StoreError>;
    /// Up to `limit` comments of the task with ids greater than `after`, oldest first.
    async fn list_comments(
        &self,
        task: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<CommentRecord>, StoreError>;
    /// Writes the comment's body and `updated_at` if the stored `updated_at` is still `read_at`;
    /// `false` when it is not (nothing written), `NotFound` when the comment is gone.
    async fn update_comment(
        &self,
        comment: &CommentRecord,
        read_at: OffsetDateTime,
        event: &Event,
    ) -> Result<bool, StoreError>;
    /// Deletes the comment if its `updated_at` is still `read_at`; `false` when it is not,
    /// `NotFound` when it is gone.
    async fn delete_comment(&self, id: Uuid, read_at: OffsetDateTime, event: &Event) -> Result<bool, StoreError>;
}

/// What a search result is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SearchKind {
    Project,
    Task,
    Comment,
}

impl SearchKind {
    /// Its number in storage and cursors (0 project, 1 task, 2 comment): the result order's tie-break.
    pub fn code(self) -> u8 {
        match self {
            SearchKind::Project => 0,
            SearchKind::Task => 1,
            SearchKind::Comment => 2,
        }
    }

    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            0 => Some(SearchKind::Project),
            1 => Some(SearchKind::Task),
            2 => Some(SearchKind::Comment),
            _ => None,
        }
    }
}

/// Which projects a search covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchScope {
    /// The projects `user` is a member of.
    MemberOf(Uuid),
    /// Every project (admins).
    All,
}

/// Where a result sits in the result order: by `score` descending, then kind, then id.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchKey {
    pub score: f64,
    pub kind: SearchKind,
    pub id: Uuid,
}

/// One matching project, task or comment.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub key: SearchKey,
    pub project_id: Uuid,
    /// The task of a task or comment.
    pub task_id: Option<Uuid>,
    /// The project's name, or the task's title (for a comment: its task's).
    pub title: String,
    /// The longer text: the description, or the comment's body.
    pub text: String,
}

/// Full-text search over projects, tasks and comments.
#[async_trait]
pub trait SearchStore: Send + Sync {
    /// Up to `limit` documents of `scope` containing every word of `words` (lowercase runs of
    /// letters and digits, at least one), the last one as a prefix, best first, after `after`.
    /// Visibility is part of the query, not a filter of its results.
    async fn search(
        &self,
        words: &[String],
        scope: SearchScope,
        after: Option<SearchKey>,
        limit: u32,
    ) -> Result<Vec<SearchHit>, StoreError>;
}

/// An `attachments` row: a file's metadata; its bytes are the object at `object_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentRecord {
    pub id: Uuid,
    pub task_id: Uuid,
    pub project_id: Uuid,
    pub uploaded_by: Uuid,
    pub filename: String,
    pub content_type: String,
    pub size: u64,
    pub object_key: String,
    pub created_at: OffsetDateTime,
    /// Quarantined until scanned, then available or rejected.
    pub status: api::projects::AttachmentStatus,
    pub scan: api::projects::AttachmentScan,
    /// What the scanner found, when it found something.
    pub threat: Option<String>,
}

/// Attachment metadata. The objects themselves are the service's business
/// (`crate::service::attachments`): rows are written after their object, and deleted before it.
#[async_trait]
pub trait AttachmentStore: Send + Sync {
    /// The project of task `task_id`; `NotFound` when there is no such task.
    async fn task_project(&self, task_id: Uuid) -> Result<Uuid, StoreError>;
    /// Inserts the row and `event` in one transaction; `NotFound` when its task is gone.
    async fn create_attachment(&self, a: &AttachmentRecord, event: &Event) -> Result<(), StoreError>;
    /// One attachment; `NotFound` when there is none.
    async fn get_attachment(&self, id: Uuid) -> Result<AttachmentRecord, StoreError>;
    /// Up to `limit` attachments of the task with ids greater than `after`, in id order.
    async fn list_attachments(
        &self,
        task_id: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<AttachmentRecord>, StoreError>;
    /// Deletes the row and stores `event` in one transaction; `NotFound` when it is gone.
    async fn delete_attachment(&self, id: Uuid, event: &Event) -> Result<(), StoreError>;
    /// Those of `ids` that still have a row whose object is kept (not `rejected`).
    async fn existing_attachments(&self, ids: &[Uuid]) -> Result<Vec<Uuid>, StoreError>;
    /// Every attachment `user` uploaded, in id order (GDPR export).
    async fn attachments_uploaded_by(&self, user: Uuid) -> Result<Vec<AttachmentRecord>, StoreError>;
    /// Up to `limit` attachments still `quarantined` with ids greater than `after`, in id order
    /// (the malware scanner's queue).
    async fn quarantined_attachments(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<AttachmentRecord>, StoreError>;
    /// Ends the scan of a `quarantined` attachment: writes `status`, `scan` and `threat`, and
    /// stores `event`, in one transaction. `false` (nothing written) when the row is gone or no
    /// longer quarantined.
    async fn finish_scan(
        &self,
        id: Uuid,
        status: api::projects::AttachmentStatus,
        scan: api::projects::AttachmentScan,
        threat: Option<&str>,
        event: &Event,
    ) -> Result<bool, StoreError>;
}
