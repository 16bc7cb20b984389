//! Publishing product events to Kafka.
//!
//! Events of one seller must reach consumers in order, so every record is keyed by seller id
//! and placed with the Java client's default partitioner ([`partition_for`]), which is what
//! the existing consumers and producers assume. A publish groups records per
//! (topic, partition), sends each group as one batch and succeeds only after the broker
//! acknowledged all of them, which is what an outbox relay needs before marking rows sent.

mod admin;
mod config;
mod error;
mod partitioner;
mod publisher;
mod topics;

pub use config::{
    KafkaConfig, DEFAULT_CLIENT_ID, DEFAULT_OPERATION_TIMEOUT, DEFAULT_PARTITIONS,
    DEFAULT_REPLICATION_FACTOR,
};
pub use error::{ClientError, KafkaError};
pub use partitioner::{murmur2, partition_for};
pub use publisher::{KafkaPublisher, OutgoingRecord};
pub use topics::ProductTopic;
