//! SeaORM entities: one module per table.

pub mod idempotency_key;
pub mod import;
pub mod import_error;
pub mod outbox;
pub mod product;
