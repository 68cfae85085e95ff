//! Changing a project and its membership: rename, delete, and the members with their roles
//! (owner, editor, viewer). A project always keeps an owner; guests may only be viewers; anyone
//! who may not see a project gets 404 for everything in it.

use std::sync::Arc;

use api::ApiError;
use api::projects::{AddMember, ChangeMember, Member, Project, ProjectRole, UpdateProject};
use api::users::{Role, UserStatus, UsersApi};
use platform::bus::Event;
use uuid::Uuid;

use super::{Actor, ProjectsService, invalid, project_dto};
use crate::cache::Key;
use crate::domain::{Description, ProjectName};
use crate::events;
use crate::ports::{MemberChange, MemberRecord, MemberUpdate};

/// The entity tag of a project's current version.
pub fn project_etag(updated_at: time::OffsetDateTime) -> String {
    format!("\"{:x}\"", updated_at.unix_timestamp_nanos() / 1000)
}

/// The entity tag of a membership: its role and when it began (a member removed and added again
/// is another version).
pub fn member_etag(m: &Member) -> String {
    format!("\"{}-{:x}\"", crate::store::role_str(m.role), m.created_at.unix_timestamp_nanos() / 1000)
}

/// Whether an `If-Match` header value names `current` (`*` names any version).
pub(super) fn if_match_holds(header: Option<&str>, current: &str) -> bool {
    header.is_none_or(|h| h.split(',').map(str::trim).any(|tag| tag == "*" || tag == current))
}

/// Why a change was refused beyond the usual errors: `If-Match` named an older version (412).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error("the project changed since the version given in If-Match")]
    PreconditionFailed,
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<platform::db::StoreError> for ChangeError {
    fn from(e: platform::db::StoreError) -> Self {
        ChangeError::Api(e.into())
    }
}

const LAST_OWNER: &str = "a project keeps at least one owner";

fn member_dto(m: MemberRecord) -> Member {
    Member { user_id: m.user_id, role: m.role, created_at: m.created_at }
}

impl ProjectsService {
    /// `PATCH /api/projects/{id}`: name and description, by owners and editors.
    pub async fn update_project(
        &self,
        actor: Actor,
        id: Uuid,
        input: UpdateProject,
        if_match: Option<&str>,
    ) -> Result<Project, ChangeError> {
        let (project, role) = self.visible_project(actor, id).await?;
        if !matches!(role, ProjectRole::Owner | ProjectRole::Editor) {
            return Err(ApiError::Forbidden.into());
        }
        if !if_match_holds(if_match, &project_etag(project.updated_at)) {
            return Err(ChangeError::PreconditionFailed);
        }
        let mut errors = Vec::new();
        let mut next = project.clone();
        let mut fields = Vec::new();
        if let Some(raw) = &input.name {
            match ProjectName::parse(raw) {
                Ok(n) if n.as_str() != project.name => {
                    next.name = n.as_str().to_string();
                    fields.push("name");
                }
                Ok(_) => {}
                Err(e) => errors.push(api::FieldError::new("name", e.to_string())),
            }
        }
        if let Some(raw) = &input.description {
            match Description::parse(raw) {
                Ok(d) if d.as_str() != project.description => {
                    next.description = d.as_str().to_string();
                    fields.push("description");
                }
                Ok(_) => {}
                Err(e) => errors.push(api::FieldError::new("description", e.to_string())),
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::Invalid(errors).into());
        }
        if fields.is_empty() {
            return Ok(project_dto(project, role));
        }
        next.updated_at = self.now();
        let event = events::project_updated(actor.user_id, id, &fields, next.updated_at);
        if !self.members.update_project(&next, project.updated_at, &event).await? {
            // The version read was stale (perhaps a cache entry): the retry reads afresh.
            self.cache.invalidate(&[Key::Project(id)]).await;
            return Err(stale(if_match));
        }
        self.cache.invalidate(&[Key::Project(id)]).await;
        self.written();
        Ok(project_dto(next, role))
    }

    /// `DELETE /api/projects/{id}`: by its owners and admins; its members and tasks go with it.
    pub async fn delete_project(&self, actor: Actor, id: Uuid, if_match: Option<&str>) -> Result<(), ChangeError> {
        let (project, role) = self.visible_project(actor, id).await?;
        if role != ProjectRole::Owner {
            return Err(ApiError::Forbidden.into());
        }
        if !if_match_holds(if_match, &project_etag(project.updated_at)) {
            return Err(ChangeError::PreconditionFailed);
        }
        let now = self.now();
        let event = events::project_deleted(Some(actor.user_id), id, now);
        if !self.members.delete_project(id, project.updated_at, &event).await? {
            self.cache.invalidate(&[Key::Project(id)]).await;
            return Err(stale(if_match));
        }
        // Its tasks' entries may stay until they expire: a task is only ever answered after
        // its project is found, and the project is gone.
        self.cache.invalidate(&[Key::Project(id)]).await;
        self.written();
        // Its attachments' rows went with it; their objects go now.
        self.project_deleted(id).await;
        Ok(())
    }

    /// `GET /api/projects/{id}/members`: for anyone who may see the project.
    pub async fn list_members(&self, actor: Actor, id: Uuid) -> Result<Vec<Member>, ApiError> {
        self.visible_project(actor, id).await?;
        Ok(self.members.list_members(id).await?.into_iter().map(member_dto).collect())
    }

    /// `POST /api/projects/{id}/members`: by owners. The user must exist and be active; a guest
    /// can only be a viewer.
    pub async fn add_member(&self, actor: Actor, id: Uuid, input: AddMember) -> Result<Member, ApiError> {
        let (_, role) = self.visible_project(actor, id).await?;
        if role != ProjectRole::Owner {
            return Err(ApiError::Forbidden);
        }
        let users =
            self.users.get().ok_or_else(|| ApiError::Unavailable("the users service is not connected".into()))?;
        let user = match users.get_user(input.user_id).await {
            Ok(u) if u.status == UserStatus::Active => u,
            Ok(_) | Err(ApiError::NotFound) => return Err(invalid("user_id", "is not an active user")),
            Err(e) => return Err(e),
        };
        if user.role == Role::Guest && input.role != ProjectRole::Viewer {
            return Err(invalid("role", "a guest can only be a viewer"));
        }
        let member = MemberRecord { project_id: id, user_id: user.id, role: input.role, created_at: self.now() };
        let event = events::member_changed(actor.user_id, &member, "added", member.created_at);
        self.members.add_member(&member, &event).await.map_err(|e| match e {
            platform::db::StoreError::Conflict(_) => ApiError::Conflict("the user is already a member".into()),
            other => other.into(),
        })?;
        self.cache.invalidate(&[Key::Member { project: id, user: member.user_id }]).await;
        self.written();
        Ok(member_dto(member))
    }

    /// `GET /api/projects/{id}/members/{user_id}`: one member (with its `ETag`), for anyone who
    /// may see the project.
    pub async fn get_member(&self, actor: Actor, id: Uuid, user_id: Uuid) -> Result<Member, ApiError> {
        self.visible_project(actor, id).await?;
        self.member(id, user_id).await.map(member_dto)
    }

    async fn member(&self, id: Uuid, user_id: Uuid) -> Result<MemberRecord, ApiError> {
        let members = self.members.list_members(id).await?;
        members.into_iter().find(|m| m.user_id == user_id).ok_or(ApiError::NotFound)
    }

    /// The role `If-Match` names, read now: `None` without the header; 412 when the member's
    /// current version is another.
    async fn expected_role(
        &self,
        id: Uuid,
        user_id: Uuid,
        if_match: Option<&str>,
    ) -> Result<Option<ProjectRole>, ChangeError> {
        let Some(header) = if_match else { return Ok(None) };
        let current = self.member(id, user_id).await?;
        if !if_match_holds(Some(header), &member_etag(&member_dto(current.clone()))) {
            return Err(ChangeError::PreconditionFailed);
        }
        Ok(Some(current.role))
    }

    /// `PATCH /api/projects/{id}/members/{user_id}`: by owners; the last owner stays one (409);
    /// `If-Match` with the member's `ETag` makes it conditional (412).
    pub async fn change_member(
        &self,
        actor: Actor,
        id: Uuid,
        user_id: Uuid,
        input: ChangeMember,
        if_match: Option<&str>,
    ) -> Result<Member, ChangeError> {
        let (_, role) = self.visible_project(actor, id).await?;
        if role != ProjectRole::Owner {
            return Err(ApiError::Forbidden.into());
        }
        let expected = self.expected_role(id, user_id, if_match).await?;
        if input.role != ProjectRole::Viewer {
            match self.users()?.get_user(user_id).await {
                Ok(u) if u.role == Role::Guest => return Err(invalid("role", "a guest can only be a viewer").into()),
                // A member whose account is gone is still a membership to change (or remove).
                Ok(_) | Err(ApiError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let now = self.now();
        let member = MemberRecord { project_id: id, user_id, role: input.role, created_at: now };
        let event = events::member_changed(actor.user_id, &member, "role_changed", now);
        self.apply(id, user_id, MemberUpdate { role: Some(input.role), at: now, expected }, &event).await?;
        Ok(self.member(id, user_id).await.map(member_dto)?)
    }

    /// `DELETE /api/projects/{id}/members/{user_id}`: by owners, or members leaving; the last
    /// owner cannot go (409); `If-Match` as for PATCH. Tasks assigned to the member are
    /// unassigned.
    pub async fn remove_member(
        &self,
        actor: Actor,
        id: Uuid,
        user_id: Uuid,
        if_match: Option<&str>,
    ) -> Result<(), ChangeError> {
        let (_, role) = self.visible_project(actor, id).await?;
        if role != ProjectRole::Owner && actor.user_id != user_id {
            return Err(ApiError::Forbidden.into());
        }
        let expected = self.expected_role(id, user_id, if_match).await?;
        let now = self.now();
        let event = events::member_removed(Some(actor.user_id), id, user_id, None, now);
        self.apply(id, user_id, MemberUpdate { role: None, at: now, expected }, &event).await
    }

    pub(super) fn users(&self) -> Result<&Arc<dyn UsersApi>, ApiError> {
        self.users.get().ok_or_else(|| ApiError::Unavailable("the users service is not connected".into()))
    }

    async fn apply(&self, id: Uuid, user_id: Uuid, change: MemberUpdate, event: &Event) -> Result<(), ChangeError> {
        match self.members.change_member(id, user_id, change, event).await? {
            MemberChange::Done { unassigned } => {
                // `owner_id` may have moved to another owner; a removed member's tasks lost
                // their assignee.
                let keys = [Key::Member { project: id, user: user_id }, Key::Project(id)];
                let tasks = unassigned.into_iter().map(Key::Task);
                self.cache.invalidate(&keys.into_iter().chain(tasks).collect::<Vec<_>>()).await;
                self.written();
                Ok(())
            }
            MemberChange::NotMember => Err(ApiError::NotFound.into()),
            MemberChange::LastOwner => Err(ApiError::Conflict(LAST_OWNER.into()).into()),
            MemberChange::Stale => Err(ChangeError::PreconditionFailed),
        }
    }
}

fn stale(if_match: Option<&str>) -> ChangeError {
    if if_match.is_some() {
        ChangeError::PreconditionFailed
    } else {
        ApiError::Conflict("the project changed meanwhile; read it again and retry".into()).into()
    }
}
