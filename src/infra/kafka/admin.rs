//! Topic administration at connect time: create the contract's topics that are missing, then
//! check every topic has the configured partitions (the partitioner depends on the count).

use std::collections::HashMap;

use rskafka::client::{error::ProtocolError, Client};
use tracing::{debug, info};

use super::{
    config::KafkaConfig,
    error::{ClientError, KafkaError},
    topics::ProductTopic,
};

async fn existing_topics(client: &Client) -> Result<HashMap<String, usize>, KafkaError> {
    Ok(client
        .list_topics()
        .await
        .map_err(|source| KafkaError::Metadata(Box::new(source)))?
        .into_iter()
        .map(|topic| (topic.name, topic.partitions.len()))
        .collect())
}

pub(super) async fn create_missing_topics(
    client: &Client,
    config: &KafkaConfig,
) -> Result<(), KafkaError> {
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

pub(super) async fn verify_topics(client: &Client, config: &KafkaConfig) -> Result<(), KafkaError> {
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
