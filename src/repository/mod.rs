//! SeaORM queries. Every entry point takes the seller id and filters by it: there is no
//! unscoped finder a handler could misuse. Functions take `&impl ConnectionTrait` so the
//! service decides the transaction, and return `DbErr`.

pub mod idempotency;
pub mod imports;
pub mod outbox;
pub mod products;

use sea_orm::{DbErr, SqlErr};

/// True when `err` is a unique-constraint violation: the one place that decides it.
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}
