//! Reads back what the relay published: every record of a prefixed `product.created` topic.

use std::time::Duration;

use rskafka::client::{partition::UnknownTopicHandling, ClientBuilder};
use serde_json::Value;

/// Partitions the servers create their topics with (`KAFKA_TOPIC_PARTITIONS`' default).
const PARTITIONS: i32 = 4;

/// One `product.created` record.
#[derive(Debug, Clone)]
pub struct Created {
    pub partition: i32,
    pub offset: i64,
    pub seller: String,
    pub product_id: i64,
    /// The outbox sequence (`ce_id` header): a record sent twice carries the same one.
    pub ce_id: i64,
}

/// Every record of `<prefix>product.created`, partition by partition in offset order.
pub async fn created_records(brokers: &str, prefix: &str) -> Vec<Created> {
    let topic = format!("{prefix}product.created");
    let client = bounded(
        "connecting to Kafka",
        ClientBuilder::new(brokers.split(',').map(str::to_owned).collect()).build(),
    )
    .await
    .expect("the test consumer connects");
    let mut all = Vec::new();
    for partition in 0..PARTITIONS {
        let partition_client = bounded(
            "opening a partition",
            client.partition_client(&topic, partition, UnknownTopicHandling::Retry),
        )
        .await
        .expect("partition client");
        let mut offset = 0;
        for _ in 0..1_000 {
            let (batch, high_watermark) = bounded(
                "fetching records",
                partition_client.fetch_records(offset, 1..1_000_000, 100),
            )
            .await
            .unwrap_or_else(|e| panic!("fetch {topic}/{partition} at {offset}: {e}"));
            for r in batch {
                offset = r.offset + 1;
                let value: Value = serde_json::from_slice(&r.record.value.unwrap_or_default())
                    .expect("a JSON value");
                let ce_id = r
                    .record
                    .headers
                    .get("ce_id")
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|v| v.parse().ok())
                    .expect("a numeric ce_id header");
                all.push(Created {
                    partition,
                    offset: r.offset,
                    seller: String::from_utf8(r.record.key.unwrap_or_default()).expect("key"),
                    product_id: value["data"]["productId"].as_i64().expect("productId"),
                    ce_id,
                });
            }
            if offset >= high_watermark {
                break;
            }
        }
    }
    all
}

async fn bounded<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), future)
        .await
        .unwrap_or_else(|_| panic!("{what} took over a minute"))
}
