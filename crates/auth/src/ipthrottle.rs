//! Per-client-address limit on failed credential attempts (docs/SECURITY.md LG-1): past `limit`
//! failures from one address within `window`, every credential attempt from it gets 429 until
//! the window ends. Counted in the shared cache (Redis when distributed); when that fails, in
//! this process's memory with the same limit, never "no limit". The per-account limit, kept in
//! the database, is the other half.
//!
//! Every per-address key in auth goes through [`client_key`]: an IPv6 client is its /64 (one
//! subscriber usually holds a whole /64, so counting single addresses would give it 2^64
//! budgets), an IPv4 client (or an IPv4-mapped IPv6 address) its own address. [`ClientBudget`]
//! is the same idea for requests that cost work whether they succeed or not (registration).

use std::net::{IpAddr, Ipv6Addr};
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
        format!("auth:ip-blocked:{}", client_key(ip))
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
        let key = format!("auth:ip-failures:{}", client_key(ip));
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

/// The client an address stands for in per-address limits: an IPv6 address's /64, an IPv4
/// address (mapped or not) itself.
pub fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                format!("{}/64", Ipv6Addr::from(prefix))
            }
        },
    }
}

/// A per-client budget of requests in a window (registration: docs/SECURITY.md LG-7): each
/// request takes one, whatever its outcome; past `limit` the client waits for the window to end.
/// Counted like the failures above: in the shared cache, else in this process's memory.
pub struct ClientBudget {
    shared: Arc<dyn Cache>,
    local: MemoryCache,
    name: &'static str,
    limit: u64,
    window: Duration,
}

impl ClientBudget {
    pub fn new(shared: Arc<dyn Cache>, name: &'static str, limit: u64, window: Duration) -> Self {
        Self { shared, local: MemoryCache::new(4 * 1024 * 1024), name, limit: limit.max(1), window }
    }

    /// Takes one request from `ip`'s budget; `Err(seconds to wait)` once it is spent. A request
    /// without a known address is not limited here (the gateway's limits still apply).
    pub async fn take(&self, ip: Option<IpAddr>) -> Result<(), u64> {
        let Some(ip) = ip else { return Ok(()) };
        let key = format!("auth:budget:{}:{}", self.name, client_key(ip));
        let count = match self.shared.incr_window(&key, self.window).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "shared budget counter unavailable; counting locally");
                match self.local.incr_window(&key, self.window).await {
                    Ok(c) => c,
                    Err(_) => return Ok(()),
                }
            }
        };
        if count.count > self.limit {
            metrics::counter!("trellis_auth_budget_spent_total", "budget" => self.name).increment(1);
            if count.count == self.limit + 1 {
                tracing::warn!(client_ip = %client_key(ip), budget = self.name, "a client spent its budget");
            }
            return Err(count.resets_in.as_secs().max(1));
        }
        Ok(())
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

    #[tokio::test]
    async fn ipv6_addresses_count_by_their_64() {
        let t = IpThrottle::new(Arc::new(MemoryCache::default()), 3, Duration::from_secs(24 * 3600));
        let ip = |s: &str| -> Option<IpAddr> { Some(s.parse().unwrap()) };
        // Three addresses of one /64: one client.
        for a in ["2001:db8:1:2::1", "2001:db8:1:2:ffff::9", "2001:db8:1:2:abcd:1:2:3"] {
            assert_eq!(t.blocked(ip(a)).await, None);
            t.record_failure(ip(a)).await;
        }
        assert!(t.blocked(ip("2001:db8:1:2::77")).await.is_some(), "the whole /64 is blocked");
        assert_eq!(t.blocked(ip("2001:db8:1:3::1")).await, None, "the next /64 is another client");
    }

    #[test]
    fn client_keys() {
        let k = |s: &str| client_key(s.parse().unwrap());
        assert_eq!(k("192.0.2.7"), "192.0.2.7");
        assert_eq!(k("::ffff:192.0.2.7"), "192.0.2.7", "a mapped IPv4 address is that address");
        assert_eq!(k("2001:db8:aa:bb:1:2:3:4"), "2001:db8:aa:bb::/64");
        assert_eq!(k("2001:db8:aa:bb::"), k("2001:db8:aa:bb:ffff:ffff:ffff:ffff"));
        assert_ne!(k("2001:db8:aa:bb::"), k("2001:db8:aa:bc::"));
    }

    #[tokio::test]
    async fn a_budget_counts_every_request_per_client() {
        let b = ClientBudget::new(Arc::new(MemoryCache::default()), "test", 2, Duration::from_secs(24 * 3600));
        let (a, other): (IpAddr, IpAddr) = ("2001:db8::1".parse().unwrap(), "198.51.100.1".parse().unwrap());
        assert_eq!(b.take(Some(a)).await, Ok(()));
        assert_eq!(b.take(Some("2001:db8::2".parse().unwrap())).await, Ok(()), "same /64, second request");
        let wait = b.take(Some(a)).await.expect_err("the third request of the /64 waits");
        assert!((1..=24 * 3600).contains(&wait), "{wait}");
        assert_eq!(b.take(Some(other)).await, Ok(()), "another client has its own budget");
        assert_eq!(b.take(None).await, Ok(()));
    }
}
