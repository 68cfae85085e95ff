//! Isolated slices of the real PostgreSQL, Redis, RabbitMQ and S3-compatible servers.

use platform::db::Database;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

pub fn postgres_admin_url() -> String {
    env_or("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
}
pub fn redis_url() -> String {
    env_or("TEST_REDIS_URL", "redis://127.0.0.1:6379")
}
pub fn amqp_url() -> String {
    env_or("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")
}
pub fn s3_endpoint() -> String {
    env_or("TEST_S3_ENDPOINT", "http://127.0.0.1:5000")
}

/// A name no other test uses: `prefix_` and 16 hex digits.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", &uuid::Uuid::now_v7().simple().to_string()[16..])
}

/// A PostgreSQL database created for one test and dropped when it ends.
pub struct TestPostgres {
    pub db: Database,
    pub url: String,
    pub name: String,
    admin_url: String,
}

fn with_database(url: &str, name: &str) -> String {
    // Replace the path of the URL (the database name), keeping any query string.
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..].find('/').map(|i| i + scheme_end).unwrap_or(base.len());
    let mut out = format!("{}/{}", &base[..host_end], name);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

async fn admin_client(admin_url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls).await.unwrap_or_else(|e| {
        panic!("PostgreSQL is required for this test and is unreachable at {}: {}", redact(admin_url), chain(&e))
    });
    tokio::spawn(conn);
    client
}

impl TestPostgres {
    pub async fn new() -> TestPostgres {
        let admin_url = postgres_admin_url();
        let name = unique_name("trellis_test");
        let admin = admin_client(&admin_url).await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let url = with_database(&admin_url, &name);
        let db = Database::connect(&url).await.unwrap_or_else(|e| panic!("cannot connect to {name}: {e}"));
        TestPostgres { db, url, name, admin_url }
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        block_on_thread(async move {
            if let Ok((client, conn)) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await {
                tokio::spawn(conn);
                let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
            }
        });
    }
}

/// Runs `work` to completion on a short-lived runtime on its own thread: `Drop` runs outside
/// async code, and possibly inside another runtime, where blocking on a future is not allowed.
fn block_on_thread<F>(work: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let _ = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return;
        };
        rt.block_on(work);
    })
    .join();
}

/// A bucket on the S3-compatible test server (moto, started if needed by
/// [`ensure_s3_server`](crate::moto::ensure_s3_server)). On drop, every object in it is deleted
/// and then the bucket itself; cleanup is best effort and bounded to a few seconds.
pub struct TestBucket {
    pub endpoint: String,
    pub bucket: String,
}

impl TestBucket {
    pub async fn new() -> TestBucket {
        let endpoint = tokio::task::spawn_blocking(crate::moto::ensure_s3_server)
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        let bucket = unique_name("trellis-test").replace('_', "-");
        // moto accepts unsigned requests; object_store has no call to create a bucket.
        let res = reqwest::Client::new()
            .put(format!("{endpoint}/{bucket}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("the S3-compatible server is required and unreachable at {endpoint}: {e}"));
        assert!(res.status().is_success(), "cannot create bucket {bucket} at {endpoint}: {}", res.status());
        TestBucket { endpoint, bucket }
    }

    pub fn location(&self) -> platform::objects::S3Location {
        platform::objects::S3Location {
            endpoint: self.endpoint.clone(),
            bucket: self.bucket.clone(),
            region: "us-east-1".into(),
            access_key_id: "test".into(),
            secret_access_key: "test".into(),
        }
    }
}

impl Drop for TestBucket {
    fn drop(&mut self) {
        let (location, endpoint, bucket) = (self.location(), self.endpoint.clone(), self.bucket.clone());
        block_on_thread(async move {
            use futures::TryStreamExt;
            use platform::objects::ObjectStoreExt;
            let cleanup = async {
                if let Ok(store) = platform::objects::s3(&location)
                    && let Ok(objects) = store.list(None).try_collect::<Vec<_>>().await
                {
                    for meta in objects {
                        let _ = store.delete(&meta.location).await;
                    }
                }
                let _ = reqwest::Client::new().delete(format!("{endpoint}/{bucket}")).send().await;
            };
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), cleanup).await;
        });
    }
}

/// A Redis key prefix of its own (`trellis_test_<hex>:`), checked reachable on creation; every key
/// under it is deleted on drop.
pub struct TestRedis {
    pub url: String,
    pub prefix: String,
}

impl TestRedis {
    pub async fn new() -> TestRedis {
        let url = redis_url();
        let prefix = format!("{}:", unique_name("trellis_test"));
        let redis = TestRedis { url, prefix };
        // Prove it answers now, so an absent Redis fails here with its address.
        let cache = redis.cache().await;
        platform::cache::Cache::ping(&cache)
            .await
            .unwrap_or_else(|e| panic!("Redis is required for this test and does not answer at {}: {e}", redis.url));
        redis
    }

    /// The server's `host:port` (what a [`TcpProxy`](crate::TcpProxy) in front of it targets).
    pub fn address(&self) -> String {
        let (_, after_scheme) = self.url.split_once("://").unwrap_or(("", &self.url));
        let host_port = after_scheme.rsplit_once('@').map_or(after_scheme, |(_, h)| h);
        let host_port = host_port.split('/').next().unwrap_or(host_port);
        if host_port.contains(':') { host_port.to_string() } else { format!("{host_port}:6379") }
    }

    /// This server's URL with its `host:port` replaced by `addr` (a proxy's), credentials and
    /// database kept.
    pub fn url_through(&self, addr: std::net::SocketAddr) -> String {
        self.url.replacen(&self.address(), &addr.to_string(), 1)
    }

    /// A `RedisCache` storing its keys under this prefix.
    pub async fn cache(&self) -> platform::cache::RedisCache {
        platform::cache::RedisCache::connect(&self.url, &self.prefix)
            .await
            .unwrap_or_else(|e| panic!("Redis is required for this test and is unreachable at {}: {e}", self.url))
    }

    /// The keys currently stored under this prefix (full names, prefix included).
    pub fn keys(&self) -> Vec<String> {
        use redis::Commands;
        let Ok(client) = redis::Client::open(self.url.as_str()) else { return Vec::new() };
        let Ok(mut conn) = client.get_connection_with_timeout(std::time::Duration::from_secs(2)) else {
            return Vec::new();
        };
        let pattern = format!("{}*", self.prefix);
        match conn.scan_match::<_, String>(&pattern) {
            Ok(iter) => iter.filter_map(Result::ok).collect(),
            Err(_) => Vec::new(),
        }
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let keys = self.keys();
        if keys.is_empty() {
            return;
        }
        if let Ok(client) = redis::Client::open(self.url.as_str())
            && let Ok(mut conn) = client.get_connection_with_timeout(std::time::Duration::from_secs(2))
        {
            let _ = redis::cmd("DEL").arg(&keys).exec(&mut conn);
        }
    }
}

/// A RabbitMQ namespace of its own: the exchange `<namespace>.events`, for each of the given
/// consumer groups the queue `<namespace>.<group>`, and the dead letters' exchange and queue
/// `<namespace>.dead`. On drop the queues and the exchanges are deleted (deleting one that was
/// never declared is harmless).
pub struct TestRabbit {
    pub url: String,
    pub namespace: String,
    groups: Vec<String>,
}

impl TestRabbit {
    /// A fresh namespace whose queues for `groups` are deleted at the end of the test.
    pub fn new(groups: &[&str]) -> TestRabbit {
        TestRabbit {
            url: amqp_url(),
            namespace: unique_name("trellis_test"),
            groups: groups.iter().map(|g| (*g).to_string()).collect(),
        }
    }

    /// A `RabbitMqBus` in this namespace.
    pub async fn bus(&self) -> platform::bus::RabbitMqBus {
        platform::bus::RabbitMqBus::connect(&self.url, &self.namespace).await.unwrap_or_else(|e| {
            panic!("RabbitMQ is required for this test and is unreachable at {}: {e:#}", redact(&self.url))
        })
    }

    pub fn exchange(&self) -> String {
        format!("{}.events", self.namespace)
    }

    pub fn queue(&self, group: &str) -> String {
        format!("{}.{group}", self.namespace)
    }

    /// The dead-letter exchange and its queue (same name).
    pub fn dead(&self) -> String {
        format!("{}.dead", self.namespace)
    }
}

/// An error and its sources, `: `-separated (tokio-postgres hides the cause in `source`).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn redact(url: &str) -> String {
    platform::db::redact_url(url)
}

impl Drop for TestRabbit {
    fn drop(&mut self) {
        let url = self.url.clone();
        let queues: Vec<String> = self.groups.iter().map(|g| self.queue(g)).chain([self.dead()]).collect();
        let exchanges = [self.exchange(), self.dead()];
        block_on_thread(async move {
            use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
            let cleanup = async {
                let conn = lapin::Connection::connect(&url, lapin::ConnectionProperties::default()).await?;
                let channel = conn.create_channel().await?;
                for queue in queues {
                    channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await?;
                }
                for exchange in exchanges {
                    channel.exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default()).await?;
                }
                conn.close(200, "test over".into()).await
            };
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), cleanup).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn redis_address_and_url_through_a_proxy() {
        let r = |url: &str| super::TestRedis { url: url.into(), prefix: String::new() };
        let addr: std::net::SocketAddr = "127.0.0.1:20001".parse().unwrap();
        assert_eq!(r("redis://127.0.0.1:16379").address(), "127.0.0.1:16379");
        assert_eq!(r("redis://:pw@127.0.0.1:6379/2").url_through(addr), "redis://:pw@127.0.0.1:20001/2");
        assert_eq!(r("redis://127.0.0.1").address(), "127.0.0.1:6379");
    }

    #[test]
    fn replaces_only_the_database_name() {
        assert_eq!(with_database("postgres://u@h:5432/test", "x"), "postgres://u@h:5432/x");
        assert_eq!(with_database("postgres://u@h/test?sslmode=disable", "x"), "postgres://u@h/x?sslmode=disable");
        assert_eq!(with_database("postgres://u@h:5432", "x"), "postgres://u@h:5432/x");
    }
}
