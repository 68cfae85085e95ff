//! The web app's static files (built by Vite into `web/dist`, embedded in the binary), with the
//! SPA fallback, long caching for hashed assets, and a strict Content-Security-Policy; plus the
//! OpenAPI document and the page that browses it.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use platform::http::Problem;
use rust_embed::Embed;

#[derive(Embed)]
#[folder = "../../web/dist"]
struct WebApp;

#[derive(Embed)]
#[folder = "src/assets"]
struct DocsAssets;

/// Everything denied but what the app uses: its own scripts and styles, its images (the 2FA QR
/// code is a `data:` SVG), its API and WebSocket (`connect-src 'self'` covers `ws:` to the same
/// host). No fonts, frames, workers, media, plugins or manifests; no inline code at all. The
/// browser suite fails on any violation, so a new need shows up as a failing test.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn file_response(data: std::borrow::Cow<'static, [u8]>, path: &str, immutable: bool) -> Response {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let mut res = Response::new(Body::from(data));
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(mime.essence_str()) {
        h.insert(header::CONTENT_TYPE, v);
    }
    let cache = if immutable { "public, max-age=31536000, immutable" } else { "no-cache" };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if mime.essence_str() == "text/html" {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP));
    }
    res
}

/// Serves a file of the web app, or `index.html` for client-side routes; API paths that matched
/// nothing get a 404 problem.
pub(crate) async fn static_or_not_found(req: Request) -> Response {
    let path = req.uri().path();
    let api = ["/api/", "/auth/", "/internal/", "/.well-known/"].iter().any(|p| path.starts_with(p)) || path == "/api";
    if api {
        return Problem::not_found().into_response();
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this resource").into_response();
    }
    let rel = path.trim_start_matches('/');
    if !rel.is_empty() {
        if let Some(file) = WebApp::get(rel) {
            return file_response(file.data, rel, rel.starts_with("assets/"));
        }
        // A missing asset is a 404, not the app shell.
        if rel.starts_with("assets/") || rel.contains('.') {
            return Problem::not_found().into_response();
        }
    }
    match WebApp::get("index.html") {
        Some(file) => file_response(file.data, "index.html", false),
        None => Problem::not_found().into_response(),
    }
}

/// `/api/openapi.json`, `/api/docs` and the docs page's script.
pub fn openapi_routes(openapi_json: String) -> Router {
    let doc = Arc::new(openapi_json);
    Router::new()
        .route(
            "/api/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], doc.as_str().to_owned()) }
            }),
        )
        .route("/api/docs", get(|| async { docs_asset("docs.html") }))
        .route("/api/docs/docs.js", get(|| async { docs_asset("docs.js") }))
}

fn docs_asset(name: &str) -> Response {
    match DocsAssets::get(name) {
        Some(f) => file_response(f.data, name, false),
        None => Problem::not_found().into_response(),
    }
}
