use std::time::Duration;

use crate::bus_support::{assert_no_more, batch, recv_n};
use product_api::infra::event_bus::{AnyBus, BusError, EventBus, MemoryBus, DEFAULT_CAPACITY};

#[tokio::test]
async fn two_subscribers_receive_whole_batch_in_order() {
    let bus = MemoryBus::new(DEFAULT_CAPACITY).unwrap();
    let mut a = bus.subscribe();
    let mut b = bus.subscribe();

    let sent = batch(1..=50);
    EventBus::publish(&bus, sent.clone()).await.unwrap();

    assert_eq!(recv_n(&mut a, 50, Duration::from_secs(1)).await, sent);
    assert_eq!(recv_n(&mut b, 50, Duration::from_secs(1)).await, sent);
    assert_no_more(&mut a, Duration::from_millis(50)).await;
}

#[tokio::test]
async fn publish_without_subscribers_is_ok_and_any_bus_delegates() {
    let bus = AnyBus::Memory(MemoryBus::new(16).unwrap());
    bus.publish(batch(1..=3)).await.unwrap();
    bus.publish(Vec::new()).await.unwrap();
    assert!(bus.is_connected());

    let mut rx = bus.subscribe();
    bus.publish(batch(4..=5)).await.unwrap();
    assert_eq!(
        recv_n(&mut rx, 2, Duration::from_secs(1)).await,
        batch(4..=5)
    );
}

#[test]
fn zero_capacity_is_rejected_not_a_panic() {
    assert!(matches!(MemoryBus::new(0), Err(BusError::InvalidConfig(_))));
}
