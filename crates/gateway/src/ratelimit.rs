//! Rate limiting per client: a fixed window per caller (user id when authenticated, else the
//! peer address) counted in the shared cache (Redis when distributed). When the shared cache
//! fails, counting falls back to this instance's memory with the same limit, never to "no limit"
//! (docs/SECURITY.md R1).

use std::sync::Arc;
use std::time::Duration;

use platform::cache::{Cache, MemoryCache, WindowCount};

pub struct RateLimiter {
    shared: Arc<dyn Cache>,
    local: MemoryCache,
    pub limit: u64,
    pub window: Duration,
}

/// The verdict for one request, with what the `RateLimit-*` headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    pub reset_secs: u64,
}

impl RateLimiter {
    pub fn new(shared: Arc<dyn Cache>, limit: u64, window: Duration) -> Self {
        Self { shared, local: MemoryCache::new(16 * 1024 * 1024), limit, window }
    }

    pub async fn check(&self, client: &str) -> Verdict {
        let key = format!("rl:{client}");
        let count = match self.shared.incr_window(&key, self.window).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "shared rate-limit counter unavailable; counting locally");
                metrics::counter!("trellis_ratelimit_local_fallback_total").increment(1);
                self.local
                    .incr_window(&key, self.window)
                    .await
                    .unwrap_or(WindowCount { count: self.limit + 1, resets_in: self.window })
            }
        };
        Verdict {
            allowed: count.count <= self.limit,
            limit: self.limit,
            remaining: self.limit.saturating_sub(count.count),
            reset_secs: count.resets_in.as_secs().max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_limit_holds_per_client() {
        // A window far longer than the test can take: the four requests always share it.
        let rl = RateLimiter::new(Arc::new(MemoryCache::default()), 3, Duration::from_secs(24 * 3600));
        for expected_remaining in [2, 1, 0] {
            let v = rl.check("a").await;
            assert!(v.allowed);
            assert_eq!(v.remaining, expected_remaining);
        }
        assert!(!rl.check("a").await.allowed);
        assert!(rl.check("b").await.allowed, "another client has its own window");
    }
}
