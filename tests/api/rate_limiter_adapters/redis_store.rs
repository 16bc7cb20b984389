//! What only the Redis backend has: instances sharing one limit, the script reloaded after a
//! flush, key TTLs, and Redis failing, hanging or restarting under both failure modes.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_limit() {
    let config = RedisRateLimiterConfig {
        key_prefix: crate::redis_support::unique_prefix("instances"),
        ..RedisRateLimiterConfig::default()
    };
    let a = Arc::new(RedisRateLimiter::new(shared_pool().await, config.clone()));
    let b = Arc::new(RedisRateLimiter::new(shared_pool().await, config));
    let policy = Policy::standard();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let limiter = Arc::clone(if i % 2 == 0 { &a } else { &b });
            tokio::spawn(async move { limiter.check("seller-1", &policy).await })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        if task
            .await
            .expect("the limiter answers")
            .expect("the limiter answers")
            .allowed
        {
            total += 1;
        }
    }
    assert_eq!(total, 100);
}

// ---- 5. NOSCRIPT ------------------------------------------------------------

#[tokio::test]
async fn reloads_script_after_script_flush() {
    let pool = shared_pool().await;
    let limiter = limiter_with(pool.clone(), "noscript");
    limiter.load_script().await.expect("the limiter answers");
    assert_eq!(limiter.script_loads(), 1);
    let policy = Policy::bulk();
    assert_eq!(check(&limiter, "seller-1", &policy).await.remaining, 4);

    let mut conn = pool.get().await.expect("the limiter answers");
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .expect("the limiter answers");

    let d = check(&limiter, "seller-1", &policy).await;
    assert!(d.allowed);
    assert_eq!(d.remaining, 3, "state survives, only the script was lost");
    assert!(limiter.script_loads() >= 2, "the script was reloaded");
}

// ---- 6. keys expire ---------------------------------------------------------

#[tokio::test]
async fn keys_get_a_ttl_of_at_most_one_window() {
    let pool = shared_pool().await;
    let limiter = limiter_with(pool.clone(), "ttl");
    let mut conn = pool.get().await.expect("the limiter answers");
    for policy in [Policy::bulk(), Policy::standard(), policy(3, 300)] {
        check(&limiter, "seller-1", &policy).await;
        let key = limiter.redis_key("seller-1", &policy);
        let pttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .expect("the limiter answers");
        let window_ms = i64::try_from(policy.window().as_millis()).expect("the limiter answers");
        assert!(pttl > 0 && pttl <= window_ms, "{key}: PTTL {pttl}");
    }
}

// ---- 7. failure modes -------------------------------------------------------

/// Nothing listens on port 1, so every connection attempt is refused.
fn unreachable_limiter() -> RedisRateLimiter {
    RedisRateLimiter::new(
        pool("redis://127.0.0.1:1"),
        RedisRateLimiterConfig::default(),
    )
}

#[tokio::test]
async fn redis_down_fail_open_admits_degraded() {
    let raw = unreachable_limiter();
    assert!(raw.check("seller-1", &Policy::bulk()).await.is_err());

    let limiter = FailSafe::new(unreachable_limiter(), FailureMode::Open);
    assert!(!limiter.is_degraded());
    for _ in 0..10 {
        let d = check(&limiter, "seller-1", &Policy::bulk()).await;
        assert!(d.allowed && d.degraded);
        assert_eq!((d.remaining, d.limit, d.retry_after_secs), (5, 5, None));
    }
    assert!(limiter.is_degraded());
}

#[tokio::test]
async fn redis_down_fail_closed_rejects_degraded() {
    let limiter = FailSafe::new(unreachable_limiter(), FailureMode::Closed);
    let d = limiter.decide("seller-1", &Policy::standard()).await;
    assert!(!d.allowed && d.degraded);
    assert_eq!((d.remaining, d.retry_after_secs), (0, Some(1)));
    assert!(limiter.is_degraded());
    let headers: HashMap<_, _> = rate_limit_headers(&d).into_iter().collect();
    assert_eq!(headers["retry-after"], "1");
}

/// A server that accepts connections and never answers (a hung Redis): the
/// configured timeout must turn that into an error, and FailSafe into a
/// decision, promptly.
#[tokio::test]
async fn hung_redis_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("the limiter answers");
    let url = format!(
        "redis://{}",
        listener.local_addr().expect("the limiter answers")
    );
    let blackhole = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let timeout = Duration::from_millis(200);
    let config = RedisRateLimiterConfig {
        timeout,
        ..RedisRateLimiterConfig::default()
    };
    let raw = RedisRateLimiter::new(pool(&url), config.clone());
    let started = Instant::now();
    let result = raw.check("seller-1", &Policy::standard()).await;
    assert!(matches!(result, Err(LimiterError::Timeout(t)) if t == timeout));
    assert!(started.elapsed() < Duration::from_secs(2));

    let limiter = FailSafe::new(RedisRateLimiter::new(pool(&url), config), FailureMode::Open);
    let d = limiter.decide("seller-1", &Policy::standard()).await;
    assert!(d.allowed && d.degraded && limiter.is_degraded());
    blackhole.abort();
}

/// Redis crashes and comes back (empty, without the script): FailSafe runs
/// degraded meanwhile and recovers on the first request after the restart.
#[tokio::test]
async fn recovers_after_redis_restart() {
    let mut server = TempRedis::start();
    let limiter = FailSafe::new(
        limiter_with(pool(&server.url()), "restart"),
        FailureMode::Open,
    )
    .with_warn_interval(Duration::from_millis(10));
    let policy = Policy::bulk();

    let d = limiter.decide("seller-1", &policy).await;
    assert!(d.allowed && !d.degraded && d.remaining == 4);

    server.stop();
    let d = limiter.decide("seller-1", &policy).await;
    assert!(d.allowed && d.degraded);
    assert!(limiter.is_degraded());

    server.restart();
    let loads_before = limiter.inner().script_loads();
    let d = limiter.decide("seller-1", &policy).await;
    assert!(
        d.allowed && !d.degraded,
        "first request after restart: {d:?}"
    );
    assert_eq!(d.remaining, 4, "the restarted Redis lost all state");
    assert!(!limiter.is_degraded());
    assert_eq!(limiter.inner().script_loads(), loads_before + 1);
}

// ---- one round trip per decision -------------------------------------------

fn command_calls(conn: &mut redis::Connection) -> HashMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(conn)
        .expect("the limiter answers");
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

/// Commands the Lua script runs; Redis counts them in commandstats too.
const SCRIPT_COMMANDS: [&str; 6] = [
    "time",
    "zremrangebyscore",
    "zcard",
    "zadd",
    "zrange",
    "pexpire",
];

/// On a private server (so other tests' traffic does not count), N decisions
/// one after another must cost exactly N client commands, all of them EVALSHA
/// (no PING, no SCRIPT LOAD, nothing else).
#[tokio::test]
async fn one_command_per_decision() {
    let server = TempRedis::start();
    let limiter = limiter_with(pool(&server.url()), "roundtrip");
    let policy = Policy::standard();
    check(&limiter, "seller-1", &policy).await; // connects and loads the script
    let mut inspect = server.connection();
    let before = command_calls(&mut inspect);
    for _ in 0..25 {
        check(&limiter, "seller-1", &policy).await;
    }
    let after = command_calls(&mut inspect);
    let delta: HashMap<&str, u64> = after
        .iter()
        .filter(|(name, _)| name.as_str() != "info" && !SCRIPT_COMMANDS.contains(&name.as_str()))
        .map(|(name, calls)| {
            (
                name.as_str(),
                calls - before.get(name).copied().unwrap_or(0),
            )
        })
        .filter(|(_, d)| *d > 0)
        .collect();
    assert_eq!(delta, HashMap::from([("evalsha", 25)]));
}

/// Concurrent checks share round trips: 400 at once (two keys) take far fewer
/// EVALSHAs than checks, and each key still admits exactly its limit, with
/// every admission seeing a different count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_decisions_share_round_trips_and_stay_exact() {
    let server = TempRedis::start();
    let limiter = Arc::new(limiter_with(pool(&server.url()), "batch"));
    let policy = Policy::standard();
    check(&*limiter, "seller-0", &policy).await; // connects and loads the script
    let mut inspect = server.connection();
    let before = command_calls(&mut inspect);
    let tasks: Vec<_> = (0..400)
        .map(|i| {
            let limiter = Arc::clone(&limiter);
            let key = ["seller-1", "seller-2"][i % 2];
            tokio::spawn(async move { (key, limiter.check(key, &policy).await) })
        })
        .collect();
    let mut remaining: HashMap<&str, Vec<u32>> = HashMap::new();
    for task in tasks {
        let (key, decision) = task.await.expect("the task ran");
        let decision = decision.expect("the limiter answers");
        if decision.allowed {
            remaining.entry(key).or_default().push(decision.remaining);
        }
    }
    let evalsha = command_calls(&mut inspect)["evalsha"] - before["evalsha"];
    assert!(
        (1..400).contains(&evalsha),
        "400 concurrent checks took {evalsha} EVALSHAs"
    );
    for key in ["seller-1", "seller-2"] {
        let mut seen = remaining.remove(key).unwrap_or_default();
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<u32>>(), "{key}");
    }
}

// ---- the script itself, to the microsecond ----------------------------------

const SCRIPT: &str = include_str!("../../../src/infra/rate_limit/sliding_window.lua");

/// Runs the limiter's script on a private Redis: `(key, limit, window µs, member)` per
/// decision; returns `(allowed, remaining, reset µs)` per decision and the server's now.
fn run_script(
    conn: &mut redis::Connection,
    checks: &[(&str, u32, u64, &str)],
) -> (Vec<(i64, i64, i64)>, i64) {
    let script = redis::Script::new(SCRIPT);
    let mut invocation = script.prepare_invoke();
    for (key, limit, window, member) in checks {
        invocation.key(*key).arg(*limit).arg(*window).arg(*member);
    }
    let reply: Vec<i64> = invocation.invoke(conn).expect("the script runs");
    let (now, decisions) = reply.split_last().expect("a reply");
    let decisions = decisions
        .chunks_exact(3)
        .map(|d| (d[0], d[1], d[2]))
        .collect();
    (decisions, *now)
}

fn server_now_us(conn: &mut redis::Connection) -> i64 {
    let (secs, micros): (i64, i64) = redis::cmd("TIME").query(conn).expect("TIME");
    secs * 1_000_000 + micros
}

/// One key twice in a batch is decided as two requests one after the other; a limit lowered
/// below the log's size rejects until enough entries have left, and says when that is.
#[test]
fn script_decides_repeated_keys_in_order_and_lowered_limits_exactly() {
    let server = TempRedis::start();
    let mut conn = server.connection();
    let window = 1_000_000;

    let (decisions, now) = run_script(
        &mut conn,
        &[
            ("k", 3, window, "a"),
            ("k", 3, window, "b"),
            ("other", 3, window, "c"),
        ],
    );
    let reset = now + window as i64;
    assert_eq!(
        decisions,
        vec![(1, 2, reset), (1, 1, reset), (1, 2, reset)],
        "both admissions on k count, and the oldest of k is this batch's"
    );
    let (decisions, _) = run_script(&mut conn, &[("k", 3, window, "d"), ("k", 3, window, "e")]);
    assert_eq!(decisions, vec![(1, 0, reset), (0, 0, reset)]);

    // Five entries 100 ms apart, then the limit drops to 2: the third entry past the
    // oldest (rank 5 - 2 = 3) must leave the window before anything is admitted again.
    let base = server_now_us(&mut conn) - 500_000;
    for (n, member) in ["p", "q", "r", "s", "t"].into_iter().enumerate() {
        let score = base + 100_000 * n as i64;
        redis::cmd("ZADD")
            .arg("lowered")
            .arg(score)
            .arg(member)
            .exec(&mut conn)
            .expect("ZADD");
    }
    let (decisions, _) = run_script(
        &mut conn,
        &[("lowered", 2, window, "u"), ("lowered", 5, window, "v")],
    );
    assert_eq!(
        decisions,
        vec![
            (0, 0, base + 300_000 + window as i64),
            (0, 0, base + window as i64)
        ]
    );
}
