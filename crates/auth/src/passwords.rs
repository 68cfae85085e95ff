//! Password hashing: bcrypt (cost 12 by default) over base64(HMAC-SHA-256(pepper, password)), so
//! the whole password counts however long it is, and a database leak alone does not allow offline
//! guessing. Hashing runs on a few threads of its own at a lower scheduling priority (nice 10),
//! so that under a login flood bcrypt takes the CPU only as far as requests of higher priority
//! leave it idle (docs/PERFORMANCE.md S7); when too many hashes wait, new ones are refused at once (the
//! caller answers 503) instead of queueing without bound.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretSlice};
use tokio::sync::{OnceCell, oneshot};

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
    /// Hashes queued or running.
    waiting: AtomicUsize,
    max_waiting: usize,
    dummy: OnceCell<String>,
}

/// The niceness of hashing threads: a CPU-bound hash yields to request handling (nice 0), yet
/// keeps about a tenth of a contended core (CFS weights 110 against 1024).
pub const HASH_THREAD_NICE: i32 = 10;

type Job = Box<dyn FnOnce() + Send>;

/// Threads that run only password hashes, at [`HASH_THREAD_NICE`]. They end when the hasher is
/// dropped (the channel closes).
struct HashPool {
    jobs: Mutex<mpsc::Sender<Job>>,
    workers: usize,
}

impl HashPool {
    fn new(workers: usize) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new().name(format!("bcrypt-{i}")).spawn(move || {
                lower_priority();
                loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password-hashing thread");
            }
        }
        Self { jobs: Mutex::new(tx), workers }
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
            max_waiting,
            dummy: OnceCell::new(),
        }
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

    async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T, HashError> {
        let before = self.waiting.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(&self.waiting);
        if before >= self.max_waiting + self.pool.workers {
            metrics::counter!("trellis_password_hash_rejected_total").increment(1);
            return Err(HashError::Saturated);
        }
        let (tx, rx) = oneshot::channel();
        let boxed: Job = Box::new(move || {
            // The caller may have gone (a client hung up): nothing to tell.
            let _ = tx.send(job());
        });
        self.pool
            .jobs
            .lock()
            .map_err(|_| HashError::Failed("hashing pool poisoned".into()))?
            .send(boxed)
            .map_err(|_| HashError::Failed("hashing pool stopped".into()))?;
        rx.await.map_err(|_| HashError::Failed("a hashing thread died".into()))
    }

    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let pre = self.prehash(password);
        let cost = self.cost;
        self.run(move || bcrypt::hash(pre, cost)).await?.map_err(|e| HashError::Failed(e.to_string()))
    }

    pub async fn verify(&self, password: &str, hash: &str) -> Result<bool, HashError> {
        let pre = self.prehash(password);
        let hash = hash.to_string();
        Ok(self.run(move || bcrypt::verify(pre, &hash)).await?.unwrap_or(false))
    }

    /// Spends the same work as `verify` for an account that does not exist, so that timing does
    /// not tell who has an account.
    pub async fn verify_dummy(&self, password: &str) -> Result<(), HashError> {
        let dummy =
            self.dummy.get_or_try_init(|| async { self.hash(&platform::crypto::random_token()).await }).await?.clone();
        self.verify(password, &dummy).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
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
                h.run(move || {
                    let _ = started.send(());
                    let _ = held.recv();
                })
                .await
            }
        });
        running.await.expect("the worker runs the holding job");
        let queued = tokio::spawn({
            let h = h.clone();
            async move { h.hash("a long enough password").await }
        });
        test_support::wait::until("a second hash waiting for the held worker", || async {
            h.waiting.load(Ordering::SeqCst) == 2
        })
        .await;
        for i in 0..4 {
            assert_eq!(h.hash("a long enough password").await, Err(HashError::Saturated), "hash {i} while full");
        }
        release.send(()).expect("the holding job waits for its release");
        busy.await.unwrap().expect("the holding job ran");
        assert!(queued.await.unwrap().is_ok(), "the waiting hash ran once the worker was free");
        assert!(h.hash("a long enough password").await.is_ok(), "room again once the pool is idle");
    }
}
