//! A seller's product as the services hand it out: what the API shows, without the storage
//! details (soft deletion, the column types) of its row.

use chrono::{DateTime, Utc};

use super::Money;

#[derive(Clone, Debug, PartialEq)]
pub struct Product {
    pub id: i64,
    pub seller_id: String,
    pub sku: Option<String>,
    pub name: String,
    pub description: Option<String>,
    pub price: Money,
    pub quantity: i64,
    pub category: String,
    pub low_stock_threshold: Option<i32>,
    /// Increases with every change; the ETag is derived from it.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
