//! The decisions themselves, the same on both backends: exact admission under concurrency,
//! the bulk sequence, remaining and reset, and a sliding (not fixed) window.

use super::*;

async fn exact_admission<L: RateLimiter + 'static>(limiter: Arc<L>) {
    let policy = Policy::standard();
    let started = Instant::now();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let limiter = Arc::clone(&limiter);
            tokio::spawn(async move { limiter.check("seller-1", &policy).await })
        })
        .collect();
    let mut remaining_of_admitted = Vec::new();
    for task in tasks {
        let decision = task
            .await
            .expect("the limiter answers")
            .expect("the limiter answers");
        if decision.allowed {
            remaining_of_admitted.push(decision.remaining);
        } else {
            assert_eq!(decision.remaining, 0);
            assert!(decision.retry_after_secs.is_some_and(|s| s >= 1));
        }
    }
    // If the burst took longer than the window, old entries would have slid
    // out and more admissions would be legitimate; make that failure obvious.
    assert!(
        started.elapsed() < policy.window(),
        "burst outlasted window"
    );
    assert_eq!(remaining_of_admitted.len(), 100, "exactly `limit` admitted");
    // Every admission saw a different count: the decision is atomic.
    remaining_of_admitted.sort_unstable();
    assert_eq!(remaining_of_admitted, (0..100).collect::<Vec<u32>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_admission_redis() {
    exact_admission(Arc::new(redis_limiter("exact").await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_admission_memory() {
    exact_admission(Arc::new(MemoryRateLimiter::new())).await;
}

// ---- 2. bulk policy ---------------------------------------------------------

async fn bulk_sequence<L: RateLimiter>(limiter: &L) -> Vec<Decision> {
    let policy = Policy::bulk();
    let now = now_epoch_secs();
    let mut decisions = Vec::new();
    for _ in 0..7 {
        decisions.push(check(limiter, "seller-bulk", &policy).await);
    }
    let allowed: Vec<bool> = decisions.iter().map(|d| d.allowed).collect();
    assert_eq!(allowed, [true, true, true, true, true, false, false]);
    let remaining: Vec<u32> = decisions.iter().map(|d| d.remaining).collect();
    assert_eq!(remaining, [4, 3, 2, 1, 0, 0, 0]);
    for d in &decisions[5..] {
        let retry = d.retry_after_secs.expect("the limiter answers");
        assert!((59..=60).contains(&retry), "retry_after {retry}");
        assert!(d.reset_at > now, "reset_at must be in the future");
        // The true reset: when the first request leaves the window, not
        // "now + window" measured from this rejection.
        assert!(d.reset_at <= now + 61, "reset_at {} now {now}", d.reset_at);
        assert_eq!(
            (d.policy, d.window_secs, d.limit),
            (PolicyClass::Bulk, 60, 5)
        );
        assert!(!d.degraded);
    }
    decisions
}

#[tokio::test]
async fn bulk_redis() {
    bulk_sequence(&redis_limiter("bulk").await).await;
}

#[tokio::test]
async fn bulk_memory() {
    bulk_sequence(&MemoryRateLimiter::new()).await;
}

#[tokio::test]
async fn backends_produce_the_same_decisions() {
    let from_redis = bulk_sequence(&redis_limiter("parity").await).await;
    let from_memory = bulk_sequence(&MemoryRateLimiter::new()).await;
    for (r, m) in from_redis.iter().zip(&from_memory) {
        // reset_at is rounded from two different clocks; allow one second.
        assert!(r.reset_at.abs_diff(m.reset_at) <= 1);
        let normalise = |d: &Decision| Decision {
            reset_at: 0,
            ..d.clone()
        };
        assert_eq!(normalise(r), normalise(m));
    }
}

// ---- 3. remaining, reset, window expiry, sliding vs fixed ------------------

async fn remaining_and_reset<L: RateLimiter>(limiter: &L) {
    let policy = Policy::standard();
    let now = now_epoch_secs();
    for expected in (95..100).rev() {
        let d = check(limiter, "seller-r", &policy).await;
        assert!(d.allowed);
        assert_eq!(d.remaining, expected);
        assert!(d.reset_at >= now);
        assert_eq!(d.reset_after_secs, 1);
        assert_eq!(d.retry_after_secs, None);
    }
    let d = check(limiter, "seller-h", &policy).await;
    let headers: HashMap<_, _> = rate_limit_headers(&d).into_iter().collect();
    assert_eq!(headers["ratelimit"], "\"standard\";r=99;t=1");
    assert_eq!(headers["ratelimit-policy"], "\"standard\";q=100;w=1");
    assert_eq!(headers["x-ratelimit-reset"], d.reset_at.to_string());

    // Exhaust a short window, get rejected, then admitted once it has passed.
    let short = policy_short();
    assert_eq!(admitted(limiter, "seller-w", &short, 3).await, 3);
    let rejected = check(limiter, "seller-w", &short).await;
    assert!(!rejected.allowed);
    assert_eq!(rejected.retry_after_secs, Some(1));
    tokio::time::sleep(Duration::from_millis(350)).await;
    let again = check(limiter, "seller-w", &short).await;
    assert!(again.allowed);
    assert_eq!(again.remaining, 2);
}

fn policy_short() -> Policy {
    policy(3, 300)
}

#[tokio::test]
async fn remaining_and_reset_redis() {
    remaining_and_reset(&redis_limiter("remaining").await).await;
}

#[tokio::test]
async fn remaining_and_reset_memory() {
    remaining_and_reset(&MemoryRateLimiter::new()).await;
}

/// limit 5 per 600 ms. A fixed window would let a burst late in one window
/// and another early in the next through (up to 10 in 600 ms); the sliding
/// log only frees slots as individual requests age out.
async fn sliding_not_fixed<L: RateLimiter>(limiter: &L) {
    let p = policy(5, 600);
    let key = "seller-s";
    let t0 = tokio::time::Instant::now();
    let at = |ms| tokio::time::sleep_until(t0 + Duration::from_millis(ms));

    assert_eq!(admitted(limiter, key, &p, 1).await, 1); // A at ~0
    at(300).await;
    assert_eq!(admitted(limiter, key, &p, 6).await, 4); // B x4 at ~300, now full
    at(700).await;
    // A has left (600), B is still in (until ~900): exactly one slot.
    assert_eq!(admitted(limiter, key, &p, 5).await, 1); // C at ~700
    at(1000).await;
    // B has left, C is still in (until ~1300): four slots.
    assert_eq!(admitted(limiter, key, &p, 5).await, 4);
}

#[tokio::test]
async fn sliding_not_fixed_redis() {
    sliding_not_fixed(&redis_limiter("sliding").await).await;
}

#[tokio::test]
async fn sliding_not_fixed_memory() {
    sliding_not_fixed(&MemoryRateLimiter::new()).await;
}

// ---- 4. several app instances ---------------------------------------------
