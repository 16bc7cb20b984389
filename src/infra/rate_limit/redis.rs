//! Redis backend: `sliding_window.lua` run with EVALSHA, one round trip per batch of decisions.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_redis::redis::aio::MultiplexedConnection;
use deadpool_redis::redis::{self, ErrorKind, RedisError, Script, ServerErrorKind};
use deadpool_redis::{Connection, Pool};

use super::{lock, Decision, LimiterError, Policy, RateLimiter};
use crate::coalesce::{Batch, Coalescer};

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
/// Batching ([`Coalescer`]): checks queue up for one task that sends whatever
/// is waiting as one EVALSHA, so under load a round trip decides many
/// requests (and Redis starts the script once for them) while a lone request
/// still goes out at once. Decisions in a batch are taken in order inside one
/// atomic script, exactly as if they had arrived one by one.
///
/// Connection handling: deadpool-redis pings every connection it hands out
/// (`Manager::recycle` sends UNWATCH + PING), which would make each decision
/// two round trips. Instead one multiplexed connection is taken out of the
/// pool and kept. When it breaks, it is dropped and a fresh one is taken from
/// the pool.
pub struct RedisRateLimiter {
    decisions: Coalescer<Shared>,
}

/// What the batching task shares with the limiter.
struct Shared {
    pool: Pool,
    config: RedisRateLimiterConfig,
    script: Script,
    connection: Mutex<Option<MultiplexedConnection>>,
    /// Random per instance; with `sequence` it makes sorted-set members unique
    /// across app instances without coordination.
    instance_id: u64,
    sequence: AtomicU64,
    script_loads: AtomicU64,
}

/// One check of a batch.
struct Check {
    key: String,
    policy: Policy,
}

/// Most checks one EVALSHA decides (keeps a script run short: Redis serves
/// nothing else meanwhile).
const MAX_BATCH: usize = 128;

impl RedisRateLimiter {
    /// Does no I/O: the first check connects, so the service can start while
    /// Redis is down (and then runs degraded under [`super::FailSafe`]).
    pub fn new(pool: Pool, config: RedisRateLimiterConfig) -> Self {
        let redis = Shared {
            pool,
            config,
            script: Script::new(SCRIPT_SOURCE),
            connection: Mutex::new(None),
            // std seeds RandomState from OS randomness once per process and
            // varies it per call: unique enough for a member id, no rand dep.
            instance_id: RandomState::new().build_hasher().finish(),
            sequence: AtomicU64::new(0),
            script_loads: AtomicU64::new(0),
        };
        Self {
            decisions: Coalescer::new(redis, MAX_BATCH),
        }
    }

    fn redis(&self) -> &Shared {
        self.decisions.batch()
    }

    /// The Redis key used for `key` under `policy` (for debugging and ops).
    pub fn redis_key(&self, key: &str, policy: &Policy) -> String {
        self.redis().redis_key(key, policy)
    }

    /// Loads the script with SCRIPT LOAD. Optional (a missing script is
    /// loaded on demand), but calling it at startup keeps the first request
    /// from paying for the reload.
    pub async fn load_script(&self) -> Result<(), LimiterError> {
        let timeout = self.redis().config.timeout;
        let load = async {
            let mut conn = self.redis().connection().await?.0;
            self.redis().load_on(&mut conn).await
        };
        tokio::time::timeout(timeout, load)
            .await
            .map_err(|_| LimiterError::Timeout(timeout))?
    }

    /// How many times the script was (re)loaded into Redis by this instance.
    pub fn script_loads(&self) -> u64 {
        self.redis().script_loads.load(Ordering::Relaxed)
    }
}

impl RateLimiter for RedisRateLimiter {
    async fn check(&self, key: &str, policy: &Policy) -> Result<Decision, LimiterError> {
        let timeout = self.redis().config.timeout;
        let check = Check {
            key: key.to_owned(),
            policy: *policy,
        };
        tokio::time::timeout(timeout, self.decisions.call(check))
            .await
            .map_err(|_| LimiterError::Timeout(timeout))?
            .map_err(|_| LimiterError::Stopped)?
    }
}

impl Batch for Shared {
    type Input = Check;
    type Output = Result<Decision, LimiterError>;

    /// Decides the batch in one EVALSHA; a failure answers every check in it.
    async fn run(&self, batch: &[Check]) -> Vec<Self::Output> {
        let timeout = self.config.timeout;
        let decisions = match tokio::time::timeout(timeout, self.decide(batch)).await {
            Ok(decisions) => decisions,
            Err(_) => {
                // The connection may be wedged rather than slow; start afresh.
                self.forget();
                Err(LimiterError::Timeout(timeout))
            }
        };
        match decisions {
            Ok(decisions) => decisions.into_iter().map(Ok).collect(),
            Err(error) => batch.iter().map(|_| Err(error.clone())).collect(),
        }
    }
}

impl Shared {
    fn redis_key(&self, key: &str, policy: &Policy) -> String {
        format!("{}:{}:{}", self.config.key_prefix, policy.name(), key)
    }

    async fn decide(&self, batch: &[Check]) -> Result<Vec<Decision>, LimiterError> {
        let mut invocation = redis::cmd("EVALSHA");
        invocation.arg(self.script.get_hash()).arg(batch.len());
        for check in batch {
            invocation.arg(self.redis_key(&check.key, &check.policy));
        }
        for check in batch {
            let member = format!(
                "{:016x}:{}",
                self.instance_id,
                self.sequence.fetch_add(1, Ordering::Relaxed)
            );
            invocation
                .arg(check.policy.limit())
                .arg(check.policy.window_micros())
                .arg(member);
        }

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
        to_decisions(batch, &result?)
    }

    /// EVALSHA, and on NOSCRIPT (script cache flushed, Redis restarted or
    /// failed over) SCRIPT LOAD and one more EVALSHA.
    async fn eval(
        &self,
        invocation: &redis::Cmd,
        conn: &mut MultiplexedConnection,
    ) -> Result<Vec<i64>, LimiterError> {
        let result = match invocation.query_async::<Vec<i64>>(conn).await {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                tracing::debug!("rate-limit script missing in Redis; reloading");
                self.load_on(conn).await?;
                invocation.query_async::<Vec<i64>>(conn).await
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

    /// The kept connection, and whether it was reused (vs. just created). Only
    /// the batching task connects, so an outage cannot make every waiting
    /// request open its own connection.
    async fn connection(&self) -> Result<(MultiplexedConnection, bool), LimiterError> {
        if let Some(conn) = lock(&self.connection).clone() {
            return Ok((conn, true));
        }
        let conn = Connection::take(self.pool.get().await.map_err(Arc::new)?);
        *lock(&self.connection) = Some(conn.clone());
        Ok((conn, false))
    }

    /// Drops the kept connection so the next batch reconnects.
    fn forget(&self) {
        lock(&self.connection).take();
    }
}

/// Errors after which the connection cannot be trusted, as opposed to an
/// error reply or a malformed value on a healthy connection.
fn is_connection_failure<T>(result: &Result<T, LimiterError>) -> bool {
    matches!(result, Err(LimiterError::Redis(e)) if is_connection_error(e))
}

fn is_connection_error(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error()
}

/// The script's reply: `allowed, remaining, reset_us` per check, then `now_us`.
fn to_decisions(batch: &[Check], reply: &[i64]) -> Result<Vec<Decision>, LimiterError> {
    let invalid = || LimiterError::UnexpectedReply(format!("{reply:?}"));
    let (now_us, decisions) = reply.split_last().ok_or_else(invalid)?;
    if decisions.len() != 3 * batch.len() {
        return Err(invalid());
    }
    let now_us = u64::try_from(*now_us).map_err(|_| invalid())?;
    batch
        .iter()
        .zip(decisions.chunks_exact(3))
        .map(|(check, values)| {
            let &[allowed, remaining, reset_us] = values else {
                return Err(invalid());
            };
            let remaining = u32::try_from(remaining).map_err(|_| invalid())?;
            let reset_us = u64::try_from(reset_us).map_err(|_| invalid())?;
            let allowed = match allowed {
                0 => false,
                1 => true,
                _ => return Err(invalid()),
            };
            Ok(Decision::from_log(
                &check.policy,
                allowed,
                remaining,
                now_us,
                reset_us.saturating_sub(now_us),
            ))
        })
        .collect()
}
