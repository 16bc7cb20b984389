//! Shared helpers for the integration tests. Tests talk to a real Redis;
//! they fail (never skip) when it is unreachable.
// Test-only helpers: panicking on setup failure is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use product_api::infra::event_bus::{Notification, RedisBus, RedisBusConfig};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

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
        crate::helpers::redis_url()
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
