//! The two load models and what they record.
//!
//! * **Open loop** ([`open_loop`]): request `i` is *scheduled* at `start + i / rate`, whatever happened to the
//!   requests before it, and its latency is measured from that scheduled time, not from when it was actually
//!   sent. A server stall therefore shows up as latency of every request that should have been sent during
//!   the stall (coordinated-omission correction, docs/PERFORMANCE.md §4). In-flight requests are bounded; a request
//!   whose scheduled time comes while the bound is reached is not sent and is counted as an `overflow` error.
//! * **Closed loop** ([`closed_loop`]): `concurrency` workers each send the next request as soon as the previous
//!   one answered, for a fixed time. Only for the maximum throughput; its latencies are service times, not
//!   latencies under an arrival rate, and are labelled so in the report.
//!
//! Latencies are recorded in microseconds into HdrHistograms (1 µs – 10 min, 3 significant digits).
//!
//! **Pacing.** tokio's timer has millisecond granularity (a `sleep_until` wakes at the next millisecond tick
//! after its deadline), so an open loop paced by it sends each request up to ~1 ms late, and that lateness is
//! charged to the request's latency. The default [`Pacer::Thread`] therefore paces from a dedicated OS thread
//! that sleeps with the kernel's high-resolution timer (`clock_nanosleep`; the thread asks for a 1 µs timer
//! slack through `/proc/thread-self/timerslack_ns` where the kernel allows it, else the default 50 µs) and hands
//! each due index to the runtime over a channel: requests leave within tens of microseconds of their slot, and
//! the pacer costs no CPU between slots (unlike a busy-wait tail, which on a 2-core machine would take the
//! generator's core from the server). [`Pacer::Tokio`] is the old behaviour, kept for comparison (`--pacer
//! tokio`) and for the unit tests, which run on tokio's paused clock.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The expected success status.
    Ok,
    /// A fast refusal the server chose to give (429 or 503): admission control working as designed.
    Refused,
    /// Anything else: an unexpected status, a transport error, a body we could not use. The string is a
    /// short kind (`status 401`, `transport`, …) counted per kind.
    Failed(String),
}

/// Everything recorded during one measured phase.
#[derive(Debug)]
pub struct Recorder {
    /// Latency of successful requests, µs.
    pub ok: Histogram<u64>,
    /// Latency of refused requests (429/503), µs: how fast the refusal came.
    pub refused: Histogram<u64>,
    /// Latency of failed requests, µs (overflow is not timed: it was never sent).
    pub failed: Histogram<u64>,
    /// Failures per kind, including `overflow`.
    pub failures: BTreeMap<String, u64>,
    /// Requests scheduled (open loop) or started (closed loop), including overflow.
    pub scheduled: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Self { ok: histogram(), refused: histogram(), failed: histogram(), failures: BTreeMap::new(), scheduled: 0 }
    }
}

pub(crate) fn histogram() -> Histogram<u64> {
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("static histogram bounds are valid")
}

impl Recorder {
    pub fn record(&mut self, outcome: &Outcome, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1);
        match outcome {
            Outcome::Ok => self.ok.saturating_record(us),
            Outcome::Refused => self.refused.saturating_record(us),
            Outcome::Failed(kind) => {
                self.failed.saturating_record(us);
                *self.failures.entry(kind.clone()).or_default() += 1;
            }
        }
    }

    fn overflow(&mut self, kind: &str) {
        *self.failures.entry(kind.to_string()).or_default() += 1;
    }

    pub fn errors(&self) -> u64 {
        self.failures.values().sum()
    }
}

/// Percentiles of one histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// The summary of one phase, as reported (table and JSON).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// `open` (fixed arrival rate, CO-corrected) or `closed` (max throughput, service times).
    pub model: &'static str,
    /// Offered rate (open loop), requests/s; `None` for closed loop.
    pub offered_rate: Option<f64>,
    /// Closed-loop concurrency.
    pub concurrency: Option<usize>,
    /// From the first scheduled request until the last answer (open loop: at least the schedule's length), s.
    pub elapsed_s: f64,
    pub scheduled: u64,
    pub ok: u64,
    pub refused: u64,
    pub errors: u64,
    /// Successful requests per second over `elapsed_s`.
    pub achieved_ok_per_s: f64,
    /// `errors / scheduled` (refusals are not errors; they are reported on their own).
    pub error_rate: f64,
    pub ok_latency: Percentiles,
    pub refused_latency: Percentiles,
    pub failures: BTreeMap<String, u64>,
}

impl Summary {
    fn new(
        model: &'static str,
        offered_rate: Option<f64>,
        concurrency: Option<usize>,
        r: &Recorder,
        elapsed: Duration,
    ) -> Self {
        let elapsed_s = elapsed.as_secs_f64().max(1e-9);
        let errors = r.errors();
        Self {
            model,
            offered_rate,
            concurrency,
            elapsed_s,
            scheduled: r.scheduled,
            ok: r.ok.len(),
            refused: r.refused.len(),
            errors,
            achieved_ok_per_s: r.ok.len() as f64 / elapsed_s,
            error_rate: if r.scheduled == 0 { 0.0 } else { errors as f64 / r.scheduled as f64 },
            ok_latency: Percentiles::of(&r.ok),
            refused_latency: Percentiles::of(&r.refused),
            failures: r.failures.clone(),
        }
    }
}

/// How the open loop waits for each request's scheduled time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pacer {
    /// A dedicated OS thread sleeping with the high-resolution timer (default).
    Thread,
    /// `tokio::time::sleep_until` on the runtime (millisecond granularity: up to ~1 ms late).
    Tokio,
}

/// The pacer [`open_loop`] uses, set once by `main` (`--pacer`).
static PACER: AtomicU8 = AtomicU8::new(0);

pub fn set_pacer(p: Pacer) {
    PACER.store(if p == Pacer::Tokio { 1 } else { 0 }, Ordering::Relaxed);
}

fn pacer() -> Pacer {
    if PACER.load(Ordering::Relaxed) == 1 { Pacer::Tokio } else { Pacer::Thread }
}

/// The due indexes `0..total` of a schedule starting at `start`, one every `interval`, as they come due. With
/// [`Pacer::Thread`] a thread of its own sends them; it stops when the receiver is dropped. If that thread cannot
/// be started, the tokio timer is used instead.
struct Ticks {
    rx: Option<tokio::sync::mpsc::UnboundedReceiver<u64>>,
    next: u64,
    total: u64,
    start: Instant,
    interval: Duration,
}

impl Ticks {
    fn new(pacer: Pacer, start: Instant, interval: Duration, total: u64) -> Self {
        let rx = (pacer == Pacer::Thread).then(|| spawn_pacer(start.into_std(), interval, total)).flatten();
        Self { rx, next: 0, total, start, interval }
    }

    async fn next(&mut self) -> Option<u64> {
        if let Some(rx) = &mut self.rx {
            return rx.recv().await;
        }
        if self.next >= self.total {
            return None;
        }
        let i = self.next;
        self.next += 1;
        tokio::time::sleep_until(self.start + self.interval.mul_f64(i as f64)).await;
        Some(i)
    }
}

fn spawn_pacer(
    start: std::time::Instant,
    interval: Duration,
    total: u64,
) -> Option<tokio::sync::mpsc::UnboundedReceiver<u64>> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let spawned = std::thread::Builder::new().name("pacer".into()).spawn(move || {
        // Best effort: a finer timer slack than the default 50 µs for this thread only.
        let _ = std::fs::write("/proc/thread-self/timerslack_ns", "1000");
        for i in 0..total {
            let due = start + interval.mul_f64(i as f64);
            let now = std::time::Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if tx.send(i).is_err() {
                return;
            }
        }
    });
    spawned.ok().map(|_| rx)
}

/// Runs `op(i)` at `rate` per second for `duration`, at most `max_in_flight` at once, and waits for every
/// sent request to finish. An `op` that cannot even start (S8 with no free session) returns a `Failed` kind
/// of its own at once. Paced by the pacer `main` chose ([`set_pacer`]; the thread pacer by default).
pub async fn open_loop<F, Fut>(rate: f64, duration: Duration, max_in_flight: usize, op: F) -> Summary
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    open_loop_paced(pacer(), rate, duration, max_in_flight, op).await
}

/// [`open_loop`] with an explicit pacer.
pub async fn open_loop_paced<F, Fut>(
    pacer: Pacer,
    rate: f64,
    duration: Duration,
    max_in_flight: usize,
    op: F,
) -> Summary
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    assert!(rate > 0.0, "rate must be positive");
    let total = (rate * duration.as_secs_f64()).round().max(1.0) as u64;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let rec = Arc::new(Mutex::new(Recorder::default()));
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let mut tasks = JoinSet::new();
    let start = Instant::now();
    let mut ticks = Ticks::new(pacer, start, interval, total);
    while let Some(i) = ticks.next().await {
        // The schedule is computed from the start, never from the previous send, so lateness of the
        // generator or the server does not shift later requests.
        let scheduled = start + interval.mul_f64(i as f64);
        lock(&rec).scheduled += 1;
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            lock(&rec).overflow("overflow");
            continue;
        };
        let fut = op(i);
        let rec = rec.clone();
        tasks.spawn(async move {
            let outcome = fut.await;
            // Latency from the *scheduled* time: coordinated-omission corrected.
            let latency = scheduled.elapsed();
            lock(&rec).record(&outcome, latency);
            drop(slot);
        });
        // Reap finished tasks as we go so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    // The phase lasts its whole schedule even when the last answer comes early, so that achieved/s is
    // comparable with the offered rate.
    let elapsed = start.elapsed().max(duration);
    let r = lock(&rec);
    Summary::new("open", Some(rate), None, &r, elapsed)
}

/// Runs `concurrency` workers, each calling `op` back to back until `duration` has passed (requests in
/// flight at the deadline are finished and counted).
pub async fn closed_loop<F, Fut>(concurrency: usize, duration: Duration, op: F) -> Summary
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let rec = Arc::new(Mutex::new(Recorder::default()));
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = JoinSet::new();
    for w in 0..concurrency {
        let op = op.clone();
        let rec = rec.clone();
        workers.spawn(async move {
            let mut i = w as u64;
            while Instant::now() < deadline {
                let sent = Instant::now();
                let outcome = op(i).await;
                let latency = sent.elapsed();
                let mut r = lock(&rec);
                r.scheduled += 1;
                r.record(&outcome, latency);
                i += concurrency as u64;
            }
        });
    }
    while workers.join_next().await.is_some() {}
    let elapsed = start.elapsed();
    let r = lock(&rec);
    Summary::new("closed", None, Some(concurrency), &r, elapsed)
}

/// A poisoned lock only means a recording task panicked; the counts are still usable.
fn lock(m: &Mutex<Recorder>) -> std::sync::MutexGuard<'_, Recorder> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    //! Run on tokio's paused clock: time advances only when every task waits, so the schedule and the
    //! latencies are exact and nothing here depends on the speed of the machine.
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn open_loop_does_not_wait_for_answers() {
        // A single-server queue: each request holds the lock for 20 ms, while requests are scheduled every
        // 10 ms. Request k waits for the k before it, so it answers at (k+1)·20 ms after the start and its
        // corrected latency is (k+1)·20 − k·10 = 10k + 20 ms. A closed loop, or a latency measured from the
        // actual send, would report 20 ms for every request.
        let server = Arc::new(tokio::sync::Mutex::new(()));
        let s = open_loop_paced(Pacer::Tokio, 100.0, Duration::from_millis(100), 100, |_| {
            let server = server.clone();
            async move {
                let _busy = server.lock().await;
                tokio::time::sleep(Duration::from_millis(20)).await;
                Outcome::Ok
            }
        })
        .await;
        assert_eq!(s.scheduled, 10);
        assert_eq!(s.ok, 10);
        assert!((s.ok_latency.max_ms - 110.0).abs() < 1.0, "last request waited 9 slots: {:?}", s.ok_latency);
        assert!((s.ok_latency.p50_ms - 60.0).abs() < 12.0, "median grows with the queue: {:?}", s.ok_latency);
        assert!((s.elapsed_s - 0.2).abs() < 0.01, "10 requests × 20 ms of service: {}", s.elapsed_s);
    }

    #[tokio::test]
    async fn a_late_generator_is_charged_to_the_latency() {
        // Real clock. Preparing request 0 stalls the generator's thread for 50 ms; requests 1–4 were due at
        // 10, 20, 30, 40 ms and can only be sent after the stall, so measured from their *scheduled* times
        // they took at least 40, 30, 20, 10 ms, although the "server" answers at once. Latency measured from
        // the actual send would be ~0 for all of them. (Lower bounds only: a slow machine cannot fail this.)
        // Both pacers: the thread pacer's ticks queue up during the stall and are charged the same way.
        for pacer in [Pacer::Thread, Pacer::Tokio] {
            let s = open_loop_paced(pacer, 100.0, Duration::from_millis(100), 100, |i| {
                if i == 0 {
                    std::thread::sleep(Duration::from_millis(50));
                }
                async { Outcome::Ok }
            })
            .await;
            assert_eq!(s.ok, 10, "{pacer:?}");
            assert!(s.ok_latency.max_ms >= 39.9, "{pacer:?}: request 1 waited for the stall: {:?}", s.ok_latency);
            assert!(s.ok_latency.p90_ms >= 9.9, "{pacer:?}: ≥ 4 of 10 requests late by ≥ 10 ms: {:?}", s.ok_latency);
        }
    }

    #[tokio::test]
    async fn the_thread_pacer_sends_each_request_once_and_never_early() {
        // Real clock, 2,000/s for 100 ms: every index comes exactly once, in order, and not before its slot.
        let start = std::time::Instant::now();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = open_loop_paced(Pacer::Thread, 2000.0, Duration::from_millis(100), 100, |i| {
            seen.lock().unwrap().push((i, start.elapsed()));
            async { Outcome::Ok }
        })
        .await;
        assert_eq!((s.scheduled, s.ok), (200, 200));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.iter().map(|(i, _)| *i).collect::<Vec<_>>(), (0..200).collect::<Vec<_>>());
        for (i, at) in seen.iter() {
            // The loop's start is taken after `start`, so a request sent on time is at or after i × 0.5 ms.
            assert!(*at >= Duration::from_micros(500 * i), "request {i} sent early, at {at:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn open_loop_keeps_its_schedule_and_counts_overflow() {
        // Requests that never finish before the schedule ends: with a bound of 3 in flight, the other 7
        // scheduled requests are not sent and count as overflow errors, and the schedule is not delayed.
        let s = open_loop_paced(Pacer::Tokio, 100.0, Duration::from_millis(100), 3, |_| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Outcome::Ok
        })
        .await;
        assert_eq!(s.scheduled, 10);
        assert_eq!(s.ok, 3);
        assert_eq!(s.failures.get("overflow"), Some(&7));
        assert_eq!(s.errors, 7);
        assert!((s.error_rate - 0.7).abs() < 1e-9);
    }

    #[tokio::test(start_paused = true)]
    async fn outcomes_are_kept_apart() {
        let s = open_loop_paced(Pacer::Tokio, 1000.0, Duration::from_millis(30), 100, |i| async move {
            match i % 3 {
                0 => Outcome::Ok,
                1 => Outcome::Refused,
                _ => Outcome::Failed("status 500".into()),
            }
        })
        .await;
        assert_eq!((s.scheduled, s.ok, s.refused, s.errors), (30, 10, 10, 10));
        assert_eq!(s.failures.get("status 500"), Some(&10));
        assert_eq!(s.refused_latency.count, 10);
    }

    #[tokio::test(start_paused = true)]
    async fn closed_loop_sends_back_to_back() {
        // 2 workers, 10 ms per request, 100 ms: 10 requests each.
        let s = closed_loop(2, Duration::from_millis(100), |_| async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Outcome::Ok
        })
        .await;
        assert_eq!(s.ok, 20);
        assert!((s.achieved_ok_per_s - 200.0).abs() < 1.0, "{}", s.achieved_ok_per_s);
        assert!((s.ok_latency.p50_ms - 10.0).abs() < 0.1);
    }
}
