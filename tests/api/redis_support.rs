//! Helpers for tests against a real Redis. Nothing here skips: if Redis is
//! unreachable the tests panic with a message saying so.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use deadpool_redis::redis;
use deadpool_redis::{Config, Pool, Runtime};
use product_api::infra::rate_limit::{RedisRateLimiter, RedisRateLimiterConfig};

pub fn pool(url: &str) -> Pool {
    Config::from_url(url)
        .create_pool(Some(Runtime::Tokio1))
        .expect("create Redis pool")
}

/// A pool on the shared Redis, verified with a PING so an unreachable server
/// fails the test immediately and unmistakably.
pub async fn shared_pool() -> Pool {
    let url = crate::helpers::redis_url();
    let pool = pool(&url);
    let ping = async {
        let mut conn = pool.get().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map_err(deadpool_redis::PoolError::Backend)
    };
    match tokio::time::timeout(Duration::from_secs(5), ping).await {
        Ok(Ok(_)) => pool,
        Ok(Err(e)) => panic!("Redis at {url} is unreachable ({e}); these tests need a real Redis"),
        Err(_) => panic!("Redis at {url} did not answer PING within 5 s"),
    }
}

/// A key prefix no other test (or earlier run) uses, so tests can run in
/// parallel against the same Redis.
pub fn unique_prefix(test: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    format!(
        "rltest:{test}:{}:{nanos}:{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn limiter_with(pool: Pool, test: &str) -> RedisRateLimiter {
    RedisRateLimiter::new(
        pool,
        RedisRateLimiterConfig {
            key_prefix: unique_prefix(test),
            ..RedisRateLimiterConfig::default()
        },
    )
}

pub async fn redis_limiter(test: &str) -> RedisRateLimiter {
    limiter_with(shared_pool().await, test)
}

pub fn now_epoch_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// A private redis-server child process on a free loopback port, for tests
/// that must stop and restart Redis or read its global command counters
/// without disturbing the shared server.
pub struct TempRedis {
    port: u16,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl TempRedis {
    pub fn start() -> Self {
        let port = crate::helpers::free_port();
        let dir = std::env::temp_dir().join(format!("ratelimit-test-redis-{port}"));
        std::fs::create_dir_all(&dir).expect("create redis dir");
        let mut redis = Self {
            port,
            dir,
            child: None,
        };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server on the same port and waits until it answers.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server (is it installed?)");
        self.child = Some(child);
        let client = redis::Client::open(self.url()).expect("client");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ready = client
                .get_connection()
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if ready.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "private redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (like a crash: no clean shutdown).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Synchronous connection for inspecting the private server.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .expect("client")
            .get_connection()
            .expect("connect to private redis")
    }
}

impl Drop for TempRedis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
