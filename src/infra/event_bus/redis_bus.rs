use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_redis::redis::{self, AsyncConnectionConfig, Client};
use deadpool_redis::{Manager, Pool, Runtime};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{
    broadcast_channel,
    redis_subscriber::{Subscriber, SubscriberState},
    BusError, EventBus, Notification, DEFAULT_CAPACITY,
};
use crate::backoff::Backoff;

/// Settings for [`RedisBus`]. Build with [`RedisBusConfig::new`] and adjust
/// the public fields.
#[derive(Clone)]
pub struct RedisBusConfig {
    /// `redis://…` URL (may contain credentials; never logged).
    pub url: String,
    /// Redis pub/sub channel shared by all instances.
    pub channel: String,
    /// In-process broadcast capacity (per-receiver backlog before `Lagged`).
    pub capacity: usize,
    /// Upper bound on one `publish` call, connection acquisition included.
    pub publish_timeout: Duration,
    /// Max pooled connections used for `PUBLISH`.
    pub pool_size: usize,
    /// Upper bound on connecting + `SUBSCRIBE`, and on each health `PING`,
    /// of the dedicated pub/sub connection.
    pub connect_timeout: Duration,
    /// How often the idle pub/sub connection is `PING`ed, so that a silently
    /// dead (half-open) connection is noticed.
    pub ping_interval: Duration,
    /// First reconnect delay; doubles (with jitter) up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// While Redis stays unreachable, at most one warning per interval is
    /// logged (the rest at debug).
    pub warn_interval: Duration,
}

impl RedisBusConfig {
    pub fn new(url: impl Into<String>, channel: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            channel: channel.into(),
            capacity: DEFAULT_CAPACITY,
            publish_timeout: Duration::from_millis(500),
            pool_size: 4,
            connect_timeout: Duration::from_secs(2),
            ping_interval: Duration::from_secs(15),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            warn_interval: Duration::from_secs(30),
        }
    }

    fn validate(&self) -> Result<(), BusError> {
        let invalid = |what: &str| Err(BusError::InvalidConfig(what.to_owned()));
        if self.channel.is_empty() {
            return invalid("channel must not be empty");
        }
        if self.pool_size == 0 {
            return invalid("pool_size must be at least 1");
        }
        let durations = [
            ("publish_timeout", self.publish_timeout),
            ("connect_timeout", self.connect_timeout),
            ("ping_interval", self.ping_interval),
            ("backoff_min", self.backoff_min),
            ("backoff_max", self.backoff_max),
        ];
        for (name, value) in durations {
            if value.is_zero() {
                return Err(BusError::InvalidConfig(format!("{name} must be > 0")));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for RedisBusConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBusConfig")
            .field("url", &"<redacted>")
            .field("channel", &self.channel)
            .field("capacity", &self.capacity)
            .field("publish_timeout", &self.publish_timeout)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("ping_interval", &self.ping_interval)
            .field("backoff_min", &self.backoff_min)
            .field("backoff_max", &self.backoff_max)
            .field("warn_interval", &self.warn_interval)
            .finish()
    }
}

/// Cross-instance bus over Redis pub/sub. Cheap to clone.
///
/// `publish` never delivers locally by itself: local subscribers receive a
/// batch when it comes back from Redis, so every instance sees the same order.
#[derive(Clone)]
pub struct RedisBus {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    channel: String,
    publish_timeout: Duration,
    tx: broadcast::Sender<Arc<Notification>>,
    state: Arc<SubscriberState>,
}

impl RedisBus {
    /// [`RedisBus::start_with_config`] with default timeouts and backoff.
    pub fn start(
        url: &str,
        channel: &str,
        capacity: usize,
        shutdown: CancellationToken,
    ) -> Result<(Self, JoinHandle<()>), BusError> {
        let mut config = RedisBusConfig::new(url, channel);
        config.capacity = capacity;
        Self::start_with_config(config, shutdown)
    }

    /// Validates the configuration, builds the publish pool and spawns the
    /// subscriber task, which runs until `shutdown` is cancelled. Must be
    /// called within a Tokio runtime.
    ///
    /// Does not wait for Redis: an unreachable Redis is not an error here
    /// (the task keeps retrying). Use [`RedisBus::wait_connected`] or
    /// [`RedisBus::is_connected`] to find out.
    ///
    /// The returned handle completes once the task has stopped.
    pub fn start_with_config(
        config: RedisBusConfig,
        shutdown: CancellationToken,
    ) -> Result<(Self, JoinHandle<()>), BusError> {
        config.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            BusError::InvalidConfig("RedisBus must be started within a Tokio runtime".into())
        })?;
        let tx = broadcast_channel(config.capacity)?;

        let connection_config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(config.publish_timeout))
            .set_response_timeout(Some(config.publish_timeout));
        let manager = Manager::new_with_config(config.url.as_str(), connection_config)?;
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.publish_timeout))
            .create_timeout(Some(config.publish_timeout))
            .recycle_timeout(Some(config.publish_timeout))
            .build()?;

        let (epoch, _rx) = watch::channel(0);
        let state = Arc::new(SubscriberState {
            connected: AtomicBool::new(false),
            epoch,
        });
        let subscriber = Subscriber {
            client: Client::open(config.url.as_str())?,
            channel: config.channel.clone(),
            tx: tx.clone(),
            state: Arc::clone(&state),
            connect_timeout: config.connect_timeout,
            ping_interval: config.ping_interval,
        };
        let task = runtime.spawn(subscriber.run(
            Backoff::new(config.backoff_min, config.backoff_max),
            config.backoff_max,
            config.warn_interval,
            shutdown,
        ));

        let bus = Self {
            inner: Arc::new(Inner {
                pool,
                channel: config.channel,
                publish_timeout: config.publish_timeout,
                tx,
                state,
            }),
        };
        Ok((bus, task))
    }

    /// One `PUBLISH` of the whole batch (as a JSON array). Returns an error,
    /// at the latest after `publish_timeout`, if Redis cannot be reached.
    /// Success means Redis accepted the message, not that any instance was
    /// subscribed.
    pub async fn publish(&self, batch: Vec<Notification>) -> Result<(), BusError> {
        if batch.is_empty() {
            return Ok(());
        }
        let payload = serde_json::to_string(&batch)?;
        let limit = self.inner.publish_timeout;
        match tokio::time::timeout(limit, self.publish_payload(payload)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(BusError::PublishTimeout(limit)),
        }
    }

    async fn publish_payload(&self, payload: String) -> Result<(), BusError> {
        let mut conn = self.inner.pool.get().await?;
        let _receivers: i64 = redis::cmd("PUBLISH")
            .arg(&self.inner.channel)
            .arg(payload)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// See [`EventBus::subscribe`].
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Notification>> {
        self.inner.tx.subscribe()
    }

    /// Whether the subscriber task currently holds a confirmed subscription
    /// (for health checks). `false` before the first subscription, while
    /// reconnecting, and after shutdown.
    pub fn is_connected(&self) -> bool {
        self.inner.state.connected.load(Ordering::SeqCst)
    }

    /// Number of successful subscriptions so far (0 = never subscribed).
    /// When it changes, notifications may have been missed while the
    /// subscription was down: resync as for `RecvError::Lagged`.
    pub fn subscription_epoch(&self) -> watch::Receiver<u64> {
        self.inner.state.epoch.subscribe()
    }

    /// Waits until [`RedisBus::is_connected`] is true; `false` on timeout.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut epoch = self.inner.state.epoch.subscribe();
        let wait = async {
            loop {
                if self.is_connected() {
                    return true;
                }
                if epoch.changed().await.is_err() {
                    return false;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.unwrap_or(false)
    }
}

impl fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBus")
            .field("channel", &self.inner.channel)
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

impl EventBus for RedisBus {
    async fn publish(&self, batch: Vec<Notification>) -> Result<(), BusError> {
        RedisBus::publish(self, batch).await
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Notification>> {
        RedisBus::subscribe(self)
    }
}
