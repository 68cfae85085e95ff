//! In-process cache adapter over moka, with per-entry expiry.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::Expiry;
use moka::sync::Cache as Moka;

use super::{Cache, CacheError, WindowCount};

#[derive(Clone)]
struct Entry {
    value: Vec<u8>,
    ttl: Duration,
}

struct PerEntry;

impl Expiry<String, Entry> for PerEntry {
    fn expire_after_create(&self, _: &String, v: &Entry, _: Instant) -> Option<Duration> {
        Some(v.ttl)
    }
    fn expire_after_update(&self, _: &String, v: &Entry, _: Instant, _: Option<Duration>) -> Option<Duration> {
        Some(v.ttl)
    }
}

#[derive(Clone, Copy)]
struct Window {
    count: u64,
    ends: Instant,
}

struct WindowExpiry;

impl Expiry<String, Window> for WindowExpiry {
    fn expire_after_create(&self, _: &String, v: &Window, now: Instant) -> Option<Duration> {
        Some(v.ends.saturating_duration_since(now))
    }
    fn expire_after_update(&self, _: &String, v: &Window, now: Instant, _: Option<Duration>) -> Option<Duration> {
        Some(v.ends.saturating_duration_since(now))
    }
}

/// A bounded in-memory cache (entries are weighed by size).
pub struct MemoryCache {
    entries: Moka<String, Entry>,
    windows: Moka<String, Window>,
}

impl MemoryCache {
    /// A cache holding at most about `max_bytes` of values.
    pub fn new(max_bytes: u64) -> Self {
        Self {
            entries: Moka::builder()
                .max_capacity(max_bytes)
                .weigher(|k: &String, v: &Entry| (k.len() + v.value.len()).try_into().unwrap_or(u32::MAX))
                .expire_after(PerEntry)
                .build(),
            windows: Moka::builder().max_capacity(1_000_000).expire_after(WindowExpiry).build(),
        }
    }
}

impl Default for MemoryCache {
    fn default() -> Self {
        Self::new(64 * 1024 * 1024)
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        Ok(self.entries.get(key).map(|e| e.value))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        self.entries.insert(key.to_string(), Entry { value: value.to_vec(), ttl });
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.entries.invalidate(key);
        Ok(())
    }

    async fn add(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError> {
        let entry = self.entries.entry(key.to_string()).or_insert_with(|| Entry { value: value.to_vec(), ttl });
        Ok(entry.is_fresh())
    }

    async fn incr_window(&self, key: &str, window: Duration) -> Result<WindowCount, CacheError> {
        let now = Instant::now();
        let entry = self.windows.entry(key.to_string()).and_upsert_with(|current| match current {
            Some(e) if e.value().ends > now => Window { count: e.value().count + 1, ends: e.value().ends },
            _ => Window { count: 1, ends: now + window },
        });
        let w = entry.into_value();
        Ok(WindowCount { count: w.count, resets_in: w.ends.saturating_duration_since(now) })
    }

    async fn ping(&self) -> Result<(), CacheError> {
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}
