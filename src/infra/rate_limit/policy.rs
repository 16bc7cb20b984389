//! What a request counts against: a class (standard, bulk, anonymous), a limit and a window.

use super::*;

/// Windows shorter than this cannot be expressed as a Redis key TTL.
const MIN_WINDOW: Duration = Duration::from_millis(1);

/// Longer windows are quotas rather than rate limits; the bound also keeps
/// the per-key log small and the microsecond arithmetic far from overflow.
const MAX_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

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
    pub(super) fn window_micros(&self) -> u64 {
        u64::try_from(self.window.as_micros()).unwrap_or(u64::MAX)
    }

    /// Window in whole seconds, rounded up (header `w` is in seconds; a
    /// 300 ms test window is reported as 1).
    pub fn window_secs(&self) -> u64 {
        ceil_div(self.window_micros(), MICROS_PER_SEC)
    }
}
