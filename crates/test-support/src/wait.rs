//! Waiting in tests for a state, never for a fixed time.
//!
//! A test that sleeps for a while and then looks, or that gives work a fixed window, fails on a
//! busy machine whenever the work is slower than the window. These helpers wait for the state
//! itself and fail only when it stops coming:
//!
//! - [`until`] / [`until_some`]: a condition that becomes true at once when it does (a row
//!   written, a server answering). The limit is generous ([`patience`]), scaled on slow machines
//!   by `TEST_PATIENCE` (a factor, default 1), and the failure says what was awaited and
//!   for how long.
//! - [`until_count`]: counted work (events processed, rows drained). It fails only when the count
//!   has not moved for the stall limit, so a long batch on a slow machine passes as long as it
//!   advances; the failure says how far it got and when it last moved.
//!
//! The per-test timeout of nextest (`.config/nextest.toml`) is the last bound of all.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often a condition is checked.
const POLL: Duration = Duration::from_millis(50);

/// The scale `TEST_PATIENCE` sets (default 1; a float such as `2.5` is allowed).
fn scale() -> f64 {
    std::env::var("TEST_PATIENCE").ok().and_then(|v| v.parse::<f64>().ok()).filter(|f| *f > 0.0).unwrap_or(1.0)
}

/// `base` times the patience factor: the limit for something that normally takes well under a
/// second but may queue behind other work on a loaded 2-core machine.
pub fn patience(base: Duration) -> Duration {
    base.mul_f64(scale())
}

/// The default limit of [`until`]: a minute, scaled.
pub fn default_limit() -> Duration {
    patience(Duration::from_secs(60))
}

/// Waits until `check` returns true, for at most [`default_limit`]; panics naming `what` otherwise.
pub async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    until_some(what, || {
        let fut = check();
        async move { fut.await.then_some(()) }
    })
    .await
}

/// Waits until `read` returns `Some`, and returns it; panics naming `what` after [`default_limit`].
pub async fn until_some<T, F, Fut>(what: &str, mut read: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let limit = default_limit();
    let start = Instant::now();
    loop {
        if let Some(v) = read().await {
            return v;
        }
        assert!(start.elapsed() < limit, "waited {:.1?} for {what}; it never came", start.elapsed());
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until `count` reaches `target`, and returns the last count. Fails when the count has not
/// grown for `stall` (scaled by the patience factor), with how far it got.
pub async fn until_count<F, Fut>(what: &str, target: usize, stall: Duration, mut count: F) -> usize
where
    F: FnMut() -> Fut,
    Fut: Future<Output = usize>,
{
    let stall = patience(stall);
    let start = Instant::now();
    let mut best = 0;
    let mut moved = Instant::now();
    loop {
        let now = count().await;
        if now >= target {
            return now;
        }
        if now > best {
            best = now;
            moved = Instant::now();
        }
        assert!(
            moved.elapsed() < stall,
            "{what}: {best} of {target} after {:.1?}; no progress for {:.1?} (last at {:.1?})",
            start.elapsed(),
            moved.elapsed(),
            moved.duration_since(start),
        );
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn counts_that_keep_moving_are_waited_for_past_the_stall_limit() {
        let n = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        // 10 steps of 30 ms each: 300 ms in all, far past a 100 ms stall limit.
        let got = until_count("steps", 10, Duration::from_millis(100), || {
            let n = n.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(30)).await;
                n.fetch_add(1, Ordering::SeqCst) + 1
            }
        })
        .await;
        assert_eq!(got, 10);
        assert!(start.elapsed() >= Duration::from_millis(300));
    }

    #[tokio::test]
    async fn a_stalled_count_fails_saying_how_far_it_got() {
        let err = tokio::spawn(until_count("events", 5, Duration::from_millis(200), || async { 3 }))
            .await
            .expect_err("a count stuck at 3 must fail");
        let message = err.into_panic().downcast::<String>().map(|s| *s).unwrap_or_default();
        assert!(message.contains("events: 3 of 5") && message.contains("no progress"), "{message}");
    }

    #[tokio::test]
    async fn until_some_returns_the_value() {
        let n = AtomicUsize::new(0);
        let v = until_some("the third call", || {
            let k = n.fetch_add(1, Ordering::SeqCst);
            async move { (k == 2).then_some(k) }
        })
        .await;
        assert_eq!(v, 2);
    }
}
