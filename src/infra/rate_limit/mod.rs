//! Per-seller rate limiting with a sliding-window log.
//!
//! Guarantee: for a policy `{limit, window}`, no rolling interval of length
//! `window` contains more than `limit` admitted requests for one key. Fixed
//! windows (2x burst across a boundary) and GCRA with burst cannot promise
//! that, so every admission is logged with its timestamp and counted.
//!
//! Time model (identical in both backends): a request admitted at `s`
//! occupies the half-open interval `[s, s + window)`; at `s + window` its
//! slot is free again.
//!
//! `reset_at` is defined as *the earliest instant at which `remaining` will be
//! larger than it is now* (ignoring new requests), i.e. when the oldest
//! request still in the window leaves it. For a rejected or exhausted key
//! that is exactly when the next request will be admitted. (If the limit was
//! lowered while a key held more entries than the new limit, it is when
//! enough entries have left for one slot to be free.)
//!
//! Backends: [`RedisRateLimiter`] (shared by all app instances, one atomic
//! Lua EVALSHA per round trip, deciding every check that waited for it) and
//! [`MemoryRateLimiter`] (single process: tests, local development). Wrap
//! either in [`FailSafe`] to decide what happens when the backend is
//! unavailable.

mod decision;
mod fail_safe;
mod memory;
mod policy;
mod redis;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use poem::http::HeaderValue;

pub use self::decision::{rate_limit_headers, Decision};
pub use self::fail_safe::{FailSafe, FailureMode};
pub use self::memory::MemoryRateLimiter;
pub use self::policy::{Policy, PolicyClass};
pub use self::redis::{RedisRateLimiter, RedisRateLimiterConfig};

const MICROS_PER_SEC: u64 = 1_000_000;

/// Errors from a rate-limiter backend or from building a [`Policy`].
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum LimiterError {
    #[error("invalid rate-limit policy: {0}")]
    InvalidPolicy(&'static str),
    /// Shared: one failed batch answers every check in it.
    #[error("could not get a Redis connection: {0}")]
    Pool(#[from] Arc<deadpool_redis::PoolError>),
    #[error("Redis command failed: {0}")]
    Redis(#[from] deadpool_redis::redis::RedisError),
    #[error("rate-limit backend did not answer within {0:?}")]
    Timeout(Duration),
    #[error("unexpected reply from the rate-limit script: {0}")]
    UnexpectedReply(String),
    #[error("the rate limiter's batching task has stopped")]
    Stopped,
}

/// A rate limiter backend. Futures are `Send` so the check can run inside
/// poem handlers and spawned tokio tasks.
pub trait RateLimiter: Send + Sync {
    /// Records one request for `key` (e.g. a seller id) under `policy` if it
    /// fits, and reports the outcome. Rejected requests are not recorded.
    fn check(
        &self,
        key: &str,
        policy: &Policy,
    ) -> impl Future<Output = Result<Decision, LimiterError>> + Send;
}

/// Locks a std mutex, ignoring poisoning: the guarded data here is always left
/// consistent (no code panics while holding it), and a rate limiter must
/// keep answering rather than propagate an unrelated panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn ceil_div(value: u64, divisor: u64) -> u64 {
    value.div_ceil(divisor)
}

/// Wall-clock time in microseconds since the Unix epoch (0 if the clock is
/// before 1970, which only affects header values, never admission).
fn epoch_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The limiter and its three policies, from configuration.
#[derive(Clone)]
pub struct RateLimits {
    pub limiter: Arc<AnyLimiter>,
    pub metrics: crate::metrics::Metrics,
    pub standard: Policy,
    pub bulk: Policy,
    pub anonymous: Policy,
}

/// The limiter the application runs: shared through Redis, or in-process when no Redis is
/// configured. An enum rather than `dyn`, since [`RateLimiter`] returns `impl Future`.
pub enum AnyLimiter {
    Redis(FailSafe<RedisRateLimiter>),
    Memory(FailSafe<MemoryRateLimiter>),
}

impl AnyLimiter {
    pub async fn decide(&self, key: &str, policy: &Policy) -> Decision {
        match self {
            Self::Redis(l) => l.decide(key, policy).await,
            Self::Memory(l) => l.decide(key, policy).await,
        }
    }

    pub fn is_degraded(&self) -> bool {
        match self {
            Self::Redis(l) => l.is_degraded(),
            Self::Memory(l) => l.is_degraded(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(allowed: bool, remaining: u32, reset_after_secs: u64) -> Decision {
        Decision {
            allowed,
            limit: 100,
            remaining,
            reset_at: 1_700_000_001,
            reset_after_secs,
            retry_after_secs: (!allowed).then_some(reset_after_secs.max(1)),
            policy: PolicyClass::Standard,
            window_secs: 1,
            degraded: false,
        }
    }

    fn text_headers(decision: &Decision) -> Vec<(&'static str, String)> {
        rate_limit_headers(decision)
            .into_iter()
            .map(|(name, value)| (name, value.to_str().unwrap_or("<not text>").to_owned()))
            .collect()
    }

    #[test]
    fn headers_for_admitted_request() {
        let headers = text_headers(&decision(true, 87, 1));
        assert_eq!(
            headers,
            vec![
                ("x-ratelimit-limit", "100".to_owned()),
                ("x-ratelimit-remaining", "87".to_owned()),
                ("x-ratelimit-reset", "1700000001".to_owned()),
                ("ratelimit-policy", "\"standard\";q=100;w=1".to_owned()),
                ("ratelimit", "\"standard\";r=87;t=1".to_owned()),
            ]
        );
    }

    #[test]
    fn headers_for_rejected_bulk_request_include_retry_after() {
        let d = Decision {
            allowed: false,
            limit: 5,
            remaining: 0,
            reset_at: 1_700_000_060,
            reset_after_secs: 60,
            retry_after_secs: Some(60),
            policy: PolicyClass::Bulk,
            window_secs: 60,
            degraded: false,
        };
        let headers = text_headers(&d);
        assert!(headers.contains(&("ratelimit-policy", "\"bulk\";q=5;w=60".to_owned())));
        assert!(headers.contains(&("ratelimit", "\"bulk\";r=0;t=60".to_owned())));
        assert_eq!(headers.last(), Some(&("retry-after", "60".to_owned())));
        // Names must be valid for `HeaderName::from_static`, i.e. lowercase.
        assert!(headers
            .iter()
            .all(|(name, _)| !name.chars().any(|c| c.is_ascii_uppercase())));
    }

    #[test]
    fn policy_defaults_and_validation() {
        assert_eq!(Policy::standard().limit(), 100);
        assert_eq!(Policy::standard().window(), Duration::from_secs(1));
        assert_eq!(Policy::bulk().limit(), 5);
        assert_eq!(Policy::bulk().window_secs(), 60);
        assert_eq!(Policy::bulk().name(), "bulk");
        let short = Policy::new(PolicyClass::Anonymous, 3, Duration::from_millis(300));
        assert_eq!(short.map(|p| p.window_secs()).ok(), Some(1));
        assert!(Policy::new(PolicyClass::Standard, 0, Duration::from_secs(1)).is_err());
        assert!(Policy::new(PolicyClass::Standard, 1, Duration::from_micros(999)).is_err());
        assert!(Policy::new(PolicyClass::Standard, 1, Duration::from_secs(86_401)).is_err());
    }

    #[test]
    fn decision_rounds_reset_up_and_retry_after_is_at_least_one() {
        let policy = Policy::bulk();
        // 59.4 s until the oldest entry leaves -> 60 s, reset_at rounded up.
        let d = Decision::from_log(&policy, false, 0, 1_000_000_500_000, 59_400_000);
        assert_eq!(d.reset_after_secs, 60);
        assert_eq!(d.retry_after_secs, Some(60));
        assert_eq!(d.reset_at, 1_000_060);
        // A slot frees within the same microsecond: still ask for 1 s.
        let d = Decision::from_log(&policy, false, 0, 1_000_000_000_000, 0);
        assert_eq!(d.retry_after_secs, Some(1));
        let d = Decision::from_log(&policy, true, 4, 1_000_000_000_000, 60_000_000);
        assert_eq!(d.retry_after_secs, None);
        assert_eq!((d.remaining, d.reset_after_secs), (4, 60));
    }
}
