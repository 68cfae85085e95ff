//! The `Authenticated` extractor: the verified caller of a request, or a 401 problem.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::Problem;
use crate::identity::{Identity, TokenVerifier, VerifyError};

/// Put in request extensions by whoever verified the caller in this process (the gateway), or by
/// the extractor itself; a client cannot set an extension.
#[derive(Debug, Clone)]
pub struct Caller(pub Identity);

/// The verified caller. Needs an `Arc<TokenVerifier>` extension on the router.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Identity);

/// The bearer token of a request, if well-formed.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim()).filter(|t| !t.is_empty())
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(Caller(id)) = parts.extensions.get::<Caller>() {
            return Ok(Authenticated(id.clone()));
        }
        let token = bearer(&parts.headers).ok_or_else(Problem::unauthorized)?;
        let verifier = parts
            .extensions
            .get::<Arc<TokenVerifier>>()
            .cloned()
            .ok_or_else(|| Problem::internal("no token verifier on this router"))?;
        match verifier.verify(token).await {
            Ok(identity) => {
                parts.extensions.insert(Caller(identity.clone()));
                Ok(Authenticated(identity))
            }
            Err(VerifyError::Invalid) => Err(Problem::unauthorized()),
            Err(VerifyError::Unavailable) => Err(Problem::unavailable(5)),
        }
    }
}
