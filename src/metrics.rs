//! Prometheus metrics, served as text at `/metrics`.
//!
//! One registry per application (tests start many in one process). Gauges that describe
//! stored state (outbox backlog, pool usage) are read when scraped, not kept in step.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    pub sse_connections: IntGauge,
    pub events_published: IntCounter,
    pub publish_failures: IntCounter,
    pub rate_limited: IntCounterVec,
    pub outbox_backlog: IntGauge,
    pub outbox_oldest_age: IntGauge,
    pub pool_connections: IntGauge,
    pub pool_idle: IntGauge,
    pub imports_running: IntGauge,
    pub import_rows: IntCounterVec,
    pub imports_finished: IntCounterVec,
    pub import_batch_retries: IntCounter,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("product_api".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route template, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency").buckets(
                vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            ),
            &["route", "method"],
        )?;
        let sse_connections = IntGauge::new("sse_connections", "Open event streams")?;
        let events_published =
            IntCounter::new("events_published_total", "Events acknowledged by Kafka")?;
        let publish_failures = IntCounter::new(
            "events_publish_failures_total",
            "Relay batches Kafka did not acknowledge (retried)",
        )?;
        let rate_limited = IntCounterVec::new(
            Opts::new("rate_limit_rejections_total", "Requests rejected with 429"),
            &["policy"],
        )?;
        let outbox_backlog =
            IntGauge::new("outbox_backlog", "Events not yet acknowledged by Kafka")?;
        let outbox_oldest_age = IntGauge::new(
            "outbox_oldest_unpublished_age_seconds",
            "Age of the oldest event not yet acknowledged by Kafka",
        )?;
        let pool_connections = IntGauge::new("db_pool_connections", "Database connections open")?;
        let pool_idle = IntGauge::new("db_pool_idle_connections", "Database connections idle")?;
        let imports_running = IntGauge::new("imports_running", "CSV imports being processed")?;
        let import_rows = IntCounterVec::new(
            Opts::new(
                "import_rows_total",
                "Imported CSV rows by outcome (created, updated, unchanged, failed)",
            ),
            &["outcome"],
        )?;
        let imports_finished = IntCounterVec::new(
            Opts::new(
                "imports_finished_total",
                "CSV imports ended, by final status",
            ),
            &["status"],
        )?;
        let import_batch_retries = IntCounter::new(
            "import_batch_retries_total",
            "CSV import batches rolled back by an error, to be retried from the import's resume point",
        )?;
        registry.register(Box::new(import_batch_retries.clone()))?;
        registry.register(Box::new(imports_running.clone()))?;
        registry.register(Box::new(import_rows.clone()))?;
        registry.register(Box::new(imports_finished.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(sse_connections.clone()))?;
        registry.register(Box::new(events_published.clone()))?;
        registry.register(Box::new(publish_failures.clone()))?;
        registry.register(Box::new(rate_limited.clone()))?;
        registry.register(Box::new(outbox_backlog.clone()))?;
        registry.register(Box::new(outbox_oldest_age.clone()))?;
        registry.register(Box::new(pool_connections.clone()))?;
        registry.register(Box::new(pool_idle.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
            sse_connections,
            events_published,
            publish_failures,
            rate_limited,
            outbox_backlog,
            outbox_oldest_age,
            pool_connections,
            pool_idle,
            imports_running,
            import_rows,
            imports_finished,
            import_batch_retries,
        })
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}
