//! Configuration checks at start: every invalid value is refused with the variable's name.

use super::{broker_list, AuthMode, Config, ConfigError};

impl Config {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |var: &str, accepts: &str, got: &dyn std::fmt::Display| {
            Err(ConfigError(format!("{var} accepts {accepts}, got {got}")))
        };
        if !(1..=3600).contains(&self.sse_heartbeat_secs) {
            return bad("SSE_HEARTBEAT_SECS", "1..=3600", &self.sse_heartbeat_secs);
        }
        if !(100..=600_000).contains(&self.sse_retry_ms) {
            return bad("SSE_RETRY_MS", "100..=600000", &self.sse_retry_ms);
        }
        if !(1..=10_000).contains(&self.sse_max_streams_per_seller) {
            return bad(
                "SSE_MAX_STREAMS_PER_SELLER",
                "1..=10000",
                &self.sse_max_streams_per_seller,
            );
        }
        if self.events_channel.is_empty() {
            return bad(
                "EVENTS_CHANNEL",
                "a non-empty channel name",
                &"an empty one",
            );
        }
        if self.low_stock_threshold < 0 {
            return bad(
                "LOW_STOCK_THRESHOLD",
                "0 or more",
                &self.low_stock_threshold,
            );
        }
        if let Some(brokers) = &self.kafka_brokers {
            if broker_list(brokers).is_err() {
                return bad("KAFKA_BROKERS", "a comma-separated host:port list", brokers);
            }
        }
        if !(1..=1000).contains(&self.kafka_topic_partitions) {
            return bad(
                "KAFKA_TOPIC_PARTITIONS",
                "1..=1000",
                &self.kafka_topic_partitions,
            );
        }
        if !(1..=10_000).contains(&self.import_batch_size) {
            return bad("IMPORT_BATCH_SIZE", "1..=10000", &self.import_batch_size);
        }
        if self.import_max_bytes == 0 {
            return bad("IMPORT_MAX_BYTES", "at least 1", &self.import_max_bytes);
        }
        if self.import_max_rows == 0 {
            return bad("IMPORT_MAX_ROWS", "at least 1", &self.import_max_rows);
        }
        if self.import_max_field_bytes == 0 {
            return bad(
                "IMPORT_MAX_FIELD_BYTES",
                "at least 1",
                &self.import_max_field_bytes,
            );
        }
        if self.import_max_record_bytes < self.import_max_field_bytes {
            return bad(
                "IMPORT_MAX_RECORD_BYTES",
                "at least IMPORT_MAX_FIELD_BYTES",
                &self.import_max_record_bytes,
            );
        }
        if !(1..=10_000).contains(&self.outbox_batch_size) {
            return bad("OUTBOX_BATCH_SIZE", "1..=10000", &self.outbox_batch_size);
        }
        if !(10..=3_600_000).contains(&self.outbox_sweep_ms) {
            return bad("OUTBOX_SWEEP_MS", "10..=3600000", &self.outbox_sweep_ms);
        }
        if !(1000..=3_600_000).contains(&self.database_idle_transaction_timeout_ms) {
            return bad(
                "DATABASE_IDLE_TRANSACTION_TIMEOUT_MS",
                "1000..=3600000",
                &self.database_idle_transaction_timeout_ms,
            );
        }
        if self.outbox_retention_hours < 1 {
            return bad(
                "OUTBOX_RETENTION_HOURS",
                "1 or more",
                &self.outbox_retention_hours,
            );
        }
        if let Some(url) = &self.redis_url {
            if !url.starts_with("redis://") && !url.starts_with("rediss://") {
                return bad(
                    "REDIS_URL",
                    "a redis:// or rediss:// URL",
                    &"another scheme",
                );
            }
        }
        for (var, value) in [
            ("RATE_LIMIT_STANDARD", self.rate_limit_standard),
            ("RATE_LIMIT_BULK", self.rate_limit_bulk),
            ("RATE_LIMIT_ANONYMOUS", self.rate_limit_anonymous),
        ] {
            if !(1..=1_000_000).contains(&value) {
                return bad(var, "1..=1000000", &value);
            }
        }
        if let Some(raw) = &self.rate_limit_failure_mode_raw {
            if !matches!(raw.as_str(), "open" | "closed") {
                return bad("RATE_LIMIT_FAILURE_MODE", "open or closed", raw);
            }
        }
        if let Some(raw) = &self.log_format_raw {
            if self.log_format().is_none() {
                return bad("LOG_FORMAT", "json or pretty", raw);
            }
        }
        if let Some(url) = &self.database_url {
            let known = ["postgres://", "postgresql://", "sqlite:"];
            if !known.iter().any(|p| url.starts_with(p)) {
                return bad(
                    "DATABASE_URL",
                    "a postgres:// or sqlite: URL",
                    &"another scheme",
                );
            }
        }
        if !(1..=1000).contains(&self.database_max_connections) {
            return bad(
                "DATABASE_MAX_CONNECTIONS",
                "1..=1000",
                &self.database_max_connections,
            );
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.json_body_limit_bytes) {
            return bad(
                "JSON_BODY_LIMIT_BYTES",
                "1024..=67108864",
                &self.json_body_limit_bytes,
            );
        }
        if self.idempotency_ttl_hours < 24 {
            return bad(
                "IDEMPOTENCY_TTL_HOURS",
                "24 or more",
                &self.idempotency_ttl_hours,
            );
        }
        if !(1..=3600).contains(&self.idle_timeout_secs) {
            return bad("IDLE_TIMEOUT_SECS", "1..=3600", &self.idle_timeout_secs);
        }
        if self.sse_heartbeat_secs >= self.idle_timeout_secs {
            return bad(
                "SSE_HEARTBEAT_SECS",
                "less than IDLE_TIMEOUT_SECS",
                &self.sse_heartbeat_secs,
            );
        }
        if !(1..=1_000_000).contains(&self.max_connections) {
            return bad("MAX_CONNECTIONS", "1..=1000000", &self.max_connections);
        }
        if !(256..=60_000).contains(&self.max_url_bytes) {
            return bad("MAX_URL_BYTES", "256..=60000", &self.max_url_bytes);
        }
        if !(1024..=262_144).contains(&self.max_header_bytes) {
            return bad("MAX_HEADER_BYTES", "1024..=262144", &self.max_header_bytes);
        }
        if !(8..=100).contains(&self.max_headers) {
            return bad("MAX_HEADERS", "8..=100", &self.max_headers);
        }
        if let Some(origins) = &self.cors_allowed_origins {
            let valid = origins
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .all(|o| {
                    (o.starts_with("http://") || o.starts_with("https://")) && !o.ends_with('/')
                });
            if !valid {
                return bad(
                    "CORS_ALLOWED_ORIGINS",
                    "comma-separated origins like https://shop.example",
                    origins,
                );
            }
        }
        self.validate_auth()?;
        if self.shutdown_delay_secs > 60 {
            return bad("SHUTDOWN_DELAY_SECS", "0..=60", &self.shutdown_delay_secs);
        }
        if !(1..=3600).contains(&self.shutdown_timeout_secs) {
            return bad(
                "SHUTDOWN_TIMEOUT_SECS",
                "1..=3600",
                &self.shutdown_timeout_secs,
            );
        }
        Ok(())
    }

    fn validate_auth(&self) -> Result<(), ConfigError> {
        let refuse = |m: String| Err(ConfigError(m));
        let keys = [
            ("AUTH_JWKS_URL", self.auth_jwks_url.is_some()),
            ("AUTH_JWT_SECRET", self.auth_jwt_secret.is_some()),
            ("AUTH_ISSUER", self.auth_issuer.is_some()),
            ("AUTH_AUDIENCE", self.auth_audience.is_some()),
        ];
        if !matches!(self.auth_mode_raw.as_deref(), None | Some("header" | "jwt")) {
            return refuse(format!(
                "AUTH_MODE accepts header or jwt, got {}",
                self.auth_mode_raw.as_deref().unwrap_or_default()
            ));
        }
        if self.auth_mode() == AuthMode::Header {
            return match keys.iter().find(|(_, set)| *set) {
                Some((var, _)) => refuse(format!(
                    "{var} is set but AUTH_MODE is header: set AUTH_MODE=jwt to check bearer tokens"
                )),
                None => Ok(()),
            };
        }
        match (&self.auth_jwks_url, &self.auth_jwt_secret) {
            (None, None) => {
                return refuse("AUTH_MODE=jwt needs AUTH_JWKS_URL or AUTH_JWT_SECRET".into())
            }
            (Some(_), Some(_)) => {
                return refuse("AUTH_JWKS_URL and AUTH_JWT_SECRET: set one, not both".into())
            }
            // Keys fetched in the clear could be swapped for an attacker's: https, or plain
            // http only to this machine (a sidecar, the tests).
            (Some(url), None) if !(url.starts_with("https://") || is_loopback_http(url)) => {
                return refuse(format!(
                    "AUTH_JWKS_URL accepts an https URL (http only on loopback), got {url}"
                ))
            }
            (None, Some(secret)) if secret.len() < 32 => {
                return refuse("AUTH_JWT_SECRET must be at least 32 bytes".into())
            }
            _ => {}
        }
        for (var, value) in [
            ("AUTH_ISSUER", &self.auth_issuer),
            ("AUTH_AUDIENCE", &self.auth_audience),
        ] {
            if value.is_none() {
                return refuse(format!("AUTH_MODE=jwt needs {var}"));
            }
        }
        if self.auth_seller_claim.is_empty() {
            return refuse("AUTH_SELLER_CLAIM accepts a claim name, got an empty one".into());
        }
        if self.auth_leeway_secs > 300 {
            return refuse(format!(
                "AUTH_LEEWAY_SECS accepts 0..=300, got {}",
                self.auth_leeway_secs
            ));
        }
        if !(1..=3600).contains(&self.auth_jwks_min_refetch_secs) {
            return refuse(format!(
                "AUTH_JWKS_MIN_REFETCH_SECS accepts 1..=3600, got {}",
                self.auth_jwks_min_refetch_secs
            ));
        }
        if !(60..=86_400).contains(&self.auth_jwks_max_age_secs) {
            return refuse(format!(
                "AUTH_JWKS_MAX_AGE_SECS accepts 60..=86400, got {}",
                self.auth_jwks_max_age_secs
            ));
        }
        Ok(())
    }
}

/// `http://` to 127.0.0.1, `[::1]` or localhost, with or without a port.
fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split('/').next().unwrap_or_default();
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    matches!(host, "127.0.0.1" | "::1" | "localhost")
}
