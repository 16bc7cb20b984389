//! In-process backend: the same sliding-window log as the Lua script, for
//! tests, local development and single-instance deployments.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{epoch_micros, lock, Decision, LimiterError, Policy, PolicyClass, RateLimiter};

/// Admission times of one key, in microseconds since the limiter's origin.
struct Log {
    entries: VecDeque<u64>,
    /// Window of the policy that last touched the key; decides when the
    /// whole log is stale and can be evicted by the sweep.
    window_us: u64,
}

struct State {
    logs: HashMap<PolicyClass, HashMap<String, Log>>,
    last_sweep_us: u64,
}

/// Single-process sliding-window log limiter. Produces the same decisions
/// as [`super::RedisRateLimiter`] (monotonic clock for admission, wall clock
/// only for `reset_at`).
///
/// Memory stays bounded by the keys active within one window: a key's log is
/// trimmed on every check, and a periodic sweep drops keys whose newest entry
/// has left its window.
pub struct MemoryRateLimiter {
    /// Monotonic origin, so admission is immune to wall-clock jumps.
    origin: Instant,
    sweep_interval: Duration,
    state: Mutex<State>,
}

impl Default for MemoryRateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryRateLimiter {
    pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
            sweep_interval: Self::DEFAULT_SWEEP_INTERVAL,
            state: Mutex::new(State {
                logs: HashMap::new(),
                last_sweep_us: 0,
            }),
        }
    }

    /// How often (at most) a check also scans all keys for stale logs. The
    /// scan is O(keys) under the lock, so it is amortised over this interval.
    pub fn with_sweep_interval(mut self, interval: Duration) -> Self {
        self.sweep_interval = interval;
        self
    }

    /// Number of keys currently holding a log (for tests and metrics).
    pub fn tracked_keys(&self) -> usize {
        lock(&self.state).logs.values().map(HashMap::len).sum()
    }

    fn now_us(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn decide(&self, key: &str, policy: &Policy) -> Decision {
        let now = self.now_us();
        let window = policy.window_micros();
        let limit = usize::try_from(policy.limit()).unwrap_or(usize::MAX);

        let mut state = lock(&self.state);
        if now.saturating_sub(state.last_sweep_us) >= duration_us(self.sweep_interval) {
            state.last_sweep_us = now;
            sweep(&mut state.logs, now);
        }

        // One small allocation per check keeps this simple; the memory
        // backend is not the high-throughput path.
        let log = state
            .logs
            .entry(policy.class())
            .or_default()
            .entry(key.to_owned())
            .or_insert_with(|| Log {
                entries: VecDeque::new(),
                window_us: window,
            });
        log.window_us = window;

        // Same steps as the Lua script: trim, count, maybe add, find reset.
        while log
            .entries
            .front()
            .is_some_and(|&s| s.saturating_add(window) <= now)
        {
            log.entries.pop_front();
        }
        let allowed = log.entries.len() < limit;
        if allowed {
            log.entries.push_back(now);
        }
        let count = log.entries.len();
        let rank = count.saturating_sub(limit);
        let reset = log
            .entries
            .get(rank)
            .map_or(now.saturating_add(window), |&s| s.saturating_add(window));
        let remaining = u32::try_from(limit.saturating_sub(count)).unwrap_or(0);
        drop(state);

        Decision::from_log(
            policy,
            allowed,
            remaining,
            epoch_micros(),
            reset.saturating_sub(now),
        )
    }
}

impl RateLimiter for MemoryRateLimiter {
    async fn check(&self, key: &str, policy: &Policy) -> Result<Decision, LimiterError> {
        Ok(self.decide(key, policy))
    }
}

/// Drops logs whose newest entry has left the window (like the Redis key TTL).
fn sweep(logs: &mut HashMap<PolicyClass, HashMap<String, Log>>, now: u64) {
    for per_class in logs.values_mut() {
        per_class.retain(|_, log| {
            log.entries
                .back()
                .is_some_and(|&newest| newest.saturating_add(log.window_us) > now)
        });
    }
}

fn duration_us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stale_keys_are_evicted() {
        let limiter = MemoryRateLimiter::new().with_sweep_interval(Duration::from_millis(10));
        let policy = Policy::new(PolicyClass::Standard, 2, Duration::from_millis(50)).unwrap();
        for seller in 0..100 {
            limiter
                .check(&format!("seller-{seller}"), &policy)
                .await
                .unwrap();
        }
        assert_eq!(limiter.tracked_keys(), 100);
        tokio::time::sleep(Duration::from_millis(80)).await;
        // Any check past the sweep interval triggers the sweep.
        limiter.check("fresh", &policy).await.unwrap();
        assert_eq!(limiter.tracked_keys(), 1);
    }
}
