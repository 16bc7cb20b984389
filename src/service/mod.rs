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
