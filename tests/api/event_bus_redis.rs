use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::bus_support::{assert_no_more, batch, recv_n, start_connected, unique_channel};
use crate::helpers::redis_url;
use deadpool_redis::redis;
use product_api::infra::event_bus::{AnyBus, EventBus, Notification, RedisBusConfig};
use tokio::sync::broadcast::error::TryRecvError;

fn config(test: &str) -> RedisBusConfig {
    RedisBusConfig::new(redis_url(), unique_channel(test))
}

/// Two instances (two "server processes") on one channel: a batch published
/// on A reaches subscribers of both A and B, in order, fields intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_published_on_one_instance_reaches_both() {
    let cfg = config("two-instances");
    let (a, task_a, stop_a) = start_connected(cfg.clone()).await;
    let (b, task_b, stop_b) = start_connected(cfg).await;
    let mut a1 = a.subscribe();
    let mut a2 = a.subscribe();
    let mut b1 = b.subscribe();

    let sent = batch(1..=20);
    EventBus::publish(&a, sent.clone()).await.unwrap();

    for rx in [&mut a1, &mut a2, &mut b1] {
        let got = recv_n(rx, sent.len(), Duration::from_secs(5)).await;
        assert_eq!(got, sent);
        assert_no_more(rx, Duration::from_millis(100)).await;
    }
    assert!(sent[3].body.contains('✓') && sent[3].body.contains("\\\""));

    stop_a.cancel();
    stop_b.cancel();
    task_a.await.unwrap();
    task_b.await.unwrap();
}

/// 1,000 notifications in 100 sequential batches arrive in order, on the
/// publishing instance and on another one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_notifications_in_hundred_batches_stay_ordered() {
    let cfg = config("ordering");
    let (a, _task_a, stop_a) = start_connected(cfg.clone()).await;
    let (b, _task_b, stop_b) = start_connected(cfg).await;
    let mut on_a = a.subscribe();
    let mut on_b = b.subscribe();

    for k in 0..100 {
        a.publish(batch(k * 10 + 1..=k * 10 + 10)).await.unwrap();
    }

    let expected: Vec<i64> = (1..=1000).collect();
    for rx in [&mut on_a, &mut on_b] {
        let ids: Vec<i64> = recv_n(rx, 1000, Duration::from_secs(20))
            .await
            .into_iter()
            .map(|n| n.id)
            .collect();
        assert_eq!(ids, expected);
    }
    stop_a.cancel();
    stop_b.cancel();
}

/// A receiver that never reads does not hold back another one; it observes
/// `Lagged` and then only the newest `capacity` items.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_subscriber_does_not_block_others() {
    const TOTAL: usize = 10_000;
    const CAPACITY: usize = 1024;
    let mut cfg = config("slow-subscriber");
    cfg.capacity = CAPACITY;
    let (bus, _task, stop) = start_connected(cfg).await;

    let mut slow = bus.subscribe();
    let mut fast = bus.subscribe();
    let received = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&received);
    let reader = tokio::spawn(async move {
        let mut last = 0;
        for _ in 0..TOTAL {
            let n = tokio::time::timeout(Duration::from_secs(20), fast.recv())
                .await
                .expect("fast receiver timed out")
                .expect("fast receiver must neither lag nor close");
            assert_eq!(n.id, last + 1, "fast receiver saw a gap");
            last = n.id;
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });

    for k in 0..(TOTAL / 100) as i64 {
        // Keep the fast reader within half the capacity so the test proves
        // "the slow one blocks nothing" without depending on scheduling.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while (k as usize * 100).saturating_sub(received.load(Ordering::SeqCst)) > CAPACITY / 2 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "fast reader stalled"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        bus.publish(batch(k * 100 + 1..=k * 100 + 100))
            .await
            .unwrap();
    }
    tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("fast reader did not finish")
        .unwrap();

    let skipped = match slow.try_recv() {
        Err(TryRecvError::Lagged(k)) => k as usize,
        other => panic!("slow receiver should observe Lagged, got {other:?}"),
    };
    let mut rest = Vec::new();
    while let Ok(n) = slow.try_recv() {
        rest.push(n.id);
    }
    assert_eq!(skipped + rest.len(), TOTAL);
    assert_eq!(rest.len(), CAPACITY);
    assert_eq!(rest.first().copied(), Some((skipped + 1) as i64));
    assert_eq!(rest.last().copied(), Some(TOTAL as i64));
    stop.cancel();
}

/// Cancelling the token ends the background task promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_token_stops_task() {
    let (bus, task, stop) = start_connected(config("shutdown")).await;
    assert!(bus.is_connected());
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("subscriber task did not stop within 2 s")
        .expect("subscriber task panicked");
    assert!(!bus.is_connected());
}

/// Malformed messages on the channel are skipped; the subscription survives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_are_skipped() {
    let cfg = config("malformed");
    let channel = cfg.channel.clone();
    let (bus, _task, stop) = start_connected(cfg).await;
    let bus = AnyBus::Redis(bus);
    let mut rx = bus.subscribe();

    let client = redis::Client::open(redis_url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    for junk in ["not json", r#"{"id":1}"#, r#"[{"id":"x"}]"#, "", "[1,2,3]"] {
        let _: i64 = redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(junk)
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    bus.publish(batch(1..=2)).await.unwrap();

    let got: Vec<Notification> = recv_n(&mut rx, 2, Duration::from_secs(5)).await;
    assert_eq!(got, batch(1..=2));
    assert!(bus.is_connected());
    assert_eq!(*bus.subscription_epoch().borrow(), 1);
    stop.cancel();
}

/// An empty batch sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_batch_is_a_noop() {
    let (bus, _task, stop) = start_connected(config("empty")).await;
    let mut rx = bus.subscribe();
    bus.publish(Vec::new()).await.unwrap();
    bus.publish(batch(7..=7)).await.unwrap();
    assert_eq!(
        recv_n(&mut rx, 1, Duration::from_secs(5)).await,
        batch(7..=7)
    );
    stop.cancel();
}
