//! The outbox relay: publishes committed events to Kafka in sequence order and marks them
//! published only after the broker acknowledged them.
//!
//! It wakes as soon as a write commits (an in-process signal) and also sweeps periodically,
//! which picks up rows other instances committed and rows left by a crash. While the broker is
//! down it retries with capped exponential backoff; nothing is lost, only delayed. Delivery is
//! at-least-once: a crash between the acknowledgement and the mark republishes a batch, and
//! consumers de-duplicate by `ce_id`.
//!
//! On PostgreSQL a transaction-scoped advisory lock makes one instance relay at a time, which
//! keeps every seller's events in order across instances and avoids double publishing. Every
//! instance tries for it on each wake and sweep, so when the relaying instance dies (its
//! connection closes, and the lock with it) another one relays from its next sweep; one that
//! hangs mid-batch loses its transaction, and the lock, after
//! `DATABASE_IDLE_TRANSACTION_TIMEOUT_MS`. What the lost batch had sent is sent again:
//! duplicates, with the same `ce_id`, never gaps.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use chrono::{SecondsFormat, Utc};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, TransactionTrait};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{
    backoff::Backoff,
    entity::outbox::Model as Row,
    infra::kafka::{KafkaError, KafkaPublisher, OutgoingRecord, ProductTopic},
    metrics::Metrics,
    repository,
    service::events::EventType,
};

const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
}

pub struct Relay {
    pub db: DatabaseConnection,
    pub publisher: Arc<KafkaPublisher>,
    pub wake: Arc<Notify>,
    pub batch_size: u64,
    pub sweep: Duration,
    pub metrics: Metrics,
}

/// The topic of a product event; `None` for events that are not published (imports').
fn topic(event_type: &str) -> Option<ProductTopic> {
    match EventType::parse(event_type) {
        Some(EventType::ProductCreated) => Some(ProductTopic::Created),
        Some(EventType::ProductDeleted) => Some(ProductTopic::Deleted),
        Some(EventType::LowStockWarning) => Some(ProductTopic::LowStock),
        Some(t) if !t.is_product_change() => None,
        _ => Some(ProductTopic::Updated),
    }
}

/// The Kafka record of an outbox row: the contract JSON as value, the seller as key, and
/// CloudEvents binary-mode headers; `None` for a row that is not published.
pub fn record(row: &Row) -> Option<OutgoingRecord> {
    let topic = topic(&row.event_type)?;
    let headers = BTreeMap::from([
        ("ce_specversion".to_string(), b"1.0".to_vec()),
        ("ce_id".to_string(), row.id.to_string().into_bytes()),
        ("ce_type".to_string(), row.event_type.clone().into_bytes()),
        ("ce_source".to_string(), b"product-api".to_vec()),
        (
            "ce_time".to_string(),
            row.created_at
                .to_rfc3339_opts(SecondsFormat::Millis, true)
                .into_bytes(),
        ),
        (
            "ce_subject".to_string(),
            row.product_id.to_string().into_bytes(),
        ),
        ("content-type".to_string(), b"application/json".to_vec()),
    ]);
    Some(OutgoingRecord {
        topic,
        key: row.seller_id.clone(),
        value: row.payload.clone().into_bytes(),
        headers,
        timestamp: row.created_at,
    })
}

impl Relay {
    /// Publishes until shutdown; on shutdown it makes one last attempt and returns.
    pub async fn run(self, shutdown: CancellationToken) {
        // Connecting creates missing topics, so they exist from the start.
        if let Err(e) = self.publisher.check().await {
            tracing::warn!(error = %e, "Kafka is not reachable yet; events wait in the outbox");
        }
        let mut backoff = Backoff::new(Duration::from_millis(100), MAX_BACKOFF);
        loop {
            match self.drain().await {
                Ok(()) => backoff.reset(),
                Err(e) => {
                    self.metrics.publish_failures.inc();
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %e, retry_in = ?delay, "outbox relay failed; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(delay) => {}
                    }
                    continue;
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => {
                    if let Err(e) = self.drain().await {
                        tracing::warn!(error = %e, "outbox relay stopped with events pending");
                    }
                    return;
                }
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.sweep) => {}
            }
        }
    }

    /// Publishes batches until none is pending (or another instance holds the relay lock).
    pub async fn drain(&self) -> Result<(), RelayError> {
        while self.publish_batch().await? > 0 {}
        Ok(())
    }

    /// Publishes one batch; returns how many rows it published.
    async fn publish_batch(&self) -> Result<usize, RelayError> {
        if self.db.get_database_backend() != DatabaseBackend::Postgres {
            // One process owns an SQLite file: no lock, and no transaction held across the
            // broker round trip (it would block every other query on the single connection).
            return self.publish_rows(&self.db).await;
        }
        let txn = self.db.begin().await?;
        if !repository::locks::try_relay_lock(&txn).await? {
            txn.rollback().await?;
            return Ok(0);
        }
        let published = self.publish_rows(&txn).await?;
        txn.commit().await?;
        Ok(published)
    }

    async fn publish_rows(&self, db: &impl ConnectionTrait) -> Result<usize, RelayError> {
        let rows = repository::outbox::unpublished(db, self.batch_size).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let records: Vec<OutgoingRecord> = rows.iter().filter_map(record).collect();
        if !records.is_empty() {
            self.publisher.publish(records).await?;
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        repository::outbox::mark_published(db, ids, Utc::now()).await?;
        self.metrics.events_published.inc_by(rows.len() as u64);
        Ok(rows.len())
    }
}
