//! Browser sessions (docs/SECURITY.md SE-6): the refresh token in a `__Host-` cookie instead of the
//! answer's body, and the CSRF defence every cookie-authenticated request must pass.
//!
//! A client opts in with the header `X-Trellis-Session: cookie` on `POST /auth/login`,
//! `/auth/login/mfa` and `/auth/refresh`. The refresh token then goes only into
//! `__Host-trellis-refresh` (`Secure; HttpOnly; SameSite=Strict; Path=/`), never into the body, so
//! page scripts cannot read it. `POST /auth/refresh` without a body reads the cookie, and because
//! the browser attaches that cookie by itself, the request must prove it came from the app's own
//! pages: the custom header (which a cross-site form cannot send and a cross-site `fetch` cannot
//! send without a CORS preflight we never grant), `Sec-Fetch-Site: same-origin` when the browser
//! sends it, and an `Origin` naming this host when present.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use platform::http::Problem;

/// The cookie that holds a browser's refresh token.
pub const REFRESH_COOKIE: &str = "__Host-trellis-refresh";
/// The header by which a browser client asks for (and proves) cookie mode.
pub const SESSION_MODE_HEADER: &str = "x-trellis-session";
const COOKIE_MODE: &str = "cookie";

/// True when the request asks for the refresh token in the cookie.
pub fn wants_cookie(headers: &HeaderMap) -> bool {
    headers.get(SESSION_MODE_HEADER).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case(COOKIE_MODE))
}

/// The CSRF defence for a request the cookie authenticates: the custom header, a same-origin
/// fetch, and an `Origin` (when sent) naming the host the request was sent to.
pub fn check_same_origin(headers: &HeaderMap) -> Result<(), Problem> {
    let refuse = |why: &str| {
        tracing::warn!(reason = why, "cookie-authenticated request refused");
        Err(Problem::new(StatusCode::FORBIDDEN, "cross-site request refused"))
    };
    if !wants_cookie(headers) {
        return refuse("missing session-mode header");
    }
    if let Some(site) = headers.get("sec-fetch-site")
        && site.as_bytes() != b"same-origin"
    {
        return refuse("not a same-origin fetch");
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, rest)| rest.trim_end_matches('/'))
            .unwrap_or_default();
        // Behind the gateway the request's own Host names the upstream; the gateway passes the
        // client's in X-Forwarded-Host (and drops any the client sent). A client that could set
        // X-Forwarded-Host itself could also set the custom header, so it is no CSRF vector.
        let hosts = [headers.get("x-forwarded-host"), headers.get(header::HOST)];
        let matches =
            hosts.iter().flatten().filter_map(|h| h.to_str().ok()).any(|h| h.eq_ignore_ascii_case(origin_host));
        if origin_host.is_empty() || !matches {
            return refuse("origin is not this host");
        }
    }
    Ok(())
}

/// The refresh token the request's cookie carries, if any.
pub fn refresh_from_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == REFRESH_COOKIE)
        .map(|(_, value)| value.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// A cookie page scripts may read, holding no secret: "a session cookie was set", so the web
/// app tries a silent refresh only when there may be something to refresh (and a signed-out
/// visit costs no refused request).
pub const HINT_COOKIE: &str = "__Host-trellis-session";

/// The `Set-Cookie` values that store `token` for `lifetime`: the refresh cookie and its hint.
pub fn session_cookies(token: &str, lifetime: Duration) -> [HeaderValue; 2] {
    let age = lifetime.as_secs();
    let refresh = format!("{REFRESH_COOKIE}={token}; Path=/; Max-Age={age}; Secure; HttpOnly; SameSite=Strict");
    let hint = format!("{HINT_COOKIE}=1; Path=/; Max-Age={age}; Secure; SameSite=Strict");
    // Refresh tokens are base64url, always a valid header value.
    match (HeaderValue::from_str(&refresh), HeaderValue::from_str(&hint)) {
        (Ok(refresh), Ok(hint)) => [refresh, hint],
        _ => cleared_cookies(),
    }
}

/// The `Set-Cookie` values that delete both cookies.
pub fn cleared_cookies() -> [HeaderValue; 2] {
    [
        HeaderValue::from_static("__Host-trellis-refresh=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict"),
        HeaderValue::from_static("__Host-trellis-session=; Path=/; Max-Age=0; Secure; SameSite=Strict"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn same_origin_needs_the_custom_header() {
        assert!(check_same_origin(&headers(&[("host", "a.test")])).is_err());
        assert!(check_same_origin(&headers(&[("host", "a.test"), ("x-trellis-session", "cookie")])).is_ok());
        assert!(check_same_origin(&headers(&[("x-trellis-session", "bearer")])).is_err());
    }

    #[test]
    fn cross_site_fetches_and_foreign_origins_are_refused() {
        let base = [("host", "a.test:8080"), ("x-trellis-session", "cookie")];
        let with = |extra: (&'static str, &'static str)| {
            let mut all = base.to_vec();
            all.push(extra);
            check_same_origin(&headers(&all))
        };
        assert!(with(("sec-fetch-site", "same-origin")).is_ok());
        assert!(with(("sec-fetch-site", "cross-site")).is_err());
        assert!(with(("sec-fetch-site", "same-site")).is_err());
        assert!(with(("origin", "http://a.test:8080")).is_ok());
        assert!(with(("origin", "http://evil.test")).is_err());
        assert!(with(("origin", "null")).is_err());
        assert!(with(("origin", "http://a.test:8080.evil.test")).is_err());
        // Behind the gateway: the client's host arrives as X-Forwarded-Host.
        let proxied = headers(&[
            ("host", "10.0.0.5:9000"),
            ("x-forwarded-host", "app.test"),
            ("x-trellis-session", "cookie"),
            ("origin", "https://app.test"),
        ]);
        assert!(check_same_origin(&proxied).is_ok());
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=1; __Host-trellis-refresh=tok_en-1; b=2")]);
        assert_eq!(refresh_from_cookie(&h).as_deref(), Some("tok_en-1"));
        assert_eq!(refresh_from_cookie(&headers(&[("cookie", "__Host-trellis-refresh=")])), None);
        assert_eq!(refresh_from_cookie(&headers(&[("cookie", "trellis-refresh=x")])), None);
    }

    #[test]
    fn the_cookie_has_every_protection() {
        let [refresh, hint] = session_cookies("abc", Duration::from_secs(60));
        let s = refresh.to_str().unwrap();
        assert!(s.starts_with("__Host-trellis-refresh=abc; Path=/; Max-Age=60;"));
        for attr in ["Secure", "HttpOnly", "SameSite=Strict"] {
            assert!(s.contains(attr), "{s} lacks {attr}");
        }
        assert!(!s.contains("Domain"), "a __Host- cookie has no Domain");
        let h = hint.to_str().unwrap();
        assert!(h.starts_with("__Host-trellis-session=1;") && !h.contains("abc"), "the hint holds no secret: {h}");
        for v in cleared_cookies() {
            assert!(v.to_str().unwrap().contains("Max-Age=0"));
        }
    }
}
