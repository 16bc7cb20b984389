//! PostgreSQL: one seller's outbox ids follow its commit order.
//!
//! Ids come from a sequence when a row is inserted, so concurrent transactions commit out of
//! id order, and a reader that has seen a seller's event N could later see that seller's
//! N-1 commit; event streams resume after the last id they sent and would skip it. A row
//! trigger therefore takes a lock on the row's seller, held until the transaction ends, and
//! only then draws the id: the seller's next event cannot get an id until this transaction
//! has committed or rolled back. Only one seller's writes wait on each other, from their
//! first event insert to their commit. In the trigger rather than in a statement of the
//! application's, it costs no round trip and holds for every writer. SQLite runs one writer
//! at a time, so it needs nothing.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The lock's first key is "outb" in ASCII, its second the seller's hash: two-key advisory
/// locks share no key space with the one-key locks of the relay and the import worker.
const UP: &[&str] = &[
    "CREATE FUNCTION outbox_id_in_seller_commit_order() RETURNS trigger
     LANGUAGE plpgsql AS $$
     BEGIN
       PERFORM pg_advisory_xact_lock(1869968482, hashtext(NEW.seller_id));
       NEW.id := nextval('outbox_id_seq');
       RETURN NEW;
     END $$",
    "CREATE TRIGGER outbox_id_in_seller_commit_order BEFORE INSERT ON outbox
     FOR EACH ROW EXECUTE FUNCTION outbox_id_in_seller_commit_order()",
    // The trigger draws every id; a default would draw one more per row for nothing.
    "ALTER TABLE outbox ALTER COLUMN id DROP DEFAULT",
];

const DOWN: &[&str] = &[
    "ALTER TABLE outbox ALTER COLUMN id SET DEFAULT nextval('outbox_id_seq')",
    "DROP TRIGGER outbox_id_in_seller_commit_order ON outbox",
    "DROP FUNCTION outbox_id_in_seller_commit_order()",
];

postgres_only!();
