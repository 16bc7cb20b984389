//! PostgreSQL: the outbox's id trigger steps aside for an insert that brings its own ids.
//!
//! The row trigger of `m20261126_000005_order_outbox_ids_per_seller` takes the seller's lock and
//! draws the id for each row: about 10 µs a row, a quarter of an import's database time. A
//! writer of many rows of one seller can do the same once per statement: take the seller's
//! lock itself, then draw the ids in its `INSERT … SELECT nextval(…)` (the repository's batch
//! append does). The trigger now runs only for rows without an id, so every other writer keeps
//! the guarantee with no change.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    "DROP TRIGGER outbox_id_in_seller_commit_order ON outbox",
    "CREATE TRIGGER outbox_id_in_seller_commit_order BEFORE INSERT ON outbox
     FOR EACH ROW WHEN (NEW.id IS NULL) EXECUTE FUNCTION outbox_id_in_seller_commit_order()",
];

const DOWN: &[&str] = &[
    "DROP TRIGGER outbox_id_in_seller_commit_order ON outbox",
    "CREATE TRIGGER outbox_id_in_seller_commit_order BEFORE INSERT ON outbox
     FOR EACH ROW EXECUTE FUNCTION outbox_id_in_seller_commit_order()",
];

postgres_only!();
