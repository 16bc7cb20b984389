//! Business rules and transaction boundaries. Services own the transaction; repositories only
//! run queries on the connection they are given.

pub mod cursor;
pub mod events;
pub mod export;
pub mod health;
pub mod idempotency;
pub mod import;
pub mod notifications;
pub mod products;
pub mod relay;
pub mod write;

/// The time of a write. Timestamps are kept to the microsecond, the precision PostgreSQL
/// stores, so what a write returns equals what a later read returns.
pub(crate) fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}
