//! One batch of an import: its rows classified against the seller's live products (create,
//! update, unchanged, or an error), then written with set-based statements in the
//! transaction that also appends their events, their row errors and the import's progress.

use std::{
    collections::{HashMap, HashSet},
    hash::{Hash, Hasher},
};

use chrono::{DateTime, Utc};
use sea_orm::DbErr;

use super::{
    rows::{Parsed, Row, RowError},
    Mode,
};
use crate::{
    domain::SellerId,
    entity::product::Model as Product,
    repository::{
        self,
        imports::NewError,
        outbox::NewRow as NewEvent,
        products::{NewRow, MAX_QUANTITY},
        transaction::Transaction,
    },
    service::events::Events,
};

/// A batch as read from the file: rows in file order, each valid or not.
#[derive(Default)]
pub struct Batch {
    pub rows: Vec<Parsed>,
    /// Skus in this batch: a repeated sku starts the next batch, so each batch changes a
    /// product at most once and sees the writes of the batches before it.
    pub skus: HashSet<String>,
}

impl Batch {
    /// Whether `row` must wait for the next batch.
    pub fn repeats_sku(&self, row: &Parsed) -> bool {
        matches!(row, Ok(Row { sku: Some(sku), .. }) if self.skus.contains(sku))
    }

    pub fn push(&mut self, row: Parsed) {
        if let Ok(Row { sku: Some(sku), .. }) = &row {
            self.skus.insert(sku.clone());
        }
        self.rows.push(row);
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// What a batch did (or, in a dry run, would do).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub failed: i64,
}

/// The written outcome of a batch: its counts and its events, ready to append.
pub struct Applied {
    pub counts: Counts,
    pub events: Vec<NewEvent>,
    pub errors: Vec<NewError>,
    /// The batch's skus, which the next batch may share.
    pub skus: HashSet<String>,
}

fn stored_error(e: RowError) -> NewError {
    NewError {
        row: e.line,
        column: e.column,
        value: e.value,
        message: e.message,
    }
}

/// `row` applied to `current`; `None` when nothing would change.
fn merged(current: &Product, row: &Row, at: DateTime<Utc>) -> Option<Product> {
    let next = Product {
        name: row.name.clone(),
        description: row
            .description
            .clone()
            .unwrap_or_else(|| current.description.clone()),
        price_cents: row.price_cents,
        quantity: i64::from(row.quantity),
        category: row.category.clone(),
        low_stock_threshold: row
            .low_stock_threshold
            .unwrap_or(current.low_stock_threshold),
        ..current.clone()
    };
    if next == *current {
        return None;
    }
    Some(Product {
        version: current.version + 1,
        updated_at: at,
        ..next
    })
}

fn new_row(row: Row) -> NewRow {
    NewRow {
        sku: row.sku,
        name: row.name,
        description: row.description.flatten(),
        price_cents: row.price_cents,
        quantity: i64::from(row.quantity).min(MAX_QUANTITY),
        category: row.category,
        low_stock_threshold: row.low_stock_threshold.flatten(),
    }
}

/// Skus a dry run would have written, as hashes: they stand in for the rows a real run would
/// find, in 8 bytes each whatever the sku's length.
#[derive(Default)]
pub struct Seen(HashSet<u64>);

impl Seen {
    fn key(sku: &str) -> u64 {
        let mut h = std::hash::DefaultHasher::new();
        sku.hash(&mut h);
        h.finish()
    }

    fn contains(&self, sku: &str) -> bool {
        self.0.contains(&Self::key(sku))
    }

    fn insert(&mut self, sku: &str) {
        self.0.insert(Self::key(sku));
    }
}

/// How to apply a batch.
pub struct Plan<'a> {
    pub seller: &'a SellerId,
    pub mode: Mode,
    /// Classify and count only; write no product.
    pub dry: bool,
    /// `LOW_STOCK_THRESHOLD`, for the events.
    pub low_stock_threshold: i32,
    pub at: DateTime<Utc>,
}

/// Classifies and (unless dry) writes `batch` in `txn`.
pub async fn apply(
    txn: &Transaction,
    plan: &Plan<'_>,
    batch: Batch,
    seen: &mut Seen,
) -> Result<Applied, DbErr> {
    let (seller, mode, dry, at) = (plan.seller, plan.mode, plan.dry, plan.at);
    let skus: Vec<String> = batch.skus.iter().cloned().collect();
    let existing: HashMap<String, Product> = repository::products::find_by_skus(txn, seller, skus)
        .await?
        .into_iter()
        .filter_map(|p| p.sku.clone().map(|sku| (sku, p)))
        .collect();
    let mut counts = Counts::default();
    let mut errors = Vec::new();
    let mut creates = Vec::new();
    let mut updates: Vec<(Product, Product)> = Vec::new();
    for row in batch.rows {
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                errors.push(stored_error(e));
                continue;
            }
        };
        let current = row.sku.as_ref().and_then(|sku| existing.get(sku));
        let earlier = dry && row.sku.as_deref().is_some_and(|sku| seen.contains(sku));
        match (mode, current) {
            (Mode::Insert, Some(p)) => errors.push(stored_error(RowError::new(
                row.line,
                Some("sku"),
                p.sku.as_deref(),
                format!("sku is already used by product {}", p.id),
            ))),
            (Mode::Insert, None) if earlier => errors.push(stored_error(RowError::new(
                row.line,
                Some("sku"),
                row.sku.as_deref(),
                "sku appears on an earlier row of the file".to_string(),
            ))),
            (Mode::Upsert, Some(p)) => match merged(p, &row, at) {
                Some(next) => updates.push((p.clone(), next)),
                None => counts.unchanged += 1,
            },
            // A dry run cannot compare with a row it did not write: count it as an update.
            (Mode::Upsert, None) if earlier => counts.updated += 1,
            (_, None) => {
                if dry {
                    if let Some(sku) = &row.sku {
                        seen.insert(sku);
                    }
                }
                creates.push(new_row(row));
            }
        }
    }
    counts.failed = errors.len() as i64;
    counts.created += creates.len() as i64;
    counts.updated += updates.len() as i64;
    let mut rows = Vec::new();
    if !dry {
        let created = repository::products::insert_many(txn, seller, creates, at).await?;
        let before: HashMap<i64, Product> =
            updates.iter().map(|(b, _)| (b.id, b.clone())).collect();
        let after = updates.into_iter().map(|(_, a)| a).collect();
        let updated = repository::products::replace_many(txn, seller, after).await?;
        let mut built = Events::new(plan.low_stock_threshold);
        for p in &created {
            built = built.created(p);
        }
        for p in &updated {
            if let Some(b) = before.get(&p.id) {
                built = built.updated(b, p, None);
            }
        }
        rows = built.into_rows();
    }
    Ok(Applied {
        counts,
        events: rows,
        errors,
        skus: batch.skus,
    })
}
