//! SQLite adapter: one writer connection and a few readers (WAL), used from blocking threads.
//!
//! Every statement SQLite starts on a connection of a [`SqliteDb`] bumps that database's
//! statement counter ([`SqliteDb::statements`]), through SQLite's own trace hook: tests read it
//! to prove that a request runs a constant number of statements (no N+1).

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use deadpool::Runtime;
use deadpool::managed::{self, Metrics, Pool, RecycleError, RecycleResult, Timeouts};
use deadpool_sync::SyncWrapper;
use rusqlite::ErrorCode;
use rusqlite::trace::{TraceEvent, TraceEventCodes};

use super::StoreError;

/// Opens connections to one database file. Unlike deadpool-sqlite's manager it runs no query
/// when a connection is handed out: a connection to a local file cannot go stale, and that check
/// cost a second blocking-thread hop per read (`benches/db-drivers`: ×1.76 read throughput
/// without it). A connection is dropped only if a closure panicked while holding it.
struct Manager {
    path: PathBuf,
}

impl managed::Manager for Manager {
    type Type = SyncWrapper<rusqlite::Connection>;
    type Error = rusqlite::Error;

    async fn create(&self) -> Result<Self::Type, Self::Error> {
        let path = self.path.clone();
        SyncWrapper::new(Runtime::Tokio1, move || {
            let c = rusqlite::Connection::open(path)?;
            c.execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
            )?;
            c.trace_v2(TraceEventCodes::SQLITE_TRACE_STMT, Some(count_statement));
            Ok(c)
        })
        .await
    }

    async fn recycle(&self, conn: &mut Self::Type, _: &Metrics) -> RecycleResult<Self::Error> {
        if conn.is_mutex_poisoned() {
            return Err(RecycleError::message("a closure panicked while holding this connection"));
        }
        Ok(())
    }
}

thread_local! {
    /// The statement counter of the database whose closure this thread is running, if any. SQLite
    /// calls the trace hook on the thread that runs the statement, and the hook can only be a plain
    /// `fn`, so the counter travels in this slot for the duration of a `read` or `write`.
    static COUNTER: RefCell<Option<Arc<AtomicU64>>> = const { RefCell::new(None) };
}

fn count_statement(event: TraceEvent<'_>) {
    if let TraceEvent::Stmt(..) = event {
        COUNTER.with(|c| {
            if let Some(n) = c.borrow().as_ref() {
                n.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

/// Puts `counter` in this thread's slot until dropped (also on a panic).
struct Counting;

impl Counting {
    fn start(counter: &Arc<AtomicU64>) -> Self {
        COUNTER.with(|c| *c.borrow_mut() = Some(Arc::clone(counter)));
        Counting
    }
}

impl Drop for Counting {
    fn drop(&mut self) {
        COUNTER.with(|c| *c.borrow_mut() = None);
    }
}

/// An embedded SQLite database. Writes go through a single connection, so writers queue in the
/// pool instead of failing with `SQLITE_BUSY`; reads run in parallel under WAL.
#[derive(Clone)]
pub struct SqliteDb {
    writer: Pool<Manager>,
    readers: Pool<Manager>,
    statements: Arc<AtomicU64>,
    /// Writes waiting for the writer connection ([`SqliteDb::write`]'s group commit).
    queue: Arc<std::sync::Mutex<std::collections::VecDeque<Job>>>,
}

impl std::fmt::Debug for SqliteDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteDb")
    }
}

fn pool(path: &Path, size: usize) -> anyhow::Result<Pool<Manager>> {
    Ok(Pool::builder(Manager { path: path.to_path_buf() })
        .max_size(size)
        .timeouts(Timeouts { wait: Some(Duration::from_secs(5)), ..Timeouts::default() })
        .runtime(Runtime::Tokio1)
        .build()?)
}

impl SqliteDb {
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let db =
            Self { writer: pool(path, 1)?, readers: pool(path, 4)?, statements: Arc::default(), queue: Arc::default() };
        // Open the writer first so the file and WAL mode exist before readers connect.
        db.write(|_| Ok(())).await?;
        Ok(db)
    }

    /// Runs `f` on a reader connection on a blocking thread.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let conn = self.readers.get().await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let counter = Arc::clone(&self.statements);
        conn.interact(move |c| {
            let _counting = Counting::start(&counter);
            f(c)
        })
        .await
        .map_err(|e| StoreError::Internal(e.to_string()))?
        .map_err(map_err)
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction on the writer; commits if it returns Ok.
    ///
    /// **Group commit.** Writers queue their closures; whoever holds the writer connection runs
    /// every queued closure in one transaction, each inside a savepoint of its own (a closure that
    /// fails is rolled back alone), and commits once. A closure's result is answered only after
    /// that commit: `Ok` means committed, and a failed commit fails every closure of the batch,
    /// none of which then took effect. A write whose writer gave up waiting for the connection
    /// (answered `Unavailable`) is withdrawn and never runs, so that answer is true too. Under
    /// load this turns one commit (and, for FTS5, one index segment) per write into one per
    /// batch; alone, a write is its own batch.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let (answer, mut answered) = tokio::sync::oneshot::channel();
        // Whoever moves the job out of QUEUED first decides its fate: a batch taking it (then its
        // answer will come) or this writer giving up (then it is never run, though still queued).
        let state = Arc::new(AtomicU8::new(QUEUED));
        let taken = Arc::clone(&state);
        let job: Job = Box::new(move |tx| {
            if taken.compare_exchange(QUEUED, TAKEN, Ordering::SeqCst, Ordering::SeqCst).is_err() {
                // Its writer was answered `Unavailable`: nothing of it may be written.
                let nothing: Finish = Box::new(|_| {});
                return (true, nothing);
            }
            let out = f(tx);
            let ok = out.is_ok();
            let finish: Finish = Box::new(move |commit| {
                let _ = answer.send(commit.and(out));
            });
            (ok, finish)
        });
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push_back(job);
        let lost = || StoreError::Internal("the write was lost: its batch did not complete".into());
        loop {
            tokio::select! {
                biased;
                result = &mut answered => return result.map_err(|_| lost())?,
                conn = self.writer.get() => {
                    let conn = match conn {
                        Ok(conn) => conn,
                        // Withdrawn before any batch took it: answered unavailable, never written.
                        Err(e) if state.compare_exchange(QUEUED, WITHDRAWN, Ordering::SeqCst, Ordering::SeqCst).is_ok() => {
                            return Err(StoreError::Unavailable(e.to_string()));
                        }
                        // A running batch has it: its answer (committed or not) is on its way.
                        Err(_) => continue,
                    };
                    let batch: Vec<Job> = {
                        let mut queue = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        let n = queue.len().min(MAX_BATCH);
                        queue.drain(..n).collect()
                    };
                    if batch.is_empty() {
                        continue;
                    }
                    let counter = Arc::clone(&self.statements);
                    // A panic in one closure loses the batch: its transaction rolls back and every
                    // writer in it is answered `lost` (their senders are dropped).
                    let _ = conn.interact(move |c| run_batch(c, batch, &counter)).await;
                }
            }
        }
    }
}

/// States of a queued write (see [`SqliteDb::write`]): waiting, taken into a batch, withdrawn by
/// its writer after the writer connection could not be had in time.
const QUEUED: u8 = 0;
const TAKEN: u8 = 1;
const WITHDRAWN: u8 = 2;

/// The most closures one transaction of [`SqliteDb::write`] takes.
const MAX_BATCH: usize = 128;

/// What a writer's closure leaves to do once its batch committed or failed: answer the writer.
type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// A queued write: runs the closure in the batch's transaction; whether it succeeded, and how to
/// answer.
type Job = Box<dyn FnOnce(&rusqlite::Transaction<'_>) -> (bool, Finish) + Send>;

/// Runs `batch` in one transaction, each closure inside its own savepoint, and commits once.
fn run_batch(c: &mut rusqlite::Connection, batch: Vec<Job>, counter: &Arc<AtomicU64>) {
    let _counting = Counting::start(counter);
    // A job dropped unrun answers its writer `lost`: nothing of it was written.
    let tx = match c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            tracing::warn!(error = %e, writes = batch.len(), "a write batch could not begin");
            return;
        }
    };
    let mut finishes = Vec::with_capacity(batch.len());
    for job in batch {
        if let Err(e) = tx.execute_batch("SAVEPOINT trellis_write") {
            tracing::warn!(error = %e, "a write's savepoint could not begin");
            continue;
        }
        let (ok, finish) = job(&tx);
        let end = if ok { "RELEASE trellis_write" } else { "ROLLBACK TO trellis_write; RELEASE trellis_write" };
        if let Err(e) = tx.execute_batch(end) {
            // The transaction is in an unknown state: commit none of it.
            for finish in finishes.into_iter().chain([finish]) {
                finish(Err(StoreError::Unavailable(format!("cannot end a write: {e}"))));
            }
            return;
        }
        finishes.push(finish);
    }
    let commit = tx.commit().map_err(map_err);
    for finish in finishes {
        finish(match &commit {
            Ok(()) => Ok(()),
            Err(e) => Err(StoreError::Unavailable(format!("the commit failed: {e}"))),
        });
    }
}

impl SqliteDb {
    /// How many statements have run on this database's connections (`BEGIN` and `COMMIT`
    /// included) since it was opened. One relaxed atomic per statement; for tests and metrics.
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }
}

/// Maps driver errors to typed store errors at the seam.
pub fn map_err(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
        rusqlite::Error::SqliteFailure(f, msg) => match f.code {
            ErrorCode::ConstraintViolation => StoreError::Conflict(msg.clone().unwrap_or_else(|| "constraint".into())),
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StoreError::Unavailable(e.to_string()),
            // The disk (or `max_page_count`) is full: the statement and its transaction's savepoint
            // are rolled back, so nothing is half-written; a retry succeeds once there is room.
            ErrorCode::DiskFull => StoreError::Unavailable(format!("disk full: {e}")),
            _ => StoreError::Internal(e.to_string()),
        },
        _ => StoreError::Internal(e.to_string()),
    }
}
