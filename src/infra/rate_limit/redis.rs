//! Redis backend: one EVALSHA of `sliding_window.lua` per decision.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use deadpool_redis::redis::aio::MultiplexedConnection;
use deadpool_redis::redis::{self, ErrorKind, RedisError, Script, ServerErrorKind};
use deadpool_redis::{Connection, Pool};

use super::{lock, Decision, LimiterError, Policy, RateLimiter};

const SCRIPT_SOURCE: &str = include_str!("sliding_window.lua");

/// Settings for [`RedisRateLimiter`].
#[derive(Debug, Clone)]
pub struct RedisRateLimiterConfig {
    /// Keys are `{key_prefix}:{policy}:{key}`, e.g. `ratelimit:bulk:seller-42`.
    pub key_prefix: String,
    /// Upper bound for one whole decision (connecting, EVALSHA and a possible
    /// script reload). A rate limiter sits on every request, so a hung Redis
    /// must turn into an error quickly rather than stall the API.
    pub timeout: Duration,
}

impl Default for RedisRateLimiterConfig {
    fn default() -> Self {
        Self {
            key_prefix: "ratelimit".to_owned(),
            timeout: Duration::from_millis(500),
        }
    }
}

/// Sliding-window log limiter shared by every instance that uses the same
/// Redis.
///
/// Connection handling: deadpool-redis pings every connection it hands out
/// (`Manager::recycle` sends UNWATCH + PING), which would make each decision
/// two round trips. Instead one multiplexed connection is taken out of the
/// pool and shared by all checks (it pipelines concurrent requests over one
/// socket, which is how redis-rs intends it to be used). When it breaks, it
/// is dropped and a fresh one is taken from the pool.
pub struct RedisRateLimiter {
    pool: Pool,
    config: RedisRateLimiterConfig,
    script: Script,
    connection: Mutex<Option<MultiplexedConnection>>,
    /// Serialises reconnects so an outage does not make every waiting request
    /// open its own connection.
    reconnect: tokio::sync::Mutex<()>,
    /// Random per instance; with `sequence` it makes sorted-set members unique
    /// across app instances without coordination.
    instance_id: u64,
    sequence: AtomicU64,
    script_loads: AtomicU64,
}

/// Script reply: allowed flag, remaining, reset and now (both µs since epoch).
type Reply = (i64, i64, i64, i64);

impl RedisRateLimiter {
    /// Does no I/O: the first check connects, so the service can start while
    /// Redis is down (and then runs degraded under [`super::FailSafe`]).
    pub fn new(pool: Pool, config: RedisRateLimiterConfig) -> Self {
        Self {
            pool,
            config,
            script: Script::new(SCRIPT_SOURCE),
            connection: Mutex::new(None),
            reconnect: tokio::sync::Mutex::new(()),
            // std seeds RandomState from OS randomness once per process and
            // varies it per call: unique enough for a member id, no rand dep.
            instance_id: RandomState::new().build_hasher().finish(),
            sequence: AtomicU64::new(0),
            script_loads: AtomicU64::new(0),
        }
    }

    /// The Redis key used for `key` under `policy` (for debugging and ops).
    pub fn redis_key(&self, key: &str, policy: &Policy) -> String {
        format!("{}:{}:{}", self.config.key_prefix, policy.name(), key)
    }

    /// Loads the script with SCRIPT LOAD. Optional (a missing script is
    /// loaded on demand), but calling it at startup keeps the first request
    /// from paying for the reload.
    pub async fn load_script(&self) -> Result<(), LimiterError> {
        let timeout = self.config.timeout;
        let load = async {
            let mut conn = self.connection().await?.0;
            self.load_on(&mut conn).await
        };
        tokio::time::timeout(timeout, load)
            .await
            .map_err(|_| LimiterError::Timeout(timeout))?
    }

    /// How many times the script was (re)loaded into Redis by this instance.
    pub fn script_loads(&self) -> u64 {
        self.script_loads.load(Ordering::Relaxed)
    }

    async fn decide(&self, key: &str, policy: &Policy) -> Result<Decision, LimiterError> {
        let redis_key = self.redis_key(key, policy);
        let member = format!(
            "{:016x}:{}",
            self.instance_id,
            self.sequence.fetch_add(1, Ordering::Relaxed)
        );
        let mut invocation = redis::cmd("EVALSHA");
        invocation
            .arg(self.script.get_hash())
            .arg(1)
            .arg(&redis_key)
            .arg(policy.limit())
            .arg(policy.window_micros())
            .arg(&member);

        let (mut conn, reused) = self.connection().await?;
        let mut result = self.eval(&invocation, &mut conn).await;
        if reused && is_connection_failure(&result) {
            // The shared connection may have died since its last use (e.g.
            // Redis restarted); one retry on a fresh connection hides that
            // from the caller. If the first attempt did reach Redis after
            // all, the retry can only over-count (stricter), never over-admit.
            self.forget();
            let (mut fresh, _) = self.connection().await?;
            result = self.eval(&invocation, &mut fresh).await;
        }
        if is_connection_failure(&result) {
            self.forget();
        }
        to_decision(policy, result?)
    }

    /// EVALSHA, and on NOSCRIPT (script cache flushed, Redis restarted or
    /// failed over) SCRIPT LOAD and one more EVALSHA.
    async fn eval(
        &self,
        invocation: &redis::Cmd,
        conn: &mut MultiplexedConnection,
    ) -> Result<Reply, LimiterError> {
        let result = match invocation.query_async::<Reply>(conn).await {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                tracing::debug!("rate-limit script missing in Redis; reloading");
                self.load_on(conn).await?;
                invocation.query_async::<Reply>(conn).await
            }
            other => other,
        };
        Ok(result?)
    }

    async fn load_on(&self, conn: &mut MultiplexedConnection) -> Result<(), LimiterError> {
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(SCRIPT_SOURCE)
            .query_async(conn)
            .await?;
        self.script_loads.fetch_add(1, Ordering::Relaxed);
        if sha != self.script.get_hash() {
            return Err(LimiterError::UnexpectedReply(format!(
                "SCRIPT LOAD returned sha {sha}, expected {}",
                self.script.get_hash()
            )));
        }
        Ok(())
    }

    /// The shared connection, and whether it was reused (vs. just created).
    async fn connection(&self) -> Result<(MultiplexedConnection, bool), LimiterError> {
        if let Some(conn) = lock(&self.connection).clone() {
            return Ok((conn, true));
        }
        let _single_flight = self.reconnect.lock().await;
        // Someone else may have reconnected while we waited.
        if let Some(conn) = lock(&self.connection).clone() {
            return Ok((conn, true));
        }
        let conn = Connection::take(self.pool.get().await?);
        *lock(&self.connection) = Some(conn.clone());
        Ok((conn, false))
    }

    /// Drops the shared connection so the next check reconnects. If a
    /// concurrent check already replaced the broken one, this costs one extra
    /// reconnect, which is harmless.
    fn forget(&self) {
        lock(&self.connection).take();
    }
}

impl RateLimiter for RedisRateLimiter {
    async fn check(&self, key: &str, policy: &Policy) -> Result<Decision, LimiterError> {
        let timeout = self.config.timeout;
        match tokio::time::timeout(timeout, self.decide(key, policy)).await {
            Ok(result) => result,
            Err(_) => {
                // The connection may be wedged rather than slow; start afresh.
                self.forget();
                Err(LimiterError::Timeout(timeout))
            }
        }
    }
}

/// Errors after which the connection cannot be trusted, as opposed to an
/// error reply or a malformed value on a healthy connection.
fn is_connection_failure(result: &Result<Reply, LimiterError>) -> bool {
    matches!(result, Err(LimiterError::Redis(e)) if is_connection_error(e))
}

fn is_connection_error(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error()
}

fn to_decision(policy: &Policy, reply: Reply) -> Result<Decision, LimiterError> {
    let (allowed, remaining, reset_us, now_us) = reply;
    let invalid = || LimiterError::UnexpectedReply(format!("{reply:?}"));
    let remaining = u32::try_from(remaining).map_err(|_| invalid())?;
    let reset_us = u64::try_from(reset_us).map_err(|_| invalid())?;
    let now_us = u64::try_from(now_us).map_err(|_| invalid())?;
    let allowed = match allowed {
        0 => false,
        1 => true,
        _ => return Err(invalid()),
    };
    Ok(Decision::from_log(
        policy,
        allowed,
        remaining,
        now_us,
        reset_us.saturating_sub(now_us),
    ))
}
