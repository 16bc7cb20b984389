//! The first response to a request sent with an `Idempotency-Key`, kept so a retry replays it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub seller_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// The operationId the key was first used with.
    pub operation: String,
    /// SHA-256 of the request: another request under the same key is refused.
    pub fingerprint: String,
    /// The response body, as JSON.
    pub response: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
