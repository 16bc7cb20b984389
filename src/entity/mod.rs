//! SeaORM entities: one module per table.

pub mod idempotency_key;
pub mod outbox;
pub mod product;
