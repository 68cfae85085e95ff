//! Per-request middleware: request ids, W3C trace context, one log line and metrics per request,
//! and the safety net that turns any bare error answer into a problem.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
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

/// Refuses a body whose declared length exceeds `limit` with a 413 problem. The body is read and
/// discarded first (at most 64 MiB, for at most 5 s): answering while the client is still sending
/// makes many HTTP/1.1 clients see a reset instead of the answer. Bodies without a declared length
/// are bounded by `DefaultBodyLimit` where they are read.
pub async fn reject_oversized(State(limit): State<usize>, req: Request, next: Next) -> Response {
    if streams_body(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit as u64 => {
            if n <= 64 * 1024 * 1024 {
                let drain = axum::body::to_bytes(req.into_body(), 64 * 1024 * 1024);
                let _ = tokio::time::timeout(std::time::Duration::from_secs(5), drain).await;
            }
            Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response()
        }
        _ => next.run(req).await,
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
