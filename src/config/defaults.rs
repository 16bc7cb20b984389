//! Every setting's default, once: the modules that need one (the Kafka publisher, the rate
//! limiter) read it from here.

use std::path::PathBuf;

pub fn port() -> u16 {
    3001
}
pub fn host() -> String {
    "0.0.0.0".to_string()
}
pub fn database_max_connections() -> u32 {
    20
}
pub fn data_dir() -> PathBuf {
    PathBuf::from("data")
}
pub fn yes() -> bool {
    true
}
pub fn json_body_limit_bytes() -> usize {
    1024 * 1024
}
pub fn idempotency_ttl_hours() -> u64 {
    24
}
pub fn shutdown_timeout_secs() -> u64 {
    25
}
pub fn shutdown_delay_secs() -> u64 {
    2
}
pub fn idle_timeout_secs() -> u64 {
    60
}
pub fn max_connections() -> usize {
    10_000
}
pub fn low_stock_threshold() -> i32 {
    10
}
pub const fn kafka_topic_partitions() -> i32 {
    4
}
pub fn outbox_batch_size() -> u64 {
    2000
}
pub fn outbox_sweep_ms() -> u64 {
    1000
}
pub fn database_idle_transaction_timeout_ms() -> u64 {
    10_000
}
pub fn outbox_retention_hours() -> u64 {
    168
}
pub fn import_max_bytes() -> u64 {
    100 * 1024 * 1024
}
pub fn import_max_rows() -> u64 {
    1_000_000
}
pub fn max_url_bytes() -> usize {
    8192
}
pub fn max_header_bytes() -> usize {
    16 * 1024
}
pub fn max_headers() -> usize {
    64
}
pub fn import_max_field_bytes() -> u64 {
    16 * 1024
}
pub fn import_max_record_bytes() -> u64 {
    32 * 1024
}
pub fn import_batch_size() -> usize {
    5000
}
pub fn sse_heartbeat_secs() -> u64 {
    15
}
pub fn sse_retry_ms() -> u64 {
    3000
}
pub fn sse_max_streams_per_seller() -> usize {
    10
}
pub fn events_channel() -> String {
    "product-api:events".to_string()
}
pub const fn rate_limit_standard() -> u32 {
    100
}
pub const fn rate_limit_bulk() -> u32 {
    5
}
pub fn rate_limit_anonymous() -> u32 {
    20
}

pub fn auth_seller_claim() -> String {
    "seller_id".to_string()
}

pub fn auth_leeway_secs() -> u64 {
    30
}

pub fn auth_jwks_min_refetch_secs() -> u64 {
    30
}

pub fn auth_jwks_max_age_secs() -> u64 {
    3600
}
