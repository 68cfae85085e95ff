//! Use cases of the users service, over the `UserStore` port.

use std::sync::{Arc, OnceLock};

use api::auth::{SessionEndReason, SessionsApi};
use api::users::{NewUser, Role, UpdateUser, User, UserStatus, UsersApi};
use api::{ApiError, FieldError};
use async_trait::async_trait;
use platform::bus::Event;
use platform::clock::Clock;
use serde_json::json;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::domain::{Email, UserName};
use crate::ports::{UpdateOutcome, UserStore};

pub struct UsersService {
    store: Arc<dyn UserStore>,
    clock: Arc<dyn Clock>,
    outbox_waker: Option<Arc<Notify>>,
    /// The auth service, to end a user's sessions when their role or status changes. Connected
    /// after construction because the auth service itself is built on top of this one.
    sessions: OnceLock<Arc<dyn SessionsApi>>,
}

/// Who performs a use case: a verified user and their global role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Uuid,
    pub role: Role,
}

/// Why an update was refused, beyond the `ApiError`s every call can end with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// `If-Match` named another version than the stored one (412).
    #[error("the user changed since the version given in If-Match")]
    PreconditionFailed,
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<platform::db::StoreError> for UpdateError {
    fn from(e: platform::db::StoreError) -> Self {
        UpdateError::Api(e.into())
    }
}

/// The entity tag of a user's current version (API.md: single resources carry an `ETag`).
pub fn etag(user: &User) -> String {
    format!("\"{:x}\"", user.updated_at.unix_timestamp_nanos() / 1000)
}

/// Whether an `If-Match` header value names the current version (`*` names any).
fn if_match_holds(header: &str, current: &str) -> bool {
    header.split(',').map(str::trim).any(|tag| tag == "*" || tag == current)
}

impl UsersService {
    pub fn new(store: Arc<dyn UserStore>, clock: Arc<dyn Clock>, outbox_waker: Option<Arc<Notify>>) -> Self {
        Self { store, clock, outbox_waker, sessions: OnceLock::new() }
    }

    /// Connects the auth service's session API (in process or over HTTP). Until then, role and
    /// status changes are refused as unavailable, never done without ending sessions.
    pub fn connect_sessions(&self, sessions: Arc<dyn SessionsApi>) {
        if self.sessions.set(sessions).is_err() {
            tracing::warn!("the sessions API was already connected");
        }
    }

    fn sessions(&self) -> Result<&Arc<dyn SessionsApi>, ApiError> {
        self.sessions.get().ok_or_else(|| ApiError::Unavailable("the auth service is not connected".into()))
    }

    /// `PATCH /api/users/{id}`: `name` by the user themself or an admin; `role` and `status` by an
    /// admin only. A change of role or status ends every session of the user (their tokens carry
    /// the old role), before the change is written and once more after, so that no session
    /// started in between survives. The last active administrator cannot be demoted or
    /// deactivated (409). Events: `users.role_changed`, `users.status_changed`,
    /// `users.profile_updated`, in the transaction of the change.
    pub async fn update_user(
        &self,
        actor: Actor,
        id: Uuid,
        patch: UpdateUser,
        if_match: Option<&str>,
    ) -> Result<User, UpdateError> {
        let current = self.store.get(id).await?;
        if let Some(header) = if_match
            && !if_match_holds(header, &etag(&current))
        {
            return Err(UpdateError::PreconditionFailed);
        }
        let is_admin = actor.role == Role::Admin;
        if (patch.role.is_some() || patch.status.is_some()) && !is_admin {
            return Err(ApiError::Forbidden.into());
        }
        if patch.name.is_some() && !is_admin && actor.user_id != id {
            return Err(ApiError::Forbidden.into());
        }
        let mut next = current.clone();
        if let Some(raw) = &patch.name {
            let name = UserName::parse(raw).map_err(|m| ApiError::Invalid(vec![FieldError::new("name", m)]))?;
            next.name = name.as_str().to_string();
        }
        next.role = patch.role.unwrap_or(current.role);
        next.status = patch.status.unwrap_or(current.status);
        if next == current {
            return Ok(current);
        }
        let role_changed = next.role != current.role;
        let status_changed = next.status != current.status;
        let active_admin = |u: &User| u.role == Role::Admin && u.status == UserStatus::Active;
        let keep_an_admin = active_admin(&current) && !active_admin(&next);
        if keep_an_admin && self.store.active_admins().await? <= 1 {
            return Err(ApiError::Conflict(LAST_ADMIN.into()).into());
        }
        let now = self.clock.now();
        next.updated_at = now.replace_microsecond(now.microsecond()).unwrap_or(now);
        let mut events = Vec::new();
        let event =
            |kind: &str, data: serde_json::Value| Event::new(kind, id, Some(actor.user_id), next.updated_at, data);
        if role_changed {
            events.push(event(
                "users.role_changed",
                json!({ "user_id": id, "from": current.role.as_str(), "to": next.role.as_str() }),
            ));
        }
        if status_changed {
            events.push(event(
                "users.status_changed",
                json!({ "user_id": id, "from": current.status.as_str(), "to": next.status.as_str() }),
            ));
        }
        if next.name != current.name {
            events.push(event("users.profile_updated", json!({ "user_id": id, "fields": ["name"] })));
        }
        let reason = match (role_changed, status_changed) {
            (true, _) => Some(SessionEndReason::RoleChanged),
            (false, true) => Some(SessionEndReason::StatusChanged),
            (false, false) => None,
        };
        if let Some(reason) = reason {
            // If the auth service cannot end them, nothing changes (503): a new role or status
            // never goes live while sessions of the old one do.
            self.sessions()?.end_all_sessions(id, reason).await?;
        }
        match self.store.update(&next, current.updated_at, keep_an_admin, &events).await? {
            UpdateOutcome::Updated => {}
            UpdateOutcome::Stale if if_match.is_some() => return Err(UpdateError::PreconditionFailed),
            UpdateOutcome::Stale => {
                return Err(ApiError::Conflict("the user changed meanwhile; read it again and retry".into()).into());
            }
            UpdateOutcome::LastAdmin => return Err(ApiError::Conflict(LAST_ADMIN.into()).into()),
        }
        self.wake_relay();
        if let Some(reason) = reason {
            // A login between the first ending and the commit got a token of the old role.
            if let Err(e) = self.sessions()?.end_all_sessions(id, reason).await {
                tracing::error!(user_id = %id, error = %e, "could not end the sessions started during a role or status change");
            }
            tracing::info!(
                user_id = %id,
                actor_id = %actor.user_id,
                role = next.role.as_str(),
                status = next.status.as_str(),
                "role or status changed; sessions ended"
            );
        }
        Ok(next)
    }

    fn wake_relay(&self) {
        if let Some(w) = &self.outbox_waker {
            w.notify_one();
        }
    }
}

const LAST_ADMIN: &str = "the last active administrator cannot be demoted or deactivated";

#[async_trait]
impl UsersApi for UsersService {
    async fn create_user(&self, new: NewUser) -> Result<User, ApiError> {
        let mut errors = Vec::new();
        let email = Email::parse(&new.email).map_err(|m| errors.push(FieldError::new("email", m))).ok();
        let name = UserName::parse(&new.name).map_err(|m| errors.push(FieldError::new("name", m))).ok();
        let (Some(email), Some(name)) = (email, name) else {
            return Err(ApiError::Invalid(errors));
        };
        // Both databases keep microseconds: the answer equals what a later read returns.
        let now = self.clock.now();
        let now = now.replace_microsecond(now.microsecond()).unwrap_or(now);
        let user = User {
            id: new.id,
            email: email.as_str().to_string(),
            name: name.as_str().to_string(),
            role: new.role,
            status: UserStatus::Active,
            email_verified: false,
            mfa_enabled: false,
            created_at: now,
            updated_at: now,
        };
        let event = Event::new("user.created", user.id, Some(user.id), now, json!({ "user_id": user.id }));
        self.store.insert(&user, &event).await.map_err(|e| match e {
            platform::db::StoreError::Conflict(_) => ApiError::Conflict("email already registered".into()),
            other => other.into(),
        })?;
        self.wake_relay();
        Ok(user)
    }

    async fn get_user(&self, id: Uuid) -> Result<User, ApiError> {
        Ok(self.store.get(id).await?)
    }

    async fn find_by_email(&self, email: &str) -> Result<User, ApiError> {
        let email = Email::parse(email).map_err(|_| ApiError::NotFound)?;
        Ok(self.store.find_by_email(email.as_str()).await?)
    }

    async fn set_mfa_enabled(&self, id: Uuid, enabled: bool) -> Result<(), ApiError> {
        Ok(self.store.set_mfa_enabled(id, enabled, self.clock.now()).await?)
    }

    async fn discard_new_user(&self, id: Uuid) -> Result<(), ApiError> {
        Ok(self.store.delete(id).await?)
    }

    async fn set_email_verified(&self, id: Uuid) -> Result<(), ApiError> {
        let now = self.clock.now();
        let event =
            Event::new("user.updated", id, Some(id), now, json!({ "user_id": id, "changed": ["email_verified"] }));
        if self.store.set_email_verified(id, now, &event).await? {
            self.wake_relay();
        }
        Ok(())
    }
}
