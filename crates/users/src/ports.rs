//! The users service's storage port.

use api::users::User;
use async_trait::async_trait;
use platform::bus::Event;
use platform::db::StoreError;
use time::OffsetDateTime;
use uuid::Uuid;

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts a user and its event in one transaction; `Conflict` when the email is taken.
    async fn insert(&self, user: &User, event: &Event) -> Result<(), StoreError>;
    async fn get(&self, id: Uuid) -> Result<User, StoreError>;
    /// Looks a user up by normalized email.
    async fn find_by_email(&self, email: &str) -> Result<User, StoreError>;
    /// Records whether the user has a confirmed second factor; `NotFound` for an unknown user.
    async fn set_mfa_enabled(&self, id: Uuid, enabled: bool, at: time::OffsetDateTime) -> Result<(), StoreError>;
    /// Deletes a user outright (only for a registration that could not complete).
    async fn delete(&self, id: Uuid) -> Result<(), StoreError>;
    /// Marks the email verified and records `event`, in one transaction, if it was not already;
    /// returns whether it changed. `NotFound` when there is no such user.
    async fn set_email_verified(&self, id: Uuid, at: OffsetDateTime, event: &Event) -> Result<bool, StoreError>;
}
