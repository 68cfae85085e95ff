//! The users service's public DTOs and the `UsersApi` other services call.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ApiError;

/// Global role of an account (RBAC): `admin` everything, `user` standard, `guest` read-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
    Guest,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
            Role::Guest => "guest",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "user" => Some(Role::User),
            "guest" => Some(Role::Guest),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    Active,
    Inactive,
    Deleted,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Inactive => "inactive",
            UserStatus::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<UserStatus> {
        match s {
            "active" => Some(UserStatus::Active),
            "inactive" => Some(UserStatus::Inactive),
            "deleted" => Some(UserStatus::Deleted),
            _ => None,
        }
    }
}

/// A user as the user themself and admins see it (docs/API.md `user`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub status: UserStatus,
    pub email_verified: bool,
    pub mfa_enabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// What others than the user and admins may see of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PublicUser {
    pub id: Uuid,
    pub name: String,
}

/// A user to create. The caller (auth) chooses the id so that it can store credentials first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
}

/// Body of the internal email lookup (a body, so that an email never sits in a URL or access log).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailLookup {
    pub email: String,
}

/// Body of the internal call that sets `mfa_enabled`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MfaFlag {
    pub enabled: bool,
}

/// A user's notification switches (the `notifications` of their preferences; each `true` unless
/// they turned it off), for the worker that mails notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationSettings {
    /// A task was assigned to them.
    pub task_assigned: bool,
    /// They were mentioned in a comment.
    pub mentioned: bool,
    /// A comment on a task of theirs.
    pub comments: bool,
}

/// What other services may ask of the users service.
#[async_trait]
pub trait UsersApi: Send + Sync {
    /// Creates a user; `Conflict` when the email is taken, `Invalid` for bad fields.
    async fn create_user(&self, new: NewUser) -> Result<User, ApiError>;
    async fn get_user(&self, id: Uuid) -> Result<User, ApiError>;
    /// Finds a user by email (normalized by the users service); `NotFound` when none.
    async fn find_by_email(&self, email: &str) -> Result<User, ApiError>;
    /// Records whether the user has a confirmed second factor (kept by the auth service).
    async fn set_mfa_enabled(&self, id: Uuid, enabled: bool) -> Result<(), ApiError>;
    /// Removes a user created moments ago whose registration could not finish.
    async fn discard_new_user(&self, id: Uuid) -> Result<(), ApiError>;
    /// Records that the user proved they receive mail at their address (idempotent);
    /// `NotFound` when there is no such user.
    async fn set_email_verified(&self, id: Uuid) -> Result<(), ApiError>;
    /// The user's notification switches; `NotFound` when there is no such user (or they are
    /// being erased).
    async fn notification_settings(&self, id: Uuid) -> Result<NotificationSettings, ApiError>;
    /// Applies a verified email change (auth, after the link mailed to the new address was
    /// followed, or after the old address's undo link): the address becomes `email`, verified.
    /// `Conflict` when another account holds it by now (nothing is written then).
    async fn apply_email_change(&self, id: Uuid, email: &str) -> Result<(), ApiError> {
        let _ = (id, email);
        Err(ApiError::Unavailable("email changes are not supported by this users service".into()))
    }
}

/// Body of the internal call that applies a verified email change.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyEmailChange {
    pub email: String,
}

/// Body of `PATCH /api/users/{id}`: `name` and `email` by the user themself or an admin, `role`
/// and `status` by an admin only. Absent fields are left as they are; any other field is refused.
/// A new email is unverified until its owner follows the link mailed to it.
#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub name: Option<String>,
    pub email: Option<String>,
    pub role: Option<Role>,
    pub status: Option<UserStatus>,
    /// The caller's own current password: the fresh proof (step-up) a change of `role` or
    /// `status` needs (403 `step_up_required` without it, 401 `step_up_failed` when wrong).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_password: Option<String>,
    /// For an account without a password: a current second-factor code (TOTP or recovery code)
    /// as the step-up proof instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_code: Option<String>,
}

impl std::fmt::Debug for UpdateUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateUser")
            .field("name", &self.name)
            .field("email", &self.email)
            .field("role", &self.role)
            .field("status", &self.status)
            .field("current_password", &self.current_password.as_ref().map(|_| "<redacted>"))
            .field("current_code", &self.current_code.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// One user in a search result: the whole user for admins, `{id, name}` for everyone else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum UserListItem {
    Full(User),
    Public(PublicUser),
}

/// A page of `GET /api/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserListItem>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// Body of `DELETE /api/users/{id}`: the caller's own current password, the fresh proof
/// (step-up) every erasure needs, whether of one's own account or, by an admin, of another's.
#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseUser {
    /// The caller's current password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_password: Option<String>,
    /// The same, under its earlier name (kept for clients of the first version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl std::fmt::Debug for EraseUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EraseUser").finish_non_exhaustive()
    }
}

/// Body of `POST /api/users/{id}/export`: the caller's own current password (step-up; an admin
/// exporting someone else gives their own).
#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_password: Option<String>,
}

impl std::fmt::Debug for ExportRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportRequest").finish_non_exhaustive()
    }
}
