//! The one integration test binary: every test spawns the real server on port 0 and talks
//! HTTP to it. Database-backed tests run twice, on SQLite and on PostgreSQL.

mod bus_support;
mod helpers;
mod kafka_support;
mod redis_support;

mod adjustments;
mod cli;
mod conditional;
mod container;
mod cors;
mod errors;
mod event_bus_memory;
mod event_bus_reconnect;
mod event_bus_redis;
mod event_stream;
mod events;
mod export;
mod idempotency;
mod imports;
mod kafka_broker_restart;
mod kafka_publisher;
mod limits;
mod operations;
mod pagination;
mod products;
mod query_strings;
mod rate_limiter;
mod rate_limiting;
mod spec;
mod tenancy;
mod validation;
