//! product-api: a multi-tenant product inventory service for marketplace sellers.

/// HTTP surface: generated contract, handlers, problem+json errors.
pub mod api;
/// Capped exponential backoff with jitter, for retry loops.
pub mod backoff;
/// Request coalescing: many concurrent calls, one round trip.
pub mod coalesce;
/// Environment configuration.
pub mod config;
/// Connection limits: how many, how long idle, how they close.
pub mod connection_limit;
/// Value types shared by every layer (seller ids, money).
pub mod domain;
/// SeaORM entities.
pub mod entity;
/// Adapters to external systems behind small traits, each with an in-process twin.
pub mod infra;
/// Prometheus metrics.
pub mod metrics;
/// SeaORM queries, always scoped to one seller.
pub mod repository;
/// Business rules and transactions.
pub mod service;
/// Building and running the server.
pub mod startup;
/// Adapter wiring.
pub mod state;
/// Logging setup.
pub mod telemetry;
/// The spec's rules as data, and the one check of a body or an import row against them.
pub mod validation;
