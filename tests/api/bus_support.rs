//! Shared helpers for the integration tests. Tests talk to a real Redis;
//! they fail (never skip) when it is unreachable.
// Test-only helpers: panicking on setup failure is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use product_api::infra::event_bus::{Notification, RedisBus, RedisBusConfig};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The shared Redis (override with `TEST_REDIS_URL`).
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub fn unique_channel(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("eventbus-test:{test}:{}:{nanos}", std::process::id())
}

pub fn notification(id: i64) -> Notification {
    Notification {
        id,
        seller_id: format!("seller-{}", id % 7),
        event_type: "product.updated".into(),
        body: format!(r#"{{"id":{id},"name":"café ✓ \u00e9 \"quoted\" \\ {id}","tags":["a\nb"]}}"#),
    }
}

pub fn batch(ids: std::ops::RangeInclusive<i64>) -> Vec<Notification> {
    ids.map(notification).collect()
}

/// Starts a bus and waits for its subscription; panics if Redis is
/// unreachable.
pub async fn start_connected(
    config: RedisBusConfig,
) -> (RedisBus, JoinHandle<()>, CancellationToken) {
    let shutdown = CancellationToken::new();
    let (bus, task) =
        RedisBus::start_with_config(config, shutdown.clone()).expect("RedisBus::start_with_config");
    assert!(
        bus.wait_connected(Duration::from_secs(5)).await,
        "RedisBus did not subscribe within 5 s: is Redis running at {}? \
         (redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save \"\" --appendonly no)",
        redis_url()
    );
    (bus, task, shutdown)
}

/// Receives exactly `n` notifications; panics on lag, close or timeout.
pub async fn recv_n(
    rx: &mut broadcast::Receiver<Arc<Notification>>,
    n: usize,
    within: Duration,
) -> Vec<Notification> {
    let deadline = tokio::time::Instant::now() + within;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(item)) => out.push((*item).clone()),
            Ok(Err(RecvError::Lagged(k))) => {
                panic!("receiver lagged by {k} after {} items", out.len())
            }
            Ok(Err(RecvError::Closed)) => panic!("channel closed after {} items", out.len()),
            Err(_) => panic!("timed out after {within:?} with {}/{n} items", out.len()),
        }
    }
    out
}

/// Asserts nothing more arrives within `quiet`.
pub async fn assert_no_more(rx: &mut broadcast::Receiver<Arc<Notification>>, quiet: Duration) {
    if let Ok(item) = tokio::time::timeout(quiet, rx.recv()).await {
        panic!("unexpected extra item: {item:?}");
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// A private `redis-server` child process, killed on drop.
pub struct RedisChild {
    pub port: u16,
    child: Option<Child>,
}

impl RedisChild {
    pub fn spawn(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server (is it installed and on PATH?)");
        let mut me = Self {
            port,
            child: Some(child),
        };
        me.wait_ready();
        me
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("redis-server on port {} exited early: {status}", self.port);
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} not accepting connections after 10 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisChild {
    fn drop(&mut self) {
        self.kill();
    }
}
