use std::time::{Duration, Instant};

use crate::bus_support::{batch, recv_n, unique_channel};
use crate::redis_support::TempRedis;
use product_api::infra::event_bus::{BusError, RedisBus, RedisBusConfig};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

async fn wait_until(what: &str, within: Duration, cond: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

/// Kill a private redis-server: publish fails fast; restart it on the same
/// port: the subscriber reconnects by itself and delivery resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_redis_restart() {
    let mut server = TempRedis::start();
    let config = RedisBusConfig::new(server.url(), unique_channel("reconnect"));
    let shutdown = CancellationToken::new();
    let (bus, task) = RedisBus::start_with_config(config, shutdown.clone()).unwrap();
    assert!(
        bus.wait_connected(Duration::from_secs(5)).await,
        "initial subscribe"
    );
    let epoch = bus.subscription_epoch();
    assert_eq!(*epoch.borrow(), 1);

    let mut rx = bus.subscribe();
    bus.publish(batch(1..=3)).await.unwrap();
    assert_eq!(
        recv_n(&mut rx, 3, Duration::from_secs(5)).await,
        batch(1..=3)
    );

    server.stop();
    wait_until(
        "is_connected() drops after kill",
        Duration::from_secs(3),
        || !bus.is_connected(),
    )
    .await;

    for attempt in 0..3 {
        let start = Instant::now();
        let result = bus.publish(batch(100..=101)).await;
        let took = start.elapsed();
        assert!(
            result.is_err(),
            "publish #{attempt} to a dead Redis succeeded"
        );
        assert!(
            took < Duration::from_secs(1),
            "publish #{attempt} took {took:?}"
        );
    }

    // Stay down long enough for several failed reconnect attempts.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!bus.is_connected());

    server.restart();
    let took = wait_until("reconnect after restart", Duration::from_secs(10), || {
        bus.is_connected()
    })
    .await;
    eprintln!("resubscribed {took:?} after redis-server restart");
    assert_eq!(*epoch.borrow(), 2, "epoch must change on resubscribe");

    bus.publish(batch(4..=6)).await.unwrap();
    assert_eq!(
        recv_n(&mut rx, 3, Duration::from_secs(5)).await,
        batch(4..=6)
    );

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("task stops after cancel")
        .unwrap();
    drop(server);
}

/// A peer that accepts TCP connections but never answers (a black hole):
/// publish still returns within its timeout, the bus never reports
/// connected, and shutdown is prompt even mid-connect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unresponsive_server_never_blocks_publish() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let black_hole = tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            // Read (so nothing blocks on a full buffer) and never answer.
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while matches!(sock.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });

    let mut config = RedisBusConfig::new(format!("redis://127.0.0.1:{port}"), "black-hole");
    config.publish_timeout = Duration::from_millis(500);
    let shutdown = CancellationToken::new();
    let (bus, task) = RedisBus::start_with_config(config, shutdown.clone()).unwrap();

    for _ in 0..2 {
        let start = Instant::now();
        let result = bus.publish(batch(1..=1)).await;
        let took = start.elapsed();
        assert!(
            matches!(
                result,
                Err(BusError::PublishTimeout(_)) | Err(BusError::Pool(_)) | Err(BusError::Redis(_))
            ),
            "expected a timeout-style error, got {result:?}"
        );
        assert!(took < Duration::from_millis(800), "publish took {took:?}");
    }
    assert!(!bus.is_connected());

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(1), task)
        .await
        .expect("task stops promptly while stuck connecting")
        .unwrap();
    black_hole.abort();
}

/// A server that stops answering on a still-open connection (simulated with
/// `CLIENT PAUSE`) is detected by the health PING; the bus reconnects once
/// the server answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_connection_is_detected_by_ping() {
    let server = TempRedis::start();
    let mut config = RedisBusConfig::new(server.url(), unique_channel("stalled"));
    config.ping_interval = Duration::from_millis(200);
    config.connect_timeout = Duration::from_millis(300);
    let shutdown = CancellationToken::new();
    let (bus, _task) = RedisBus::start_with_config(config, shutdown.clone()).unwrap();
    assert!(bus.wait_connected(Duration::from_secs(5)).await);
    let mut rx = bus.subscribe();

    let client = deadpool_redis::redis::Client::open(server.url()).unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = deadpool_redis::redis::cmd("CLIENT")
        .arg(&["PAUSE", "1500", "ALL"])
        .query_async(&mut admin)
        .await
        .unwrap();

    wait_until("stall detected", Duration::from_secs(2), || {
        !bus.is_connected()
    })
    .await;
    wait_until("reconnected after pause", Duration::from_secs(10), || {
        bus.is_connected()
    })
    .await;
    assert!(*bus.subscription_epoch().borrow() >= 2);

    bus.publish(batch(1..=2)).await.unwrap();
    assert_eq!(
        recv_n(&mut rx, 2, Duration::from_secs(5)).await,
        batch(1..=2)
    );
    shutdown.cancel();
}
