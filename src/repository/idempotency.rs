//! Stored first responses of requests sent with an `Idempotency-Key`.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use crate::{
    domain::SellerId,
    entity::idempotency_key::{ActiveModel, Column, Entity, Model},
};

pub async fn find(
    db: &impl ConnectionTrait,
    seller: &SellerId,
    key: &str,
) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id((seller.as_str().to_string(), key.to_string()))
        .one(db)
        .await
}

pub async fn insert(db: &impl ConnectionTrait, record: Model) -> Result<(), DbErr> {
    let row = ActiveModel {
        seller_id: Set(record.seller_id),
        key: Set(record.key),
        operation: Set(record.operation),
        fingerprint: Set(record.fingerprint),
        response: Set(record.response),
        created_at: Set(record.created_at),
    };
    Entity::insert(row).exec_without_returning(db).await?;
    Ok(())
}

/// Removes one seller's expired record so the key can be used afresh.
pub async fn delete(db: &impl ConnectionTrait, seller: &SellerId, key: &str) -> Result<(), DbErr> {
    Entity::delete_many()
        .filter(Column::SellerId.eq(seller.as_str()))
        .filter(Column::Key.eq(key))
        .exec(db)
        .await?;
    Ok(())
}

/// Prunes records created before `cutoff`, for every seller; returns how many.
pub async fn prune_before(db: &impl ConnectionTrait, cutoff: DateTime<Utc>) -> Result<u64, DbErr> {
    let res = Entity::delete_many()
        .filter(Column::CreatedAt.lt(cutoff))
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}
