//! Liveness (`/healthz`), readiness (`/readyz`, each dependency's state) and `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::BoxFuture;
use serde_json::json;

use super::Json;

pub type CheckFn = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// One dependency to probe. A required one being down makes the process not ready (503);
/// an optional one (a cache) only marks it degraded.
#[derive(Clone)]
pub struct Check {
    pub name: &'static str,
    pub required: bool,
    pub probe: CheckFn,
}

#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<Check>,
}

impl Readiness {
    pub fn add(&mut self, name: &'static str, required: bool, probe: CheckFn) {
        self.checks.push(Check { name, required, probe });
    }

    async fn report(&self) -> (bool, serde_json::Value) {
        let results = futures::future::join_all(self.checks.iter().map(|c| async move {
            let outcome = tokio::time::timeout(Duration::from_secs(2), (c.probe)())
                .await
                .unwrap_or_else(|_| Err("timed out".to_string()));
            (c, outcome)
        }))
        .await;
        let mut ready = true;
        let mut degraded = false;
        let mut checks = serde_json::Map::new();
        for (c, outcome) in results {
            let entry = match outcome {
                Ok(()) => json!({"status": "up", "required": c.required}),
                Err(e) => {
                    if c.required {
                        ready = false;
                    } else {
                        degraded = true;
                    }
                    json!({"status": "down", "required": c.required, "error": e})
                }
            };
            checks.insert(c.name.to_string(), entry);
        }
        let status = if !ready {
            "unready"
        } else if degraded {
            "degraded"
        } else {
            "ready"
        };
        (ready, json!({"status": status, "checks": checks}))
    }
}

async fn readyz(State(r): State<Arc<Readiness>>) -> Response {
    let (ready, body) = r.report().await;
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let mut res = (status, Json(body)).into_response();
    if !ready {
        res.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("5"));
    }
    res
}

async fn metrics_text() -> Response {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::telemetry::metrics_handle().render())
        .into_response()
}

/// `/healthz`, `/readyz` and `/metrics`.
pub fn health_routes(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .with_state(Arc::new(readiness))
        .route("/metrics", get(metrics_text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt as _;

    fn probe(ok: bool) -> CheckFn {
        Arc::new(move || Box::pin(async move { if ok { Ok(()) } else { Err("connection refused".to_string()) } }))
    }

    async fn readyz_of(r: Readiness) -> (StatusCode, serde_json::Value) {
        let req = axum::http::Request::get("/readyz").body(axum::body::Body::empty()).unwrap();
        let res = health_routes(r).oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn a_required_dependency_down_makes_the_process_unready() {
        let mut r = Readiness::default();
        r.add("database", true, probe(false));
        r.add("cache", false, probe(true));
        let (status, body) = readyz_of(r).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["status"], "unready");
        assert_eq!(body["checks"]["database"]["status"], "down");
        assert_eq!(body["checks"]["database"]["error"], "connection refused");
        assert_eq!(body["checks"]["cache"]["status"], "up");
    }

    #[tokio::test]
    async fn an_optional_dependency_down_only_degrades() {
        let mut r = Readiness::default();
        r.add("database", true, probe(true));
        r.add("cache", false, probe(false));
        let (status, body) = readyz_of(r).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "degraded");
    }
}
