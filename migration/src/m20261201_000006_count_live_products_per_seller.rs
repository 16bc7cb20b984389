//! PostgreSQL: each seller's number of live products, kept by triggers, so an unfiltered list
//! reads its total from one row instead of counting the seller's products.
//!
//! A count of a seller's live rows is an index-only scan, but on a table whose visibility map
//! is not current (after a bulk load, before a vacuum) every entry also reads the heap: a
//! seller with a thousand products cost a list 1.5 ms of database time. The triggers keep the
//! count in the writes' own transactions, so it is exact for every reader:
//! - inserts, per statement, from its new rows (an import batch updates the row once);
//! - a soft delete (or an undelete), per row, only when `deleted_at` changes;
//! - deletes, per statement, from their old rows.
//!
//! The count row is locked by a seller's write from its product insert or soft delete until it
//! commits, so a seller's writes wait for each other from there (before, from the outbox
//! lock, taken later in the same transactions). Every writer takes the product rows first,
//! then the count, then the outbox lock, in that order.
//! SQLite counts directly.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    // Writers of other instances (a rolling deploy) wait from the backfill until the triggers
    // exist, so no row is counted twice or missed; the migration is one transaction.
    "LOCK TABLE products IN SHARE ROW EXCLUSIVE MODE",
    "CREATE TABLE seller_product_counts (
       seller_id varchar(50) PRIMARY KEY,
       live bigint NOT NULL
     )",
    "INSERT INTO seller_product_counts (seller_id, live)
     SELECT seller_id, count(*) FROM products WHERE deleted_at IS NULL GROUP BY seller_id",
    // Each statement is written out in its function (rather than shared through a helper
    // function) so plpgsql plans it once per session: a create costs the trigger ~25 µs.
    "CREATE FUNCTION seller_product_counts_inserted() RETURNS trigger
     LANGUAGE plpgsql AS $$
     BEGIN
       INSERT INTO seller_product_counts AS c (seller_id, live)
       SELECT seller_id, count(*) FROM new_rows WHERE deleted_at IS NULL GROUP BY seller_id
       ON CONFLICT (seller_id) DO UPDATE SET live = c.live + EXCLUDED.live;
       RETURN NULL;
     END $$",
    "CREATE FUNCTION seller_product_counts_deleted() RETURNS trigger
     LANGUAGE plpgsql AS $$
     BEGIN
       UPDATE seller_product_counts AS c SET live = c.live - gone.n
       FROM (SELECT seller_id, count(*) AS n FROM old_rows WHERE deleted_at IS NULL
             GROUP BY seller_id) AS gone
       WHERE c.seller_id = gone.seller_id;
       RETURN NULL;
     END $$",
    "CREATE FUNCTION seller_product_counts_soft_deleted() RETURNS trigger
     LANGUAGE plpgsql AS $$
     BEGIN
       INSERT INTO seller_product_counts AS c (seller_id, live)
       VALUES (NEW.seller_id, CASE WHEN NEW.deleted_at IS NULL THEN 1 ELSE -1 END)
       ON CONFLICT (seller_id) DO UPDATE SET live = c.live + EXCLUDED.live;
       RETURN NULL;
     END $$",
    "CREATE TRIGGER seller_product_counts_inserted AFTER INSERT ON products
     REFERENCING NEW TABLE AS new_rows
     FOR EACH STATEMENT EXECUTE FUNCTION seller_product_counts_inserted()",
    "CREATE TRIGGER seller_product_counts_deleted AFTER DELETE ON products
     REFERENCING OLD TABLE AS old_rows
     FOR EACH STATEMENT EXECUTE FUNCTION seller_product_counts_deleted()",
    // A column list is not allowed with transition tables; soft deletes are one row each.
    "CREATE TRIGGER seller_product_counts_soft_deleted AFTER UPDATE OF deleted_at ON products
     FOR EACH ROW WHEN ((OLD.deleted_at IS NULL) <> (NEW.deleted_at IS NULL))
     EXECUTE FUNCTION seller_product_counts_soft_deleted()",
];

const DOWN: &[&str] = &[
    "DROP TRIGGER seller_product_counts_soft_deleted ON products",
    "DROP TRIGGER seller_product_counts_deleted ON products",
    "DROP TRIGGER seller_product_counts_inserted ON products",
    "DROP FUNCTION seller_product_counts_soft_deleted()",
    "DROP FUNCTION seller_product_counts_deleted()",
    "DROP FUNCTION seller_product_counts_inserted()",
    "DROP TABLE seller_product_counts",
];

postgres_only!();
