//! The HTTP client one service uses to call another when they run in different processes:
//! round-robin over the instances, bounded timeouts, the caller's request id and trace context
//! passed on, each call signed with the calling service's key (`crate::service_auth`: a token for
//! this one request to this one service, valid 60 s), redirects never followed (a redirecting
//! answer is an error: the credential and the body must not travel on to another address), and
//! answers mapped back to `ApiError`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use api::{ApiError, FieldError};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::http::{TRACEPARENT, X_REQUEST_ID, current_context};
pub use crate::service_auth::SERVICE_TOKEN_HEADER;
use crate::service_auth::ServiceKey;

#[derive(Clone)]
pub struct ServiceClient {
    service: &'static str,
    bases: Arc<Vec<String>>,
    next: Arc<AtomicUsize>,
    http: reqwest::Client,
    /// The calling service's key.
    credential: Arc<ServiceKey>,
}

impl std::fmt::Debug for ServiceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceClient")
            .field("service", &self.service)
            .field("caller", &self.credential.service())
            .field("bases", &self.bases)
            .finish()
    }
}

#[derive(serde::Deserialize)]
struct ProblemBody {
    #[serde(default)]
    detail: String,
    #[serde(default)]
    errors: Vec<FieldError>,
    #[serde(default)]
    code: Option<String>,
}

impl ServiceClient {
    /// `bases` are the instances' base URLs such as `http://10.0.0.5:8082`; `credential` is the
    /// key of the service making the calls.
    pub fn new(service: &'static str, bases: Vec<String>, credential: Arc<ServiceKey>) -> anyhow::Result<Self> {
        anyhow::ensure!(!bases.is_empty(), "no address configured for the {service} service");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        let bases = bases.into_iter().map(|b| b.trim_end_matches('/').to_string()).collect();
        Ok(Self { service, bases: Arc::new(bases), next: Arc::new(AtomicUsize::new(0)), http, credential })
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
        let url = reqwest::Url::parse(&format!("{}{}", self.base(), path))
            .map_err(|e| ApiError::Internal(format!("{} service address: {e}", self.service)))?;
        // The token names the path exactly as it goes on the wire.
        let token = self.credential.sign(self.service, method.as_str(), url.path());
        let mut req = self.http.request(method, url).header(SERVICE_TOKEN_HEADER, token);
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
        let problem: ProblemBody =
            res.json().await.unwrap_or(ProblemBody { detail: String::new(), errors: vec![], code: None });
        Err(match status {
            StatusCode::NOT_FOUND => ApiError::NotFound,
            StatusCode::CONFLICT => ApiError::Conflict(problem.detail),
            StatusCode::UNPROCESSABLE_ENTITY => ApiError::Invalid(problem.errors),
            StatusCode::UNAUTHORIZED if problem.code.as_deref() == Some("step_up_failed") => ApiError::StepUpFailed,
            StatusCode::UNAUTHORIZED => ApiError::Unauthorized,
            StatusCode::FORBIDDEN if problem.code.as_deref() == Some("step_up_required") => ApiError::StepUpRequired,
            StatusCode::FORBIDDEN => ApiError::Forbidden,
            StatusCode::TOO_MANY_REQUESTS => ApiError::RateLimited(retry_after.unwrap_or(1)),
            s if s == StatusCode::SERVICE_UNAVAILABLE
                || s == StatusCode::BAD_GATEWAY
                || s == StatusCode::GATEWAY_TIMEOUT =>
            {
                ApiError::Unavailable(format!("{} service answered {s}", self.service))
            }
            s if s.is_redirection() => {
                tracing::warn!(service = self.service, status = %s, "a service answered with a redirect; not followed");
                ApiError::Internal(format!("{} service answered a redirect ({s}), which is not followed", self.service))
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

    async fn current_task(&self, id: uuid::Uuid) -> Result<Option<api::projects::Task>, ApiError> {
        let path = format!("/internal/projects/tasks/{id}");
        match self.0.call(Method::GET, &path, None::<&()>).await {
            Ok(task) => Ok(Some(task)),
            Err(ApiError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn current_comment(&self, id: uuid::Uuid) -> Result<Option<api::projects::Comment>, ApiError> {
        let path = format!("/internal/projects/comments/{id}");
        match self.0.call(Method::GET, &path, None::<&()>).await {
            Ok(comment) => Ok(Some(comment)),
            Err(ApiError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::AtomicU32;

    use api::internal::Service;
    use axum::Router;
    use axum::http::HeaderMap;
    use axum::routing::{any, get};

    use super::*;
    use crate::service_auth::{ServiceVerifier, parse_public_key};

    async fn serve(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        base
    }

    #[tokio::test]
    async fn calls_are_signed_by_the_caller_for_the_callee_and_redirects_are_not_followed() {
        let (key, _) = ServiceKey::generate(Service::Worker);
        let public = parse_public_key(Service::Worker, &key.public_key()).unwrap();
        let verifier =
            Arc::new(ServiceVerifier::new(BTreeMap::from([(Service::Worker, vec![public])]), [Service::Projects]));

        // Where a redirect would lead: it must never be reached.
        let reached = Arc::new(AtomicU32::new(0));
        let r = reached.clone();
        let elsewhere = serve(Router::new().route(
            "/{*rest}",
            any(move || {
                r.fetch_add(1, Ordering::SeqCst);
                async { "followed" }
            }),
        ))
        .await;
        let v = verifier.clone();
        let target = format!("{elsewhere}/internal/projects/access");
        let service = serve(
            Router::new()
                .route(
                    "/internal/projects/access",
                    axum::routing::post(move |headers: HeaderMap| {
                        let v = v.clone();
                        async move {
                            let token = headers.get(SERVICE_TOKEN_HEADER).unwrap().to_str().unwrap();
                            let caller = v.verify(token, "POST", "/internal/projects/access").unwrap();
                            assert_eq!(caller.caller, Service::Worker);
                            axum::Json(serde_json::json!({"role": null}))
                        }
                    }),
                )
                .route(
                    "/moved",
                    get(move || {
                        let target = target.clone();
                        async move { (StatusCode::TEMPORARY_REDIRECT, [(reqwest::header::LOCATION, target)]) }
                    }),
                ),
        )
        .await;

        let client = ServiceClient::new("projects", vec![service], Arc::new(key)).unwrap();
        let access = ProjectAccessClient(client.clone());
        let role = api::projects::ProjectAccess::project_role(
            &access,
            uuid::Uuid::nil(),
            uuid::Uuid::nil(),
            api::users::Role::User,
        )
        .await
        .unwrap();
        assert_eq!(role, None, "the signed call went through");
        let err = client.call::<(), serde_json::Value>(Method::GET, "/moved", None).await.unwrap_err();
        assert!(matches!(&err, ApiError::Internal(m) if m.contains("redirect")), "{err:?}");
        assert_eq!(reached.load(Ordering::SeqCst), 0, "the redirect was not followed");
    }
}
