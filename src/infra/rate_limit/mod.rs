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

mod memory;
mod redis;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use poem::http::HeaderValue;

pub use self::memory::MemoryRateLimiter;
pub use self::redis::{RedisRateLimiter, RedisRateLimiterConfig};

const MICROS_PER_SEC: u64 = 1_000_000;
/// Windows shorter than this cannot be expressed as a Redis key TTL.
const MIN_WINDOW: Duration = Duration::from_millis(1);
/// Longer windows are quotas rather than rate limits; the bound also keeps
/// the per-key log small and the microsecond arithmetic far from overflow.
const MAX_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

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

/// Which bucket a request counts against. Each class has its own log per key,
/// so bulk traffic does not consume the standard allowance and vice versa.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyClass {
    Standard,
    Bulk,
    Anonymous,
}

impl PolicyClass {
    /// Stable name used in Redis keys and in the `RateLimit*` headers.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Bulk => "bulk",
            Self::Anonymous => "anonymous",
        }
    }
}

impl std::fmt::Display for PolicyClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `limit` requests per rolling `window`. Fields are private so that every
/// policy a backend sees has been validated (limit >= 1, 1 ms <= window <= 1 day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    class: PolicyClass,
    limit: u32,
    window: Duration,
}

impl Policy {
    /// Default standard policy: 100 requests per second.
    pub const fn standard() -> Self {
        Self {
            class: PolicyClass::Standard,
            limit: crate::config::defaults::rate_limit_standard(),
            window: Duration::from_secs(1),
        }
    }

    /// Default bulk policy: 5 requests per minute.
    pub const fn bulk() -> Self {
        Self {
            class: PolicyClass::Bulk,
            limit: crate::config::defaults::rate_limit_bulk(),
            window: Duration::from_secs(60),
        }
    }

    pub fn new(class: PolicyClass, limit: u32, window: Duration) -> Result<Self, LimiterError> {
        if limit == 0 {
            return Err(LimiterError::InvalidPolicy("limit must be at least 1"));
        }
        if window < MIN_WINDOW {
            return Err(LimiterError::InvalidPolicy("window must be at least 1 ms"));
        }
        if window > MAX_WINDOW {
            return Err(LimiterError::InvalidPolicy("window must be at most 24 h"));
        }
        Ok(Self {
            class,
            limit,
            window,
        })
    }

    pub const fn class(&self) -> PolicyClass {
        self.class
    }

    pub const fn name(&self) -> &'static str {
        self.class.as_str()
    }

    pub const fn limit(&self) -> u32 {
        self.limit
    }

    pub const fn window(&self) -> Duration {
        self.window
    }

    /// Window in microseconds, the unit of both logs. Bounded by `MAX_WINDOW`,
    /// so the conversion cannot truncate.
    fn window_micros(&self) -> u64 {
        u64::try_from(self.window.as_micros()).unwrap_or(u64::MAX)
    }

    /// Window in whole seconds, rounded up (header `w` is in seconds; a
    /// 300 ms test window is reported as 1).
    pub fn window_secs(&self) -> u64 {
        ceil_div(self.window_micros(), MICROS_PER_SEC)
    }
}

/// The outcome of one check, with everything needed to render headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    /// Requests still admissible in the current rolling window after this one.
    pub remaining: u32,
    /// Unix time (seconds, rounded up) at which `remaining` next increases;
    /// see the module docs. Never "now + window" unless that is the truth.
    pub reset_at: u64,
    /// Seconds (rounded up) from the decision to `reset_at`, measured on the
    /// backend's clock so it is not skewed by this host's clock.
    pub reset_after_secs: u64,
    /// Only on rejection: whole seconds until a retry can succeed, at least 1.
    pub retry_after_secs: Option<u64>,
    pub policy: PolicyClass,
    pub window_secs: u64,
    /// True when the backend failed and [`FailSafe`] made the decision.
    pub degraded: bool,
}

impl Decision {
    /// Builds a decision from the log state; shared by both backends so they
    /// produce identical values. `now_epoch_us` is the clock of whoever owns
    /// the log; `reset_after_us` is how long until `remaining` increases.
    fn from_log(
        policy: &Policy,
        allowed: bool,
        remaining: u32,
        now_epoch_us: u64,
        reset_after_us: u64,
    ) -> Self {
        let reset_after_secs = ceil_div(reset_after_us, MICROS_PER_SEC);
        Self {
            allowed,
            limit: policy.limit,
            remaining,
            reset_at: ceil_div(now_epoch_us.saturating_add(reset_after_us), MICROS_PER_SEC),
            reset_after_secs,
            retry_after_secs: (!allowed).then_some(reset_after_secs.max(1)),
            policy: policy.class,
            window_secs: policy.window_secs(),
            degraded: false,
        }
    }

    /// Fail-open: admit, and claim the full allowance since nothing is known.
    fn degraded_open(policy: &Policy) -> Self {
        let now = ceil_div(epoch_micros(), MICROS_PER_SEC);
        Self {
            allowed: true,
            limit: policy.limit,
            remaining: policy.limit,
            reset_at: now,
            reset_after_secs: 0,
            retry_after_secs: None,
            policy: policy.class,
            window_secs: policy.window_secs(),
            degraded: true,
        }
    }

    /// Fail-closed: reject and ask the client to come back in a second, by
    /// which time the backend may be back.
    fn degraded_closed(policy: &Policy) -> Self {
        let now = ceil_div(epoch_micros(), MICROS_PER_SEC);
        Self {
            allowed: false,
            limit: policy.limit,
            remaining: 0,
            reset_at: now.saturating_add(1),
            reset_after_secs: 1,
            retry_after_secs: Some(1),
            policy: policy.class,
            window_secs: policy.window_secs(),
            degraded: true,
        }
    }
}

/// Header name/value pairs for a decision.
///
/// Names are lowercase so they can go straight into
/// `http::HeaderName::from_static` (which rejects uppercase); HTTP header
/// names are case-insensitive, so `x-ratelimit-limit` is `X-RateLimit-Limit`.
/// `RateLimit-Policy` / `RateLimit` follow the IETF httpapi-ratelimit-headers
/// draft (`q` quota, `w` window secs, `r` remaining, `t` secs until reset).
/// `retry-after` is included only for rejections.
pub fn rate_limit_headers(decision: &Decision) -> Vec<(&'static str, HeaderValue)> {
    // Numbers convert without a string or a validation pass: this runs on every request.
    let name = decision.policy.as_str();
    let mut headers = vec![
        ("x-ratelimit-limit", HeaderValue::from(decision.limit)),
        (
            "x-ratelimit-remaining",
            HeaderValue::from(decision.remaining),
        ),
        ("x-ratelimit-reset", HeaderValue::from(decision.reset_at)),
    ];
    let structured = [
        (
            "ratelimit-policy",
            format!("\"{name}\";q={};w={}", decision.limit, decision.window_secs),
        ),
        (
            "ratelimit",
            format!(
                "\"{name}\";r={};t={}",
                decision.remaining, decision.reset_after_secs
            ),
        ),
    ];
    // Policy names and numbers are visible ASCII, so every value converts.
    headers.extend(
        structured
            .into_iter()
            .filter_map(|(header, value)| Some((header, HeaderValue::try_from(value).ok()?))),
    );
    if let Some(retry_after) = decision.retry_after_secs {
        headers.push(("retry-after", HeaderValue::from(retry_after)));
    }
    headers
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

/// What to do when the backend cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureMode {
    /// Admit everything: an outage of Redis must not take the API down.
    Open,
    /// Reject everything: for endpoints where overload is worse than downtime.
    Closed,
}

/// Wraps a backend so that backend errors become degraded decisions instead
/// of errors. There is no circuit breaker: every check still tries the
/// backend, so recovery is noticed on the first request that succeeds.
pub struct FailSafe<L> {
    inner: L,
    mode: FailureMode,
    degraded: AtomicBool,
    warn_interval: Duration,
    /// When the last warning was logged; one outage hit by thousands of
    /// requests per second must not flood the logs.
    last_warning: Mutex<Option<Instant>>,
    /// Failures since the last warning, reported with the next one.
    suppressed: AtomicU64,
}

impl<L: RateLimiter> FailSafe<L> {
    pub const DEFAULT_WARN_INTERVAL: Duration = Duration::from_secs(30);

    pub fn new(inner: L, mode: FailureMode) -> Self {
        Self {
            inner,
            mode,
            degraded: AtomicBool::new(false),
            warn_interval: Self::DEFAULT_WARN_INTERVAL,
            last_warning: Mutex::new(None),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Minimum time between two "backend unavailable" warnings.
    pub fn with_warn_interval(mut self, interval: Duration) -> Self {
        self.warn_interval = interval;
        self
    }

    /// True while the most recent backend call failed. Meant for readiness
    /// probes; it clears by itself on the next successful check.
    pub fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Acquire)
    }

    pub fn mode(&self) -> FailureMode {
        self.mode
    }

    pub fn inner(&self) -> &L {
        &self.inner
    }

    /// Like [`RateLimiter::check`] but infallible: backend errors are turned
    /// into a degraded decision according to the failure mode.
    pub async fn decide(&self, key: &str, policy: &Policy) -> Decision {
        match self.inner.check(key, policy).await {
            Ok(decision) => {
                if self.degraded.swap(false, Ordering::AcqRel) {
                    tracing::info!(policy = policy.name(), "rate limiter backend recovered");
                }
                decision
            }
            Err(error) => {
                self.degraded.store(true, Ordering::Release);
                self.warn_throttled(&error);
                match self.mode {
                    FailureMode::Open => Decision::degraded_open(policy),
                    FailureMode::Closed => Decision::degraded_closed(policy),
                }
            }
        }
    }

    fn warn_throttled(&self, error: &LimiterError) {
        let now = Instant::now();
        let mut last = lock(&self.last_warning);
        let due = last.is_none_or(|at| now.duration_since(at) >= self.warn_interval);
        if due {
            *last = Some(now);
            let suppressed = self.suppressed.swap(0, Ordering::Relaxed);
            tracing::warn!(
                %error,
                mode = ?self.mode,
                suppressed,
                "rate limiter backend unavailable; deciding without it"
            );
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl<L: RateLimiter> RateLimiter for FailSafe<L> {
    /// Never returns `Err`; see [`FailSafe::decide`].
    async fn check(&self, key: &str, policy: &Policy) -> Result<Decision, LimiterError> {
        Ok(self.decide(key, policy).await)
    }
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
