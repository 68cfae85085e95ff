//! `UsersApi` over HTTP, for processes that do not run the users service themselves, and the
//! projects service's `ProjectPeople` over HTTP for a users service running without it.

use api::ApiError;
use api::users::{ApplyEmailChange, EmailLookup, MfaFlag, NewUser, NotificationSettings, User, UsersApi};
use async_trait::async_trait;
use platform::client::ServiceClient;
use reqwest::Method;
use uuid::Uuid;

pub struct HttpUsersClient(pub ServiceClient);

#[async_trait]
impl UsersApi for HttpUsersClient {
    async fn create_user(&self, new: NewUser) -> Result<User, ApiError> {
        self.0.call(Method::POST, "/internal/users", Some(&new)).await
    }

    async fn get_user(&self, id: Uuid) -> Result<User, ApiError> {
        self.0.call::<(), _>(Method::GET, &format!("/internal/users/{id}"), None).await
    }

    async fn find_by_email(&self, email: &str) -> Result<User, ApiError> {
        self.0.call(Method::POST, "/internal/users/lookup", Some(&EmailLookup { email: email.to_string() })).await
    }

    async fn set_mfa_enabled(&self, id: Uuid, enabled: bool) -> Result<(), ApiError> {
        let body = MfaFlag { enabled };
        self.0.call::<MfaFlag, ()>(Method::PUT, &format!("/internal/users/{id}/mfa"), Some(&body)).await
    }

    async fn discard_new_user(&self, id: Uuid) -> Result<(), ApiError> {
        self.0.call::<(), ()>(Method::DELETE, &format!("/internal/users/{id}"), None).await
    }

    async fn set_email_verified(&self, id: Uuid) -> Result<(), ApiError> {
        self.0.call::<(), ()>(Method::POST, &format!("/internal/users/{id}/email-verified"), None).await
    }

    async fn notification_settings(&self, id: Uuid) -> Result<NotificationSettings, ApiError> {
        self.0.call::<(), _>(Method::GET, &format!("/internal/users/{id}/notifications"), None).await
    }

    async fn apply_email_change(&self, id: Uuid, email: &str) -> Result<(), ApiError> {
        let body = ApplyEmailChange { email: email.to_string() };
        self.0.call::<_, ()>(Method::PUT, &format!("/internal/users/{id}/email"), Some(&body)).await
    }
}

/// `ProjectPeople` of the projects service in another process (`POST /internal/projects/co-members`),
/// for the users service's search.
pub struct HttpProjectPeople(pub ServiceClient);

#[async_trait]
impl api::projects::ProjectPeople for HttpProjectPeople {
    async fn co_members(&self, user: Uuid) -> Result<Vec<Uuid>, ApiError> {
        let q = api::projects::CoMembersQuery { user_id: user };
        let a: api::projects::CoMembersAnswer =
            self.0.call(Method::POST, "/internal/projects/co-members", Some(&q)).await?;
        Ok(a.user_ids)
    }
}
