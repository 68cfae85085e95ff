//! The cache port: bytes with a time to live, and fixed-window counters for rate limits.
//! In-process (moka) all-in-one, Redis distributed. A cache error is never fatal to a request:
//! callers treat it as a miss (docs/SECURITY.md R1).

mod memory;
mod redis;

pub use memory::MemoryCache;
pub use redis::RedisCache;

use std::time::Duration;

use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache unavailable: {0}")]
    Unavailable(String),
}

/// The count of a fixed window after an increment, and how long until the window resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCount {
    pub count: u64,
    pub resets_in: Duration,
}

#[async_trait]
pub trait Cache: Send + Sync {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError>;
    /// The values of `keys`, in order, in one round trip where the adapter can (Redis `MGET`).
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            values.push(self.get(key).await?);
        }
        Ok(values)
    }
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError>;
    async fn delete(&self, key: &str) -> Result<(), CacheError>;
    /// Stores `value` only if `key` holds nothing; returns whether it did. An existing entry
    /// (a revocation, say) is never overwritten.
    async fn add(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError>;
    /// Adds one to the counter of the current window of length `window`, starting the window at
    /// the first increment.
    async fn incr_window(&self, key: &str, window: Duration) -> Result<WindowCount, CacheError>;
    async fn ping(&self) -> Result<(), CacheError>;
    /// `memory` or `redis`, for readiness and logs.
    fn kind(&self) -> &'static str;
}
