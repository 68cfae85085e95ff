//! Comments on tasks: list (members), write (owners and editors), change (the author while still
//! able to write), delete (the author, project owners, admins). Anything in a project the caller
//! cannot see is 404; changes honour `If-Match` on the comment's `ETag`, checked atomically by
//! the store.

use api::ApiError;
use api::projects::{Comment, CreateComment, Page, UpdateComment};
use platform::ids::new_id;
use time::OffsetDateTime;
use uuid::Uuid;

use super::members::if_match_holds;
use super::{
    Actor, ChangeError, PageRequest, ProjectsService, decode_project_cursor, encode_project_cursor, invalid, paginate,
};
use crate::domain::comments::{CommentBody, can_comment, can_delete_comment, can_edit_comment};
use crate::domain::effective_role;
use crate::events;
use crate::ports::{CommentRecord, CommentView};

/// The entity tag of a comment's current version.
pub fn comment_etag(updated_at: OffsetDateTime) -> String {
    super::project_etag(updated_at)
}

pub(super) fn comment_dto(c: CommentRecord) -> Comment {
    Comment {
        id: c.id,
        task_id: c.task_id,
        project_id: c.project_id,
        author_id: c.author_id,
        body: c.body,
        created_at: c.created_at,
        updated_at: c.updated_at,
    }
}

fn body(raw: &str) -> Result<CommentBody, ApiError> {
    CommentBody::parse(raw).map_err(|e| invalid("body", e.to_string()))
}

fn stale(if_match: Option<&str>) -> ChangeError {
    if if_match.is_some() {
        ChangeError::PreconditionFailed
    } else {
        ApiError::Conflict("the comment changed meanwhile; read it again and retry".into()).into()
    }
}

impl ProjectsService {
    /// The comment and the actor's effective role in its project; `NotFound` when invisible.
    async fn visible_comment(
        &self,
        actor: Actor,
        id: Uuid,
    ) -> Result<(CommentRecord, api::projects::ProjectRole), ApiError> {
        let CommentView { comment, member_role } = self.comments.get_comment(id, actor.user_id).await?;
        let role =
            effective_role(actor.role, member_role).ok_or_else(|| super::invisible(actor, comment.project_id))?;
        Ok((comment, role))
    }

    /// `GET /api/tasks/{id}/comments`: the task's comments, oldest first, for anyone who may see it.
    pub async fn list_comments(&self, actor: Actor, task: Uuid, page: PageRequest) -> Result<Page<Comment>, ApiError> {
        let limit = page.limit()?;
        let after = page.cursor.as_deref().map(decode_project_cursor).transpose()?;
        self.visible_task(actor, task).await?;
        let rows = self.comments.list_comments(task, after, limit + 1).await?;
        Ok(paginate(rows, limit, |c| encode_project_cursor(c.id), comment_dto))
    }

    /// `GET /api/comments/{id}`: one comment, for anyone who may see its project.
    pub async fn get_comment(&self, actor: Actor, id: Uuid) -> Result<Comment, ApiError> {
        Ok(comment_dto(self.visible_comment(actor, id).await?.0))
    }

    /// `POST /api/tasks/{id}/comments`: by the project's owners and editors (and admins).
    pub async fn create_comment(&self, actor: Actor, task: Uuid, input: CreateComment) -> Result<Comment, ApiError> {
        let (task, role) = self.visible_task(actor, task).await?;
        let (task, project_id) = (task.id, task.project_id);
        if !can_comment(role) {
            return Err(ApiError::Forbidden);
        }
        let body = body(&input.body)?;
        let now = self.now();
        let comment = CommentRecord {
            id: new_id(),
            task_id: task,
            project_id,
            author_id: actor.user_id,
            body: body.as_str().to_string(),
            created_at: now,
            updated_at: now,
        };
        let event = events::comment_created(actor.user_id, &comment);
        self.comments.create_comment(&comment, &event).await?;
        self.written();
        Ok(comment_dto(comment))
    }

    /// `PATCH /api/comments/{id}`: by its author, while they may still comment in the project.
    pub async fn update_comment(
        &self,
        actor: Actor,
        id: Uuid,
        input: UpdateComment,
        if_match: Option<&str>,
    ) -> Result<Comment, ChangeError> {
        let (comment, role) = self.visible_comment(actor, id).await?;
        if !can_edit_comment(actor.user_id, role, comment.author_id) {
            return Err(ApiError::Forbidden.into());
        }
        if !if_match_holds(if_match, &comment_etag(comment.updated_at)) {
            return Err(ChangeError::PreconditionFailed);
        }
        let body = body(&input.body)?;
        if body.as_str() == comment.body {
            return Ok(comment_dto(comment));
        }
        let mut next = comment.clone();
        next.body = body.as_str().to_string();
        next.updated_at = self.now();
        let event = events::comment_updated(actor.user_id, &next);
        if !self.comments.update_comment(&next, comment.updated_at, &event).await? {
            return Err(stale(if_match));
        }
        self.written();
        Ok(comment_dto(next))
    }

    /// `DELETE /api/comments/{id}`: by its author, the project's owners and admins.
    pub async fn delete_comment(&self, actor: Actor, id: Uuid, if_match: Option<&str>) -> Result<(), ChangeError> {
        let (comment, role) = self.visible_comment(actor, id).await?;
        if !can_delete_comment(actor.user_id, role, comment.author_id) {
            return Err(ApiError::Forbidden.into());
        }
        if !if_match_holds(if_match, &comment_etag(comment.updated_at)) {
            return Err(ChangeError::PreconditionFailed);
        }
        let event =
            events::comment_deleted(Some(actor.user_id), comment.id, comment.task_id, comment.project_id, self.now());
        if !self.comments.delete_comment(id, comment.updated_at, &event).await? {
            return Err(stale(if_match));
        }
        self.written();
        Ok(())
    }
}

/// A `comments` row with every column (GDPR export): the API's comment, whose fields are the columns.
pub(super) fn comment_row(c: CommentRecord) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(comment_dto(c)).map_err(|e| ApiError::Internal(format!("cannot serialize a comment: {e}")))
}
