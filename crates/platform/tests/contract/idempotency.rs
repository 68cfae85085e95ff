//! `Idempotency-Key` (`platform::http::idempotency`) through a small router whose handler counts
//! its runs, on SQLite and PostgreSQL: replays, 422 on another body, 409 while running, scoping
//! per user and path, expiry and purge on a manual clock, leases of crashed requests, 5xx not
//! kept, a client that hangs up, bad keys, body limits, and requests without the header.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use api::users::Role;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Extension};
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::middleware::from_fn;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use platform::clock::ManualClock;
use platform::http::Caller;
use platform::http::idempotency::{IDEMPOTENCY_KEY, Idempotency, MIGRATIONS, idempotent};
use platform::identity::Identity;
use serde_json::{Value, json};
use test_support::{TestPostgres, TestSqlite};
use time::{Duration, OffsetDateTime};
use tokio::sync::Notify;
use tower::ServiceExt;

use crate::support::{DbFixture, query_i64};

/// The handler's side: how often it ran, and a gate that holds requests whose body is "slow".
#[derive(Default)]
struct Handler {
    runs: AtomicUsize,
    entered: Notify,
    release: Notify,
}

async fn handle(Extension(h): Extension<Arc<Handler>>, body: String) -> Response {
    let n = h.runs.fetch_add(1, Ordering::SeqCst) + 1;
    if body == "fail" {
        return (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response();
    }
    if body == "slow" {
        // Waiting before saying so, so that `notify_waiters` cannot slip in between.
        let released = h.release.notified();
        tokio::pin!(released);
        released.as_mut().enable();
        h.entered.notify_one();
        released.await;
    }
    let mut res = (StatusCode::CREATED, axum::Json(json!({"run": n, "body": body}))).into_response();
    let headers = res.headers_mut();
    headers.insert(header::LOCATION, HeaderValue::from_str(&format!("/things/{n}")).unwrap());
    headers.insert(header::ETAG, HeaderValue::from_str(&format!("\"{n}\"")).unwrap());
    headers.insert("x-other", HeaderValue::from_static("not kept"));
    res
}

struct Harness<F> {
    fixture: F,
    router: Router,
    handler: Arc<Handler>,
    clock: Arc<ManualClock>,
    idem: Arc<Idempotency>,
    alice: Identity,
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

fn identity() -> Identity {
    Identity {
        user_id: platform::ids::new_id(),
        role: Role::User,
        session_id: platform::ids::new_id(),
        token_id: "jti".into(),
        issued_at: 0,
        expires_at: i64::MAX,
        mfa: false,
        admin_needs_mfa: false,
    }
}

fn request(who: Option<&Identity>, path: &str, key: Option<&str>, body: &str) -> Request<Body> {
    let mut req = Request::post(path).header(header::CONTENT_TYPE, "text/plain");
    if let Some(key) = key {
        req = req.header(IDEMPOTENCY_KEY, key);
    }
    let mut req = req.body(Body::from(body.to_string())).unwrap();
    if let Some(who) = who {
        req.extensions_mut().insert(Caller(who.clone()));
    }
    req
}

impl<F: DbFixture> Harness<F> {
    async fn new() -> Self {
        let fixture = F::new().await;
        fixture.db().migrate(&MIGRATIONS).await.unwrap();
        let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
        let idem = Arc::new(Idempotency::new(fixture.db(), clock.clone()));
        let handler = Arc::new(Handler::default());
        let router = Router::new()
            .route("/things", post(handle))
            .route("/things/{id}", post(handle))
            .route_layer(from_fn(idempotent))
            .layer(DefaultBodyLimit::max(64))
            .layer(Extension(handler.clone()))
            .layer(Extension(idem.clone()));
        Harness { fixture, router, handler, clock, idem, alice: identity() }
    }

    async fn send(&self, req: Request<Body>) -> Answer {
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();
        Answer { status, headers, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
    }

    async fn post(&self, key: Option<&str>, body: &str) -> Answer {
        self.send(request(Some(&self.alice), "/things", key, body)).await
    }

    fn runs(&self) -> usize {
        self.handler.runs.load(Ordering::SeqCst)
    }

    async fn rows(&self) -> i64 {
        let sql = "SELECT count(*) FROM idempotency_keys";
        query_i64(self.fixture.db(), sql, sql, vec![]).await.unwrap()
    }
}

fn replayed(a: &Answer) -> bool {
    a.headers.get("idempotent-replayed").is_some_and(|v| v == "true")
}

async fn replays_the_first_answer<F: DbFixture>() {
    let h = Harness::<F>::new().await;
    let first = h.post(Some("key-1"), "hello").await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert!(!replayed(&first));
    let again = h.post(Some("key-1"), "hello").await;
    assert_eq!((again.status, &again.body), (StatusCode::CREATED, &first.body));
    for name in [header::CONTENT_TYPE, header::LOCATION, header::ETAG] {
        assert_eq!(again.headers.get(&name), first.headers.get(&name), "{name} is replayed");
    }
    assert!(replayed(&again), "a replay says so");
    assert!(again.headers.get("x-other").is_none(), "only the listed headers are kept");
    assert_eq!(h.runs(), 1, "the handler ran once");
    assert_eq!(h.rows().await, 1);
}

async fn another_body_with_the_key_is_422<F: DbFixture>() {
    let h = Harness::<F>::new().await;
    assert_eq!(h.post(Some("k"), "one").await.status, StatusCode::CREATED);
    let other = h.post(Some("k"), "two").await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(other.headers[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(other.body["errors"][0]["field"], "Idempotency-Key");
    // Another query string is another request too.
    let query = h.send(request(Some(&h.alice), "/things?x=1", Some("k"), "one")).await;
    assert_eq!(query.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(h.runs(), 1);
}

async fn keys_are_scoped_per_user_and_path<F: DbFixture>() {
    let h = Harness::<F>::new().await;
    let bob = identity();
    let a = h.post(Some("shared"), "same").await;
    let b = h.send(request(Some(&bob), "/things", Some("shared"), "same")).await;
    assert_eq!((a.status, b.status), (StatusCode::CREATED, StatusCode::CREATED));
    assert!(!replayed(&b), "bob never gets alice's answer");
    assert_ne!(a.body["run"], b.body["run"]);
    let elsewhere = h.send(request(Some(&h.alice), "/things/7", Some("shared"), "same")).await;
    assert_eq!(elsewhere.status, StatusCode::CREATED);
    assert!(!replayed(&elsewhere));
    assert_eq!(h.runs(), 3);
}

async fn a_running_request_holds_its_key<F: DbFixture>() {
    let h = Harness::<F>::new().await;
    let first = tokio::spawn(h.router.clone().oneshot(request(Some(&h.alice), "/things", Some("slow-key"), "slow")));
    h.handler.entered.notified().await;
    let second = h.post(Some("slow-key"), "slow").await;
    assert_eq!(second.status, StatusCode::CONFLICT);
    assert_eq!(second.headers[header::RETRY_AFTER], "1");
    assert_eq!(h.post(Some("slow-key"), "other").await.status, StatusCode::UNPROCESSABLE_ENTITY);
    h.handler.release.notify_one();
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let third = h.post(Some("slow-key"), "slow").await;
    assert_eq!(third.status, StatusCode::CREATED);
    assert!(replayed(&third));
    assert_eq!(h.runs(), 1, "never two runs");
}

async fn concurrent_duplicates_run_once<F: DbFixture>() {
    let h = Harness::<F>::new().await;
    let sends = (0..8).map(|_| h.router.clone().oneshot(request(Some(&h.alice), "/things", Some("race"), "x")));
    let answers = futures::future::join_all(sends).await;
    for a in answers {
        let status = a.unwrap().status();
        assert!(status == StatusCode::CREATED || status == StatusCode::CONFLICT, "{status}");
    }
    assert_eq!(h.runs(), 1);
}

async fn a_client_that_hangs_up_still_gets_its_answer_kept<F: DbFixture>() {
    let h = Harness::<F>::new().await;
    let gone = tokio::spawn(h.router.clone().oneshot(request(Some(&h.alice), "/things", Some("bye"), "slow")));
    h.handler.entered.notified().await;
    gone.abort();
    h.handler.release.notify_one();
    // The handler finishes on its own task and its answer is kept. Until then the key answers 409
    // (a retry while it runs, which does not run the handler again).
    let answer = test_support::wait::until_some("the abandoned request to finish", || async {
        let answer = h.post(Some("bye"), "slow").await;
        (answer.status != StatusCode::CONFLICT).then_some(answer)
    })
    .await;
    assert_eq!(answer.status, StatusCode::CREATED);
    assert!(replayed(&answer));
    assert_eq!(h.runs(), 1);
}

async fn server_errors_are_not_kept<F: DbFixture>() {
    let h = Harness::<F>::new().await;
    assert_eq!(h.post(Some("f"), "fail").await.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(h.rows().await, 0, "the key was released");
    assert_eq!(h.post(Some("f"), "fail").await.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(h.runs(), 2, "a retry after a 5xx runs again");
}

async fn keys_expire_after_a_day_and_are_purged<F: DbFixture>() {
    let h = Harness::<F>::new().await;
    h.post(Some("old"), "a").await;
    h.clock.advance(Duration::hours(23));
    assert!(replayed(&h.post(Some("old"), "a").await), "kept for 24 hours");
    h.post(Some("older"), "b").await;
    h.clock.advance(Duration::hours(1));
    let later = h.post(Some("old"), "a").await;
    assert_eq!(later.status, StatusCode::CREATED);
    assert!(!replayed(&later), "forgotten after 24 hours: the request runs again");
    assert_eq!(h.runs(), 3);
    // "old" was taken over (created now); "older" is 1 h old; nothing has expired yet.
    assert_eq!(h.idem.purge_expired().await.unwrap(), 0);
    h.clock.advance(Duration::hours(24));
    assert_eq!(h.idem.purge_expired().await.unwrap(), 2);
    assert_eq!(h.rows().await, 0);
}

async fn a_stuck_reservation_frees_its_key_after_the_lease<F: DbFixture>() {
    let h = Harness::<F>::new().await;
    // A request that never finishes (as if its process died) holds the key for its lease only.
    let stuck = tokio::spawn(h.router.clone().oneshot(request(Some(&h.alice), "/things", Some("lease"), "slow")));
    h.handler.entered.notified().await;
    assert_eq!(h.post(Some("lease"), "slow").await.status, StatusCode::CONFLICT);
    h.clock.advance(Duration::seconds(61));
    let retry = tokio::spawn(h.router.clone().oneshot(request(Some(&h.alice), "/things", Some("lease"), "slow")));
    h.handler.entered.notified().await;
    assert_eq!(h.runs(), 2, "the retry took the key over");
    h.handler.release.notify_waiters();
    let (stuck, retry) = (stuck.await.unwrap().unwrap(), retry.await.unwrap().unwrap());
    assert_eq!((stuck.status(), retry.status()), (StatusCode::CREATED, StatusCode::CREATED));
    let kept = h.post(Some("lease"), "slow").await;
    assert!(replayed(&kept));
    assert_eq!(kept.body["run"], 2, "the answer kept is the one of the reservation that held the key");
}

async fn bad_keys_are_400_and_other_requests_are_untouched<F: DbFixture>() {
    let h = Harness::<F>::new().await;
    let long = "k".repeat(256);
    for bad in ["", long.as_str(), "tab\there"] {
        let a = h.post(Some(bad), "x").await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad:?}");
        assert_eq!(a.headers[header::CONTENT_TYPE], "application/problem+json");
    }
    let mut non_ascii = request(Some(&h.alice), "/things", None, "x");
    non_ascii.headers_mut().insert(IDEMPOTENCY_KEY, HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap());
    assert_eq!(h.send(non_ascii).await.status, StatusCode::BAD_REQUEST);
    let mut twice = request(Some(&h.alice), "/things", Some("a"), "x");
    twice.headers_mut().append(IDEMPOTENCY_KEY, HeaderValue::from_static("b"));
    assert_eq!(h.send(twice).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(h.post(Some(&"k".repeat(255)), "x").await.status, StatusCode::CREATED, "255 characters are fine");
    assert_eq!(h.runs(), 1);

    // Without the header, anonymous, or multipart: every request runs, nothing is kept.
    for _ in 0..2 {
        let plain = h.post(None, "x").await;
        assert_eq!(plain.status, StatusCode::CREATED);
        assert!(!replayed(&plain));
        h.send(request(None, "/things", Some("anon"), "x")).await;
        let mut multipart = request(Some(&h.alice), "/things", Some("upload"), "x");
        multipart
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("multipart/form-data; boundary=b"));
        assert!(!replayed(&h.send(multipart).await));
    }
    assert_eq!(h.runs(), 7);
    assert_eq!(h.rows().await, 1);
    // The router's body limit holds for buffered bodies.
    let big = h.post(Some("big"), &"x".repeat(65)).await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(h.runs(), 7);
}

macro_rules! idempotency_contract {
    ($adapter:ident, $fixture:ty) => {
        mod $adapter {
            use super::*;
            idempotency_contract!(@tests $fixture;
                replays_the_first_answer,
                another_body_with_the_key_is_422,
                keys_are_scoped_per_user_and_path,
                a_running_request_holds_its_key,
                concurrent_duplicates_run_once,
                a_client_that_hangs_up_still_gets_its_answer_kept,
                server_errors_are_not_kept,
                keys_expire_after_a_day_and_are_purged,
                a_stuck_reservation_frees_its_key_after_the_lease,
                bad_keys_are_400_and_other_requests_are_untouched,
            );
        }
    };
    (@tests $fixture:ty; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                super::$check::<$fixture>().await;
            }
        )*
    };
}

idempotency_contract!(sqlite, TestSqlite);
idempotency_contract!(postgres, TestPostgres);
