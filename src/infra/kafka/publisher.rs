//! The publisher: records grouped per (topic, partition), produced in batches under the
//! broker's request size, over one session that is dropped after an error and reopened by the
//! next call.

use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
    sync::Arc,
    time::Duration,
};

use chrono::{DateTime, Utc};
use futures::future::join_all;
use rskafka::{
    client::{
        partition::{Compression, PartitionClient, UnknownTopicHandling},
        Client, ClientBuilder,
    },
    record::Record,
    BackoffConfig,
};
use tokio::sync::Mutex;
use tracing::{debug, info, warn};

use super::{
    admin::{create_missing_topics, verify_topics},
    config::KafkaConfig,
    error::KafkaError,
    partitioner::partition_for,
    topics::ProductTopic,
};

/// One event to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRecord {
    /// Which product topic; the publisher adds its topic prefix.
    pub topic: ProductTopic,
    /// The seller id: the partition key, so one seller's events stay in order.
    pub key: String,
    /// The JSON event body.
    pub value: Vec<u8>,
    pub headers: BTreeMap<String, Vec<u8>>,
    /// Kafka keeps milliseconds; finer precision is dropped.
    pub timestamp: DateTime<Utc>,
}

/// Upper bound of one produce request's records, below Kafka's default 1 MiB
/// `message.max.bytes`, so a large relay batch for one partition is never refused as too large.
pub const MAX_REQUEST_BYTES: usize = 900 * 1024;

/// A record's size on the wire, near enough for splitting batches.
fn approximate_size(record: &Record) -> usize {
    let headers: usize = record
        .headers
        .iter()
        .map(|(k, v)| k.len() + v.len() + 8)
        .sum();
    record.key.as_ref().map_or(0, Vec::len)
        + record.value.as_ref().map_or(0, Vec::len)
        + headers
        + 32
}

/// Publishes product events, keyed by seller id, with the Java client's partitioning.
///
/// The connection, the topics and one rskafka `PartitionClient` per (topic, partition) are
/// set up on first use (or by [`KafkaPublisher::connect`]) and kept. Any failed publish or
/// check drops them, so the next call starts afresh: it reconnects, recreates topics a
/// restarted broker may have lost, and reopens the partitions.
#[derive(Debug)]
pub struct KafkaPublisher {
    config: KafkaConfig,
    session: Mutex<Option<Arc<Session>>>,
}

impl KafkaPublisher {
    /// A publisher that connects on first use: the service can start while Kafka is down.
    pub fn new(config: KafkaConfig) -> Result<Self, KafkaError> {
        config.validate()?;
        Ok(Self {
            config,
            session: Mutex::new(None),
        })
    }

    /// A publisher that has connected and created missing topics already.
    pub async fn connect(config: KafkaConfig) -> Result<Self, KafkaError> {
        let publisher = Self::new(config)?;
        publisher.session().await?;
        Ok(publisher)
    }

    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    /// Publishes `records`, one batch per (topic, partition), each keeping the input order.
    ///
    /// Returns `Ok` only once the broker acknowledged every batch (acks = all), so the caller
    /// may then mark the records as published. On `Err` some batches may have been written
    /// anyway; publishing them again duplicates them (at-least-once).
    pub async fn publish(&self, records: Vec<OutgoingRecord>) -> Result<(), KafkaError> {
        if records.is_empty() {
            return Ok(());
        }
        let batches = self.batches(records);
        let session = self.session().await?;
        let result = self.bounded("publish", session.produce_all(batches)).await;
        if result.is_err() {
            self.discard(&session).await;
        }
        result
    }

    /// A health check: a real metadata request that also verifies the product topics exist
    /// with the configured partition count.
    pub async fn check(&self) -> Result<(), KafkaError> {
        let session = self.session().await?;
        let result = self
            .bounded("check", verify_topics(&session.client, &self.config))
            .await;
        if result.is_err() {
            self.discard(&session).await;
        }
        result
    }

    fn batches(&self, records: Vec<OutgoingRecord>) -> BTreeMap<(ProductTopic, i32), Vec<Record>> {
        let mut batches: BTreeMap<(ProductTopic, i32), Vec<Record>> = BTreeMap::new();
        for record in records {
            let partition = partition_for(record.key.as_bytes(), self.config.partitions);
            batches
                .entry((record.topic, partition))
                .or_default()
                .push(Record {
                    key: Some(record.key.into_bytes()),
                    value: Some(record.value),
                    headers: record.headers,
                    timestamp: record.timestamp,
                });
        }
        batches
    }

    async fn session(&self) -> Result<Arc<Session>, KafkaError> {
        // Held across the connect so that concurrent callers wait for one connection
        // instead of each opening their own.
        let mut current = self.session.lock().await;
        if let Some(session) = current.as_ref() {
            return Ok(Arc::clone(session));
        }
        let session = Arc::new(self.bounded("connect", Session::open(&self.config)).await?);
        *current = Some(Arc::clone(&session));
        Ok(session)
    }

    async fn discard(&self, failed: &Arc<Session>) {
        let mut current = self.session.lock().await;
        if current
            .as_ref()
            .is_some_and(|session| Arc::ptr_eq(session, failed))
        {
            info!("dropping the Kafka connection after an error; the next call reconnects");
            *current = None;
        }
    }

    async fn bounded<T>(
        &self,
        operation: &'static str,
        future: impl Future<Output = Result<T, KafkaError>>,
    ) -> Result<T, KafkaError> {
        let timeout = self.config.operation_timeout;
        tokio::time::timeout(timeout, future)
            .await
            .map_err(|_| KafkaError::Timeout { operation, timeout })?
    }
}

#[derive(Debug)]
struct Session {
    client: Client,
    partitions: HashMap<(ProductTopic, i32), PartitionClient>,
}

impl Session {
    async fn open(config: &KafkaConfig) -> Result<Self, KafkaError> {
        // rskafka retries retryable errors until this deadline. It is shorter than the
        // operation timeout so that callers usually see rskafka's error, not a bare timeout.
        let backoff = BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 3.0,
            deadline: Some(config.operation_timeout.mul_f64(0.75)),
        };
        let client = ClientBuilder::new(config.brokers.clone())
            .client_id(config.client_id.as_str())
            .backoff_config(backoff)
            .build()
            .await
            .map_err(|source| KafkaError::Connect {
                brokers: config.brokers.join(","),
                source: Box::new(source),
            })?;

        create_missing_topics(&client, config).await?;
        verify_topics(&client, config).await?;

        let opened = join_all(ProductTopic::ALL.into_iter().flat_map(|topic| {
            let client = &client;
            (0..config.partitions).map(move |partition| async move {
                let name = config.topic_name(topic);
                client
                    .partition_client(name.as_str(), partition, UnknownTopicHandling::Retry)
                    .await
                    .map(|partition_client| ((topic, partition), partition_client))
                    .map_err(|source| KafkaError::Partition {
                        topic: name,
                        partition,
                        source: Box::new(source),
                    })
            })
        }))
        .await;
        let partitions = opened.into_iter().collect::<Result<HashMap<_, _>, _>>()?;
        debug!(partitions = partitions.len(), "Kafka partitions opened");
        Ok(Self { client, partitions })
    }

    async fn produce_all(
        &self,
        batches: BTreeMap<(ProductTopic, i32), Vec<Record>>,
    ) -> Result<(), KafkaError> {
        // Different partitions are independent, so their batches go out concurrently; the
        // order that matters (one seller's events) lives inside a single batch.
        let results = join_all(
            batches
                .into_iter()
                .map(|((topic, partition), records)| self.produce(topic, partition, records)),
        )
        .await;
        let mut errors = results.into_iter().filter_map(Result::err);
        let first = errors.next();
        for other in errors {
            warn!(error = %other, "another Kafka batch failed in the same publish");
        }
        first.map_or(Ok(()), Err)
    }

    /// Sends one partition's records as produce requests of at most [`MAX_REQUEST_BYTES`],
    /// one after another so their order holds.
    async fn produce(
        &self,
        topic: ProductTopic,
        partition: i32,
        records: Vec<Record>,
    ) -> Result<(), KafkaError> {
        let mut chunk = Vec::new();
        let mut bytes = 0;
        for record in records {
            let size = approximate_size(&record);
            if !chunk.is_empty() && bytes + size > MAX_REQUEST_BYTES {
                self.produce_chunk(topic, partition, std::mem::take(&mut chunk))
                    .await?;
                bytes = 0;
            }
            bytes += size;
            chunk.push(record);
        }
        if chunk.is_empty() {
            return Ok(());
        }
        self.produce_chunk(topic, partition, chunk).await
    }

    async fn produce_chunk(
        &self,
        topic: ProductTopic,
        partition: i32,
        records: Vec<Record>,
    ) -> Result<(), KafkaError> {
        let client = self
            .partitions
            .get(&(topic, partition))
            .ok_or_else(|| KafkaError::MissingTopic(format!("{topic}/{partition}")))?;
        let sent = records.len();
        let offsets = client
            .produce(records, Compression::NoCompression)
            .await
            .map_err(|source| KafkaError::Produce {
                topic: client.topic().to_owned(),
                partition,
                records: sent,
                source: Box::new(source),
            })?;
        if offsets.len() != sent {
            return Err(KafkaError::ShortAcknowledgement {
                topic: client.topic().to_owned(),
                partition,
                sent,
                acknowledged: offsets.len(),
            });
        }
        debug!(
            topic = client.topic(),
            partition,
            records = sent,
            "batch acknowledged"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_settings_are_rejected() {
        let base = KafkaConfig::new("localhost:9092").unwrap();
        let cases = [
            (
                "zero partitions",
                KafkaConfig {
                    partitions: 0,
                    ..base.clone()
                },
            ),
            (
                "zero replication",
                KafkaConfig {
                    replication_factor: 0,
                    ..base.clone()
                },
            ),
            (
                "zero timeout",
                KafkaConfig {
                    operation_timeout: Duration::ZERO,
                    ..base.clone()
                },
            ),
            (
                "no brokers",
                KafkaConfig {
                    brokers: vec![],
                    ..base.clone()
                },
            ),
        ];
        for (name, config) in cases {
            assert!(KafkaPublisher::new(config).is_err(), "{name} was accepted");
        }
    }

    #[test]
    fn batches_group_by_topic_and_partition_in_input_order() {
        let publisher = KafkaPublisher::new(KafkaConfig::new("localhost:9092").unwrap()).unwrap();
        let record = |topic, key: &str, n: u8| OutgoingRecord {
            topic,
            key: key.to_owned(),
            value: vec![n],
            headers: BTreeMap::new(),
            timestamp: Utc::now(),
        };
        let input = vec![
            record(ProductTopic::Created, "s1", 1),
            record(ProductTopic::Updated, "s1", 2),
            record(ProductTopic::Created, "s2", 3),
            record(ProductTopic::Created, "s1", 4),
            record(ProductTopic::Created, "s2", 5),
        ];
        let batches = publisher.batches(input.clone());
        let total: usize = batches.values().map(Vec::len).sum();
        assert_eq!(total, input.len());
        for ((topic, partition), records) in &batches {
            let expected: Vec<u8> = input
                .iter()
                .filter(|r| r.topic == *topic && partition_for(r.key.as_bytes(), 4) == *partition)
                .map(|r| r.value[0])
                .collect();
            let actual: Vec<u8> = records
                .iter()
                .map(|r| r.value.as_ref().unwrap()[0])
                .collect();
            assert_eq!(actual, expected, "{topic}/{partition}");
        }
    }
}
