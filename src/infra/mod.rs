//! Adapters to external systems, each behind a small trait with an in-process twin for the
//! embedded default (the identity provider's keys have none: bearer tokens are opt-in).
//! `state.rs` picks which one runs.

pub mod event_bus;
pub mod identity;
pub mod kafka;
pub mod rate_limit;
