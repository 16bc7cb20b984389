//! The one integration test binary. Most tests spawn the real server on port 0 and talk HTTP
//! to it; database-backed ones run twice, on SQLite and on PostgreSQL. The others drive an
//! adapter against its real service (rate limiter and event bus on Redis, publisher on a Kafka
//! broker) or read the repository itself (architecture, container files, the contract).

mod bus_support;
mod helpers;
mod kafka_support;
mod redis_support;

mod adjustments;
mod architecture;
mod auth;
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
mod outbox_order;
mod pagination;
mod products;
mod query_strings;
mod rate_limiter_adapters;
mod rate_limiting_http;
mod seller_counts;
mod spec;
mod tenancy;
mod validation;
