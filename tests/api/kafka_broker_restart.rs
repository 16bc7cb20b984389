//! The publisher survives its broker dying and coming back.
//!
//! This test kills a broker, so it never touches the shared one at `KAFKA_BROKERS`: it starts
//! its own tansu through `scripts/tansu` with a private state directory (tansu must already
//! be installed; run the script once) and restarts it on the same port.

use std::time::{Duration, Instant};

use crate::kafka_support::{bounded, consume_partition, event, raw_client, test_config, Broker};
use product_api::infra::kafka::{partition_for, KafkaPublisher, ProductTopic};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_fails_while_the_broker_is_down_and_works_after_it_restarts() {
    let (broker, brokers) = Broker::start();
    assert!(
        !brokers.is_empty(),
        "the script printed no KAFKA_BROKERS line"
    );
    let config = test_config(&brokers, "restart");
    let timeout = config.operation_timeout;
    let publisher = bounded("connect", KafkaPublisher::connect(config.clone()))
        .await
        .expect("connect to the fresh broker");
    bounded(
        "publish",
        publisher.publish(vec![event(ProductTopic::Created, "seller-1", 0)]),
    )
    .await
    .expect("publish before the restart");

    broker.run("stop");

    let started = Instant::now();
    let result = bounded(
        "publish to a dead broker",
        publisher.publish(vec![event(ProductTopic::Created, "seller-1", 1)]),
    )
    .await;
    let error = result.expect_err("publishing to a dead broker must fail");
    eprintln!(
        "publish to the dead broker failed after {:?}: {error}",
        started.elapsed()
    );
    // connect + publish are each bounded by the operation timeout.
    assert!(
        started.elapsed() < timeout * 2 + Duration::from_secs(5),
        "failing took {:?}: {error}",
        started.elapsed()
    );
    bounded("check a dead broker", publisher.check())
        .await
        .expect_err("the health check must fail while the broker is down");

    let restarted = broker.run("start");
    assert_eq!(
        restarted, brokers,
        "the broker comes back on the same address"
    );

    // Memory storage: the restarted broker has no topics; the publisher recreates them.
    let after = vec![
        event(ProductTopic::Created, "seller-1", 2),
        event(ProductTopic::Updated, "seller-2", 3),
        event(ProductTopic::Created, "seller-1", 4),
    ];
    bounded(
        "publish after the restart",
        publisher.publish(after.clone()),
    )
    .await
    .expect("the same publisher publishes after the broker restarted");
    bounded("check", publisher.check())
        .await
        .expect("health check after the restart");

    let client = raw_client(&brokers).await;
    let created = config.topic_name(ProductTopic::Created);
    let partition = partition_for(b"seller-1", 4);
    let values: Vec<Vec<u8>> = consume_partition(&client, &created, partition)
        .await
        .into_iter()
        .filter_map(|consumed| consumed.record.value)
        .collect();
    assert_eq!(values, [after[0].value.clone(), after[2].value.clone()]);
}
