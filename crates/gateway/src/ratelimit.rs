//! Rate limiting per client: a fixed window per caller counted in the shared cache (Redis when
//! distributed). A signed-in caller (a token that verified) is counted by user id against the
//! signed-in budget; everyone else, including a request whose token did not verify, by client
//! address (IPv6 by /64, `platform::http::net::address_key`) against the anonymous budget. When
//! the shared cache fails, counting falls back to this instance's memory with the same limit,
//! never to "no limit" (docs/SECURITY.md R1).

use std::sync::Arc;
use std::time::Duration;

use platform::cache::{Cache, MemoryCache, WindowCount};

pub struct RateLimiter {
    shared: Arc<dyn Cache>,
    local: MemoryCache,
    /// Requests per window of an address without a valid token.
    pub limit: u64,
    /// Requests per window of a signed-in user.
    pub user_limit: u64,
    pub window: Duration,
}

/// Whom one request is counted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Client {
    /// A signed-in user (their token verified).
    User(uuid::Uuid),
    /// A client address key (`address_key`: IPv4, or an IPv6 /64).
    Address(String),
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
    /// `limit` for anonymous callers (per address), `user_limit` for signed-in ones (per user).
    pub fn new(shared: Arc<dyn Cache>, limit: u64, user_limit: u64, window: Duration) -> Self {
        Self { shared, local: MemoryCache::new(16 * 1024 * 1024), limit, user_limit, window }
    }

    pub async fn check(&self, client: &Client) -> Verdict {
        let (key, limit) = match client {
            Client::User(id) => (format!("rl:user:{id}"), self.user_limit),
            Client::Address(a) => (format!("rl:ip:{a}"), self.limit),
        };
        let count = match self.shared.incr_window(&key, self.window).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "shared rate-limit counter unavailable; counting locally");
                metrics::counter!("trellis_ratelimit_local_fallback_total").increment(1);
                self.local
                    .incr_window(&key, self.window)
                    .await
                    .unwrap_or(WindowCount { count: limit + 1, resets_in: self.window })
            }
        };
        Verdict {
            allowed: count.count <= limit,
            limit,
            remaining: limit.saturating_sub(count.count),
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
        let rl = RateLimiter::new(Arc::new(MemoryCache::default()), 3, 5, Duration::from_secs(24 * 3600));
        let a = Client::Address("192.0.2.1".into());
        for expected_remaining in [2, 1, 0] {
            let v = rl.check(&a).await;
            assert!(v.allowed);
            assert_eq!(v.remaining, expected_remaining);
        }
        assert!(!rl.check(&a).await.allowed);
        assert!(rl.check(&Client::Address("192.0.2.2".into())).await.allowed, "another client has its own window");
    }

    #[tokio::test]
    async fn signed_in_users_have_their_own_higher_budget() {
        let rl = RateLimiter::new(Arc::new(MemoryCache::default()), 1, 3, Duration::from_secs(24 * 3600));
        let user = Client::User(uuid::Uuid::now_v7());
        for _ in 0..3 {
            let v = rl.check(&user).await;
            assert!(v.allowed);
            assert_eq!(v.limit, 3);
        }
        assert!(!rl.check(&user).await.allowed);
        let v = rl.check(&Client::Address("192.0.2.1".into())).await;
        assert!(v.allowed && v.limit == 1, "the address budget is apart from the user's");
    }
}
