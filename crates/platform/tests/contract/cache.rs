//! The `Cache` contract: bytes with a time to live, overwrites, deletes, fixed-window counters,
//! and separate caches that never see each other's keys. Run on `MemoryCache` and on
//! `RedisCache` (a unique key prefix per test, whose keys are deleted afterwards).
//!
//! Times to live run on the real clock (moka's and Redis's own). A check that an entry is gone
//! sleeps until its TTL has surely passed, counted from when `set` returned, so a slow machine
//! only makes it look later; a check that an entry is still there is made only while its TTL
//! surely has not passed, counted from before `set` began.

use std::time::{Duration, Instant};

use platform::cache::{Cache, MemoryCache, RedisCache};
use test_support::TestRedis;

/// A time to live no test outlasts.
const LONG: Duration = Duration::from_secs(60);
const SHORT: Duration = Duration::from_millis(200);
/// Redis keeps expiries in milliseconds and moka reads a coarse clock: what an expiry may lag
/// behind the exact time to live.
const ROUNDING: Duration = Duration::from_millis(50);

/// A cache adapter ready for one test, cleaned up on drop.
pub trait Fixture: Sized {
    async fn new() -> Self;
    fn cache(&self) -> &dyn Cache;
}

pub struct Memory(MemoryCache);

impl Fixture for Memory {
    async fn new() -> Self {
        Memory(MemoryCache::default())
    }
    fn cache(&self) -> &dyn Cache {
        &self.0
    }
}

/// Fields drop in order: the connection first, then the prefix's keys.
pub struct Redis {
    cache: RedisCache,
    redis: TestRedis,
}

impl Fixture for Redis {
    async fn new() -> Self {
        let redis = TestRedis::new().await;
        Redis { cache: redis.cache().await, redis }
    }
    fn cache(&self) -> &dyn Cache {
        &self.cache
    }
}

/// Sets `key` for `ttl` and reads it back: it must be there if the read ended before `ttl` had
/// run from the start of the set (on a machine too slow for that, nothing can be concluded and
/// nothing is claimed). Returns when the set returned: the entry expires by then plus `ttl`.
async fn set_and_read_back(cache: &dyn Cache, key: &str, value: &[u8], ttl: Duration) -> Instant {
    let started = Instant::now();
    cache.set(key, value, ttl).await.unwrap();
    let set = Instant::now();
    let got = cache.get(key).await.unwrap();
    if started.elapsed() < ttl {
        assert_eq!(got.as_deref(), Some(value), "{key} is there before its TTL of {ttl:?}");
    }
    set
}

/// Sleeps until `ttl` (and the clocks' rounding) has passed since `set`, when the entry's set
/// returned, then checks that `key` is gone. A late wake-up changes nothing: expiry is final.
async fn gone_after(cache: &dyn Cache, key: &str, set: Instant, ttl: Duration) {
    tokio::time::sleep_until((set + ttl + ROUNDING).into()).await;
    assert_eq!(cache.get(key).await.unwrap(), None, "{key} must be gone once its TTL of {ttl:?} has passed");
}

async fn set_get_delete<F: Fixture>() {
    let f = F::new().await;
    let c = f.cache();
    let value = b"\x00binary\xffvalue".to_vec();
    c.set("k", &value, LONG).await.unwrap();
    assert_eq!(c.get("k").await.unwrap(), Some(value));
    c.delete("k").await.unwrap();
    assert_eq!(c.get("k").await.unwrap(), None);
    // Deleting what is not there is not an error.
    c.delete("k").await.unwrap();
    c.set("empty", b"", LONG).await.unwrap();
    assert_eq!(c.get("empty").await.unwrap(), Some(Vec::new()), "an empty value is not a miss");
}

async fn get_many_answers_each_key_in_order<F: Fixture>() {
    let f = F::new().await;
    let c = f.cache();
    c.set("a", b"1", LONG).await.unwrap();
    c.set("c", b"", LONG).await.unwrap();
    let got = c.get_many(&["c", "b", "a", "a"]).await.unwrap();
    assert_eq!(got, vec![Some(Vec::new()), None, Some(b"1".to_vec()), Some(b"1".to_vec())]);
    assert_eq!(c.get_many(&[]).await.unwrap(), Vec::<Option<Vec<u8>>>::new());
}

async fn missing_key_is_none<F: Fixture>() {
    let f = F::new().await;
    assert_eq!(f.cache().get("never-set").await.unwrap(), None);
}

async fn entries_expire_after_their_ttl<F: Fixture>() {
    let f = F::new().await;
    let c = f.cache();
    c.set("long", b"v", LONG).await.unwrap();
    let set = set_and_read_back(c, "short", b"v", SHORT).await;
    gone_after(c, "short", set, SHORT).await;
    assert!(c.get("long").await.unwrap().is_some(), "a longer TTL is unaffected");
}

async fn overwrite_replaces_value_and_ttl<F: Fixture>() {
    let f = F::new().await;
    let c = f.cache();
    c.set("k", b"one", SHORT).await.unwrap();
    let first = Instant::now();
    c.set("k", b"two", LONG).await.unwrap();
    assert_eq!(c.get("k").await.unwrap().as_deref(), Some(&b"two"[..]));
    // Past the first TTL for sure: had it stayed, the entry would be gone.
    tokio::time::sleep_until((first + SHORT + ROUNDING).into()).await;
    assert_eq!(c.get("k").await.unwrap().as_deref(), Some(&b"two"[..]), "the new TTL applies");
    let set = set_and_read_back(c, "k", b"three", SHORT).await;
    gone_after(c, "k", set, SHORT).await;
}

async fn incr_window_counts_and_resets<F: Fixture>() {
    let f = F::new().await;
    let c = f.cache();
    // Counting within one window: a window no test outlasts, so every hit falls inside it.
    let first = c.incr_window("rl", LONG).await.unwrap();
    assert_eq!(first.count, 1);
    assert!(
        first.resets_in > Duration::ZERO && first.resets_in <= LONG,
        "resets_in {:?} must lie within the window",
        first.resets_in
    );
    let second = c.incr_window("rl", LONG).await.unwrap();
    let third = c.incr_window("rl", LONG).await.unwrap();
    assert_eq!((second.count, third.count), (2, 3));
    assert!(third.resets_in <= first.resets_in, "the window does not restart on later hits");
    assert_eq!(c.incr_window("other", LONG).await.unwrap().count, 1, "windows are per key");
    // After the window, counting starts again from one with a full window. One hit only before:
    // a second could already fall after a short window on a slow machine.
    let window = Duration::from_millis(500);
    let hit = c.incr_window("short", window).await.unwrap();
    assert_eq!(hit.count, 1);
    // The window ends at most `resets_in` after the hit returned; sleep past that.
    tokio::time::sleep(hit.resets_in + ROUNDING).await;
    let next = c.incr_window("short", window).await.unwrap();
    assert_eq!(next.count, 1, "a new window starts at one");
    assert!(next.resets_in > window / 2 && next.resets_in <= window, "new window: {:?}", next.resets_in);
    // Counters and plain entries do not share keys in a way that breaks either.
    assert_eq!(c.get("rl-missing").await.unwrap(), None);
}

async fn separate_caches_do_not_collide<F: Fixture>() {
    let (a, b) = (F::new().await, F::new().await);
    let (a, b) = (a.cache(), b.cache());
    a.set("shared", b"a", LONG).await.unwrap();
    b.set("shared", b"b", LONG).await.unwrap();
    assert_eq!(a.get("shared").await.unwrap().as_deref(), Some(&b"a"[..]));
    assert_eq!(b.get("shared").await.unwrap().as_deref(), Some(&b"b"[..]));
    a.delete("shared").await.unwrap();
    assert_eq!(a.get("shared").await.unwrap(), None);
    assert_eq!(b.get("shared").await.unwrap().as_deref(), Some(&b"b"[..]));
    assert_eq!(a.incr_window("n", LONG).await.unwrap().count, 1);
    assert_eq!(b.incr_window("n", LONG).await.unwrap().count, 1);
}

async fn add_never_overwrites<F: Fixture>() {
    let f = F::new().await;
    let c = f.cache();
    assert!(c.add("k", b"first", LONG).await.unwrap(), "an absent key is added");
    assert!(!c.add("k", b"second", LONG).await.unwrap(), "a present key is left alone");
    assert_eq!(c.get("k").await.unwrap().as_deref(), Some(&b"first"[..]));
    c.set("r", b"0", LONG).await.unwrap();
    assert!(!c.add("r", b"1", LONG).await.unwrap());
    assert_eq!(c.get("r").await.unwrap().as_deref(), Some(&b"0"[..]), "a set value survives an add");
    assert!(c.add("t", b"x", SHORT).await.unwrap());
    // Sleeping from when the add returned: its TTL has surely passed then.
    tokio::time::sleep(SHORT * 2).await;
    assert!(c.add("t", b"y", LONG).await.unwrap(), "an expired key counts as absent");
    assert_eq!(c.get("t").await.unwrap().as_deref(), Some(&b"y"[..]));
}

async fn ping_answers<F: Fixture>() {
    let f = F::new().await;
    f.cache().ping().await.unwrap();
    assert!(["memory", "redis"].contains(&f.cache().kind()));
}

macro_rules! cache_contract {
    ($adapter:ident, $fixture:ty) => {
        mod $adapter {
            use super::*;
            cache_contract!(@tests $fixture;
                set_get_delete,
                get_many_answers_each_key_in_order,
                missing_key_is_none,
                entries_expire_after_their_ttl,
                overwrite_replaces_value_and_ttl,
                incr_window_counts_and_resets,
                separate_caches_do_not_collide,
                add_never_overwrites,
                ping_answers,
            );
        }
    };
    (@tests $fixture:ty; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                super::$check::<$fixture>().await;
            }
        )*
    };
}

cache_contract!(memory, Memory);
cache_contract!(redis, Redis);

/// Redis only: keys live under the fixture's prefix and are all deleted when the test ends.
#[tokio::test]
async fn redis_keys_stay_under_the_prefix_and_are_cleaned_up() {
    let probe = TestRedis::new().await;
    let prefix = {
        let f = Redis::new().await;
        f.cache.set("a", b"1", LONG).await.unwrap();
        f.cache.incr_window("b", LONG).await.unwrap();
        let mut keys = f.redis.keys();
        keys.sort();
        assert_eq!(keys, [format!("{}a", f.redis.prefix), format!("{}b", f.redis.prefix)]);
        f.redis.prefix.clone()
    };
    let client = ::redis::Client::open(probe.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let left: Vec<String> = ::redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut conn).await.unwrap();
    assert!(left.is_empty(), "keys left behind: {left:?}");
}
