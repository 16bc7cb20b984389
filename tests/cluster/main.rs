//! Three real `product-api` processes on one PostgreSQL database, the shared Redis and the
//! Kafka broker, behind HAProxy configured by `deploy/haproxy.cfg` (the file compose's
//! `scaled` profile uses): what one instance promises must hold for the cluster, also while
//! instances are killed or restarted one by one.
//!
//! Each test builds its own cluster (fresh database, topic prefix and sellers); they run one
//! at a time, three servers being enough for the machines the suite runs on. The services
//! come from `scripts/test` (`TEST_DATABASE_URL`, `TEST_REDIS_URL`, `KAFKA_BROKERS`, and
//! `haproxy` on the `PATH`); a missing one fails the tests, it never skips them.

mod cluster;
mod kafka;
mod sse;

mod crud;
mod import_failover;
mod rate_limit;
mod relay_failover;
mod rolling_restart;
mod sse_failover;
