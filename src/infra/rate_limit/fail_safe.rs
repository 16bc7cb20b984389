//! What happens when the limiter's store fails: admit (fail open) or refuse (fail closed),
//! within a time budget, and say so in the metrics and logs.

use super::*;

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
