use std::time::Duration;

use deadpool_redis::redis::RedisError;

/// Errors returned by the event bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("invalid event bus configuration: {0}")]
    InvalidConfig(String),

    #[error("failed to encode notification batch: {0}")]
    Encode(#[from] serde_json::Error),

    #[error("redis error: {0}")]
    Redis(#[from] RedisError),

    #[error("redis pool error: {0}")]
    Pool(#[from] deadpool_redis::PoolError),

    #[error("failed to build redis pool: {0}")]
    BuildPool(#[from] deadpool_redis::BuildError),

    #[error("publish did not complete within {0:?}")]
    PublishTimeout(Duration),
}
