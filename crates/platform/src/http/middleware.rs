//! Per-request middleware: request ids, W3C trace context, one log line and metrics per request,
//! and the safety net that turns any bare error answer into a problem.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use super::Problem;

pub const X_REQUEST_ID: &str = "x-request-id";
pub const TRACEPARENT: &str = "traceparent";

/// Identifiers of the request being served, readable anywhere inside its handling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    pub request_id: String,
    /// 32 lowercase hex digits (W3C trace context).
    pub trace_id: String,
    /// 16 lowercase hex digits: this service's span, the parent of any outgoing call.
    pub span_id: String,
    pub sampled: bool,
}

impl RequestContext {
    /// The `traceparent` header for a call made while serving this request.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, self.span_id, if self.sampled { "01" } else { "00" })
    }
}

tokio::task_local! {
    static CONTEXT: RequestContext;
}

/// The context of the request this task serves, if any.
pub fn current_context() -> Option<RequestContext> {
    CONTEXT.try_with(Clone::clone).ok()
}

/// Runs `fut` (on another task) as part of the request `ctx` describes.
pub(crate) async fn in_context<F: std::future::Future>(ctx: RequestContext, fut: F) -> F::Output {
    CONTEXT.scope(ctx, fut).await
}

/// A request id from a client is kept when it is short printable ASCII; otherwise we make one.
fn request_id(req: &Request) -> String {
    req.headers()
        .get(X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| crate::ids::new_id().simple().to_string())
}

/// Parses `traceparent` (version 00): `00-<trace-id>-<parent-id>-<flags>`.
/// Returns the trace id, the caller's span id (our parent) and the sampled flag.
fn parse_traceparent(value: &str) -> Option<(String, String, bool)> {
    let mut parts = value.trim().split('-');
    let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if version != "00" || parts.next().is_some() || !hex(trace, 32) || !hex(parent, 16) || !hex(flags, 2) {
        return None;
    }
    if trace.bytes().all(|b| b == b'0') || parent.bytes().all(|b| b == b'0') {
        return None;
    }
    let sampled = u8::from_str_radix(flags, 16).ok()? & 1 == 1;
    Some((trace.to_string(), parent.to_string(), sampled))
}

fn random_hex<const N: usize>() -> String {
    hex::encode(crate::crypto::random_bytes::<N>())
}

/// The outermost layer of every service: sets the request context, logs and measures.
/// `service` names the service (or `gateway`) in logs and metrics.
pub async fn observe(State(service): State<&'static str>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = request_id(&req);
    let (trace_id, parent_span_id, sampled) = req
        .headers()
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_traceparent)
        .unwrap_or_else(|| (random_hex::<16>(), String::new(), true));
    let ctx = RequestContext { request_id: request_id.clone(), trace_id, span_id: random_hex::<8>(), sampled };
    let method = req.method().clone();
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let span = tracing::info_span!(
        "request",
        service,
        request_id = %ctx.request_id,
        trace_id = %ctx.trace_id,
        span_id = %ctx.span_id,
        parent_span_id = %parent_span_id,
        method = %method,
        route = %route,
    );
    let mut res = CONTEXT.scope(ctx, next.run(req).instrument(span.clone())).await;
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    span.in_scope(|| {
        tracing::info!(status, latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX), "request served")
    });
    let labels = [
        ("service", service.to_string()),
        ("method", method.to_string()),
        ("route", route),
        ("status", status.to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    if status >= 500 {
        metrics::counter!("http_request_errors_total", &labels[..3]).increment(1);
    }
    metrics::histogram!("http_request_duration_seconds", &labels[..3]).record(elapsed.as_secs_f64());
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(X_REQUEST_ID, v);
    }
    res
}

/// Turns error answers that are not problems yet (axum's own 405, a body-limit 413, a timeout
/// 408) into problems, so clients see one error shape.
pub async fn problems_for_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    if status.as_u16() < 400 || is_problem(&res) || status == StatusCode::SWITCHING_PROTOCOLS {
        return res;
    }
    let detail = match status {
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this resource",
        StatusCode::PAYLOAD_TOO_LARGE => "request body too large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported media type",
        StatusCode::REQUEST_TIMEOUT => "request timed out",
        StatusCode::NOT_FOUND => "not found",
        s if s.is_server_error() => "internal error",
        _ => "request rejected",
    };
    let allow = res.headers().get(header::ALLOW).cloned();
    let mut problem = Problem::new(status, detail).into_response();
    if let Some(allow) = allow {
        problem.headers_mut().insert(header::ALLOW, allow);
    }
    problem
}

fn is_problem(res: &Response<Body>) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/problem+json"))
}

/// Whether the route streams its request body and bounds it itself, so that the global body
/// limits ([`reject_oversized`], the gateway proxy's buffer) must leave it alone: attachment
/// uploads, `POST /api/tasks/{id}/attachments` (limit in the projects service's settings).
pub fn streams_body(method: &axum::http::Method, path: &str) -> bool {
    method == axum::http::Method::POST
        && path
            .strip_prefix("/api/tasks/")
            .and_then(|rest| rest.strip_suffix("/attachments"))
            .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// Refuses a body whose declared length exceeds `limit` with a 413 problem at once, from the
/// `Content-Length` alone: nothing of the body is awaited. A client that sends it anyway (without
/// `Expect: 100-continue`) has it read and discarded in the background (at most 64 MiB for at
/// most 5 s) while the answer goes out, since closing on unread data makes many HTTP/1.1 clients
/// see a reset instead of the answer. Bodies without a declared length are bounded by
/// `DefaultBodyLimit` where they are read.
pub async fn reject_oversized(State(limit): State<usize>, req: Request, next: Next) -> Response {
    if streams_body(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit as u64 => {
            let waits_for_continue = req.headers().contains_key(header::EXPECT);
            if n <= 64 * 1024 * 1024 && !waits_for_continue {
                let drain = axum::body::to_bytes(req.into_body(), 64 * 1024 * 1024);
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), drain).await;
                });
            }
            metrics::counter!("trellis_requests_too_large_total").increment(1);
            Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response()
        }
        _ => next.run(req).await,
    }
}

/// The methods any Trellis route answers to; anything else (`FOO`, `TRACE`, `CONNECT`, WebDAV's)
/// is refused by [`reject_unknown_methods`] before authentication, routing or rate limits.
pub const KNOWN_METHODS: [Method; 7] =
    [Method::GET, Method::HEAD, Method::POST, Method::PUT, Method::PATCH, Method::DELETE, Method::OPTIONS];

/// Answers 405 (with `Allow`) to a method no route has, before anything else looks at the
/// request: an unknown method is never a 401, whoever sends it.
pub async fn reject_unknown_methods(req: Request, next: Next) -> Response {
    if KNOWN_METHODS.contains(req.method()) {
        return next.run(req).await;
    }
    let mut res = Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this resource").into_response();
    res.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"));
    res
}

/// The per-request deadline (`http.request_timeout_secs`): a handler still working when it
/// passes is dropped (its future cancelled at its next await: a database transaction in flight
/// rolls back) and the client gets 503 with `Retry-After`. Routes that stream their body
/// ([`streams_body`]: uploads) are bounded by their own limits instead; a WebSocket is past the
/// deadline's reach once upgraded. A POST with `Idempotency-Key` runs on a task of its own, which
/// finishes and keeps its answer for the retry.
pub async fn deadline(State(limit): State<std::time::Duration>, req: Request, next: Next) -> Response {
    if streams_body(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => {
            tracing::warn!(limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX), "request deadline passed");
            metrics::counter!("trellis_requests_timed_out_total").increment(1);
            let mut p = Problem::new(StatusCode::SERVICE_UNAVAILABLE, "the request took too long; try again later");
            p.retry_after = Some(1);
            p.into_response()
        }
    }
}

/// The answer for routes that do not exist.
pub async fn problem_fallback() -> Problem {
    Problem::not_found()
}

#[cfg(test)]
mod tests {
    use super::{parse_traceparent, streams_body};

    #[test]
    fn only_attachment_uploads_stream_their_body() {
        use axum::http::Method;
        assert!(streams_body(&Method::POST, "/api/tasks/0190a0c1-0000-7000-8000-000000000000/attachments"));
        assert!(!streams_body(&Method::GET, "/api/tasks/x/attachments"));
        assert!(!streams_body(&Method::POST, "/api/tasks//attachments"));
        assert!(!streams_body(&Method::POST, "/api/tasks/a/b/attachments"));
        assert!(!streams_body(&Method::POST, "/api/projects/x/tasks"));
        assert!(!streams_body(&Method::POST, "/auth/login"));
    }

    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::middleware::{from_fn, from_fn_with_state};
    use axum::routing::{get, post};
    use tower::ServiceExt as _;

    async fn problem_of(res: axum::response::Response) -> (StatusCode, serde_json::Value, axum::http::HeaderMap) {
        let (status, headers) = (res.status(), res.headers().clone());
        assert_eq!(headers["content-type"], "application/problem+json", "{status}");
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap(), headers)
    }

    /// Sets its flag when dropped: the handler holding it was cancelled or finished.
    struct Dropped(Arc<AtomicBool>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_handler_past_the_deadline_is_cancelled_and_answers_503() {
        let (started, dropped) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let (s, d) = (started.clone(), dropped.clone());
        let app = Router::new()
            .route(
                "/slow",
                get(move || {
                    let (s, d) = (s.clone(), d.clone());
                    async move {
                        let _guard = Dropped(d);
                        s.store(true, Ordering::SeqCst);
                        std::future::pending::<()>().await;
                        "never"
                    }
                }),
            )
            .route("/fast", get(|| async { "ok" }))
            .layer(from_fn_with_state(Duration::from_millis(200), super::deadline));
        let res = app.clone().oneshot(Request::get("/slow").body(Body::empty()).unwrap()).await.unwrap();
        let (status, body, headers) = problem_of(res).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["status"], 503);
        assert_eq!(headers["retry-after"], "1");
        assert!(started.load(Ordering::SeqCst) && dropped.load(Ordering::SeqCst), "the handler ran and was dropped");
        let res = app.oneshot(Request::get("/fast").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn an_unknown_method_is_405_before_anything_else() {
        let reached = Arc::new(AtomicBool::new(false));
        let r = reached.clone();
        // An inner layer standing for authentication: it must never see the request.
        let app = Router::new()
            .route("/api/projects", get(|| async { "ok" }))
            .layer(from_fn(move |req: axum::extract::Request, next: axum::middleware::Next| {
                let r = r.clone();
                async move {
                    r.store(true, Ordering::SeqCst);
                    next.run(req).await
                }
            }))
            .layer(from_fn(super::reject_unknown_methods));
        for method in ["FOO", "TRACE", "CONNECT", "PROPFIND"] {
            let req = Request::builder().method(method).uri("/api/projects").body(Body::empty()).unwrap();
            let (status, _, headers) = problem_of(app.clone().oneshot(req).await.unwrap()).await;
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
            assert!(headers["allow"].to_str().unwrap().contains("GET"));
        }
        assert!(!reached.load(Ordering::SeqCst));
        let res = app.oneshot(Request::get("/api/projects").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn an_oversized_content_length_is_refused_without_waiting_for_the_body() {
        let app = Router::new()
            .route("/api/x", post(|body: String| async move { body }))
            .layer(from_fn_with_state(10usize, super::reject_oversized));
        // A body that never comes: the answer must not wait for it.
        let (_tx, rx) = tokio::sync::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(1);
        let never = Body::from_stream(tokio_stream_of(rx));
        let req = Request::post("/api/x").header("content-length", "1000000").body(never).unwrap();
        let res = tokio::time::timeout(Duration::from_secs(2), app.clone().oneshot(req))
            .await
            .expect("answered without the body")
            .unwrap();
        let (status, body, _) = problem_of(res).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["status"], 413);
        let req = Request::post("/api/x").header("content-length", "5").body(Body::from("hello")).unwrap();
        assert_eq!(app.oneshot(req).await.unwrap().status(), StatusCode::OK);
    }

    fn tokio_stream_of<T: Send + 'static>(
        mut rx: tokio::sync::mpsc::Receiver<T>,
    ) -> impl futures::Stream<Item = T> + Send + 'static {
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }

    #[test]
    fn traceparent_is_parsed_strictly() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            parse_traceparent(tp),
            Some(("4bf92f3577b34da6a3ce929d0e0e4736".into(), "00f067aa0ba902b7".into(), true))
        );
        assert_eq!(
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").map(|t| t.2),
            Some(false)
        );
        for bad in [
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "garbage",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad}");
        }
    }
}
