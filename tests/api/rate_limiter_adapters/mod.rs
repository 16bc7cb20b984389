//! The rate limiter adapters themselves, below HTTP: the memory backend and the real Redis
//! (no mocks; the shared one at TEST_REDIS_URL, or private redis-server processes).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_redis::redis;
use product_api::infra::rate_limit::{
    rate_limit_headers, Decision, FailSafe, FailureMode, LimiterError, MemoryRateLimiter, Policy,
    PolicyClass, RateLimiter, RedisRateLimiter, RedisRateLimiterConfig,
};

use crate::redis_support::{
    limiter_with, now_epoch_secs, pool, redis_limiter, shared_pool, TempRedis,
};

fn policy(limit: u32, window_ms: u64) -> Policy {
    Policy::new(
        PolicyClass::Standard,
        limit,
        Duration::from_millis(window_ms),
    )
    .expect("the limiter answers")
}

async fn check<L: RateLimiter>(limiter: &L, key: &str, policy: &Policy) -> Decision {
    limiter
        .check(key, policy)
        .await
        .expect("the limiter answers")
}

async fn admitted<L: RateLimiter>(limiter: &L, key: &str, policy: &Policy, n: usize) -> usize {
    let mut count = 0;
    for _ in 0..n {
        if check(limiter, key, policy).await.allowed {
            count += 1;
        }
    }
    count
}

// ---- 1. exact admission under concurrency ---------------------------------

mod decisions;
mod redis_store;
