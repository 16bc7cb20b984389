//! Adapters to external systems, each behind a small trait with an in-process twin for the
//! embedded default. `state.rs` picks which one runs.

pub mod event_bus;
pub mod kafka;
pub mod rate_limit;
