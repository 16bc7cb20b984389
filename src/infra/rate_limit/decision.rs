//! A limiter's answer for one request, and the rate-limit headers it becomes.

use super::*;

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
    pub(super) fn from_log(
        policy: &Policy,
        allowed: bool,
        remaining: u32,
        now_epoch_us: u64,
        reset_after_us: u64,
    ) -> Self {
        let reset_after_secs = ceil_div(reset_after_us, MICROS_PER_SEC);
        Self {
            allowed,
            limit: policy.limit(),
            remaining,
            reset_at: ceil_div(now_epoch_us.saturating_add(reset_after_us), MICROS_PER_SEC),
            reset_after_secs,
            retry_after_secs: (!allowed).then_some(reset_after_secs.max(1)),
            policy: policy.class(),
            window_secs: policy.window_secs(),
            degraded: false,
        }
    }

    /// Fail-open: admit, and claim the full allowance since nothing is known.
    pub(super) fn degraded_open(policy: &Policy) -> Self {
        let now = ceil_div(epoch_micros(), MICROS_PER_SEC);
        Self {
            allowed: true,
            limit: policy.limit(),
            remaining: policy.limit(),
            reset_at: now,
            reset_after_secs: 0,
            retry_after_secs: None,
            policy: policy.class(),
            window_secs: policy.window_secs(),
            degraded: true,
        }
    }

    /// Fail-closed: reject and ask the client to come back in a second, by
    /// which time the backend may be back.
    pub(super) fn degraded_closed(policy: &Policy) -> Self {
        let now = ceil_div(epoch_micros(), MICROS_PER_SEC);
        Self {
            allowed: false,
            limit: policy.limit(),
            remaining: 0,
            reset_at: now.saturating_add(1),
            reset_after_secs: 1,
            retry_after_secs: Some(1),
            policy: policy.class(),
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
