//! `Idempotency-Key` on POST: a client that sends the header may repeat the request (a timeout, a
//! lost answer) and gets the first answer again instead of a second write.
//!
//! - The key is 1–255 printable ASCII characters (else 400), scoped per authenticated user,
//!   method and path: user A's key never replays for user B, nor on another route. It is stored
//!   only as SHA-256 of that scope, never in clear.
//! - The fingerprint is SHA-256 of the method, the path with its query and the body. Same key and
//!   fingerprint: the stored status, body, `Content-Type`, `Location` and `ETag` are replayed with
//!   `Idempotent-Replayed: true`. Same key, other fingerprint: 422 naming `Idempotency-Key`. Same
//!   key while the first request runs: 409 with `Retry-After`.
//! - A reservation row is inserted atomically (primary key on the scope hash) before the handler
//!   runs and completed with the answer after it. The handler runs on a task of its own, so a
//!   client that hangs up does not leave the key reserved. A reservation whose process crashed
//!   stops blocking the key when its lease (60 s) ends.
//! - Stored: final answers 2xx–4xx except 401, 408, 425 and 429 (those say "try again", so a retry
//!   must run). A 5xx is not stored and the reservation is deleted, so a retry runs the handler
//!   again. Answers over 1 MiB are not stored either.
//! - Kept 24 hours: older rows are ignored (the key may be used again) and deleted by an
//!   opportunistic purge that each process starts at most once an hour from a request, in
//!   batches. The stored body may hold user data; it lives no longer than that.
//! - Only requests that carry the header pay anything beyond a header check: their body is
//!   buffered (within the router's `DefaultBodyLimit`) to be fingerprinted. Multipart bodies
//!   (uploads) are not buffered: the header is accepted on them and has no effect.
//! - Anonymous requests are not deduplicated (there is no user to scope the key to).
//!
//! Apply [`idempotent`] with `Router::route_layer` inside the role gate (so the caller is known)
//! and put an `Arc<Idempotency>` extension on the router.

mod store;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use api::FieldError;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use time::{Duration, OffsetDateTime};
use tracing::Instrument;
use uuid::Uuid;

use super::{Authenticated, Caller, Problem, bearer};
use crate::clock::Clock;
use crate::db::{Database, StoreError};

pub use store::{IdempotencyStore, MIGRATIONS, PgIdempotencyStore, SqliteIdempotencyStore};

/// The request header.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on a replayed answer.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The answer headers kept and replayed.
const KEPT_HEADERS: [HeaderName; 3] = [header::CONTENT_TYPE, header::LOCATION, header::ETAG];
/// The largest answer body kept.
const MAX_STORED_BODY: usize = 1024 * 1024;
/// Rows deleted per purge pass.
const PURGE_BATCH: i64 = 1000;

/// A stored final answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    pub status: u16,
    /// The kept headers, lowercase names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A reservation attempt.
#[derive(Debug, Clone)]
pub struct Reserve {
    /// SHA-256 of (user, method, path, key).
    pub key: [u8; 32],
    pub user_id: Uuid,
    pub fingerprint: [u8; 32],
    /// Identifies this reservation, so that only its request completes or releases it.
    pub token: Uuid,
    pub now: OffsetDateTime,
    pub lease_until: OffsetDateTime,
    /// Rows created at or before this are expired and may be taken over.
    pub expired_at_or_before: OffsetDateTime,
}

/// What a reservation attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// The key is ours: run the handler.
    Reserved,
    /// A live row holds the key: its fingerprint and, once its request finished, its answer.
    Held { fingerprint: [u8; 32], answer: Option<StoredAnswer> },
}

/// The idempotency store and its settings; put it on the router as an `Arc` extension.
pub struct Idempotency {
    store: Arc<dyn IdempotencyStore>,
    clock: Arc<dyn Clock>,
    retention: Duration,
    lease: Duration,
    /// Unix seconds before which this process starts no purge.
    next_purge: AtomicI64,
}

impl std::fmt::Debug for Idempotency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idempotency").field("retention", &self.retention).field("lease", &self.lease).finish()
    }
}

impl Idempotency {
    /// Keys kept 24 hours, reservations leased for 60 seconds, in `db` (migrated with
    /// [`MIGRATIONS`]).
    pub fn new(db: &Database, clock: Arc<dyn Clock>) -> Self {
        let store: Arc<dyn IdempotencyStore> = match db {
            Database::Sqlite(db) => Arc::new(SqliteIdempotencyStore::new(db.clone())),
            Database::Postgres(db) => Arc::new(PgIdempotencyStore::new(db.clone())),
        };
        Self::with_store(store, clock)
    }

    pub fn with_store(store: Arc<dyn IdempotencyStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            retention: Duration::hours(24),
            lease: Duration::seconds(60),
            next_purge: AtomicI64::new(0),
        }
    }

    /// The stored keys of `user`, for the GDPR export: when each was made, the answer's status,
    /// and its body (as text when it is UTF-8, else its length).
    pub async fn export_user(&self, user: Uuid) -> Result<Vec<serde_json::Value>, StoreError> {
        let rows = self.store.rows_of(user).await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let body = match r.body {
                    Some(b) => match String::from_utf8(b) {
                        Ok(text) => serde_json::Value::String(text),
                        Err(e) => serde_json::json!({ "bytes": e.as_bytes().len() }),
                    },
                    None => serde_json::Value::Null,
                };
                let created_at = r.created_at.format(&time::format_description::well_known::Rfc3339).ok();
                serde_json::json!({ "user_id": user, "created_at": created_at, "status": r.status, "body": body })
            })
            .collect())
    }

    /// Deletes every stored key of `user` (GDPR erasure): their replayable answers go at once
    /// rather than after 24 hours.
    pub async fn forget_user(&self, user: Uuid) -> Result<u64, StoreError> {
        self.store.forget_user(user).await
    }

    /// Deletes one batch of expired rows now; returns how many went.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        self.purge_batch(self.clock.now(), PURGE_BATCH).await
    }

    /// Deletes up to `limit` rows expired at `now` (kept 24 hours); returns how many went (the
    /// `idempotency-keys` job).
    pub async fn purge_batch(&self, now: OffsetDateTime, limit: i64) -> Result<u64, StoreError> {
        self.store.purge(now - self.retention, limit).await
    }

    /// Starts a purge in the background when this process has not started one for an hour.
    fn maybe_purge(self: &Arc<Self>, now: OffsetDateTime) {
        let due = self.next_purge.load(Ordering::Relaxed);
        let next = now.unix_timestamp() + 3600;
        if now.unix_timestamp() < due
            || self.next_purge.compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            match this.purge_expired().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "expired idempotency keys purged"),
                Err(e) => tracing::warn!(error = %e, "idempotency key purge failed; retried in an hour"),
            }
        });
    }
}

/// Checks the header: exactly one value of 1–255 printable ASCII characters.
fn parse_key(headers: &HeaderMap) -> Result<Option<&str>, Problem> {
    let mut values = headers.get_all(&IDEMPOTENCY_KEY).iter();
    let Some(value) = values.next() else { return Ok(None) };
    let bad = || Problem::bad_request("Idempotency-Key must be one value of 1 to 255 printable ASCII characters");
    if values.next().is_some() {
        return Err(bad());
    }
    let key = value.to_str().map_err(|_| bad())?;
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(bad());
    }
    Ok(Some(key))
}

/// SHA-256 over length-prefixed parts, so that no two part lists hash alike.
fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut buf = Vec::with_capacity(parts.iter().map(|p| p.len() + 8).sum());
    for p in parts {
        buf.extend_from_slice(&(p.len() as u64).to_be_bytes());
        buf.extend_from_slice(p);
    }
    crate::crypto::sha256(&buf)
}

fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("multipart/"))
}

/// Whether an answer with `status` is final for its request, hence kept and replayed.
fn storable(status: StatusCode) -> bool {
    let code = status.as_u16();
    (200..500).contains(&code) && !matches!(code, 401 | 408 | 425 | 429)
}

fn replay(answer: StoredAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut res = (status, answer.body).into_response();
    let h = res.headers_mut();
    h.remove(header::CONTENT_TYPE);
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            h.insert(name, value);
        }
    }
    h.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    res
}

/// The middleware (see the module docs). Requests that are not POST or carry no
/// `Idempotency-Key` go straight to the handler.
pub async fn idempotent(req: Request, next: Next) -> Response {
    if req.method() != Method::POST || !req.headers().contains_key(&IDEMPOTENCY_KEY) {
        return next.run(req).await;
    }
    match prepare(req).await {
        Ok(Prepared::Pass(req)) => next.run(req).await,
        Ok(Prepared::Reserved { idem, req, key, token }) => run_reserved(idem, req, next, key, token).await,
        Ok(Prepared::Answer(res)) => res,
        Err(problem) => problem.into_response(),
    }
}

enum Prepared {
    /// Not deduplicated: run as if there were no header.
    Pass(Request),
    Reserved {
        idem: Arc<Idempotency>,
        req: Request,
        key: [u8; 32],
        token: Uuid,
    },
    /// A replay, or a refusal.
    Answer(Response),
}

async fn prepare(req: Request) -> Result<Prepared, Problem> {
    let Some(raw_key) = parse_key(req.headers())?.map(str::to_owned) else { return Ok(Prepared::Pass(req)) };
    if is_multipart(req.headers()) {
        return Ok(Prepared::Pass(req));
    }
    let idem = req
        .extensions()
        .get::<Arc<Idempotency>>()
        .cloned()
        .ok_or_else(|| Problem::internal("no idempotency store on this router"))?;
    let (mut parts, body) = req.into_parts();
    if parts.extensions.get::<Caller>().is_none() && bearer(&parts.headers).is_none() {
        return Ok(Prepared::Pass(Request::from_parts(parts, body)));
    }
    let Authenticated(caller) = Authenticated::from_request_parts(&mut parts, &()).await?;
    let kept = parts.clone();
    let bytes = Bytes::from_request(Request::from_parts(parts, body), &()).await.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
        _ => Problem::bad_request("the request body could not be read"),
    })?;
    let method = kept.method.as_str().as_bytes();
    let path = kept.uri.path().as_bytes();
    let path_and_query = kept.uri.path_and_query().map_or(path, |p| p.as_str().as_bytes());
    let key = digest(&[caller.user_id.as_bytes(), method, path, raw_key.as_bytes()]);
    let fingerprint = digest(&[method, path_and_query, &bytes]);
    let req = Request::from_parts(kept, Body::from(bytes));

    let now = idem.clock.now();
    let token = crate::ids::new_id();
    let reserve = Reserve {
        key,
        user_id: caller.user_id,
        fingerprint,
        token,
        now,
        lease_until: now + idem.lease,
        expired_at_or_before: now - idem.retention,
    };
    let found = idem.store.reserve(&reserve).await?;
    idem.maybe_purge(now);
    match found {
        Reservation::Reserved => Ok(Prepared::Reserved { idem, req, key, token }),
        Reservation::Held { fingerprint: held, .. } if held != fingerprint => {
            Err(Problem::invalid(vec![FieldError::new("Idempotency-Key", "was already used for a different request")]))
        }
        Reservation::Held { answer: Some(answer), .. } => Ok(Prepared::Answer(replay(answer))),
        Reservation::Held { answer: None, .. } => Err(Problem {
            retry_after: Some(1),
            ..Problem::conflict("a request with this Idempotency-Key is still being processed")
        }),
    }
}

/// Runs the handler on a task of its own (it finishes, and its answer is kept, even if the client
/// hangs up), then keeps the answer or releases the key.
async fn run_reserved(idem: Arc<Idempotency>, req: Request, next: Next, key: [u8; 32], token: Uuid) -> Response {
    let context = super::current_context();
    let release_with = Arc::clone(&idem);
    let work = async move {
        let res = next.run(req).await;
        if !storable(res.status()) {
            release(&idem, key, token).await;
            return res;
        }
        let (parts, body) = res.into_parts();
        let bytes = match axum::body::to_bytes(body, usize::MAX).await {
            Ok(b) => b,
            Err(e) => {
                release(&idem, key, token).await;
                return Problem::internal(format!("answer of an idempotent request unreadable: {e}")).into_response();
            }
        };
        if bytes.len() > MAX_STORED_BODY {
            tracing::warn!(bytes = bytes.len(), "answer too large to keep for Idempotency-Key; key released");
            release(&idem, key, token).await;
            return Response::from_parts(parts, Body::from(bytes));
        }
        let answer = StoredAnswer {
            status: parts.status.as_u16(),
            headers: KEPT_HEADERS
                .iter()
                .filter_map(|h| {
                    let v = parts.headers.get(h)?.to_str().ok()?;
                    Some((h.as_str().to_string(), v.to_string()))
                })
                .collect(),
            body: bytes.to_vec(),
        };
        match idem.store.complete(&key, token, &answer).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!("idempotency reservation lost before its answer was kept (lease ended)"),
            Err(e) => tracing::warn!(error = %e, "answer of an idempotent request not kept; the key frees when its lease ends"),
        }
        Response::from_parts(parts, Body::from(bytes))
    }
    .instrument(tracing::Span::current());
    let task = match context {
        Some(ctx) => tokio::spawn(super::middleware::in_context(ctx, work)),
        None => tokio::spawn(work),
    };
    match task.await {
        Ok(res) => res,
        Err(e) => {
            release(&release_with, key, token).await;
            Problem::internal(format!("idempotent request task failed: {e}")).into_response()
        }
    }
}

async fn release(idem: &Idempotency, key: [u8; 32], token: Uuid) {
    if let Err(e) = idem.store.release(&key, token).await {
        tracing::warn!(error = %e, "idempotency key not released; it frees when its lease ends");
    }
}

/// Documents the header, and the 409 and 422 it can cause, on every POST operation of `doc`.
/// The parameter is written inline rather than as a component, so that it survives
/// `OpenApi::merge` (which drops components' parameters).
pub fn document(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::{ObjectBuilder, RefOr, Required, ResponseBuilder, Type};
    let parameter = ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "1–255 printable ASCII characters, unique per request (a UUID). Repeating the request with the same key \
             and body within 24 hours replays the first answer with `Idempotent-Replayed: true`; the same key with \
             another body is 422; while the first request runs, 409 with `Retry-After`.",
        ))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)).max_length(Some(255))))
        .build();
    for item in doc.paths.paths.values_mut() {
        let Some(op) = item.post.as_mut() else { continue };
        op.parameters.get_or_insert_with(Vec::new).push(RefOr::T(parameter.clone()));
        let responses = &mut op.responses.responses;
        responses.entry("409".into()).or_insert_with(|| {
            RefOr::T(ResponseBuilder::new().description("a request with this Idempotency-Key is still running").build())
        });
        responses.entry("422".into()).or_insert_with(|| {
            RefOr::T(ResponseBuilder::new().description("invalid fields, or an Idempotency-Key reused").build())
        });
    }
}
