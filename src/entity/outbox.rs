//! Events written in the same transaction as the product change they describe. The id is the
//! event's sequence number: CloudEvents `ce_id` on Kafka and the SSE event id.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub seller_id: String,
    /// `ProductCreated`, `ProductUpdated`, `ProductDeleted` or `LowStockWarning`.
    pub event_type: String,
    pub product_id: i64,
    /// The Kafka record value: `{eventId, eventType, timestamp, data}` as JSON.
    pub payload: String,
    pub created_at: DateTimeUtc,
    /// Set once the broker acknowledged the record; `None` while it waits for the relay.
    pub published_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
