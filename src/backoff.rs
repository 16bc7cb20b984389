//! Capped exponential backoff with jitter, for every retry loop (the Redis event bus
//! reconnecting, the outbox relay retrying Kafka): jitter keeps instances that failed
//! together from retrying in step.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

/// Capped exponential backoff with "equal jitter": each delay is drawn from
/// `[d/2, d]` where `d` doubles from `min` up to `max`.
#[derive(Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        let min = min.max(Duration::from_millis(1));
        let max = max.max(min);
        Self {
            min,
            max,
            current: min,
        }
    }

    /// The delay to wait now; doubles the next one (up to `max`).
    pub fn next_delay(&mut self) -> Duration {
        let base = self.current;
        self.current = self.current.saturating_mul(2).min(self.max);
        let half = base / 2;
        half + half.mul_f64(unit_random())
    }

    pub fn reset(&mut self) {
        self.current = self.min;
    }
}

/// A value in `[0, 1)`; good enough for jitter, no extra dependency.
fn unit_random() -> f64 {
    let bits = RandomState::new().hash_one(Instant::now()) >> 11;
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_cap_with_jitter_and_resets() {
        let min = Duration::from_millis(100);
        let max = Duration::from_secs(5);
        let mut backoff = Backoff::new(min, max);
        let mut expected = min;
        for _ in 0..12 {
            let delay = backoff.next_delay();
            assert!(
                delay >= expected / 2 && delay <= expected,
                "{delay:?} vs {expected:?}"
            );
            expected = (expected * 2).min(max);
        }
        assert_eq!(expected, max);
        backoff.reset();
        assert!(backoff.next_delay() <= min);
    }
}
