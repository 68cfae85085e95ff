//! `KeySource`, `SessionStatus` and `SessionsApi` over HTTP: the JWKS, session status, session
//! ending, password checks and email changes of a remote auth service, for processes that do not
//! run the auth service. (Its personal data is reached with `platform::client::PersonalDataClient`.)

use api::ApiError;
use api::auth::{
    EmailChangeRequest, EmailChanged, EndSessionsRequest, EndSessionsResponse, Jwks, KeySource, PasswordCheck,
    SessionEndReason, SessionStatus, SessionsApi, StepUpCheck, StepUpProof,
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

    async fn check_password(&self, user_id: uuid::Uuid, password: &str) -> Result<(), ApiError> {
        let body = PasswordCheck { user_id, password: password.to_string() };
        self.0.call::<_, ()>(Method::POST, "/internal/auth/password-check", Some(&body)).await
    }

    async fn email_changed(&self, user_id: uuid::Uuid, old_email: &str) -> Result<(), ApiError> {
        let body = EmailChanged { user_id, old_email: old_email.to_string() };
        self.0.call::<_, ()>(Method::POST, "/internal/auth/email-changed", Some(&body)).await
    }

    async fn verify_step_up(
        &self,
        user_id: uuid::Uuid,
        proof: Option<&StepUpProof>,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<(), ApiError> {
        if proof.is_none() {
            return Err(ApiError::StepUpRequired);
        }
        let body = StepUpCheck { user_id, proof: proof.cloned(), client_ip };
        self.0.call::<_, ()>(Method::POST, "/internal/auth/step-up", Some(&body)).await
    }

    async fn request_email_change(&self, req: &EmailChangeRequest) -> Result<(), ApiError> {
        self.0.call::<_, ()>(Method::POST, "/internal/auth/email-change", Some(req)).await
    }
}
