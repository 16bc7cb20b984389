//! The publisher against a real broker at `KAFKA_BROKERS`.

use std::collections::{BTreeMap, BTreeSet};

use crate::kafka_support::{
    bounded, brokers_from_env, consume_partition, event, raw_client, test_config,
};
use product_api::infra::kafka::{partition_for, KafkaPublisher, OutgoingRecord, ProductTopic};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_creates_the_four_topics_with_four_partitions_idempotently() {
    let brokers = brokers_from_env();
    let config = test_config(&brokers, "topics");

    let publisher = bounded("connect", KafkaPublisher::connect(config.clone()))
        .await
        .expect("first connect creates the topics");
    // A second instance finds the topics already there.
    let again = bounded("second connect", KafkaPublisher::connect(config.clone()))
        .await
        .expect("connecting when the topics exist works");

    let client = raw_client(&brokers).await;
    let topics: BTreeMap<String, BTreeSet<i32>> = bounded("list topics", client.list_topics())
        .await
        .expect("list topics")
        .into_iter()
        .map(|topic| (topic.name, topic.partitions))
        .collect();
    for topic in ProductTopic::ALL {
        let name = config.topic_name(topic);
        assert_eq!(
            topics.get(&name),
            Some(&BTreeSet::from([0, 1, 2, 3])),
            "partitions of {name}"
        );
    }
    bounded("check", publisher.check())
        .await
        .expect("health check");
    bounded("check", again.check()).await.expect("health check");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_records_land_on_the_java_partition_in_seller_order() {
    let brokers = brokers_from_env();
    let config = test_config(&brokers, "mix");
    let sellers = ["seller-alpha", "seller-bravo", "seller-charlie"];
    let partitions: BTreeSet<i32> = sellers
        .iter()
        .map(|seller| partition_for(seller.as_bytes(), 4))
        .collect();
    assert!(
        partitions.len() > 1,
        "the sellers must spread over partitions"
    );

    // A scripted mix: sellers interleaved, topics rotating at a different pace, so every
    // (topic, partition) batch holds records of one seller in a non-trivial order.
    let script: Vec<OutgoingRecord> = (0..40u32)
        .map(|seq| {
            let seller = sellers[(seq as usize * 7 + seq as usize / 5) % 3];
            let topic = ProductTopic::ALL[(seq as usize / 3 + seq as usize) % 4];
            event(topic, seller, seq)
        })
        .collect();

    let publisher = KafkaPublisher::new(config.clone()).expect("config");
    // Two calls: order must also hold across publishes.
    let (first, second) = script.split_at(25);
    bounded("publish", publisher.publish(first.to_vec()))
        .await
        .expect("first publish acknowledged");
    bounded("publish", publisher.publish(second.to_vec()))
        .await
        .expect("second publish acknowledged");
    bounded("publish nothing", publisher.publish(Vec::new()))
        .await
        .expect("empty publish");

    let client = raw_client(&brokers).await;
    // (topic, seller) -> seqs in the order the consumer sees them.
    let mut seen: BTreeMap<(ProductTopic, String), Vec<u32>> = BTreeMap::new();
    let mut received = 0;
    for topic in ProductTopic::ALL {
        let name = config.topic_name(topic);
        for partition in 0..4 {
            for consumed in consume_partition(&client, &name, partition).await {
                received += 1;
                let record = consumed.record;
                let key = String::from_utf8(record.key.clone().expect("key")).expect("utf-8 key");
                let seq: u32 = std::str::from_utf8(&record.headers["seq"])
                    .expect("utf-8 seq header")
                    .parse()
                    .expect("numeric seq header");
                let sent = &script[seq as usize];
                assert_eq!(key, sent.key, "key of seq {seq}");
                assert_eq!(sent.topic, topic, "topic of seq {seq}");
                assert_eq!(
                    partition,
                    partition_for(key.as_bytes(), 4),
                    "partition of seq {seq} ({key})"
                );
                assert_eq!(
                    record.value.as_ref(),
                    Some(&sent.value),
                    "value of seq {seq}"
                );
                assert_eq!(record.headers, sent.headers, "headers of seq {seq}");
                assert_eq!(record.timestamp, sent.timestamp, "timestamp of seq {seq}");
                seen.entry((topic, key)).or_default().push(seq);
            }
        }
    }

    assert_eq!(received, script.len(), "every record exactly once");
    let mut expected: BTreeMap<(ProductTopic, String), Vec<u32>> = BTreeMap::new();
    for (seq, record) in (0u32..).zip(&script) {
        expected
            .entry((record.topic, record.key.clone()))
            .or_default()
            .push(seq);
    }
    assert_eq!(seen, expected, "per-seller order within each topic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_larger_than_a_request_is_split_and_stays_in_order() {
    let brokers = brokers_from_env();
    let config = test_config(&brokers, "split");
    let publisher = bounded("connect", KafkaPublisher::connect(config.clone()))
        .await
        .expect("connect");
    // 3,000 records of ~1 KiB for one seller: ~3 MiB for one partition, over 1 MiB.
    let seller = "seller-bulky";
    let records: Vec<_> = (0..3000)
        .map(|seq| {
            let mut record = event(ProductTopic::Updated, seller, seq);
            record.value = format!(r#"{{"seq":{seq},"pad":"{}"}}"#, "x".repeat(1000)).into_bytes();
            record
        })
        .collect();
    bounded("publish", publisher.publish(records))
        .await
        .expect("a large batch is accepted");
    let client = raw_client(&brokers).await;
    let partition = partition_for(seller.as_bytes(), config.partitions);
    let consumed = consume_partition(
        &client,
        &config.topic_name(ProductTopic::Updated),
        partition,
    )
    .await;
    let seqs: Vec<u64> = consumed
        .iter()
        .map(|r| {
            let value: serde_json::Value =
                serde_json::from_slice(r.record.value.as_deref().expect("value")).expect("json");
            value["seq"].as_u64().expect("seq")
        })
        .collect();
    assert_eq!(seqs, (0..3000).collect::<Vec<u64>>());
}
