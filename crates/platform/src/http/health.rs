//! Liveness (`/healthz`), readiness (`/readyz`, each dependency's state) and `/metrics`.
//!
//! Neither reveals internal error text: `/readyz` names each check with `up`/`down` only (the
//! reason goes to the log), and where a separate metrics address is configured
//! (`metrics.listen`) the main listener serves only `/healthz` and a bare `/readyz` status, and
//! `/metrics` and the per-check details are served on that address alone
//! ([`public_health_routes`], [`health_routes`]).

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

    async fn report(&self, details: bool) -> (bool, serde_json::Value) {
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
                    // The reason is for operators (it may name hosts or drivers): the log only.
                    tracing::warn!(check = c.name, required = c.required, error = %e, "readiness check failed");
                    json!({"status": "down", "required": c.required})
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
        if details { (ready, json!({"status": status, "checks": checks})) } else { (ready, json!({"status": status})) }
    }
}

/// What `/readyz` shows, set per listener.
#[derive(Clone)]
struct ReadyzState {
    readiness: Arc<Readiness>,
    details: bool,
}

async fn readyz(State(r): State<ReadyzState>) -> Response {
    let (ready, body) = r.readiness.report(r.details).await;
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

/// `/healthz`, `/readyz` with each check's state, and `/metrics`: the main listener's without a
/// metrics address, else the metrics listener's.
pub fn health_routes(readiness: Readiness) -> Router {
    probes(Arc::new(readiness), true).route("/metrics", get(metrics_text))
}

/// `/healthz` and `/readyz` with the overall status only (no check names), and no `/metrics`:
/// the main listener's when `metrics.listen` puts those on an address of their own.
pub fn public_health_routes(readiness: Readiness) -> Router {
    // A 404 problem rather than the web app's shell, which would answer any other path.
    probes(Arc::new(readiness), false).route("/metrics", get(|| async { super::Problem::not_found() }))
}

fn probes(readiness: Arc<Readiness>, details: bool) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .with_state(ReadyzState { readiness, details })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt as _;

    fn probe(ok: bool) -> CheckFn {
        Arc::new(move || Box::pin(async move { if ok { Ok(()) } else { Err("connection refused".to_string()) } }))
    }

    async fn readyz_of(r: Readiness) -> (StatusCode, serde_json::Value) {
        get_of(health_routes(r), "/readyz").await
    }

    async fn get_of(router: Router, path: &str) -> (StatusCode, serde_json::Value) {
        let req = axum::http::Request::get(path).body(axum::body::Body::empty()).unwrap();
        let res = router.oneshot(req).await.unwrap();
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
        assert_eq!(body["checks"]["cache"]["status"], "up");
        assert!(!body.to_string().contains("refused"), "no error text: {body}");
    }

    #[tokio::test]
    async fn the_public_probes_show_no_check_and_no_metrics() {
        let mut r = Readiness::default();
        r.add("database", true, probe(false));
        let (status, body) = get_of(public_health_routes(r.clone()), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, json!({"status": "unready"}));
        let (status, _) = get_of(public_health_routes(r.clone()), "/healthz").await;
        assert_eq!(status, StatusCode::OK);
        let req = axum::http::Request::get("/metrics").body(axum::body::Body::empty()).unwrap();
        let res = public_health_routes(r).oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
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
