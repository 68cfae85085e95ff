//! The read-through cache of single projects, memberships and tasks (memory all-in-one, Redis
//! distributed), with invalidation on every write and a fall-back to the database whenever the
//! cache cannot be trusted or reached.
//!
//! # Entries
//! - `projects:p:{id}`: a project row ([`crate::ports::ProjectRecord`], JSON).
//! - `projects:m:{project}:{user}`: the user's membership role in the project, or `-` for none
//!   (so a non-member's 404 is served from the cache too).
//! - `projects:t:{id}`: a task row ([`TaskRecord`], JSON).
//!
//! Missing projects and tasks are not cached: a 404 always asks the database.
//!
//! # Consistency
//! - **Populate never overwrites** (`SET NX`), and **invalidation writes a tombstone** for
//!   [`TOMBSTONE_TTL`] instead of deleting. A reader that loaded a row just before a write
//!   committed cannot put the old row back: either its `SET NX` ran first and the tombstone
//!   replaces it, or the tombstone is already there and its `SET NX` fails. Only a reader stalled
//!   for longer than the tombstone's life between its load and its populate could store an old
//!   row, and then only until the entry's TTL ([`TTL`]).
//! - **An invalidation that fails is not forgotten.** Its keys are kept and retried before any
//!   later cache access (at most once a second), and until they are through, this process reads
//!   and populates nothing from the cache. Other processes sharing the Redis could read an entry
//!   this process failed to invalidate until the retry succeeds or the write's event reaches
//!   them ([`crate::invalidation`] tombstones what it names); a Redis that restarted lost
//!   every entry anyway (it keeps nothing on disk). When more than [`MAX_PENDING`] keys pile up
//!   they are dropped, and the cache is bypassed for a whole [`TTL`], after which every entry
//!   that might have missed its invalidation has expired.
//! - **A read that fails** (Redis down or slow) is a miss: the row comes from the database, and
//!   the cache is left alone for [`READ_BACKOFF`] so that an outage costs one timeout a second,
//!   not one per request. Nothing fails because the cache does.
//!
//! Hits and misses are counted in `/metrics` as `trellis_cache_hits_total{entity}` and
//! `trellis_cache_misses_total{entity}` (`entity` = `project`, `member` or `task`), failures as
//! `trellis_cache_errors_total`.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api::projects::ProjectRole;
use platform::cache::Cache;
use platform::db::StoreError;
use uuid::Uuid;

use crate::ports::{ProjectView, TaskRecord};
use crate::store::role_str;

/// How long an entry lives (issue 5: 15 minutes).
pub const TTL: Duration = Duration::from_secs(15 * 60);
/// How long an invalidation's tombstone keeps readers from populating the key.
pub const TOMBSTONE_TTL: Duration = Duration::from_secs(10);
/// How long the cache is left alone after a failed read.
pub const READ_BACKOFF: Duration = Duration::from_secs(1);
/// The most failed invalidations kept for retry.
pub const MAX_PENDING: usize = 100_000;

/// The value of a tombstone; no JSON document or role is empty.
const TOMBSTONE: &[u8] = b"";
/// A cached "not a member".
const NOT_MEMBER: &[u8] = b"-";

/// One cached thing, by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    Project(Uuid),
    Member { project: Uuid, user: Uuid },
    Task(Uuid),
}

impl Key {
    fn name(self) -> String {
        match self {
            Key::Project(id) => format!("projects:p:{id}"),
            Key::Member { project, user } => format!("projects:m:{project}:{user}"),
            Key::Task(id) => format!("projects:t:{id}"),
        }
    }

    fn entity(self) -> &'static str {
        match self {
            Key::Project(_) => "project",
            Key::Member { .. } => "member",
            Key::Task(_) => "task",
        }
    }
}

#[derive(Debug, Default)]
struct Health {
    /// Keys whose invalidation failed, to retry.
    pending: HashSet<String>,
    /// No cache reads or populates before this instant.
    bypass_until: Option<Instant>,
    /// When `pending` was last retried.
    last_retry: Option<Instant>,
}

/// The read-through cache of the projects service; [`EntityCache::disabled`] reads straight
/// through to the database.
pub struct EntityCache {
    cache: Option<Arc<dyn Cache>>,
    health: Mutex<Health>,
}

fn hit(key: Key) {
    metrics::counter!("trellis_cache_hits_total", "entity" => key.entity()).increment(1);
}

fn miss(key: Key) {
    metrics::counter!("trellis_cache_misses_total", "entity" => key.entity()).increment(1);
}

fn role_bytes(role: Option<ProjectRole>) -> &'static [u8] {
    role.map_or(NOT_MEMBER, |r| role_str(r).as_bytes())
}

/// A cached membership: `Some(None)` for a cached non-member, `None` for nothing usable.
fn parse_role(bytes: &[u8]) -> Option<Option<ProjectRole>> {
    match bytes {
        b"owner" => Some(Some(ProjectRole::Owner)),
        b"editor" => Some(Some(ProjectRole::Editor)),
        b"viewer" => Some(Some(ProjectRole::Viewer)),
        NOT_MEMBER => Some(None),
        _ => None,
    }
}

impl EntityCache {
    pub fn new(cache: Arc<dyn Cache>) -> Self {
        Self { cache: Some(cache), health: Mutex::new(Health::default()) }
    }

    /// No caching: every read goes to the database.
    pub fn disabled() -> Self {
        Self { cache: None, health: Mutex::new(Health::default()) }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        // A poisoned lock only means a panic elsewhere mid-update of plain data: keep going.
        self.health.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cache, if it may be used now: retries failed invalidations first (at most once a
    /// second) and answers `None` while any remain or a backoff runs.
    async fn usable(&self) -> Option<&dyn Cache> {
        let cache = self.cache.as_deref()?;
        let retry: Vec<String> = {
            let mut h = self.health();
            let now = Instant::now();
            if h.bypass_until.is_some_and(|t| now < t) {
                return None;
            }
            h.bypass_until = None;
            if h.pending.is_empty() {
                return Some(cache);
            }
            if h.last_retry.is_some_and(|t| now.duration_since(t) < READ_BACKOFF) {
                return None;
            }
            h.last_retry = Some(now);
            h.pending.iter().cloned().collect()
        };
        for key in &retry {
            if cache.set(key, TOMBSTONE, TOMBSTONE_TTL).await.is_err() {
                metrics::counter!("trellis_cache_errors_total").increment(1);
                return None;
            }
            self.health().pending.remove(key);
        }
        tracing::info!(keys = retry.len(), "cache invalidations retried after a cache failure");
        Some(cache)
    }

    fn read_failed(&self, e: &platform::cache::CacheError) {
        metrics::counter!("trellis_cache_errors_total").increment(1);
        tracing::warn!(error = %e, "cache read failed; reading from the database");
        let mut h = self.health();
        let until = Instant::now() + READ_BACKOFF;
        h.bypass_until = Some(h.bypass_until.map_or(until, |t| t.max(until)));
    }

    /// Stores `value` under `key` unless something (an entry or a tombstone) is there.
    async fn populate(&self, cache: &dyn Cache, key: Key, value: &[u8]) {
        if let Err(e) = cache.add(&key.name(), value, TTL).await {
            self.read_failed(&e);
        }
    }

    /// The project `id` with `user`'s membership role, from the cache when both are there,
    /// else from `load` (the store's `get_project`), which then fills both entries.
    pub async fn project_view<F, Fut>(&self, id: Uuid, user: Uuid, load: F) -> Result<ProjectView, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<ProjectView, StoreError>>,
    {
        let Some(cache) = self.usable().await else {
            return load().await;
        };
        let (pk, mk) = (Key::Project(id), Key::Member { project: id, user });
        let cached = match cache.get_many(&[&pk.name(), &mk.name()]).await {
            Ok(values) => values,
            Err(e) => {
                self.read_failed(&e);
                return load().await;
            }
        };
        let project = cached.first().and_then(Option::as_deref).and_then(|b| serde_json::from_slice(b).ok());
        let role = cached.get(1).and_then(Option::as_deref).and_then(parse_role);
        match (project, role) {
            (Some(project), Some(member_role)) => {
                hit(pk);
                hit(mk);
                Ok(ProjectView { project, member_role })
            }
            (project, role) => {
                for (key, found) in [(pk, project.is_some()), (mk, role.is_some())] {
                    if found { hit(key) } else { miss(key) }
                }
                let view = load().await?;
                if let Ok(json) = serde_json::to_vec(&view.project) {
                    self.populate(cache, pk, &json).await;
                }
                self.populate(cache, mk, role_bytes(view.member_role)).await;
                Ok(view)
            }
        }
    }

    /// The task `id`, from the cache or from `load` (the store's `get_task`), which fills it.
    pub async fn task<F, Fut>(&self, id: Uuid, load: F) -> Result<TaskRecord, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<TaskRecord, StoreError>>,
    {
        let Some(cache) = self.usable().await else {
            return load().await;
        };
        let key = Key::Task(id);
        match cache.get(&key.name()).await {
            Ok(Some(bytes)) => {
                if let Ok(task) = serde_json::from_slice::<TaskRecord>(&bytes) {
                    hit(key);
                    return Ok(task);
                }
                // A tombstone (or an entry of another version): the database decides.
                miss(key);
            }
            Ok(None) => miss(key),
            Err(e) => {
                self.read_failed(&e);
                return load().await;
            }
        }
        let task = load().await?;
        if let Ok(json) = serde_json::to_vec(&task) {
            self.populate(cache, key, &json).await;
        }
        Ok(task)
    }

    /// Invalidates `keys` after a committed write: each gets a tombstone. Keys whose tombstone
    /// could not be written are kept and retried (see the module docs).
    pub async fn invalidate(&self, keys: &[Key]) {
        let Some(cache) = self.cache.as_deref() else {
            return;
        };
        let mut failed = Vec::new();
        for key in keys {
            let name = key.name();
            if let Err(e) = cache.set(&name, TOMBSTONE, TOMBSTONE_TTL).await {
                metrics::counter!("trellis_cache_errors_total").increment(1);
                tracing::warn!(error = %e, "cache invalidation failed; bypassing the cache until it is retried");
                failed.push(name);
            }
        }
        if failed.is_empty() {
            return;
        }
        let mut h = self.health();
        h.pending.extend(failed);
        if h.pending.len() > MAX_PENDING {
            tracing::error!(
                keys = h.pending.len(),
                "too many failed cache invalidations; bypassing the cache for its TTL"
            );
            h.pending.clear();
            h.bypass_until = Some(Instant::now() + TTL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_tombstones_are_not_roles() {
        for role in [None, Some(ProjectRole::Owner), Some(ProjectRole::Editor), Some(ProjectRole::Viewer)] {
            assert_eq!(parse_role(role_bytes(role)), Some(role));
        }
        assert_eq!(parse_role(TOMBSTONE), None);
        assert!(serde_json::from_slice::<TaskRecord>(TOMBSTONE).is_err());
    }

    #[test]
    fn keys_are_distinct_per_kind() {
        let id = Uuid::from_u128(7);
        let names = [Key::Project(id).name(), Key::Task(id).name(), Key::Member { project: id, user: id }.name()];
        assert_eq!(names.iter().collect::<HashSet<_>>().len(), 3);
    }
}
