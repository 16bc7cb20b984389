//! SeaORM queries. Every entry point takes the seller id and filters by it: there is no
//! unscoped finder a handler could misuse. Functions take `&impl ConnectionTrait` so the
//! service decides the transaction, and return `DbErr`.

pub mod binary_copy;
pub mod exported;
pub mod idempotency;
pub mod import_chunks;
pub mod imports;
pub mod locks;
pub mod outbox;
pub mod products;
pub mod transaction;

use sea_orm::{DbErr, SqlErr};

/// True when `err` is a unique-constraint violation: the one place that decides it.
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Rows per multi-row statement: well under the bind-parameter limits of both databases
/// (SQLite's 32,766) for tables of up to 30 columns.
pub const ROWS_PER_STATEMENT: usize = 1000;

/// `items` in owned chunks of at most `ROWS_PER_STATEMENT`, one multi-row statement each.
pub fn statements<T>(items: Vec<T>) -> impl Iterator<Item = Vec<T>> {
    let mut items = items.into_iter().peekable();
    std::iter::from_fn(move || {
        items.peek()?;
        Some(items.by_ref().take(ROWS_PER_STATEMENT).collect())
    })
}
