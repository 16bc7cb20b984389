//! A seller's product. Rows are soft-deleted (`deleted_at`), so history stays and a deleted
//! product's sku is free again.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "products")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub seller_id: String,
    pub sku: Option<String>,
    pub name: String,
    pub description: Option<String>,
    pub price_cents: i64,
    pub quantity: i64,
    pub category: String,
    pub low_stock_threshold: Option<i32>,
    pub version: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub deleted_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// A row as the services hand it out.
impl From<Model> for crate::domain::Product {
    fn from(row: Model) -> Self {
        Self {
            id: row.id,
            seller_id: row.seller_id,
            sku: row.sku,
            name: row.name,
            description: row.description,
            price: crate::domain::Money::from_cents(row.price_cents),
            quantity: row.quantity,
            category: row.category,
            low_stock_threshold: row.low_stock_threshold,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}
