use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    future::Future,
    str::FromStr,
    sync::Arc,
    time::Duration,
};

use chrono::{DateTime, Utc};
use futures::future::join_all;
use rskafka::{
    client::{
        error::ProtocolError,
        partition::{Compression, PartitionClient, UnknownTopicHandling},
        Client, ClientBuilder,
    },
    record::Record,
    BackoffConfig,
};
use tokio::sync::Mutex;
use tracing::{debug, info, warn};

use super::{
    error::{ClientError, KafkaError},
    partitioner::partition_for,
};

/// Partitions per topic in the event contract ("hash(sellerId) % 4").
pub const DEFAULT_PARTITIONS: i32 = 4;
/// Replication factor for topics this publisher creates. 1 suits a single test broker;
/// production clusters should pass 3 (the contract's value) or create topics themselves.
pub const DEFAULT_REPLICATION_FACTOR: i16 = 1;
/// Upper bound of one step (connect, publish, check); see [`KafkaConfig::operation_timeout`].
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
/// Client id reported to the brokers.
pub const DEFAULT_CLIENT_ID: &str = "product-api";

/// The product event topics of the event contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProductTopic {
    Created,
    Updated,
    Deleted,
    LowStock,
}

impl ProductTopic {
    /// Every product topic; the publisher creates all of them.
    pub const ALL: [ProductTopic; 4] = [
        ProductTopic::Created,
        ProductTopic::Updated,
        ProductTopic::Deleted,
        ProductTopic::LowStock,
    ];

    /// The topic name without the configured prefix, e.g. `product.created`.
    pub fn suffix(self) -> &'static str {
        match self {
            ProductTopic::Created => "product.created",
            ProductTopic::Updated => "product.updated",
            ProductTopic::Deleted => "product.deleted",
            ProductTopic::LowStock => "product.lowstock",
        }
    }
}

impl fmt::Display for ProductTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.suffix())
    }
}

impl FromStr for ProductTopic {
    type Err = KafkaError;

    /// Parses a topic suffix such as `product.created` (the form an outbox row stores).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProductTopic::ALL
            .into_iter()
            .find(|topic| topic.suffix() == s)
            .ok_or_else(|| KafkaError::UnknownTopic(s.to_owned()))
    }
}

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

/// How to reach Kafka and how the topics look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// Bootstrap brokers as `host:port`.
    pub brokers: Vec<String>,
    /// Prepended to every topic name ("" gives exactly `product.created` etc.).
    pub topic_prefix: String,
    /// Partitions per topic; also the modulus of [`partition_for`].
    pub partitions: i32,
    /// Replication factor used when this publisher creates a topic.
    pub replication_factor: i16,
    /// Bound on each step: opening the connection and topics, one publish, one check.
    /// rskafka itself retries with backoff and would otherwise retry forever.
    pub operation_timeout: Duration,
    pub client_id: String,
}

impl KafkaConfig {
    /// Defaults for everything but the brokers, given as a comma-separated `host:port` list.
    pub fn new(brokers: &str) -> Result<Self, KafkaError> {
        Ok(Self {
            brokers: parse_broker_list(brokers)?,
            topic_prefix: String::new(),
            partitions: DEFAULT_PARTITIONS,
            replication_factor: DEFAULT_REPLICATION_FACTOR,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
            client_id: DEFAULT_CLIENT_ID.to_owned(),
        })
    }

    /// The full topic name: prefix + suffix.
    pub fn topic_name(&self, topic: ProductTopic) -> String {
        format!("{}{}", self.topic_prefix, topic.suffix())
    }

    fn validate(&self) -> Result<(), KafkaError> {
        if self.brokers.is_empty() {
            return Err(KafkaError::Config("no Kafka broker given".to_owned()));
        }
        if self.partitions < 1 {
            return Err(KafkaError::Config(format!(
                "partitions must be at least 1, got {}",
                self.partitions
            )));
        }
        if self.replication_factor < 1 {
            return Err(KafkaError::Config(format!(
                "replication factor must be at least 1, got {}",
                self.replication_factor
            )));
        }
        if self.operation_timeout.is_zero() {
            return Err(KafkaError::Config(
                "operation timeout must be positive".to_owned(),
            ));
        }
        Ok(())
    }
}

fn parse_broker_list(list: &str) -> Result<Vec<String>, KafkaError> {
    let brokers = list
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| match entry.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(entry.to_owned())
            }
            _ => Err(KafkaError::Config(format!(
                "broker {entry:?} in {list:?} is not host:port"
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if brokers.is_empty() {
        return Err(KafkaError::Config(format!("no broker in {list:?}")));
    }
    Ok(brokers)
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

async fn existing_topics(client: &Client) -> Result<HashMap<String, usize>, KafkaError> {
    Ok(client
        .list_topics()
        .await
        .map_err(|source| KafkaError::Metadata(Box::new(source)))?
        .into_iter()
        .map(|topic| (topic.name, topic.partitions.len()))
        .collect())
}

async fn create_missing_topics(client: &Client, config: &KafkaConfig) -> Result<(), KafkaError> {
    let existing = existing_topics(client).await?;
    let missing: Vec<String> = ProductTopic::ALL
        .into_iter()
        .map(|topic| config.topic_name(topic))
        .filter(|name| !existing.contains_key(name))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let controller = client
        .controller_client()
        .map_err(|source| KafkaError::CreateTopic {
            topic: missing.join(","),
            source: Box::new(source),
        })?;
    let timeout_ms = i32::try_from(config.operation_timeout.as_millis()).unwrap_or(i32::MAX);
    for name in missing {
        match controller
            .create_topic(
                name.as_str(),
                config.partitions,
                config.replication_factor,
                timeout_ms,
            )
            .await
        {
            Ok(()) => info!(topic = %name, partitions = config.partitions, "created Kafka topic"),
            // Someone else (another instance) created it in between: fine.
            Err(source) if already_exists(&source) => {
                debug!(topic = %name, "Kafka topic already exists")
            }
            Err(source) => {
                return Err(KafkaError::CreateTopic {
                    topic: name,
                    source: Box::new(source),
                })
            }
        }
    }
    Ok(())
}

fn already_exists(error: &ClientError) -> bool {
    matches!(
        error,
        ClientError::ServerError {
            protocol_error: ProtocolError::TopicAlreadyExists,
            ..
        }
    )
}

async fn verify_topics(client: &Client, config: &KafkaConfig) -> Result<(), KafkaError> {
    let existing = existing_topics(client).await?;
    for topic in ProductTopic::ALL {
        let name = config.topic_name(topic);
        match existing.get(&name) {
            None => return Err(KafkaError::MissingTopic(name)),
            Some(&actual) if i32::try_from(actual).ok() != Some(config.partitions) => {
                return Err(KafkaError::PartitionCount {
                    topic: name,
                    expected: config.partitions,
                    actual,
                })
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_lists_are_split_trimmed_and_checked() {
        let config = KafkaConfig::new(" a:9092, 127.0.0.1:19092 ,").unwrap();
        assert_eq!(config.brokers, ["a:9092", "127.0.0.1:19092"]);
        for bad in ["", " , ", "a", "a:", ":9092", "a:99999", "a:x"] {
            assert!(KafkaConfig::new(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn defaults_match_the_event_contract() {
        let config = KafkaConfig::new("localhost:9092").unwrap();
        assert_eq!(config.partitions, 4);
        let names: Vec<String> = ProductTopic::ALL
            .into_iter()
            .map(|t| config.topic_name(t))
            .collect();
        assert_eq!(
            names,
            [
                "product.created",
                "product.updated",
                "product.deleted",
                "product.lowstock"
            ]
        );
    }

    #[test]
    fn topic_suffixes_round_trip() {
        for topic in ProductTopic::ALL {
            assert_eq!(topic.suffix().parse::<ProductTopic>().unwrap(), topic);
        }
        assert!("product.nope".parse::<ProductTopic>().is_err());
    }

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
