//! `KeySource` and `SessionStatus` over HTTP: the JWKS and session status of a remote auth
//! service, for processes that verify tokens but do not run the auth service.

use api::ApiError;
use api::auth::{Jwks, KeySource, SessionStatus};
use async_trait::async_trait;
use platform::client::ServiceClient;
use reqwest::Method;

pub struct HttpKeySource(pub ServiceClient);

#[async_trait]
impl KeySource for HttpKeySource {
    async fn jwks(&self) -> Result<Jwks, ApiError> {
        self.0.call::<(), Jwks>(Method::GET, "/.well-known/jwks.json", None).await
    }
}

pub struct HttpSessionStatus(pub ServiceClient);

#[async_trait]
impl SessionStatus for HttpSessionStatus {
    async fn session_active(&self, session_id: uuid::Uuid) -> Result<bool, ApiError> {
        let answer: crate::http::SessionActive =
            self.0.call::<(), _>(Method::GET, &format!("/internal/sessions/{session_id}"), None).await?;
        Ok(answer.active)
    }
}
