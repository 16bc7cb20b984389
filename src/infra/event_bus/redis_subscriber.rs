//! The Redis bus's subscriber: one background task on one dedicated pub/sub connection at a
//! time, reconnecting with backoff, pinging while idle, and logging outages without flooding.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_redis::redis::aio::{PubSubSink, PubSubStream};
use deadpool_redis::redis::{self, Client, Msg};
use futures::StreamExt;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::Notification;
use crate::backoff::Backoff;

/// Shared between the bus handles and the background subscriber task.
pub(super) struct SubscriberState {
    pub(super) connected: AtomicBool,
    /// Incremented after every successful `SUBSCRIBE`.
    pub(super) epoch: watch::Sender<u64>,
}

impl SubscriberState {
    fn set_subscribed(&self) {
        self.connected.store(true, Ordering::SeqCst);
        self.epoch.send_modify(|epoch| *epoch += 1);
    }

    fn set_disconnected(&self) {
        self.connected.store(false, Ordering::SeqCst);
    }
}

/// The background task: one dedicated pub/sub connection at a time.
pub(super) struct Subscriber {
    pub(super) client: Client,
    pub(super) channel: String,
    pub(super) tx: broadcast::Sender<Arc<Notification>>,
    pub(super) state: Arc<SubscriberState>,
    pub(super) connect_timeout: Duration,
    pub(super) ping_interval: Duration,
}

/// Why a subscription session ended.
enum SessionEnd {
    /// Could not connect or subscribe.
    Failed(String),
    /// Was subscribed for `connected_for`, then lost the connection.
    Lost {
        reason: String,
        connected_for: Duration,
    },
}

impl Subscriber {
    pub(super) async fn run(
        self,
        mut backoff: Backoff,
        stable_after: Duration,
        warn_interval: Duration,
        shutdown: CancellationToken,
    ) {
        let mut log = OutageLog::new(warn_interval);
        loop {
            let end = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                end = self.session(&mut log) => end,
            };
            self.state.set_disconnected();
            match end {
                SessionEnd::Failed(reason) => log.failed(&self.channel, &reason),
                SessionEnd::Lost {
                    reason,
                    connected_for,
                } => {
                    // Only a connection that stayed up for a while resets the
                    // backoff, so a flapping server is not hammered.
                    if connected_for >= stable_after {
                        backoff.reset();
                    }
                    log.lost(&self.channel, &reason);
                }
            }
            let delay = backoff.next_delay();
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(delay) => {}
            }
        }
        self.state.set_disconnected();
        info!(channel = %self.channel, "event bus subscriber stopped");
    }

    async fn session(&self, log: &mut OutageLog) -> SessionEnd {
        let (mut sink, mut stream) =
            match tokio::time::timeout(self.connect_timeout, self.connect()).await {
                Ok(Ok(pair)) => pair,
                Ok(Err(err)) => return SessionEnd::Failed(err.to_string()),
                Err(_elapsed) => {
                    return SessionEnd::Failed(format!(
                        "connect/subscribe timed out after {:?}",
                        self.connect_timeout
                    ))
                }
            };
        let connected_at = Instant::now();
        self.state.set_subscribed();
        log.subscribed(&self.channel);

        let mut ping = tokio::time::interval_at(
            tokio::time::Instant::now() + self.ping_interval,
            self.ping_interval,
        );
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let reason = loop {
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(msg) => self.dispatch(&msg),
                    None => break "connection closed".to_owned(),
                },
                _ = ping.tick() => {
                    let pong = sink.ping::<redis::Value>();
                    match tokio::time::timeout(self.connect_timeout, pong).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(err)) => break format!("ping failed: {err}"),
                        Err(_elapsed) => break "ping timed out".to_owned(),
                    }
                }
            }
        };
        SessionEnd::Lost {
            reason,
            connected_for: connected_at.elapsed(),
        }
    }

    async fn connect(&self) -> redis::RedisResult<(PubSubSink, PubSubStream)> {
        let (mut sink, stream) = self.client.get_async_pubsub().await?.split();
        sink.subscribe(&self.channel).await?;
        Ok((sink, stream))
    }

    fn dispatch(&self, msg: &Msg) {
        let payload = msg.get_payload_bytes();
        match serde_json::from_slice::<Vec<Notification>>(payload) {
            Ok(batch) => {
                for notification in batch {
                    // Err only means "no receivers right now".
                    let _ = self.tx.send(Arc::new(notification));
                }
            }
            Err(err) => warn!(
                channel = %self.channel,
                error = %err,
                bytes = payload.len(),
                "skipping malformed event bus message"
            ),
        }
    }
}

/// Log policy: `warn` when the subscription is lost or cannot be
/// established, at most once per `warn_interval` (otherwise `debug`), and
/// `info` when it is (re)established.
struct OutageLog {
    warn_interval: Duration,
    last_warn: Option<Instant>,
    down_since: Option<Instant>,
    failed_attempts: u64,
}

impl OutageLog {
    fn new(warn_interval: Duration) -> Self {
        Self {
            warn_interval,
            last_warn: None,
            down_since: None,
            failed_attempts: 0,
        }
    }

    fn should_warn(&mut self) -> bool {
        let now = Instant::now();
        let due = self
            .last_warn
            .is_none_or(|last| now.duration_since(last) >= self.warn_interval);
        if due {
            self.last_warn = Some(now);
        }
        due
    }

    fn lost(&mut self, channel: &str, reason: &str) {
        self.down_since = Some(Instant::now());
        self.failed_attempts = 0;
        if self.should_warn() {
            warn!(%channel, %reason, "event bus lost its redis subscription; reconnecting");
        } else {
            debug!(%channel, %reason, "event bus lost its redis subscription; reconnecting");
        }
    }

    fn failed(&mut self, channel: &str, reason: &str) {
        let down_since = *self.down_since.get_or_insert_with(Instant::now);
        self.failed_attempts += 1;
        let attempts = self.failed_attempts;
        let down_for = down_since.elapsed();
        if self.should_warn() {
            warn!(%channel, %reason, attempts, ?down_for, "event bus cannot subscribe to redis; retrying");
        } else {
            debug!(%channel, %reason, attempts, ?down_for, "event bus cannot subscribe to redis; retrying");
        }
    }

    fn subscribed(&mut self, channel: &str) {
        match self.down_since.take() {
            Some(since) => info!(
                %channel,
                down_for = ?since.elapsed(),
                failed_attempts = self.failed_attempts,
                "event bus redis subscription restored"
            ),
            None => info!(%channel, "event bus subscribed to redis"),
        }
        self.failed_attempts = 0;
    }
}
