//! The one place concrete adapters are chosen and wired: which database, which services.

use std::{sync::Arc, time::Duration};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

use crate::{
    config::{AuthMode, Config},
    infra::event_bus::{AnyBus, BusError, MemoryBus, RedisBus, DEFAULT_CAPACITY},
    infra::identity::{self, JwksError, Verifier},
    infra::kafka::{KafkaConfig, KafkaError, KafkaPublisher},
    infra::rate_limit::{
        AnyLimiter, FailSafe, FailureMode, LimiterError, MemoryRateLimiter, Policy, PolicyClass,
        RateLimits, RedisRateLimiter, RedisRateLimiterConfig,
    },
    metrics::Metrics,
    service::{
        health::Health,
        import::{self, ImportService},
        notifications::{self, Streams},
        products::ProductService,
        relay::Relay,
        write::{Announcer, Writer},
    },
};

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: DatabaseConnection,
    pub products: ProductService,
    pub imports: ImportService,
    /// `None` when rate limiting is switched off.
    pub rate_limits: Option<RateLimits>,
    /// `None` when `KAFKA_BROKERS` is unset.
    pub kafka: Option<Arc<KafkaPublisher>>,
    /// Wakes the outbox relay when a write commits.
    pub relay_wake: Arc<Notify>,
    /// Live event streams for SSE.
    pub streams: Streams,
    /// The live-event bus (Redis pub/sub or in-process).
    pub bus: Arc<AnyBus>,
    /// Cancelled at shutdown; every background task and stream watches it.
    pub shutdown: CancellationToken,
    pub health: Health,
    pub metrics: Metrics,
    /// Checks bearer tokens; `None` in `header` mode.
    pub verifier: Option<Arc<Verifier>>,
}

#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    #[error("REDIS_URL: {0}")]
    Redis(String),
    #[error("rate limit policy: {0}")]
    Policy(#[from] LimiterError),
    #[error("KAFKA_BROKERS: {0}")]
    Kafka(#[from] KafkaError),
    #[error("event bus: {0}")]
    Bus(#[from] BusError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("AUTH_JWKS_URL: {0}")]
    Jwks(#[from] JwksError),
}

/// The bearer-token verifier `AUTH_MODE=jwt` asks for.
fn verifier(config: &Config) -> Result<Option<Arc<Verifier>>, WiringError> {
    if config.auth_mode() == AuthMode::Header {
        return Ok(None);
    }
    let keys = match (&config.auth_jwks_url, &config.auth_jwt_secret) {
        (Some(url), _) => identity::Keys::Jwks {
            url: url.clone(),
            min_refetch: Duration::from_secs(config.auth_jwks_min_refetch_secs),
            max_age: Duration::from_secs(config.auth_jwks_max_age_secs),
        },
        (None, secret) => identity::Keys::Secret(secret.clone().unwrap_or_default().into_bytes()),
    };
    let settings = identity::Settings {
        keys,
        issuer: config.auth_issuer.clone().unwrap_or_default(),
        audience: config.auth_audience.clone().unwrap_or_default(),
        seller_claim: config.auth_seller_claim.clone(),
        leeway: Duration::from_secs(config.auth_leeway_secs),
    };
    Ok(Some(Arc::new(Verifier::new(settings)?)))
}

/// The live-event bus: Redis pub/sub across instances when `REDIS_URL` is set, else
/// in-process. The Redis subscriber task runs until `shutdown`.
fn bus(config: &Config, shutdown: &CancellationToken) -> Result<AnyBus, WiringError> {
    Ok(match &config.redis_url {
        Some(url) => {
            let (bus, _task) = RedisBus::start(
                url,
                &config.events_channel,
                DEFAULT_CAPACITY,
                shutdown.clone(),
            )?;
            AnyBus::Redis(bus)
        }
        None => AnyBus::Memory(MemoryBus::new(DEFAULT_CAPACITY)?),
    })
}

/// The Kafka publisher, when brokers are configured. It connects on first use, so the server
/// starts (and keeps recording events) while the broker is down.
fn kafka(config: &Config) -> Result<Option<Arc<KafkaPublisher>>, WiringError> {
    let Some(brokers) = &config.kafka_brokers else {
        return Ok(None);
    };
    let mut kafka = KafkaConfig::new(brokers)?;
    kafka.topic_prefix = config.kafka_topic_prefix.clone();
    kafka.partitions = config.kafka_topic_partitions;
    Ok(Some(Arc::new(KafkaPublisher::new(kafka)?)))
}

/// The rate limiter: Redis when `REDIS_URL` is set (limits shared by every instance),
/// otherwise in-process; either way behind the configured failure mode.
fn rate_limits(config: &Config, metrics: &Metrics) -> Result<Option<RateLimits>, WiringError> {
    if !config.rate_limit_enabled {
        return Ok(None);
    }
    let mode = match config.rate_limit_fails_open() {
        true => FailureMode::Open,
        false => FailureMode::Closed,
    };
    let limiter = match &config.redis_url {
        Some(url) => {
            let pool = deadpool_redis::Config::from_url(url)
                .create_pool(Some(deadpool_redis::Runtime::Tokio1))
                .map_err(|e| WiringError::Redis(e.to_string()))?;
            let redis = RedisRateLimiter::new(pool, RedisRateLimiterConfig::default());
            AnyLimiter::Redis(FailSafe::new(redis, mode))
        }
        None => AnyLimiter::Memory(FailSafe::new(MemoryRateLimiter::new(), mode)),
    };
    let second = Duration::from_secs(1);
    Ok(Some(RateLimits {
        limiter: Arc::new(limiter),
        metrics: metrics.clone(),
        standard: Policy::new(PolicyClass::Standard, config.rate_limit_standard, second)?,
        bulk: Policy::new(
            PolicyClass::Bulk,
            config.rate_limit_bulk,
            Duration::from_secs(60),
        )?,
        anonymous: Policy::new(PolicyClass::Anonymous, config.rate_limit_anonymous, second)?,
    }))
}

/// Opens the configured database: a PostgreSQL pool, or the embedded SQLite file (created
/// with its directory on first start) behind a single connection.
pub async fn connect(config: &Config) -> Result<DatabaseConnection, DbErr> {
    if config.database_url.is_none() {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            DbErr::Custom(format!("cannot create {}: {e}", config.data_dir.display()))
        })?;
    }
    let mut options = ConnectOptions::new(config.database_url());
    let max = if config.is_sqlite() {
        1
    } else {
        config.database_max_connections
    };
    options
        .max_connections(max)
        .min_connections(1)
        .acquire_timeout(std::time::Duration::from_secs(5))
        // sqlx pings every connection it hands out: a second round trip for every query,
        // about a third of the server's CPU on a GET (perf). A connection that died idle
        // fails its query instead (503, and the pool drops it); killed connections are
        // tested under load (tests/api/operations.rs).
        .test_before_acquire(false)
        .sqlx_logging(false);
    let idle = format!("{}ms", config.database_idle_transaction_timeout_ms);
    options.map_sqlx_postgres_opts(move |pg| {
        pg.options([("idle_in_transaction_session_timeout", idle.as_str())])
    });
    Database::connect(options).await
}

impl AppState {
    pub fn new(config: Config, db: DatabaseConnection) -> Result<Self, WiringError> {
        let shutdown = CancellationToken::new();
        let metrics = Metrics::new()?;
        let relay_wake = Arc::new(Notify::new());
        let bus = Arc::new(bus(&config, &shutdown)?);
        // Committed events flow to the bus through one task, which keeps their order.
        let live = notifications::forwarder(bus.clone());
        let announcer = Announcer::new(relay_wake.clone(), Some(live));
        let streams = Streams::new(
            db.clone(),
            bus.clone(),
            config.sse_max_streams_per_seller,
            shutdown.clone(),
            metrics.sse_connections.clone(),
        );
        let imports = ImportService::new(
            db.clone(),
            announcer.clone(),
            import::Settings {
                spool_dir: config.import_spool_dir(),
                max_bytes: config.import_max_bytes,
                max_rows: config.import_max_rows,
                max_field_bytes: config.import_max_field_bytes,
                max_record_bytes: config.import_max_record_bytes,
                batch_size: config.import_batch_size,
                low_stock_threshold: config.low_stock_threshold,
            },
            metrics.clone(),
        );
        let writer = Writer {
            db: db.clone(),
            idempotency_ttl: config.idempotency_ttl(),
            announcer,
        };
        let products = ProductService::new(writer, config.low_stock_threshold);
        let rate_limits = rate_limits(&config, &metrics)?;
        let kafka = kafka(&config)?;
        let verifier = verifier(&config)?;
        let health = Health {
            db: db.clone(),
            kafka: kafka.clone(),
            bus: bus.clone(),
            limiter: rate_limits.as_ref().map(|r| r.limiter.clone()),
            redis_configured: config.redis_url.is_some(),
            started: std::time::Instant::now(),
            shutdown: shutdown.clone(),
        };
        Ok(Self {
            config: Arc::new(config),
            db,
            products,
            imports,
            rate_limits,
            kafka,
            relay_wake,
            streams,
            bus,
            shutdown,
            health,
            metrics,
            verifier,
        })
    }

    /// The outbox relay to Kafka, when Kafka is configured.
    pub fn relay(&self) -> Option<Relay> {
        let publisher = self.kafka.clone()?;
        Some(Relay {
            db: self.db.clone(),
            publisher,
            wake: self.relay_wake.clone(),
            batch_size: self.config.outbox_batch_size,
            sweep: Duration::from_millis(self.config.outbox_sweep_ms),
            metrics: self.metrics.clone(),
        })
    }
}
