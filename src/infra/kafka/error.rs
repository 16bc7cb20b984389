use std::time::Duration;

/// The error type of rskafka's client calls.
pub type ClientError = rskafka::client::error::Error;

/// Everything that can go wrong while talking to Kafka.
///
/// Every variant means "not (fully) published": the caller keeps its records and retries
/// later. Batches that did succeed before the error may be delivered again then, so
/// consumers must tolerate duplicates (the contract is at-least-once).
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// The configuration cannot work; fix it and restart.
    #[error("invalid Kafka configuration: {0}")]
    Config(String),

    /// A topic name that is not one of the product topics.
    #[error("unknown product topic {0:?}")]
    UnknownTopic(String),

    /// No broker answered a metadata request.
    #[error("could not reach Kafka brokers {brokers}")]
    Connect {
        brokers: String,
        #[source]
        source: Box<ClientError>,
    },

    /// A metadata (topic listing) request failed.
    #[error("Kafka metadata request failed")]
    Metadata(#[source] Box<ClientError>),

    /// Creating a missing topic failed (an already existing topic is not an error).
    #[error("could not create Kafka topic {topic}")]
    CreateTopic {
        topic: String,
        #[source]
        source: Box<ClientError>,
    },

    /// A topic exists with a partition count other than the configured one; keys would not
    /// land where `partition_for` says, so publishing is refused.
    #[error("Kafka topic {topic} has {actual} partitions, expected {expected}")]
    PartitionCount {
        topic: String,
        expected: i32,
        actual: usize,
    },

    /// A product topic is missing from the broker's metadata (e.g. the broker lost its data).
    #[error("Kafka topic {0} does not exist on the broker")]
    MissingTopic(String),

    /// Connecting to a partition's leader failed.
    #[error("could not open Kafka partition {topic}/{partition}")]
    Partition {
        topic: String,
        partition: i32,
        #[source]
        source: Box<ClientError>,
    },

    /// The broker did not acknowledge a batch.
    #[error("producing {records} records to Kafka partition {topic}/{partition} failed")]
    Produce {
        topic: String,
        partition: i32,
        records: usize,
        #[source]
        source: Box<ClientError>,
    },

    /// The broker acknowledged a different number of records than were sent.
    #[error("Kafka acknowledged {acknowledged} of {sent} records on {topic}/{partition}")]
    ShortAcknowledgement {
        topic: String,
        partition: i32,
        sent: usize,
        acknowledged: usize,
    },

    /// An operation did not finish within the configured bound.
    #[error("Kafka {operation} did not finish within {timeout:?}")]
    Timeout {
        operation: &'static str,
        timeout: Duration,
    },
}
