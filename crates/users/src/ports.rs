//! The users service's storage port.

use api::users::User;
use async_trait::async_trait;
use platform::bus::Event;
use platform::db::StoreError;
use time::OffsetDateTime;
use uuid::Uuid;

/// What became of an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOutcome {
    Updated,
    /// The stored user changed since it was read (its `updated_at` differs); nothing was written.
    Stale,
    /// The update would leave no active administrator; nothing was written.
    LastAdmin,
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts a user and its event in one transaction; `Conflict` when the email is taken.
    async fn insert(&self, user: &User, event: &Event) -> Result<(), StoreError>;
    async fn get(&self, id: Uuid) -> Result<User, StoreError>;
    /// Looks a user up by normalized email.
    async fn find_by_email(&self, email: &str) -> Result<User, StoreError>;
    /// Writes `user`'s name, role, status and `updated_at`, with its events, in one transaction,
    /// if the stored row's `updated_at` is still `read_at` (optimistic concurrency). With
    /// `keep_an_admin`, it also makes sure another active administrator remains, holding the
    /// active administrators' rows locked so that two concurrent demotions cannot both pass.
    async fn update(
        &self,
        user: &User,
        read_at: OffsetDateTime,
        keep_an_admin: bool,
        events: &[Event],
    ) -> Result<UpdateOutcome, StoreError>;
    /// How many users are active administrators.
    async fn active_admins(&self) -> Result<u64, StoreError>;
    /// Records whether the user has a confirmed second factor; `NotFound` for an unknown user.
    async fn set_mfa_enabled(&self, id: Uuid, enabled: bool, at: time::OffsetDateTime) -> Result<(), StoreError>;
    /// Deletes a user outright (only for a registration that could not complete).
    async fn delete(&self, id: Uuid) -> Result<(), StoreError>;
    /// Marks the email verified and records `event`, in one transaction, if it was not already;
    /// returns whether it changed. `NotFound` when there is no such user.
    async fn set_email_verified(&self, id: Uuid, at: OffsetDateTime, event: &Event) -> Result<bool, StoreError>;
}
