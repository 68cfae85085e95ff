//! `KeySource`, `SessionStatus` and `SessionsApi` over HTTP: the JWKS, session status and
//! session ending of a remote auth service, for processes that do not run the auth service.

use api::ApiError;
use api::auth::{
    EndSessionsRequest, EndSessionsResponse, Jwks, KeySource, SessionEndReason, SessionStatus, SessionsApi,
};
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

pub struct HttpSessionsClient(pub ServiceClient);

#[async_trait]
impl SessionsApi for HttpSessionsClient {
    async fn end_all_sessions(&self, user_id: uuid::Uuid, reason: SessionEndReason) -> Result<u32, ApiError> {
        let body = EndSessionsRequest { user_id, reason };
        let answer: EndSessionsResponse = self.0.call(Method::POST, "/internal/sessions/end-all", Some(&body)).await?;
        Ok(answer.ended)
    }
}
