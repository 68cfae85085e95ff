//! Password hashing: bcrypt (cost 12 by default) over base64(HMAC-SHA-256(pepper, password)), so
//! the whole password counts however long it is, and a database leak alone does not allow offline
//! guessing. Hashing runs on a few threads of its own at a lower scheduling priority (nice 10),
//! so that under a login flood bcrypt takes the CPU only as far as requests of higher priority
//! leave it idle (docs/PERFORMANCE.md S7); when too many hashes wait, new ones are refused at once (the
//! caller answers 503) instead of queueing without bound.
//!
//! Logins have capacity of their own (docs/SECURITY.md LG-7): every other use of the pool
//! (registration, password change and reset, step-up checks, rehashing) is a [`Purpose::Other`]
//! that may hold at most half of the places, runs on at most all workers but one, and only while
//! no login waits for a worker. However many registrations or password changes arrive, a login
//! finds a free place and waits at most for one hash in progress; it is answered 503 only when
//! logins themselves fill the pool. An other use that waits longer than [`OTHER_MAX_WAIT`] for a
//! worker (logins keep them busy) is refused with 503 instead, and its work is never done.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretSlice};
use tokio::sync::{OnceCell, oneshot};

/// What a hash is for: logins come first and have places no other use can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The password check of `POST /auth/login` (and its dummy twin for unknown accounts).
    Login,
    /// Everything else: registration, password change and reset, step-up checks, rehashing.
    Other,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HashError {
    #[error("password hashing is saturated")]
    Saturated,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

pub struct PasswordHasher {
    pepper: SecretSlice<u8>,
    cost: u32,
    pool: HashPool,
    /// Hashes queued or running, of any purpose.
    waiting: AtomicUsize,
    /// Hashes queued or running for [`Purpose::Other`].
    waiting_other: AtomicUsize,
    max_waiting: usize,
    /// [`OTHER_MAX_WAIT`], shorter in tests.
    other_max_wait: Duration,
    dummy: OnceCell<String>,
    /// A moving average of how long one bcrypt computation takes, in microseconds.
    typical_micros: AtomicU64,
    /// bcrypt computations done so far.
    computed: AtomicU64,
}

/// How long a hash for anything but a login may wait for a worker before it is refused (503):
/// logins go first, so under a stream of logins other uses fail fast rather than hang.
pub const OTHER_MAX_WAIT: Duration = Duration::from_secs(10);

/// The niceness of hashing threads: a CPU-bound hash yields to request handling (nice 0), yet
/// keeps about a tenth of a contended core (CFS weights 110 against 1024).
pub const HASH_THREAD_NICE: i32 = 10;

type Job = Box<dyn FnOnce() + Send>;

/// Jobs waiting for a worker: logins first; other uses only while no login waits, on at most
/// `other_workers` workers at once.
#[derive(Default)]
struct Queues {
    login: VecDeque<Job>,
    other: VecDeque<Job>,
    running_other: usize,
    closed: bool,
}

struct PoolShared {
    queues: Mutex<Queues>,
    ready: Condvar,
    /// How many workers may run [`Purpose::Other`] jobs at once: all but one (at least one).
    other_workers: usize,
}

impl PoolShared {
    /// The next job for a free worker, or `None` once the pool is closed and drained.
    fn next(&self) -> Option<(Job, Purpose)> {
        let mut q = self.queues.lock().ok()?;
        loop {
            if let Some(job) = q.login.pop_front() {
                return Some((job, Purpose::Login));
            }
            if q.running_other < self.other_workers
                && let Some(job) = q.other.pop_front()
            {
                q.running_other += 1;
                return Some((job, Purpose::Other));
            }
            if q.closed && q.login.is_empty() && q.other.is_empty() {
                return None;
            }
            q = self.ready.wait(q).ok()?;
        }
    }

    fn finished(&self, purpose: Purpose) {
        if purpose == Purpose::Other
            && let Ok(mut q) = self.queues.lock()
        {
            q.running_other -= 1;
            drop(q);
            self.ready.notify_all();
        }
    }
}

/// Threads that run only password hashes, at [`HASH_THREAD_NICE`]. They end when the hasher is
/// dropped (the queues close).
struct HashPool {
    shared: Arc<PoolShared>,
    workers: usize,
}

impl HashPool {
    fn new(workers: usize) -> Self {
        let shared = Arc::new(PoolShared {
            queues: Mutex::new(Queues::default()),
            ready: Condvar::new(),
            other_workers: workers.saturating_sub(1).max(1),
        });
        for i in 0..workers {
            let shared = shared.clone();
            let spawned = std::thread::Builder::new().name(format!("bcrypt-{i}")).spawn(move || {
                lower_priority();
                while let Some((job, purpose)) = shared.next() {
                    // A job only computes and sends; should it ever panic, the worker lives on.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    shared.finished(purpose);
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password-hashing thread");
            }
        }
        Self { shared, workers }
    }

    fn submit(&self, purpose: Purpose, job: Job) -> Result<(), HashError> {
        let mut q = self.shared.queues.lock().map_err(|_| HashError::Failed("hashing pool poisoned".into()))?;
        match purpose {
            Purpose::Login => q.login.push_back(job),
            Purpose::Other => q.other.push_back(job),
        }
        drop(q);
        self.shared.ready.notify_all();
        Ok(())
    }
}

impl Drop for HashPool {
    fn drop(&mut self) {
        if let Ok(mut q) = self.shared.queues.lock() {
            q.closed = true;
        }
        self.shared.ready.notify_all();
    }
}

/// Lowers the calling thread's scheduling priority (Linux keeps the nice value per thread).
#[cfg(target_os = "linux")]
fn lower_priority() {
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), HASH_THREAD_NICE) {
        tracing::warn!(error = %e, "cannot lower the priority of a password-hashing thread");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

/// Decrements the waiting count when a hash finishes, however it finishes.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl PasswordHasher {
    /// `workers` hashes run at once; at most `max_waiting` more may wait for a worker.
    pub fn new(pepper: SecretSlice<u8>, cost: u32, workers: usize, max_waiting: usize) -> Self {
        Self {
            pepper,
            cost,
            pool: HashPool::new(workers.max(1)),
            waiting: AtomicUsize::new(0),
            waiting_other: AtomicUsize::new(0),
            max_waiting,
            other_max_wait: OTHER_MAX_WAIT,
            dummy: OnceCell::new(),
            typical_micros: AtomicU64::new(0),
            computed: AtomicU64::new(0),
        }
    }

    /// Places (running or waiting) in the pool: logins may take all of them.
    fn capacity(&self) -> usize {
        self.max_waiting + self.pool.workers
    }

    /// Places [`Purpose::Other`] may take: half of the pool (at least one), so that at least as
    /// many stay for logins.
    fn other_capacity(&self) -> usize {
        (self.capacity() / 2).max(1)
    }

    /// About how long one hash takes here (a moving average; zero before the first): what a
    /// path that skips hashing waits so that its answer does not come sooner.
    pub fn typical_hash_time(&self) -> Duration {
        Duration::from_micros(self.typical_micros.load(Ordering::Relaxed))
    }

    /// How many bcrypt computations this hasher has done (hashes and verifications).
    pub fn computed(&self) -> u64 {
        self.computed.load(Ordering::Relaxed)
    }

    fn record_time(&self, took: Duration) {
        self.computed.fetch_add(1, Ordering::Relaxed);
        let sample = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let _ = self.typical_micros.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
            Some(if old == 0 { sample } else { old - old / 8 + sample / 8 })
        });
    }

    /// The key of a device's own failure counter for one account (docs/SECURITY.md LG-1): the
    /// device cookie's nonce under the pepper, bound to the account's throttle key.
    pub fn device_key(&self, account_key: &[u8; 32], nonce: &str) -> [u8; 32] {
        let input = format!("trellis-device-throttle:{}:{nonce}", STANDARD.encode(account_key));
        platform::crypto::hmac_sha256(self.pepper.expose_secret(), input.as_bytes())
    }

    /// The signature of a device cookie for one account: HMAC under the pepper, in a domain of
    /// its own.
    pub fn device_mac(&self, account_key: &[u8; 32], nonce: &str) -> [u8; 32] {
        let input = format!("trellis-device-cookie:{}:{nonce}", STANDARD.encode(account_key));
        platform::crypto::hmac_sha256(self.pepper.expose_secret(), input.as_bytes())
    }

    /// A keyed, non-reversible key for an account's login throttling: HMAC under the pepper of the
    /// normalized email, domain-separated from password hashing.
    pub fn account_key(&self, normalized_email: &str) -> [u8; 32] {
        let input = format!("trellis-login-throttle:{normalized_email}");
        platform::crypto::hmac_sha256(self.pepper.expose_secret(), input.as_bytes())
    }

    /// The key of an account's second-factor failure counter (a separate domain from login
    /// throttling, so no login name can ever collide with it).
    pub fn mfa_key(&self, user_id: uuid::Uuid) -> [u8; 32] {
        let input = format!("trellis-mfa-throttle:{user_id}");
        platform::crypto::hmac_sha256(self.pepper.expose_secret(), input.as_bytes())
    }

    /// Whether `stored` was made at another cost than the configured one (or is not a bcrypt
    /// hash this hasher understands), so a successful login should store a fresh hash.
    pub fn needs_rehash(&self, stored: &str) -> bool {
        let cost = stored.split('$').nth(2).and_then(|c| c.parse::<u32>().ok());
        cost != Some(self.cost)
    }

    fn prehash(&self, password: &str) -> String {
        STANDARD.encode(platform::crypto::hmac_sha256(self.pepper.expose_secret(), password.as_bytes()))
    }

    #[cfg(test)]
    async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T, HashError> {
        self.run_as(Purpose::Other, job).await
    }

    async fn run_as<T: Send + 'static>(
        &self,
        purpose: Purpose,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let before = self.waiting.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(&self.waiting);
        let _waiting_other = (purpose == Purpose::Other).then(|| {
            let before = self.waiting_other.fetch_add(1, Ordering::AcqRel);
            (Waiting(&self.waiting_other), before)
        });
        let full = before >= self.capacity()
            || _waiting_other.as_ref().is_some_and(|(_, others)| *others >= self.other_capacity());
        if full {
            let purpose = match purpose {
                Purpose::Login => "login",
                Purpose::Other => "other",
            };
            metrics::counter!("trellis_password_hash_rejected_total", "purpose" => purpose).increment(1);
            return Err(HashError::Saturated);
        }
        let (tx, rx) = oneshot::channel();
        let boxed: Job = Box::new(move || {
            // The caller gave up (it waited too long, or its client hung up): no work to do.
            if tx.is_closed() {
                return;
            }
            let _ = tx.send(job());
        });
        self.pool.submit(purpose, boxed)?;
        let answer = match purpose {
            Purpose::Login => rx.await,
            Purpose::Other => match tokio::time::timeout(self.other_max_wait, rx).await {
                Ok(answer) => answer,
                Err(_) => {
                    metrics::counter!("trellis_password_hash_rejected_total", "purpose" => "other_timeout")
                        .increment(1);
                    return Err(HashError::Saturated);
                }
            },
        };
        answer.map_err(|_| HashError::Failed("a hashing thread died".into()))
    }

    /// A bcrypt computation, timed for [`Self::typical_hash_time`].
    async fn timed<T: Send + 'static>(
        &self,
        purpose: Purpose,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (out, took) = self
            .run_as(purpose, move || {
                let start = Instant::now();
                let out = job();
                (out, start.elapsed())
            })
            .await?;
        self.record_time(took);
        Ok(out)
    }

    /// Hashes for anything but a login.
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        self.hash_as(Purpose::Other, password).await
    }

    pub async fn hash_as(&self, purpose: Purpose, password: &str) -> Result<String, HashError> {
        let pre = self.prehash(password);
        let cost = self.cost;
        self.timed(purpose, move || bcrypt::hash(pre, cost)).await?.map_err(|e| HashError::Failed(e.to_string()))
    }

    /// Verifies for anything but a login.
    pub async fn verify(&self, password: &str, hash: &str) -> Result<bool, HashError> {
        self.verify_as(Purpose::Other, password, hash).await
    }

    pub async fn verify_as(&self, purpose: Purpose, password: &str, hash: &str) -> Result<bool, HashError> {
        let pre = self.prehash(password);
        let hash = hash.to_string();
        Ok(self.timed(purpose, move || bcrypt::verify(pre, &hash)).await?.unwrap_or(false))
    }

    /// Spends the same work as `verify` for an account that does not exist, so that timing does
    /// not tell who has an account.
    pub async fn verify_dummy(&self, password: &str) -> Result<(), HashError> {
        self.verify_dummy_as(Purpose::Other, password).await
    }

    pub async fn verify_dummy_as(&self, purpose: Purpose, password: &str) -> Result<(), HashError> {
        let dummy = self
            .dummy
            .get_or_try_init(|| async { self.hash_as(purpose, &platform::crypto::random_token()).await })
            .await?
            .clone();
        self.verify_as(purpose, password, &dummy).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    fn hasher(cost: u32) -> PasswordHasher {
        PasswordHasher::new(SecretSlice::from(vec![9u8; 32]), cost, 2, 4)
    }

    #[tokio::test]
    async fn hashes_verify_and_use_the_configured_cost() {
        let h = hasher(12);
        let stored = h.hash("correct horse battery staple").await.unwrap();
        assert!(stored.starts_with("$2b$12$"), "{stored}");
        assert!(h.verify("correct horse battery staple", &stored).await.unwrap());
        assert!(!h.verify("Correct horse battery staple", &stored).await.unwrap(), "case matters");
    }

    #[tokio::test]
    async fn a_hash_at_another_cost_needs_rehashing() {
        let h = hasher(10);
        let at_10 = h.hash("a long enough password").await.unwrap();
        assert!(!h.needs_rehash(&at_10));
        assert!(hasher(12).needs_rehash(&at_10), "cost went up");
        assert!(h.needs_rehash("not a bcrypt hash"));
    }

    #[tokio::test]
    async fn bytes_past_72_still_count() {
        let h = hasher(10);
        let base = "x".repeat(72);
        let stored = h.hash(&format!("{base}AAAAAAAA")).await.unwrap();
        assert!(h.verify(&format!("{base}AAAAAAAA"), &stored).await.unwrap());
        assert!(!h.verify(&format!("{base}BBBBBBBB"), &stored).await.unwrap());
    }

    #[tokio::test]
    async fn a_different_pepper_does_not_verify() {
        let stored = hasher(10).hash("a long enough password").await.unwrap();
        let other = PasswordHasher::new(SecretSlice::from(vec![1u8; 32]), 10, 1, 1);
        assert!(!other.verify("a long enough password", &stored).await.unwrap());
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashes_run_on_lower_priority_threads() {
        let h = hasher(4);
        let nice = h.run(|| rustix::process::getpriority_process(Some(rustix::thread::gettid()))).await.unwrap();
        assert_eq!(nice.unwrap(), HASH_THREAD_NICE);
        let here = rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        assert!(here < HASH_THREAD_NICE, "the caller's own thread keeps its priority ({here})");
    }

    #[tokio::test]
    async fn saturation_is_refused_fast() {
        // One worker, one waiting slot. The worker is held by a job that runs until released, and
        // a hash waits behind it: from then on every hash is refused, and at once, since nothing
        // can have waited for a worker that never frees up until the end.
        let h = Arc::new(PasswordHasher::new(SecretSlice::from(vec![9u8; 32]), 4, 1, 1));
        let (release, held) = mpsc::channel::<()>();
        let (started, running) = oneshot::channel();
        let busy = tokio::spawn({
            let h = h.clone();
            async move {
                h.run_as(Purpose::Login, move || {
                    let _ = started.send(());
                    let _ = held.recv();
                })
                .await
            }
        });
        running.await.expect("the worker runs the holding job");
        let queued = tokio::spawn({
            let h = h.clone();
            async move { h.hash_as(Purpose::Login, "a long enough password").await }
        });
        test_support::wait::until("a second hash waiting for the held worker", || async {
            h.waiting.load(Ordering::SeqCst) == 2
        })
        .await;
        for i in 0..4 {
            assert_eq!(h.hash("a long enough password").await, Err(HashError::Saturated), "hash {i} while full");
            assert_eq!(h.verify_as(Purpose::Login, "x", "y").await, Err(HashError::Saturated), "login {i} while full");
        }
        release.send(()).expect("the holding job waits for its release");
        busy.await.unwrap().expect("the holding job ran");
        assert!(queued.await.unwrap().is_ok(), "the waiting hash ran once the worker was free");
        assert!(h.hash("a long enough password").await.is_ok(), "room again once the pool is idle");
    }

    /// Holds `n` jobs of `purpose` on the pool until released; returns once they all run.
    async fn hold(
        h: &Arc<PasswordHasher>,
        purpose: Purpose,
        n: usize,
    ) -> Vec<(mpsc::Sender<()>, tokio::task::JoinHandle<()>)> {
        let mut held = Vec::new();
        for _ in 0..n {
            let (release, wait) = mpsc::channel::<()>();
            let (started, running) = oneshot::channel();
            let h = h.clone();
            let task = tokio::spawn(async move {
                h.run_as(purpose, move || {
                    let _ = started.send(());
                    let _ = wait.recv();
                })
                .await
                .expect("a held job runs");
            });
            running.await.expect("the held job started");
            held.push((release, task));
        }
        held
    }

    #[tokio::test]
    async fn other_uses_never_take_the_places_of_logins() {
        // Two workers, four waiting places: six places, three for other uses, which may run on
        // one worker only.
        let h = Arc::new(PasswordHasher::new(SecretSlice::from(vec![9u8; 32]), 4, 2, 4));
        let held = hold(&h, Purpose::Other, 1).await;
        let mut queued = Vec::new();
        for _ in 0..2 {
            let h = h.clone();
            queued.push(tokio::spawn(async move { h.hash("a long enough password").await }));
        }
        test_support::wait::until("three other uses in the pool", || async {
            h.waiting_other.load(Ordering::SeqCst) == 3
        })
        .await;
        for i in 0..5 {
            assert_eq!(h.hash("a long enough password").await, Err(HashError::Saturated), "other use {i} while full");
        }
        // The flood of other uses holds one worker and its share of places: a login runs at once
        // on the worker left, though two other uses queued before it.
        let stored = h.hash_as(Purpose::Login, "a login password").await.expect("a login is never refused here");
        assert!(h.verify_as(Purpose::Login, "a login password", &stored).await.unwrap());
        assert_eq!(h.waiting_other.load(Ordering::SeqCst), 3, "the queued other uses still wait");
        for (release, task) in held {
            release.send(()).unwrap();
            task.await.unwrap();
        }
        for q in queued {
            assert!(q.await.unwrap().is_ok(), "queued other uses run once a worker is free");
        }
    }

    #[tokio::test]
    async fn logins_alone_may_fill_the_pool() {
        let h = Arc::new(PasswordHasher::new(SecretSlice::from(vec![9u8; 32]), 4, 1, 1));
        let held = hold(&h, Purpose::Login, 1).await;
        let queued = tokio::spawn({
            let h = h.clone();
            async move { h.verify_as(Purpose::Login, "x", "not a hash").await }
        });
        test_support::wait::until("a login waiting", || async { h.waiting.load(Ordering::SeqCst) == 2 }).await;
        assert_eq!(h.verify_as(Purpose::Login, "x", "y").await, Err(HashError::Saturated), "logins fill the pool");
        assert_eq!(h.hash("other").await, Err(HashError::Saturated));
        for (release, task) in held {
            release.send(()).unwrap();
            task.await.unwrap();
        }
        assert_eq!(queued.await.unwrap(), Ok(false));
    }

    #[tokio::test]
    async fn the_typical_hash_time_follows_the_hashes() {
        let h = hasher(6);
        assert_eq!(h.typical_hash_time(), Duration::ZERO, "nothing measured yet");
        h.hash("a long enough password").await.unwrap();
        assert!(h.typical_hash_time() > Duration::ZERO);
    }

    #[test]
    fn device_keys_and_signatures_are_bound_to_the_account_and_apart() {
        let h = hasher(4);
        let (a, b) = (h.account_key("a@example.com"), h.account_key("b@example.com"));
        assert_ne!(h.device_mac(&a, "n"), h.device_mac(&b, "n"));
        assert_ne!(h.device_key(&a, "n"), h.device_key(&b, "n"));
        assert_ne!(h.device_key(&a, "n"), h.device_mac(&a, "n"), "separate domains");
        assert_ne!(h.device_key(&a, "n"), a, "never the account's own counter");
    }

    #[tokio::test]
    async fn logins_go_first_and_other_uses_wait_only_so_long() {
        // Both workers run logins; a login queued after an other use still runs first.
        let mut h = PasswordHasher::new(SecretSlice::from(vec![9u8; 32]), 4, 2, 8);
        h.other_max_wait = Duration::from_secs(3600);
        let h = Arc::new(h);
        let mut held = hold(&h, Purpose::Login, 2).await;
        let (order_tx, order_rx) = mpsc::channel::<&'static str>();
        let mut queued = Vec::new();
        for (n, (purpose, name)) in [(Purpose::Other, "other"), (Purpose::Login, "login")].into_iter().enumerate() {
            let (job_h, order) = (h.clone(), order_tx.clone());
            queued.push(tokio::spawn(async move { job_h.run_as(purpose, move || order.send(name).unwrap()).await }));
            test_support::wait::until("the job queued", || async { h.waiting.load(Ordering::SeqCst) == 3 + n }).await;
        }
        let (release, task) = held.remove(0);
        release.send(()).unwrap();
        task.await.unwrap();
        for q in queued {
            q.await.unwrap().unwrap();
        }
        assert_eq!(order_rx.try_iter().collect::<Vec<_>>(), ["login", "other"]);
        for (release, task) in held {
            release.send(()).unwrap();
            task.await.unwrap();
        }

        // While logins keep the only worker busy, an other use is refused after its wait, and its
        // work is never done.
        let mut h = PasswordHasher::new(SecretSlice::from(vec![9u8; 32]), 4, 1, 8);
        h.other_max_wait = Duration::from_millis(50);
        let h = Arc::new(h);
        let held = hold(&h, Purpose::Login, 1).await;
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        let refused = h.run_as(Purpose::Other, move || flag.store(true, Ordering::SeqCst)).await;
        assert_eq!(refused, Err(HashError::Saturated));
        for (release, task) in held {
            release.send(()).unwrap();
            task.await.unwrap();
        }
        h.hash_as(Purpose::Login, "after").await.unwrap();
        assert!(!ran.load(Ordering::SeqCst), "a refused job does no work");
    }
}
