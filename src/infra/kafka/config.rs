//! How to reach Kafka and what the topics look like, validated when the publisher is built.
//! The defaults are the event contract's; `crate::config` reads the variables and uses these.

use std::time::Duration;

use super::{error::KafkaError, topics::ProductTopic};

/// Partitions per topic in the event contract ("hash(sellerId) % 4").
pub const DEFAULT_PARTITIONS: i32 = crate::config::defaults::kafka_topic_partitions();

/// Replication factor for topics this publisher creates. 1 suits a single test broker;
/// production clusters should pass 3 (the contract's value) or create topics themselves.
pub const DEFAULT_REPLICATION_FACTOR: i16 = 1;

/// Upper bound of one step (connect, publish, check); see [`KafkaConfig::operation_timeout`].
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// Client id reported to the brokers.
pub const DEFAULT_CLIENT_ID: &str = "product-api";

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
            brokers: crate::config::broker_list(brokers).map_err(KafkaError::Config)?,
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

    pub(super) fn validate(&self) -> Result<(), KafkaError> {
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
}
