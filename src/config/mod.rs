//! Configuration from environment variables, read once at start by `envy`.
//!
//! Every variable has a default that gives a working server with no setup (an SQLite file
//! under `./data/`). Invalid values stop the process at start with the variable's name.

use std::{path::PathBuf, time::Duration};

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// `PORT`: TCP port to listen on; 0 picks a free one. Default 3001.
    #[serde(default = "defaults::port")]
    pub port: u16,
    /// `HOST`: address to bind. Default `0.0.0.0`.
    #[serde(default = "defaults::host")]
    pub host: String,
    /// `DATABASE_URL`: `postgres://…` for PostgreSQL, or `sqlite://…`. Unset: the SQLite file
    /// `$DATA_DIR/product-api.db`.
    pub database_url: Option<String>,
    /// `DATABASE_MAX_CONNECTIONS`: PostgreSQL pool size (1..=1000). Default 20. SQLite always
    /// uses one connection, which serializes writes without lock errors.
    #[serde(default = "defaults::database_max_connections")]
    pub database_max_connections: u32,
    /// `DATA_DIR`: where the embedded SQLite database lives. Default `./data`.
    #[serde(default = "defaults::data_dir")]
    pub data_dir: PathBuf,
    /// `RUN_MIGRATIONS`: apply pending migrations at start. Default true.
    #[serde(default = "defaults::yes")]
    pub run_migrations: bool,
    /// `JSON_BODY_LIMIT_BYTES`: largest JSON request body (1 KiB..=64 MiB). Default 1 MiB.
    #[serde(default = "defaults::json_body_limit_bytes")]
    pub json_body_limit_bytes: usize,
    /// `IDEMPOTENCY_TTL_HOURS`: how long an `Idempotency-Key` is remembered (at least 24).
    /// Default 24.
    #[serde(default = "defaults::idempotency_ttl_hours")]
    pub idempotency_ttl_hours: u64,
    /// `IDLE_TIMEOUT_SECS`: a connection on which no byte moves for this long is closed, so
    /// idle or stalled clients cannot hold connections forever (event streams stay alive
    /// through their heartbeats). Default 60.
    #[serde(default = "defaults::idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// `MAX_CONNECTIONS`: open connections served at once; more wait to be accepted.
    /// Default 10000.
    #[serde(default = "defaults::max_connections")]
    pub max_connections: usize,
    /// `MAX_URL_BYTES`: longest path and query; 414 `URI_TOO_LONG` beyond (256..=60000, under
    /// hyper's own 64 KiB). Default 8192.
    #[serde(default = "defaults::max_url_bytes")]
    pub max_url_bytes: usize,
    /// `MAX_HEADER_BYTES`: most bytes of header names and values; 431 `HEADERS_TOO_LARGE`
    /// beyond (1024..=262144, under hyper's own ~400 KiB). Default 16384.
    #[serde(default = "defaults::max_header_bytes")]
    pub max_header_bytes: usize,
    /// `MAX_HEADERS`: most header lines; 431 `HEADERS_TOO_LARGE` beyond (8..=100, hyper's own
    /// cap). Default 64.
    #[serde(default = "defaults::max_headers")]
    pub max_headers: usize,
    /// `CORS_ALLOWED_ORIGINS`: comma-separated origins allowed to call the API from a browser.
    /// Unset or empty: any origin, without credentials (the seller is a header, not a cookie).
    pub cors_allowed_origins: Option<String>,
    /// `DATABASE_IDLE_TRANSACTION_TIMEOUT_MS` (PostgreSQL): PostgreSQL ends a transaction of
    /// this server's that sat idle this long, with its locks: an instance that hangs (or is cut
    /// off) mid-transaction holds a seller's writes, or the outbox relay, no longer than this;
    /// another instance then relays from its next sweep. An instance that dies loses its locks
    /// at once. Default 10000; it must exceed the broker's acknowledgement time, which the relay
    /// waits for inside its transaction.
    #[serde(default = "defaults::database_idle_transaction_timeout_ms")]
    pub database_idle_transaction_timeout_ms: u64,
    /// `SHUTDOWN_DELAY_SECS`: after SIGTERM, readiness turns 503 at once but new connections
    /// are still accepted this long, so load balancers stop routing first. Default 2.
    #[serde(default = "defaults::shutdown_delay_secs")]
    pub shutdown_delay_secs: u64,
    /// `SHUTDOWN_TIMEOUT_SECS`: how long in-flight requests may take after SIGTERM. Default 25.
    #[serde(default = "defaults::shutdown_timeout_secs")]
    pub shutdown_timeout_secs: u64,
    /// `LOW_STOCK_THRESHOLD`: quantity below which a product without its own threshold is low
    /// on stock. Default 10.
    #[serde(default = "defaults::low_stock_threshold")]
    pub low_stock_threshold: i32,
    /// `KAFKA_BROKERS`: comma-separated `host:port` list. Unset: events stay in the outbox
    /// (and reach SSE clients) but are not published to Kafka.
    pub kafka_brokers: Option<String>,
    /// `KAFKA_TOPIC_PREFIX`: prepended to `product.created` etc. Default empty.
    #[serde(default)]
    pub kafka_topic_prefix: String,
    /// `KAFKA_TOPIC_PARTITIONS`: partitions of topics created at start. Default 4.
    #[serde(default = "defaults::kafka_topic_partitions")]
    pub kafka_topic_partitions: i32,
    /// `OUTBOX_BATCH_SIZE`: events the relay publishes per round trip. Default 2000 (larger
    /// batches amortize the per-request latency; each partition's share is still split into
    /// produce requests under 1 MiB).
    #[serde(default = "defaults::outbox_batch_size")]
    pub outbox_batch_size: u64,
    /// `OUTBOX_SWEEP_MS`: how often the relay looks for events besides being woken by
    /// commits. Default 1000.
    #[serde(default = "defaults::outbox_sweep_ms")]
    pub outbox_sweep_ms: u64,
    /// `OUTBOX_RETENTION_HOURS`: how long published events stay for SSE resume. Default 168.
    #[serde(default = "defaults::outbox_retention_hours")]
    pub outbox_retention_hours: u64,
    /// `IMPORT_MAX_BYTES`: largest CSV file an import takes; 413 `FILE_TOO_LARGE` beyond.
    /// Default 100 MiB.
    #[serde(default = "defaults::import_max_bytes")]
    pub import_max_bytes: u64,
    /// `IMPORT_MAX_ROWS`: most data rows in one import; 413 `TOO_MANY_ROWS` beyond.
    /// Default 1000000.
    #[serde(default = "defaults::import_max_rows")]
    pub import_max_rows: u64,
    /// `IMPORT_MAX_FIELD_BYTES`: longest CSV field; a file with a longer one is refused with
    /// 413 `FIELD_TOO_LARGE` naming its line. Default 16 KiB (no valid product field is longer).
    #[serde(default = "defaults::import_max_field_bytes")]
    pub import_max_field_bytes: u64,
    /// `IMPORT_MAX_RECORD_BYTES`: longest CSV record (row); 413 `RECORD_TOO_LARGE` beyond. An
    /// import holds at most four batches of records, so this bounds its memory. Default 32 KiB.
    #[serde(default = "defaults::import_max_record_bytes")]
    pub import_max_record_bytes: u64,
    /// `IMPORT_BATCH_SIZE`: rows an import writes per transaction (1..=10000); a batch also
    /// ends at 4 MiB of fields. Default 5000.
    #[serde(default = "defaults::import_batch_size")]
    pub import_batch_size: usize,
    /// `IMPORT_SPOOL_DIR`: where uploaded files wait until their import finishes; it must
    /// survive restarts for imports to resume. Default `$DATA_DIR/imports`.
    pub import_spool_dir: Option<PathBuf>,
    /// `SSE_HEARTBEAT_SECS`: a `:` comment is sent on idle event streams this often.
    /// Default 15.
    #[serde(default = "defaults::sse_heartbeat_secs")]
    pub sse_heartbeat_secs: u64,
    /// `SSE_RETRY_MS`: the reconnection delay event streams advise clients. Default 3000.
    #[serde(default = "defaults::sse_retry_ms")]
    pub sse_retry_ms: u64,
    /// `SSE_MAX_STREAMS_PER_SELLER`: open event streams a seller may hold; 429 beyond.
    /// Default 10.
    #[serde(default = "defaults::sse_max_streams_per_seller")]
    pub sse_max_streams_per_seller: usize,
    /// `EVENTS_CHANNEL`: the Redis pub/sub channel that carries live events between
    /// instances. Default `product-api:events`.
    #[serde(default = "defaults::events_channel")]
    pub events_channel: String,
    /// `REDIS_URL`: `redis://…`; shares rate limits and live events across instances.
    /// Unset: both in-process.
    pub redis_url: Option<String>,
    /// `RATE_LIMIT_ENABLED`: apply per-seller rate limits. Default true.
    #[serde(default = "defaults::yes")]
    pub rate_limit_enabled: bool,
    /// `RATE_LIMIT_STANDARD`: requests per second per seller for every `/api` operation.
    /// Default 100.
    #[serde(default = "defaults::rate_limit_standard")]
    pub rate_limit_standard: u32,
    /// `RATE_LIMIT_BULK`: requests per minute per seller for bulk operations. Default 5.
    #[serde(default = "defaults::rate_limit_bulk")]
    pub rate_limit_bulk: u32,
    /// `RATE_LIMIT_ANONYMOUS`: requests per second per client address without a valid seller
    /// id (they are rejected with 401 after counting). Default 20.
    #[serde(default = "defaults::rate_limit_anonymous")]
    pub rate_limit_anonymous: u32,
    /// `RATE_LIMIT_FAILURE_MODE`: `open` (admit) or `closed` (reject) while Redis is
    /// unreachable. Default open.
    #[serde(rename = "rate_limit_failure_mode")]
    rate_limit_failure_mode_raw: Option<String>,
    /// `LOG_FORMAT`: `json` or `pretty`. Default: pretty on a terminal, json otherwise.
    #[serde(rename = "log_format")]
    log_format_raw: Option<String>,
    /// `AUTH_MODE`: `header` (a trusted gateway or network sets `X-Seller-Id`) or `jwt` (every
    /// `/api` request carries `Authorization: Bearer <JWT>`). Default header.
    #[serde(rename = "auth_mode")]
    auth_mode_raw: Option<String>,
    /// `AUTH_JWKS_URL`: where the identity provider publishes its keys (RS256, ES256, EdDSA).
    /// `jwt` mode takes this or `AUTH_JWT_SECRET`, not both.
    pub auth_jwks_url: Option<String>,
    /// `AUTH_JWT_SECRET`: an HS256 shared secret of at least 32 bytes.
    pub auth_jwt_secret: Option<String>,
    /// `AUTH_ISSUER`: the `iss` tokens must carry. Required in `jwt` mode.
    pub auth_issuer: Option<String>,
    /// `AUTH_AUDIENCE`: an `aud` tokens must carry. Required in `jwt` mode.
    pub auth_audience: Option<String>,
    /// `AUTH_SELLER_CLAIM`: the claim that names the seller. Default `seller_id`.
    #[serde(default = "defaults::auth_seller_claim")]
    pub auth_seller_claim: String,
    /// `AUTH_LEEWAY_SECS`: clock skew allowed on `exp` and `nbf` (0..=300). Default 30.
    #[serde(default = "defaults::auth_leeway_secs")]
    pub auth_leeway_secs: u64,
    /// `AUTH_JWKS_MIN_REFETCH_SECS`: a token with an unknown `kid` refetches the key set at
    /// most this often (1..=3600). Default 30.
    #[serde(default = "defaults::auth_jwks_min_refetch_secs")]
    pub auth_jwks_min_refetch_secs: u64,
    /// `AUTH_JWKS_MAX_AGE_SECS`: the key set is refetched when this old (60..=86400).
    /// Default 3600.
    #[serde(default = "defaults::auth_jwks_max_age_secs")]
    pub auth_jwks_max_age_secs: u64,
}

/// How a request's seller is established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    Header,
    Jwt,
}

pub mod defaults;
mod validate;

/// A comma-separated `host:port` list (spaces and empty entries ignored), or what is wrong
/// with it; `KAFKA_BROKERS` is checked with it at start and the publisher connects with it.
pub fn broker_list(list: &str) -> Result<Vec<String>, String> {
    let brokers = list
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| match entry.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(entry.to_owned())
            }
            _ => Err(format!("broker {entry:?} in {list:?} is not host:port")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if brokers.is_empty() {
        return Err(format!("no broker in {list:?}"));
    }
    Ok(brokers)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Reads the environment and validates it.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads variables from `vars` (the environment, or a test's list) and validates them.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        // Empty values mean unset, as in most .env tooling.
        let vars = vars.into_iter().filter(|(_, v)| !v.is_empty());
        let config: Config = envy::from_iter(vars).map_err(|e| ConfigError(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// The database to use: `DATABASE_URL`, else the embedded SQLite file.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("product-api.db").display()
            ),
        }
    }

    /// Whether requests are admitted while the rate limiter's store is unreachable.
    pub fn rate_limit_fails_open(&self) -> bool {
        self.rate_limit_failure_mode_raw.as_deref() != Some("closed")
    }

    /// `CORS_ALLOWED_ORIGINS` as a list; empty means any origin.
    pub fn cors_origins(&self) -> Vec<String> {
        self.cors_allowed_origins
            .iter()
            .flat_map(|o| o.split(','))
            .map(|o| o.trim().to_string())
            .filter(|o| !o.is_empty())
            .collect()
    }

    pub fn outbox_retention(&self) -> Duration {
        Duration::from_secs(self.outbox_retention_hours * 3600)
    }

    /// `AUTH_MODE` (validated at start: anything else than `jwt` is `header`).
    pub fn auth_mode(&self) -> AuthMode {
        match self.auth_mode_raw.as_deref() {
            Some("jwt") => AuthMode::Jwt,
            _ => AuthMode::Header,
        }
    }

    /// `LOG_FORMAT`, if set.
    pub fn log_format(&self) -> Option<LogFormat> {
        match self.log_format_raw.as_deref() {
            Some("json") => Some(LogFormat::Json),
            Some("pretty") => Some(LogFormat::Pretty),
            _ => None,
        }
    }

    pub fn import_spool_dir(&self) -> PathBuf {
        self.import_spool_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("imports"))
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url().starts_with("sqlite:")
    }

    pub fn idempotency_ttl(&self) -> Duration {
        Duration::from_secs(self.idempotency_ttl_hours * 3600)
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }
}

/// The environment variables `Config` reads, from its own deserializer: the list cannot drift
/// from the struct. Used to keep `.env.example` and `compose.yaml` honest.
pub fn variables() -> Vec<String> {
    use serde::de::{self, Visitor};

    #[derive(Debug)]
    struct Fields(Vec<&'static str>);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("field names collected")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            Stop
        }
    }
    impl<'de> de::Deserializer<'de> for &mut Fields {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0.extend(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut fields = Fields(Vec::new());
    let _ = Config::deserialize(&mut fields);
    fields.0.iter().map(|f| f.to_ascii_uppercase()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_give_the_embedded_server() {
        let c = Config::from_vars(vars(&[])).expect("defaults are valid");
        assert_eq!(c.port, 3001);
        assert!(c.is_sqlite());
        assert_eq!(c.database_url(), "sqlite://data/product-api.db?mode=rwc");
    }

    #[test]
    fn jwt_mode_needs_one_key_source_an_issuer_and_an_audience() {
        let secret = ("AUTH_JWT_SECRET", "0123456789abcdef0123456789abcdef");
        let jwks = ("AUTH_JWKS_URL", "https://id.example/.well-known/jwks.json");
        let (iss, aud) = (
            ("AUTH_ISSUER", "https://id.example/"),
            ("AUTH_AUDIENCE", "product-api"),
        );
        let mode = ("AUTH_MODE", "jwt");
        let refused = [
            (vec![mode, iss, aud], "AUTH_JWKS_URL"),
            (vec![mode, secret, jwks, iss, aud], "not both"),
            (
                vec![mode, ("AUTH_JWT_SECRET", "short"), iss, aud],
                "32 bytes",
            ),
            (
                vec![mode, ("AUTH_JWKS_URL", "ftp://x"), iss, aud],
                "AUTH_JWKS_URL",
            ),
            (
                vec![mode, ("AUTH_JWKS_URL", "http://id.example/jwks"), iss, aud],
                "https",
            ),
            (
                vec![
                    mode,
                    ("AUTH_JWKS_URL", "http://127.0.0.1.evil.example/"),
                    iss,
                    aud,
                ],
                "https",
            ),
            (vec![mode, secret, aud], "AUTH_ISSUER"),
            (vec![mode, secret, iss], "AUTH_AUDIENCE"),
            (
                vec![mode, secret, iss, aud, ("AUTH_LEEWAY_SECS", "3600")],
                "AUTH_LEEWAY_SECS",
            ),
        ];
        for (list, named) in refused {
            let err = Config::from_vars(vars(&list)).expect_err(named);
            assert!(err.0.contains(named), "{list:?}: {err}");
        }
        let local = ("AUTH_JWKS_URL", "http://127.0.0.1:8080/jwks.json");
        let v6 = ("AUTH_JWKS_URL", "http://[::1]:8080/jwks.json");
        for list in [
            vec![mode, secret, iss, aud],
            vec![mode, jwks, iss, aud],
            vec![mode, local, iss, aud],
            vec![mode, v6, iss, aud],
        ] {
            let c = Config::from_vars(vars(&list)).expect("valid");
            assert_eq!(c.auth_mode(), AuthMode::Jwt);
        }
    }

    #[test]
    fn bad_values_name_the_variable() {
        let cases = [
            ("PORT", "abc", "PORT"),
            ("PORT", "70000", "PORT"),
            ("DATABASE_URL", "mysql://x", "DATABASE_URL"),
            ("DATABASE_MAX_CONNECTIONS", "0", "DATABASE_MAX_CONNECTIONS"),
            ("JSON_BODY_LIMIT_BYTES", "10", "JSON_BODY_LIMIT_BYTES"),
            ("IDEMPOTENCY_TTL_HOURS", "1", "IDEMPOTENCY_TTL_HOURS"),
            ("RUN_MIGRATIONS", "maybe", "RUN_MIGRATIONS"),
            ("LOG_FORMAT", "xml", "LOG_FORMAT"),
            ("REDIS_URL", "http://x", "REDIS_URL"),
            ("RATE_LIMIT_STANDARD", "0", "RATE_LIMIT_STANDARD"),
            ("RATE_LIMIT_FAILURE_MODE", "ajar", "RATE_LIMIT_FAILURE_MODE"),
            ("AUTH_MODE", "oauth", "AUTH_MODE"),
            // A deployment that sets keys but not the mode would believe it checks tokens.
            (
                "AUTH_JWT_SECRET",
                "0123456789abcdef0123456789abcdef",
                "AUTH_MODE",
            ),
        ];
        for (var, value, named) in cases {
            let err = Config::from_vars(vars(&[(var, value)])).expect_err(var);
            assert!(err.0.contains(named), "{var}={value}: {err}");
        }
    }
}

#[cfg(test)]
mod env_example {
    use super::variables;

    /// `.env.example` documents exactly the variables the config reads.
    #[test]
    fn env_example_matches_the_config() {
        let text = include_str!("../../.env.example");
        let mut documented: Vec<String> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim().to_string()))
            .collect();
        documented.sort();
        let mut read = variables();
        read.sort();
        assert!(read.len() > 10, "introspection found the fields: {read:?}");
        assert_eq!(documented, read);
    }
}
