//! Use cases of the users service, over the `UserStore` port.

use std::sync::Arc;

use api::users::{NewUser, User, UserStatus, UsersApi};
use api::{ApiError, FieldError};
use async_trait::async_trait;
use platform::bus::Event;
use platform::clock::Clock;
use serde_json::json;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::domain::{Email, UserName};
use crate::ports::UserStore;

pub struct UsersService {
    store: Arc<dyn UserStore>,
    clock: Arc<dyn Clock>,
    outbox_waker: Option<Arc<Notify>>,
}

impl UsersService {
    pub fn new(store: Arc<dyn UserStore>, clock: Arc<dyn Clock>, outbox_waker: Option<Arc<Notify>>) -> Self {
        Self { store, clock, outbox_waker }
    }

    fn wake_relay(&self) {
        if let Some(w) = &self.outbox_waker {
            w.notify_one();
        }
    }
}

#[async_trait]
impl UsersApi for UsersService {
    async fn create_user(&self, new: NewUser) -> Result<User, ApiError> {
        let mut errors = Vec::new();
        let email = Email::parse(&new.email).map_err(|m| errors.push(FieldError::new("email", m))).ok();
        let name = UserName::parse(&new.name).map_err(|m| errors.push(FieldError::new("name", m))).ok();
        let (Some(email), Some(name)) = (email, name) else {
            return Err(ApiError::Invalid(errors));
        };
        let now = self.clock.now();
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
