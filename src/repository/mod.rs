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

/// `count` ids drawn from `sequence`, ascending.
async fn draw_ids(
    db: &impl sea_orm::ConnectionTrait,
    sequence: &str,
    count: usize,
) -> Result<Vec<i64>, DbErr> {
    const SQL: &str = "SELECT nextval($1::regclass) AS id FROM generate_series(1, $2)";
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    let statement = sea_orm::Statement::from_sql_and_values(
        sea_orm::DatabaseBackend::Postgres,
        SQL,
        [sequence.into(), count.into()],
    );
    let mut ids = ids_of(db.query_all(statement).await?)?;
    ids.sort_unstable();
    Ok(ids)
}

/// The `id` column of `rows`.
fn ids_of(rows: Vec<sea_orm::QueryResult>) -> Result<Vec<i64>, DbErr> {
    rows.iter().map(|r| r.try_get::<i64>("", "id")).collect()
}
