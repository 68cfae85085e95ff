//! The HTTP client one service uses to call another when they run in different processes:
//! round-robin over the instances, bounded timeouts, the caller's request id and trace context
//! passed on, the internal token attached, and answers mapped back to `ApiError`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use api::{ApiError, FieldError};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::http::{TRACEPARENT, X_REQUEST_ID, current_context};

/// The header carrying the shared secret that guards `/internal/*` routes.
pub const INTERNAL_TOKEN_HEADER: &str = "x-trellis-internal";

#[derive(Clone)]
pub struct ServiceClient {
    service: &'static str,
    bases: Arc<Vec<String>>,
    next: Arc<AtomicUsize>,
    http: reqwest::Client,
    internal_token: SecretString,
}

impl std::fmt::Debug for ServiceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceClient").field("service", &self.service).field("bases", &self.bases).finish()
    }
}

#[derive(serde::Deserialize)]
struct ProblemBody {
    #[serde(default)]
    detail: String,
    #[serde(default)]
    errors: Vec<FieldError>,
}

impl ServiceClient {
    /// `bases` are the instances' base URLs such as `http://10.0.0.5:8082`.
    pub fn new(service: &'static str, bases: Vec<String>, internal_token: SecretString) -> anyhow::Result<Self> {
        anyhow::ensure!(!bases.is_empty(), "no address configured for the {service} service");
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        let bases = bases.into_iter().map(|b| b.trim_end_matches('/').to_string()).collect();
        Ok(Self { service, bases: Arc::new(bases), next: Arc::new(AtomicUsize::new(0)), http, internal_token })
    }

    fn base(&self) -> &str {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.bases.len();
        &self.bases[i]
    }

    /// Calls `method path` with an optional JSON body; 204 decodes as `null`.
    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        let url = format!("{}{}", self.base(), path);
        let mut req =
            self.http.request(method, &url).header(INTERNAL_TOKEN_HEADER, self.internal_token.expose_secret());
        if let Some(ctx) = current_context() {
            req = req.header(X_REQUEST_ID, ctx.request_id.as_str()).header(TRACEPARENT, ctx.traceparent());
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.map_err(|e| ApiError::Unavailable(format!("{} service: {e}", self.service)))?;
        let status = res.status();
        let retry_after = res
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if status.is_success() {
            let bytes = res.bytes().await.map_err(|e| ApiError::Unavailable(e.to_string()))?;
            let bytes: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
            return serde_json::from_slice(bytes)
                .map_err(|e| ApiError::Internal(format!("bad answer from the {} service: {e}", self.service)));
        }
        let problem: ProblemBody = res.json().await.unwrap_or(ProblemBody { detail: String::new(), errors: vec![] });
        Err(match status {
            StatusCode::NOT_FOUND => ApiError::NotFound,
            StatusCode::CONFLICT => ApiError::Conflict(problem.detail),
            StatusCode::UNPROCESSABLE_ENTITY => ApiError::Invalid(problem.errors),
            StatusCode::UNAUTHORIZED => ApiError::Unauthorized,
            StatusCode::FORBIDDEN => ApiError::Forbidden,
            StatusCode::TOO_MANY_REQUESTS => ApiError::RateLimited(retry_after.unwrap_or(1)),
            s if s == StatusCode::SERVICE_UNAVAILABLE
                || s == StatusCode::BAD_GATEWAY
                || s == StatusCode::GATEWAY_TIMEOUT =>
            {
                ApiError::Unavailable(format!("{} service answered {s}", self.service))
            }
            s => ApiError::Internal(format!("{} service answered {s}", self.service)),
        })
    }
}

/// `PersonalDataApi` of a service in another process, under `/internal/<service>/personal-data/`.
/// The subject travels in a body so that no email sits in a URL or an access log.
pub struct PersonalDataClient(pub ServiceClient);

#[async_trait::async_trait]
impl api::personal::PersonalDataApi for PersonalDataClient {
    async fn export(&self, subject: &api::personal::DataSubject) -> Result<api::personal::PersonalData, ApiError> {
        let path = format!("/internal/{}/personal-data/export", self.0.service);
        self.0.call(Method::POST, &path, Some(subject)).await
    }

    async fn erase(&self, subject: &api::personal::DataSubject) -> Result<api::personal::ErasureReport, ApiError> {
        let path = format!("/internal/{}/personal-data/erase", self.0.service);
        self.0.call(Method::POST, &path, Some(subject)).await
    }
}

/// `ProjectAccess` of the projects service in another process (`POST /internal/projects/access`).
pub struct ProjectAccessClient(pub ServiceClient);

#[async_trait::async_trait]
impl api::projects::ProjectAccess for ProjectAccessClient {
    async fn project_role(
        &self,
        project: uuid::Uuid,
        user: uuid::Uuid,
        role: api::users::Role,
    ) -> Result<Option<api::projects::ProjectRole>, ApiError> {
        let q = api::projects::AccessQuery { project_id: project, user_id: user, role };
        let answer: api::projects::AccessAnswer =
            self.0.call(Method::POST, "/internal/projects/access", Some(&q)).await?;
        Ok(answer.role)
    }
}
