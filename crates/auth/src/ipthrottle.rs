//! Per-client-address limit on failed credential attempts (docs/SECURITY.md LG-1): past `limit`
//! failures from one address within `window`, every credential attempt from it gets 429 until
//! the window ends. Counted in the shared cache (Redis when distributed); when that fails, in
//! this process's memory with the same limit, never "no limit". The per-account limit, kept in
//! the database, is the other half.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use platform::cache::{Cache, MemoryCache};

pub struct IpThrottle {
    shared: Arc<dyn Cache>,
    local: MemoryCache,
    limit: u64,
    window: Duration,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl IpThrottle {
    pub fn new(shared: Arc<dyn Cache>, limit: u64, window: Duration) -> Self {
        Self { shared, local: MemoryCache::new(8 * 1024 * 1024), limit: limit.max(1), window }
    }

    fn block_key(ip: IpAddr) -> String {
        format!("auth:ip-blocked:{ip}")
    }

    /// Seconds to wait when `ip` is blocked.
    pub async fn blocked(&self, ip: Option<IpAddr>) -> Option<u64> {
        let key = Self::block_key(ip?);
        let marker = match self.shared.get(&key).await {
            Ok(m) => m,
            Err(_) => self.local.get(&key).await.ok().flatten(),
        };
        let until: u64 = std::str::from_utf8(&marker?).ok()?.parse().ok()?;
        let now = unix_now();
        (until > now).then(|| until - now)
    }

    /// Counts one failed attempt from `ip`, and blocks it once past the limit.
    pub async fn record_failure(&self, ip: Option<IpAddr>) {
        let Some(ip) = ip else { return };
        let key = format!("auth:ip-failures:{ip}");
        let (count, cache): (_, &dyn Cache) = match self.shared.incr_window(&key, self.window).await {
            Ok(c) => (c, self.shared.as_ref()),
            Err(e) => {
                tracing::debug!(error = %e, "shared failure counter unavailable; counting locally");
                match self.local.incr_window(&key, self.window).await {
                    Ok(c) => (c, &self.local),
                    Err(_) => return,
                }
            }
        };
        if count.count >= self.limit {
            let ttl = count.resets_in.max(Duration::from_secs(1));
            let until = (unix_now() + ttl.as_secs().max(1)).to_string();
            if cache.set(&Self::block_key(ip), until.as_bytes(), ttl).await.is_err() {
                let _ = self.local.set(&Self::block_key(ip), until.as_bytes(), ttl).await;
            }
            metrics::counter!("trellis_auth_ip_blocked_total").increment(1);
            tracing::warn!(client_ip = %ip, failures = count.count, "too many failed credential attempts from one address");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_address_is_blocked_after_the_limit_and_others_are_not() {
        // A window far longer than the test can take: the three failures always share it.
        const WINDOW: u64 = 24 * 3600;
        let t = IpThrottle::new(Arc::new(MemoryCache::default()), 3, Duration::from_secs(WINDOW));
        let (a, b): (IpAddr, IpAddr) = ([192, 0, 2, 1].into(), [192, 0, 2, 2].into());
        for _ in 0..2 {
            t.record_failure(Some(a)).await;
            assert_eq!(t.blocked(Some(a)).await, None);
        }
        t.record_failure(Some(a)).await;
        let wait = t.blocked(Some(a)).await.expect("blocked at the limit");
        assert!((1..=WINDOW).contains(&wait), "{wait}");
        assert_eq!(t.blocked(Some(b)).await, None);
        assert_eq!(t.blocked(None).await, None, "an unknown address is never blocked by this limit");
    }
}
