//! The storage ports of the projects service: one narrow trait per aggregate, each implemented
//! once per backend in [`crate::store`]. Writes take the event to store in the outbox, so that the
//! state change and its event commit together.

use api::projects::{Priority, ProjectRole, TaskStatus};
use async_trait::async_trait;
use platform::bus::Event;
use platform::db::StoreError;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::domain::{Description, ProjectName, TaskTitle};

/// A project as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// A task as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// A task to create. Its position is chosen by the store, inside the transaction: the end of
/// its status column.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub id: Uuid,
    pub project_id: Uuid,
    pub title: TaskTitle,
    pub description: Description,
    pub status: TaskStatus,
    pub priority: Priority,
    pub created_by: Uuid,
    pub created_at: OffsetDateTime,
}

/// Where a task sits in the default task order: by status column, then by position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskKey {
    pub status: TaskStatus,
    pub position: String,
}

#[async_trait]
pub trait TaskStore: Send + Sync {
    /// Appends the task to the end of its status column (a rank after the column's current
    /// last) and stores `event`, in one transaction that excludes concurrent appends to the same
    /// project. `NotFound` when the project does not exist.
    async fn create_task(&self, task: &NewTask, event: &Event) -> Result<TaskRecord, StoreError>;

    /// Up to `limit` tasks of the project, only those of `status` if given, ordered by status
    /// (todo, in progress, done) then position, starting after `after`.
    async fn list_tasks(
        &self,
        project_id: Uuid,
        status: Option<TaskStatus>,
        after: Option<TaskKey>,
        limit: u32,
    ) -> Result<Vec<TaskRecord>, StoreError>;
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
    /// Writes `project.deleted` per deleted project and `member.changed` per removed membership
    /// ([`crate::store::erasure_event`]), stamped `at`. Erasing an erased user changes nothing.
    async fn erase_user(&self, user: Uuid, at: OffsetDateTime) -> Result<ErasureCounts, StoreError>;
}

/// The stores of the service, as one backend adapter provides them.
pub trait ProjectsStore: ProjectStore + TaskStore + PersonalDataStore + MemberStore + AttachmentStore {}

impl<T: ProjectStore + TaskStore + PersonalDataStore + MemberStore + AttachmentStore> ProjectsStore for T {}

/// What became of a membership change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    Done,
    /// The user is not a member of the project; nothing was written.
    NotMember,
    /// The change would leave the project without an owner; nothing was written.
    LastOwner,
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
    /// Adds a member; `Conflict` when the user already is one, `NotFound` when the project is gone.
    async fn add_member(&self, member: &MemberRecord, event: &Event) -> Result<(), StoreError>;
    /// Gives `user` the role `role`, or with `None` removes them, keeping at least one owner
    /// (checked with the project's members locked). A removed member's tasks are unassigned; a
    /// project whose `owner_id` stops being an owner names its oldest remaining owner.
    async fn change_member(
        &self,
        project: Uuid,
        user: Uuid,
        role: Option<ProjectRole>,
        at: OffsetDateTime,
        event: &Event,
    ) -> Result<MemberChange, StoreError>;
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
    /// Those of `ids` that still have a row.
    async fn existing_attachments(&self, ids: &[Uuid]) -> Result<Vec<Uuid>, StoreError>;
    /// Every attachment `user` uploaded, in id order (GDPR export).
    async fn attachments_uploaded_by(&self, user: Uuid) -> Result<Vec<AttachmentRecord>, StoreError>;
}
